//! A 1×1, stride-1, ungrouped convolution as a batched matrix product on Burn's wgpu backend:
//! burn-cubecl 0.21's 1×1 convolution kernel returns wrong values there for some small channel
//! counts (measured on Mesa's lavapipe: 8 → 24 and 8 → 32 channels), which small models hit.
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
    let y = weight
        .reshape([1, o, c])
        .expand([n, o, c])
        .matmul(x.reshape([n, c, h * w]));
    let y = match bias {
        Some(bias) => y + bias.reshape([1, o, 1]),
        None => y,
    };
    Ok(y.reshape([n, o, h, w]))
}
