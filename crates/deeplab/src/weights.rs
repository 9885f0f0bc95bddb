//! torchvision weights: import of `.pth` state_dicts (full DeepLabV3 checkpoints and ImageNet
//! ResNet classifiers) and export/import of safetensors with torchvision's key names.
//!
//! Every key mapping lives here. Burn field paths follow torchvision's except where a torchvision
//! `Sequential` index names a layer:
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
//! `num_batches_tracked` has no Burn counterpart: ignored on import, written as 0 on export.
//!
//! Loading validates the whole checkpoint against the model before touching any parameter, so an
//! error never leaves a half-loaded model.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::DType;
use burn_store::pytorch::PytorchReader;
use burn_store::{ModuleSnapshot, TensorSnapshot};

use crate::{DeepLabV3, ResNet};

/// What a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// A full torchvision DeepLabV3 state_dict (`backbone.*`, `classifier.*`, maybe `aux_classifier.*`).
    DeepLabV3,
    /// An ImageNet ResNet classifier state_dict (`conv1.*`, `layer1.*`, …, `fc.*`): backbone only.
    ResNetBackbone,
}

impl fmt::Display for CheckpointKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeepLabV3 => "DeepLabV3 checkpoint",
            Self::ResNetBackbone => "ImageNet ResNet checkpoint (backbone only)",
        })
    }
}

/// Errors from loading or exporting weights. Each names the file and, where one is at fault, the key.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not a readable PyTorch checkpoint or safetensors file ({reason}); \
         expected a state_dict saved with torch.save(model.state_dict(), ...)"
    )]
    NotACheckpoint { path: PathBuf, reason: String },
    #[error(
        "{path} holds no torchvision ResNet/DeepLabV3 weights: the first key is `{first_key}` \
         (expected `backbone.*` for DeepLabV3 or `conv1.weight`/`layer1.*` for an ImageNet ResNet)"
    )]
    UnknownLayout { path: PathBuf, first_key: String },
    #[error("{path}: key `{key}` does not exist in this model ({hint})")]
    UnexpectedKey {
        path: PathBuf,
        key: String,
        hint: String,
    },
    #[error(
        "{path}: key `{key}` has shape {found:?} but the model expects {expected:?}; \
         the checkpoint is for a different architecture"
    )]
    ShapeMismatch {
        path: PathBuf,
        key: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },
    #[error(
        "{path}: the model's `{key}` is not in the checkpoint ({count} missing in all); \
         the checkpoint is incomplete or for a smaller architecture"
    )]
    MissingKey {
        path: PathBuf,
        key: String,
        count: usize,
    },
    #[error(
        "{path}: tensor `{key}` cannot be read ({reason}); the file may be truncated or corrupt"
    )]
    BadTensor {
        path: PathBuf,
        key: String,
        reason: String,
    },
    #[error("cannot write {path}: {reason}")]
    Write { path: PathBuf, reason: String },
}

/// What a load did: which torchvision keys were loaded, which were skipped (and why), and which
/// model parameters kept their fresh initialisation.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub path: PathBuf,
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
        // num_batches_tracked entries are expected noise; list the meaningful skips.
        let mut quiet = 0;
        for (key, why) in &self.skipped {
            if key.ends_with("num_batches_tracked") {
                quiet += 1;
            } else {
                writeln!(f, "  skipped {key}: {why}")?;
            }
        }
        if quiet > 0 {
            writeln!(
                f,
                "  skipped {quiet} num_batches_tracked counters (no Burn counterpart)"
            )?;
        }
        for path in &self.fresh {
            writeln!(f, "  fresh init: {path}")?;
        }
        Ok(())
    }
}

/// Maps between torchvision keys and Burn parameter paths for one DeepLabV3 layout.
#[derive(Debug, Clone, Copy)]
pub struct KeyMap {
    /// torchvision's index of the ASPP pooling branch in `classifier.0.convs` (= number of atrous
    /// rates + 1).
    pooling_index: usize,
}

impl KeyMap {
    /// The key map for `model`'s layout.
    pub fn for_model<B: Backend>(model: &DeepLabV3<B>) -> Self {
        Self {
            pooling_index: model.classifier.aspp.convs.len(),
        }
    }

