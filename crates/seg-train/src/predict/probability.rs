//! Inference at the original resolution: each image, or each sliding window of it, resized to
//! the model's input size, predicted, and its vessel probability brought back to its size
//! (bilinear, `align_corners = false`); windows blended by [`Blend`]. Many inputs (whole images
//! or windows, of one image or several) go through the model together, `batch` at a time
//! ([`predict_probabilities`]); [`predict_probability_tiled`] is the one-window-at-a-time path.

use std::any::TypeId;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softmax};
use deeplab::upsample::resize_bilinear;
use deeplab::DeepLab;
use drive_data::augment::{warp, AugmentParams};
use drive_data::{Normalization, Sample};
use rayon::prelude::*;

use crate::model::Tiling;
pub use crate::predict::blend::crop;
use crate::predict::blend::{windows_of, Blend};

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
    let image = input_values(sample, size, normalization, hflip);
    Tensor::from_data(TensorData::new(image, [1, 3, size, size]), device)
}

/// [`input`]'s values, `[3, size, size]` row-major.
fn input_values(
    sample: &Sample,
    size: usize,
    normalization: &Normalization,
    hflip: bool,
) -> Vec<f32> {
    let params = AugmentParams {
        hflip,
        ..AugmentParams::identity()
    };
    warp(sample, [size, size], &params, normalization).image
}

/// The model's input for all of `samples`, `[N, 3, size, size]`: each sample's values
/// ([`input_values`]) computed on the CPU's threads in parallel, then one tensor.
fn batch_input<B: Backend>(
    samples: &[&Sample],
    size: usize,
    normalization: &Normalization,
    hflip: bool,
    device: &B::Device,
) -> Tensor<B, 4> {
    let values: Vec<Vec<f32>> = samples
        .par_iter()
        .map(|s| input_values(s, size, normalization, hflip))
        .collect();
    let data = TensorData::new(values.concat(), [samples.len(), 3, size, size]);
    Tensor::from_data(data, device)
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
    let mut blend = Blend::new(sample.size(), tiling);
    for window in tiling.windows(blend.size()) {
        let part = crop(sample, window);
        let prob = predict_probability(model, &part, imgsz, normalization, tta, device);
        blend.add(window, &prob);
    }
    blend.finish()
}

/// Model inputs per forward pass when none is given: as many as make 2¹⁸ pixels on the CPU (64
/// windows of 64 × 64, 4 inputs of 256 × 256, one of 512 × 512) and 2²⁰ on a GPU (4 of
/// 512 × 512), from 1 to 64. On the CPU a batch of two or more keeps every core busy (the
/// kernels share the samples of a batch between threads); on a GPU a batch fills the device.
pub fn default_batch<B: Backend>(imgsz: usize) -> usize {
    let cpu = [TypeId::of::<Flex>(), TypeId::of::<Autodiff<Flex>>()].contains(&TypeId::of::<B>());
    let budget: usize = if cpu { 1 << 18 } else { 1 << 20 };
    (budget / (imgsz * imgsz).max(1)).clamp(1, 64)
}

/// Vessel probabilities of `samples` at their original resolutions, each by sliding windows of
/// `tiling` ([`Tiling::WHOLE`]: whole images): the windows of all samples, in order, go through
/// the model `batch` at a time (the last batch partial), so that one forward pass can hold
/// windows of two images of different sizes. Equal to [`predict_probability_tiled`] per sample
/// within float rounding; with `tta`, each batch also goes through mirrored.
#[allow(clippy::too_many_arguments)]
pub fn predict_probabilities<B: Backend>(
    model: &DeepLab<B>,
    samples: &[&Sample],
    imgsz: usize,
    normalization: &Normalization,
    tta: bool,
    tiling: Tiling,
    batch: usize,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let mut blends: Vec<Blend> = samples
        .iter()
        .map(|s| Blend::new(s.size(), tiling))
        .collect();
    let windows = windows_of(samples, tiling);
    for chunk in windows.chunks(batch.max(1)) {
        let parts: Vec<Sample> = chunk
            .par_iter()
            .map(|&(i, w)| crop(samples[i], w))
            .collect();
        let parts: Vec<&Sample> = parts.iter().collect();
        let probs = batch_probability(model, &parts, imgsz, normalization, tta, device);
        for (&(i, window), prob) in chunk.iter().zip(probs) {
            blends[i].add(window, &prob);
        }
    }
    blends.into_iter().map(Blend::finish).collect()
}

/// [`predict_probability`] of each of `samples` from one forward pass (two with `tta`).
fn batch_probability<B: Backend>(
    model: &DeepLab<B>,
    samples: &[&Sample],
    imgsz: usize,
    normalization: &Normalization,
    tta: bool,
    device: &B::Device,
) -> Vec<Vec<f32>> {
    let forward = |hflip: bool| {
        let inputs = batch_input(samples, imgsz, normalization, hflip, device);
        vessel_probability(model.forward(inputs).out)
    };
    let mut prob = forward(false);
    if tta {
        prob = (prob + forward(true).flip([2])).mul_scalar(0.5);
    }
    let sizes: Vec<[u32; 2]> = samples.iter().map(|s| s.size()).collect();
    if sizes.iter().all(|&s| s == sizes[0]) {
        // One resize for the batch, split on the host.
        let [width, height] = sizes[0].map(|v| v as usize);
        let all = to_host(resize_bilinear(prob.unsqueeze_dim::<4>(1), [height, width]));
        return all.chunks(width * height).map(<[f32]>::to_vec).collect();
    }
    sizes
        .iter()
        .enumerate()
        .map(|(i, &[width, height])| {
            let one = prob.clone().narrow(0, i, 1).unsqueeze_dim::<4>(1);
            to_host(resize_bilinear(one, [height as usize, width as usize]))
        })
        .collect()
}
