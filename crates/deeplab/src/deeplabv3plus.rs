//! DeepLabV3+ (Chen et al. 2018), exactly as segmentation_models_pytorch 0.6.0's `DeepLabV3Plus`
//! with a ResNet encoder: a ResNet dilated to output stride 16 (or 8) with every convolution of
//! a dilated stage at the stage's rate; the ASPP (depthwise-separable atrous branches by default)
//! and a separable 3×3 on `layer4`, upsampled to 1/4 and concatenated with `layer1` reduced to 48
//! channels; a separable 3×3; a 1×1 classifier; ×4 bilinear upsampling. Both upsamplings use
//! `align_corners = true`, as SMP's `nn.Upsample` does.

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::serde::{Deserialize, Serialize};

use crate::aspp::{Aspp, AsppConfig};
use crate::conv_bn::{classifier_conv, conv_forward, head_conv, ConvBn};
use crate::deeplabv3::DeepLabOutput;
use crate::error::ConfigError;
use crate::resnet::{Dilation, ResNet, ResNetConfig, RESNET101_BLOCKS, RESNET50_BLOCKS};
use crate::upsample::{Corners, MatrixCache};

/// DeepLabV3+ configuration: [`DeepLabV3PlusConfig::new`] gives SMP's `DeepLabV3Plus` defaults
/// for an encoder of any depth and width (output stride 16, the encoder dilated as SMP's
/// `make_dilated` does, separable ASPP, 256 decoder channels); presets
/// [`DeepLabV3PlusConfig::deeplabv3plus_resnet50`], [`DeepLabV3PlusConfig::deeplabv3plus_resnet101`].
///
/// ```
/// use deeplab::{DeepLabV3PlusConfig, Dilation, ResNetConfig};
/// let config = DeepLabV3PlusConfig::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2);
/// assert_eq!(config.output_stride(), 16);
/// // The encoder's own configuration builds SMP's encoder.
/// assert_eq!(config.encoder.dilation, Dilation::Uniform);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "burn::serde", from = "PlusConfigRecord")]
pub struct DeepLabV3PlusConfig {
    /// The ResNet encoder: its `replace_stride_with_dilation` sets the output stride
    /// (`[false, false, true]`: 16, `[false, true, true]`: 8, see
    /// [`DeepLabV3PlusConfig::with_output_stride`]) and its `dilation` is [`Dilation::Uniform`]
    /// (every convolution of a dilated stage at the stage's rate).
    pub encoder: ResNetConfig,
    /// Output classes.
    pub num_classes: usize,
    /// Width of the ASPP and the decoder (SMP's `decoder_channels`: 256).
    pub decoder_channels: usize,
    /// Width `layer1` is reduced to before the concatenation (SMP: 48, fixed).
    pub low_level_channels: usize,
    /// ASPP atrous rates, at either output stride (SMP: 12, 24, 36).
    pub atrous_rates: Vec<usize>,
    /// Depthwise-separable ASPP branches (SMP's `decoder_aspp_separable`: true).
    pub aspp_separable: bool,
    /// Dropout after the ASPP projection (SMP: 0.5).
    pub aspp_dropout: f64,
}

impl burn::config::Config for DeepLabV3PlusConfig {}

/// [`DeepLabV3PlusConfig`] as written: configurations written before the encoder recorded its
/// dilation schedule were all built with SMP's, so an absent one reads as [`Dilation::Uniform`].
#[derive(Deserialize)]
#[serde(crate = "burn::serde")]
struct PlusConfigRecord {
    encoder: EncoderRecord,
    num_classes: usize,
    decoder_channels: usize,
    low_level_channels: usize,
    atrous_rates: Vec<usize>,
    aspp_separable: bool,
    aspp_dropout: f64,
}

#[derive(Deserialize)]
#[serde(crate = "burn::serde")]
struct EncoderRecord {
    blocks: [usize; 4],
    base_width: usize,
    replace_stride_with_dilation: [bool; 3],
    num_classes: Option<usize>,
    dilation: Option<Dilation>,
}

