//! Prediction: vessel probability maps of whole images or by sliding windows, many inputs per
//! forward pass ([`probability`], windows blended by [`blend`]), a model ready to predict ([`Predictor`]), what `predict` reads
//! ([`inputs`], with FOV masks matched by [`fov_masks`]) and writes ([`outputs`], [`overlay`]), and runs over many images split into
//! shards ([`run`], [`shard`]) with their manifests ([`manifest`]). Uses [`crate::model`]; evaluation and training build on it, and
//! the command line runs it on the device [`crate::device`] picks.

pub mod blend;
pub mod fov_masks;
pub mod inputs;
pub mod manifest;
pub mod outputs;
pub mod overlay;
pub mod predictor;
pub mod probability;
pub mod run;
pub mod shard;

pub use inputs::{list_inputs, read_input};
pub use outputs::{
    output_paths, output_paths_for, prediction_images, write_prediction, PredictionFiles,
    PredictionImages, ProbDepth, ProbabilityMap,
};
pub use predictor::{
    check_imgsz, predict_file, predict_files, predict_sample, predict_sample_keeping,
    PredictOptions, PredictReport, Predictor,
};
