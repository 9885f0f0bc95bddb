//! ResNet with Bottleneck blocks (torchvision `models/resnet.py`, v1.5: stride on the 3×3 conv),
//! with `replace_stride_with_dilation` for the dilated backbones of DeepLabV3 (torchvision's
//! dilation schedule) and DeepLabV3+ (segmentation_models_pytorch's, see [`Dilation`]).

use burn::nn::conv::Conv2d;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::serde::{Deserialize, Serialize};

use crate::batch_norm::BatchNorm2d;
use crate::conv_bn::{backbone_conv as conv, batch_norm, conv_bn_relu, ConvBn};
use crate::error::ConfigError;

/// Channel expansion of a Bottleneck block (its output has `4 · planes` channels).
pub const EXPANSION: usize = 4;

/// Bottleneck blocks per stage of ResNet-50.
pub const RESNET50_BLOCKS: [usize; 4] = [3, 4, 6, 3];
/// Bottleneck blocks per stage of ResNet-101.
pub const RESNET101_BLOCKS: [usize; 4] = [3, 4, 23, 3];

/// ResNet configuration. [`ResNetConfig::resnet50`] / [`ResNetConfig::resnet101`] are
/// torchvision's classifiers; [`ResNetConfig::resnet50_dilated`] / [`ResNetConfig::resnet101_dilated`]
/// the segmentation backbones. `ResNetConfig::new(blocks)` builds a segmentation backbone
/// dilated to output stride 8 (the field defaults below), as DeepLabV3 uses it.
#[derive(Config, Debug, PartialEq)]
pub struct ResNetConfig {
    /// Bottleneck blocks in `layer1..layer4` (ResNet-50: `[3, 4, 6, 3]`, ResNet-101: `[3, 4, 23, 3]`).
    pub blocks: [usize; 4],
    /// Stem width; `layer k` uses `planes = base_width · 2^(k−1)` (torchvision: 64).
    #[config(default = 64)]
    pub base_width: usize,
    /// torchvision's `replace_stride_with_dilation` for `layer2..layer4`: `[false, true, true]` gives
    /// output stride 8 (DeepLabV3), `[false, false, true]` output stride 16, all false a classifier
    /// backbone (output stride 32).
    #[config(default = "[false, true, true]")]
    pub replace_stride_with_dilation: [bool; 3],
    /// Classes of the ImageNet-style classifier (global average pool + `fc`) after `layer4`;
    /// `None` (the default) for a segmentation backbone, which has no `fc`.
    #[config(default = "None")]
    pub num_classes: Option<usize>,
    /// How the dilated stages dilate their blocks: torchvision's schedule (the default,
    /// DeepLabV3's backbone) or SMP's uniform one (DeepLabV3+'s encoder). A configuration written
    /// without this field reads as torchvision's.
    #[config(default = "Dilation::Torchvision")]
    pub dilation: Dilation,
}

impl ResNetConfig {
    /// torchvision's `resnet50()`: the ImageNet classifier (output stride 32, `fc` with 1000
    /// classes). For the segmentation backbone see [`ResNetConfig::resnet50_dilated`].
    pub fn resnet50() -> Self {
        Self::new(RESNET50_BLOCKS).classifier()
    }

    /// torchvision's `resnet101()`: the ImageNet classifier (output stride 32, `fc` with 1000
    /// classes). For the segmentation backbone see [`ResNetConfig::resnet101_dilated`].
    pub fn resnet101() -> Self {
        Self::new(RESNET101_BLOCKS).classifier()
    }

    /// ResNet-50 without `fc`, dilated to `output_stride` (8, 16 or 32): torchvision's
    /// `deeplabv3_resnet50` uses output stride 8.
    ///
    /// ```
    /// use deeplab::ResNetConfig;
    /// let backbone = ResNetConfig::resnet50_dilated(8)?;
    /// assert_eq!((backbone.output_stride(), backbone.num_classes), (8, None));
    /// assert!(ResNetConfig::resnet50_dilated(4).is_err());
    /// # Ok::<(), deeplab::ConfigError>(())
    /// ```
    pub fn resnet50_dilated(output_stride: usize) -> Result<Self, ConfigError> {
        Self::new(RESNET50_BLOCKS).with_output_stride(output_stride)
    }

