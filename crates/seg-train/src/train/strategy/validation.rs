//! One validation epoch, on the BatchNorm-folded inference model: whole images through the loader,
//! or, for crop-trained models, every image whole through the sliding window as `predict` runs it.

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::Progress;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    EventProcessorTraining, InferenceStep, LearnerEvent, SupervisedTrainingEventProcessor,
    TrainingItem, ValidLoader,
};
use deeplab::DeepLab;
use drive_data::augment::{warp, AugmentParams};
use drive_data::{Sample, SegBatch, SegBatcher, SegItem};

use super::step_window::Window;
use super::{Components, DriveStrategy};
use crate::metrics::{Confusion, EpochMetrics};
use crate::model::loss::segmentation_loss;
use crate::model::{crop_tiling, SegModel, SegOutput, Tiling};
use crate::predict::blend::{crop, windows_of, Blend};
use crate::predict::probability::{default_batch, predict_probabilities, probability_at};
use crate::train::accumulator::Accumulator;

impl<B: AutodiffBackend> DriveStrategy<B> {
    pub(super) fn valid_epoch(
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
    pub(super) fn probability(&self, net: &DeepLab<B::InnerBackend>, sample: &Sample) -> Vec<f32> {
        let tiling = self.config.crop.map_or(Tiling::WHOLE, crop_tiling);
        let imgsz = self.config.imgsz;
        let batch = default_batch::<B::InnerBackend>(imgsz);
        let (norm, device) = (&self.normalization, &self.device);
        let mut probs =
            predict_probabilities(net, &[sample], imgsz, norm, false, tiling, batch, device);
        probs.pop().expect("one probability per sample")
    }

    /// Validation of crop-trained models: every validation image whole, at native resolution,
    /// through the sliding window of crop-sized tiles (what `predict` does); vessel = blended
    /// probability ≥ 0.5, as `predict`'s default. The tiles of all images go through the model
    /// [`default_batch`] at a time, as `predict` runs them. The loss is the training loss of each
    /// tile (the model's input), averaged over the tiles: the whole-image validation's definition
    /// with tiles for images (see [`crate::metrics::history::EpochRow`]). Also returns the
    /// blended probability of the first validation image, which the epoch's overlay shows.
    pub(super) fn valid_epoch_tiled(
        &self,
        model: &SegModel<B::InnerBackend>,
        global: &Progress,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
    ) -> (EpochMetrics, Option<Vec<f32>>) {
        let (mut image, mut fov) = (Confusion::default(), Confusion::default());
        let (mut loss_sum, mut inputs) = (0f64, 0usize);
        let total = self.valid_samples.len();
        let size = [self.config.imgsz, self.config.imgsz];
        let tiling = self.config.crop.map_or(Tiling::WHOLE, crop_tiling);
        let batch = default_batch::<B::InnerBackend>(self.config.imgsz);
        let mut blends: Vec<Option<Blend>> = self
            .valid_samples
            .iter()
            .map(|s| Some(Blend::new(s.size(), tiling)))
            .collect();
        let windows = windows_of(&self.valid_samples, tiling);
        let mut left: Vec<usize> = vec![0; total];
        windows.iter().for_each(|&(i, _)| left[i] += 1);
        // Per image: its tiles' loss sum and count, for the progress display.
        let mut image_loss = vec![(0f64, 0usize); total];
        let mut done = 0;
        let mut first = None;
        for chunk in windows.chunks(batch) {
            let parts: Vec<Sample> = chunk
                .iter()
                .map(|&(i, w)| crop(&self.valid_samples[i], w))
                .collect();
            let items = parts
                .iter()
                .map(|part| {
                    let warped = warp(part, size, &AugmentParams::identity(), &self.normalization);
                    SegItem {
                        id: part.id,
                        image: warped.image,
                        vessels: warped.vessels,
                        fov: warped.fov,
                        size: warped.size,
                    }
                })
                .collect();
            let batcher = if model.loss.needs_skeletons() {
                SegBatcher::with_skeletons()
            } else {
                SegBatcher::default()
            };
            let batch: SegBatch<B::InnerBackend> = batcher.batch(items, &self.device);
            let output = model.net.forward(batch.images);
            for (k, (&(i, window), part)) in chunk.iter().zip(&parts).enumerate() {
                let one = |t: Tensor<B::InnerBackend, 4>| t.narrow(0, k, 1);
                let loss = segmentation_loss(
                    &model.loss,
                    one(output.out.clone()),
                    output.aux.clone().map(one),
                    &batch.targets.clone().narrow(0, k, 1),
                    &batch.fov.clone().narrow(0, k, 1),
                    batch
                        .skeletons
                        .as_ref()
                        .map(|s| s.clone().narrow(0, k, 1))
                        .as_ref(),
                );
                let loss = loss.into_scalar().elem::<f64>();
                loss_sum += loss;
                inputs += 1;
                image_loss[i].0 += loss;
                image_loss[i].1 += 1;
                let prob = probability_at(one(output.out.clone()), part.size());
                let blend = blends[i].as_mut().expect("image not finished");
                blend.add(window, &prob);
                left[i] -= 1;
                if left[i] > 0 {
                    continue;
                }
                let prob = blends[i].take().expect("image not finished").finish();
                let sample = &self.valid_samples[i];
                let truth = sample
                    .vessels
                    .as_ref()
                    .expect("validation images have ground truth");
                let pred: Vec<u8> = prob.iter().map(|&p| u8::from(p >= 0.5)).collect();
                image += Confusion::from_pixels(&pred, truth.as_raw(), None);
                fov += Confusion::from_pixels(&pred, truth.as_raw(), Some(sample.fov.as_raw()));
                if i == 0 {
                    first = Some(prob);
                }
                done += 1;
                // The progress display averages its items' losses: each image gives its tiles'
                // mean.
                let metrics = EpochMetrics {
                    loss: image_loss[i].0 / image_loss[i].1.max(1) as f64,
                    image,
                    fov,
                };
                let item = SegOutput::from_metrics(&metrics, done, &self.device);
                processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                    item,
                    Progress {
                        items_processed: done,
                        items_total: total,
                    },
                    global.clone(),
                    Some(done),
                    None,
                )));
            }
        }
        processor.process_valid(LearnerEvent::EndEpoch(global.items_processed));
        let metrics = EpochMetrics {
            loss: loss_sum / inputs.max(1) as f64,
            image,
            fov,
        };
        (metrics, first)
    }
}
