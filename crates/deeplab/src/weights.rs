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

use crate::DeepLabV3;

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
    #[error("{path}: tensor `{key}` cannot be read ({reason}); the file may be truncated or corrupt")]
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
            writeln!(f, "  skipped {quiet} num_batches_tracked counters (no Burn counterpart)")?;
        }
        for path in &self.fresh {
            writeln!(f, "  fresh init: {path}")?;
        }
        Ok(())
    }
}

/// Maps between torchvision keys and Burn parameter paths for one model layout.
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
                match rest {
                    [layer, block, "downsample", idx] if layer.starts_with("layer") => {
                        out.extend([layer.to_string(), block.to_string(), "downsample".into()]);
                        out.push(conv_or_bn(idx, "0", "1")?);
                    }
                    _ => out.extend(rest.iter().map(|s| s.to_string())),
                }
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
        let is_bn = out.last().is_some_and(|m| m.starts_with("bn"));
        let leaf = match (is_bn, *leaf) {
            (true, "weight") => "gamma",
            (true, "bias") => "beta",
            (_, other) => other,
        };
        out.push(leaf.to_string());
        Some(out.join("."))
    }

    /// Burn path → torchvision DeepLabV3 key; the inverse of [`KeyMap::to_burn`].
    pub fn to_torch(&self, path: &str) -> Option<String> {
        let segs: Vec<&str> = path.split('.').collect();
        let (leaf, module) = segs.split_last()?;
        let is_bn = module.last().is_some_and(|m| m.starts_with("bn"));
        let leaf = match (is_bn, *leaf) {
            (true, "gamma") => "weight",
            (true, "beta") => "bias",
            (true, "weight" | "bias") => return None,
            (_, other) => other,
        };
        let index = |name: &str, conv: &str, bn: &str| match name {
            "conv" => Some(conv.to_string()),
            "bn" => Some(bn.to_string()),
            _ => None,
        };
        let mut out: Vec<String> = Vec::with_capacity(segs.len());
        match module {
            ["backbone", rest @ ..] => {
                out.push("backbone".into());
                match rest {
                    [layer, block, "downsample", name] => {
                        out.extend([layer.to_string(), block.to_string(), "downsample".into()]);
                        out.push(index(name, "0", "1")?);
                    }
                    _ => out.extend(rest.iter().map(|s| s.to_string())),
                }
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
        out.push(leaf.to_string());
        Some(out.join("."))
    }
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

/// The model's tensors: Burn path → (shape, dtype).
fn model_tensors<B: Backend>(model: &DeepLabV3<B>) -> BTreeMap<String, (Vec<usize>, DType)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|s| (s.full_path(), (s.shape.to_vec(), s.dtype)))
        .collect()
}

/// Learnable parameters (BatchNorm running statistics excluded), as torchvision counts them with
/// `sum(p.numel() for p in model.parameters())`.
pub fn learnable_params<B: Backend>(model: &DeepLabV3<B>) -> usize {
    model_tensors(model)
        .iter()
        .filter(|(path, _)| !is_buffer(path))
        .map(|(_, (shape, _))| shape.iter().product::<usize>())
        .sum()
}