impl From<PlusConfigRecord> for DeepLabV3PlusConfig {
    fn from(r: PlusConfigRecord) -> Self {
        let e = r.encoder;
        Self {
            encoder: ResNetConfig::new(e.blocks)
                .with_base_width(e.base_width)
                .with_replace_stride_with_dilation(e.replace_stride_with_dilation)
                .with_num_classes(e.num_classes)
                .with_dilation(e.dilation.unwrap_or(Dilation::Uniform)),
            num_classes: r.num_classes,
            decoder_channels: r.decoder_channels,
            low_level_channels: r.low_level_channels,
            atrous_rates: r.atrous_rates,
            aspp_separable: r.aspp_separable,
            aspp_dropout: r.aspp_dropout,
        }
    }
}

impl DeepLabV3PlusConfig {
    /// SMP's `DeepLabV3Plus(classes=num_classes)` with `encoder`'s depth and width: output stride
    /// 16 with SMP's uniform dilation (the encoder's own stride and dilation settings are
    /// replaced), separable ASPP with rates 12/24/36, 256 decoder channels, 48 low-level
    /// channels, ASPP dropout 0.5.
    pub fn new(encoder: ResNetConfig, num_classes: usize) -> Self {
        Self {
            encoder: encoder
                .with_replace_stride_with_dilation([false, false, true])
                .with_dilation(Dilation::Uniform),
            num_classes,
            decoder_channels: 256,
            low_level_channels: 48,
            atrous_rates: vec![12, 24, 36],
            aspp_separable: true,
            aspp_dropout: 0.5,
        }
    }

    /// SMP's `DeepLabV3Plus(encoder_name="resnet50", classes=num_classes)`: output stride 16.
    pub fn deeplabv3plus_resnet50(num_classes: usize) -> Self {
        Self::new(ResNetConfig::new(RESNET50_BLOCKS), num_classes)
    }

    /// SMP's `DeepLabV3Plus(encoder_name="resnet101", classes=num_classes)`: output stride 16.
    pub fn deeplabv3plus_resnet101(num_classes: usize) -> Self {
        Self::new(ResNetConfig::new(RESNET101_BLOCKS), num_classes)
    }

    /// Sets the ASPP and decoder width (SMP's `decoder_channels`).
    pub fn with_decoder_channels(mut self, channels: usize) -> Self {
        self.decoder_channels = channels;
        self
    }

    /// Sets the width `layer1` is reduced to.
    pub fn with_low_level_channels(mut self, channels: usize) -> Self {
        self.low_level_channels = channels;
        self
    }

    /// Sets the ASPP atrous rates (SMP's `decoder_atrous_rates`).
    pub fn with_atrous_rates(mut self, rates: Vec<usize>) -> Self {
        self.atrous_rates = rates;
        self
    }

    /// Depthwise-separable (true) or plain ASPP branches (SMP's `decoder_aspp_separable`).
    pub fn with_aspp_separable(mut self, separable: bool) -> Self {
        self.aspp_separable = separable;
        self
    }

    /// Sets the dropout after the ASPP projection (SMP's `decoder_aspp_dropout`).
    pub fn with_aspp_dropout(mut self, dropout: f64) -> Self {
        self.aspp_dropout = dropout;
        self
    }

    /// Sets the encoder's output stride: 16 (SMP's default) or 8 (`encoder_output_stride=8`).
    ///
    /// ```
    /// use deeplab::DeepLabV3PlusConfig;
    /// let config = DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).with_output_stride(8)?;
    /// assert_eq!(config.output_stride(), 8);
    /// assert!(DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).with_output_stride(32).is_err());
    /// # Ok::<(), deeplab::ConfigError>(())
    /// ```
    pub fn with_output_stride(mut self, output_stride: usize) -> Result<Self, ConfigError> {
        self.encoder.replace_stride_with_dilation = match output_stride {
            16 => [false, false, true],
            8 => [false, true, true],
            got => {
                return Err(ConfigError::OutputStride {
                    model: "DeepLabV3+",
                    got,
                    allowed: "8 or 16",
                })
            }
        };
        Ok(self)
    }

    /// The encoder's output stride: input size ÷ `layer4` size.
    pub fn output_stride(&self) -> usize {
        self.encoder.output_stride()
    }

