//! DeepLabV3 (torchvision `models/segmentation/deeplabv3.py`): ResNet backbone → `DeepLabHead`
//! on `layer4` (+ `FCNHead` aux on `layer3`), logits upsampled bilinearly to the input size.

use burn::prelude::*;

use crate::aspp::AsppConfig;
use crate::head::{DeepLabHead, DeepLabHeadConfig, FcnHead, FcnHeadConfig};
use crate::resnet::{ResNet, ResNetConfig, RESNET101_BLOCKS, RESNET50_BLOCKS};
use crate::upsample::{Corners, MatrixCache};

/// DeepLabV3 configuration. Presets: [`DeepLabV3Config::deeplabv3_resnet50`],
/// [`DeepLabV3Config::deeplabv3_resnet101`].
#[derive(Config, Debug, PartialEq)]
pub struct DeepLabV3Config {
    /// The dilated ResNet backbone.
    pub backbone: ResNetConfig,
    /// Output classes.
    pub num_classes: usize,
    /// ASPP and head width (torchvision: 256).
    #[config(default = 256)]
    pub aspp_channels: usize,
    /// ASPP atrous rates (torchvision: 12, 24, 36).
    #[config(default = "vec![12, 24, 36]")]
    pub atrous_rates: Vec<usize>,
    /// Build the `FCNHead` aux classifier on `layer3` (torchvision's `aux_loss=True`).
    #[config(default = true)]
    pub aux_classifier: bool,
    /// Dropout after the ASPP projection (torchvision: 0.5).
    #[config(default = 0.5)]
    pub aspp_dropout: f64,
    /// Dropout in the aux head (torchvision: 0.1).
    #[config(default = 0.1)]
    pub aux_dropout: f64,
}

impl DeepLabV3Config {
    /// torchvision's `deeplabv3_resnet50(num_classes=..., aux_loss=True)`.
    pub fn deeplabv3_resnet50(num_classes: usize) -> Self {
        Self::new(ResNetConfig::new(RESNET50_BLOCKS), num_classes)
    }

    /// torchvision's `deeplabv3_resnet101(num_classes=..., aux_loss=True)`.
    pub fn deeplabv3_resnet101(num_classes: usize) -> Self {
        Self::new(ResNetConfig::new(RESNET101_BLOCKS), num_classes)
    }

    /// Builds the model with torchvision-style initialisation. Parameters are allocated lazily,
    /// on first use or when weights are loaded.
    pub fn init<B: Backend>(&self, device: &B::Device) -> DeepLabV3<B> {
        let head = DeepLabHeadConfig::new(
            AsppConfig::new(self.backbone.layer4_channels())
                .with_out_channels(self.aspp_channels)
                .with_atrous_rates(self.atrous_rates.clone())
                .with_dropout(self.aspp_dropout),
            self.num_classes,
        );
        DeepLabV3 {
            backbone: self.backbone.init(device),
            classifier: head.init(device),
            aux_classifier: self.aux_classifier.then(|| {
                FcnHeadConfig::new(self.backbone.layer3_channels(), self.num_classes)
                    .with_dropout(self.aux_dropout)
                    .init(device)
            }),
            matrices: MatrixCache::default(),
        }
    }
}

/// Logits at the input resolution.
#[derive(Debug, Clone)]
pub struct DeepLabOutput<B: Backend> {
    /// Main head logits `[N, num_classes, H, W]` (torchvision's `"out"`).
    pub out: Tensor<B, 4>,
    /// Aux head logits `[N, num_classes, H, W]` (torchvision's `"aux"`), when the model has one.
    pub aux: Option<Tensor<B, 4>>,
}