    /// torchvision DeepLabV3 key → Burn path (`None` for keys with no Burn counterpart, such as
    /// `num_batches_tracked`, or keys outside the DeepLabV3 layout).
    pub fn to_burn(&self, key: &str) -> Option<String> {
        let segs: Vec<&str> = key.split('.').collect();
        let (leaf, module) = segs.split_last()?;
        if *leaf == "num_batches_tracked" {
            return None;
        }
        let mut out: Vec<String> = Vec::with_capacity(segs.len() + 1);
        match module {
            ["backbone", rest @ ..] => {
                out.push("backbone".into());
                out.extend(resnet_module_to_burn(rest)?);
            }
            ["classifier", "0", "convs", j, idx] => {
                let j: usize = j.parse().ok()?;
                out.extend(["classifier".into(), "aspp".into()]);
                if j < self.pooling_index {
                    out.extend(["convs".into(), j.to_string(), conv_or_bn(idx, "0", "1")?]);
                } else if j == self.pooling_index {
                    out.extend(["pooling".into(), conv_or_bn(idx, "1", "2")?]);
                } else {
                    return None;
                }
            }
            ["classifier", "0", "project", idx] => {
                out.extend(["classifier".into(), "aspp".into(), "project".into()]);
                out.push(conv_or_bn(idx, "0", "1")?);
            }
            ["classifier", idx] => {
                let name = match *idx {
                    "1" => "conv",
                    "2" => "bn",
                    "4" => "final_conv",
                    _ => return None,
                };
                out.extend(["classifier".into(), name.into()]);
            }
            ["aux_classifier", idx] => {
                let name = match *idx {
                    "0" => "conv",
                    "1" => "bn",
                    "4" => "final_conv",
                    _ => return None,
                };
                out.extend(["aux_classifier".into(), name.into()]);
            }
            _ => return None,
        }
        Some(with_leaf_to_burn(out, leaf))
    }

    /// Burn path → torchvision DeepLabV3 key; the inverse of [`KeyMap::to_burn`].
    pub fn to_torch(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split('.').collect();
        let (leaf, module) = segs.split_last()?;
        let index = |name: &str, conv: &str, bn: &str| match name {
            "conv" => Some(conv.to_string()),
            "bn" => Some(bn.to_string()),
            _ => None,
        };
        let mut out: Vec<String> = Vec::with_capacity(segs.len());
        match module {
            ["backbone", rest @ ..] => {
                out.push("backbone".into());
                out.extend(resnet_module_to_torch(rest)?);
            }
            ["classifier", "aspp", "convs", j, name] => {
                let j: usize = j.parse().ok()?;
                if j >= self.pooling_index {
                    return None;
                }
                out.extend(["classifier", "0", "convs"].map(String::from));
                out.extend([j.to_string(), index(name, "0", "1")?]);
            }
            ["classifier", "aspp", "pooling", name] => {
                out.extend(["classifier", "0", "convs"].map(String::from));
                out.extend([self.pooling_index.to_string(), index(name, "1", "2")?]);
            }
            ["classifier", "aspp", "project", name] => {
                out.extend(["classifier", "0", "project"].map(String::from));
                out.push(index(name, "0", "1")?);
            }
            ["classifier", name] => {
                let idx = match *name {
                    "conv" => "1",
                    "bn" => "2",
                    "final_conv" => "4",
                    _ => return None,
                };
                out.extend(["classifier".into(), idx.into()]);
            }
            ["aux_classifier", name] => {
                let idx = match *name {
                    "conv" => "0",
                    "bn" => "1",
                    "final_conv" => "4",
                    _ => return None,
                };
                out.extend(["aux_classifier".into(), idx.into()]);
            }
            _ => return None,
        }
        Some(with_leaf(out, leaf, is_bn_path(module), false))
    }
}

/// torchvision ResNet key (`conv1.weight`, `layer1.0.downsample.1.bias`, `fc.weight`, …) → Burn
/// path in [`ResNet`](crate::ResNet).
pub fn resnet_key_to_burn(key: &str) -> Option<String> {
    let segs: Vec<&str> = key.split('.').collect();
    let (leaf, module) = segs.split_last()?;
    if *leaf == "num_batches_tracked" {
        return None;
    }
    Some(with_leaf_to_burn(resnet_module_to_burn(module)?, leaf))
}

