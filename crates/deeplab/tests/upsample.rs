//! The matmul bilinear resize, in both corner modes: forward equals Burn's
//! `interpolate(Bilinear, align_corners)` and its gradient equals Flex's native bilinear backward.

mod common;

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::module::interpolate;
use burn::tensor::ops::{InterpolateMode, InterpolateOptions};
use burn::tensor::Distribution;
use common::rel_err;
use deeplab::upsample::{
    bilinear_matrix, resize_bilinear, resize_bilinear_with, Corners, MatrixCache,
};

type B = Autodiff<Flex>;

fn native(x: Tensor<B, 4>, size: [usize; 2], corners: Corners) -> Tensor<B, 4> {
    let options = InterpolateOptions::new(InterpolateMode::Bilinear)
        .with_align_corners(corners == Corners::Aligned);
    interpolate(x, size, options)
}

const MODES: [Corners; 2] = [Corners::HalfPixel, Corners::Aligned];

/// (input H×W, output H×W): DeepLab's ×8 upsampling, non-integer scales, odd sizes, downscaling,
/// a 1-pixel input (pure broadcast) and the identity.
const CASES: [([usize; 2], [usize; 2]); 7] = [
    ([8, 10], [64, 80]),
    ([8, 9], [57, 71]),
    ([5, 7], [33, 20]),
    ([16, 16], [5, 7]),
    ([1, 1], [6, 4]),
    ([64, 64], [512, 512]),
    ([9, 11], [9, 11]),
];

#[test]
fn forward_equals_burn_interpolate() {
    let device = Default::default();
    for (corners, (input, output)) in MODES.iter().flat_map(|&m| CASES.map(|c| (m, c))) {
        let x = Tensor::<B, 4>::random(
            [2, 3, input[0], input[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ours = resize_bilinear_with(x.clone(), output, corners);
        assert_eq!(ours.dims(), [2, 3, output[0], output[1]]);
        let e = rel_err(ours, native(x, output, corners));
        assert!(
            e < 1e-6,
            "{corners:?} {input:?} → {output:?}: rel err {e:e}"
        );
    }
}

#[test]
fn gradient_equals_flex_bilinear_backward() {
    let device = Default::default();
    for (corners, (input, output)) in MODES.iter().flat_map(|&m| CASES.map(|c| (m, c))) {
        let x = Tensor::<B, 4>::random(
            [2, 3, input[0], input[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        )
        .require_grad();
        let weights = Tensor::<B, 4>::random(
            [2, 3, output[0], output[1]],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let ours = (resize_bilinear_with(x.clone(), output, corners) * weights.clone())
            .sum()
            .backward();
        let theirs = (native(x.clone(), output, corners) * weights)
            .sum()
            .backward();
        let e = rel_err(x.grad(&ours).unwrap(), x.grad(&theirs).unwrap());
        assert!(
            e < 1e-6,
            "{corners:?} {input:?} → {output:?}: gradient rel err {e:e}"
        );
    }
}

#[test]
fn interpolation_rows_are_convex_weights() {
    // PyTorch's rule by hand: 2 → 4 (scale 0.5): sources -0.25→0 (clamped), 0.25, 0.75, 1.25→i0=1.
    let m = bilinear_matrix(2, 4, Corners::HalfPixel);
    let expected = [1.0, 0.0, 0.75, 0.25, 0.25, 0.75, 0.0, 1.0];
    for (a, b) in m.iter().zip(expected) {
        assert!((a - b).abs() < 1e-7, "{m:?}");
    }
    // align_corners = true, 2 → 4: sources 0, 1/3, 2/3, 1.
    let m = bilinear_matrix(2, 4, Corners::Aligned);
    let third = 1.0 / 3.0;
    let expected = [1.0, 0.0, 1.0 - third, third, third, 1.0 - third, 0.0, 1.0];
    for (a, b) in m.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{m:?}");
    }
    // The default resize is the half-pixel one.
    let x = Tensor::<Flex, 4>::from_data([[[[0.0f32, 3.0]]]], &Default::default());
    let y = resize_bilinear(x.clone(), [1, 4]).into_data();
    let z = resize_bilinear_with(x, [1, 4], Corners::HalfPixel).into_data();
    assert_eq!(y, z);
}

#[test]
fn a_matrix_cache_resizes_as_the_uncached_functions_and_reuses_its_matrices() {
    let device = Default::default();
    let cache = MatrixCache::default();
    let shared = cache.clone();
    for corners in MODES {
        for _ in 0..3 {
            let x = Tensor::<B, 4>::random([2, 3, 8, 10], Distribution::Normal(0.0, 1.0), &device);
            let cached = shared.resize(x.clone(), [64, 80], corners);
            let e = rel_err(cached, resize_bilinear_with(x, [64, 80], corners));
            assert!(e == 0.0, "{corners:?}: cached differs, rel err {e:e}");
        }
    }
    // Two axes × two corner rules, however many calls; clones share the entries.
    assert_eq!(format!("{cache:?}"), "MatrixCache(4 matrices)");
    // Another size: its own matrices (the 80-wide one is new too: it maps from 12, not 10).
    let x = Tensor::<B, 4>::ones([1, 1, 8, 12], &device);
    assert_eq!(
        cache.resize(x, [64, 80], Corners::HalfPixel).dims(),
        [1, 1, 64, 80]
    );
    assert_eq!(format!("{cache:?}"), "MatrixCache(5 matrices)");
}
