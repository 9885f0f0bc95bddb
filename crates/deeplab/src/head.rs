//! The two segmentation heads: torchvision's `DeepLabHead` (ASPP → 3×3 conv → BN → ReLU → 1×1
//! conv) and `FCNHead` (3×3 conv → BN → ReLU → dropout → 1×1 conv), used as the aux head on `layer3`.

use burn::nn::conv::Conv2d;
use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use crate::aspp::{Aspp, AsppConfig};
use crate::batch_norm::BatchNorm2d;
use crate::conv_bn::{batch_norm, classifier_conv, conv_bn_relu, conv_forward, head_conv};

/// `DeepLabHead` configuration.
#[derive(Config, Debug, PartialEq)]
pub struct DeepLabHeadConfig {
    /// The ASPP on the backbone output.
    pub aspp: AsppConfig,
    /// Output classes.
    pub num_classes: usize,
}

impl DeepLabHeadConfig {
    /// The head with PyTorch's default initialisation.
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

    /// Class logits at the input's resolution (`[N, classes, H, W]`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.aspp.forward(x);
        let x = conv_bn_relu(&self.conv, &self.bn, x, None);
        conv_forward(&self.final_conv, x)
    }
}

/// `FCNHead` configuration (torchvision: inner width `in_channels / 4`, dropout 0.1).
#[derive(Config, Debug, PartialEq)]
pub struct FcnHeadConfig {
    /// Input channels (`layer3`: 1024).
    pub in_channels: usize,
    /// Output classes.
    pub num_classes: usize,
    #[config(default = 0.1)]
    /// Dropout before the classifier (torchvision: 0.1).
    pub dropout: f64,
}

impl FcnHeadConfig {
    /// The head with PyTorch's default initialisation.
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
    /// Dropout before the classifier.
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

    /// Class logits at the input's resolution (`[N, classes, H, W]`).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = conv_bn_relu(&self.conv, &self.bn, x, None);
        conv_forward(&self.final_conv, self.dropout.forward(x))
    }
}
