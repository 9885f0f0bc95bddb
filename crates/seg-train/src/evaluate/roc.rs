//! Threshold-free scores of vessel probabilities.
//!
//! [`RocHistogram`]: vessel and background pixel counts per probability level of a map — 8-bit
//! (`round(255 p)`, 256 levels) or 16-bit (`round(65535 p)`) — giving the ROC and
//! precision–recall curves, their areas and F1 at every threshold exactly *for those levels*.
//! Pixels of one level are tied: the AUC counts ties half, and the most the levels can move it is
//! the tie bound `½ Σ_l P_l N_l / (P N)` ([`RocHistogram::tie_bound`]) — with a confident model
//! most pixels sit at the lowest and highest levels, and at 8 bits that bound can exceed the
//! differences the literature reports between methods.
//!
//! [`ExactScores`]: the float probabilities themselves, sorted: the AUC (the Mann–Whitney
//! statistic, ties counted half, as scikit-learn's `roc_auc_score`) and the average precision
//! (scikit-learn's `average_precision_score`) of the values as predicted — what `evaluate
//! --checkpoint` and training's validation report score.
//!
//! A threshold is a level `t`: a pixel is vessel when its level is ≥ `t`; level `t` of a map with
//! largest level `M` is the probability threshold `(t − ½) / M` ([`RocHistogram::probability`]),
//! so 0.5 is level 128 of an 8-bit map.

use serde::{Deserialize, Serialize};

use crate::metrics::Confusion;

/// Vessel and background pixel counts per probability level `0..=max_level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LevelCounts", into = "LevelCounts")]
pub struct RocHistogram {
    /// The largest level: 255 (8-bit maps) or 65 535 (16-bit maps, float probabilities).
    pub max_level: u32,
    /// Vessel pixels per level.
    pub positives: Vec<u64>,
    /// Background pixels per level.
    pub negatives: Vec<u64>,
}

/// [`RocHistogram`] as stored in JSON: `max_level` with the non-zero counts as `[level, count]`
/// pairs; files written before 16-bit levels hold 256 counts per list and no `max_level`.
#[derive(Serialize, Deserialize)]
struct LevelCounts {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_level: Option<u32>,
    positives: Vec<serde_json::Value>,
    negatives: Vec<serde_json::Value>,
}

impl From<RocHistogram> for LevelCounts {
    fn from(h: RocHistogram) -> Self {
        let sparse = |counts: &[u64]| {
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(level, &c)| serde_json::json!([level, c]))
                .collect()
        };
        Self {
            max_level: Some(h.max_level),
            positives: sparse(&h.positives),
            negatives: sparse(&h.negatives),
        }
    }
}

impl TryFrom<LevelCounts> for RocHistogram {
    type Error = String;
    fn try_from(c: LevelCounts) -> Result<Self, String> {
        let Some(max_level) = c.max_level else {
            // 256 dense counts.
            let dense = |v: Vec<serde_json::Value>, name: &str| -> Result<Vec<u64>, String> {
                if v.len() != 256 {
                    return Err(format!(
                        "`{name}` has {} counts; one per level 0..=255 (256) expected",
                        v.len()
                    ));
                }
                v.iter()
                    .map(|x| x.as_u64().ok_or(format!("`{name}`: {x} is not a count")))
                    .collect()
            };
            return Ok(Self {
                max_level: 255,
                positives: dense(c.positives, "positives")?,
                negatives: dense(c.negatives, "negatives")?,
            });
        };
        if max_level != 255 && max_level != 65_535 {
            return Err(format!("`max_level` {max_level}: 255 or 65535 expected"));
        }
        let sparse = |v: Vec<serde_json::Value>, name: &str| -> Result<Vec<u64>, String> {
            let mut counts = vec![0u64; max_level as usize + 1];
            for pair in v {
                let (level, count) = serde_json::from_value::<(usize, u64)>(pair.clone())
                    .map_err(|_| format!("`{name}`: {pair} is not a [level, count] pair"))?;
                *counts.get_mut(level).ok_or(format!(
                    "`{name}`: level {level} is above max_level {max_level}"
                ))? += count;
            }
            Ok(counts)
        };
        Ok(Self {
            max_level,
            positives: sparse(c.positives, "positives")?,
            negatives: sparse(c.negatives, "negatives")?,
        })
    }
}

impl Default for RocHistogram {
    fn default() -> Self {
        Self::new(255)
    }
}

/// The best-F1 threshold of a split.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ThresholdPoint {
    /// Vessel = level ≥ this, at the evaluation's resolution.
    pub level: u32,
    /// The probability threshold the level stands for.
    pub probability: f64,
    /// F1 at `level`.
    pub f1: f64,
}

