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
        "{root} is in none of the known dataset layouts: DRIVE (training/, test/), the Kaggle \
         split (train_images/, train_masks/, …), STARE (stare-images/, labels-ah/), CHASE_DB1 \
         (Image_01L.jpg, Image_01L_1stHO.png, … in one folder), HRF (images/, manual1/, mask/) \
         or FIVES (train/Original/, train/Ground truth/, test/…); point at the folder the \
         download unpacked to, or name the dataset with --dataset (see the README's Datasets)"
    )]
    /// The folder is in none of the supported layouts.
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
    #[error("{path}: unsupported file type `{extension}` (supported: tif, tiff, gif, png, jpg, jpeg, bmp, ppm, pgm, and any of them gzipped as .gz)")]
    /// A file has an extension no decoder handles.
    UnsupportedFormat {
        /// The file or folder at fault.
        path: PathBuf,
        /// The file's extension.
        extension: String,
    },
    #[error("{path}: the file name does not follow the dataset's naming ({expected})")]
    /// A file name carries no id to pair it by in its dataset's naming.
    UnexpectedName {
        /// The file at fault.
        path: PathBuf,
        /// The naming expected, with an example.
        expected: String,
    },
    #[error(
        "{folder} mixes the two observers' labels: {path} is the {found} observer's, but the \
         {expected} observer's were asked for; keep each observer's labels in their own files \
         (as the download has them) and choose one with --observer"
    )]
    /// A label folder (or name) holds the other observer's labels.
    MixedObservers {
        /// The folder holding the labels.
        folder: PathBuf,
        /// The label file of the other observer.
        path: PathBuf,
        /// Which observer the file is from ("first" or "second").
        found: &'static str,
        /// Which observer was asked for.
        expected: &'static str,
    },
    #[error("{root}: {reason}")]
    /// A setting does not apply to the dataset (a split scheme of another dataset, a second
    /// observer it does not have).
    Setting {
        /// The dataset folder.
        root: PathBuf,
        /// What does not apply and what to use instead.
        reason: String,
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
