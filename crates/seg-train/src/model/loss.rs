//! Training loss: cross-entropy on the main output + `aux_weight` × cross-entropy on the aux
//! output, with optional class weights, a Dice term for the vessel/background imbalance, an
//! optional topology-aware term ([`TopologyLoss`]: soft-clDice or Skeleton Recall, from
//! [`super::topology_loss`]), and an optional restriction to the field of view.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::topology_loss::{dice_cldice_loss, skeleton_recall_loss};

/// The topology-aware term of the loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TopologyLoss {
    /// None: cross-entropy (+ aux) + `dice_weight` × Dice.
    #[default]
    None,
    /// soft-clDice: the Dice term becomes `(1 − α)·Dice + α·clDice` (same `dice_weight`, which
    /// must then be > 0).
    #[serde(rename = "cldice")]
    ClDice,
    /// Skeleton Recall: `skeleton_recall_weight` × (1 − recall of the labels' tubed skeleton)
    /// is added.
    SkeletonRecall,
}

fn default_alpha() -> f64 {
    0.5
}

fn default_iterations() -> usize {
    3
}

fn default_one() -> f64 {
    1.0
}

/// Loss settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LossConfig {
    /// Weight of the aux head's cross-entropy (torchvision's reference: 0.5; the original tutorial
    /// trained without it: 0).
    pub aux_weight: f64,
    /// Per-class weights `[background, vessel]` of the cross-entropy (PyTorch's `weight=`
    /// semantics: a weighted mean); `None` = unweighted.
    pub class_weights: Option<[f32; 2]>,
    /// Weight of a soft Dice loss on the main output's vessel probability; 0 disables.
    pub dice_weight: f64,
    /// Count only pixels inside the field of view.
    pub fov_only: bool,
    /// The topology-aware term (absent in settings saved before it existed: none).
    #[serde(default)]
    pub topology: TopologyLoss,
    /// soft-clDice's α, the share of clDice in the Dice term (the paper's reference: 0.5).
    #[serde(default = "default_alpha")]
    pub cldice_alpha: f64,
    /// soft-clDice's soft-skeleton iterations (the paper's reference: 3).
    #[serde(default = "default_iterations")]
    pub cldice_iterations: usize,
    /// Weight of the Skeleton Recall term (the paper's default: 1).
    #[serde(default = "default_one")]
    pub skeleton_recall_weight: f64,
}

impl LossConfig {
    /// Whether batches must carry the labels' tubed skeletons
    /// ([`drive_data::SegBatcher::with_skeletons`]).
    pub fn needs_skeletons(&self) -> bool {
        self.topology == TopologyLoss::SkeletonRecall
    }
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            aux_weight: 0.5,
            class_weights: None,
            dice_weight: 0.0,
            fov_only: false,
            topology: TopologyLoss::None,
            cldice_alpha: default_alpha(),
            cldice_iterations: default_iterations(),
            skeleton_recall_weight: default_one(),
        }
    }
}

/// Per-pixel weights `[N, H, W]`: class weight of the target, zero outside the FOV if restricted.
fn pixel_weights<B: Backend>(
    config: &LossConfig,
    targets: &Tensor<B, 3, Int>,
    fov: &Tensor<B, 3, Bool>,
) -> Option<Tensor<B, 3>> {
    let mut weights: Option<Tensor<B, 3>> = None;
    if let Some([bg, vessel]) = config.class_weights {
        let t = targets.clone().float();
        weights = Some(t.clone().mul_scalar(vessel) + t.neg().add_scalar(1.0).mul_scalar(bg));
    }
    if config.fov_only {
        let inside = fov.clone().float();
        weights = Some(match weights {
            Some(w) => w * inside,
            None => inside,
        });
    }
    weights
}

