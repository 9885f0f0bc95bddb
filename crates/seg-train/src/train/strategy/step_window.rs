//! The training and validation steps since the last progress report.

use std::time::{Duration, Instant};

use burn::prelude::*;

use crate::model::SegOutput;

/// The steps since the last progress report, kept on the device: the progress display and the
/// non-finite check read them together every [`Window::STEPS`] steps or [`Window::EVERY`], never
/// once per step, so the host does not wait for the device at each step.
pub(super) struct Window<B: Backend> {
    losses: Vec<Tensor<B, 1>>,
    counts: Option<Tensor<B, 1, Int>>,
    images: usize,
    pub(super) first_iteration: usize,
    since: Instant,
}

impl<B: Backend> Window<B> {
    const STEPS: usize = 25;
    const EVERY: Duration = Duration::from_secs(2);

    pub(super) fn new(first_iteration: usize) -> Self {
        Self {
            losses: Vec::new(),
            counts: None,
            images: 0,
            first_iteration,
            since: Instant::now(),
        }
    }

    pub(super) fn add(&mut self, loss: Tensor<B, 1>, counts: Tensor<B, 1, Int>, images: usize) {
        self.losses.push(loss);
        self.counts = Some(match self.counts.take() {
            Some(sum) => sum + counts,
            None => counts,
        });
        self.images += images;
    }

    pub(super) fn due(&self, last: bool) -> bool {
        !self.losses.is_empty()
            && (last || self.losses.len() >= Self::STEPS || self.since.elapsed() >= Self::EVERY)
    }

    /// The window as one item for burn-train's metrics: the step losses `[k]` (the loss metric
    /// weights by their number) and the summed counts.
    pub(super) fn into_output(self) -> SegOutput<B> {
        SegOutput {
            loss: Tensor::cat(self.losses, 0),
            counts: self.counts.expect("a window holds at least one step"),
            images: self.images,
        }
    }
}

/// The first non-finite value of `losses` (read from the device) and its position.
pub(super) fn first_non_finite<B: Backend>(losses: &Tensor<B, 1>) -> Option<(usize, f64)> {
    let values: Vec<f64> = losses.clone().into_data().convert::<f64>().to_vec().ok()?;
    values.into_iter().enumerate().find(|(_, v)| !v.is_finite())
}