    /// ResNet-101 without `fc`, dilated to `output_stride` (8, 16 or 32): torchvision's
    /// `deeplabv3_resnet101` uses output stride 8.
    pub fn resnet101_dilated(output_stride: usize) -> Result<Self, ConfigError> {
        Self::new(RESNET101_BLOCKS).with_output_stride(output_stride)
    }

    fn classifier(self) -> Self {
        self.with_replace_stride_with_dilation([false; 3])
            .with_num_classes(Some(1000))
    }

    /// Sets `replace_stride_with_dilation` from an output stride of 8, 16 or 32; any other
    /// value is an error.
    pub fn with_output_stride(self, output_stride: usize) -> Result<Self, ConfigError> {
        let dilate = match output_stride {
            8 => [false, true, true],
            16 => [false, false, true],
            32 => [false, false, false],
            got => {
                return Err(ConfigError::OutputStride {
                    model: "ResNet",
                    got,
                    allowed: "8, 16 or 32",
                })
            }
        };
        Ok(self.with_replace_stride_with_dilation(dilate))
    }

    /// Ratio of input size to `layer4` feature size.
    pub fn output_stride(&self) -> usize {
        4 * self
            .replace_stride_with_dilation
            .iter()
            .map(|&d| if d { 1 } else { 2 })
            .product::<usize>()
    }

    /// Output channels of `layer1` (DeepLabV3+'s low-level input).
    pub fn layer1_channels(&self) -> usize {
        self.base_width * EXPANSION
    }

    /// Output channels of `layer3` (the aux head's input).
    pub fn layer3_channels(&self) -> usize {
        self.base_width * 4 * EXPANSION
    }

    /// Output channels of `layer4` (the ASPP's input).
    pub fn layer4_channels(&self) -> usize {
        self.base_width * 8 * EXPANSION
    }

    /// Builds the backbone with torchvision's initialisation (Kaiming-normal fan-out convs,
    /// BatchNorm γ = 1, β = 0) and the configured dilation schedule ([`ResNetConfig::dilation`]).
    pub fn init<B: Backend>(&self, device: &B::Device) -> ResNet<B> {
        let base = self.base_width;
        let mut builder = LayerBuilder {
            inplanes: base,
            dilation: 1,
            style: self.dilation,
        };
        let [d2, d3, d4] = self.replace_stride_with_dilation;
        ResNet {
            conv1: conv([3, base], 7, 2, 1).init(device),
            bn1: batch_norm(base, device),
            maxpool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            layer1: builder.layer(base, self.blocks[0], 1, false, device),
            layer2: builder.layer(base * 2, self.blocks[1], 2, d2, device),
            layer3: builder.layer(base * 4, self.blocks[2], 2, d3, device),
            layer4: builder.layer(base * 8, self.blocks[3], 2, d4, device),
            fc: self
                .num_classes
                .map(|classes| LinearConfig::new(self.layer4_channels(), classes).init(device)),
        }
    }
}

/// How a stage whose stride is replaced by dilation dilates its blocks. Both give the same
/// feature-map sizes and the same parameters; the outputs differ. Written `"torchvision"` or
/// `"uniform"`; an absent value reads as the default, `Torchvision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    crate = "burn::serde",
    rename_all = "lowercase",
    from = "Option<DilationName>"
)]
pub enum Dilation {
    /// torchvision's `_make_layer(dilate=True)`: the stage's first block keeps the previous
    /// stage's dilation, the others use the new one (DeepLabV3's backbone).
    #[default]
    Torchvision,
    /// segmentation_models_pytorch's `make_dilated`: every convolution of the stage uses the new
    /// dilation (its DeepLabV3+ encoders).
    Uniform,
}

/// [`Dilation`] as written, for reading an absent value as the default.
#[derive(Deserialize)]
#[serde(crate = "burn::serde", rename_all = "lowercase")]
enum DilationName {
    Torchvision,
    Uniform,
}

impl From<Option<DilationName>> for Dilation {
    fn from(name: Option<DilationName>) -> Self {
        match name {
            None | Some(DilationName::Torchvision) => Self::Torchvision,
            Some(DilationName::Uniform) => Self::Uniform,
        }
    }
}

/// torchvision's `ResNet._make_layer` state: the running input width and dilation.
struct LayerBuilder {
    inplanes: usize,
    dilation: usize,
    style: Dilation,
}

