//! Threshold-free scores of 8-bit probability maps: per-level pixel counts give the ROC and
//! precision–recall curves, their areas (AUC, average precision) and F1 at every threshold
//! exactly — a probability map has 256 levels, so every distinct score is a level and no curve is
//! sampled at a few thresholds.
//!
//! A threshold is a level `t`: a pixel is vessel when its level is ≥ `t`. Levels are written as
//! `round(255 p)`, so level `t` is the probability threshold `(t − ½) / 255` ([`level_probability`]):
//! the default 0.5 is level 128.

use serde::{Deserialize, Serialize};

use crate::metrics::Confusion;

/// Vessel and background pixel counts per probability level 0..=255.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LevelCounts", into = "LevelCounts")]
pub struct RocHistogram {
    /// Vessel pixels per level.
    pub positives: [u64; 256],
    /// Background pixels per level.
    pub negatives: [u64; 256],
}

/// [`RocHistogram`] as stored in JSON: two lists of 256 counts.
#[derive(Serialize, Deserialize)]
struct LevelCounts {
    positives: Vec<u64>,
    negatives: Vec<u64>,
}

impl From<RocHistogram> for LevelCounts {
    fn from(h: RocHistogram) -> Self {
        Self {
            positives: h.positives.to_vec(),
            negatives: h.negatives.to_vec(),
        }
    }
}

impl TryFrom<LevelCounts> for RocHistogram {
    type Error = String;
    fn try_from(c: LevelCounts) -> Result<Self, String> {
        let counts = |v: Vec<u64>, name: &str| {
            let n = v.len();
            <[u64; 256]>::try_from(v).map_err(|_| {
                format!("`{name}` has {n} counts; one per level 0..=255 (256) expected")
            })
        };
        Ok(Self {
            positives: counts(c.positives, "positives")?,
            negatives: counts(c.negatives, "negatives")?,
        })
    }
}

impl Default for RocHistogram {
    fn default() -> Self {
        Self {
            positives: [0; 256],
            negatives: [0; 256],
        }
    }
}

/// The probability threshold that level `level` stands for: `round(255 p) ≥ level` ⟺
/// `p ≥ (level − ½) / 255` (0 for level 0).
pub fn level_probability(level: u8) -> f64 {
    ((level as f64 - 0.5) / 255.0).max(0.0)
}

/// The best-F1 threshold of a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdPoint {
    /// Vessel = level ≥ this.
    pub level: u8,
    /// [`level_probability`] of `level`.
    pub probability: f64,
    /// F1 at `level`.
    pub f1: f64,
}

impl RocHistogram {
    /// Adds pixels: `prob` levels 0..=255, `truth` vessel flags, restricted to `mask` when given.
    pub fn add_pixels(&mut self, prob: &[u8], truth: &[u8], mask: Option<&[u8]>) {
        for (i, (&p, &t)) in prob.iter().zip(truth).enumerate() {
            if mask.is_some_and(|m| m[i] == 0) {
                continue;
            }
            if t != 0 {
                self.positives[p as usize] += 1;
            } else {
                self.negatives[p as usize] += 1;
            }
        }
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Self) {
        for i in 0..256 {
            self.positives[i] += other.positives[i];
            self.negatives[i] += other.negatives[i];
        }
    }

    /// Vessel and background pixel totals.
    fn totals(&self) -> (u64, u64) {
        (self.positives.iter().sum(), self.negatives.iter().sum())
    }

    /// The confusion matrix at threshold `level` (0..=256; 256: nothing is vessel).
    pub fn confusion_at(&self, level: usize) -> Confusion {
        let (pos, neg) = self.totals();
        let tp: u64 = self.positives[level.min(256)..].iter().sum();
        let fp: u64 = self.negatives[level.min(256)..].iter().sum();
        Confusion::new(tp, fp, pos - tp, neg - fp)
    }

    /// The confusion matrix at every threshold from 256 (nothing is vessel) down to 0
    /// (everything is), index `i` holding level `256 − i`.
    fn sweep(&self) -> Vec<Confusion> {
        let (pos, neg) = self.totals();
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut out = vec![Confusion::new(0, 0, pos, neg)];
        for level in (0..256).rev() {
            tp += self.positives[level];
            fp += self.negatives[level];
            out.push(Confusion::new(tp, fp, pos - tp, neg - fp));
        }
        out
    }

    /// Area under the ROC curve = P(score of a random vessel pixel > score of a random background
    /// pixel) + ½ P(equal) (ties count half, as the trapezoidal ROC does). `None` without both
    /// classes.
    pub fn auc(&self) -> Option<f64> {
        let (pos, neg) = self.totals();
        if pos == 0 || neg == 0 {
            return None;
        }
        let mut below = 0u64; // negatives with a lower level
        let mut wins = 0f64;
        for level in 0..256 {
            let (p, n) = (self.positives[level], self.negatives[level]);
            wins += p as f64 * (below as f64 + 0.5 * n as f64);
            below += n;
        }
        Some(wins / (pos as f64 * neg as f64))
    }

