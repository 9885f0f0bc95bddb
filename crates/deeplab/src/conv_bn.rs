//! `ConvBn`: a bias-free convolution followed by BatchNorm — torchvision's `Sequential(conv, bn)`
//! pairs (ResNet `downsample`, the ASPP branches and projection), and the conv constructors with
//! torchvision's initialisation, which differs between the backbone and the heads:
//!
//! * ResNet convs: `kaiming_normal_(mode="fan_out", nonlinearity="relu")` (`backbone_conv`);
//! * ASPP, `DeepLabHead` and `FCNHead` convs keep PyTorch's default `nn.Conv2d` initialisation,
//!   `kaiming_uniform_(a=√5)` = U(±1/√fan_in) for the weight and the bias (`head_conv`) — which is
//!   Burn's default conv initializer.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use crate::batch_norm::{BatchNorm2d, BatchNorm2dConfig};
use crate::kernels;

/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")` for ResNet conv weights.
const KAIMING_FAN_OUT: Initializer = Initializer::KaimingNormal {
    gain: std::f64::consts::SQRT_2,
    fan_out_only: true,
};

/// PyTorch's default `nn.Conv2d` init: `kaiming_uniform_(a=√5)`, i.e. U(±1/√fan_in) (gain 1/√3).
const PYTORCH_DEFAULT: Initializer = Initializer::KaimingUniform {
    gain: 0.577_350_269_189_625_8, // 1/√3
    fan_out_only: false,
};

/// A `k×k` convolution with torchvision's padding rule (`padding = dilation·(k−1)/2`), no bias.
fn conv(channels: [usize; 2], kernel: usize, stride: usize, dilation: usize) -> Conv2dConfig {
    let pad = dilation * (kernel - 1) / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
}

/// A bias-free ResNet convolution, Kaiming-normal (fan-out) initialised.
pub(crate) fn backbone_conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Conv2dConfig {
    conv(channels, kernel, stride, dilation).with_initializer(KAIMING_FAN_OUT)
}

/// A bias-free ASPP/head convolution (stride 1) with PyTorch's default initialisation.
pub(crate) fn head_conv(channels: [usize; 2], kernel: usize, dilation: usize) -> Conv2dConfig {
    conv(channels, kernel, 1, dilation).with_initializer(PYTORCH_DEFAULT)
}

/// The final 1×1 classifier conv of a head, with bias, PyTorch's default initialisation (what the
/// original recipe's `classifier[4] = nn.Conv2d(256, 2, 1)` gets).
pub(crate) fn classifier_conv(channels: [usize; 2]) -> Conv2dConfig {
    Conv2dConfig::new(channels, [1, 1]).with_initializer(PYTORCH_DEFAULT)
}

/// `conv(x)` through [`crate::kernels::conv2d`] (the backend's own kernel where there is one).
pub(crate) fn conv_forward<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    match options(conv) {
        Some(options) => {
            let bias = conv.bias.as_ref().map(|b| b.val());
            kernels::conv2d((x, conv.weight.val(), bias), options)
        }
        None => conv.forward(x),
    }
}

/// The functional convolution's options of `conv` when its padding is explicit and symmetric
/// (the backbone's and decoder's convolutions). The heads' 1×1 classifiers, declared without
/// padding, stay on the backend's own convolution: through the Flex kernels their logits
/// depended in the last bit on how many inputs shared the batch (another summation order for
/// another batch size), which changed a few bytes of `predict`'s outputs between a sharded and
/// an unsharded run (`tests/predict_many.rs`).
fn options<B: Backend>(conv: &Conv2d<B>) -> Option<ConvOptions<2>> {
    match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) if top == bottom && left == right => {
            Some(ConvOptions::new(
                conv.stride,
                [top, left],
                conv.dilation,
                conv.groups,
            ))
        }
        _ => None,
    }
}

/// `relu(bn(conv(x)) [+ residual])` — torchvision's `relu(bn(conv(x)))` and the bottleneck's
/// `relu(bn3(conv3(out)) + identity)`. On the Flex CPU backend, the addition and the ReLU are
/// applied in inference after BatchNorm folding to each sample's output as the convolution
/// produces it, and in training by the BatchNorm's own pass ([`BatchNorm2d::forward_relu`]),
/// instead of two more passes over the activation (same values).
pub fn conv_bn_relu<B: Backend>(
    conv: &Conv2d<B>,
    bn: &BatchNorm2d<B>,
    x: Tensor<B, 4>,
    residual: Option<Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let (x, residual) = match options(conv).filter(|_| bn.folded) {
        Some(options) => {
            let bias = conv.bias.as_ref().map(|b| b.val());
            match kernels::conv2d_relu((x, conv.weight.val(), bias, residual), &options) {
                Ok(y) => return y,
                Err((x, _, _, residual)) => (x, residual),
            }
        }
        None => (x, residual),
    };
    bn.forward_relu(conv_forward(conv, x), residual)
}

/// PyTorch's BatchNorm2d defaults (eps 1e-5, momentum 0.1), γ = 1, β = 0.
pub(crate) fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm2d<B> {
    BatchNorm2dConfig::new(channels).init(device)
}

