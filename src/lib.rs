//! The `retina-seg` command line (also used by the examples): see [`cli::main`].

mod check_cmd;
mod choices;
pub mod cli;
mod compare_cmd;
mod console;
mod data_cmd;
mod dataset_args;
mod evaluate_cmd;
mod export_cmd;
mod model_args;
mod predict_cmd;
mod ranges;
mod split_export;
mod train_cmd;

/// The README's Rust examples (using `deeplab`, `drive-data` and `seg-train`), compiled as doc
/// tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
