//! An epoch's sums on the device: the loss weighted by each step's inputs and the confusion
//! counts, read from the device once at the end of the epoch. The epoch's metrics are those of the
//! summed confusion matrix (not a mean of per-step metrics).

use burn::prelude::*;
use burn::tensor::Transaction;

use crate::metrics::{split_counts, EpochMetrics};

/// Device-side sums over an epoch.
pub struct Accumulator<B: Backend> {
    loss: Option<Tensor<B, 1>>,
    counts: Option<Tensor<B, 1, Int>>,
    images: usize,
}

impl<B: Backend> Accumulator<B> {
    /// Nothing summed yet.
    pub fn new() -> Self {
        Self {
            loss: None,
            counts: None,
            images: 0,
        }
    }

    /// Adds one step: its mean loss over `images` inputs and its confusion counts.
    pub fn add(&mut self, loss: Tensor<B, 1>, counts: Tensor<B, 1, Int>, images: usize) {
        let weighted = loss.mul_scalar(images as f64);
        self.loss = Some(match self.loss.take() {
            Some(sum) => sum + weighted,
            None => weighted,
        });
        self.counts = Some(match self.counts.take() {
            Some(sum) => sum + counts,
            None => counts,
        });
        self.images += images;
    }

    /// Inputs summed so far.
    pub fn images(&self) -> usize {
        self.images
    }

    /// Reads the sums (one host read for both).
    pub fn finish(self) -> EpochMetrics {
        let (Some(loss), Some(counts)) = (self.loss, self.counts) else {
            return EpochMetrics::default();
        };
        let [loss, counts]: [TensorData; 2] = Transaction::default()
            .register(loss)
            .register(counts)
            .execute()
            .try_into()
            .expect("two tensors registered");
        let loss = loss
            .convert::<f64>()
            .to_vec::<f64>()
            .map_or(f64::NAN, |v| v[0]);
        let counts: Vec<i64> = counts
            .convert::<i64>()
            .to_vec()
            .unwrap_or_else(|_| vec![0; 8]);
        let (image, fov) = split_counts(&counts);
        EpochMetrics {
            loss: loss / self.images.max(1) as f64,
            image,
            fov,
        }
    }
}

impl<B: Backend> Default for Accumulator<B> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    fn counts(values: [i64; 8]) -> Tensor<Flex, 1, Int> {
        Tensor::from_data(TensorData::new(values.to_vec(), [8]), &Default::default())
    }

    fn loss(value: f32) -> Tensor<Flex, 1> {
        Tensor::from_data(TensorData::new(vec![value], [1]), &Default::default())
    }

    /// Two steps: A with vessel IoU 1 (TP 1) over 2 inputs, B with IoU 0.25 (TP 1, FP 3) over 1.
    /// The epoch's IoU is that of the summed counts, 2 / 5, not the mean 0.625 of the steps'; the
    /// loss is the mean per input, (2·0.3 + 1·0.9) / 3.
    #[test]
    fn epoch_iou_comes_from_summed_counts() {
        let mut acc = Accumulator::<Flex>::new();
        // Whole image [tp, fp, fn, tn], then inside the FOV.
        acc.add(loss(0.3), counts([1, 0, 0, 10, 1, 0, 0, 8]), 2);
        acc.add(loss(0.9), counts([1, 3, 0, 10, 1, 3, 0, 6]), 1);
        let epoch = acc.finish();
        for (region, c) in [("image", epoch.image), ("fov", epoch.fov)] {
            let iou = c.vessel_iou().unwrap();
            assert!((iou - 2.0 / 5.0).abs() < 1e-12, "{region}: {iou}");
        }
        assert_eq!((epoch.image.tn, epoch.fov.tn), (20, 14));
        assert!((epoch.loss - 1.5 / 3.0).abs() < 1e-6, "{}", epoch.loss);
        let empty = Accumulator::<Flex>::new().finish();
        assert_eq!(empty, EpochMetrics::default());
    }
}
