//! Weight loading and export errors.

use std::path::PathBuf;

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
        "{path} holds no torchvision ResNet/DeepLabV3 or segmentation_models_pytorch DeepLabV3+ \
         weights: the first key is `{first_key}` (expected `backbone.*` for DeepLabV3, \
         `encoder.*` + `decoder.*` for DeepLabV3+, or `conv1.weight`/`layer1.*` for an ImageNet \
         ResNet)"
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
