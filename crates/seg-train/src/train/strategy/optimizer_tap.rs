//! The optimizer state out of burn-train's `Learner`: the `Learner` keeps its optimizer private
//! and its checkpointer is the only way to it, so a checkpointer that hands the records over.

use std::sync::{mpsc, Mutex};

use burn::prelude::*;
use burn::record::Record;
use burn::tensor::backend::AutodiffBackend;
use burn::train::checkpoint::{
    AsyncCheckpointer, Checkpointer, CheckpointerError, CheckpointingAction, CheckpointingStrategy,
};
use burn::train::metric::store::EventStoreClient;
use burn::train::{Learner, LearnerOptimizerRecord, LearningCheckpointer};

use super::Components;
use crate::error::TrainError;
use crate::model::SegModel;

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
pub(super) struct OptimizerTap<B: AutodiffBackend> {
    checkpointer: LearningCheckpointer<Components<B>>,
    optim: mpsc::Receiver<LearnerOptimizerRecord<Components<B>>>,
    model: mpsc::Receiver<<SegModel<B> as burn::module::Module<B>>::Record>,
    scheduler: mpsc::Receiver<u64>,
}

impl<B: AutodiffBackend> OptimizerTap<B> {
    pub(super) fn new() -> Self {
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

    pub(super) fn take(
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