/// Burn path in [`ResNet`](crate::ResNet) → torchvision ResNet key; inverse of [`resnet_key_to_burn`].
pub fn resnet_path_to_torch(path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split('.').collect();
    let (leaf, module) = segs.split_last()?;
    Some(with_leaf(
        resnet_module_to_torch(module)?,
        leaf,
        is_bn_path(module),
        false,
    ))
}

fn resnet_module_to_burn(module: &[&str]) -> Option<Vec<String>> {
    match module {
        [layer, block, "downsample", idx] if is_layer(layer) => Some(vec![
            layer.to_string(),
            block.parse::<usize>().ok()?.to_string(),
            "downsample".into(),
            conv_or_bn(idx, "0", "1")?,
        ]),
        [layer, block, part] if is_layer(layer) && is_block_part(part) => Some(vec![
            layer.to_string(),
            block.parse::<usize>().ok()?.to_string(),
            part.to_string(),
        ]),
        [stem] if ["conv1", "bn1", "fc"].contains(stem) => Some(vec![stem.to_string()]),
        _ => None,
    }
}

fn resnet_module_to_torch(module: &[&str]) -> Option<Vec<String>> {
    match module {
        [layer, block, "downsample", name] if is_layer(layer) => Some(vec![
            layer.to_string(),
            block.to_string(),
            "downsample".into(),
            match *name {
                "conv" => "0".into(),
                "bn" => "1".into(),
                _ => return None,
            },
        ]),
        [layer, block, part] if is_layer(layer) && is_block_part(part) => {
            Some(vec![layer.to_string(), block.to_string(), part.to_string()])
        }
        [stem] if ["conv1", "bn1", "fc"].contains(stem) => Some(vec![stem.to_string()]),
        _ => None,
    }
}

fn is_layer(name: &str) -> bool {
    matches!(name, "layer1" | "layer2" | "layer3" | "layer4")
}

fn is_block_part(name: &str) -> bool {
    matches!(name, "conv1" | "bn1" | "conv2" | "bn2" | "conv3" | "bn3")
}

/// Whether a Burn module path (without the parameter name) ends in a BatchNorm.
fn is_bn_path<S: AsRef<str>>(module: &[S]) -> bool {
    module.last().is_some_and(|m| m.as_ref().starts_with("bn"))
}

fn with_leaf_to_burn(module: Vec<String>, leaf: &str) -> String {
    let is_bn = is_bn_path(&module);
    with_leaf(module, leaf, is_bn, true)
}

/// Appends the parameter name, translating BatchNorm `weight`/`bias` (torch) ↔ `gamma`/`beta`
/// (Burn). `is_bn` says whether the Burn-side module is a BatchNorm (named `bn*`).
fn with_leaf(mut module: Vec<String>, leaf: &str, is_bn: bool, to_burn: bool) -> String {
    let leaf = match (is_bn, to_burn, leaf) {
        (true, true, "weight") => "gamma",
        (true, true, "bias") => "beta",
        (true, false, "gamma") => "weight",
        (true, false, "beta") => "bias",
        (_, _, other) => other,
    };
    module.push(leaf.to_string());
    module.join(".")
}

fn conv_or_bn(idx: &str, conv: &str, bn: &str) -> Option<String> {
    if idx == conv {
        Some("conv".into())
    } else if idx == bn {
        Some("bn".into())
    } else {
        None
    }
}

/// True for BatchNorm running statistics (buffers, not learnable parameters).
pub fn is_buffer(path: &str) -> bool {
    path.ends_with(".running_mean") || path.ends_with(".running_var")
}

/// Burn stores `Linear` weights as `[in, out]`, PyTorch as `[out, in]`.
fn is_linear_weight(path: &str) -> bool {
    path == "fc.weight" || path.ends_with(".fc.weight")
}

