//! Training and inference errors.

use std::path::PathBuf;

/// Errors of the training and inference pipeline; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Data(#[from] drive_data::DataError),
    #[error(transparent)]
    Weights(#[from] deeplab::WeightsError),
    #[error(transparent)]
    Hub(#[from] deeplab::pretrained::HubError),
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Output { path: PathBuf, reason: String },
    #[error("invalid setting: {0}")]
    Config(String),
    #[error("device: {0}")]
    Device(String),
    #[error(
        "training stopped at epoch {epoch}, iteration {iteration}: the loss is {value} \
         (lower the learning rate, check the data); {kept}"
    )]
    NonFiniteLoss {
        epoch: usize,
        iteration: usize,
        value: f64,
        kept: String,
    },
    #[error("training interrupted: {0}")]
    Interrupted(String),
}
