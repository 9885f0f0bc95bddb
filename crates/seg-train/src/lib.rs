//! # seg-train — training, prediction and evaluation of retinal vessel segmentation
//!
//! DeepLabV3 and DeepLabV3+ (from the `deeplab` crate) trained on DRIVE-like data (from
//! `drive-data`), on whichever backend the machine has. The crate is in parts, each a folder;
//! imports run one way, from the top of this list to the bottom:
//!
//! | part | what it does |
//! |---|---|
//! | [`report`] | the evaluation report (`report.html`) and runs side by side (`compare`) |
//! | [`train`](mod@train) | settings and presets, the epoch loop on burn-train's `Learner`, PyTorch's Adam, schedules, progress, `train.log` |
//! | [`chart`] | line charts as PNG: training curves, ROC / precision–recall / F1 curves |
//! | [`evaluate`] | DRIVE-protocol evaluation: exact ROC from per-level counts, thin vs thick vessels, JSON/CSV |
//! | [`predict`] | probability maps (whole image or sliding window), prediction files, sharded runs |
//! | [`model`] | the network with its loss, checkpoints, the recorded sliding window |
//! | [`device`] | the backend chosen at run time (CUDA, wgpu, CPU) |
//! | [`metrics`] | confusion matrices and the metrics derived from them, `metrics.csv` rows |
//! | [`error`] | [`TrainError`] |
//!
//! Training does not use [`report`]: the command line asks for the end-of-training report.
//!
//! ```
//! use seg_train::{Preset, TrainConfig};
//!
//! // The `quick` recipe, as `retina-seg train --preset quick` runs it, with a shorter run.
//! let mut config = TrainConfig::from_preset(Preset::Quick);
//! config.epochs = 2;
//! config.validate()?;
//! assert_eq!((config.crop, config.batch_size), (Some(64), 6));
//! // `seg_train::train(config, data)` then trains on decoded samples (see `TrainData`).
//! # Ok::<(), seg_train::TrainError>(())
//! ```
#![deny(missing_docs)]

pub mod chart;
pub mod device;
pub mod error;
pub mod evaluate;
pub mod metrics;
pub mod model;
pub mod predict;
pub mod report;
pub mod train;

pub use device::DeviceChoice;
pub use error::TrainError;
pub use predict::Predictor;
pub use train::{train, Preset, TrainConfig, TrainData, TrainSummary};