/// Cross-entropy of `[N, C, H, W]` logits against `[N, H, W]` class ids, averaged over pixels
/// (weighted mean when `weights` is given, as PyTorch's `F.cross_entropy(weight=...)`).
pub fn cross_entropy<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    weights: Option<Tensor<B, 3>>,
) -> Tensor<B, 1> {
    let nll = log_softmax(logits, 1)
        .gather(1, targets.unsqueeze_dim::<4>(1))
        .neg()
        .squeeze_dim::<3>(1);
    match weights {
        None => nll.mean(),
        // A tiny floor keeps an all-outside batch finite (its loss is then 0).
        Some(w) => (nll * w.clone()).sum() / w.sum().clamp_min(1e-6),
    }
}

/// The vessel probability `[N, H, W]` of `[N, 2, H, W]` logits.
fn vessel_probability<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 3> {
    softmax(logits, 1).narrow(1, 1, 1).squeeze_dim::<3>(1)
}

/// Soft Dice loss `1 − (2Σpt + 1) / (Σp + Σt + 1)` on the vessel probability of `[N, 2, H, W]`
/// logits, over the pixels where `mask` (if any) is 1.
pub fn dice_loss<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    mask: Option<Tensor<B, 3>>,
) -> Tensor<B, 1> {
    let prob = vessel_probability(logits);
    let truth = targets.float().cast(prob.dtype());
    let (prob, truth) = match mask {
        Some(m) => (prob * m.clone(), truth * m),
        None => (prob, truth),
    };
    super::topology_loss::soft_dice(prob, truth)
}

/// The tubed skeletons of `[N, H, W]` class ids, computed on the host (for batches made without
/// [`drive_data::SegBatcher::with_skeletons`]).
pub fn tubes_of<B: Backend>(targets: &Tensor<B, 3, Int>) -> Tensor<B, 3> {
    let [n, h, w] = targets.dims();
    let labels: Vec<u8> = targets
        .to_data()
        .iter::<i64>()
        .map(|v| u8::from(v != 0))
        .collect();
    let tubes: Vec<f32> = labels
        .chunks(h * w)
        .flat_map(|one| drive_data::skeleton::tube(one, w, h))
        .map(f32::from)
        .collect();
    Tensor::from_data(TensorData::new(tubes, [n, h, w]), &targets.device())
}

/// A `[N, H, W]` 0/1 tensor of the logits' float type (the device's default float type may be
/// another).
fn as_float_like<B: Backend>(x: Tensor<B, 3>, like: &Tensor<B, 4>) -> Tensor<B, 3> {
    x.cast(like.dtype())
}

