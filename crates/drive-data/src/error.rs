//! Errors: each names the file or folder at fault and says what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong between files on disk and samples in memory.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{root} is neither DRIVE layout (training/, test/) nor the Kaggle split \
         (train_images/, train_masks/, valid_images/, valid_masks/); see the README for how to get DRIVE"
    )]
    UnknownLayout { root: PathBuf },
    #[error("missing folder {path} ({what})")]
    MissingFolder { path: PathBuf, what: String },
    #[error("folder {path} holds no image files")]
    EmptyFolder { path: PathBuf },
    #[error("{path}: unsupported file type `{extension}` (supported: tif, tiff, gif, png, jpg, jpeg, bmp)")]
    UnsupportedFormat { path: PathBuf, extension: String },
    #[error("{path}: the file name has no numeric id (DRIVE names look like `21_training.tif`)")]
    NoNumericId { path: PathBuf },
    #[error("{first} and {second} have the same id {id}")]
    DuplicateId {
        id: u32,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{path} has no matching {missing} (id {id}) in {folder}")]
    Unpaired {
        path: PathBuf,
        id: u32,
        missing: &'static str,
        folder: PathBuf,
    },
    #[error("{path} is empty (0 bytes)")]
    EmptyFile { path: PathBuf },
    #[error("{path} cannot be decoded ({reason}); the file may be corrupt or truncated")]
    Decode { path: PathBuf, reason: String },
    #[error("{mask} is {mask_size:?} (w×h) but its image {image} is {image_size:?}")]
    SizeMismatch {
        image: PathBuf,
        image_size: [u32; 2],
        mask: PathBuf,
        mask_size: [u32; 2],
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = DataError> = std::result::Result<T, E>;
