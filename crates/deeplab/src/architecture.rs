//! DeepLabV3 or DeepLabV3+ behind one type, chosen at run time (from a command line or a
//! checkpoint's metadata): [`DeepLabConfig`] → [`DeepLab`].

use std::path::Path;

use burn::prelude::*;
use burn::serde::{Deserialize, Serialize};

use crate::deeplabv3::{DeepLabOutput, DeepLabV3, DeepLabV3Config};
use crate::deeplabv3plus::{DeepLabV3Plus, DeepLabV3PlusConfig};
use crate::resnet::ResNetConfig;
use crate::weights::{LoadReport, WeightsError};

/// Which architecture, with its configuration. Serialised with an `arch` tag (`deeplabv3` or
/// `deeplabv3plus`) beside the architecture's own fields.
///
/// ```
/// use deeplab::{DeepLabConfig, DeepLabV3PlusConfig};
/// let config = DeepLabConfig::from(DeepLabV3PlusConfig::deeplabv3plus_resnet50(2));
/// assert_eq!(config.arch_name(), "deeplabv3plus");
/// assert_eq!(config.input_multiple(), 16);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(crate = "burn::serde", tag = "arch")]
pub enum DeepLabConfig {
    /// torchvision's DeepLabV3 (output stride 8, FCN aux head).
    #[serde(rename = "deeplabv3")]
    DeepLabV3(DeepLabV3Config),
    /// segmentation_models_pytorch's DeepLabV3+ (output stride 16 or 8, no aux head).
    #[serde(rename = "deeplabv3plus")]
    DeepLabV3Plus(DeepLabV3PlusConfig),
}

impl From<DeepLabV3Config> for DeepLabConfig {
    fn from(config: DeepLabV3Config) -> Self {
        Self::DeepLabV3(config)
    }
}

impl From<DeepLabV3PlusConfig> for DeepLabConfig {
    fn from(config: DeepLabV3PlusConfig) -> Self {
        Self::DeepLabV3Plus(config)
    }
}

impl DeepLabConfig {
    /// Builds the model (see each architecture's `init`).
    pub fn init<B: Backend>(&self, device: &B::Device) -> DeepLab<B> {
        match self {
            Self::DeepLabV3(c) => DeepLab::DeepLabV3(c.init(device)),
            Self::DeepLabV3Plus(c) => DeepLab::DeepLabV3Plus(c.init(device)),
        }
    }

    /// `deeplabv3` or `deeplabv3plus`.
    pub fn arch_name(&self) -> &'static str {
        match self {
            Self::DeepLabV3(_) => "deeplabv3",
            Self::DeepLabV3Plus(_) => "deeplabv3plus",
        }
    }

    /// The ResNet backbone (encoder).
    pub fn backbone(&self) -> &ResNetConfig {
        match self {
            Self::DeepLabV3(c) => &c.backbone,
            Self::DeepLabV3Plus(c) => &c.encoder,
        }
    }

    /// 50 or 101 for the ResNet-50/101 block counts, `None` for other (small) backbones.
    pub fn resnet_depth(&self) -> Option<usize> {
        match self.backbone().blocks {
            [3, 4, 6, 3] => Some(50),
            [3, 4, 23, 3] => Some(101),
            _ => None,
        }
    }

    /// Classes predicted.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::DeepLabV3(c) => c.num_classes,
            Self::DeepLabV3Plus(c) => c.num_classes,
        }
    }

    /// The backbone's output stride.
    pub fn output_stride(&self) -> usize {
        self.backbone().output_stride()
    }

    /// What input sides must be multiples of: the output stride for DeepLabV3+ (SMP's rule), 1
    /// for DeepLabV3 (torchvision takes any size).
    pub fn input_multiple(&self) -> usize {
        match self {
            Self::DeepLabV3(_) => 1,
            Self::DeepLabV3Plus(c) => c.output_stride(),
        }
    }

    /// A short description, e.g. `DeepLabV3+ ResNet-50, output stride 16`.
    pub fn describe(&self) -> String {
        let backbone = match self.resnet_depth() {
            Some(d) => format!("ResNet-{d}"),
            None => format!("ResNet {:?}", self.backbone().blocks),
        };
        let name = match self {
            Self::DeepLabV3(_) => "DeepLabV3",
            Self::DeepLabV3Plus(_) => "DeepLabV3+",
        };
        format!("{name} {backbone}, output stride {}", self.output_stride())
    }
}

/// DeepLabV3 or DeepLabV3+, with the operations the training and inference code needs.
#[derive(Module, Debug)]
pub enum DeepLab<B: Backend> {
    /// torchvision's DeepLabV3.
    DeepLabV3(DeepLabV3<B>),
    /// segmentation_models_pytorch's DeepLabV3+.
    DeepLabV3Plus(DeepLabV3Plus<B>),
}

impl<B: Backend> DeepLab<B> {
    /// `[N, 3, H, W]` normalised images → logits at `H × W` (see each architecture's `forward`).
    pub fn forward(&self, x: Tensor<B, 4>) -> DeepLabOutput<B> {
        match self {
            Self::DeepLabV3(m) => m.forward(x),
            Self::DeepLabV3Plus(m) => m.forward(x),
        }
    }

    /// Classes predicted.
    pub fn num_classes(&self) -> usize {
        match self {
            Self::DeepLabV3(m) => m.num_classes(),
            Self::DeepLabV3Plus(m) => m.num_classes(),
        }
    }

    /// The inference model with BatchNorms folded (see [`DeepLabV3::fold_batch_norms`]).
    pub fn fold_batch_norms(self) -> Self {
        match self {
            Self::DeepLabV3(m) => Self::DeepLabV3(m.fold_batch_norms()),
            Self::DeepLabV3Plus(m) => Self::DeepLabV3Plus(m.fold_batch_norms()),
        }
    }

    /// Whether BatchNorms are folded into the convolutions (inference only; see
    /// [`DeepLabV3::is_folded`]).
    pub fn is_folded(&self) -> bool {
        match self {
            Self::DeepLabV3(m) => m.is_folded(),
            Self::DeepLabV3Plus(m) => m.is_folded(),
        }
    }

    /// Deterministic training mode: dropout off.
    pub fn without_dropout(self) -> Self {
        match self {
            Self::DeepLabV3(m) => Self::DeepLabV3(m.without_dropout()),
            Self::DeepLabV3Plus(m) => Self::DeepLabV3Plus(m.without_dropout()),
        }
    }

    /// Loads pretrained weights in the architecture's own format — a torchvision DeepLabV3
    /// state_dict, or an SMP DeepLabV3+ one — or an ImageNet ResNet for the backbone only
    /// (see [`DeepLabV3::load_torchvision`], [`DeepLabV3Plus::load_smp`]).
    pub fn load_pretrained(
        self,
        path: impl AsRef<Path>,
    ) -> Result<(Self, LoadReport), WeightsError> {
        Ok(match self {
            Self::DeepLabV3(m) => {
                let (m, report) = m.load_torchvision(path)?;
                (Self::DeepLabV3(m), report)
            }
            Self::DeepLabV3Plus(m) => {
                let (m, report) = m.load_smp(path)?;
                (Self::DeepLabV3Plus(m), report)
            }
        })
    }

    /// Writes the weights as safetensors with the reference library's keys (torchvision's for
    /// DeepLabV3, SMP's for DeepLabV3+).
    pub fn save_safetensors(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        match self {
            Self::DeepLabV3(m) => m.save_torchvision_safetensors(path),
            Self::DeepLabV3Plus(m) => m.save_smp_safetensors(path),
        }
    }
}
