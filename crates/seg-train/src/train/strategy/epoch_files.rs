//! What each epoch writes: `metrics.csv`, the curves, the validation overlay, the checkpoints
//! (`last` on a timer, and `best-iou` / `best-loss` when they improve, written with `last`) and
//! the summary line of `train.log`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use burn::prelude::Backend;
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::store::EventStoreClient;
use burn::train::Learner;
use deeplab::DeepLab;
use image::GrayImage;

use super::optimizer_tap::OptimizerTap;
use super::{Components, DriveStrategy};
use crate::chart::epochs;
use crate::error::TrainError;
use crate::metrics::history::{self, EpochRow};
use crate::metrics::EpochMetrics;
use crate::model::checkpoint::{
    self, CheckpointMeta, PendingCheckpoint, BEST_IOU, BEST_LOSS, FORMAT_VERSION, LAST,
    OPTIMIZER_FILE,
};
use crate::model::tiling::crop_tiling;
use crate::model::SegModel;
use crate::predict::overlay;
use crate::train::run_log::RunLog;

impl<B: AutodiffBackend> DriveStrategy<B> {
    /// metrics.csv, plots and the validation overlay of one epoch: the first validation image
    /// thresholded at 0.5, its probability `first_probability` when validation computed it (the
    /// sliding window's blend), else computed here.
    pub(super) fn write_reports(
        &self,
        rows: &[EpochRow],
        model: &SegModel<B::InnerBackend>,
        first_probability: Option<Vec<f32>>,
        epoch: usize,
    ) -> Result<(), TrainError> {
        let out = &self.config.out;
        history::write_csv(&out.join("metrics.csv"), rows)?;
        if let Err(e) = epochs::write_curves(out, rows) {
            RunLog::new(out).warn(&format!("plots not written: {e}"));
        }
        let sample = &self.valid_samples[0];
        let prob = first_probability.unwrap_or_else(|| self.probability(&model.net, sample));
        let [w, h] = sample.size();
        let mask = GrayImage::from_raw(w, h, prob.iter().map(|&p| u8::from(p >= 0.5)).collect())
            .expect("prediction has the image's size");
        let picture = overlay::overlay(
            &sample.image,
            &mask,
            sample.vessels.as_ref(),
            Some(&sample.fov),
        );
        let dir = out.join("overlays");
        let path = dir.join(format!("epoch-{epoch:03}.png"));
        std::fs::create_dir_all(&dir)
            .and_then(|_| picture.save(&path).map_err(std::io::Error::other))
            .map_err(|e| TrainError::Output {
                path,
                reason: e.to_string(),
            })
    }

