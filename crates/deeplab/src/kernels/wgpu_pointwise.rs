//! A 1×1, stride-1, ungrouped convolution as one unbatched matrix product per sample on Burn's
//! wgpu backend: burn-cubecl 0.21 returns wrong values there for some shapes of its 1×1
//! convolution (measured on Mesa's lavapipe: 8 → 24 and 8 → 32 channels), of its *batched* matrix
//! product (batch ≥ 2, few output rows, an inner size of 24, 40, 56, 120 or 136 over 600 or more
//! columns: up to 37 % relative error — the ASPP projection of small models, 5 × 8 → 8 channels
//! on a 37 × 38 map) and of an unbatched product whose right side is the samples side by side
//! with one column each (the ASPP's pooled branch: 1.4 relative error). `[o, c] × [c, h·w]` per
//! sample was right on every shape measured (`tests/parity_wgpu.rs` runs the models through it).
//! Same arithmetic. Chosen by type: `Wgpu` and `Autodiff<Wgpu>` with their default element types.

use std::any::TypeId;

use burn::backend::{Autodiff, Wgpu};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use super::ConvInputs;

/// `conv2d(x, weight, bias, options)` as a matrix product when `B` is wgpu and the convolution
/// is 1×1, stride 1, without padding or groups; `Err` gives the inputs back otherwise.
#[allow(clippy::result_large_err)]
pub(crate) fn try_conv2d<B: Backend>(
    (x, weight, bias): ConvInputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, ConvInputs<B>> {
    let wgpu = [TypeId::of::<Wgpu>(), TypeId::of::<Autodiff<Wgpu>>()].contains(&TypeId::of::<B>());
    let [o, c, kh, kw] = weight.dims();
    let pointwise = [kh, kw] == [1, 1]
        && options.stride == [1, 1]
        && options.padding == [0, 0]
        && options.groups == 1;
    if !(wgpu && pointwise) {
        return Err((x, weight, bias));
    }
    let [n, _, h, w] = x.dims();
    let weight = weight.reshape([o, c]);
    let samples = (0..n)
        .map(|i| {
            let y = weight
                .clone()
                .matmul(x.clone().narrow(0, i, 1).reshape([c, h * w]));
            let y = match &bias {
                Some(bias) => y + bias.clone().reshape([o, 1]),
                None => y,
            };
            y.reshape([1, o, h, w])
        })
        .collect();
    Ok(Tensor::cat(samples, 0))
}
