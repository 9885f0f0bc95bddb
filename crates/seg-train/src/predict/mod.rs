//! Prediction: vessel probability maps of whole images or by sliding windows
//! ([`probability`]), a model ready to predict ([`Predictor`]), what `predict` reads
//! ([`inputs`]) and writes ([`outputs`], [`overlay`]), and runs over many images split into
//! shards ([`run`], [`shard`]). Uses [`crate::model`]; evaluation and training build on it, and
//! the command line runs it on the device [`crate::device`] picks.

pub mod inputs;
pub mod outputs;
pub mod overlay;
pub mod predictor;
pub mod probability;
pub mod run;
pub mod shard;

pub use inputs::{list_inputs, read_input};
pub use outputs::{
    output_paths, output_paths_for, prediction_images, write_prediction, PredictionFiles,
    PredictionImages,
};
pub use predictor::{
    check_imgsz, predict_file, predict_files, predict_sample, PredictOptions, PredictReport,
    Predictor,
};
