//! Convolutions on the Flex CPU backend computed by this crate: the forward pass (training on
//! `Autodiff<Flex>` and inference on `Flex`), the input gradient and the weight gradient, as one
//! matrix product per kernel tap ([`taps`]) or, where those do not apply, by blocked im2col
//! ([`im2col`]); dilated kernels reaching past the map by taps clipped to where they read the
//! input ([`clipped`]); the gradients on small maps for the whole batch at once ([`batched`]);
//! all through the `gemm` crate Flex itself uses ([`matmul`]). Depthwise convolutions go
//! channel by channel ([`depthwise`]).
//!
//! Burn 0.21's Flex convolution re-lays the whole weight tensor out on every call, copies the
//! input to NHWC, multiplies im2col tiles and scatters the result back to NCHW; its input
//! gradient is a transposed convolution with a serial col2im scatter-add, and its weight gradient
//! a convolution with the output gradient as kernel (3–7× the forward's time). Here the weights
//! are read in their own layout (the clipped taps re-lay out the live taps' once per call) and
//! the backbone's convolutions scatter nothing.
//!
//! Handled: every ungrouped f32/f64 convolution, forward and backward — stride-1 ones by taps
//! where the padded rows waste little, strided 1×1 ones through the subsampled input, the rest
//! (the 7×7 stem, ResNet's strided 3×3, wide paddings on small maps, and in the forward pass
//! kernels above 1×1 on maps under 64 padded pixels, whose per-tap products are too short) by
//! im2col, the ASPP's
//! rates on maps of 16×16 and more that they reach past by clipped taps, and in the forward
//! pass of large batches (at least 256 output pixels in all) maps of 8×8 to 15×15 by clipped
//! taps with the samples side by side; the forward pass of batches of two or more whose output
//! maps have under 64 pixels (layer3, layer4 and the ASPP on 64×64 windows, 4×4) and the
//! gradients of those whose maps have at most 64 (layer2–4 and the ASPP on 64×64 crops) by
//! im2col over the whole batch ([`batched`]); depthwise convolutions (DeepLabV3+'s separable
//! ones), forward and backward. Left to Flex: other grouped convolutions and other element
//! types.

use std::any::Any;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, ModuleOps};
use burn::tensor::{Tensor, TensorPrimitive};
use burn_flex::FlexTensor;

mod autodiff;
mod batched;
mod clipped;
mod depthwise;
mod im2col;
mod matmul;
mod ops;
mod taps;
#[cfg(test)]
mod tests;

use ops::{forward, Then};

type Ad = Autodiff<Flex>;
use super::ConvInputs as Inputs;

/// `conv2d(x, weight, bias, options)` through this module when `B` is `Autodiff<Flex>` (training)
/// or `Flex` (inference); `Err` gives the inputs back untouched for any other backend.
#[allow(clippy::result_large_err)]
pub(crate) fn try_conv2d<B: Backend>(
    inputs: Inputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, Inputs<B>> {
    let mut inputs = Some(inputs);
    let any = &mut inputs as &mut dyn Any;
    let y: Box<dyn Any> = if let Some(slot) = any.downcast_mut::<Option<Inputs<Ad>>>() {
        let (x, weight, bias) = slot.take().expect("inputs present");
        Box::new(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(
            autodiff::conv2d(
                x.into_primitive().tensor(),
                weight.into_primitive().tensor(),
                bias.map(|b| b.into_primitive().tensor()),
                options.clone(),
            ),
        )))
    } else if let Some(slot) = any.downcast_mut::<Option<Inputs<Flex>>>() {
        let (x, weight, bias) = slot.take().expect("inputs present");
        Box::new(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(
            flex_conv2d(
                x.into_primitive().tensor(),
                weight.into_primitive().tensor(),
                bias.map(|b| b.into_primitive().tensor()),
                options.clone(),
            ),
        )))
    } else {
        return Err(inputs.expect("inputs not taken"));
    };
    Ok(*y
        .downcast::<Tensor<B, 4>>()
        .expect("B is Autodiff<Flex> or Flex"))
}

/// The inputs of a convolution followed by a residual addition and ReLU.
type FusedInputs<B> = (
    Tensor<B, 4>,
    Tensor<B, 4>,
    Option<Tensor<B, 1>>,
    Option<Tensor<B, 4>>,
);

/// `relu(conv2d(x, weight, bias, options) [+ residual])` in one pass — the addition and the ReLU
/// applied to each sample's output as soon as it is computed — when `B` is `Flex` (inference)
/// and this module computes the convolution; `Err` gives the inputs back untouched otherwise.
pub(crate) fn try_conv2d_relu<B: Backend>(
    (x, weight, bias, residual): FusedInputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, FusedInputs<B>> {
    let mut inputs = Some((x, weight, bias, residual));
    let y = match (&inputs as &dyn Any).downcast_ref::<Option<FusedInputs<Flex>>>() {
        Some(Some((x, weight, bias, residual))) => {
            let primitive = |t: &Tensor<Flex, 4>| t.clone().into_primitive().tensor();
            let residual = residual.as_ref().map(primitive);
            let then = Then {
                residual: residual.as_ref(),
                relu: true,
            };
            let bias = bias.as_ref().map(|b| b.clone().into_primitive().tensor());
            forward(
                &primitive(x),
                &primitive(weight),
                bias.as_ref(),
                options,
                then,
            )
        }
        _ => None,
    };
    let Some(y) = y else {
        return Err(inputs.take().expect("inputs present"));
    };
    let y: Box<dyn Any> = Box::new(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y)));
    Ok(*y.downcast::<Tensor<B, 4>>().expect("B is Flex"))
}

/// The forward convolution on `Flex`: this module's when it handles the geometry, else Flex's.
pub(super) fn flex_conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    forward(&x, &weight, bias.as_ref(), &options, Then::default())
        .unwrap_or_else(|| Flex::conv2d(x, weight, bias, options))
}
