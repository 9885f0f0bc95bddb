//! The epoch loop, plugged into burn-train as a custom `SupervisedLearningStrategy`: burn-train's
//! `Learner` does the steps and its renderer shows progress; this loop adds exact epoch metrics
//! (confusion matrices accumulated on the device), the non-finite-loss guard, `metrics.csv`,
//! plots, overlays and atomic checkpoints.

mod epoch_files;
mod optimizer_tap;
mod step_window;
mod train_epoch;
mod validation;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use burn::data::dataloader::Progress;
use burn::module::AutodiffModule;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    Learner, LearningComponentsMarker, SupervisedLearningStrategy,
    SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents, ValidLoader,
};
use drive_data::rng::Rng;
use drive_data::{Normalization, Sample};

pub use epoch_files::epoch_line;
use epoch_files::{HeldBests, LastTimer};
use optimizer_tap::OptimizerTap;

use crate::error::TrainError;
use crate::metrics::history::EpochRow;
use crate::model::checkpoint::{self, LAST};
use crate::model::SegModel;
use crate::train::config::TrainConfig;
use crate::train::run_log::RunLog;
use crate::train::schedule::Schedule;
use crate::train::summary::TrainSummary;

/// The optimizer: PyTorch-semantics Adam over the whole model.
pub type Optim<B> =
    burn::optim::adaptor::OptimizerAdaptor<crate::train::optim::Adam, SegModel<B>, B>;
/// burn-train's component bundle for this project.
pub type Components<B> = LearningComponentsMarker<B, Schedule, SegModel<B>, Optim<B>>;

/// The epoch loop's settings and starting point; `fit` leaves the run's result in `outcome`
/// (burn-train's `launch` returns only the model).
pub struct DriveStrategy<B: AutodiffBackend> {
    /// Where the model trains.
    pub device: B::Device,
    /// The run's settings.
    pub config: TrainConfig,
    /// The input normalisation in use.
    pub normalization: Normalization,
    /// The validation images at their original size: the first gives the overlay; with crops
    /// they are validated whole, through the sliding window.
    pub valid_samples: Arc<Vec<Sample>>,
    /// Last completed epoch (0 for a fresh run).
    pub start_epoch: usize,
    /// Optimizer steps per epoch (the schedule's position is `epoch × iters_per_epoch`).
    pub iters_per_epoch: usize,
    /// The run so far: the earlier epochs' rows and best IoU when resuming, empty otherwise.
    pub summary: TrainSummary,
    /// The lowest validation loss so far (the `best-loss` checkpoint's).
    pub best_valid_loss: f64,
    /// The summary of the run, or why it stopped; `None` until `fit` returns.
    pub outcome: Arc<Mutex<Option<Result<TrainSummary, TrainError>>>>,
}

impl<B: AutodiffBackend> DriveStrategy<B> {
    pub(super) fn non_finite(&self, epoch: usize, iteration: usize, value: f64) -> TrainError {
        let root = checkpoint::checkpoints_dir(&self.config.out);
        let kept = match checkpoint::resolve(&root, LAST)
            .and_then(|d| checkpoint::read_meta(&d).ok().map(|m| (d, m.epoch)))
        {
            Some((dir, e)) => format!("the last good checkpoint is {} (epoch {e})", dir.display()),
            None => "no checkpoint had been written yet".into(),
        };
        TrainError::NonFiniteLoss {
            epoch,
            iteration,
            value,
            kept,
        }
    }
}

impl<B: AutodiffBackend> SupervisedLearningStrategy<Components<B>> for DriveStrategy<B> {
    fn fit(
        &self,
        components: TrainingComponents<Components<B>>,
        mut learner: Learner<Components<B>>,
        train_loader: TrainLoader<Components<B>>,
        valid_loader: ValidLoader<Components<B>>,
        _starting_epoch: usize,
    ) -> (SegModel<B>, SupervisedTrainingEventProcessor<Components<B>>) {
        let mut processor = components.event_processor;
        let interrupter = components.interrupter;
        let store = components.event_store;
        let num_epochs = components.num_epochs;
        let mut tap = OptimizerTap::<B>::new();
        let mut summary = self.summary.clone();
        let mut best = (summary.best_vessel_iou, self.best_valid_loss);
        let mut error = None;
        let mut timer = LastTimer::new(Duration::from_secs(self.config.checkpoint_every_s));
        let mut held = HeldBests::default();

        for epoch in self.start_epoch + 1..=num_epochs {
            // Dropout draws from the backend RNG: reseed per epoch so a resumed run matches.
            B::seed(
                &self.device,
                Rng::derive(self.config.seed, epoch as u64, 1).next_u64(),
            );
            let global = Progress {
                items_processed: epoch,
                items_total: num_epochs,
            };
            let train = match self.train_epoch(
                &mut learner,
                &train_loader,
                &global,
                &mut processor,
                &interrupter,
            ) {
                Ok((metrics, images_per_s)) => {
                    summary.train_images_per_s.push(images_per_s);
                    metrics
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            // The inference model, BatchNorms folded as `predict` runs it.
            let trained = learner.model().valid();
            let net = trained.net.clone();
            let model = SegModel {
                net: trained.net.fold_batch_norms(),
                loss: trained.loss,
            };
            // Tiled validation blends the first image's probability, which the overlay shows.
            let (valid, first_probability) = match self.config.crop {
                Some(_) => self.valid_epoch_tiled(&model, &global, &mut processor),
                None => (
                    self.valid_epoch(&model, &valid_loader, &global, &mut processor),
                    None,
                ),
            };
            if !valid.loss.is_finite() {
                error = Some(self.non_finite(epoch, 0, valid.loss));
                break;
            }
            let lr = learner.lr_current();
            let rows = &mut summary.rows;
            rows.retain(|r| r.epoch != epoch);
            rows.push(EpochRow {
                epoch,
                split: "train".into(),
                lr,
                metrics: train,
            });
            rows.push(EpochRow {
                epoch,
                split: "valid".into(),
                lr,
                metrics: valid,
            });
            let n = rows.len();
            let write_last = timer.due(epoch == num_epochs || interrupter.should_stop());
            let result = self
                .save_checkpoints(
                    &learner,
                    &net,
                    &mut tap,
                    &store,
                    epoch,
                    (&rows[n - 2], &rows[n - 1]),
                    &mut best,
                    (epoch * self.iters_per_epoch) as u64,
                    write_last,
                    &mut held,
                )
                .and_then(|improved| {
                    if write_last {
                        timer.written();
                    }
                    self.write_reports(rows, &model, first_probability, epoch)?;
                    Ok(improved)
                });
            match result {
                Ok(improved) => {
                    if improved {
                        summary.best_epoch = Some(epoch);
                    }
                }
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
            summary.last_epoch = epoch;
            let line = epoch_line(epoch, num_epochs, &train, &valid);
            RunLog::new(&self.config.out).epoch(&line);
            if interrupter.should_stop() {
                error = Some(TrainError::Interrupted(
                    interrupter
                        .get_message()
                        .unwrap_or_else(|| "stopped".into()),
                ));
                break;
            }
        }
        summary.best_vessel_iou = best.0;
        let outcome = match error {
            Some(e) => {
                let log = RunLog::new(&self.config.out);
                // The best models of the epochs since the last write of `last` are kept.
                if let Err(held_error) = self.write_held(&mut held, None) {
                    log.warn(&format!("best models not written: {held_error}"));
                }
                log.error(&e.to_string());
                Err(e)
            }
            None => Ok(summary),
        };
        *self.outcome.lock().expect("outcome lock") = Some(outcome);
        (learner.model(), processor)
    }
}
