//! Checkpoints under `<out>/checkpoints/`: `best-iou/` (best validation vessel IoU in the FOV),
//! `best-loss/` (lowest validation loss) and `last/`, each a folder with the model weights
//! (`model.mpk`, full precision), a `meta.json` that makes prediction self-contained (model
//! config, normalisation, image size, epoch, metrics) and — in `last/` only — the optimizer state
//! for `--resume`.
//!
//! Writes are atomic: a checkpoint is assembled in a temporary folder, then swapped in with two
//! renames (`last` → `last.prev`, temp → `last`) and the old one removed. A process killed at any
//! moment leaves either the previous or the new checkpoint; [`resolve`] falls back to `*.prev`
//! when the swap was interrupted between the renames.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Record, Recorder};
use deeplab::{DeepLab, DeepLabConfig};
use drive_data::Normalization;
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::metrics::EpochMetrics;
use crate::model::loss::LossConfig;
use crate::model::Tiling;

/// Full-precision MessagePack records (never Burn's f16 `CompactRecorder`).
pub type CheckpointRecorder = NamedMpkFileRecorder<FullPrecisionSettings>;

/// Names of the three checkpoints.
pub const BEST_IOU: &str = "best-iou";
/// The checkpoint of the lowest validation loss.
pub const BEST_LOSS: &str = "best-loss";
/// The checkpoint of the latest epoch (with the optimizer state).
pub const LAST: &str = "last";

const META: &str = "meta.json";
const MODEL: &str = "model";
const OPTIM: &str = "optim";

/// Version of the checkpoint layout, bumped on incompatible changes (3: the architecture is
/// recorded, `arch` in `model`, and the weights are those of either architecture).
pub const FORMAT_VERSION: u32 = 3;

/// Everything needed to use a checkpoint without the training command line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// [`FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// `best-iou`, `best-loss` or `last`.
    pub kind: String,
    /// The architecture and its sizes.
    pub model: DeepLabConfig,
    /// The input normalisation the model was trained with.
    pub normalization: Normalization,
    /// Square input size the model was trained at.
    pub imgsz: usize,
    /// The sliding window predictions use by default (set for crop-trained models).
    #[serde(default)]
    pub tiling: Option<Tiling>,
    /// 1-based epoch the weights are from.
    pub epoch: usize,
    /// The epoch's training metrics.
    pub train: EpochMetrics,
    /// The epoch's validation metrics.
    pub valid: EpochMetrics,
    /// The training loss settings.
    pub loss: LossConfig,
    /// Best validation vessel IoU (FOV) and loss seen up to this epoch.
    pub best_vessel_iou: f64,
    /// Lowest validation loss so far.
    pub best_valid_loss: f64,
    /// Learning-rate scheduler iterations done (for resuming).
    pub scheduler_iteration: u64,
    /// The training settings, for resuming and for the record.
    pub settings: serde_json::Value,
}

/// `<out>/checkpoints`.
pub fn checkpoints_dir(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A stage of a checkpoint write, after which [`on_write_stage`]'s hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteStage {
    /// A record (model or optimizer) is written in the temporary folder.
    Record,
    /// `meta.json` is written and synced: the temporary folder is complete.
    Meta,
    /// The previous checkpoint is renamed aside (`<name>.prev`).
    Aside,
}

static STAGE_HOOK: std::sync::OnceLock<fn(WriteStage)> = std::sync::OnceLock::new();

/// Calls `hook` after each stage of every checkpoint write of this process, on the writing
/// thread — e.g. to show progress, or to stretch the stages so that a fault-injection test can
/// kill the process inside a write. Set once per process; returns `false` if a hook was set
/// before (the first one stays).
pub fn on_write_stage(hook: fn(WriteStage)) -> bool {
    STAGE_HOOK.set(hook).is_ok()
}

fn stage_done(stage: WriteStage) {
    if let Some(hook) = STAGE_HOOK.get() {
        hook(stage);
    }
}

/// A checkpoint being assembled in a temporary folder.
pub struct PendingCheckpoint {
    root: PathBuf,
    name: String,
    tmp: PathBuf,
}

impl PendingCheckpoint {
    /// Starts `<root>/<name>` in `<root>/.tmp-<name>` (a leftover temp folder is discarded).
    pub fn begin(root: &Path, name: &str) -> Result<Self, TrainError> {
        let tmp = root.join(format!(".tmp-{name}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        }
        std::fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
        Ok(Self {
            root: root.to_path_buf(),
            name: name.to_string(),
            tmp,
        })
    }

    /// Writes a Burn record (model or optimizer) as `<file>.mpk`.
    pub fn write_record<B: Backend, R: Record<B>>(
        &self,
        file: &str,
        record: R,
    ) -> Result<(), TrainError> {
        let path = self.tmp.join(file);
        CheckpointRecorder::new()
            .record(record, path.clone())
            .map_err(|e| io_err(&path, e))?;
        // On disk before `meta.json` says the checkpoint is complete (the recorder adds `.mpk`).
        let written = path.with_extension("mpk");
        std::fs::File::open(&written)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_err(&written, e))?;
        stage_done(WriteStage::Record);
        Ok(())
    }

    /// Writes the model's weights. A model with folded BatchNorms (inference only) is refused:
    /// its record would hold the folded convolutions beside the BatchNorm statistics, which a
    /// loaded model applies again.
    pub fn write_model<B: Backend>(&self, model: &DeepLab<B>) -> Result<(), TrainError> {
        if model.is_folded() {
            return Err(io_err(
                &self.tmp.join(MODEL),
                "the model's BatchNorms are folded into its convolutions (inference only): save \
                 the model before folding it",
            ));
        }
        self.write_record::<B, _>(MODEL, model.clone().into_record())
    }

    /// Hard-links (or copies) the model weights of another committed checkpoint.
    pub fn link_model_from(&self, other: &Path) -> Result<(), TrainError> {
        let file = format!("{MODEL}.mpk");
        let (src, dst) = (other.join(&file), self.tmp.join(&file));
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(|e| io_err(&src, e))?;
        }
        Ok(())
    }