impl LayerBuilder {
    fn layer<B: Backend>(
        &mut self,
        planes: usize,
        blocks: usize,
        mut stride: usize,
        dilate: bool,
        device: &B::Device,
    ) -> Vec<Bottleneck<B>> {
        let mut first_dilation = self.dilation;
        if dilate {
            self.dilation *= stride;
            stride = 1;
            if self.style == Dilation::Uniform {
                first_dilation = self.dilation;
            }
        }
        let out = planes * EXPANSION;
        let downsample = (stride != 1 || self.inplanes != out)
            .then(|| ConvBn::new(conv([self.inplanes, out], 1, stride, 1), device));
        let mut layer = Vec::with_capacity(blocks);
        layer.push(Bottleneck::new(
            self.inplanes,
            planes,
            stride,
            first_dilation,
            downsample,
            device,
        ));
        self.inplanes = out;
        for _ in 1..blocks {
            layer.push(Bottleneck::new(out, planes, 1, self.dilation, None, device));
        }
        layer
    }
}

/// Bottleneck block: 1×1 → 3×3 (stride, dilation) → 1×1 (×4), plus the identity or `downsample`.
#[derive(Module, Debug)]
pub struct Bottleneck<B: Backend> {
    /// 1×1 reduction.
    pub conv1: Conv2d<B>,
    /// BatchNorm after `conv1`.
    pub bn1: BatchNorm2d<B>,
    /// 3×3, carrying the block's stride and dilation.
    pub conv2: Conv2d<B>,
    /// BatchNorm after `conv2`.
    pub bn2: BatchNorm2d<B>,
    /// 1×1 expansion (×4).
    pub conv3: Conv2d<B>,
    /// BatchNorm after `conv3`.
    pub bn3: BatchNorm2d<B>,
    /// 1×1 conv + BN on the shortcut when the stride or width changes.
    pub downsample: Option<ConvBn<B>>,
}

impl<B: Backend> Bottleneck<B> {
    fn new(
        inplanes: usize,
        planes: usize,
        stride: usize,
        dilation: usize,
        downsample: Option<ConvBn<B>>,
        device: &B::Device,
    ) -> Self {
        Self {
            conv1: conv([inplanes, planes], 1, 1, 1).init(device),
            bn1: batch_norm(planes, device),
            conv2: conv([planes, planes], 3, stride, dilation).init(device),
            bn2: batch_norm(planes, device),
            conv3: conv([planes, planes * EXPANSION], 1, 1, 1).init(device),
            bn3: batch_norm(planes * EXPANSION, device),
            downsample,
        }
    }

    /// Folds each BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(self) -> Self {
        let (conv1, bn1) = self.bn1.fold_into(self.conv1);
        let (conv2, bn2) = self.bn2.fold_into(self.conv2);
        let (conv3, bn3) = self.bn3.fold_into(self.conv3);
        Self {
            conv1,
            bn1,
            conv2,
            bn2,
            conv3,
            bn3,
            downsample: self.downsample.map(ConvBn::fold),
        }
    }

    /// `relu(bn3(conv3(relu(bn2(conv2(relu(bn1(conv1(x)))))))) + identity)`, the identity through `downsample` when there is one.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let identity = match &self.downsample {
            Some(downsample) => downsample.forward(x.clone()),
            None => x.clone(),
        };
        let out = conv_bn_relu(&self.conv1, &self.bn1, x, None);
        let out = conv_bn_relu(&self.conv2, &self.bn2, out, None);
        conv_bn_relu(&self.conv3, &self.bn3, out, Some(identity))
    }
}

/// The feature maps the segmentation heads take from the backbone.
#[derive(Debug, Clone)]
pub struct ResNetFeatures<B: Backend> {
    /// `layer1` output, at 1/4 of the input (DeepLabV3+'s low-level feature).
    pub layer1: Tensor<B, 4>,
    /// `layer3` output (torchvision's `"aux"` feature).
    pub layer3: Tensor<B, 4>,
    /// `layer4` output (torchvision's `"out"` feature).
    pub layer4: Tensor<B, 4>,
}

