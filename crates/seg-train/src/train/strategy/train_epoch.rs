//! One training epoch: burn-train's steps, this project's exact metrics, the non-finite-loss
//! guard and the progress display.

use std::time::Instant;

use burn::data::dataloader::Progress;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{
    EventProcessorTraining, Interrupter, Learner, LearnerEvent, SupervisedTrainingEventProcessor,
    TrainLoader, TrainingItem,
};

use super::step_window::{first_non_finite, Window};
use super::{Components, DriveStrategy};
use crate::error::TrainError;
use crate::metrics::EpochMetrics;
use crate::train::accumulator::Accumulator;

impl<B: AutodiffBackend> DriveStrategy<B> {
    /// One training epoch; returns its metrics and the images per second of the training steps
    /// (data loading, forward, backward, optimizer and metrics included).
    pub(super) fn train_epoch(
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
}