    /// Writes `last` when `write_last` says so, with the best models held since the previous
    /// write; otherwise keeps an improved model in `held` for the next write.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn save_checkpoints(
        &self,
        learner: &Learner<Components<B>>,
        net: &DeepLab<B::InnerBackend>,
        tap: &mut OptimizerTap<B>,
        store: &EventStoreClient,
        epoch: usize,
        rows: (&EpochRow, &EpochRow),
        best: &mut (f64, f64),
        schedule_iteration: u64,
        write_last: bool,
        held: &mut HeldBests<B::InnerBackend>,
    ) -> Result<bool, TrainError> {
        let valid = rows.1.metrics;
        let iou = valid.fov.vessel_iou().unwrap_or(0.0);
        let better_iou = iou > best.0;
        let better_loss = valid.loss < best.1;
        if better_iou {
            best.0 = iou;
        }
        if better_loss {
            best.1 = valid.loss;
        }
        let meta = |kind: &str| CheckpointMeta {
            format_version: FORMAT_VERSION,
            kind: kind.to_string(),
            model: self.config.model.clone(),
            normalization: self.normalization,
            imgsz: self.config.imgsz,
            tiling: self.config.crop.map(crop_tiling),
            epoch,
            train: rows.0.metrics,
            valid: rows.1.metrics,
            loss: self.config.loss.clone(),
            best_vessel_iou: best.0,
            best_valid_loss: best.1,
            scheduler_iteration: schedule_iteration,
            settings: serde_json::to_value(&self.config).unwrap_or_default(),
        };
        // A held model shares the trained weights' buffers (the optimizer's updates make new
        // ones): holding it copies nothing.
        if better_iou {
            held.iou = Some((net.clone(), meta(BEST_IOU)));
        }
        if better_loss {
            held.loss = Some((net.clone(), meta(BEST_LOSS)));
        }
        if !write_last {
            return Ok(better_iou);
        }
        let root = self.checkpoints_root()?;
        let optim = tap.take(learner, store)?;
        let last = PendingCheckpoint::begin(&root, LAST)?;
        last.write_model(&learner.model().net)?;
        last.write_record::<B, _>(OPTIMIZER_FILE, optim)?;
        let last_dir = last.commit(&meta(LAST))?;
        self.write_held(held, Some((epoch, &last_dir)))?;
        Ok(better_iou)
    }

    /// Writes the best models held in memory: a model of epoch `last.0` is linked from the
    /// `last` checkpoint just written in `last.1`, any other written out.
    pub(super) fn write_held(
        &self,
        held: &mut HeldBests<B::InnerBackend>,
        last: Option<(usize, &Path)>,
    ) -> Result<(), TrainError> {
        if held.iou.is_none() && held.loss.is_none() {
            return Ok(());
        }
        let root = self.checkpoints_root()?;
        for (name, entry) in [(BEST_IOU, held.iou.take()), (BEST_LOSS, held.loss.take())] {
            let Some((net, meta)) = entry else { continue };
            let pending = PendingCheckpoint::begin(&root, name)?;
            match last {
                Some((epoch, dir)) if epoch == meta.epoch => pending.link_model_from(dir)?,
                _ => pending.write_model(&net)?,
            }
            pending.commit(&meta)?;
        }
        Ok(())
    }

    fn checkpoints_root(&self) -> Result<PathBuf, TrainError> {
        let root = checkpoint::checkpoints_dir(&self.config.out);
        std::fs::create_dir_all(&root).map_err(|e| TrainError::Checkpoint {
            path: root.clone(),
            reason: e.to_string(),
        })?;
        Ok(root)
    }
}

/// The `best-iou` and `best-loss` models of epochs whose `last` checkpoint was not written (each
/// with its `meta.json`), until the next write of `last`.
pub(super) struct HeldBests<B: Backend> {
    iou: Option<(DeepLab<B>, CheckpointMeta)>,
    loss: Option<(DeepLab<B>, CheckpointMeta)>,
}

impl<B: Backend> Default for HeldBests<B> {
    fn default() -> Self {
        Self {
            iou: None,
            loss: None,
        }
    }
}

/// When `checkpoints/last` is due: after the first epoch of a run (a checkpoint that cannot be
/// written fails early), the final or an interrupted epoch, and the first epoch that ends
/// `every` or more after the previous write ([`TrainConfig::checkpoint_every_s`]).
///
/// [`TrainConfig::checkpoint_every_s`]: crate::train::config::TrainConfig::checkpoint_every_s
pub(super) struct LastTimer {
    every: Duration,
    previous: Option<Instant>,
}

impl LastTimer {
    pub(super) fn new(every: Duration) -> Self {
        Self {
            every,
            previous: None,
        }
    }

    /// Whether `last` is written after this epoch (`ending`: the final or an interrupted one).
    pub(super) fn due(&self, ending: bool) -> bool {
        ending || self.previous.is_none_or(|t| t.elapsed() >= self.every)
    }

    /// A write of `last` has just finished.
    pub(super) fn written(&mut self) {
        self.previous = Some(Instant::now());
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.2}%", 100.0 * v))
}

/// One summary line per epoch.
pub fn epoch_line(
    epoch: usize,
    epochs: usize,
    train: &EpochMetrics,
    valid: &EpochMetrics,
) -> String {
    format!(
        "epoch {epoch}/{epochs}: train loss {:.4}, vessel IoU (FOV) {} | valid loss {:.4}, \
         vessel IoU (FOV) {}, F1 (FOV) {}, mIoU (image) {}, accuracy (FOV) {}",
        train.loss,
        pct(train.fov.vessel_iou()),
        valid.loss,
        pct(valid.fov.vessel_iou()),
        pct(valid.fov.f1()),
        pct(valid.image.miou()),
        pct(valid.fov.accuracy()),
    )
}
