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
use crate::predict::probability::{blend_windows, predict_probability_tiled, probability_at};
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
    /// tiles for images (see [`crate::metrics::history::EpochRow`]).
    pub(super) fn valid_epoch_tiled(
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
}
