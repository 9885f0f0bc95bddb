//! Charts as PNG files: one line-chart type that draws every axis ([`LineChart`]) and its
//! callers — training curves over epochs ([`epochs`]) and ROC, precision–recall and
//! F1-vs-threshold curves of evaluations ([`curves`]). Uses [`crate::metrics`] and
//! [`crate::evaluate`]'s per-level counts; training and the reports draw with it.

pub mod curves;
pub mod epochs;
pub mod line_chart;

pub use line_chart::{padded_range, Corner, Line, LineChart, PALETTE};
