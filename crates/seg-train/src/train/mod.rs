//! Training: settings and presets ([`config`]), the entry point [`train()`](run::train) with
//! burn-train's `Learner` driven by this project's epoch loop ([`strategy`]), PyTorch's Adam
//! ([`optim`]), learning-rate schedules ([`schedule`]), the epoch's sums on the device
//! ([`accumulator`]), the progress display ([`progress`], [`renderer`]), `train.log`
//! ([`run_log`]) and the run's outcome ([`summary`]). Uses [`crate::model`], [`crate::predict`]
//! (validation by sliding windows), [`crate::metrics`], [`crate::chart`] (the training curves)
//! and [`crate::device`]; never the report pages.

pub mod accumulator;
pub mod config;
pub mod optim;
pub mod progress;
pub mod renderer;
pub mod run;
pub mod run_log;
pub mod schedule;
pub mod strategy;
pub mod summary;

pub use config::{Preset, TrainConfig, Weights};
pub use run::{train, TrainData};
pub use summary::TrainSummary;