/// The probability threshold that level `level` of a map with largest level `max_level` stands
/// for: `round(M p) ≥ level` ⟺ `p ≥ (level − ½) / M` (0 for level 0).
pub fn level_probability(level: u32, max_level: u32) -> f64 {
    ((level as f64 - 0.5) / max_level as f64).max(0.0)
}

/// The smallest level whose pixels all have a probability ≥ `threshold` (in `0..=1`):
/// `⌈M·t + ½⌉` (128 for 0.5 at 8 bits), at least 1.
pub fn threshold_level(threshold: f64, max_level: u32) -> u32 {
    ((max_level as f64 * threshold + 0.5).ceil() as u32).clamp(1, max_level)
}

impl RocHistogram {
    /// No pixels yet, levels `0..=max_level`.
    pub fn new(max_level: u32) -> Self {
        let n = max_level as usize + 1;
        Self {
            max_level,
            positives: vec![0; n],
            negatives: vec![0; n],
        }
    }

    /// [`level_probability`] at this histogram's resolution.
    pub fn probability(&self, level: u32) -> f64 {
        level_probability(level, self.max_level)
    }

    /// Adds pixels: `levels` (each ≤ `max_level`), `truth` vessel flags, restricted to `mask`
    /// when given.
    pub fn add_levels<L: Copy + Into<u32>>(
        &mut self,
        levels: &[L],
        truth: &[u8],
        mask: Option<&[u8]>,
    ) {
        for (i, (&p, &t)) in levels.iter().zip(truth).enumerate() {
            if mask.is_some_and(|m| m[i] == 0) {
                continue;
            }
            let level = (p.into() as usize).min(self.max_level as usize);
            if t != 0 {
                self.positives[level] += 1;
            } else {
                self.negatives[level] += 1;
            }
        }
    }

    /// Adds float probabilities, each at its nearest level (`round(M p)`).
    pub fn add_probabilities(&mut self, prob: &[f32], truth: &[u8], mask: Option<&[u8]>) {
        let max = self.max_level as f32;
        let levels: Vec<u32> = prob
            .iter()
            .map(|&p| (p.clamp(0.0, 1.0) * max).round() as u32)
            .collect();
        self.add_levels(&levels, truth, mask);
    }

    /// Adds another histogram's counts (of the same resolution).
    ///
    /// # Panics
    /// If the resolutions differ (the caller keeps one resolution per split).
    pub fn merge(&mut self, other: &Self) {
        assert_eq!(
            self.max_level, other.max_level,
            "merging levels of two depths"
        );
        for i in 0..self.positives.len() {
            self.positives[i] += other.positives[i];
            self.negatives[i] += other.negatives[i];
        }
    }

    /// Vessel and background pixel totals.
    fn totals(&self) -> (u64, u64) {
        (self.positives.iter().sum(), self.negatives.iter().sum())
    }

    /// The confusion matrix at threshold `level` (0..=max+1; max+1: nothing is vessel).
    pub fn confusion_at(&self, level: u32) -> Confusion {
        let (pos, neg) = self.totals();
        let from = (level as usize).min(self.positives.len());
        let tp: u64 = self.positives[from..].iter().sum();
        let fp: u64 = self.negatives[from..].iter().sum();
        Confusion::new(tp, fp, pos - tp, neg - fp)
    }

    /// The confusion matrix at every threshold from above the top level (nothing is vessel)
    /// down to 0 (everything is).
    fn sweep(&self) -> Vec<Confusion> {
        let (pos, neg) = self.totals();
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut out = vec![Confusion::new(0, 0, pos, neg)];
        for level in (0..self.positives.len()).rev() {
            let (p, n) = (self.positives[level], self.negatives[level]);
            if p == 0 && n == 0 && level > 0 {
                continue;
            }
            tp += p;
            fp += n;
            out.push(Confusion::new(tp, fp, pos - tp, neg - fp));
        }
        out
    }

    /// Area under the ROC curve = P(level of a random vessel pixel > that of a random background
    /// pixel) + ½ P(equal). `None` without both classes.
    pub fn auc(&self) -> Option<f64> {
        let (pos, neg) = self.totals();
        if pos == 0 || neg == 0 {
            return None;
        }
        let mut below = 0u64; // negatives with a lower level
        let mut wins = 0f64;
        for (&p, &n) in self.positives.iter().zip(&self.negatives) {
            wins += p as f64 * (below as f64 + 0.5 * n as f64);
            below += n;
        }
        Some(wins / (pos as f64 * neg as f64))
    }

