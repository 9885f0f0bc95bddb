//! What burn-train shows while training: the host-side copy of a step's outputs, its adaptors to
//! the loss metric, and the vessel IoU metric (exact over the epoch).

use std::sync::Arc;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Transaction;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::ItemLazy;

use crate::metrics::{split_counts, Confusion};
use crate::model::SegOutput;

/// A step's output on the host, for burn-train's metrics.
#[derive(Debug, Clone)]
pub struct SegOutputSync {
    /// The step's loss.
    pub loss: Tensor<Flex, 1>,
    /// The step's counts on whole images.
    pub image: Confusion,
    /// The step's counts inside the FOV.
    pub fov: Confusion,
}

impl<B: Backend> ItemLazy for SegOutput<B> {
    type ItemSync = SegOutputSync;

    fn sync(self) -> SegOutputSync {
        let [loss, counts]: [TensorData; 2] = Transaction::default()
            .register(self.loss)
            .register(self.counts)
            .execute()
            .try_into()
            .expect("two tensors registered");
        let counts: Vec<i64> = counts.iter::<i64>().collect();
        let (image, fov) = split_counts(&counts);
        SegOutputSync {
            loss: Tensor::from_data(loss.convert::<f32>(), &Default::default()),
            image,
            fov,
        }
    }
}

impl Adaptor<LossInput<Flex>> for SegOutputSync {
    fn adapt(&self) -> LossInput<Flex> {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<Confusion> for SegOutputSync {
    fn adapt(&self) -> Confusion {
        self.fov
    }
}

/// Vessel IoU inside the FOV for burn-train's display, exact over the epoch: each batch is logged
/// as `TP / (TP + FP + FN)` with weight `TP + FP + FN`, so the weighted mean is `ΣTP / Σ(TP+FP+FN)`.
#[derive(Clone)]
pub struct VesselIouMetric {
    name: MetricName,
    state: NumericMetricState,
}

impl Default for VesselIouMetric {
    fn default() -> Self {
        Self {
            name: Arc::new("Vessel IoU (FOV)".to_string()),
            state: NumericMetricState::default(),
        }
    }
}

impl Metric for VesselIouMetric {
    type Input = Confusion;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn update(&mut self, c: &Confusion, _metadata: &MetricMetadata) -> SerializedEntry {
        let union = c.tp + c.fp + c.fn_;
        let iou = c.vessel_iou().unwrap_or(0.0);
        self.state.update(
            100.0 * iou,
            union.max(1) as usize,
            FormatOptions::new(self.name()).unit("%").precision(2),
        )
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".into()),
            higher_is_better: true,
        }
        .into()
    }
}

impl Numeric for VesselIouMetric {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_value()
    }
}
