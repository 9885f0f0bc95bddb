//! The epoch loop, plugged into burn-train as a custom `SupervisedLearningStrategy`: burn-train's
//! `Learner` does the steps and its renderer shows progress; this loop adds exact epoch metrics
//! (confusion matrices accumulated on the device), the non-finite-loss guard, `metrics.csv`,
//! plots, overlays and atomic checkpoints.

use std::path::PathBuf;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::Progress;
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::record::Record;
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    AsyncCheckpointer, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::EventStoreClient;
use burn::train::{
    EventProcessorTraining, InferenceStep, Interrupter, Learner, LearnerEvent,
    LearnerOptimizerRecord, LearningCheckpointer, LearningComponentsMarker,
    SupervisedLearningStrategy, SupervisedTrainingEventProcessor, TrainLoader, TrainingComponents,
    TrainingItem, ValidLoader,
};
use deeplab::DeepLab;
use drive_data::augment::{warp, AugmentParams};
use drive_data::rng::Rng;
use drive_data::{Normalization, Sample, SegBatch, SegBatcher, SegItem};
use image::GrayImage;

use crate::accumulator::Accumulator;
use crate::checkpoint::{
    self, CheckpointMeta, PendingCheckpoint, BEST_IOU, BEST_LOSS, LAST, OPTIMIZER_FILE,
};
use crate::config::TrainConfig;
use crate::error::TrainError;
use crate::history::{self, EpochRow};
use crate::loss::segmentation_loss;
use crate::metrics::{Confusion, EpochMetrics};
use crate::model::{SegModel, SegOutput};
use crate::overlay;
use crate::plots;
use crate::probability::{
    blend_windows, crop_tiling, predict_probability_tiled, probability_at, Tiling,
};
use crate::run_log::RunLog;
use crate::schedule::Schedule;

/// The optimizer: PyTorch-semantics Adam over the whole model.
pub type Optim<B> = burn::optim::adaptor::OptimizerAdaptor<crate::optim::Adam, SegModel<B>, B>;
/// burn-train's component bundle for this project.
pub type Components<B> = LearningComponentsMarker<B, Schedule, SegModel<B>, Optim<B>>;

/// State carried over from the checkpoint a run resumes from.
#[derive(Debug, Clone)]
pub struct ResumeState {
    pub best_vessel_iou: f64,
    pub best_valid_loss: f64,
    pub best_epoch: Option<usize>,
    pub optimizer_dir: Option<PathBuf>,
}

impl Default for ResumeState {
    fn default() -> Self {
        Self {
            best_vessel_iou: f64::NEG_INFINITY,
            best_valid_loss: f64::INFINITY,
            best_epoch: None,
            optimizer_dir: None,
        }
    }
}

/// What the loop reports back through `launch` (which returns only the model).
#[derive(Debug, Default)]
pub struct Outcome {
    pub error: Option<TrainError>,
    pub rows: Vec<EpochRow>,
    pub best_vessel_iou: f64,
    pub best_epoch: Option<usize>,
    pub last_epoch: usize,
    /// Training images per second of each epoch run (steps, data loading and metrics).
    pub train_images_per_s: Vec<f64>,
}

pub struct DriveStrategy<B: AutodiffBackend> {
    pub device: B::Device,
    pub config: TrainConfig,
    pub normalization: Normalization,
    /// The validation images at their original size: the first gives the overlay; with crops
    /// they are validated whole, through the sliding window.
    pub valid_samples: Arc<Vec<Sample>>,
    /// Last completed epoch (0 for a fresh run).
    pub start_epoch: usize,
    pub rows: Mutex<Vec<EpochRow>>,
    pub resume: ResumeState,
    pub outcome: Arc<Mutex<Outcome>>,
}

/// Hands the records burn-train's checkpointer produces to the loop (the `Learner` keeps its
/// optimizer private; its checkpointer is the only way to the optimizer state).
struct Capture<R>(Mutex<mpsc::Sender<R>>);

impl<R: Record<B> + Send, B: Backend> Checkpointer<R, B> for Capture<R> {
    fn save(&self, _epoch: usize, record: R) -> Result<(), CheckpointerError> {
        self.0
            .lock()
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))?
            .send(record)
            .map_err(|e| CheckpointerError::Unknown(e.to_string()))
    }

    fn delete(&self, _epoch: usize) -> Result<(), CheckpointerError> {
        Ok(())
    }

    fn restore(&self, _epoch: usize, _device: &B::Device) -> Result<R, CheckpointerError> {
        Err(CheckpointerError::Unknown("capture only".into()))
    }
}

