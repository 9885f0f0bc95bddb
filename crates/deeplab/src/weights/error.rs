//! Weight loading and export errors.

use std::path::PathBuf;

/// Errors from loading or exporting weights. Each names the file and, where one is at fault, the key.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("cannot read {path}: {source}")]
    /// The file could not be read.
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    #[error(
        "{path} is not a readable PyTorch checkpoint or safetensors file ({reason}); \
         expected a state_dict saved with torch.save(model.state_dict(), ...)"
    )]
    /// The file is neither a PyTorch checkpoint nor a safetensors file.
    NotACheckpoint {
        /// The file or folder at fault.
        path: PathBuf,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
    #[error(
        "{path} holds no torchvision ResNet/DeepLabV3 or segmentation_models_pytorch DeepLabV3+ \
         weights: the first key is `{first_key}` (expected `backbone.*` for DeepLabV3, \
         `encoder.*` + `decoder.*` for DeepLabV3+, or `conv1.weight`/`layer1.*` for an ImageNet \
         ResNet)"
    )]
    /// The keys are none of the layouts this crate maps.
    UnknownLayout {
        /// The file or folder at fault.
        path: PathBuf,
        /// The checkpoint's first key.
        first_key: String,
    },
    #[error("{path}: key `{key}` does not exist in this model ({hint})")]
    /// A checkpoint key has no counterpart in the model (strict loading).
    UnexpectedKey {
        /// The file or folder at fault.
        path: PathBuf,
        /// The state-dict key at fault.
        key: String,
        /// What the key suggests (e.g. an architecture mismatch).
        hint: String,
    },
    #[error(
        "{path}: key `{key}` has shape {found:?} but the model expects {expected:?}; \
         the checkpoint is for a different architecture"
    )]
    /// A tensor's shape differs from the model's parameter.
    ShapeMismatch {
        /// The file or folder at fault.
        path: PathBuf,
        /// The state-dict key at fault.
        key: String,
        /// What was expected.
        expected: Vec<usize>,
        /// What the file holds.
        found: Vec<usize>,
    },
    #[error(
        "{path}: the model's `{key}` is not in the checkpoint ({count} missing in all); \
         the checkpoint is incomplete or for a smaller architecture"
    )]
    /// A model parameter is not in the checkpoint (strict loading).
    MissingKey {
        /// The file or folder at fault.
        path: PathBuf,
        /// The state-dict key at fault.
        key: String,
        /// How many keys are missing in all.
        count: usize,
    },
    #[error(
        "{path}: tensor `{key}` cannot be read ({reason}); the file may be truncated or corrupt"
    )]
    /// A tensor cannot be decoded.
    BadTensor {
        /// The file or folder at fault.
        path: PathBuf,
        /// The state-dict key at fault.
        key: String,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
    #[error(
        "cannot export to {path}: the model's BatchNorms are folded into its convolutions \
         (`fold_batch_norms`), which PyTorch's modules do not expect; export the model before \
         folding it (fold a clone for inference)"
    )]
    /// The model to export has its BatchNorms folded (inference only).
    Folded {
        /// The file that was not written.
        path: PathBuf,
    },
    #[error("cannot write {path}: {reason}")]
    /// The export could not be written.
    Write {
        /// The file or folder at fault.
        path: PathBuf,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
}
