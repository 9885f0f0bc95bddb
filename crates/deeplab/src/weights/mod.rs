//! Reference-library weights: import of `.pth` state_dicts (torchvision DeepLabV3 checkpoints,
//! segmentation_models_pytorch DeepLabV3+ ones, ImageNet ResNet classifiers) and export/import of
//! safetensors with the reference library's key names.
//!
//! Burn field paths follow torchvision's except where a torchvision `Sequential` index names a
//! layer ([`keys`] holds the one table both directions read):
//!
//! | torchvision key | Burn path |
//! |---|---|
//! | `backbone.layerL.I.downsample.{0,1}.*` | `backbone.layerL.I.downsample.{conv,bn}.*` |
//! | `classifier.0.convs.J.{0,1}.*` (J < rates+1) | `classifier.aspp.convs.J.{conv,bn}.*` |
//! | `classifier.0.convs.{rates+1}.{1,2}.*` (pooling) | `classifier.aspp.pooling.{conv,bn}.*` |
//! | `classifier.0.project.{0,1}.*` | `classifier.aspp.project.{conv,bn}.*` |
//! | `classifier.{1,2,4}.*` | `classifier.{conv,bn,final_conv}.*` |
//! | `aux_classifier.{0,1,4}.*` | `aux_classifier.{conv,bn,final_conv}.*` |
//! | BatchNorm `weight` / `bias` | `gamma` / `beta` |
//! | ImageNet ResNet `conv1.*`, `layerL.*` | `backbone.conv1.*`, `backbone.layerL.*` (`fc.*` ignored) |
//!
//! SMP's DeepLabV3+ (`decoder_aspp_separable` true / false):
//!
//! | SMP key | Burn path |
//! |---|---|
//! | `encoder.*` (torchvision's ResNet keys, no `fc`) | `encoder.*` (as `backbone.*` above) |
//! | `decoder.aspp.0.convs.0.{0,1}.*` | `decoder.aspp.convs.0.{conv,bn}.*` |
//! | `decoder.aspp.0.convs.J.0.{0,1}.*` / `.J.0.*`, `.J.1.*` (J = 1…rates) | `decoder.aspp.convs.J.{depthwise,conv}.*` / `.J.conv.*`, `.J.bn.*` |
//! | `decoder.aspp.0.convs.{rates+1}.{1,2}.*` (pooling) | `decoder.aspp.pooling.{conv,bn}.*` |
//! | `decoder.aspp.0.project.{0,1}.*` | `decoder.aspp.project.{conv,bn}.*` |
//! | `decoder.aspp.1.{0,1}.*`, `decoder.aspp.2.*` | `decoder.aspp_conv.{depthwise,conv,bn}.*` |
//! | `decoder.block1.{0,1}.*` | `decoder.block1.{conv,bn}.*` |
//! | `decoder.block2.0.{0,1}.*`, `decoder.block2.1.*` | `decoder.block2.{depthwise,conv,bn}.*` |
//! | `segmentation_head.0.*` | `segmentation_head.*` |
//!
//! BatchNorm `num_batches_tracked` (a 0-d int64) is kept as a `[1]` float and round-trips through
//! import and export; a checkpoint without it leaves the counters at 0.
//!
//! Loading validates the whole checkpoint against the model before touching any parameter, so an
//! error never leaves a half-loaded model.

mod error;
mod export;
mod key_rules;
pub mod keys;
mod load;
mod read;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use burn_store::ModuleSnapshot;

pub use error::WeightsError;
pub use keys::{is_buffer, resnet_key_to_burn, resnet_path_to_torch, KeyMap};

use keys::torch_shape;
use load::{load_state_dict, Target};

use crate::{DeepLabV3, DeepLabV3Plus, ResNet};

/// What a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// A full torchvision DeepLabV3 state_dict (`backbone.*`, `classifier.*`, maybe `aux_classifier.*`).
    DeepLabV3,
    /// A full segmentation_models_pytorch DeepLabV3+ state_dict (`encoder.*`, `decoder.*`,
    /// `segmentation_head.*`).
    DeepLabV3Plus,
    /// An ImageNet ResNet classifier state_dict (`conv1.*`, `layer1.*`, …, `fc.*`): backbone only.
    ResNetBackbone,
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeepLabV3 => "DeepLabV3 checkpoint",
            Self::DeepLabV3Plus => "segmentation_models_pytorch DeepLabV3+ checkpoint",
            Self::ResNetBackbone => "ImageNet ResNet checkpoint (backbone only)",
        })
    }
}