struct AlwaysSave;

impl CheckpointingStrategy for AlwaysSave {
    fn checkpointing(&mut self, _epoch: usize, _: &EventStoreClient) -> Vec<CheckpointingAction> {
        vec![CheckpointingAction::Save]
    }
}

/// Takes the optimizer record out of a learner.
struct OptimizerTap<B: AutodiffBackend> {
    checkpointer: LearningCheckpointer<Components<B>>,
    optim: mpsc::Receiver<LearnerOptimizerRecord<Components<B>>>,
    model: mpsc::Receiver<<SegModel<B> as burn::module::Module<B>>::Record>,
    scheduler: mpsc::Receiver<u64>,
}

impl<B: AutodiffBackend> OptimizerTap<B> {
    fn new() -> Self {
        let (tx_m, model) = mpsc::channel();
        let (tx_o, optim) = mpsc::channel();
        let (tx_s, scheduler) = mpsc::channel();
        let checkpointer = LearningCheckpointer::new(
            AsyncCheckpointer::new(Capture(Mutex::new(tx_m))),
            AsyncCheckpointer::new(Capture(Mutex::new(tx_o))),
            AsyncCheckpointer::new(Capture(Mutex::new(tx_s))),
            Box::new(AlwaysSave),
        );
        Self {
            checkpointer,
            optim,
            model,
            scheduler,
        }
    }

    fn take(
        &mut self,
        learner: &Learner<Components<B>>,
        store: &EventStoreClient,
    ) -> Result<LearnerOptimizerRecord<Components<B>>, TrainError> {
        self.checkpointer.checkpoint(learner, 0, store);
        let lost = |_| TrainError::Interrupted("the checkpoint thread stopped".into());
        let _ = self.model.recv().map_err(lost)?;
        let _ = self.scheduler.recv().map_err(lost)?;
        self.optim.recv().map_err(lost)
    }
}

/// The steps since the last progress report, kept on the device: the progress display and the
/// non-finite check read them together every [`Window::STEPS`] steps or [`Window::EVERY`], never
/// once per step, so the host does not wait for the device at each step.
struct Window<B: Backend> {
    losses: Vec<Tensor<B, 1>>,
    counts: Option<Tensor<B, 1, Int>>,
    images: usize,
    first_iteration: usize,
    since: Instant,
}

impl<B: Backend> Window<B> {
    const STEPS: usize = 25;
    const EVERY: Duration = Duration::from_secs(2);

    fn new(first_iteration: usize) -> Self {
        Self {
            losses: Vec::new(),
            counts: None,
            images: 0,
            first_iteration,
            since: Instant::now(),
        }
    }

    fn add(&mut self, loss: Tensor<B, 1>, counts: Tensor<B, 1, Int>, images: usize) {
        self.losses.push(loss);
        self.counts = Some(match self.counts.take() {
            Some(sum) => sum + counts,
            None => counts,
        });
        self.images += images;
    }

    fn due(&self, last: bool) -> bool {
        !self.losses.is_empty()
            && (last || self.losses.len() >= Self::STEPS || self.since.elapsed() >= Self::EVERY)
    }

    /// The window as one item for burn-train's metrics: the step losses `[k]` (the loss metric
    /// weights by their number) and the summed counts.
    fn into_output(self) -> SegOutput<B> {
        SegOutput {
            loss: Tensor::cat(self.losses, 0),
            counts: self.counts.expect("a window holds at least one step"),
            images: self.images,
        }
    }
}

/// The first non-finite value of `losses` (read from the device) and its position.
fn first_non_finite<B: Backend>(losses: &Tensor<B, 1>) -> Option<(usize, f64)> {
    let values: Vec<f64> = losses.clone().into_data().convert::<f64>().to_vec().ok()?;
    values.into_iter().enumerate().find(|(_, v)| !v.is_finite())
}

