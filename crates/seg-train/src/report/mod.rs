//! Pages for people: the evaluation report (`report.html` and its images: [`page`], [`html`])
//! and runs side by side (`retina-seg compare`: [`compare`], [`compare_page`]). Uses
//! [`crate::evaluate`], [`crate::chart`] and [`crate::metrics`]; nothing else in the crate uses
//! it (the command line asks for the end-of-training report).

pub mod compare;
pub mod compare_page;
pub mod html;
pub mod page;

pub use page::{report_dir, write_report};
