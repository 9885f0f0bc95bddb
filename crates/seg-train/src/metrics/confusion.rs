//! Segmentation metrics from confusion matrices accumulated over a whole epoch or split (never
//! averages of per-batch ratios), vessel = positive class.
//!
//! A ratio whose denominator is 0 (e.g. sensitivity of an image without vessels) is undefined and
//! reported as `None` (`null` in JSON, empty in CSV); MCC is 0 in that case, by convention.

use std::ops::{Add, AddAssign};

use serde::{Deserialize, Serialize};

/// Binary confusion matrix: vessel = positive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Vessel pixels predicted vessel.
    pub tp: u64,
    /// Background pixels predicted vessel.
    pub fp: u64,
    /// Vessel pixels predicted background (`fn` in JSON).
    #[serde(rename = "fn")]
    pub fn_: u64,
    /// Background pixels predicted background.
    pub tn: u64,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

impl Confusion {
    /// The matrix of the four counts.
    pub const fn new(tp: u64, fp: u64, fn_: u64, tn: u64) -> Self {
        Self { tp, fp, fn_, tn }
    }

    /// Counts over pixels: `pred`/`truth` vessel flags, restricted to `mask` when given.
    pub fn from_pixels<'a>(
        pred: impl IntoIterator<Item = &'a u8>,
        truth: impl IntoIterator<Item = &'a u8>,
        mask: Option<&[u8]>,
    ) -> Self {
        let mut c = Self::default();
        for (i, (&p, &t)) in pred.into_iter().zip(truth).enumerate() {
            if mask.is_some_and(|m| m[i] == 0) {
                continue;
            }
            match (p != 0, t != 0) {
                (true, true) => c.tp += 1,
                (true, false) => c.fp += 1,
                (false, true) => c.fn_ += 1,
                (false, false) => c.tn += 1,
            }
        }
        c
    }

    /// Pixels counted.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.fn_ + self.tn
    }

    /// (TP + TN) / all.
    pub fn accuracy(&self) -> Option<f64> {
        ratio(self.tp + self.tn, self.total())
    }

    /// Recall of vessels: TP / (TP + FN).
    pub fn sensitivity(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// TN / (TN + FP).
    pub fn specificity(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp)
    }

    /// TP / (TP + FP).
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    /// F1 = Dice = 2TP / (2TP + FP + FN).
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// Vessel IoU (Jaccard) = TP / (TP + FP + FN).
    pub fn vessel_iou(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp + self.fn_)
    }

    /// Background IoU = TN / (TN + FP + FN).
    pub fn background_iou(&self) -> Option<f64> {
        ratio(self.tn, self.tn + self.fp + self.fn_)
    }

    /// Mean of the background and vessel IoUs (over the classes where it is defined).
    pub fn miou(&self) -> Option<f64> {
        let ious: Vec<f64> = [self.background_iou(), self.vessel_iou()]
            .into_iter()
            .flatten()
            .collect();
        (!ious.is_empty()).then(|| ious.iter().sum::<f64>() / ious.len() as f64)
    }

    /// Matthews correlation coefficient; 0 when any marginal is empty.
    pub fn mcc(&self) -> f64 {
        let (tp, fp, fn_, tn) = (
            self.tp as f64,
            self.fp as f64,
            self.fn_ as f64,
            self.tn as f64,
        );
        let den = ((tp + fp) * (tp + fn_) * (tn + fp) * (tn + fn_)).sqrt();
        if den == 0.0 {
            0.0
        } else {
            (tp * tn - fp * fn_) / den
        }
    }

    /// All ratios at once.
    pub fn summary(&self) -> MetricSummary {
        MetricSummary {
            accuracy: self.accuracy(),
            miou: self.miou(),
            vessel_iou: self.vessel_iou(),
            f1: self.f1(),
            sensitivity: self.sensitivity(),
            specificity: self.specificity(),
            precision: self.precision(),
            mcc: self.mcc(),
        }
    }
}

impl Add for Confusion {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(
            self.tp + o.tp,
            self.fp + o.fp,
            self.fn_ + o.fn_,
            self.tn + o.tn,
        )
    }
}

impl AddAssign for Confusion {
    fn add_assign(&mut self, o: Self) {
        *self = *self + o;
    }
}

/// Metrics derived from one [`Confusion`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// (TP + TN) / all.
    pub accuracy: Option<f64>,
    /// Mean of the vessel and background IoU.
    pub miou: Option<f64>,
    /// TP / (TP + FP + FN).
    pub vessel_iou: Option<f64>,
    /// F1 = Dice = 2 TP / (2 TP + FP + FN).
    pub f1: Option<f64>,
    /// TP / (TP + FN) (recall).
    pub sensitivity: Option<f64>,
    /// TN / (TN + FP).
    pub specificity: Option<f64>,
    /// TP / (TP + FP).
    pub precision: Option<f64>,
    /// Matthews correlation coefficient (0 where undefined).
    pub mcc: f64,
}

