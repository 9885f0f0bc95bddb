//! What a training run reports.

use std::path::PathBuf;

use crate::history::EpochRow;

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub out: PathBuf,
    pub device: String,
    /// All `metrics.csv` rows, including those of earlier runs when resuming.
    pub rows: Vec<EpochRow>,
    pub best_vessel_iou: f64,
    pub best_epoch: Option<usize>,
    pub last_epoch: usize,
    /// Training images per second of each epoch of this run: the whole training loop (data
    /// loading and augmentation, forward, backward, optimizer step, metrics), validation excluded.
    pub train_images_per_s: Vec<f64>,
}
