//! The two segmentation heads: torchvision's `DeepLabHead` (ASPP → 3×3 conv → BN → ReLU → 1×1
//! conv) and `FCNHead` (3×3 conv → BN → ReLU → dropout → 1×1 conv), used as the aux head on `layer3`.

use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::aspp::{Aspp, AsppConfig};
use crate::batch_norm::BatchNorm2d;
use crate::conv_bn::{batch_norm, classifier_conv, conv_forward, head_conv};

/// `DeepLabHead` configuration.
#[derive(Config, Debug, PartialEq)]
pub struct DeepLabHeadConfig {
    pub aspp: AsppConfig,
    pub num_classes: usize,
}

impl DeepLabHeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> DeepLabHead<B> {
        let ch = self.aspp.out_channels;
        DeepLabHead {
            aspp: self.aspp.init(device),
            conv: head_conv([ch, ch], 3, 1).init(device),
            bn: batch_norm(ch, device),
            final_conv: classifier_conv([ch, self.num_classes]).init(device),
        }
    }
}

/// torchvision `DeepLabHead` = `Sequential(ASPP, conv3×3, BN, ReLU, conv1×1)`.
#[derive(Module, Debug)]
pub struct DeepLabHead<B: Backend> {
    /// `classifier.0`
    pub aspp: Aspp<B>,
    /// `classifier.1`
    pub conv: Conv2d<B>,
    /// `classifier.2`
    pub bn: BatchNorm2d<B>,
    /// `classifier.4`: logits per class.
    pub final_conv: Conv2d<B>,
}

impl<B: Backend> DeepLabHead<B> {
    /// Folds each BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(self) -> Self {
        let (conv, bn) = self.bn.fold_into(self.conv);
        Self {
            aspp: self.aspp.fold_batch_norms(),
            conv,
            bn,
            final_conv: self.final_conv,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.aspp.forward(x);
        let x = relu(self.bn.forward(conv_forward(&self.conv, x)));
        conv_forward(&self.final_conv, x)
    }
}

/// `FCNHead` configuration (torchvision: inner width `in_channels / 4`, dropout 0.1).
#[derive(Config, Debug, PartialEq)]
pub struct FcnHeadConfig {
    pub in_channels: usize,
    pub num_classes: usize,
    #[config(default = 0.1)]
    pub dropout: f64,
}

impl FcnHeadConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> FcnHead<B> {
        let inter = self.in_channels / 4;
        FcnHead {
            conv: head_conv([self.in_channels, inter], 3, 1).init(device),
            bn: batch_norm(inter, device),
            dropout: DropoutConfig::new(self.dropout).init(),
            final_conv: classifier_conv([inter, self.num_classes]).init(device),
        }
    }
}

/// torchvision `FCNHead` = `Sequential(conv3×3, BN, ReLU, Dropout, conv1×1)`.
#[derive(Module, Debug)]
pub struct FcnHead<B: Backend> {
    /// `aux_classifier.0`
    pub conv: Conv2d<B>,
    /// `aux_classifier.1`
    pub bn: BatchNorm2d<B>,
    pub dropout: Dropout,
    /// `aux_classifier.4`: logits per class.
    pub final_conv: Conv2d<B>,
}

impl<B: Backend> FcnHead<B> {
    /// Folds the BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(self) -> Self {
        let (conv, bn) = self.bn.fold_into(self.conv);
        Self { conv, bn, ..self }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = relu(self.bn.forward(conv_forward(&self.conv, x)));
        conv_forward(&self.final_conv, self.dropout.forward(x))
    }
}
