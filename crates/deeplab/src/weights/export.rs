//! Export to safetensors with the reference library's key names (torchvision's DeepLabV3,
//! segmentation_models_pytorch's DeepLabV3+), loadable by PyTorch's strict `load_state_dict`.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use burn::tensor::DType;
use burn_store::ModuleSnapshot;

use super::keys::{is_batch_counter, is_linear_weight, KeyMap};
use super::load::transpose_2d;
use super::WeightsError;
use crate::{DeepLabV3, DeepLabV3Plus};

impl<B: Backend> DeepLabV3<B> {
    /// Writes the weights to a safetensors file with torchvision's key names (every BatchNorm's
    /// `num_batches_tracked` included, with the model's own counter), f32, so that in PyTorch
    /// `model.load_state_dict(safetensors.torch.load_file(path))` loads them into
    /// `torchvision.models.segmentation.deeplabv3_resnet50(num_classes=..., aux_loss=...)`.
    /// The file is written atomically (temporary file + rename).
    ///
    /// A model whose BatchNorms are folded ([`DeepLabV3::fold_batch_norms`]) is refused
    /// ([`WeightsError::Folded`]): export before folding.
    pub fn save_torchvision_safetensors(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        refuse_folded(self.is_folded(), path.as_ref())?;
        let map = KeyMap::for_model(self);
        save_safetensors(self, path.as_ref(), |p| map.to_torch(p))
    }
}

impl<B: Backend> DeepLabV3Plus<B> {
    /// Writes the weights to a safetensors file with segmentation_models_pytorch's key names
    /// (BatchNorm counters included), f32, so that in PyTorch
    /// `smp.DeepLabV3Plus(encoder_name="resnet50", encoder_weights=None, classes=...)
    /// .load_state_dict(safetensors.torch.load_file(path))` loads them. Written atomically.
    ///
    /// A model whose BatchNorms are folded is refused ([`WeightsError::Folded`]).
    pub fn save_smp_safetensors(&self, path: impl AsRef<Path>) -> Result<(), WeightsError> {
        refuse_folded(self.is_folded(), path.as_ref())?;
        let map = KeyMap::for_plus(self);
        save_safetensors(self, path.as_ref(), |p| map.to_torch(p))
    }
}

/// [`WeightsError::Folded`] for a folded model: its convolutions hold the BatchNorm transform
/// while the BatchNorm tensors are still written, which PyTorch would apply a second time.
fn refuse_folded(folded: bool, path: &Path) -> Result<(), WeightsError> {
    if folded {
        return Err(WeightsError::Folded {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Every tensor of `model` under its reference key (`to_torch`), as safetensors at `path`.
fn save_safetensors<B: Backend, M: Module<B> + ModuleSnapshot<B> + Clone>(
    model: &M,
    path: &Path,
    to_torch: impl Fn(&str) -> Option<String>,
) -> Result<(), WeightsError> {
    let write_err = |reason: String| WeightsError::Write {
        path: path.to_path_buf(),
        reason,
    };
    // Fold the running statistics of the last training step into the values read below
    // (`RunningState` keeps a step's update aside until a record or `valid()` asks for it).
    let _ = model.clone().into_record();
    let mut entries: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = Vec::new();
    for snapshot in model.collect(None, None, true) {
        let burn_path = snapshot.full_path();
        let key = to_torch(&burn_path)
            .ok_or_else(|| write_err(format!("no reference key for `{burn_path}`")))?;
        let data = snapshot
            .to_data()
            .map_err(|e| write_err(format!("reading `{burn_path}`: {e:?}")))?
            .convert::<f32>();
        let data = if is_linear_weight(&burn_path) {
            transpose_2d(data, DType::F32).map_err(write_err)?
        } else {
            data
        };
        if is_batch_counter(&key) {
            // PyTorch's counter is a 0-d int64.
            let count = data
                .to_vec::<f32>()
                .map_err(|e| write_err(format!("{e:?}")))?;
            let count = count.first().copied().unwrap_or(0.0).round() as i64;
            entries.push((
                key,
                vec![],
                safetensors::Dtype::I64,
                count.to_le_bytes().to_vec(),
            ));
            continue;
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

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
