//! DRIVE-protocol evaluation of predictions against ground truth ([`evaluation`]): per image and
//! over the split, inside the FOV and on the whole image, with exact ROC and precision–recall
//! curves from per-level counts ([`roc`]), thin vs thick vessels ([`vessel_width`]) and the JSON,
//! CSV and text tables of a split's evaluation ([`files`]). Uses [`crate::metrics`] and
//! [`crate::predict`] (it reads what `predict` writes); the reports and training build on it.

pub mod evaluation;
pub mod files;
pub mod roc;
pub mod vessel_width;

pub use evaluation::{
    evaluate, evaluate_folders, evaluate_samples, prediction_files, prediction_files_in,
    threshold_from, EvaluationReport, ImageReport, Scores,
};
