//! Backend-specific kernels, behind the few operations the model files call: a convolution, a
//! convolution followed by a residual addition and ReLU (inference), and a training BatchNorm
//! followed by them. Each operation is chosen by the backend's type (never its name); any backend
//! without a kernel here runs Burn's own operations, with the same values up to rounding.
//!
//! | kernel | backend | why (measured) |
//! |---|---|---|
//! | [`flex_conv`]: convolutions by per-tap products, blocked im2col or taps clipped to where they read the input (dilated kernels reaching past the map), depthwise ones channel by channel, forward and gradients, with a fused inference epilogue | `Flex`, `Autodiff<Flex>` | Burn 0.21's Flex convolution re-lays out the weights on every call and scatters its results; its weight gradient took 3–7× the forward's time. DeepLabV3-R50 at 128×128, batch 2, 2 cores: training 0.60× → 0.93× PyTorch's speed, inference 0.53× → 1.08× (README, Performance); the per-tap products and im2col multiplied the padding the ASPP's rates read on 16×16–64×64 maps (23–61 % of their multiply-adds; DeepLabV3 @512's backward pass 1.29× → 0.85× PyTorch's time once clipped); on 4×4 maps (layer3 and layer4 on 64×64 windows, 31 % and 56 % of their 3×3's multiply-adds on padding) the clipped taps run with the samples side by side for batches of ≥ 16 windows: `predict`'s quick model 0.70 → 0.87 img/s; smaller batches of them go by im2col rather than by taps, whose products are 20 rows long there (layer3's 3×3 at batch 6: 1.61 → 0.77 ms) |
//! | [`flex_batch_norm`]: training BatchNorm (+ residual + ReLU) as one operation | `Autodiff<Flex>` | about twenty tensor operations and autodiff nodes per BatchNorm became 2 passes forward and 3 backward; training forward + loss 252 ms → 175 ms at the size above |
//! | [`flex_max_pool`]: max pooling, forward and backward | `Flex`, `Autodiff<Flex>` | Burn-flex 0.21's took 80 ms for the stem's pooling at 512×512, batch 2 (2 cores), more than the 7×7 convolution before it |
//! | [`per_channel`]: per-channel values repeated to a contiguous `[N, C, 1]` for BatchNorm's tensor operations over `[N, C, H·W]` | all (Flex benefits) | the one broadcast shape Flex runs with SIMD in place; a `[1, C, 1, 1]` broadcast over `N > 1` takes its strided path |
//! | [`wgpu_conv`]: the training convolution's weight gradient as one matrix product per kernel tap | `Autodiff<Wgpu>` | burn-cubecl 0.21's weight gradient is a convolution with the output gradient as kernel: a new shader per layer size, its first compile up to 24 s on Mesa's lavapipe (ten minutes for a small model's first backward pass at 289×297); grouped (depthwise) convolutions keep it |
//! | [`wgpu_pointwise`]: 1×1 stride-1 convolution as a matrix product per sample | `Wgpu`, `Autodiff<Wgpu>` | burn-cubecl 0.21 returns wrong values for some shapes of its 1×1 convolution (8 → 24 and 8 → 32 channels on Mesa's lavapipe) and of its batched matrix product (inner sizes 24, 40, 56, … with batch ≥ 2: the `live_deeplabv3` fixture's ASPP projection, 0.24 relative error) |
//!
//! The bilinear upsampling's interpolation matrices are the model's own ([`crate::upsample`]),
//! not a kernel: Burn 0.21's `interpolate` has no backward pass on CUDA.

use burn::prelude::*;
use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;

#[cfg(feature = "flex")]
pub(crate) mod flex_alloc;
#[cfg(feature = "flex")]
pub(crate) mod flex_batch_norm;
#[cfg(feature = "flex")]
pub(crate) mod flex_conv;
#[cfg(feature = "flex")]
pub(crate) mod flex_max_pool;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu_conv;
#[cfg(feature = "wgpu")]
pub(crate) mod wgpu_pointwise;

