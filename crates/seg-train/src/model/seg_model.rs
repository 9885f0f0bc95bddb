//! The trainable model: DeepLabV3 plus its loss, wired into burn-train's `TrainStep` /
//! `InferenceStep`. Each step returns the loss and the batch's confusion counts (computed on the
//! device, 8 integers), never the full logits.

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use deeplab::DeepLab;
use drive_data::SegBatch;

use crate::metrics::EpochMetrics;
use crate::model::loss::{segmentation_loss, LossConfig};

/// The network (DeepLabV3 or DeepLabV3+) with its training loss.
#[derive(Module, Debug)]
pub struct SegModel<B: Backend> {
    /// DeepLabV3 or DeepLabV3+.
    pub net: DeepLab<B>,
    /// The training loss (not part of the weights).
    #[module(skip)]
    pub loss: LossConfig,
}

/// What one step reports: the loss and the confusion counts
/// `[tp, fp, fn, tn]` over whole images then `[tp, fp, fn, tn]` inside the FOV.
#[derive(Debug, Clone)]
pub struct SegOutput<B: Backend> {
    /// The batch's mean loss.
    pub loss: Tensor<B, 1>,
    /// `[tp, fp, fn, tn]` on whole images, then inside the FOV.
    pub counts: Tensor<B, 1, Int>,
    /// Inputs in the batch.
    pub images: usize,
}

/// Confusion counts of a batch, on the device: `[tp, fp, fn, tn]` on whole images, then inside
/// the FOV. The prediction is the arg-max class (vessel = class 1). One reduction: each pixel gets
/// a code in `0..8` (TN 0, FN 1, FP 2, TP 3, plus 4 outside the FOV), counted with a one-hot sum.
pub fn confusion_counts<B: Backend>(
    logits: Tensor<B, 4>,
    targets: Tensor<B, 3, Int>,
    fov: Tensor<B, 3, Bool>,
) -> Tensor<B, 1, Int> {
    let pred = logits.argmax(1).squeeze_dim::<3>(1).equal_elem(1).int();
    let truth = targets.equal_elem(1).int();
    let outside = fov.bool_not().int();
    let code = pred.mul_scalar(2) + truth + outside.mul_scalar(4);
    let pixels = code.dims().iter().product::<usize>();
    let per_code: Tensor<B, 1, Int> = code
        .reshape([pixels])
        .one_hot::<2>(8)
        .sum_dim(0)
        .reshape([8]);
    let device = per_code.device();
    // [TP, FP, FN, TN] inside the FOV are codes [3, 2, 1, 0]; the whole image adds codes + 4.
    let order = Tensor::<B, 1, Int>::from_data(TensorData::from([3i64, 2, 1, 0]), &device);
    let inside = per_code.clone().narrow(0, 0, 4).select(0, order.clone());
    let outside = per_code.narrow(0, 4, 4).select(0, order);
    Tensor::cat(vec![inside.clone() + outside, inside], 0)
}

impl<B: Backend> SegOutput<B> {
    /// An output carrying host-side epoch figures (for the progress display), on `device`.
    pub fn from_metrics(metrics: &EpochMetrics, images: usize, device: &B::Device) -> Self {
        let c = |m: &crate::metrics::Confusion| [m.tp, m.fp, m.fn_, m.tn].map(|v| v as i64);
        let counts: Vec<i64> = c(&metrics.image)
            .into_iter()
            .chain(c(&metrics.fov))
            .collect();
        Self {
            loss: Tensor::from_data(TensorData::new(vec![metrics.loss], [1]), device),
            counts: Tensor::from_data(TensorData::new(counts, [8]), device),
            images,
        }
    }
}

impl<B: Backend> SegModel<B> {
    /// Forward pass, loss and confusion counts of one batch.
    pub fn forward_loss(&self, batch: SegBatch<B>) -> SegOutput<B> {
        let images = batch.ids.len();
        let out = self.net.forward(batch.images);
        let counts = confusion_counts(out.out.clone(), batch.targets.clone(), batch.fov.clone());
        let loss = segmentation_loss(
            &self.loss,
            out.out,
            out.aux,
            &batch.targets,
            &batch.fov,
            batch.skeletons.as_ref(),
        );
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

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    /// Six pixels covering every case, by hand: (pred, truth, inside FOV).
    #[test]
    fn confusion_counts_by_hand() {
        let device = Default::default();
        // Class-1 logit minus class-0 logit decides: pred = [1, 1, 0, 0, 1, 0].
        let logits = Tensor::<Flex, 4>::from_data(
            TensorData::new(
                vec![
                    0.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 2.0, -1.0, -3.0, 5.0, -0.5,
                ],
                [1, 2, 1, 6],
            ),
            &device,
        );
        let targets = Tensor::<Flex, 3, Int>::from_data(
            TensorData::new(vec![1i64, 0, 1, 0, 1, 1], [1, 1, 6]),
            &device,
        );
        let fov = Tensor::<Flex, 3, Bool>::from_data(
            TensorData::new(vec![true, true, true, true, false, false], [1, 1, 6]),
            &device,
        );
        let counts: Vec<i64> = confusion_counts(logits, targets, fov)
            .into_data()
            .convert::<i64>()
            .to_vec()
            .unwrap();
        // Inside: TP (p0), FP (p1), FN (p2), TN (p3); outside: TP (p4), FN (p5).
        assert_eq!(counts, [2, 1, 2, 1, 1, 1, 1, 1]);
    }
}
