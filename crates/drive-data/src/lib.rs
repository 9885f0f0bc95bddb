#![deny(missing_docs)]
//! # drive-data — retinal vessel datasets for Burn
//!
//! DRIVE (both distributions), STARE, CHASE_DB1, HRF and FIVES in the layouts their downloads
//! unpack to ([`layout`]), with their split schemes and observers ([`layout::scheme`]).
//!
//! Everything between files on disk and a training batch, in one direction:
//! files ([`layout`], [`decode`]) → samples in memory ([`sample`], [`fov`]) → resized/augmented
//! items ([`augment`], [`dataset`], [`normalize`]) → tensors ([`batcher`], with the labels' tubed
//! skeletons from [`skeleton`] when a loss asks for them). Plus a synthetic
//! retina generator ([`synth`], [`write`](mod@write)) for tests and demos.
//!
//! ```
//! use burn::data::dataset::Dataset;
//! use drive_data::{DatasetDir, DriveDataset, Layout, Normalization, Split, SynthConfig, Transform};
//!
//! // A small synthetic set in the original DRIVE layout (tif + gif), then loaded like DRIVE.
//! let dir = tempfile::tempdir()?;
//! let config = SynthConfig { width: 96, height: 100, ..SynthConfig::default() };
//! drive_data::write::write_synthetic(dir.path(), Layout::Drive, 6, 7, &config)?;
//! let data = DatasetDir::open(dir.path())?.with_holdout(1);
//! let train = data.load(Split::Train)?;
//! assert_eq!(train.len(), 2);
//! let dataset = DriveDataset::new(train, Transform::train(64, Normalization::DRIVE), 42);
//! let item = dataset.get(0).unwrap();
//! assert_eq!(item.image.len(), 3 * 64 * 64);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod augment;
pub mod batcher;
pub mod dataset;
pub mod decode;
pub mod error;
pub mod fov;
pub mod layout;
pub mod normalize;
pub mod rng;
pub mod sample;
pub mod skeleton;
pub mod synth;
pub mod write;

pub use augment::{AugmentConfig, AugmentParams};
pub use batcher::{SegBatch, SegBatcher};
pub use dataset::{DriveDataset, SegItem, Transform};
pub use error::DataError;
pub use layout::{DatasetDir, Entry, Layout, Observer, Split, SplitScheme};
pub use normalize::{Normalization, NormalizationPreset};
pub use sample::Sample;
pub use synth::{SynthConfig, SynthRetina};
