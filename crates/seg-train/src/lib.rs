//! # seg-train — training and evaluation of DeepLabV3 retinal vessel segmentation
//!
//! Settings and presets live in [`config`]; [`train::train`] runs burn-train's `Learner` with this
//! project's epoch loop ([`strategy`]): the model and loss ([`model`], [`loss`]), PyTorch's Adam
//! ([`optim`]), exact epoch metrics on whole images and inside the FOV ([`metrics`]), what the
//! progress display shows ([`progress`]), `metrics.csv` ([`history`]), curves ([`plots`]) and
//! overlays ([`overlay`]), atomic checkpoints ([`checkpoint`]) and `--resume`. Inference: vessel
//! probability maps, whole-image or sliding-window ([`probability`]), prediction files
//! ([`predict`]) and DRIVE-protocol evaluation ([`evaluate`]): exact ROC and precision–recall
//! curves from per-level counts ([`roc`]), thin vs thick vessels ([`vessel_width`]), the JSON and
//! CSV files ([`evaluation_files`]), the HTML report ([`report`]) and runs side by side
//! ([`compare`], [`compare_page`]); line charts in [`chart`]. [`device`] picks the backend at run
//! time.

pub mod accumulator;
pub mod chart;
pub mod checkpoint;
pub mod compare;
pub mod compare_page;
pub mod config;
pub mod curve_plots;
pub mod device;
pub mod device_choice;
pub mod error;
pub mod evaluate;
pub mod evaluation_files;
pub mod history;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod overlay;
pub mod plots;
pub mod predict;
pub mod predict_inputs;
pub mod predict_run;
pub mod probability;
pub mod progress;
pub mod renderer;
pub mod report;
pub mod report_html;
pub mod roc;
pub mod run_log;
pub mod schedule;
pub mod shard;
pub mod strategy;
pub mod summary;
pub mod train;
pub mod vessel_width;

pub use config::{Preset, TrainConfig};
pub use device::DeviceChoice;
pub use error::TrainError;
pub use summary::TrainSummary;
pub use train::{train, TrainData};