/// The PyTorch shape of a Burn tensor.
fn torch_shape(path: &str, shape: &[usize]) -> Vec<usize> {
    let mut shape = shape.to_vec();
    if is_linear_weight(path) {
        shape.reverse();
    }
    shape
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

/// Reads a checkpoint's tensors (lazily for `.pth`): key → snapshot, in key order.
fn read_checkpoint(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>, WeightsError> {
    let meta = std::fs::metadata(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if meta.len() == 0 {
        return Err(WeightsError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let tensors = if is_safetensors {
        read_safetensors(path)?
    } else {
        let reader = PytorchReader::new(path).map_err(|e| WeightsError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        reader.into_tensors().into_iter().collect()
    };
    if tensors.is_empty() {
        return Err(WeightsError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: "it contains no tensors".into(),
        });
    }
    Ok(strip_wrapper_prefix(tensors))
}

/// Removes a common wrapper prefix (`module.` from DataParallel, `model.` or `state_dict.` from
/// training-script dicts) when every key carries it.
fn strip_wrapper_prefix(
    tensors: BTreeMap<String, TensorSnapshot>,
) -> BTreeMap<String, TensorSnapshot> {
    for prefix in ["module.", "model.", "state_dict."] {
        if tensors.keys().all(|k| k.starts_with(prefix)) {
            let stripped = tensors
                .into_iter()
                .map(|(k, v)| (k[prefix.len()..].to_string(), v))
                .collect();
            return strip_wrapper_prefix(stripped);
        }
    }
    tensors
}

fn read_safetensors(path: &Path) -> Result<BTreeMap<String, TensorSnapshot>, WeightsError> {
    let bytes = std::fs::read(path).map_err(|source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| {
        WeightsError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: e.to_string(),
        }
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in file.tensors() {
        let dtype = match view.dtype() {
            safetensors::Dtype::F32 => DType::F32,
            safetensors::Dtype::F64 => DType::F64,
            safetensors::Dtype::F16 => DType::F16,
            safetensors::Dtype::BF16 => DType::BF16,
            safetensors::Dtype::I64 => DType::I64,
            other => {
                return Err(WeightsError::BadTensor {
                    path: path.to_path_buf(),
                    key: name,
                    reason: format!("unsupported dtype {other:?}"),
                })
            }
        };
        let data = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype);
        let stack = name.split('.').map(String::from).collect();
        out.insert(
            name,
            TensorSnapshot::from_data(data, stack, vec![], ParamId::new()),
        );
    }
    Ok(out)
}

fn detect_kind(
    path: &Path,
    tensors: &BTreeMap<String, TensorSnapshot>,
) -> Result<CheckpointKind, WeightsError> {
    if tensors.keys().any(|k| k.starts_with("backbone.")) {
        Ok(CheckpointKind::DeepLabV3)
    } else if tensors.contains_key("conv1.weight")
        && tensors.keys().any(|k| k.starts_with("layer1."))
    {
        Ok(CheckpointKind::ResNetBackbone)
    } else {
        Err(WeightsError::UnknownLayout {
            path: path.to_path_buf(),
            first_key: tensors.keys().next().cloned().unwrap_or_default(),
        })
    }
}

/// What happens to one checkpoint key.
enum Route {
    Load(String),
    Skip(String),
    Unexpected,
}

/// The model a checkpoint is loaded into.
enum Target {
    DeepLab { map: KeyMap, has_aux: bool },
    ResNet { has_fc: bool },
}

impl Target {
    fn route(&self, kind: CheckpointKind, key: &str) -> Route {
        let load = |path: Option<String>| path.map_or(Route::Unexpected, Route::Load);
        match (self, kind) {
            (Self::DeepLab { has_aux: false, .. }, CheckpointKind::DeepLabV3)
                if key.starts_with("aux_classifier.") =>
            {
                Route::Skip("the model has no aux classifier".into())
            }
            (Self::DeepLab { map, .. }, CheckpointKind::DeepLabV3) => load(map.to_burn(key)),
            (Self::DeepLab { .. }, CheckpointKind::ResNetBackbone) if key.starts_with("fc.") => {
                Route::Skip("ImageNet classifier layer, not part of DeepLabV3".into())
            }
            (Self::DeepLab { map, .. }, CheckpointKind::ResNetBackbone) => {
                load(map.to_burn(&format!("backbone.{key}")))
            }
            (Self::ResNet { .. }, CheckpointKind::DeepLabV3) => match key.strip_prefix("backbone.")
            {
                Some(rest) => load(resnet_key_to_burn(rest)),
                None => Route::Skip("DeepLabV3 head, not part of a ResNet".into()),
            },
            (Self::ResNet { has_fc: false }, CheckpointKind::ResNetBackbone)
                if key.starts_with("fc.") =>
            {
                Route::Skip("the model has no fc layer".into())
            }
            (Self::ResNet { .. }, CheckpointKind::ResNetBackbone) => load(resnet_key_to_burn(key)),
        }
    }

    /// Whether the checkpoint must provide this model tensor.
    fn required(&self, kind: CheckpointKind, path: &str) -> bool {
        match (self, kind) {
            (Self::DeepLab { .. }, CheckpointKind::DeepLabV3) => true,
            (Self::DeepLab { .. }, CheckpointKind::ResNetBackbone) => path.starts_with("backbone."),
            (Self::ResNet { .. }, CheckpointKind::ResNetBackbone) => true,
            (Self::ResNet { .. }, CheckpointKind::DeepLabV3) => !path.starts_with("fc."),
        }
    }

    fn to_torch(&self, path: &str) -> Option<String> {
        match self {
            Self::DeepLab { map, .. } => map.to_torch(path),
            Self::ResNet { .. } => resnet_path_to_torch(path),
        }
    }
}

/// A class-count layer: the final 1×1 convs of the heads, or a classifier's `fc`.
fn is_class_layer(path: &str) -> bool {
    path.contains("final_conv.") || path == "fc.weight" || path == "fc.bias"
}

/// Validates the checkpoint against `model`, reads every tensor, and only then applies them.
fn load_state_dict<B: Backend, M: ModuleSnapshot<B>>(
    model: M,
    path: &Path,
    target: Target,
) -> Result<(M, LoadReport), WeightsError> {
    let err_path = || path.to_path_buf();
    let tensors = read_checkpoint(path)?;
    let kind = detect_kind(path, &tensors)?;
    let expected = model_tensors(&model);

    let mut skipped = Vec::new();
    let mut fresh_heads = BTreeSet::new();
    let mut plan: Vec<(String, String)> = Vec::new(); // (checkpoint key, burn path)
    for (key, snapshot) in &tensors {
        if key.ends_with("num_batches_tracked") {
            skipped.push((key.clone(), "no Burn counterpart".into()));
            continue;
        }
        let burn_path = match target.route(kind, key) {
            Route::Load(p) if expected.contains_key(&p) => p,
            Route::Load(_) | Route::Unexpected => {
                return Err(WeightsError::UnexpectedKey {
                    path: err_path(),
                    key: key.clone(),
                    hint: unexpected_hint(key),
                })
            }
            Route::Skip(reason) => {
                skipped.push((key.clone(), reason));
                continue;
            }
        };
        let model_shape = torch_shape(&burn_path, &expected[&burn_path].0);
        let found = snapshot.shape.to_vec();
        if found != model_shape {
            let differs_in_classes_only = found.len() == model_shape.len()
                && found.iter().zip(&model_shape).skip(1).all(|(a, b)| a == b);
            if is_class_layer(&burn_path) && differs_in_classes_only {
                skipped.push((
                    key.clone(),
                    format!(
                        "{} classes in the checkpoint, {} in the model: fresh init kept",
                        found[0], model_shape[0]
                    ),
                ));
                fresh_heads.insert(burn_path);
                continue;
            }
            return Err(WeightsError::ShapeMismatch {
                path: err_path(),
                key: key.clone(),
                expected: model_shape,
                found,
            });
        }
        plan.push((key.clone(), burn_path));
    }

    let covered: BTreeSet<&str> = plan.iter().map(|(_, p)| p.as_str()).collect();
    let uncovered: Vec<&String> = expected
        .keys()
        .filter(|p| !covered.contains(p.as_str()) && !fresh_heads.contains(*p))
        .collect();
    let missing: Vec<&&String> = uncovered
        .iter()
        .filter(|p| target.required(kind, p))
        .collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::MissingKey {
            path: err_path(),
            key: target.to_torch(first).unwrap_or_else(|| first.to_string()),
            count: missing.len(),
        });
    }

    // Read every tensor before applying any, so a corrupt file cannot half-load the model.
    let mut snapshots = Vec::with_capacity(plan.len());
    for (key, burn_path) in &plan {
        let bad = |reason: String| WeightsError::BadTensor {
            path: err_path(),
            key: key.clone(),
            reason,
        };
        let data = tensors[key].to_data().map_err(|e| bad(format!("{e:?}")))?;
        let (shape, dtype) = &expected[burn_path];
        let data = data.convert_dtype(*dtype);
        let data = if is_linear_weight(burn_path) {
            transpose_2d(data, *dtype).map_err(bad)?
        } else {
            data
        };
        debug_assert_eq!(data.shape.to_vec(), *shape);
        let stack = burn_path.split('.').map(String::from).collect();
        snapshots.push(TensorSnapshot::from_data(
            data,
            stack,
            vec![],
            ParamId::new(),
        ));
    }
    let mut model = model;
    let result = model.apply(snapshots, None, None, true);
    if let Some(error) = result.errors.first() {
        // Unreachable after the checks above unless burn-store's applier changes behaviour.
        return Err(WeightsError::BadTensor {
            path: err_path(),
            key: format!("{error:?}"),
            reason: "rejected by burn-store".into(),
        });
    }
    let report = LoadReport {
        path: err_path(),
        kind,
        loaded: plan.into_iter().map(|(k, _)| k).collect(),
        skipped,
        fresh: uncovered
            .into_iter()
            .cloned()
            .chain(fresh_heads)
            .filter(|p| !is_buffer(p))
            .collect(),
    };
    Ok((model, report))
}

/// `[r, c]` → `[c, r]`, in `dtype`.
fn transpose_2d(data: TensorData, dtype: DType) -> Result<TensorData, String> {
    let [r, c]: [usize; 2] = data
        .shape
        .to_vec()
        .try_into()
        .map_err(|_| "expected a 2-d tensor".to_string())?;
    let values: Vec<f32> = data
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("{e:?}"))?;
    let mut out = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = values[i * c + j];
        }
    }
    Ok(TensorData::new(out, [c, r]).convert_dtype(dtype))
}

