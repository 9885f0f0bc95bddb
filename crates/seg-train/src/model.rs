//! The trainable model: DeepLabV3 plus its loss, wired into burn-train's `TrainStep` /
//! `InferenceStep`. Each step returns the loss and the batch's confusion counts (computed on the
//! device, 8 integers), never the full logits.

use std::sync::Arc;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Transaction;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use burn::train::{InferenceStep, ItemLazy, TrainOutput, TrainStep};
use deeplab::DeepLabV3;
use drive_data::SegBatch;

use crate::loss::{segmentation_loss, LossConfig};
use crate::metrics::Confusion;

/// DeepLabV3 with its training loss.
#[derive(Module, Debug)]
pub struct SegModel<B: Backend> {
    pub net: DeepLabV3<B>,
    #[module(skip)]
    pub loss: LossConfig,
}

/// What one step reports: the loss and the confusion counts
/// `[tp, fp, fn, tn]` over whole images then `[tp, fp, fn, tn]` inside the FOV.
#[derive(Debug, Clone)]
pub struct SegOutput<B: Backend> {
    pub loss: Tensor<B, 1>,
    pub counts: Tensor<B, 1, Int>,
    pub images: usize,
}

/// Confusion counts of a batch, on the device: `[tp, fp, fn, tn]` on whole images, then inside
/// the FOV. The prediction is the arg-max class (vessel = class 1).
pub fn confusion_counts<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    fov: Tensor<B, 3, Bool>,
) -> Tensor<B, 1, Int> {
    let pred = logits.argmax(1).squeeze_dim::<3>(1).equal_elem(1).int();
    let truth = targets.equal_elem(1).int();
    // code = 2·pred + truth ∈ {TN 0, FN 1, FP 2, TP 3}, + 4 outside the FOV.
    let outside = fov.bool_not().int();
    let code = pred.mul_scalar(2) + truth + outside.mul_scalar(4);
    let count = |k: i32| code.clone().equal_elem(k).int().sum();
    let (tn, fn_, fp, tp) = (count(0), count(1), count(2), count(3));
    let (tn_out, fn_out, fp_out, tp_out) = (count(4), count(5), count(6), count(7));
    Tensor::cat(
        vec![
            tp.clone() + tp_out,
            fp.clone() + fp_out,
            fn_.clone() + fn_out,
            tn.clone() + tn_out,
            tp,
            fp,
            fn_,
            tn,
        ],
        0,
    )
}

impl<B: Backend> SegModel<B> {
    /// Forward pass, loss and confusion counts of one batch.
    pub fn forward_loss(&self, batch: SegBatch<B>) -> SegOutput<B> {
        let images = batch.ids.len();
        let out = self.net.forward(batch.images);
        let counts = confusion_counts(out.out.clone(), batch.targets.clone(), batch.fov.clone());
        let loss = segmentation_loss(&self.loss, out.out, out.aux, &batch.targets, &batch.fov);
        SegOutput {
            loss,
            counts,
            images,
        }
    }
}

impl<B: AutodiffBackend> TrainStep for SegModel<B> {
    type Input = SegBatch<B>;
    type Output = SegOutput<B>;

    fn step(&self, batch: SegBatch<B>) -> TrainOutput<SegOutput<B>> {
        let output = self.forward_loss(batch);
        let grads = output.loss.backward();
        TrainOutput::new(self, grads, output)
    }
}

impl<B: Backend> InferenceStep for SegModel<B> {
    type Input = SegBatch<B>;
    type Output = SegOutput<B>;

    fn step(&self, batch: SegBatch<B>) -> SegOutput<B> {
        self.forward_loss(batch)
    }
}

/// A step's output on the host, for burn-train's metrics.
#[derive(Debug, Clone)]
pub struct SegOutputSync {
    pub loss: Tensor<Flex, 1>,
    pub image: Confusion,
    pub fov: Confusion,
}

/// `[tp, fp, fn, tn, tp, fp, fn, tn]` → (image, FOV) matrices.
pub fn split_counts(counts: &[i64]) -> (Confusion, Confusion) {
    let c = |i: usize| counts[i].max(0) as u64;
    (
        Confusion::new(c(0), c(1), c(2), c(3)),
        Confusion::new(c(4), c(5), c(6), c(7)),
    )
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
