//! What a training run reports.

use std::path::PathBuf;

use crate::metrics::history::EpochRow;

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run's output folder.
    pub out: PathBuf,
    /// The device it trained on, in words.
    pub device: String,
    /// All `metrics.csv` rows, including those of earlier runs when resuming.
    pub rows: Vec<EpochRow>,
    /// Best validation vessel IoU (FOV).
    pub best_vessel_iou: f64,
    /// Its 1-based epoch, if any epoch finished.
    pub best_epoch: Option<usize>,
    /// The last epoch finished (1-based).
    pub last_epoch: usize,
    /// Training images per second of each epoch of this run: the whole training loop (data
    /// loading and augmentation, forward, backward, optimizer step, metrics), validation excluded.
    pub train_images_per_s: Vec<f64>,
}