/// A hint for a checkpoint key with no place in the model.
fn unexpected_hint(key: &str) -> String {
    if key.contains("layer") {
        "the checkpoint's backbone has more blocks than the model: e.g. a ResNet-101 checkpoint \
         for a ResNet-50 model"
            .into()
    } else {
        "the checkpoint is not a torchvision DeepLabV3/ResNet of this configuration".into()
    }
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

    /// Writes the weights to a safetensors file with torchvision's key names (plus
    /// `num_batches_tracked = 0` for every BatchNorm), f32, so that in PyTorch
    /// `model.load_state_dict(safetensors.torch.load_file(path))` loads them into
    /// `torchvision.models.segmentation.deeplabv3_resnet50(num_classes=..., aux_loss=...)`.
    /// The file is written atomically (temporary file + rename).
    pub fn save_torchvision_safetensors(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        let path = path.as_ref();
        let write_err = |reason: String| WeightsError::Write {
            path: path.to_path_buf(),
            reason,
        };
        let map = KeyMap::for_model(self);
        let mut entries: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = Vec::new();
        for snapshot in self.collect(None, None, true) {
            let burn_path = snapshot.full_path();
            let key = map
                .to_torch(&burn_path)
                .ok_or_else(|| write_err(format!("no torchvision key for `{burn_path}`")))?;
            let data = snapshot
                .to_data()
                .map_err(|e| write_err(format!("reading `{burn_path}`: {e:?}")))?
                .convert::<f32>();
            let data = if is_linear_weight(&burn_path) {
                transpose_2d(data, DType::F32).map_err(write_err)?
            } else {
                data
            };
            if key.ends_with(".running_var") {
                let counter = key.replace(".running_var", ".num_batches_tracked");
                entries.push((
                    counter,
                    vec![],
                    safetensors::Dtype::I64,
                    0i64.to_le_bytes().to_vec(),
                ));
            }
            let shape = data.shape.to_vec();
            entries.push((
                key,
                shape,
                safetensors::Dtype::F32,
                data.as_bytes().to_vec(),
            ));
        }
        let views = entries
            .iter()
            .map(|(k, shape, dtype, bytes)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|view| (k.clone(), view))
                    .map_err(|e| write_err(format!("`{k}`: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let bytes = safetensors::serialize(views, None).map_err(|e| write_err(e.to_string()))?;
        write_atomic(path, &bytes).map_err(|e| write_err(e.to_string()))
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

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
