//! Training loss: cross-entropy on the main output + `aux_weight` × cross-entropy on the aux
//! output, with optional class weights, a Dice term for the vessel/background imbalance, and an
//! optional restriction to the field of view.

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

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
}

impl Default for LossConfig {
    fn default() -> Self {
        Self {
            aux_weight: 0.5,
            class_weights: None,
            dice_weight: 0.0,
            fov_only: false,
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

/// Soft Dice loss `1 − (2Σpt + 1) / (Σp + Σt + 1)` on the vessel probability of `[N, 2, H, W]`
/// logits, over the pixels where `mask` (if any) is 1.
pub fn dice_loss<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    mask: Option<Tensor<B, 3>>,
) -> Tensor<B, 1> {
    let prob = softmax(logits, 1).narrow(1, 1, 1).squeeze_dim::<3>(1);
    let truth = targets.float();
    let (prob, truth) = match mask {
        Some(m) => (prob * m.clone(), truth * m),
        None => (prob, truth),
    };
    let intersection = (prob.clone() * truth.clone()).sum();
    let total = prob.sum() + truth.sum();
    (intersection.mul_scalar(2.0).add_scalar(1.0) / total.add_scalar(1.0))
        .neg()
        .add_scalar(1.0)
}

/// The full training loss of one batch.
pub fn segmentation_loss<B: Backend>(
    config: &LossConfig,
    out: Tensor<B, 4>,
    aux: Option<Tensor<B, 4>>,
    targets: &Tensor<B, 3, Int>,
    fov: &Tensor<B, 3, Bool>,
) -> Tensor<B, 1> {
    let weights = pixel_weights(config, targets, fov);
    let mut loss = cross_entropy(out.clone(), targets.clone(), weights.clone());
    if let Some(aux) = aux.filter(|_| config.aux_weight != 0.0) {
        loss = loss + cross_entropy(aux, targets.clone(), weights).mul_scalar(config.aux_weight);
    }
    if config.dice_weight != 0.0 {
        let mask = config.fov_only.then(|| fov.clone().float());
        loss = loss + dice_loss(out, targets.clone(), mask).mul_scalar(config.dice_weight);
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
        )
        .into_scalar();
        let with_aux: f32 = segmentation_loss(
            &LossConfig::default(),
            logits(),
            Some(logits()),
            &targets(),
            &fov,
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
        let total: f32 = segmentation_loss(&config, logits(), None, &targets(), &fov).into_scalar();
        assert!((total - (main + 2.0 * dice)).abs() < 1e-6);
    }
}