    /// The ROC curve: (false positive rate, true positive rate) at every threshold, from (0, 0)
    /// (threshold above every level) to (1, 1). Empty without both classes.
    pub fn roc_points(&self) -> Vec<(f64, f64)> {
        let (pos, neg) = self.totals();
        if pos == 0 || neg == 0 {
            return Vec::new();
        }
        let mut points: Vec<(f64, f64)> = self
            .sweep()
            .iter()
            .map(|c| (c.fp as f64 / neg as f64, c.tp as f64 / pos as f64))
            .collect();
        points.dedup();
        points
    }

    /// The precision–recall curve: (recall, precision) at every threshold that marks some pixel
    /// as vessel, highest threshold first, after scikit-learn's starting point (0, 1). Empty
    /// without vessel pixels.
    pub fn pr_points(&self) -> Vec<(f64, f64)> {
        let (pos, _) = self.totals();
        if pos == 0 {
            return Vec::new();
        }
        let mut points = vec![(0.0, 1.0)];
        points.extend(
            self.sweep()
                .iter()
                .filter(|c| c.tp + c.fp > 0)
                .map(|c| (c.tp as f64 / pos as f64, c.tp as f64 / (c.tp + c.fp) as f64)),
        );
        points.dedup();
        points
    }

    /// Average precision, as scikit-learn's `average_precision_score`: Σ (Rₙ − Rₙ₋₁) Pₙ over the
    /// thresholds from the highest down (a step function, not the trapezoid). `None` without
    /// vessel pixels.
    pub fn average_precision(&self) -> Option<f64> {
        let (pos, _) = self.totals();
        if pos == 0 {
            return None;
        }
        let sweep = self.sweep();
        let ap = sweep
            .windows(2)
            .filter(|w| w[1].tp > w[0].tp)
            .map(|w| {
                let recall_step = (w[1].tp - w[0].tp) as f64 / pos as f64;
                recall_step * w[1].tp as f64 / (w[1].tp + w[1].fp) as f64
            })
            .sum();
        Some(ap)
    }

    /// F1 at each threshold level 1..=255 (`None` where undefined), index `level − 1`.
    pub fn f1_by_level(&self) -> Vec<(u8, Option<f64>)> {
        (1..=255u8)
            .map(|level| (level, self.confusion_at(level as usize).f1()))
            .collect()
    }

    /// The threshold level (1..=255) with the highest F1; on ties the lowest such level. `None`
    /// without vessel pixels.
    pub fn best_f1(&self) -> Option<ThresholdPoint> {
        let mut best: Option<ThresholdPoint> = None;
        for (level, f1) in self.f1_by_level() {
            let Some(f1) = f1 else { continue };
            if best.is_none_or(|b| f1 > b.f1) {
                best = Some(ThresholdPoint {
                    level,
                    probability: level_probability(level),
                    f1,
                });
            }
        }
        best.filter(|_| self.totals().0 > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tests::close;

    #[test]
    fn auc_with_ties_by_hand() {
        // Positives at levels 200, 100, 100; negatives at 100, 50.
        // Pairs: (200,100)=1 (200,50)=1 (100,100)=½ (100,50)=1 (100,100)=½ (100,50)=1 → 5/6.
        let mut roc = RocHistogram::default();
        roc.add_pixels(&[200, 100, 100, 100, 50], &[1, 1, 1, 0, 0], None);
        close(roc.auc(), 5.0 / 6.0);
        // All tied: 0.5. Perfect separation: 1. Reversed: 0.
        let mut tied = RocHistogram::default();
        tied.add_pixels(&[7, 7, 7], &[1, 0, 0], None);
        close(tied.auc(), 0.5);
        let mut perfect = RocHistogram::default();
        perfect.add_pixels(&[255, 0], &[1, 0], None);
        close(perfect.auc(), 1.0);
        let mut reversed = RocHistogram::default();
        reversed.add_pixels(&[0, 255], &[1, 0], None);
        close(reversed.auc(), 0.0);
        let mut one_class = RocHistogram::default();
        one_class.add_pixels(&[3, 4], &[0, 0], None);
        assert_eq!(one_class.auc(), None);
        // The mask excludes the second positive: positives 200, 100 vs negatives 100, 50 → 3.5/4.
        let mut masked = RocHistogram::default();
        masked.add_pixels(
            &[200, 100, 100, 100, 50],
            &[1, 1, 1, 0, 0],
            Some(&[1, 0, 1, 1, 1]),
        );
        close(masked.auc(), 3.5 / 4.0);
    }

    #[test]
    fn the_level_counts_round_trip_through_json_and_wrong_lengths_are_refused() {
        let mut roc = RocHistogram::default();
        roc.add_pixels(&[3, 250, 250], &[0, 1, 0], None);
        let json = serde_json::to_string(&roc).unwrap();
        assert_eq!(serde_json::from_str::<RocHistogram>(&json).unwrap(), roc);
        let err = serde_json::from_str::<RocHistogram>(r#"{"positives":[1],"negatives":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`positives` has 1 counts"), "{err}");
    }
}
