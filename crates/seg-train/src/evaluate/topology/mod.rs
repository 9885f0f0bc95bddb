//! Vessel trees, not pixel counts: topology scores of a binary prediction against the ground
//! truth, inside the FOV.
//!
//! - **clDice** (Shit et al., "clDice — a novel topology-preserving loss function for tubular
//!   structure segmentation", CVPR 2021): with `S(·)` the one-pixel-wide 8-connected skeleton
//!   ([`drive_data::skeleton::thin`]: Guo–Hall, as scikit-image's `thin`; the Skeleton Recall
//!   loss's tubes use the same thinning), topology precision `Tprec = |S(P) ∩ G| /
//!   |S(P)|`, topology sensitivity `Tsens = |S(G) ∩ P| / |S(G)|`, `clDice = 2·Tprec·Tsens /
//!   (Tprec + Tsens)`.
//! - **Skeleton recall** (as Kirchhoff et al., "Skeleton Recall Loss for connectivity conserving
//!   and resource efficient segmentation of thin tubular structures", ECCV 2024, measure it): the
//!   share of the ground truth's skeleton the prediction covers, `= Tsens`, also per vessel
//!   width ([`crate::evaluate::vessel_width`]: thin ≤ 2 px, thick).
//! - **Betti numbers** ([`components`]): β0, 8-connected vessel components, and β1, holes
//!   (loops of the vessel tree), of prediction and ground truth; the Betti errors `|β0(P) −
//!   β0(G)|`, `|β1(P) − β1(G)|`.
//!
//! P and G are restricted to the FOV first. Over a split, the skeleton counts are summed over
//! images before the ratios are taken (as the pixel scores are), and the Betti errors are the
//! mean over images.

pub mod components;

use drive_data::skeleton::thin;

use serde::{Deserialize, Serialize};

use crate::evaluate::vessel_width::WidthClass;

/// The counts behind the topology scores of one image, or summed over a split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyCounts {
    /// Images counted.
    pub images: u64,
    /// `|S(P)|`: pixels of the prediction's skeleton.
    pub pred_skeleton: u64,
    /// `|S(P) ∩ G|`.
    pub pred_skeleton_in_truth: u64,
    /// `|S(G)|` of thin and thick vessels.
    pub truth_skeleton: [u64; 2],
    /// `|S(G) ∩ P|` of thin and thick vessels.
    pub truth_skeleton_covered: [u64; 2],
    /// β0 of the prediction (summed over images).
    pub pred_components: u64,
    /// β0 of the ground truth.
    pub truth_components: u64,
    /// β1 of the prediction.
    pub pred_holes: u64,
    /// β1 of the ground truth.
    pub truth_holes: u64,
    /// `Σ |β0(P) − β0(G)|` over images.
    pub components_error: u64,
    /// `Σ |β1(P) − β1(G)|` over images.
    pub holes_error: u64,
}

impl TopologyCounts {
    /// The counts of one `width`×`height` image: binary prediction `pred`, ground truth `truth`,
    /// both restricted to `fov` (all row-major, ≠ 0 is set), and the ground truth's width
    /// `classes`.
    pub fn of(
        pred: &[u8],
        truth: &[u8],
        fov: &[u8],
        classes: &[WidthClass],
        width: usize,
        height: usize,
    ) -> Self {
        let inside = |m: &[u8]| -> Vec<u8> {
            m.iter()
                .zip(fov)
                .map(|(&v, &f)| u8::from(v != 0 && f != 0))
                .collect()
        };
        let (p, g) = (inside(pred), inside(truth));
        let (sp, sg) = (thin(&p, width, height), thin(&g, width, height));
        let mut c = Self {
            images: 1,
            ..Self::default()
        };
        for i in 0..p.len() {
            if sp[i] != 0 {
                c.pred_skeleton += 1;
                c.pred_skeleton_in_truth += u64::from(g[i] != 0);
            }
            if sg[i] != 0 {
                let k = usize::from(classes[i] == WidthClass::Thick);
                c.truth_skeleton[k] += 1;
                c.truth_skeleton_covered[k] += u64::from(p[i] != 0);
            }
        }
        let betti = |m: &[u8]| {
            (
                components::components(m, width, height) as u64,
                components::holes(m, width, height) as u64,
            )
        };
        let ((p0, p1), (g0, g1)) = (betti(&p), betti(&g));
        c.pred_components = p0;
        c.truth_components = g0;
        c.pred_holes = p1;
        c.truth_holes = g1;
        c.components_error = p0.abs_diff(g0);
        c.holes_error = p1.abs_diff(g1);
        c
    }

    /// The scores these counts give.
    pub fn scores(&self) -> TopologyScores {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let tprec = ratio(self.pred_skeleton_in_truth, self.pred_skeleton);
        let tsens = ratio(
            self.truth_skeleton_covered.iter().sum(),
            self.truth_skeleton.iter().sum(),
        );
        let cldice = match (tprec, tsens) {
            (Some(p), Some(s)) if p + s > 0.0 => Some(2.0 * p * s / (p + s)),
            (Some(_), Some(_)) => Some(0.0),
            _ => None,
        };
        let images = self.images.max(1) as f64;
        TopologyScores {
            cldice,
            tprec,
            tsens,
            skeleton_recall_thin: ratio(self.truth_skeleton_covered[0], self.truth_skeleton[0]),
            skeleton_recall_thick: ratio(self.truth_skeleton_covered[1], self.truth_skeleton[1]),
            betti0_error: self.components_error as f64 / images,
            betti1_error: self.holes_error as f64 / images,
            counts: *self,
        }
    }
}