/// Convolution + BatchNorm (no activation): torchvision's `Sequential(conv, bn[, relu])`, or with
/// `depthwise`, segmentation_models_pytorch's `Sequential(SeparableConv2d(depthwise, pointwise), bn)`.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// For a depthwise-separable convolution: the depthwise `k×k` convolution (one filter per
    /// input channel, `groups = in_channels`, no bias) that runs before `conv`, which is then the
    /// 1×1 pointwise convolution. `None` for a plain convolution.
    pub depthwise: Option<Conv2d<B>>,
    /// The bias-free convolution (`.0` in torchvision's Sequential; the pointwise one when
    /// separable).
    pub conv: Conv2d<B>,
    /// The BatchNorm (`.1` in torchvision's Sequential).
    pub bn: BatchNorm2d<B>,
}

impl<B: Backend> ConvBn<B> {
    pub(crate) fn new(conv: Conv2dConfig, device: &B::Device) -> Self {
        let out = conv.channels[1];
        Self {
            depthwise: None,
            conv: conv.init(device),
            bn: batch_norm(out, device),
        }
    }

    /// segmentation_models_pytorch's `SeparableConv2d(cin, cout, k, padding = dilation·(k−1)/2,
    /// dilation, bias=False)` + BatchNorm, PyTorch's default initialisation for both convolutions.
    pub(crate) fn separable(
        [cin, cout]: [usize; 2],
        kernel: usize,
        dilation: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            depthwise: Some(
                head_conv([cin, cin], kernel, dilation)
                    .with_groups(cin)
                    .init(device),
            ),
            ..Self::new(head_conv([cin, cout], 1, 1), device)
        }
    }

    /// `bn(conv(x))` (`bn(pointwise(depthwise(x)))` when separable).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = match &self.depthwise {
            Some(depthwise) => conv_forward(depthwise, x),
            None => x,
        };
        self.bn.forward(conv_forward(&self.conv, x))
    }

    /// `relu(bn(conv(x)))` (see [`conv_bn_relu`]).
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match &self.depthwise {
            Some(depthwise) => conv_bn_relu(&self.conv, &self.bn, conv_forward(depthwise, x), None),
            None => conv_bn_relu(&self.conv, &self.bn, x, None),
        }
    }

    /// `relu(bn(conv(x)))` for a 3×3 atrous convolution (stride 1, padding = dilation), skipping
    /// the taps that can only read zero padding: along an axis no longer than the dilation, the
    /// off-centre taps of every output fall outside the input. The result and the gradients are
    /// exactly those of the full convolution (the skipped weights' gradients are zero there too),
    /// at a third (one axis) or a ninth (both) of the cost — e.g. the ASPP's rates 24 and 36 on
    /// feature maps of 16 × 16. When separable, the depthwise convolution is the atrous one.
    pub fn forward_relu_atrous(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        burn::tensor::activation::relu(self.forward_atrous(x))
    }

    /// The atrous convolution of this branch: the depthwise one when separable, else `conv`.
    pub fn atrous_conv(&self) -> &Conv2d<B> {
        self.depthwise.as_ref().unwrap_or(&self.conv)
    }

    /// `bn(conv(x))` for a 3×3 atrous convolution, skipping the taps that can only read zero
    /// padding (see [`ConvBn::forward_relu_atrous`]).
    pub fn forward_atrous(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match &self.depthwise {
            Some(depthwise) => {
                let x = atrous(depthwise, x);
                self.bn.forward(conv_forward(&self.conv, x))
            }
            None => self.bn.forward(atrous(&self.conv, x)),
        }
    }

    /// Folds the BatchNorm into the convolution (inference only, see [`BatchNorm2d::fold_into`]).
    pub fn fold(self) -> Self {
        let (conv, bn) = self.bn.fold_into(self.conv);
        Self {
            depthwise: self.depthwise,
            conv,
            bn,
        }
    }
}

/// The kernel rows and columns of a 3×3 atrous convolution (stride 1, padding = dilation) that
/// can read a pixel of an `[h, w]` input: all three along an axis longer than the dilation, only
/// the centre one otherwise (the off-centre taps of every output then fall in the zero padding).
/// What [`ConvBn::forward_atrous`] computes with; a kernel that is not 3×3 keeps every tap.
pub fn live_taps<B: Backend>(
    conv: &Conv2d<B>,
    [h, w]: [usize; 2],
) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
    let [dh, dw] = conv.dilation;
    let [_, _, kh, kw] = conv.weight.dims();
    let rows = if kh == 3 && dh >= h { 1..2 } else { 0..kh };
    let cols = if kw == 3 && dw >= w { 1..2 } else { 0..kw };
    (rows, cols)
}

/// `conv(x)` for a 3×3 atrous convolution (stride 1, padding = dilation) without the taps that
/// can only read zero padding (see [`ConvBn::forward_relu_atrous`]).
fn atrous<B: Backend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, _, h, w] = x.dims();
    let [dh, dw] = conv.dilation;
    let [o, i, kh, kw] = conv.weight.dims();
    let (rows, cols) = live_taps(conv, [h, w]);
    if rows.len() == kh && cols.len() == kw {
        return conv_forward(conv, x);
    }
    let pad = |taps: usize, d: usize| if taps == 1 { 0 } else { d };
    let options = ConvOptions::new(
        [1, 1],
        [pad(rows.len(), dh), pad(cols.len(), dw)],
        [dh, dw],
        conv.groups,
    );
    let weight = conv.weight.val().slice([0..o, 0..i, rows, cols]);
    let bias = conv.bias.as_ref().map(|b| b.val());
    kernels::conv2d((x, weight, bias), options)
}
