//! Training and inference errors.

use std::path::PathBuf;

/// Errors of the training and inference pipeline; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A dataset that cannot be read (the message names the file).
    #[error(transparent)]
    Data(#[from] drive_data::DataError),
    /// Model weights that cannot be read or written.
    #[error(transparent)]
    Weights(#[from] deeplab::WeightsError),
    /// Named pretrained weights that cannot be found or downloaded.
    #[error(transparent)]
    Hub(#[from] deeplab::pretrained::HubError),
    /// A checkpoint folder that cannot be read or written.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint folder or file.
        path: PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// An input or output file (prediction, evaluation, report) that cannot be used.
    #[error("{path}: {reason}")]
    Output {
        /// The file or folder.
        path: PathBuf,
        /// What went wrong and what to do.
        reason: String,
    },
    /// A setting that cannot work (the message names it and the range it takes).
    #[error("invalid setting: {0}")]
    Config(String),
    /// A device that cannot be used, and why.
    #[error("device: {0}")]
    Device(String),
    /// The training loss became NaN or infinite.
    #[error(
        "training stopped at epoch {epoch}, iteration {iteration}: the loss is {value} \
         (lower the learning rate, check the data); {kept}"
    )]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// Iteration within the epoch.
        iteration: usize,
        /// The loss value.
        value: f64,
        /// Which checkpoint was kept.
        kept: String,
    },
    /// The training loop ended without a result.
    #[error("training interrupted: {0}")]
    Interrupted(String),
}
