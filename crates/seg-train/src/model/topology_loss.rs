//! Topology-aware loss terms on the vessel probability, generic over the backend:
//!
//! - **soft-clDice** (S. Shit et al., "clDice — a novel topology-preserving loss function for
//!   tubular structure segmentation", CVPR 2021): soft skeletons by iterated min/max pooling
//!   ([`soft_skeleton`]), `Tprec = (Σ S(P)·G + 1) / (Σ S(P) + 1)`, `Tsens = (Σ S(G)·P + 1) /
//!   (Σ S(G) + 1)`, loss `1 − 2·Tprec·Tsens / (Tprec + Tsens)`; combined with soft Dice as
//!   `(1 − α)·Dice + α·clDice` (the paper's reference: 3 iterations, α = 0.5, smoothing 1).
//! - **Skeleton Recall** (Y. Kirchhoff et al., "Skeleton Recall Loss for connectivity conserving
//!   and resource efficient segmentation of thin tubular structures", ECCV 2024): the soft recall
//!   `(Σ P·T + 1) / (Σ T + 1)` of the ground truth's *tubed* skeleton `T` (computed by the data
//!   pipeline: [`drive_data::skeleton::tube`]); the loss is `1 − recall` (the reference returns
//!   `−recall`: the same gradient, shifted so a perfect prediction scores 0).
//!
//! Sums run over the whole batch (as the references' 2-D settings do). Every input is `[N, H,
//! W]`: `prob` the predicted vessel probability, `truth` the 0/1 labels; a `mask` (the field of
//! view) multiplies both first.

use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::max_pool2d;

/// Max pooling with stride 1 and "same" padding (the padding never wins: it is −∞).
fn pool<B: Backend>(x: Tensor<B, 4>, kernel: [usize; 2]) -> Tensor<B, 4> {
    max_pool2d(
        x,
        kernel,
        [1, 1],
        [kernel[0] / 2, kernel[1] / 2],
        [1, 1],
        false,
    )
}

/// Soft erosion of `[N, C, H, W]` maps: the minimum over the plus-shaped 3×3 neighbourhood, as
/// the smaller of a 3×1 and a 1×3 min pooling (`min = −max(−x)`).
pub fn soft_erode<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let vertical = pool(x.clone().neg(), [3, 1]).neg();
    let horizontal = pool(x.neg(), [1, 3]).neg();
    vertical.min_pair(horizontal)
}

/// Soft dilation: 3×3 max pooling.
pub fn soft_dilate<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    pool(x, [3, 3])
}

/// Soft opening: dilation of the erosion.
pub fn soft_open<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    soft_dilate(soft_erode(x))
}

/// The soft skeleton of `[N, C, H, W]` maps in `[0, 1]`: what opening removes, accumulated over
/// `iterations` erosions (`skel += relu(δ − skel·δ)`, δ = `relu(x − open(x))`). On a binary mask
/// it is binary and lies inside the mask.
pub fn soft_skeleton<B: Backend>(x: Tensor<B, 4>, iterations: usize) -> Tensor<B, 4> {
    let mut x = x;
    let mut skeleton = relu(x.clone() - soft_open(x.clone()));
    for _ in 0..iterations {
        x = soft_erode(x);
        let delta = relu(x.clone() - soft_open(x.clone()));
        skeleton = skeleton.clone() + relu(delta.clone() - skeleton * delta);
    }
    skeleton
}

fn masked<B: Backend>(x: Tensor<B, 3>, mask: Option<&Tensor<B, 3>>) -> Tensor<B, 3> {
    match mask {
        Some(m) => x * m.clone(),
        None => x,
    }
}

/// Soft Dice loss `1 − (2Σpt + 1) / (Σp + Σt + 1)`.
pub fn soft_dice<B: Backend>(prob: Tensor<B, 3>, truth: Tensor<B, 3>) -> Tensor<B, 1> {
    let intersection = (prob.clone() * truth.clone()).sum();
    let total = prob.sum() + truth.sum();
    (intersection.mul_scalar(2.0).add_scalar(1.0) / total.add_scalar(1.0))
        .neg()
        .add_scalar(1.0)
}

/// The soft clDice score `2·Tprec·Tsens / (Tprec + Tsens)` (1 when the soft skeletons lie inside
/// each other's masks).
pub fn soft_cldice<B: Backend>(
    prob: Tensor<B, 3>,
    truth: Tensor<B, 3>,
    iterations: usize,
) -> Tensor<B, 1> {
    let skel_pred = soft_skeleton(prob.clone().unsqueeze_dim::<4>(1), iterations).squeeze_dim(1);
    let skel_true = soft_skeleton(truth.clone().unsqueeze_dim::<4>(1), iterations).squeeze_dim(1);
    let tprec = (skel_pred.clone() * truth).sum().add_scalar(1.0) / skel_pred.sum().add_scalar(1.0);
    let tsens = (skel_true.clone() * prob).sum().add_scalar(1.0) / skel_true.sum().add_scalar(1.0);
    (tprec.clone() * tsens.clone()).mul_scalar(2.0) / (tprec + tsens)
}

