//! `ConvBn`: a bias-free convolution followed by BatchNorm — torchvision's `Sequential(conv, bn)`
//! pairs (ResNet `downsample`, the ASPP branches and projection), and the conv constructors with
//! torchvision's initialisation, which differs between the backbone and the heads:
//!
//! * ResNet convs: `kaiming_normal_(mode="fan_out", nonlinearity="relu")` ([`backbone_conv`]);
//! * ASPP, `DeepLabHead` and `FCNHead` convs keep PyTorch's default `nn.Conv2d` initialisation,
//!   `kaiming_uniform_(a=√5)` = U(±1/√fan_in) for the weight and the bias ([`head_conv`]) — which is
//!   Burn's default conv initializer.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, PaddingConfig2d};
use burn::prelude::*;

use crate::batch_norm::{BatchNorm2d, BatchNorm2dConfig};

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

/// PyTorch's BatchNorm2d defaults (eps 1e-5, momentum 0.1), γ = 1, β = 0.
pub(crate) fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm2d<B> {
    BatchNorm2dConfig::new(channels).init(device)
}

/// Convolution + BatchNorm (no activation): torchvision's `Sequential(conv, bn[, relu])`.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// The bias-free convolution (`.0` in torchvision's Sequential).
    pub conv: Conv2d<B>,
    /// The BatchNorm (`.1` in torchvision's Sequential).
    pub bn: BatchNorm2d<B>,
}

impl<B: Backend> ConvBn<B> {
    pub(crate) fn new(conv: Conv2dConfig, device: &B::Device) -> Self {
        let out = conv.channels[1];
        Self {
            conv: conv.init(device),
            bn: batch_norm(out, device),
        }
    }

    /// `bn(conv(x))`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.bn.forward(self.conv.forward(x))
    }

    /// `relu(bn(conv(x)))`.
    pub fn forward_relu(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        burn::tensor::activation::relu(self.forward(x))
    }

    /// Folds the BatchNorm into the convolution (inference only, see [`BatchNorm2d::fold_into`]).
    pub fn fold(self) -> Self {
        let (conv, bn) = self.bn.fold_into(self.conv);
        Self { conv, bn }
    }
}
