//! DRIVE-protocol evaluation of predictions against ground truth ([`evaluation`]): per image and
//! over the split, inside the FOV and on the whole image, of 8- or 16-bit probability maps,
//! binary masks or float probabilities ([`prediction_map`]), with ROC and precision–recall
//! curves from per-level counts and AUCs from the float values or the levels ([`roc`]), thin vs thick vessels ([`vessel_width`]), clDice, skeleton recall and Betti errors
//! ([`topology`]) and the JSON,
//! CSV and text tables of a split's evaluation ([`files`]). Uses [`crate::metrics`] and
//! [`crate::predict`] (it reads what `predict` writes); the reports and training build on it.

pub mod evaluation;
pub mod files;
pub mod prediction_map;
pub mod roc;
pub mod topology;
pub mod vessel_width;

pub use evaluation::{
    evaluate, evaluate_folders, evaluate_samples, prediction_files, prediction_files_in,
    threshold_from, EvaluationReport, ImageReport, Resolution, Scores,
};
pub use prediction_map::PredictionMap;