/// DeepLabV3 with a ResNet backbone. Field names follow torchvision's so weight keys map directly.
///
/// BatchNorm uses batch statistics and dropout is active on autodiff backends (training);
/// call [`burn::module::AutodiffModule::valid`] for inference.
#[derive(Module, Debug)]
pub struct DeepLabV3<B: Backend> {
    /// The dilated ResNet (torchvision's `backbone`).
    pub backbone: ResNet<B>,
    /// ASPP head (torchvision's `classifier`).
    pub classifier: DeepLabHead<B>,
    /// FCN head on `layer3` (torchvision's `aux_classifier`), if built.
    pub aux_classifier: Option<FcnHead<B>>,
    /// The upsampling matrices of this model's input sizes.
    #[module(skip)]
    matrices: MatrixCache,
}

impl<B: Backend> DeepLabV3<B> {
    /// `[N, 3, H, W]` normalised images → logits at `H × W`.
    pub fn forward(&self, x: Tensor<B, 4>) -> DeepLabOutput<B> {
        let [_, _, h, w] = x.dims();
        let features = self.backbone.forward(x);
        let out = self.upsample(self.classifier.forward(features.layer4), [h, w]);
        let aux = self
            .aux_classifier
            .as_ref()
            .map(|head| self.upsample(head.forward(features.layer3), [h, w]));
        DeepLabOutput { out, aux }
    }

    /// The heads' logits resized bilinearly to the input's `[H, W]` (`align_corners = false`),
    /// as [`DeepLabV3::forward`] does.
    pub fn upsample(&self, logits: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
        self.matrices.resize(logits, size, Corners::HalfPixel)
    }

    /// Number of classes the model predicts.
    pub fn num_classes(&self) -> usize {
        self.classifier.final_conv.weight.shape().dims::<4>()[0]
    }

    /// The inference model with every BatchNorm folded into the convolution before it
    /// (`W' = W·γ/√(var+ε)`, `b' = β − mean·γ/√(var+ε)`): the same outputs as the unfolded model in
    /// inference, up to float rounding, without the BatchNorm passes.
    ///
    /// For inference only (a non-autodiff backend, or after `valid()`): a folded BatchNorm no
    /// longer normalises with batch statistics.
    ///
    /// # Panics
    /// On an autodiff backend, where the model is in training mode.
    ///
    /// ```
    /// use burn::backend::Flex;
    /// use burn::prelude::*;
    /// use deeplab::{DeepLabV3Config, ResNetConfig};
    ///
    /// let config = DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
    ///     .with_aspp_channels(16);
    /// let model = config.init::<Flex>(&Default::default());
    /// let x = Tensor::<Flex, 4>::ones([2, 3, 32, 32], &Default::default());
    /// let reference = model.forward(x.clone()).out;
    /// let folded = model.fold_batch_norms().forward(x).out;
    /// assert!(reference.sub(folded).abs().max().into_scalar() < 1e-4);
    /// ```
    pub fn fold_batch_norms(self) -> Self {
        let device = self.backbone.conv1.weight.device();
        assert!(
            !B::ad_enabled(&device),
            "fold_batch_norms is for inference: call it on `model.valid()`"
        );
        Self {
            backbone: self.backbone.fold_batch_norms(),
            classifier: self.classifier.fold_batch_norms(),
            aux_classifier: self.aux_classifier.map(FcnHead::fold_batch_norms),
            matrices: self.matrices,
        }
    }

    /// Whether [`DeepLabV3::fold_batch_norms`] (or a part's own folding) has folded BatchNorms
    /// of this model into its convolutions: then it is for inference only, and cannot be exported
    /// or saved as a checkpoint.
    pub fn is_folded(&self) -> bool {
        self.backbone.is_folded()
            || self.classifier.bn.folded
            || self.classifier.aspp.is_folded()
            || self.aux_classifier.as_ref().is_some_and(|a| a.bn.folded)
    }

    /// Disables both dropouts: training mode (batch-statistics BatchNorm) becomes deterministic.
    /// Used by the torchvision parity test; handy for debugging.
    pub fn without_dropout(mut self) -> Self {
        self.classifier.aspp.dropout.prob = 0.0;
        if let Some(aux) = self.aux_classifier.as_mut() {
            aux.dropout.prob = 0.0;
        }
        self
    }
}