/// torchvision's ResNet: stem, `layer1..layer4`, and (classifier only) global average pool + `fc`.
#[derive(Module, Debug)]
pub struct ResNet<B: Backend> {
    /// Stem: 7×7 stride-2 convolution.
    pub conv1: Conv2d<B>,
    /// Stem BatchNorm.
    pub bn1: BatchNorm2d<B>,
    /// Stem: 3×3 stride-2 max pooling.
    pub maxpool: MaxPool2d,
    /// Stage 1 (output stride 4).
    pub layer1: Vec<Bottleneck<B>>,
    /// Stage 2 (output stride 8).
    pub layer2: Vec<Bottleneck<B>>,
    /// Stage 3 (torchvision's `"aux"` feature).
    pub layer3: Vec<Bottleneck<B>>,
    /// Stage 4 (torchvision's `"out"` feature).
    pub layer4: Vec<Bottleneck<B>>,
    /// ImageNet classifier layer; `None` in a segmentation backbone.
    pub fc: Option<Linear<B>>,
}

impl<B: Backend> ResNet<B> {
    /// The stem: `maxpool(relu(bn1(conv1(x))))`, at 1/4 of the input.
    pub fn stem(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        self.stem_pool(self.stem_conv(x))
    }

    /// The stem's convolution: `relu(bn1(conv1(x)))`, at 1/2 of the input.
    pub fn stem_conv(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        conv_bn_relu(&self.conv1, &self.bn1, x, None)
    }

    /// The stem's `maxpool` (3×3, stride 2) of [`ResNet::stem_conv`]'s output.
    pub fn stem_pool(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        crate::kernels::max_pool2d(&self.maxpool, x)
    }

    /// `layer1` … `layer4`, in order.
    pub fn layers(&self) -> [&[Bottleneck<B>]; 4] {
        [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
    }

    /// One stage (one of [`ResNet::layers`]): its blocks in order.
    pub fn forward_layer(layer: &[Bottleneck<B>], x: Tensor<B, 4>) -> Tensor<B, 4> {
        layer.iter().fold(x, |x, block| block.forward(x))
    }

    /// Runs the trunk and returns the `layer1`, `layer3` and `layer4` feature maps.
    pub fn forward(&self, x: Tensor<B, 4>) -> ResNetFeatures<B> {
        let x = self.stem(x);
        let layer1 = Self::forward_layer(&self.layer1, x);
        let x = Self::forward_layer(&self.layer2, layer1.clone());
        let layer3 = Self::forward_layer(&self.layer3, x);
        let layer4 = Self::forward_layer(&self.layer4, layer3.clone());
        ResNetFeatures {
            layer1,
            layer3,
            layer4,
        }
    }

    /// Folds each BatchNorm into its convolution (inference only, see
    /// [`crate::DeepLabV3::fold_batch_norms`]).
    pub fn fold_batch_norms(self) -> Self {
        let fold = |layer: Vec<Bottleneck<B>>| {
            layer
                .into_iter()
                .map(Bottleneck::fold_batch_norms)
                .collect()
        };
        let (conv1, bn1) = self.bn1.fold_into(self.conv1);
        Self {
            conv1,
            bn1,
            maxpool: self.maxpool,
            layer1: fold(self.layer1),
            layer2: fold(self.layer2),
            layer3: fold(self.layer3),
            layer4: fold(self.layer4),
            fc: self.fc,
        }
    }

    /// Whether any BatchNorm of the trunk is folded into its convolution.
    pub fn is_folded(&self) -> bool {
        self.bn1.folded
            || [&self.layer1, &self.layer2, &self.layer3, &self.layer4]
                .iter()
                .flat_map(|layer| layer.iter())
                .any(|b| {
                    [&b.bn1, &b.bn2, &b.bn3].iter().any(|bn| bn.folded)
                        || b.downsample.as_ref().is_some_and(|d| d.bn.folded)
                })
    }

    /// Classifier logits `[N, num_classes]`: global average pool of `layer4`, then `fc`.
    ///
    /// # Panics
    /// If the model was built without `fc` (`num_classes = None`).
    pub fn classify(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let fc = self
            .fc
            .as_ref()
            .expect("ResNet built without `fc`: set ResNetConfig::num_classes");
        let features = self.forward(x).layer4;
        let pooled: Tensor<B, 2> = features.mean_dim(3).mean_dim(2).flatten(1, 3);
        fc.forward(pooled)
    }
}