    /// Builds the model with SMP's initialisation: the encoder as torchvision's ResNet
    /// (Kaiming-normal fan-out convolutions), every decoder and head convolution PyTorch's default
    /// (SMP's DeepLab models do not re-initialise them), BatchNorm γ = 1, β = 0.
    pub fn init<B: Backend>(&self, device: &B::Device) -> DeepLabV3Plus<B> {
        let ch = self.decoder_channels;
        let aspp = AsppConfig::new(self.encoder.layer4_channels())
            .with_out_channels(ch)
            .with_atrous_rates(self.atrous_rates.clone())
            .with_dropout(self.aspp_dropout)
            .with_separable(self.aspp_separable);
        let low = self.low_level_channels;
        DeepLabV3Plus {
            encoder: self.encoder.init(device),
            decoder: DeepLabV3PlusDecoder {
                aspp: aspp.init(device),
                aspp_conv: ConvBn::separable([ch, ch], 3, 1, device),
                block1: ConvBn::new(
                    head_conv([self.encoder.layer1_channels(), low], 1, 1),
                    device,
                ),
                block2: ConvBn::separable([ch + low, ch], 3, 1, device),
                matrices: MatrixCache::default(),
            },
            segmentation_head: classifier_conv([ch, self.num_classes]).init(device),
            output_stride: self.output_stride(),
            matrices: MatrixCache::default(),
        }
    }
}

/// SMP's `DeepLabV3PlusDecoder`: ASPP on `layer4`, fused with `layer1` at 1/4 of the input.
#[derive(Module, Debug)]
pub struct DeepLabV3PlusDecoder<B: Backend> {
    /// `decoder.aspp.0`
    pub aspp: Aspp<B>,
    /// `decoder.aspp.1` (separable 3×3) and `decoder.aspp.2` (BatchNorm), then ReLU.
    pub aspp_conv: ConvBn<B>,
    /// `decoder.block1`: `layer1` → 1×1 to the low-level width → BN → ReLU.
    pub block1: ConvBn<B>,
    /// `decoder.block2`: the concatenation → separable 3×3 → BN → ReLU.
    pub block2: ConvBn<B>,
    /// The upsampling matrices of this decoder's feature sizes.
    #[module(skip)]
    matrices: MatrixCache,
}

impl<B: Backend> DeepLabV3PlusDecoder<B> {
    /// Decoder features `[N, decoder_channels, H/4, W/4]` from `layer1` (1/4) and `layer4`.
    pub fn forward(&self, layer1: Tensor<B, 4>, layer4: Tensor<B, 4>) -> Tensor<B, 4> {
        let x = self.aspp_conv.forward_relu(self.aspp.forward(layer4));
        let [.., h, w] = layer1.dims();
        let x = self.matrices.resize(x, [h, w], Corners::Aligned);
        let low = self.block1.forward_relu(layer1);
        self.block2.forward_relu(Tensor::cat(vec![x, low], 1))
    }

    /// Folds each BatchNorm into its convolution (inference only).
    pub fn fold_batch_norms(self) -> Self {
        Self {
            aspp: self.aspp.fold_batch_norms(),
            aspp_conv: self.aspp_conv.fold(),
            block1: self.block1.fold(),
            block2: self.block2.fold(),
            matrices: self.matrices,
        }
    }
}

/// DeepLabV3+ with a ResNet encoder. Field names follow SMP's, so weight keys map directly (see
/// [`crate::weights`]).
///
/// BatchNorm uses batch statistics and dropout is active on autodiff backends (training);
/// call [`burn::module::AutodiffModule::valid`] for inference.
#[derive(Module, Debug)]
pub struct DeepLabV3Plus<B: Backend> {
    /// The ResNet encoder (SMP's `encoder`).
    pub encoder: ResNet<B>,
    /// ASPP and low-level fusion (SMP's `decoder`).
    pub decoder: DeepLabV3PlusDecoder<B>,
    /// `segmentation_head.0`: the 1×1 classifier (with bias).
    pub segmentation_head: Conv2d<B>,
    /// The encoder's output stride (input sides must be multiples of it).
    pub output_stride: usize,
    /// The upsampling matrices of this model's input sizes.
    #[module(skip)]
    matrices: MatrixCache,
}

