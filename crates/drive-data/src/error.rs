//! Errors: each names the file or folder at fault and says what is wrong.

use std::path::PathBuf;

/// Everything that can go wrong between files on disk and samples in memory.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    /// A file or folder could not be read or written.
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    #[error(
        "{root} is neither DRIVE layout (training/, test/) nor the Kaggle split \
         (train_images/, train_masks/, valid_images/, valid_masks/); see the README for how to get DRIVE"
    )]
    /// The folder is in neither supported layout.
    UnknownLayout {
        /// The dataset folder given.
        root: PathBuf,
    },
    #[error("missing folder {path} ({what})")]
    /// A folder the layout needs is missing.
    MissingFolder {
        /// The file or folder at fault.
        path: PathBuf,
        /// What the folder should hold.
        what: String,
    },
    #[error("folder {path} holds no image files")]
    /// A folder holds no image files.
    EmptyFolder {
        /// The file or folder at fault.
        path: PathBuf,
    },
    #[error("{path}: unsupported file type `{extension}` (supported: tif, tiff, gif, png, jpg, jpeg, bmp)")]
    /// A file has an extension no decoder handles.
    UnsupportedFormat {
        /// The file or folder at fault.
        path: PathBuf,
        /// The file's extension.
        extension: String,
    },
    #[error("{path}: the file name has no numeric id (DRIVE names look like `21_training.tif`)")]
    /// A file name carries no numeric id to pair it by.
    NoNumericId {
        /// The file or folder at fault.
        path: PathBuf,
    },
    #[error("{first} and {second} have the same id {id}")]
    /// Two files of one folder have the same id.
    DuplicateId {
        /// The numeric id from the file name.
        id: u32,
        /// The first file with the id.
        first: PathBuf,
        /// The second file with the id.
        second: PathBuf,
    },
    #[error("{path} has no matching {missing} (id {id}) in {folder}")]
    /// An image has no mask (or a mask no image) with its id.
    Unpaired {
        /// The file or folder at fault.
        path: PathBuf,
        /// The numeric id from the file name.
        id: u32,
        /// What is missing: "mask", "FOV mask" or "image".
        missing: &'static str,
        /// The folder searched.
        folder: PathBuf,
    },
    #[error("{path} is empty (0 bytes)")]
    /// A file is empty.
    EmptyFile {
        /// The file or folder at fault.
        path: PathBuf,
    },
    #[error("{path} cannot be decoded ({reason}); the file may be corrupt or truncated")]
    /// A file cannot be decoded.
    Decode {
        /// The file or folder at fault.
        path: PathBuf,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
    #[error("{mask} is {mask_size:?} (w×h) but its image {image} is {image_size:?}")]
    /// A mask is not the size of its image.
    SizeMismatch {
        /// The image file.
        image: PathBuf,
        /// The image's size, `[width, height]`.
        image_size: [u32; 2],
        /// The mask file.
        mask: PathBuf,
        /// The mask's size, `[width, height]`.
        mask_size: [u32; 2],
    },
    #[error("{path}: {reason}")]
    /// A file decodes but its contents are unusable.
    Invalid {
        /// The file or folder at fault.
        path: PathBuf,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
}

impl DataError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