    /// The most the ties within levels can move the AUC: `½ Σ_l P_l N_l / (P N)` (the AUC of the
    /// probabilities themselves lies within this of [`RocHistogram::auc`]). `None` without both
    /// classes.
    pub fn tie_bound(&self) -> Option<f64> {
        let (pos, neg) = self.totals();
        if pos == 0 || neg == 0 {
            return None;
        }
        let ties: f64 = self
            .positives
            .iter()
            .zip(&self.negatives)
            .map(|(&p, &n)| p as f64 * n as f64)
            .sum();
        Some(0.5 * ties / (pos as f64 * neg as f64))
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

    /// F1 at each threshold level `1..=max_level` that changes the confusion matrix (`None`
    /// where undefined), lowest level first.
    pub fn f1_by_level(&self) -> Vec<(u32, Option<f64>)> {
        let (pos, neg) = self.totals();
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut out = Vec::new();
        for level in (1..self.positives.len()).rev() {
            let (p, n) = (self.positives[level], self.negatives[level]);
            tp += p;
            fp += n;
            // Levels without pixels repeat the next one's matrix: only the lowest of each run.
            if level > 1 && self.positives[level - 1] == 0 && self.negatives[level - 1] == 0 {
                continue;
            }
            out.push((
                level as u32,
                Confusion::new(tp, fp, pos - tp, neg - fp).f1(),
            ));
        }
        out.reverse();
        out
    }

    /// The threshold level (1..=max) with the highest F1; on ties the lowest such level. `None`
    /// without vessel pixels.
    pub fn best_f1(&self) -> Option<ThresholdPoint> {
        let mut best: Option<ThresholdPoint> = None;
        for (level, f1) in self.f1_by_level() {
            let Some(f1) = f1 else { continue };
            if best.is_none_or(|b| f1 > b.f1) {
                best = Some(ThresholdPoint {
                    level,
                    probability: self.probability(level),
                    f1,
                });
            }
        }
        best.filter(|_| self.totals().0 > 0)
    }
}

/// The float vessel probabilities of vessel and background pixels, for the AUC and average
/// precision of the values as predicted (no levels). Four bytes per pixel.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExactScores {
    positives: Vec<f32>,
    negatives: Vec<f32>,
    sorted: bool,
}

impl ExactScores {
    /// Adds pixels: probabilities, vessel flags, restricted to `mask` when given.
    pub fn add(&mut self, prob: &[f32], truth: &[u8], mask: Option<&[u8]>) {
        for (i, (&p, &t)) in prob.iter().zip(truth).enumerate() {
            if mask.is_some_and(|m| m[i] == 0) {
                continue;
            }
            if t != 0 {
                self.positives.push(p);
            } else {
                self.negatives.push(p);
            }
        }
        self.sorted = false;
    }

    /// Adds another split part's pixels.
    pub fn merge(&mut self, other: &Self) {
        self.positives.extend_from_slice(&other.positives);
        self.negatives.extend_from_slice(&other.negatives);
        self.sorted = false;
    }

    /// Pixels held.
    pub fn len(&self) -> usize {
        self.positives.len() + self.negatives.len()
    }

