//! Whole-image inference at the original resolution: resize to the model's input size, predict,
//! and bring the vessel probability back to the image's size (bilinear, `align_corners = false`).

use burn::prelude::*;
use burn::tensor::activation::softmax;
use deeplab::upsample::resize_bilinear;
use deeplab::DeepLabV3;
use drive_data::augment::{warp, AugmentParams};
use drive_data::{Normalization, Sample};

/// Vessel probability logits → probabilities for `[N, 2, H, W]` logits: `[N, H, W]`.
fn vessel_probability<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 3> {
    softmax(logits, 1).narrow(1, 1, 1).squeeze_dim::<3>(1)
}

/// The model's input for `sample`: `[1, 3, size, size]`, normalised, optionally mirrored.
fn input<B: Backend>(
    sample: &Sample,
    size: usize,
    normalization: &Normalization,
    hflip: bool,
    device: &B::Device,
) -> Tensor<B, 4> {
    let params = AugmentParams {
        hflip,
        ..AugmentParams::identity()
    };
    let warped = warp(sample, [size, size], &params, normalization);
    Tensor::from_data(TensorData::new(warped.image, [1, 3, size, size]), device)
}

/// Vessel probability of `sample` at its original resolution, row-major `height × width`.
/// With `tta`, the average of the image and its horizontal mirror (mirrored back).
/// `model` must be in inference mode (a non-autodiff backend, e.g. `model.valid()`).
pub fn predict_probability<B: Backend>(
    model: &DeepLabV3<B>,
    sample: &Sample,
    imgsz: usize,
    normalization: &Normalization,
    tta: bool,
    device: &B::Device,
) -> Vec<f32> {
    let [w0, h0] = sample.size().map(|v| v as usize);
    let mut prob = vessel_probability(
        model
            .forward(input(sample, imgsz, normalization, false, device))
            .out,
    );
    if tta {
        let mirrored = model
            .forward(input(sample, imgsz, normalization, true, device))
            .out;
        let mirrored = vessel_probability(mirrored).flip([2]);
        prob = (prob + mirrored).mul_scalar(0.5);
    }
    let full = resize_bilinear(prob.unsqueeze_dim::<4>(1), [h0, w0]);
    full.into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 data")
}