/// What a checkpoint file holds, read from its keys and shapes without loading the tensors
/// ([`inspect`]): enough to build the model it fits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointSummary {
    /// The layout of its keys.
    pub kind: CheckpointKind,
    /// Classes of the final classifier (`classifier.4` for DeepLabV3, `segmentation_head.0` for
    /// DeepLabV3+, `fc` for an ImageNet ResNet).
    pub num_classes: usize,
    /// Bottleneck blocks in `layer1..layer4` (ResNet-50: `[3, 4, 6, 3]`).
    pub blocks: [usize; 4],
    /// The stem width (`conv1`'s output channels; torchvision: 64).
    pub base_width: usize,
    /// DeepLabV3: whether it has the FCN aux head.
    pub aux_classifier: bool,
    /// DeepLabV3+: whether the ASPP's atrous branches are depthwise-separable.
    pub aspp_separable: bool,
}

/// Reads the layout, class count and backbone shape of a checkpoint (`.pth` or safetensors)
/// from its keys and shapes; nothing is loaded. The output stride and the atrous rates are not
/// recorded in a state_dict and are not read.
///
/// ```no_run
/// let summary = deeplab::weights::inspect("smp_binary_model.pth")?;
/// println!("{:?} with {} class(es)", summary.kind, summary.num_classes);
/// # Ok::<(), deeplab::WeightsError>(())
/// ```
pub fn inspect(path: impl AsRef<Path>) -> Result<CheckpointSummary, WeightsError> {
    let path = path.as_ref();
    let tensors = read::read_checkpoint(path)?;
    let kind = read::detect_kind(path, &tensors)?;
    let trunk = match kind {
        CheckpointKind::DeepLabV3 => "backbone.",
        CheckpointKind::DeepLabV3Plus => "encoder.",
        CheckpointKind::ResNetBackbone => "",
    };
    let missing = |key: String| WeightsError::MissingKey {
        path: path.to_path_buf(),
        key,
        count: 1,
    };
    let shape = |key: String| -> Result<Vec<usize>, WeightsError> {
        tensors
            .get(&key)
            .map(|t| t.shape.to_vec())
            .ok_or_else(|| missing(key))
    };
    let head = match kind {
        CheckpointKind::DeepLabV3 => "classifier.4.weight",
        CheckpointKind::DeepLabV3Plus => "segmentation_head.0.weight",
        CheckpointKind::ResNetBackbone => "fc.weight",
    };
    let num_classes = shape(head.to_string())?[0];
    let base_width = shape(format!("{trunk}conv1.weight"))?[0];
    let mut blocks = [0; 4];
    for (layer, count) in blocks.iter_mut().enumerate() {
        let prefix = format!("{trunk}layer{}.", layer + 1);
        *count = tensors
            .keys()
            .filter_map(|k| {
                k.strip_prefix(&prefix)?
                    .split('.')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |last| last + 1);
    }
    Ok(CheckpointSummary {
        kind,
        num_classes,
        blocks,
        base_width,
        aux_classifier: tensors.keys().any(|k| k.starts_with("aux_classifier.")),
        aspp_separable: tensors.contains_key("decoder.aspp.0.convs.1.0.0.weight"),
    })
}

/// What a load did: which torchvision keys were loaded, which were skipped (and why), and which
/// model parameters kept their fresh initialisation.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// The file read.
    pub path: PathBuf,
    /// What the file held.
    pub kind: CheckpointKind,
    /// torchvision keys whose tensors were loaded.
    pub loaded: Vec<String>,
    /// torchvision keys not loaded, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Burn parameter paths that kept their initialisation (e.g. the heads after a backbone-only load).
    pub fresh: Vec<String>,
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} — loaded {} tensors, skipped {}, kept fresh init for {}",
            self.path.display(),
            self.kind,
            self.loaded.len(),
            self.skipped.len(),
            self.fresh.len()
        )?;
        for (key, why) in &self.skipped {
            writeln!(f, "  skipped {key}: {why}")?;
        }
        for path in &self.fresh {
            writeln!(f, "  fresh init: {path}")?;
        }
        Ok(())
    }
}

/// The model's tensors: Burn path → (shape, dtype).
fn model_tensors<B: Backend, M: ModuleSnapshot<B>>(
    model: &M,
) -> BTreeMap<String, (Vec<usize>, DType)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|s| (s.full_path(), (s.shape.to_vec(), s.dtype)))
        .collect()
}

/// Learnable parameters (BatchNorm running statistics excluded), as torchvision counts them with
/// `sum(p.numel() for p in model.parameters())`.
pub fn learnable_params<B: Backend, M: ModuleSnapshot<B>>(model: &M) -> usize {
    model_tensors(model)
        .iter()
        .filter(|(path, _)| !is_buffer(path))
        .map(|(_, (shape, _))| shape.iter().product::<usize>())
        .sum()
}

/// Burn path, torchvision key (if the path has one) and PyTorch shape of every tensor of `model`.
fn torch_view<B: Backend, M: ModuleSnapshot<B>>(
    model: &M,
    to_torch: impl Fn(&str) -> Option<String>,
) -> Vec<(String, Option<String>, Vec<usize>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|s| {
            let path = s.full_path();
            let shape = torch_shape(&path, &s.shape);
            (to_torch(&path), path, shape)
        })
        .map(|(key, path, shape)| (path, key, shape))
        .collect()
}

