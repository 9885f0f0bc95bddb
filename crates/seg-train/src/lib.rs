//! # seg-train — training and evaluation of DeepLabV3 retinal vessel segmentation
//!
//! [`train::train`] runs burn-train's `Learner` with this project's epoch loop
//! ([`strategy`]): exact epoch metrics on whole images and inside the FOV ([`metrics`]),
//! `metrics.csv` ([`history`]), plots and overlays ([`plots`]), atomic checkpoints
//! ([`checkpoint`]) and `--resume`. [`device`] picks CUDA or the CPU at run time.

pub mod checkpoint;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod history;
pub mod infer;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plots;
pub mod predict;
pub mod renderer;
pub mod schedule;
pub mod strategy;
pub mod train;

pub use device::DeviceChoice;
pub use error::TrainError;
pub use train::{train, TrainConfig, TrainData, TrainSummary};