/// `(1 − α)·Dice + α·clDice` over the pixels where `mask` (if any) is 1: the paper's
/// `soft_dice_cldice`.
pub fn dice_cldice_loss<B: Backend>(
    prob: Tensor<B, 3>,
    truth: Tensor<B, 3>,
    mask: Option<&Tensor<B, 3>>,
    alpha: f64,
    iterations: usize,
) -> Tensor<B, 1> {
    let (prob, truth) = (masked(prob, mask), masked(truth, mask));
    let dice = soft_dice(prob.clone(), truth.clone());
    let cldice = soft_cldice(prob, truth, iterations).neg().add_scalar(1.0);
    dice.mul_scalar(1.0 - alpha) + cldice.mul_scalar(alpha)
}

/// Skeleton Recall loss `1 − (Σ P·T + 1) / (Σ T + 1)` of the tubed skeleton `tube` (0/1).
pub fn skeleton_recall_loss<B: Backend>(
    prob: Tensor<B, 3>,
    tube: Tensor<B, 3>,
    mask: Option<&Tensor<B, 3>>,
) -> Tensor<B, 1> {
    let tube = masked(tube, mask);
    let covered = (prob * tube.clone()).sum().add_scalar(1.0);
    (covered / tube.sum().add_scalar(1.0)).neg().add_scalar(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::loss::{segmentation_loss, LossConfig, TopologyLoss};
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::DType;

    type B = Flex;

    /// A `[1, H, W]` map from rows of digits: each digit `d` is `d / 10` (`#` is 1, `.` is 0).
    fn map(rows: &[&str]) -> Tensor<B, 3> {
        let (h, w) = (rows.len(), rows[0].len());
        let values: Vec<f64> = rows
            .iter()
            .flat_map(|r| {
                r.bytes().map(|b| match b {
                    b'#' => 1.0,
                    b'.' => 0.0,
                    d => f64::from(d - b'0') / 10.0,
                })
            })
            .collect();
        Tensor::from_data(
            TensorData::new(values, [1, h, w]),
            (&Default::default(), DType::F64),
        )
    }

    fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
        t.into_data().iter::<f64>().collect()
    }

    fn scalar(t: Tensor<B, 1>) -> f64 {
        values(t)[0]
    }

    #[test]
    fn the_soft_skeleton_of_a_three_pixel_bar_is_its_middle_row() {
        // Erosion keeps the middle row (its plus-neighbourhood is inside the bar; the image's
        // border is ignored), opening gives the bar back, so the first δ is 0; the next
        // iteration's δ is the middle row (a 1-pixel line's opening is empty), and after that
        // nothing is left to erode.
        let bar = map(&["......", "######", "######", "######", "......"]);
        let skeleton = soft_skeleton(bar.unsqueeze_dim::<4>(1), 3).squeeze_dim::<3>(1);
        let middle = map(&["......", "......", "######", "......", "......"]);
        assert_eq!(values(skeleton), values(middle));
        // A 1-pixel line is its own skeleton, at any iteration count.
        let line = map(&[".....", ".###.", "....."]);
        let skeleton = soft_skeleton(line.clone().unsqueeze_dim::<4>(1), 0).squeeze_dim::<3>(1);
        assert_eq!(values(skeleton), values(line));
    }

    #[test]
    fn half_confident_line_by_hand() {
        // Truth: a 6-pixel line; prediction 0.5 on it. S(P) = 0.5 on the line, S(G) = the line:
        // Tprec = (3 + 1) / (3 + 1) = 1, Tsens = (3 + 1) / (6 + 1) = 4/7, clDice = 8/11;
        // Dice = 1 − (2·3 + 1) / (3 + 6 + 1) = 3/10; α = ½: ½·3/10 + ½·3/11.
        let truth = map(&["........", ".######.", "........"]);
        let prob = map(&["........", ".555555.", "........"]);
        let cl = scalar(soft_cldice(prob.clone(), truth.clone(), 3));
        assert!((cl - 8.0 / 11.0).abs() < 1e-12, "{cl}");
        let loss = scalar(dice_cldice_loss(prob.clone(), truth.clone(), None, 0.5, 3));
        assert!((loss - (0.15 + 1.5 / 11.0)).abs() < 1e-12, "{loss}");
        // The tube of a 1-pixel line is the line: recall (3 + 1) / (6 + 1).
        let recall = scalar(skeleton_recall_loss(prob.clone(), truth.clone(), None));
        assert!((recall - 3.0 / 7.0).abs() < 1e-12, "{recall}");
        // Outside a mask nothing counts: masking the line's right half leaves 3 pixels.
        let mask = map(&["####....", "####....", "####...."]);
        let recall = scalar(skeleton_recall_loss(prob, truth, Some(&mask)));
        assert!((recall - (1.0 - 2.5 / 4.0)).abs() < 1e-12, "{recall}");
    }

    #[test]
    fn perfect_predictions_cost_nothing_and_a_cut_vessel_costs() {
        let truth = map(&[
            "..........",
            "..###.....",
            "..#######.",
            "..###...#.",
            ".##.....#.",
            ".#......##",
        ]);
        let [_, h, w] = truth.dims();
        let labels: Vec<u8> = values(truth.clone()).iter().map(|&v| v as u8).collect();
        let tube: Vec<f64> = drive_data::skeleton::tube(&labels, w, h)
            .into_iter()
            .map(f64::from)
            .collect();
        let tube = Tensor::<B, 3>::from_data(
            TensorData::new(tube, [1, h, w]),
            (&Default::default(), DType::F64),
        );
        let cl = scalar(dice_cldice_loss(truth.clone(), truth.clone(), None, 0.5, 3));
        let recall = scalar(skeleton_recall_loss(truth.clone(), tube.clone(), None));
        assert_eq!((cl, recall), (0.0, 0.0));
        // The same tree cut in two (column 5 of row 2 removed): both rise.
        let cut = map(&[
            "..........",
            "..###.....",
            "..###.###.",
            "..###...#.",
            ".##.....#.",
            ".#......##",
        ]);
        assert!(scalar(dice_cldice_loss(cut.clone(), truth, None, 0.5, 3)) > 0.01);
        assert!(scalar(skeleton_recall_loss(cut, tube, None)) > 0.01);
    }

    /// Central finite differences of the whole training loss against its autodiff gradient, in
    /// f64, for a topology term.
    fn check_gradient(topology: TopologyLoss, fov_only: bool) {
        type A = Autodiff<Flex>;
        let device = Default::default();
        let (n, h, w) = (2, 7, 8);
        // Deterministic pseudo-random logits and a vessel-like target (two crossing lines).
        let logits: Vec<f64> = (0..n * 2 * h * w)
            .map(|i| ((i as f64 * 12.9898).sin() * 43758.5453).fract() * 3.0)
            .collect();
        let targets: Vec<i64> = (0..n * h * w)
            .map(|i| {
                let (y, x) = ((i / w) % h, i % w);
                i64::from(y == 3 || x == 2 + i / (h * w) || (y == 5 && x > 4))
            })
            .collect();
        let fov: Vec<bool> = (0..n * h * w).map(|i| i % w != 0).collect();
        let config = LossConfig {
            aux_weight: 0.0,
            dice_weight: 1.0,
            fov_only,
            topology,
            ..LossConfig::default()
        };
        let loss_of = |values: &[f64]| -> f64 {
            let logits = Tensor::<B, 4>::from_data(
                TensorData::new(values.to_vec(), [n, 2, h, w]),
                (&device, DType::F64),
            );
            let targets = Tensor::<B, 3, Int>::from_data(
                TensorData::new(targets.clone(), [n, h, w]),
                &device,
            );
            let fov =
                Tensor::<B, 3, Bool>::from_data(TensorData::new(fov.clone(), [n, h, w]), &device);
            scalar(segmentation_loss(
                &config, logits, None, &targets, &fov, None,
            ))
        };
        let input = Tensor::<A, 4>::from_data(
            TensorData::new(logits.clone(), [n, 2, h, w]),
            (&device, DType::F64),
        )
        .require_grad();
        let targets_t =
            Tensor::<A, 3, Int>::from_data(TensorData::new(targets.clone(), [n, h, w]), &device);
        let fov_t =
            Tensor::<A, 3, Bool>::from_data(TensorData::new(fov.clone(), [n, h, w]), &device);
        let loss = segmentation_loss(&config, input.clone(), None, &targets_t, &fov_t, None);
        let grads = loss.backward();
        let analytic: Vec<f64> = input
            .grad(&grads)
            .expect("gradient of the logits")
            .into_data()
            .iter::<f64>()
            .collect();
        let step = 1e-6;
        let (mut diff, mut norm) = (0.0, 0.0);
        for i in 0..logits.len() {
            let mut plus = logits.clone();
            plus[i] += step;
            let mut minus = logits.clone();
            minus[i] -= step;
            let numeric = (loss_of(&plus) - loss_of(&minus)) / (2.0 * step);
            diff += (numeric - analytic[i]).powi(2);
            norm += numeric.powi(2);
        }
        let relative = (diff / norm).sqrt();
        assert!(
            relative <= 1e-6,
            "{topology:?} (FOV only: {fov_only}): relative gradient error {relative:e}"
        );
    }

    #[test]
    fn cldice_gradients_match_finite_differences_in_f64() {
        check_gradient(TopologyLoss::ClDice, false);
        check_gradient(TopologyLoss::ClDice, true);
    }

    #[test]
    fn skeleton_recall_gradients_match_finite_differences_in_f64() {
        check_gradient(TopologyLoss::SkeletonRecall, false);
        check_gradient(TopologyLoss::SkeletonRecall, true);
    }
}