/// The torchvision state_dict keys and shapes this model corresponds to (without
/// `num_batches_tracked`), in Burn's parameter order.
pub fn torchvision_keys<B: Backend>(model: &DeepLabV3<B>) -> Vec<(String, Vec<usize>)> {
    let map = KeyMap::for_model(model);
    model
        .collect(None, None, true)
        .into_iter()
        .filter_map(|s| Some((map.to_torch(&s.full_path())?, s.shape.to_vec())))
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

/// A hint for a checkpoint key with no place in the model.
fn unexpected_hint(key: &str) -> String {
    if key.contains(".layer") || key.starts_with("layer") {
        "the checkpoint's backbone has more blocks than the model: e.g. a ResNet-101 checkpoint \
         for a ResNet-50 model"
            .into()
    } else {
        "the checkpoint is not a torchvision DeepLabV3/ResNet of this configuration".into()
    }
}

impl<B: Backend> DeepLabV3<B> {
    /// Loads torchvision weights from a `.pth` state_dict (a full DeepLabV3 checkpoint such as
    /// `deeplabv3_resnet50_coco-cd0a2569.pth`, or an ImageNet ResNet such as
    /// `resnet50-0676ba61.pth` for the backbone only) or from a safetensors file written by
    /// [`DeepLabV3::save_torchvision_safetensors`] or by PyTorch with torchvision's keys.
    ///
    /// When the checkpoint's class count differs from the model's (COCO's 21 vs 2), the final 1×1
    /// convs of `classifier` and `aux_classifier` keep their fresh initialisation, as the original
    /// recipe does by replacing `classifier[4]`/`aux_classifier[4]`. Any other mismatch is an error
    /// and the model is left untouched (it is consumed only on success).
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
        let path = path.as_ref();
        let tensors = read_checkpoint(path)?;
        let kind = detect_kind(path, &tensors)?;
        let map = KeyMap::for_model(&self);
        let expected = model_tensors(&self);
        let has_aux = self.aux_classifier.is_some();

        let mut skipped = Vec::new();
        let mut fresh_heads = BTreeSet::new();
        let mut plan: Vec<(String, String)> = Vec::new(); // (torch key, burn path)
        for (key, snapshot) in &tensors {
            if key.ends_with("num_batches_tracked") {
                skipped.push((key.clone(), "no Burn counterpart".into()));
                continue;
            }
            let torch_key = match kind {
                CheckpointKind::DeepLabV3 => key.clone(),
                CheckpointKind::ResNetBackbone if key.starts_with("fc.") => {
                    skipped.push((key.clone(), "ImageNet classifier layer".into()));
                    continue;
                }
                CheckpointKind::ResNetBackbone => format!("backbone.{key}"),
            };
            if !has_aux && torch_key.starts_with("aux_classifier.") {
                skipped.push((key.clone(), "the model has no aux classifier".into()));
                continue;
            }
            let Some(burn_path) = map.to_burn(&torch_key) else {
                return Err(WeightsError::UnexpectedKey {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    hint: unexpected_hint(key),
                });
            };
            let Some((shape, _)) = expected.get(&burn_path) else {
                return Err(WeightsError::UnexpectedKey {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    hint: unexpected_hint(key),
                });
            };
            let found = snapshot.shape.to_vec();
            if &found != shape {
                let is_final = burn_path.contains(".final_conv.");
                let differs_in_classes_only = found.len() == shape.len()
                    && found.iter().zip(shape).skip(1).all(|(a, b)| a == b);
                if is_final && differs_in_classes_only {
                    skipped.push((
                        key.clone(),
                        format!(
                            "{} classes in the checkpoint, {} in the model: fresh init kept",
                            found[0], shape[0]
                        ),
                    ));
                    fresh_heads.insert(burn_path);
                    continue;
                }
                return Err(WeightsError::ShapeMismatch {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    expected: shape.clone(),
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
        let must_load = |p: &str| kind == CheckpointKind::DeepLabV3 || p.starts_with("backbone.");
        let missing: Vec<&&String> = uncovered.iter().filter(|p| must_load(p)).collect();
        if let Some(first) = missing.first() {
            return Err(WeightsError::MissingKey {
                path: path.to_path_buf(),
                key: map.to_torch(first).unwrap_or_else(|| first.to_string()),
                count: missing.len(),
            });
        }

        // Read every tensor before applying any, so a corrupt file cannot half-load the model.
        let mut snapshots = Vec::with_capacity(plan.len());
        for (key, burn_path) in &plan {
            let data = tensors[key]
                .to_data()
                .map_err(|e| WeightsError::BadTensor {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    reason: format!("{e:?}"),
                })?;
            let dtype = expected[burn_path].1;
            let stack = burn_path.split('.').map(String::from).collect();
            snapshots.push(TensorSnapshot::from_data(
                data.convert_dtype(dtype),
                stack,
                vec![],
                ParamId::new(),
            ));
        }
        let mut model = self;
        let result = model.apply(snapshots, None, None, true);
        if let Some(error) = result.errors.first() {
            // Unreachable after the checks above unless Burn's applier changes behaviour.
            return Err(WeightsError::BadTensor {
                path: path.to_path_buf(),
                key: format!("{error:?}"),
                reason: "rejected by burn-store".into(),
            });
        }
        let report = LoadReport {
            path: path.to_path_buf(),
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
            let shape = data.shape.to_vec();
            if key.ends_with(".running_var") {
                let counter = key.replace(".running_var", ".num_batches_tracked");
                entries.push((counter, vec![], safetensors::Dtype::I64, 0i64.to_le_bytes().to_vec()));
            }
            entries.push((key, shape, safetensors::Dtype::F32, data.as_bytes().to_vec()));
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

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