/// The full training loss of one batch. `skeletons` are the labels' tubed skeletons (the
/// batch's, when its batcher made them); the Skeleton Recall term computes them from `targets`
/// when they are not given.
pub fn segmentation_loss<B: Backend>(
    config: &LossConfig,
    out: Tensor<B, 4>,
    aux: Option<Tensor<B, 4>>,
    targets: &Tensor<B, 3, Int>,
    fov: &Tensor<B, 3, Bool>,
    skeletons: Option<&Tensor<B, 3>>,
) -> Tensor<B, 1> {
    let weights = pixel_weights(config, targets, fov).map(|w| w.cast(out.dtype()));
    let mut loss = cross_entropy(out.clone(), targets.clone(), weights.clone());
    if let Some(aux) = aux.filter(|_| config.aux_weight != 0.0) {
        loss = loss + cross_entropy(aux, targets.clone(), weights).mul_scalar(config.aux_weight);
    }
    let mask = config
        .fov_only
        .then(|| as_float_like(fov.clone().float(), &out));
    if config.dice_weight != 0.0 {
        let dice = match config.topology {
            TopologyLoss::ClDice => dice_cldice_loss(
                vessel_probability(out.clone()),
                as_float_like(targets.clone().float(), &out),
                mask.as_ref(),
                config.cldice_alpha,
                config.cldice_iterations,
            ),
            _ => dice_loss(out.clone(), targets.clone(), mask.clone()),
        };
        loss = loss + dice.mul_scalar(config.dice_weight);
    }
    if config.topology == TopologyLoss::SkeletonRecall && config.skeleton_recall_weight != 0.0 {
        let tubes = match skeletons {
            Some(s) => s.clone(),
            None => tubes_of(targets),
        };
        let tubes = as_float_like(tubes, &out);
        let recall = skeleton_recall_loss(vessel_probability(out), tubes, mask.as_ref());
        loss = loss + recall.mul_scalar(config.skeleton_recall_weight);
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn logits() -> Tensor<Flex, 4> {
        // One image 1×2 pixels, 2 classes: pixel 0 logits (0, ln 3), pixel 1 (0, 0).
        Tensor::from_data(
            TensorData::new(vec![0.0f32, 0.0, 3f32.ln(), 0.0], [1, 2, 1, 2]),
            &Default::default(),
        )
    }

    fn targets() -> Tensor<Flex, 3, Int> {
        Tensor::from_data(
            TensorData::new(vec![1i32, 0], [1, 1, 2]),
            &Default::default(),
        )
    }

    #[test]
    fn cross_entropy_by_hand() {
        // Pixel 0: p(vessel) = 3/4 → −ln 0.75; pixel 1: p(bg) = 1/2 → ln 2.
        let loss: f32 = cross_entropy(logits(), targets(), None).into_scalar();
        let expected = ((-(0.75f64).ln()) + 2f64.ln()) / 2.0;
        assert!(
            (loss as f64 - expected).abs() < 1e-6,
            "{loss} vs {expected}"
        );
        // Class weights [1, 3]: (3·(−ln .75) + 1·ln 2) / 4.
        let config = LossConfig {
            class_weights: Some([1.0, 3.0]),
            ..LossConfig::default()
        };
        let fov = Tensor::<Flex, 3, Bool>::from_data(
            TensorData::new(vec![true, false], [1, 1, 2]),
            &Default::default(),
        );
        let w = pixel_weights(&config, &targets(), &fov);
        let loss: f32 = cross_entropy(logits(), targets(), w).into_scalar();
        let expected = (3.0 * -(0.75f64).ln() + 2f64.ln()) / 4.0;
        assert!((loss as f64 - expected).abs() < 1e-6);
        // FOV only: pixel 0 alone.
        let config = LossConfig {
            fov_only: true,
            ..LossConfig::default()
        };
        let w = pixel_weights(&config, &targets(), &fov);
        let loss: f32 = cross_entropy(logits(), targets(), w).into_scalar();
        assert!((loss as f64 + 0.75f64.ln()).abs() < 1e-6);
    }

    #[test]
    fn aux_and_dice_terms_add_up() {
        let fov = Tensor::<Flex, 3, Bool>::from_data(
            TensorData::new(vec![true, true], [1, 1, 2]),
            &Default::default(),
        );
        let main: f32 = segmentation_loss(
            &LossConfig {
                aux_weight: 0.0,
                ..Default::default()
            },
            logits(),
            None,
            &targets(),
            &fov,
            None,
        )
        .into_scalar();
        let with_aux: f32 = segmentation_loss(
            &LossConfig::default(),
            logits(),
            Some(logits()),
            &targets(),
            &fov,
            None,
        )
        .into_scalar();
        assert!((with_aux - 1.5 * main).abs() < 1e-6);
        // Dice: p = (0.75, 0.5), t = (1, 0): 1 − (2·0.75 + 1) / (1.25 + 1 + 1).
        let dice: f32 = dice_loss(logits(), targets(), None).into_scalar();
        assert!((dice as f64 - (1.0 - 2.5 / 3.25)).abs() < 1e-6);
        let config = LossConfig {
            aux_weight: 0.0,
            dice_weight: 2.0,
            ..Default::default()
        };
        let total: f32 =
            segmentation_loss(&config, logits(), None, &targets(), &fov, None).into_scalar();
        assert!((total - (main + 2.0 * dice)).abs() < 1e-6);
    }
}