impl<B: Backend> DeepLabV3Plus<B> {
    /// `[N, 3, H, W]` normalised images → logits at `H × W` (`aux` is `None`: SMP's DeepLabV3+ has
    /// no auxiliary segmentation head).
    ///
    /// # Panics
    /// If `H` or `W` is not a multiple of the output stride (SMP raises there too); see
    /// [`DeepLabV3Plus::input_size_for`] for the nearest valid size.
    ///
    /// ```
    /// use burn::backend::Flex;
    /// use burn::prelude::*;
    /// use deeplab::{DeepLabV3PlusConfig, ResNetConfig};
    ///
    /// let device = Default::default();
    /// // A small model (SMP's ResNet-50 one: `DeepLabV3PlusConfig::deeplabv3plus_resnet50(2)`).
    /// let config = DeepLabV3PlusConfig::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
    ///     .with_decoder_channels(16)
    ///     .with_output_stride(16)?;
    /// let model = config.init::<Flex>(&device);
    /// let image = Tensor::<Flex, 4>::zeros([1, 3, 64, 96], &device);
    /// assert_eq!(model.forward(image).out.dims(), [1, 2, 64, 96]);
    /// assert_eq!(model.input_size_for([57, 71]), [64, 80]);
    /// # Ok::<(), deeplab::ConfigError>(())
    /// ```
    pub fn forward(&self, x: Tensor<B, 4>) -> DeepLabOutput<B> {
        let [_, _, h, w] = x.dims();
        let os = self.output_stride;
        assert!(
            h % os == 0 && w % os == 0,
            "DeepLabV3+ needs input sides that are multiples of its output stride {os}, got \
             {h}×{w}: pad or resize the input to {:?}",
            self.input_size_for([h, w])
        );
        let features = self.encoder.forward(x);
        let y = self.decoder.forward(features.layer1, features.layer4);
        let logits = self.classify(y);
        DeepLabOutput {
            out: self.upsample(logits, [h, w]),
            aux: None,
        }
    }

    /// `segmentation_head`: decoder features → logits at 1/4 of the input.
    pub fn classify(&self, decoded: Tensor<B, 4>) -> Tensor<B, 4> {
        conv_forward(&self.segmentation_head, decoded)
    }

    /// Logits resized bilinearly to the input's `[H, W]` (`align_corners = true`), as
    /// [`DeepLabV3Plus::forward`] does.
    pub fn upsample(&self, logits: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
        self.matrices.resize(logits, size, Corners::Aligned)
    }

    /// The smallest `[height, width]` at least `size` whose sides are multiples of the output
    /// stride (what SMP's error message suggests padding to).
    pub fn input_size_for(&self, [h, w]: [usize; 2]) -> [usize; 2] {
        let os = self.output_stride;
        [h.div_ceil(os) * os, w.div_ceil(os) * os]
    }

    /// Number of classes the model predicts.
    pub fn num_classes(&self) -> usize {
        self.segmentation_head.weight.shape().dims::<4>()[0]
    }

    /// The inference model with every BatchNorm folded into the convolution before it (see
    /// [`crate::DeepLabV3::fold_batch_norms`]).
    ///
    /// # Panics
    /// On an autodiff backend, where the model is in training mode.
    pub fn fold_batch_norms(self) -> Self {
        let device = self.encoder.conv1.weight.device();
        assert!(
            !B::ad_enabled(&device),
            "fold_batch_norms is for inference: call it on `model.valid()`"
        );
        Self {
            encoder: self.encoder.fold_batch_norms(),
            decoder: self.decoder.fold_batch_norms(),
            segmentation_head: self.segmentation_head,
            output_stride: self.output_stride,
            matrices: self.matrices,
        }
    }

    /// Whether BatchNorms of this model are folded into its convolutions (see
    /// [`crate::DeepLabV3::is_folded`]).
    pub fn is_folded(&self) -> bool {
        let decoder = &self.decoder;
        self.encoder.is_folded()
            || decoder.aspp.is_folded()
            || [&decoder.aspp_conv, &decoder.block1, &decoder.block2]
                .iter()
                .any(|c| c.bn.folded)
    }

    /// Disables the ASPP dropout: training mode (batch-statistics BatchNorm) becomes
    /// deterministic. Used by the parity tests.
    pub fn without_dropout(mut self) -> Self {
        self.decoder.aspp.dropout.prob = 0.0;
        self
    }
}