impl MetricSummary {
    /// Column names, in [`MetricSummary::values`] order.
    pub const NAMES: [&'static str; 8] = [
        "accuracy",
        "miou",
        "vessel_iou",
        "f1",
        "sensitivity",
        "specificity",
        "precision",
        "mcc",
    ];

    /// The eight values in the CSV's column order (MCC as `Some`).
    pub fn values(&self) -> [Option<f64>; 8] {
        [
            self.accuracy,
            self.miou,
            self.vessel_iou,
            self.f1,
            self.sensitivity,
            self.specificity,
            self.precision,
            Some(self.mcc),
        ]
    }
}

/// Loss and confusion matrices of one split over one epoch: on the whole image (comparable to
/// the original tutorial) and inside the field of view (the DRIVE protocol).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Mean training loss per input (see [`crate::metrics::history::EpochRow`] for what an input is).
    pub loss: f64,
    /// Counts over whole images.
    pub image: Confusion,
    /// Counts inside the field of view.
    pub fov: Confusion,
}

/// `[tp, fp, fn, tn, tp, fp, fn, tn]` → (image, FOV) matrices.
pub fn split_counts(counts: &[i64]) -> (Confusion, Confusion) {
    let c = |i: usize| counts[i].max(0) as u64;
    (
        Confusion::new(c(0), c(1), c(2), c(3)),
        Confusion::new(c(4), c(5), c(6), c(7)),
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `a` is defined and within 1e-12 of `b`.
    pub(crate) fn close(a: Option<f64>, b: f64) {
        let a = a.expect("defined");
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }

    #[test]
    fn ratios_from_a_hand_computed_matrix() {
        // 10 pixels: truth 1111000000, pred 1100110000 → TP 2, FN 2, FP 2, TN 4.
        let truth = [1u8, 1, 1, 1, 0, 0, 0, 0, 0, 0];
        let pred = [1u8, 1, 0, 0, 1, 1, 0, 0, 0, 0];
        let c = Confusion::from_pixels(&pred, &truth, None);
        assert_eq!(c, Confusion::new(2, 2, 2, 4));
        close(c.accuracy(), 0.6);
        close(c.sensitivity(), 0.5);
        close(c.specificity(), 4.0 / 6.0);
        close(c.precision(), 0.5);
        close(c.f1(), 0.5);
        close(c.vessel_iou(), 2.0 / 6.0);
        close(c.background_iou(), 4.0 / 8.0);
        close(c.miou(), (1.0 / 3.0 + 0.5) / 2.0);
        // MCC = (2·4 − 2·2) / √(4·4·6·6) = 4 / 24.
        assert!((c.mcc() - 1.0 / 6.0).abs() < 1e-12);
        // Inside a mask covering the first 6 pixels: TP 2, FN 2, FP 2, TN 0.
        let mask = [1u8, 1, 1, 1, 1, 1, 0, 0, 0, 0];
        assert_eq!(
            Confusion::from_pixels(&pred, &truth, Some(&mask)),
            Confusion::new(2, 2, 2, 0)
        );
    }

    #[test]
    fn confusion_matrices_add_up() {
        let (a, b) = (Confusion::new(1, 0, 2, 10), Confusion::new(3, 4, 5, 6));
        assert_eq!(a + b, Confusion::new(4, 4, 7, 16));
        let mut c = a;
        c += b;
        assert_eq!(c, a + b);
    }

    #[test]
    fn empty_vessels_do_not_divide_by_zero() {
        let none = Confusion::new(0, 0, 0, 50);
        assert_eq!(none.sensitivity(), None);
        assert_eq!(none.precision(), None);
        assert_eq!(none.f1(), None);
        assert_eq!(none.vessel_iou(), None);
        close(none.specificity(), 1.0);
        close(none.accuracy(), 1.0);
        close(none.miou(), 1.0); // only the background IoU is defined
        assert_eq!(none.mcc(), 0.0);
        let false_alarm = Confusion::new(0, 5, 0, 45);
        close(false_alarm.vessel_iou(), 0.0);
        close(false_alarm.f1(), 0.0);
        assert_eq!(false_alarm.sensitivity(), None);
        assert_eq!(Confusion::default().accuracy(), None);
        assert_eq!(Confusion::default().miou(), None);
    }

    #[test]
    fn mcc_of_perfect_and_inverted_predictions() {
        assert!((Confusion::new(3, 0, 0, 7).mcc() - 1.0).abs() < 1e-12);
        assert!((Confusion::new(0, 7, 3, 0).mcc() + 1.0).abs() < 1e-12);
    }
}