    /// Writes `meta.json` and atomically replaces `<root>/<name>` with this checkpoint.
    pub fn commit(self, meta: &CheckpointMeta) -> Result<PathBuf, TrainError> {
        let meta_path = self.tmp.join(META);
        let json = serde_json::to_vec_pretty(meta).map_err(|e| io_err(&meta_path, e))?;
        write_synced(&meta_path, &json)?;
        sync_dir(&self.tmp);
        stage_done(WriteStage::Meta);
        let target = self.root.join(&self.name);
        let prev = self.root.join(format!("{}.prev", self.name));
        if prev.exists() {
            std::fs::remove_dir_all(&prev).map_err(|e| io_err(&prev, e))?;
        }
        if target.exists() {
            std::fs::rename(&target, &prev).map_err(|e| io_err(&target, e))?;
        }
        stage_done(WriteStage::Aside);
        std::fs::rename(&self.tmp, &target).map_err(|e| io_err(&self.tmp, e))?;
        sync_dir(&self.root);
        if prev.exists() {
            std::fs::remove_dir_all(&prev).map_err(|e| io_err(&prev, e))?;
        }
        Ok(target)
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), TrainError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| io_err(path, e))?;
    f.write_all(bytes).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

fn sync_dir(dir: &Path) {
    // Best effort: makes the renames durable on power loss where the platform supports it.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// The committed folder of checkpoint `<root>/<name>`: the folder itself, or `<name>.prev` when a
/// swap was interrupted between its two renames. `None` if neither holds a `meta.json`.
pub fn resolve(root: &Path, name: &str) -> Option<PathBuf> {
    [root.join(name), root.join(format!("{name}.prev"))]
        .into_iter()
        .find(|dir| dir.join(META).is_file())
}

/// Finds the checkpoint folder `path` refers to: a checkpoint folder itself, a `checkpoints/`
/// folder or a training output folder (then `best-iou`, else `last`).
pub fn find(path: &Path) -> Result<PathBuf, TrainError> {
    if path.join(META).is_file() {
        return Ok(path.to_path_buf());
    }
    for root in [checkpoints_dir(path), path.to_path_buf()] {
        for name in [BEST_IOU, LAST] {
            if let Some(dir) = resolve(&root, name) {
                return Ok(dir);
            }
        }
    }
    Err(TrainError::Checkpoint {
        path: path.to_path_buf(),
        reason: "no checkpoint here (expected meta.json, or checkpoints/best-iou or \
                 checkpoints/last from `retina-seg train --out`)"
            .into(),
    })
}

/// Reads a checkpoint's `meta.json`.
pub fn read_meta(dir: &Path) -> Result<CheckpointMeta, TrainError> {
    let path = dir.join(META);
    let text = std::fs::read_to_string(&path).map_err(|e| io_err(&path, e))?;
    let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| io_err(&path, e))?;
    if meta.format_version != FORMAT_VERSION {
        return Err(io_err(
            &path,
            format!(
                "checkpoint format {} is not supported: this build reads format {FORMAT_VERSION} \
                 (checkpoints written before DeepLabV3+ support have format 2 and a different \
                 weight layout; train again, or predict with the build that wrote it)",
                meta.format_version
            ),
        ));
    }
    Ok(meta)
}

/// The weights file of the checkpoint folder `dir` (`model.mpk`).
pub fn model_file(dir: &Path) -> PathBuf {
    dir.join(MODEL).with_extension("mpk")
}

/// Loads a checkpoint's model (any backend) and metadata.
pub fn load_model<B: Backend>(
    dir: &Path,
    device: &B::Device,
) -> Result<(DeepLab<B>, CheckpointMeta), TrainError> {
    let meta = read_meta(dir)?;
    let path = dir.join(MODEL);
    let model = meta
        .model
        .init::<B>(device)
        .load_file(path.clone(), &CheckpointRecorder::new(), device)
        .map_err(|e| io_err(&path, e))?;
    Ok((model, meta))
}

/// Loads the optimizer record stored in a `last` checkpoint.
pub fn load_optimizer<B: Backend, R: Record<B>>(
    dir: &Path,
    device: &B::Device,
) -> Result<R, TrainError> {
    let path = dir.join(OPTIM);
    Recorder::<B>::load(&CheckpointRecorder::new(), path.clone(), device)
        .map_err(|e| io_err(&path, e))
}

/// The optimizer file name inside a checkpoint (without extension).
pub const OPTIMIZER_FILE: &str = OPTIM;