impl<B: Backend> DeepLabV3<B> {
    /// Every tensor as `(Burn path, torchvision key, PyTorch shape)`; the key is `None` only for a
    /// tensor torchvision has no counterpart of (none in a model built from [`DeepLabV3Config`]).
    ///
    /// [`DeepLabV3Config`]: crate::DeepLabV3Config
    pub fn torchvision_keys(&self) -> Vec<(String, Option<String>, Vec<usize>)> {
        let map = KeyMap::for_model(self);
        torch_view(self, |p| map.to_torch(p))
    }

    /// Loads torchvision weights from a `.pth` state_dict (a full DeepLabV3 checkpoint such as
    /// `deeplabv3_resnet50_coco-cd0a2569.pth`, or an ImageNet ResNet such as
    /// `resnet50-0676ba61.pth` for the backbone only) or from a safetensors file written by
    /// [`DeepLabV3::save_torchvision_safetensors`] or by PyTorch with torchvision's keys.
    ///
    /// When the checkpoint's class count differs from the model's (COCO's 21 vs 2), the final 1×1
    /// convs of `classifier` and `aux_classifier` keep their fresh initialisation, as the original
    /// recipe does by replacing `classifier[4]`/`aux_classifier[4]`. Any other mismatch is an error
    /// naming the first offending key; the model is consumed only on success.
    ///
    /// ```no_run
    /// # use burn::backend::Flex;
    /// use deeplab::DeepLabV3Config;
    /// let model = DeepLabV3Config::deeplabv3_resnet50(2).init::<Flex>(&Default::default());
    /// let (model, report) = model.load_torchvision("deeplabv3_resnet50_coco-cd0a2569.pth")?;
    /// println!("{report}");
    /// # Ok::<(), deeplab::WeightsError>(())
    /// ```
    pub fn load_torchvision(
        self,
        path: impl AsRef<Path>,
    ) -> Result<(Self, LoadReport), WeightsError> {
        let target = Target::DeepLab {
            map: KeyMap::for_model(&self),
            has_aux: self.aux_classifier.is_some(),
        };
        load_state_dict(self, path.as_ref(), target)
    }
}

impl<B: Backend> DeepLabV3Plus<B> {
    /// Every tensor as `(Burn path, segmentation_models_pytorch key, PyTorch shape)`; the key is
    /// `None` only for a tensor SMP has no counterpart of (none in a model built from
    /// [`DeepLabV3PlusConfig`]).
    ///
    /// [`DeepLabV3PlusConfig`]: crate::DeepLabV3PlusConfig
    pub fn smp_keys(&self) -> Vec<(String, Option<String>, Vec<usize>)> {
        let map = KeyMap::for_plus(self);
        torch_view(self, |p| map.to_torch(p))
    }

    /// Loads a segmentation_models_pytorch `DeepLabV3Plus` state_dict (a `.pth` written by
    /// `torch.save(model.state_dict(), …)`, or safetensors with SMP's keys, e.g. from
    /// [`DeepLabV3Plus::save_smp_safetensors`]), or the backbone only from an ImageNet ResNet
    /// (`resnet50-0676ba61.pth`) or a torchvision DeepLabV3 checkpoint.
    ///
    /// When the class count differs, `segmentation_head` keeps its fresh initialisation. Any
    /// other mismatch is an error naming the first offending key; the model is consumed only on
    /// success.
    ///
    /// ```no_run
    /// # use burn::backend::Flex;
    /// use deeplab::DeepLabV3PlusConfig;
    /// let model = DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).init::<Flex>(&Default::default());
    /// let (model, report) = model.load_smp("deeplabv3plus_resnet50.pth")?;
    /// println!("{report}");
    /// # Ok::<(), deeplab::WeightsError>(())
    /// ```
    pub fn load_smp(self, path: impl AsRef<Path>) -> Result<(Self, LoadReport), WeightsError> {
        let target = Target::DeepLabPlus {
            map: KeyMap::for_plus(&self),
        };
        load_state_dict(self, path.as_ref(), target)
    }
}

impl<B: Backend> ResNet<B> {
    /// Every tensor as `(Burn path, torchvision key, PyTorch shape)`.
    pub fn torchvision_keys(&self) -> Vec<(String, Option<String>, Vec<usize>)> {
        torch_view(self, resnet_path_to_torch)
    }

    /// Loads an ImageNet ResNet state_dict (`resnet50-0676ba61.pth`; `fc.*` only when the model
    /// has `fc`) or the backbone of a DeepLabV3 checkpoint. Same validation as
    /// [`DeepLabV3::load_torchvision`].
    pub fn load_torchvision(
        self,
        path: impl AsRef<Path>,
    ) -> Result<(Self, LoadReport), WeightsError> {
        let target = Target::ResNet {
            has_fc: self.fc.is_some(),
        };
        load_state_dict(self, path.as_ref(), target)
    }
}
