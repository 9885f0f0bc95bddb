//! Models in the reference libraries' own files: a torchvision DeepLabV3 or SMP DeepLabV3+
//! state_dict (`.pth` from `torch.save(model.state_dict())`, or safetensors), whose architecture
//! is read from its keys and shapes (kind, ResNet depth and width, classes, aux head, separable
//! ASPP); and SMP's `save_pretrained` folder (`config.json` + `model.safetensors`), whose
//! `config.json` names the rest. Written back by [`write_smp_pretrained`].
//!
//! Vessel models have 2 classes (softmax, vessel = class 1) or, as SMP users often train binary
//! models, 1 (sigmoid); other class counts are refused.

use std::path::{Path, PathBuf};

use deeplab::weights::{inspect, CheckpointKind, CheckpointSummary};
use deeplab::{DeepLab, DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;

/// The files of an SMP `save_pretrained` folder.
pub const SMP_CONFIG: &str = "config.json";
/// The weights of an SMP `save_pretrained` folder.
pub const SMP_WEIGHTS: &str = "model.safetensors";

fn bad(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// 1 or 2 classes, else an error naming the file.
fn check_classes(path: &Path, classes: usize) -> Result<(), TrainError> {
    if classes == 1 || classes == 2 {
        return Ok(());
    }
    Err(bad(
        path,
        format!(
            "the model has {classes} classes; vessel prediction takes a model with 2 classes \
             (softmax, vessel = class 1) or 1 (sigmoid, as SMP's `classes=1`)"
        ),
    ))
}

/// The architecture of the state_dict in `path`, from its keys and shapes. `output_stride` is
/// DeepLabV3+'s encoder stride (16, SMP's default, or 8), which a state_dict does not record;
/// DeepLabV3 is torchvision's, at output stride 8.
pub fn state_dict_config(
    path: &Path,
    output_stride: Option<usize>,
) -> Result<(DeepLabConfig, CheckpointSummary), TrainError> {
    let summary = inspect(path)?;
    check_classes(path, summary.num_classes)?;
    let backbone = ResNetConfig::new(summary.blocks).with_base_width(summary.base_width);
    let config = match summary.kind {
        CheckpointKind::DeepLabV3 => {
            if output_stride.is_some_and(|os| os != 8) {
                return Err(bad(
                    path,
                    "a torchvision DeepLabV3 has output stride 8; --output-stride is for SMP's \
                     DeepLabV3+",
                ));
            }
            DeepLabV3Config::new(backbone, summary.num_classes)
                .with_aux_classifier(summary.aux_classifier)
                .into()
        }
        CheckpointKind::DeepLabV3Plus => DeepLabV3PlusConfig::new(backbone, summary.num_classes)
            .with_aspp_separable(summary.aspp_separable)
            .with_output_stride(output_stride.unwrap_or(16))
            .map_err(|e| bad(path, e.to_string()))?
            .into(),
        CheckpointKind::ResNetBackbone => {
            return Err(bad(
                path,
                "this is an ImageNet ResNet (a backbone): predicting needs a whole DeepLabV3 or \
                 DeepLabV3+ state_dict",
            ))
        }
    };
    Ok((config, summary))
}

/// SMP's `config.json` (the `DeepLabV3Plus` arguments `save_pretrained` records).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmpConfig {
    /// `"DeepLabV3Plus"`.
    #[serde(rename = "_model_class")]
    pub model_class: String,
    /// `resnet50` or `resnet101`.
    pub encoder_name: String,
    /// Encoder stages (5).
    #[serde(default = "five")]
    pub encoder_depth: usize,
    /// Pretrained weights the encoder started from (recorded, not used).
    #[serde(default)]
    pub encoder_weights: Option<String>,
    /// 16 or 8.
    #[serde(default = "sixteen")]
    pub encoder_output_stride: usize,
    /// ASPP and decoder width.
    #[serde(default = "two_five_six")]
    pub decoder_channels: usize,
    /// ASPP atrous rates.
    #[serde(default = "rates")]
    pub decoder_atrous_rates: Vec<usize>,
    /// Depthwise-separable ASPP branches.
    #[serde(default = "yes")]
    pub decoder_aspp_separable: bool,
    /// ASPP dropout.
    #[serde(default = "half")]
    pub decoder_aspp_dropout: f64,
    /// Input channels (3).
    #[serde(default = "three")]
    pub in_channels: usize,
    /// Output classes (1 or 2 for vessels).
    pub classes: usize,
    /// The output activation of `model.predict` (`null`, `sigmoid`, `softmax`, …).
    #[serde(default)]
    pub activation: Option<String>,
    /// The final upsampling factor (4).
    #[serde(default = "four")]
    pub upsampling: usize,
    /// SMP's optional classification head (not supported: `null`).
    #[serde(default)]
    pub aux_params: Option<serde_json::Value>,
}

fn five() -> usize {
    5
}
fn sixteen() -> usize {
    16
}
fn two_five_six() -> usize {
    256
}
fn rates() -> Vec<usize> {
    vec![12, 24, 36]
}
fn yes() -> bool {
    true
}
fn half() -> f64 {
    0.5
}
fn three() -> usize {
    3
}
fn four() -> usize {
    4
}

impl SmpConfig {
    /// The model this configuration describes.
    pub fn model_config(&self, path: &Path) -> Result<DeepLabConfig, TrainError> {
        if self.model_class != "DeepLabV3Plus" {
            return Err(bad(
                path,
                format!(
                    "`_model_class` is {}; this folder reader takes SMP's DeepLabV3Plus (for \
                     torchvision's DeepLabV3 give its state_dict file)",
                    self.model_class
                ),
            ));
        }
        let encoder = match self.encoder_name.as_str() {
            "resnet50" => ResNetConfig::resnet50_dilated(16),
            "resnet101" => ResNetConfig::resnet101_dilated(16),
            other => {
                return Err(bad(
                    path,
                    format!(
                        "`encoder_name` is {other}; the encoders built here are SMP's resnet50 \
                         and resnet101 (Bottleneck ResNets)"
                    ),
                ))
            }
        }
        .map_err(|e| bad(path, e.to_string()))?;
        let unsupported = |what: String| Err(bad(path, what));
        if self.encoder_depth != 5 || self.in_channels != 3 || self.upsampling != 4 {
            return unsupported(format!(
                "encoder_depth {}, in_channels {}, upsampling {}: the model built here has SMP's \
                 defaults 5, 3 and 4",
                self.encoder_depth, self.in_channels, self.upsampling
            ));
        }
        if self.aux_params.as_ref().is_some_and(|v| !v.is_null()) {
            return unsupported("`aux_params` (SMP's classification head) is not supported".into());
        }
        let activation = self.activation.as_deref().unwrap_or("identity");
        if !["identity", "sigmoid", "softmax", "softmax2d"].contains(&activation) {
            return unsupported(format!(
                "activation `{activation}`: the vessel probability is the sigmoid (1 class) or \
                 the softmax (2 classes) of the logits, which suits `null`, `sigmoid`, `softmax` \
                 or `softmax2d`"
            ));
        }
        check_classes(path, self.classes)?;
        Ok(DeepLabV3PlusConfig::new(encoder, self.classes)
            .with_decoder_channels(self.decoder_channels)
            .with_atrous_rates(self.decoder_atrous_rates.clone())
            .with_aspp_separable(self.decoder_aspp_separable)
            .with_aspp_dropout(self.decoder_aspp_dropout)
            .with_output_stride(self.encoder_output_stride)
            .map_err(|e| bad(path, e.to_string()))?
            .into())
    }

    /// SMP's configuration of `config` (a DeepLabV3+ with SMP's ResNet-50 or ResNet-101).
    pub fn for_model(config: &DeepLabConfig) -> Result<Self, String> {
        let DeepLabConfig::DeepLabV3Plus(c) = config else {
            return Err(format!(
                "{} is torchvision's architecture: SMP's save_pretrained format holds \
                 DeepLabV3+ models (export it as a torchvision state_dict)",
                config.describe()
            ));
        };
        let encoder_name = match (config.resnet_depth(), c.encoder.base_width) {
            (Some(depth), 64) => format!("resnet{depth}"),
            _ => {
                return Err(format!(
                    "its encoder (blocks {:?}, width {}) is none of SMP's: SMP's folder names the \
                     encoder (resnet50, resnet101); export the state_dict instead (--format smp)",
                    c.encoder.blocks, c.encoder.base_width
                ))
            }
        };
        Ok(Self {
            model_class: "DeepLabV3Plus".into(),
            encoder_name,
            encoder_depth: 5,
            encoder_weights: None,
            encoder_output_stride: c.output_stride(),
            decoder_channels: c.decoder_channels,
            decoder_atrous_rates: c.atrous_rates.clone(),
            decoder_aspp_separable: c.aspp_separable,
            decoder_aspp_dropout: c.aspp_dropout,
            in_channels: 3,
            classes: c.num_classes,
            activation: None,
            upsampling: 4,
            aux_params: None,
        })
    }
}

/// Whether `dir` is an SMP `save_pretrained` folder (it holds `config.json` naming a model class).
pub fn is_smp_pretrained(dir: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(dir.join(SMP_CONFIG)) else {
        return false;
    };
    serde_json::from_str::<serde_json::Value>(&text).is_ok_and(|v| v.get("_model_class").is_some())
}

/// The model configuration and weights file of an SMP `save_pretrained` folder.
pub fn read_smp_pretrained(dir: &Path) -> Result<(DeepLabConfig, PathBuf), TrainError> {
    let path = dir.join(SMP_CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|e| bad(&path, e.to_string()))?;
    let config: SmpConfig = serde_json::from_str(&text)
        .map_err(|e| bad(&path, format!("not SMP's config.json: {e}")))?;
    let model = config.model_config(&path)?;
    let weights = [SMP_WEIGHTS, "pytorch_model.bin"]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            bad(
                dir,
                format!("no {SMP_WEIGHTS} (or pytorch_model.bin) beside {SMP_CONFIG}"),
            )
        })?;
    Ok((model, weights))
}

/// Writes `model` as SMP's `save_pretrained` does: `dir/config.json` and `dir/model.safetensors`
/// (loadable with `segmentation_models_pytorch.from_pretrained(dir)`). DeepLabV3+ with SMP's
/// ResNet-50 or ResNet-101 only.
pub fn write_smp_pretrained<B: burn::prelude::Backend>(
    model: &DeepLab<B>,
    config: &DeepLabConfig,
    dir: &Path,
) -> Result<(), TrainError> {
    let smp = SmpConfig::for_model(config).map_err(|reason| bad(dir, reason))?;
    std::fs::create_dir_all(dir).map_err(|e| bad(dir, e.to_string()))?;
    model.save_safetensors(dir.join(SMP_WEIGHTS))?;
    let path = dir.join(SMP_CONFIG);
    let json = serde_json::to_string_pretty(&smp).map_err(|e| bad(&path, e.to_string()))?;
    std::fs::write(&path, json + "\n").map_err(|e| bad(&path, e.to_string()))
}
