//! What each epoch writes: `metrics.csv`, the curves, the validation overlay, the checkpoints
//! (`last`, and `best-iou` / `best-loss` when they improve) and the summary line of `train.log`.

use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::store::EventStoreClient;
use burn::train::Learner;
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
    /// metrics.csv, plots and the validation overlay of one epoch.
    pub(super) fn write_reports(
        &self,
        rows: &[EpochRow],
        model: &SegModel<B::InnerBackend>,
        epoch: usize,
    ) -> Result<(), TrainError> {
        let out = &self.config.out;
        history::write_csv(&out.join("metrics.csv"), rows)?;
        if let Err(e) = epochs::write_curves(out, rows) {
            RunLog::new(out).warn(&format!("plots not written: {e}"));
        }
        let sample = &self.valid_samples[0];
        let prob = self.probability(&model.net, sample);
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

    pub(super) fn save_checkpoints(
        &self,
        learner: &Learner<Components<B>>,
        tap: &mut OptimizerTap<B>,
        store: &EventStoreClient,
        epoch: usize,
        rows: (&EpochRow, &EpochRow),
        best: &mut (f64, f64),
        schedule_iteration: u64,
    ) -> Result<bool, TrainError> {
        let root = checkpoint::checkpoints_dir(&self.config.out);
        std::fs::create_dir_all(&root).map_err(|e| TrainError::Checkpoint {
            path: root.clone(),
            reason: e.to_string(),
        })?;
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
        let optim = tap.take(learner, store)?;
        let last = PendingCheckpoint::begin(&root, LAST)?;
        last.write_model(&learner.model().net)?;
        last.write_record::<B, _>(OPTIMIZER_FILE, optim)?;
        let last_dir = last.commit(&meta(LAST))?;
        for (better, name) in [(better_iou, BEST_IOU), (better_loss, BEST_LOSS)] {
            if better {
                let pending = PendingCheckpoint::begin(&root, name)?;
                pending.link_model_from(&last_dir)?;
                pending.commit(&meta(name))?;
            }
        }
        Ok(better_iou)
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