/// The inputs of [`conv2d`]: input, weight and bias.
pub(crate) type ConvInputs<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// `conv2d(x, weight, bias, options)`.
pub(crate) fn conv2d<B: Backend>(inputs: ConvInputs<B>, options: ConvOptions<2>) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let inputs = match flex_conv::try_conv2d(inputs, &options) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    #[cfg(feature = "wgpu")]
    let inputs = match wgpu_pointwise::try_conv2d(inputs, &options) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    #[cfg(feature = "wgpu")]
    let inputs = match wgpu_conv::try_conv2d(inputs, &options) {
        Ok(y) => return y,
        Err(inputs) => inputs,
    };
    let (x, weight, bias) = inputs;
    burn_conv2d(x, weight, bias, options)
}

/// `pool.forward(x)`: through [`flex_max_pool`] on `Flex` and `Autodiff<Flex>` (floor mode,
/// padding the same on both sides), else Burn's.
pub(crate) fn max_pool2d<B: Backend>(
    pool: &burn::nn::pool::MaxPool2d,
    x: Tensor<B, 4>,
) -> Tensor<B, 4> {
    #[cfg(feature = "flex")]
    let x = {
        use burn::nn::PaddingConfig2d;
        let padding = match pool.padding {
            PaddingConfig2d::Valid => Some([0, 0]),
            PaddingConfig2d::Explicit(top, left, bottom, right)
                if top == bottom && left == right =>
            {
                Some([top, left])
            }
            _ => None,
        };
        match padding.filter(|_| !pool.ceil_mode) {
            None => x,
            Some(padding) => {
                let window = flex_max_pool::Pool {
                    kernel: pool.kernel_size,
                    stride: pool.stride,
                    padding,
                    dilation: pool.dilation,
                };
                match flex_max_pool::try_max_pool2d(x, window) {
                    Ok(y) => return y,
                    Err(x) => x,
                }
            }
        }
    };
    pool.forward(x)
}

/// The inputs of [`conv2d_relu`]: input, weight, bias and the residual added before the ReLU.
pub(crate) type ConvReluInputs<B> = (
    Tensor<B, 4>,
    Tensor<B, 4>,
    Option<Tensor<B, 1>>,
    Option<Tensor<B, 4>>,
);

/// `relu(conv2d(x, weight, bias, options) [+ residual])` in one pass where a backend has a
/// kernel for it (inference); `Err` gives the inputs back for the separate operations.
#[allow(clippy::result_large_err)]
pub(crate) fn conv2d_relu<B: Backend>(
    inputs: ConvReluInputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, ConvReluInputs<B>> {
    #[cfg(feature = "flex")]
    return flex_conv::try_conv2d_relu(inputs, options);
    #[cfg(not(feature = "flex"))]
    {
        let _ = options;
        Err(inputs)
    }
}

/// The inputs of [`batch_norm_train`]: activation, γ, β and the residual added before the ReLU.
pub(crate) type BatchNormInputs<B> = (
    Tensor<B, 4>,
    Tensor<B, 1>,
    Tensor<B, 1>,
    Option<Tensor<B, 4>>,
);

/// `(act(bn(x) [+ residual]), batch mean, biased batch variance)` in training, `act` the ReLU
/// when `relu`, as one operation where a backend has a kernel for it; `Err` gives the inputs
/// back for the tensor operations.
#[allow(clippy::result_large_err, clippy::type_complexity)]
pub(crate) fn batch_norm_train<B: Backend>(
    inputs: BatchNormInputs<B>,
    relu: bool,
    epsilon: f64,
) -> Result<(Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>), BatchNormInputs<B>> {
    #[cfg(feature = "flex")]
    return flex_batch_norm::try_train(inputs, relu, epsilon);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (relu, epsilon);
        Err(inputs)
    }
}

/// `[C]` → `[N, C, 1]`, for broadcasting per-channel values over `[N, C, H·W]` (see the table
/// above for why the values are repeated along `N` rather than broadcast from `[1, C, 1]`).
pub(crate) fn per_channel<B: Backend>(values: Tensor<B, 1>, n: usize) -> Tensor<B, 3> {
    let c = values.dims()[0];
    let row = values.reshape([1, c, 1]);
    if n == 1 {
        row
    } else {
        row.repeat_dim(0, n)
    }
}
