//! Atrous Spatial Pyramid Pooling (torchvision `ASPP`, and segmentation_models_pytorch's with
//! `separable`): a 1×1 branch, one 3×3 atrous branch per rate (optionally depthwise-separable), an
//! image-pooling branch, concatenated and projected (1×1 conv, BN, ReLU, dropout).

use burn::nn::{Dropout, DropoutConfig};
use burn::prelude::*;

use crate::conv_bn::{head_conv, ConvBn};

/// ASPP configuration.
#[derive(Config, Debug, PartialEq)]
pub struct AsppConfig {
    /// Input channels (`layer4` width: 2048 for ResNet-50/101).
    pub in_channels: usize,
    /// Width of every branch and of the output (torchvision: 256).
    #[config(default = 256)]
    pub out_channels: usize,
    /// Dilation rates of the atrous branches (torchvision: 12, 24, 36).
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Dropout after the projection (torchvision: 0.5). Active only on autodiff backends.
    #[config(default = 0.5)]
    pub dropout: f64,
    /// Depthwise-separable atrous branches (a depthwise dilated 3×3, then a pointwise 1×1, then
    /// BN + ReLU), as segmentation_models_pytorch's DeepLabV3+ by default; torchvision: false.
    #[config(default = false)]
    pub separable: bool,
}

impl AsppConfig {
    /// Builds the ASPP with PyTorch's default convolution initialisation (torchvision's and
    /// segmentation_models_pytorch's ASPP keep it).
    pub fn init<B: Backend>(&self, device: &B::Device) -> Aspp<B> {
        let (cin, cout) = (self.in_channels, self.out_channels);
        let mut convs = vec![ConvBn::new(head_conv([cin, cout], 1, 1), device)];
        convs.extend(self.atrous_rates.iter().map(|&rate| match self.separable {
            true => ConvBn::separable([cin, cout], 3, rate, device),
            false => ConvBn::new(head_conv([cin, cout], 3, rate), device),
        }));
        let branches = convs.len() + 1;
        Aspp {
            convs,
            pooling: ConvBn::new(head_conv([cin, cout], 1, 1), device),
            project: ConvBn::new(head_conv([branches * cout, cout], 1, 1), device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// ASPP module. torchvision keeps the pooling branch as `convs[len]`; here it is `pooling`
/// (see [`crate::weights`] for the key mapping).
#[derive(Module, Debug)]
pub struct Aspp<B: Backend> {
    /// The 1×1 branch followed by the atrous branches, each conv + BN + ReLU.
    pub convs: Vec<ConvBn<B>>,
    /// Image pooling: global average → 1×1 conv + BN + ReLU → broadcast back.
    pub pooling: ConvBn<B>,
    /// Projection of the concatenated branches: 1×1 conv + BN + ReLU.
    pub project: ConvBn<B>,
    /// Dropout after the projection (p = 0.5, training only).
    pub dropout: Dropout,
}

impl<B: Backend> Aspp<B> {
    /// Whether any BatchNorm of the ASPP is folded into its convolution.
    pub fn is_folded(&self) -> bool {
        self.convs
            .iter()
            .chain([&self.pooling, &self.project])
            .any(|c| c.bn.folded)
    }

    /// Folds each BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(self) -> Self {
        Self {
            convs: self.convs.into_iter().map(ConvBn::fold).collect(),
            pooling: self.pooling.fold(),
            project: self.project.fold(),
            dropout: self.dropout,
        }
    }

    /// `[N, in_channels, H, W]` → `[N, out_channels, H, W]`.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, _, h, w] = x.dims();
        // The 1×1 branch, then the atrous branches (which skip taps that only see padding).
        let mut branches: Vec<Tensor<B, 4>> = self
            .convs
            .iter()
            .enumerate()
            .map(|(k, branch)| match k {
                0 => branch.forward_relu(x.clone()),
                _ => branch.forward_relu_atrous(x.clone()),
            })
            .collect();
        // Upsampling a 1×1 map bilinearly (what torchvision does) is a broadcast.
        let pooled = x.mean_dim(2).mean_dim(3);
        let pooled = self.pooling.forward_relu(pooled);
        let channels = pooled.dims()[1];
        branches.push(pooled.expand([n, channels, h, w]));
        let projected = self.project.forward_relu(Tensor::cat(branches, 1));
        self.dropout.forward(projected)
    }
}
