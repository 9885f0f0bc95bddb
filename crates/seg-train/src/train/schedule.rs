//! Learning-rate schedules stepped once per iteration (burn-train calls `step` before each batch):
//! constant, MultiStep (×`gamma` at given epochs — the tutorial's 25 and 50, ×0.1), and poly
//! (DeepLab's `(1 − t/T)^0.9`). The record is the iteration count, so resuming continues exactly.

use burn::lr_scheduler::LrScheduler;
use burn::prelude::Backend;
use serde::{Deserialize, Serialize};

/// Which schedule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum ScheduleKind {
    /// The base rate throughout.
    Constant,
    /// Multiply by `gamma` at each of `milestones` (epochs, 0-based: 25 means from the 26th epoch).
    MultiStep {
        /// Epochs at which the rate is multiplied by `gamma`.
        milestones: Vec<usize>,
        /// The factor.
        gamma: f64,
    },
    /// `lr · (1 − t/T)^power` over all iterations.
    Poly {
        /// The exponent (0.9 in DeepLab).
        power: f64,
    },
}

impl ScheduleKind {
    /// The original tutorial's MultiStep: ×0.1 at epochs 25 and 50.
    pub fn tutorial_multistep() -> Self {
        Self::MultiStep {
            milestones: vec![25, 50],
            gamma: 0.1,
        }
    }

    /// DeepLab's poly schedule, power 0.9.
    pub fn poly() -> Self {
        Self::Poly { power: 0.9 }
    }
}

impl std::str::FromStr for ScheduleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "constant" | "none" => Ok(Self::Constant),
            "multistep" => Ok(Self::tutorial_multistep()),
            "poly" => Ok(Self::poly()),
            other => Err(format!(
                "unknown scheduler `{other}` (constant, multistep or poly)"
            )),
        }
    }
}

/// A schedule over a run of `epochs × iters_per_epoch` iterations.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// The schedule's kind.
    pub kind: ScheduleKind,
    /// The base learning rate.
    pub base_lr: f64,
    /// Optimizer steps per epoch.
    pub iters_per_epoch: usize,
    /// Epochs of the run.
    pub epochs: usize,
    /// Iterations stepped so far.
    pub iteration: u64,
}

impl Schedule {
    /// The schedule of a run of `epochs` epochs of `iters_per_epoch` steps.
    pub fn new(kind: ScheduleKind, base_lr: f64, iters_per_epoch: usize, epochs: usize) -> Self {
        Self {
            kind,
            base_lr,
            iters_per_epoch: iters_per_epoch.max(1),
            epochs,
            iteration: 0,
        }
    }

    /// The learning rate of (0-based) iteration `i`.
    pub fn lr_at(&self, i: u64) -> f64 {
        match &self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::MultiStep { milestones, gamma } => {
                let epoch = (i / self.iters_per_epoch as u64) as usize;
                let passed = milestones.iter().filter(|&&m| epoch >= m).count();
                self.base_lr * gamma.powi(passed as i32)
            }
            ScheduleKind::Poly { power } => {
                let total = (self.iters_per_epoch * self.epochs).max(1) as f64;
                self.base_lr * (1.0 - (i as f64 / total).min(1.0)).powf(*power)
            }
        }
    }
}

impl LrScheduler for Schedule {
    type Record<B: Backend> = u64;

    fn step(&mut self) -> f64 {
        let lr = self.lr_at(self.iteration);
        self.iteration += 1;
        lr
    }

    fn to_record<B: Backend>(&self) -> u64 {
        self.iteration
    }

    fn load_record<B: Backend>(mut self, record: u64) -> Self {
        self.iteration = record;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multistep_drops_at_epoch_boundaries() {
        let mut s = Schedule::new(ScheduleKind::tutorial_multistep(), 1e-4, 10, 100);
        let lrs: Vec<f64> = (0..600).map(|_| s.step()).collect();
        assert_eq!(lrs[0], 1e-4);
        assert_eq!(lrs[249], 1e-4); // last iteration of epoch 24
        assert!((lrs[250] - 1e-5).abs() < 1e-18); // first of epoch 25
        assert!((lrs[500] - 1e-6).abs() < 1e-18);
    }

    #[test]
    fn poly_decays_to_zero_and_resumes() {
        let mut s = Schedule::new(ScheduleKind::poly(), 1e-2, 5, 4);
        let lrs: Vec<f64> = (0..20).map(|_| s.step()).collect();
        assert_eq!(lrs[0], 1e-2);
        assert!((lrs[10] - 1e-2 * 0.5f64.powf(0.9)).abs() < 1e-15);
        assert!(lrs.windows(2).all(|w| w[1] < w[0]));
        let resumed = Schedule::new(ScheduleKind::poly(), 1e-2, 5, 4)
            .load_record::<burn::backend::Flex>(10)
            .step();
        assert_eq!(resumed, lrs[10]);
    }
}
