//! Plain progress lines for non-terminal output (CI, `nohup`, log files): at most one line every
//! few seconds per split, plus one at the end of each pass, sent to the `log` facade with the
//! target [`crate::train::run_log::PROGRESS_TARGET`]. In a terminal burn-train's TUI is used.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Line-oriented renderer.
pub struct PlainRenderer {
    names: HashMap<MetricId, String>,
    /// Latest formatted value per metric, in the order the metrics first reported.
    train: Vec<(MetricId, String)>,
    valid: Vec<(MetricId, String)>,
    last: Option<Instant>,
    every: Duration,
}

impl PlainRenderer {
    /// Prints a progress line at most every `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            names: HashMap::new(),
            train: Vec::new(),
            valid: Vec::new(),
            last: None,
            every,
        }
    }

    fn record(values: &mut Vec<(MetricId, String)>, state: MetricState) {
        let entry = match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => e,
        };
        let value = entry.serialized_entry.formatted;
        match values.iter_mut().find(|(id, _)| *id == entry.metric_id) {
            Some((_, slot)) => *slot = value,
            None => values.push((entry.metric_id, value)),
        }
    }

    fn render(&mut self, split: &str, item: TrainingProgress) {
        let Some(progress) = item.progress else {
            return;
        };
        let done = progress.items_processed >= progress.items_total;
        let due = self.last.is_none_or(|t| t.elapsed() >= self.every);
        if !(done || due) {
            return;
        }
        self.last = Some(Instant::now());
        let metrics = if split == "train" {
            &self.train
        } else {
            &self.valid
        };
        let values: Vec<String> = metrics
            .iter()
            .map(|(id, value)| match self.names.get(id) {
                Some(name) => format!("{name}: {value}"),
                None => value.clone(),
            })
            .collect();
        log::info!(
            target: crate::train::run_log::PROGRESS_TARGET,
            "epoch {}/{} {split} [{}/{}] {}",
            item.global_progress.items_processed,
            item.global_progress.items_total,
            progress.items_processed,
            progress.items_total,
            values.join("  ")
        );
    }
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        Self::record(&mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::record(&mut self.valid, state);
    }

    fn render_train(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        self.render("train", item);
    }

    fn render_valid(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        self.render("valid", item);
    }

    fn on_train_end(
        &mut self,
        _summary: Option<burn::train::LearnerSummary>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        Ok(())
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _name: EvaluationName, state: MetricState) {
        Self::record(&mut self.valid, state);
    }

    fn render_test(&mut self, _item: EvaluationProgress, _: Vec<ProgressType>) {}
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names.insert(definition.metric_id, definition.name);
    }
}