    /// Whether no pixel is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn sort(&mut self) {
        if !self.sorted {
            self.positives.sort_unstable_by(f32::total_cmp);
            self.negatives.sort_unstable_by(f32::total_cmp);
            self.sorted = true;
        }
    }

    /// The Mann–Whitney AUC: P(vessel score > background score) + ½ P(equal). `None` without
    /// both classes.
    pub fn auc(&mut self) -> Option<f64> {
        let (pos, neg) = (self.positives.len(), self.negatives.len());
        if pos == 0 || neg == 0 {
            return None;
        }
        self.sort();
        let (mut below, mut equal_end) = (0usize, 0usize);
        let mut wins = 0f64;
        let mut i = 0;
        while i < pos {
            let v = self.positives[i];
            let mut run = 1;
            while i + run < pos && self.positives[i + run] == v {
                run += 1;
            }
            while below < neg && self.negatives[below] < v {
                below += 1;
            }
            equal_end = equal_end.max(below);
            while equal_end < neg && self.negatives[equal_end] == v {
                equal_end += 1;
            }
            let ties = equal_end - below;
            wins += run as f64 * (below as f64 + 0.5 * ties as f64);
            i += run;
        }
        Some(wins / (pos as f64 * neg as f64))
    }

    /// scikit-learn's `average_precision_score` of the scores: Σ (Rₙ − Rₙ₋₁) Pₙ over every
    /// distinct score from the highest down. `None` without vessel pixels.
    pub fn average_precision(&mut self) -> Option<f64> {
        let pos = self.positives.len();
        if pos == 0 {
            return None;
        }
        self.sort();
        let (mut i, mut j) = (pos, self.negatives.len()); // unvisited: [..i], [..j]
        let (mut tp, mut fp) = (0usize, 0usize);
        let mut ap = 0f64;
        while i > 0 {
            let top_pos = self.positives[i - 1];
            let v = match j {
                0 => top_pos,
                _ => top_pos.max(self.negatives[j - 1]),
            };
            let before = tp;
            while i > 0 && self.positives[i - 1] == v {
                i -= 1;
                tp += 1;
            }
            while j > 0 && self.negatives[j - 1] == v {
                j -= 1;
                fp += 1;
            }
            if tp > before {
                ap += (tp - before) as f64 / pos as f64 * tp as f64 / (tp + fp) as f64;
            }
        }
        Some(ap)
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
        roc.add_levels(&[200u8, 100, 100, 100, 50], &[1, 1, 1, 0, 0], None);
        close(roc.auc(), 5.0 / 6.0);
        // The two (100, 100) pairs are the only ties: bound ½ · 2 · 1 / (3 · 2) = 1/6.
        close(roc.tie_bound(), 1.0 / 6.0);
        // All tied: 0.5. Perfect separation: 1. Reversed: 0.
        let mut tied = RocHistogram::default();
        tied.add_levels(&[7u8, 7, 7], &[1, 0, 0], None);
        close(tied.auc(), 0.5);
        let mut perfect = RocHistogram::default();
        perfect.add_levels(&[255u8, 0], &[1, 0], None);
        close(perfect.auc(), 1.0);
        close(perfect.tie_bound(), 0.0);
        let mut reversed = RocHistogram::default();
        reversed.add_levels(&[0u8, 255], &[1, 0], None);
        close(reversed.auc(), 0.0);
        let mut one_class = RocHistogram::default();
        one_class.add_levels(&[3u8, 4], &[0, 0], None);
        assert_eq!(one_class.auc(), None);
        // The mask excludes the second positive: positives 200, 100 vs negatives 100, 50 → 3.5/4.
        let mut masked = RocHistogram::default();
        masked.add_levels(
            &[200u8, 100, 100, 100, 50],
            &[1, 1, 1, 0, 0],
            Some(&[1, 0, 1, 1, 1]),
        );
        close(masked.auc(), 3.5 / 4.0);
    }

    #[test]
    fn exact_auc_and_average_precision_by_hand() {
        // Positives 0.9, 0.4, 0.4; negatives 0.4, 0.1 (the levels example, as floats): 5/6.
        let mut exact = ExactScores::default();
        exact.add(&[0.9, 0.4, 0.4, 0.4, 0.1], &[1, 1, 1, 0, 0], None);
        close(exact.auc(), 5.0 / 6.0);
        // Thresholds 0.9: P 1/1, R 1/3; 0.4: P 3/4, R 3/3; 0.1: no new positive.
        // AP = 1/3 · 1 + 2/3 · 3/4 = 5/6.
        close(exact.average_precision(), 1.0 / 3.0 + 2.0 / 3.0 * 0.75);
        // Values one level apart at 8 bits are still ordered exactly.
        let mut fine = ExactScores::default();
        fine.add(&[0.001, 0.0011], &[1, 0], None);
        close(fine.auc(), 0.0);
        let mut levels = RocHistogram::default();
        levels.add_probabilities(&[0.001, 0.0011], &[1, 0], None);
        close(levels.auc(), 0.5);
    }

    #[test]
    fn thresholds_and_levels_agree() {
        assert_eq!(threshold_level(0.5, 255), 128);
        assert_eq!(threshold_level(0.0, 255), 1);
        assert_eq!(threshold_level(1.0, 255), 255);
        for level in 1..=255 {
            assert_eq!(threshold_level(level_probability(level, 255), 255), level);
        }
        assert_eq!(threshold_level(0.5, 65_535), 32_768);
    }

    #[test]
    fn level_counts_round_trip_through_json_and_old_files_read() {
        let mut roc = RocHistogram::new(65_535);
        roc.add_levels(&[3u16, 65_000, 65_000], &[0, 1, 0], None);
        let json = serde_json::to_string(&roc).unwrap();
        assert!(json.len() < 200, "sparse: {json}");
        assert_eq!(serde_json::from_str::<RocHistogram>(&json).unwrap(), roc);
        // Written before 16-bit levels: 256 dense counts, no max_level.
        let mut dense = vec![0u64; 256];
        dense[250] = 2;
        let old = serde_json::json!({"positives": dense, "negatives": vec![1u64; 256]});
        let read: RocHistogram = serde_json::from_value(old).unwrap();
        assert_eq!(
            (read.max_level, read.positives[250], read.negatives[3]),
            (255, 2, 1)
        );
        let err = serde_json::from_str::<RocHistogram>(r#"{"positives":[1],"negatives":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`positives` has 1 counts"), "{err}");
    }
}
