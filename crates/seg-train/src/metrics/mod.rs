//! The shared vocabulary of scores: confusion matrices and the metrics derived from them
//! ([`confusion`]) and an epoch's row of `metrics.csv` ([`history`]). Training, evaluation and the
//! reports all count with these; this part uses nothing else of the crate but its error type.

pub mod confusion;
pub mod history;

#[cfg(test)]
pub(crate) use confusion::tests;
pub use confusion::{split_counts, Confusion, EpochMetrics, MetricSummary};
