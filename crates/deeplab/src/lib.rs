#![deny(missing_docs)]
//! # deeplab — torchvision-exact DeepLabV3 and SMP-exact DeepLabV3+ for Burn
//!
//! Two segmentation architectures as Burn modules generic over the backend, numerically matching
//! their reference libraries:
//!
//! * [`DeepLabV3`]: torchvision's `deeplabv3_resnet50/101` — a ResNet-50/101 backbone dilated to
//!   output stride 8 (torchvision's dilation schedule), ASPP (rates 12/24/36), the DeepLab head
//!   and the FCN aux head;
//! * [`DeepLabV3Plus`]: segmentation_models_pytorch's `DeepLabV3Plus` — a ResNet encoder dilated to
//!   output stride 16 (or 8) with SMP's uniform dilation, depthwise-separable (or plain) ASPP, and
//!   the decoder fusing `layer1` at 1/4 of the input.
//!
//! [`DeepLabConfig`] / [`DeepLab`] hold either, chosen at run time. Reference `.pth` checkpoints
//! and safetensors load as they are ([`weights`]: torchvision's keys, SMP's keys, ImageNet
//! ResNets for the backbone), and models export to safetensors with those keys.
//!
//! ```
//! use burn::backend::Flex;
//! use burn::prelude::*;
//! use deeplab::{DeepLabV3Config, ResNetConfig};
//!
//! let device = Default::default();
//! // A small model (ResNet-50 would be `DeepLabV3Config::deeplabv3_resnet50(2)`).
//! let config = DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
//!     .with_aspp_channels(16);
//! let model = config.init::<Flex>(&device);
//! let image = Tensor::<Flex, 4>::zeros([1, 3, 64, 64], &device);
//! let out = model.forward(image);
//! assert_eq!(out.out.dims(), [1, 2, 64, 64]);
//! assert_eq!(out.aux.unwrap().dims(), [1, 2, 64, 64]);
//! ```
//!
//! Crate features: `cuda`, `wgpu` and `flex` enable the corresponding `burn::backend` types;
//! `download` lets [`pretrained::Hub::fetch`] download torchvision's weights.

pub mod architecture;
pub mod aspp;
pub mod batch_norm;
pub mod conv_bn;
pub mod deeplabv3;
pub mod deeplabv3plus;
mod error;
pub mod head;
mod kernels;
pub mod pretrained;
pub mod resnet;
pub mod upsample;
pub mod weights;

pub use architecture::{DeepLab, DeepLabConfig};
pub use deeplabv3::{DeepLabOutput, DeepLabV3, DeepLabV3Config};
pub use deeplabv3plus::{DeepLabV3Plus, DeepLabV3PlusConfig};
pub use error::ConfigError;
pub use resnet::{Dilation, ResNet, ResNetConfig};
pub use weights::{LoadReport, WeightsError};
