//! Plain progress lines for non-terminal output (CI, `nohup`, log files): at most one line every
//! few seconds per split, plus one at the end of each pass. In a terminal burn-train's TUI is used.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use burn::train::metric::MetricDefinition;
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Line-oriented renderer.
pub struct PlainRenderer {
    names: BTreeMap<String, String>,
    train: BTreeMap<String, String>,
    valid: BTreeMap<String, String>,
    last: Option<Instant>,
    every: Duration,
}

impl PlainRenderer {
    pub fn new(every: Duration) -> Self {
        Self {
            names: BTreeMap::new(),
            train: BTreeMap::new(),
            valid: BTreeMap::new(),
            last: None,
            every,
        }
    }

    fn record(map: &mut BTreeMap<String, String>, state: MetricState) {
        let entry = match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => e,
        };
        map.insert(
            format!("{:?}", entry.metric_id),
            entry.serialized_entry.formatted,
        );
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
        println!(
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
        self.names
            .insert(format!("{:?}", definition.metric_id), definition.name);
    }
}
