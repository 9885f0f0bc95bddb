//! Reading checkpoints: PyTorch `.pth` (lazily, through burn-store) and safetensors, wrapper
//! prefixes removed, and which kind of state_dict it holds.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::DType;
use burn_store::pytorch::PytorchReader;
use burn_store::TensorSnapshot;

use super::{CheckpointKind, WeightsError};

/// Reads a checkpoint's tensors (lazily for `.pth`): key → snapshot, in key order.
pub(super) fn read_checkpoint(
    path: &Path,
) -> Result<BTreeMap<String, TensorSnapshot>, WeightsError> {
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

pub(super) fn detect_kind(
    path: &Path,
    tensors: &BTreeMap<String, TensorSnapshot>,
) -> Result<CheckpointKind, WeightsError> {
    if tensors.keys().any(|k| k.starts_with("backbone.")) {
        Ok(CheckpointKind::DeepLabV3)
    } else if tensors.keys().any(|k| k.starts_with("encoder."))
        && tensors.keys().any(|k| k.starts_with("decoder."))
    {
        Ok(CheckpointKind::DeepLabV3Plus)
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