impl<B: AutodiffBackend> DriveStrategy<B> {
    fn non_finite(&self, epoch: usize, iteration: usize, value: f64) -> TrainError {
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

    /// One training epoch; returns its metrics and the images per second of the training steps
    /// (data loading, forward, backward, optimizer and metrics included).
    fn train_epoch(
        &self,
        learner: &mut Learner<Components<B>>,
        loader: &TrainLoader<Components<B>>,
        global: &Progress,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
        interrupter: &Interrupter,
    ) -> Result<(EpochMetrics, f64), TrainError> {
        let epoch = global.items_processed;
        let start = Instant::now();
        let mut iterator = loader.iter();
        let mut acc = Accumulator::<B>::new();
        let mut window = Window::<B>::new(1);
        let mut iteration = 0;
        let mut next = iterator.next();
        while let Some(batch) = next {
            iteration += 1;
            learner.lr_step();
            let images = batch.ids.len();
            let output = learner.train_step(batch);
            learner.optimizer_step(output.grads);
            let loss = output.item.loss.detach();
            acc.add(loss.clone(), output.item.counts.clone(), images);
            window.add(loss, output.item.counts, images);
            next = iterator.next();
            if !window.due(next.is_none()) {
                continue;
            }
            let first = window.first_iteration;
            let item = std::mem::replace(&mut window, Window::new(iteration + 1)).into_output();
            if let Some((k, value)) = first_non_finite(&item.loss) {
                return Err(self.non_finite(epoch, first + k, value));
            }
            processor.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                item,
                iterator.progress(),
                global.clone(),
                Some(iteration),
                Some(learner.lr_current()),
            )));
            if interrupter.should_stop() {
                return Err(TrainError::Interrupted(
                    interrupter
                        .get_message()
                        .unwrap_or_else(|| "stopped".into()),
                ));
            }
        }
        let images = acc.images();
        let metrics = acc.finish();
        let images_per_s = images as f64 / start.elapsed().as_secs_f64();
        processor.process_train(LearnerEvent::EndEpoch(epoch));
        Ok((metrics, images_per_s))
    }

    fn valid_epoch(
        &self,
        model: &SegModel<B::InnerBackend>,
        loader: &ValidLoader<Components<B>>,
        global: &Progress,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
    ) -> EpochMetrics {
        let mut iterator = loader.iter();
        let mut acc = Accumulator::<B::InnerBackend>::new();
        let mut window = Window::<B::InnerBackend>::new(1);
        let mut iteration = 0;
        let mut next = iterator.next();
        while let Some(batch) = next {
            iteration += 1;
            let images = batch.ids.len();
            let output: SegOutput<B::InnerBackend> = InferenceStep::step(model, batch);
            acc.add(output.loss.clone(), output.counts.clone(), images);
            window.add(output.loss, output.counts, images);
            next = iterator.next();
            if window.due(next.is_none()) {
                let item = std::mem::replace(&mut window, Window::new(iteration + 1));
                processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                    item.into_output(),
                    iterator.progress(),
                    global.clone(),
                    Some(iteration),
                    None,
                )));
            }
        }
        processor.process_valid(LearnerEvent::EndEpoch(global.items_processed));
        acc.finish()
    }

    /// The vessel probability of a whole validation image, as `predict` computes it: the sliding
    /// window of crop-sized tiles when training on crops, else the whole image resized.
    fn probability(&self, net: &DeepLab<B::InnerBackend>, sample: &Sample) -> Vec<f32> {
        let tiling = self.config.crop.map_or(Tiling::WHOLE, crop_tiling);
        predict_probability_tiled(
            net,
            sample,
            self.config.imgsz,
            &self.normalization,
            false,
            tiling,
            &self.device,
        )
    }

    /// Validation of crop-trained models: every validation image whole, at native resolution,
    /// through the sliding window of crop-sized tiles (what `predict` does); vessel = blended
    /// probability ≥ 0.5, as `predict`'s default. The loss is the training loss of each tile (the
    /// model's input), averaged over the tiles: the whole-image validation's definition with
    /// tiles for images (see [`crate::history::EpochRow`]).
    fn valid_epoch_tiled(
        &self,
        model: &SegModel<B::InnerBackend>,
        global: &Progress,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
    ) -> EpochMetrics {
        let (mut image, mut fov) = (Confusion::default(), Confusion::default());
        let (mut loss_sum, mut inputs) = (0f64, 0usize);
        let total = self.valid_samples.len();
        let size = [self.config.imgsz, self.config.imgsz];
        let tiling = self.config.crop.map_or(Tiling::WHOLE, crop_tiling);
        for (i, sample) in self.valid_samples.iter().enumerate() {
            let (sum_before, inputs_before) = (loss_sum, inputs);
            let prob = blend_windows(sample, tiling, |window| {
                let warped = warp(
                    window,
                    size,
                    &AugmentParams::identity(),
                    &self.normalization,
                );
                let item = SegItem {
                    id: window.id,
                    image: warped.image,
                    vessels: warped.vessels,
                    fov: warped.fov,
                    size: warped.size,
                };
                let batch: SegBatch<B::InnerBackend> = SegBatcher.batch(vec![item], &self.device);
                let output = model.net.forward(batch.images);
                let loss = segmentation_loss(
                    &model.loss,
                    output.out.clone(),
                    output.aux,
                    &batch.targets,
                    &batch.fov,
                );
                loss_sum += loss.into_scalar().elem::<f64>();
                inputs += 1;
                probability_at(output.out, window.size())
            });
            let truth = sample
                .vessels
                .as_ref()
                .expect("validation images have ground truth");
            let pred: Vec<u8> = prob.iter().map(|&p| u8::from(p >= 0.5)).collect();
            image += Confusion::from_pixels(&pred, truth.as_raw(), None);
            fov += Confusion::from_pixels(&pred, truth.as_raw(), Some(sample.fov.as_raw()));
            // The progress display averages its items' losses: each image gives its tiles' mean.
            let metrics = EpochMetrics {
                loss: (loss_sum - sum_before) / (inputs - inputs_before).max(1) as f64,
                image,
                fov,
            };
            let item = SegOutput::from_metrics(&metrics, i + 1, &self.device);
            processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                item,
                Progress {
                    items_processed: i + 1,
                    items_total: total,
                },
                global.clone(),
                Some(i + 1),
                None,
            )));
        }
        processor.process_valid(LearnerEvent::EndEpoch(global.items_processed));
        EpochMetrics {
            loss: loss_sum / inputs.max(1) as f64,
            image,
            fov,
        }
    }

    /// metrics.csv, plots and the validation overlay of one epoch.
    fn write_reports(
        &self,
        rows: &[EpochRow],
        model: &SegModel<B::InnerBackend>,
        epoch: usize,
    ) -> Result<(), TrainError> {
        let out = &self.config.out;
        history::write_csv(&out.join("metrics.csv"), rows)?;
        if let Err(e) = plots::write_curves(out, rows) {
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

    fn save_checkpoints(
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
        let meta = |kind: &str| {
            CheckpointMeta::for_epoch(
                kind,
                &self.config,
                self.normalization,
                epoch,
                rows,
                *best,
                schedule_iteration,
            )
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
        let mut rows = self.rows.lock().expect("rows lock").clone();
        let mut best = (self.resume.best_vessel_iou, self.resume.best_valid_loss);
        let mut outcome = Outcome {
            best_epoch: self.resume.best_epoch,
            last_epoch: self.start_epoch,
            ..Outcome::default()
        };
        let iters_per_epoch = train_loader.num_items() / self.config.batch_size.max(1);

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
                    outcome.train_images_per_s.push(images_per_s);
                    metrics
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            };
            // The inference model, BatchNorms folded as `predict` runs it.
            let trained = learner.model().valid();
            let model = SegModel {
                net: trained.net.fold_batch_norms(),
                loss: trained.loss,
            };
            let valid = match self.config.crop {
                Some(_) => self.valid_epoch_tiled(&model, &global, &mut processor),
                None => self.valid_epoch(&model, &valid_loader, &global, &mut processor),
            };
            if !valid.loss.is_finite() {
                outcome.error = Some(self.non_finite(epoch, 0, valid.loss));
                break;
            }
            let lr = learner.lr_current();
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
            let result = self
                .save_checkpoints(
                    &learner,
                    &mut tap,
                    &store,
                    epoch,
                    (&rows[n - 2], &rows[n - 1]),
                    &mut best,
                    (epoch * iters_per_epoch) as u64,
                )
                .and_then(|improved| {
                    self.write_reports(&rows, &model, epoch)?;
                    Ok(improved)
                });
            match result {
                Ok(improved) => {
                    if improved {
                        outcome.best_epoch = Some(epoch);
                    }
                }
                Err(e) => {
                    outcome.error = Some(e);
                    break;
                }
            }
            outcome.last_epoch = epoch;
            let line = epoch_line(epoch, num_epochs, &train, &valid);
            RunLog::new(&self.config.out).epoch(&line);
            if interrupter.should_stop() {
                outcome.error = Some(TrainError::Interrupted(
                    interrupter
                        .get_message()
                        .unwrap_or_else(|| "stopped".into()),
                ));
                break;
            }
        }
        if let Some(e) = &outcome.error {
            RunLog::new(&self.config.out).error(&e.to_string());
        }
        outcome.rows = rows;
        outcome.best_vessel_iou = best.0;
        *self.outcome.lock().expect("outcome lock") = outcome;
        (learner.model(), processor)
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