impl std::ops::AddAssign for TopologyCounts {
    fn add_assign(&mut self, o: Self) {
        self.images += o.images;
        self.pred_skeleton += o.pred_skeleton;
        self.pred_skeleton_in_truth += o.pred_skeleton_in_truth;
        for k in 0..2 {
            self.truth_skeleton[k] += o.truth_skeleton[k];
            self.truth_skeleton_covered[k] += o.truth_skeleton_covered[k];
        }
        self.pred_components += o.pred_components;
        self.truth_components += o.truth_components;
        self.pred_holes += o.pred_holes;
        self.truth_holes += o.truth_holes;
        self.components_error += o.components_error;
        self.holes_error += o.holes_error;
    }
}

/// Topology scores inside the FOV (see the module docs); `None` where a ratio has no
/// denominator (an empty skeleton).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TopologyScores {
    /// clDice.
    pub cldice: Option<f64>,
    /// Topology precision `|S(P) ∩ G| / |S(P)|`.
    pub tprec: Option<f64>,
    /// Topology sensitivity `|S(G) ∩ P| / |S(G)|`: the skeleton recall.
    pub tsens: Option<f64>,
    /// Skeleton recall of the thin vessels (≤ 2 px).
    pub skeleton_recall_thin: Option<f64>,
    /// Skeleton recall of the thick vessels.
    pub skeleton_recall_thick: Option<f64>,
    /// Mean `|β0(P) − β0(G)|` over images.
    pub betti0_error: f64,
    /// Mean `|β1(P) − β1(G)|` over images.
    pub betti1_error: f64,
    /// The counts behind them.
    pub counts: TopologyCounts,
}

/// Rows of `#` (set) and `.` as a row-major 0/1 mask with its width and height (for tests).
#[cfg(test)]
pub(crate) fn mask(rows: &[&str]) -> (Vec<u8>, usize, usize) {
    let w = rows[0].len();
    let data = rows
        .iter()
        .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
        .collect();
    (data, w, rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cldice_of_hand_made_masks() {
        // Ground truth: a one-pixel line of 8 pixels (its own skeleton). Prediction: its left
        // 4 pixels, and a separate 3-pixel line elsewhere.
        let (g, w, h) = mask(&[
            "..........",
            ".########.",
            "..........",
            "......###.",
            "..........",
        ]);
        let (p, _, _) = mask(&[
            "..........",
            ".####.....",
            "..........",
            "......###.",
            "..........",
        ]);
        let fov = vec![1u8; w * h];
        let classes = vec![WidthClass::Thin; w * h];
        let c = TopologyCounts::of(&p, &g[..], &fov, &classes, w, h);
        // The truth is rows 1 only (row 3 belongs to the prediction alone).
        let g_only_row1: Vec<u8> = g
            .iter()
            .enumerate()
            .map(|(i, &v)| if i / w == 1 { v } else { 0 })
            .collect();
        let c1 = TopologyCounts::of(&p, &g_only_row1, &fov, &classes, w, h);
        // S(P) = P (7 pixels), 4 of them in G: Tprec 4/7. S(G) = G (8), 4 covered: Tsens 1/2.
        assert_eq!((c1.pred_skeleton, c1.pred_skeleton_in_truth), (7, 4));
        assert_eq!((c1.truth_skeleton[0], c1.truth_skeleton_covered[0]), (8, 4));
        let s = c1.scores();
        let (tp, ts) = (4.0 / 7.0, 0.5);
        assert!((s.cldice.unwrap() - 2.0 * tp * ts / (tp + ts)).abs() < 1e-12);
        // β0: prediction 2 components, truth 1.
        assert_eq!(
            (c1.pred_components, c1.truth_components, c1.components_error),
            (2, 1, 1)
        );
        // With the second line in the truth too, everything predicted is in the truth.
        assert_eq!(c.scores().tprec, Some(1.0));
        assert_eq!(c.truth_skeleton[0], 11);
        // Outside the FOV nothing counts.
        let no_fov = vec![0u8; w * h];
        let s = TopologyCounts::of(&p, &g, &no_fov, &classes, w, h).scores();
        assert_eq!((s.cldice, s.tprec, s.tsens), (None, None, None));
    }

    #[test]
    fn a_perfect_prediction_scores_one_and_split_counts_add_up() {
        let (g, w, h) = mask(&[
            ".......", //
            ".#####.", ".#...#.", ".#####.", ".......",
        ]);
        let fov = vec![1u8; w * h];
        let classes = vec![WidthClass::Thick; w * h];
        let c = TopologyCounts::of(&g, &g, &fov, &classes, w, h);
        let s = c.scores();
        assert_eq!(s.cldice, Some(1.0));
        assert_eq!(s.skeleton_recall_thick, Some(1.0));
        assert_eq!(s.skeleton_recall_thin, None);
        assert_eq!(
            (c.truth_holes, s.betti0_error, s.betti1_error),
            (1, 0.0, 0.0)
        );
        let mut sum = c;
        sum += TopologyCounts::of(&vec![0; w * h], &g, &fov, &classes, w, h);
        let s = sum.scores();
        assert_eq!(sum.images, 2);
        // The second image predicts nothing: β0 error 1, β1 error 1, half the skeleton covered.
        assert_eq!((s.betti0_error, s.betti1_error), (0.5, 0.5));
        assert_eq!(s.tsens, Some(0.5));
    }
}
