//! `ConvBn`: a bias-free convolution followed by BatchNorm — torchvision's `Sequential(conv, bn)`
//! pairs (ResNet `downsample`, the ASPP branches and projection), and the conv constructors with
//! torchvision's initialisation.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;

/// torchvision's `kaiming_normal_(mode="fan_out", nonlinearity="relu")` for conv weights.
pub(crate) const KAIMING_FAN_OUT: Initializer = Initializer::KaimingNormal {
    gain: std::f64::consts::SQRT_2,
    fan_out_only: true,
};

/// A `k×k` bias-free convolution with torchvision's padding rule (`padding = dilation·(k−1)/2`),
/// Kaiming-normal (fan-out) initialised.
pub(crate) fn conv(
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    dilation: usize,
) -> Conv2dConfig {
    let pad = dilation * (kernel - 1) / 2;
    Conv2dConfig::new(channels, [kernel, kernel])
        .with_stride([stride, stride])
        .with_dilation([dilation, dilation])
        .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
        .with_bias(false)
        .with_initializer(KAIMING_FAN_OUT)
}

/// PyTorch's BatchNorm2d defaults (eps 1e-5, momentum 0.1), γ = 1, β = 0.
pub(crate) fn batch_norm<B: Backend>(channels: usize, device: &B::Device) -> BatchNorm<B> {
    BatchNormConfig::new(channels)
        .with_epsilon(1e-5)
        .with_momentum(0.1)
        .init(device)
}

/// Convolution + BatchNorm (no activation): torchvision's `Sequential(conv, bn[, relu])`.
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    /// The bias-free convolution (`.0` in torchvision's Sequential).
    pub conv: Conv2d<B>,
    /// The BatchNorm (`.1` in torchvision's Sequential).
    pub bn: BatchNorm<B>,
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
}
