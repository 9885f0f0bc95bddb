//! Whole-image inference at the original resolution: resize to the model's input size, predict,
//! and bring the vessel probability back to the image's size (bilinear, `align_corners = false`).

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use deeplab::upsample::resize_bilinear;
use deeplab::DeepLab;
use drive_data::augment::{warp, AugmentParams};
use drive_data::{Normalization, Sample};

use crate::model::{Tiling, Window};

/// The vessel probability `[N, H, W]` of `[N, C, H, W]` logits: the softmax's class 1 for two
/// classes, the sigmoid of a single one (SMP's `classes=1` binary models).
fn vessel_probability<B: Backend>(logits: Tensor<B, 4>) -> Tensor<B, 3> {
    if logits.dims()[1] == 1 {
        return sigmoid(logits).squeeze_dim::<3>(1);
    }
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
    model: &DeepLab<B>,
    sample: &Sample,
    imgsz: usize,
    normalization: &Normalization,
    tta: bool,
    device: &B::Device,
) -> Vec<f32> {
    let logits = model
        .forward(input(sample, imgsz, normalization, false, device))
        .out;
    if !tta {
        return probability_at(logits, sample.size());
    }
    let [w0, h0] = sample.size().map(|v| v as usize);
    let mirrored = model
        .forward(input(sample, imgsz, normalization, true, device))
        .out;
    let mirrored = vessel_probability(mirrored).flip([2]);
    let prob = (vessel_probability(logits) + mirrored).mul_scalar(0.5);
    to_host(resize_bilinear(prob.unsqueeze_dim::<4>(1), [h0, w0]))
}

/// [`predict_probability`] (without TTA) of several whole images in one forward pass: the
/// images resized to `imgsz` and stacked into one batch.
pub fn predict_probability_batch<B: Backend>(
    model: &DeepLab<B>,
    samples: &[&Sample],
    imgsz: usize,
    normalization: &Normalization,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    if samples.is_empty() {
        return Vec::new();
    }
    let inputs = samples
        .iter()
        .map(|s| input(s, imgsz, normalization, false, device))
        .collect();
    let logits = model.forward(Tensor::cat(inputs, 0)).out;
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| probability_at(logits.clone().narrow(0, i, 1), s.size()))
        .collect()
}

/// The vessel probability of `[1, 2, h, w]` logits at `[width, height]` (bilinear,
/// `align_corners = false`), row-major: what [`predict_probability`] returns for them.
pub fn probability_at<B: Backend>(logits: Tensor<B, 4>, [width, height]: [u32; 2]) -> Vec<f32> {
    let prob = vessel_probability(logits).unsqueeze_dim::<4>(1);
    to_host(resize_bilinear(prob, [height as usize, width as usize]))
}

fn to_host<B: Backend>(prob: Tensor<B, 4>) -> Vec<f32> {
    prob.into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 data")
}

/// Blending weight of position `i` in a window of length `n`: 1 in the middle, falling linearly
/// to a small floor at the edges over `ramp` pixels.
fn ramp(i: usize, n: usize, ramp: usize) -> f32 {
    if ramp == 0 {
        return 1.0;
    }
    let d = i.min(n - 1 - i) as f32 + 0.5;
    (d / ramp as f32).clamp(0.05, 1.0)
}

/// `sample` cropped to `window` (image, vessel mask if any, FOV).
pub fn crop(sample: &Sample, window: Window) -> Sample {
    let Window {
        x,
        y,
        width,
        height,
    } = window;
    let cut = |img: &image::GrayImage| {
        image::imageops::crop_imm(img, x as u32, y as u32, width as u32, height as u32).to_image()
    };
    Sample {
        id: sample.id,
        image_path: sample.image_path.clone(),
        image: image::imageops::crop_imm(
            &sample.image,
            x as u32,
            y as u32,
            width as u32,
            height as u32,
        )
        .to_image(),
        vessels: sample.vessels.as_ref().map(cut),
        fov: cut(&sample.fov),
        fov_derived: sample.fov_derived,
    }
}

/// Vessel probability at the original resolution, by sliding windows (see [`Tiling`]).
pub fn predict_probability_tiled<B: Backend>(
    model: &DeepLab<B>,
    sample: &Sample,
    imgsz: usize,
    normalization: &Normalization,
    tta: bool,
    tiling: Tiling,
    device: &B::Device,
) -> Vec<f32> {
    blend_windows(sample, tiling, |window| {
        predict_probability(model, window, imgsz, normalization, tta, device)
    })
}

/// The sliding-window blend of [`predict_probability_tiled`], with `predict` giving each window's
/// probability at the window's size (the window is [`crop`]ped from `sample`); a single window
/// is `predict(sample)` itself.
pub fn blend_windows(
    sample: &Sample,
    tiling: Tiling,
    mut predict: impl FnMut(&Sample) -> Vec<f32>,
) -> Vec<f32> {
    let [w0, h0] = sample.size().map(|v| v as usize);
    let windows = tiling.windows([w0, h0]);
    if windows.len() == 1 {
        return predict(sample);
    }
    let ramp_len = (tiling.tile as f64 * tiling.overlap / 2.0).round() as usize;
    let mut sum = vec![0f32; w0 * h0];
    let mut weight = vec![0f32; w0 * h0];
    for window in windows {
        let prob = predict(&crop(sample, window));
        let (tw, th) = (window.width, window.height);
        for j in 0..th {
            let wy = ramp(j, th, ramp_len);
            for i in 0..tw {
                let wgt = wy * ramp(i, tw, ramp_len);
                let o = (window.y + j) * w0 + window.x + i;
                sum[o] += prob[j * tw + i] * wgt;
                weight[o] += wgt;
            }
        }
    }
    sum.iter().zip(&weight).map(|(s, w)| s / w).collect()
}
