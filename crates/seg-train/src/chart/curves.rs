//! ROC, precision–recall and F1-vs-threshold charts of one or more evaluations (the report's
//! and `compare`'s), from their exact per-level counts.

use std::path::Path;

use crate::chart::{Corner, Line, LineChart, PALETTE};
use crate::error::TrainError;
use crate::evaluate::roc::RocHistogram;

/// One evaluation's curve data: its legend label, counts, threshold level and areas (from the
/// evaluation: exact ones when it scored float probabilities).
pub struct CurveSource<'a> {
    /// Its name in the legend.
    pub label: String,
    /// Its per-level pixel counts.
    pub levels: &'a RocHistogram,
    /// The threshold level it was scored at (its operating point), at the counts' resolution.
    pub threshold: u32,
    /// Its ROC AUC with the resolution, as the evaluation states it (e.g. `0.9712 (exact)`).
    pub auc: String,
    /// Its average precision.
    pub average_precision: Option<f64>,
}

fn line(i: usize, label: String, points: Vec<(f64, f64)>) -> Line {
    Line {
        label,
        colour: PALETTE[i % PALETTE.len()],
        width: 2,
        dots: false,
        points,
    }
}

/// The operating point at the threshold, as a dot.
fn dot(i: usize, label: String, point: (f64, f64)) -> Line {
    Line {
        label,
        colour: PALETTE[i % PALETTE.len()],
        width: 2,
        dots: true,
        points: vec![point],
    }
}

fn fmt_opt(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// `roc.png`: true vs false positive rate, with AUC in the legend and the threshold's point.
pub fn roc_chart(path: &Path, sources: &[CurveSource]) -> Result<(), TrainError> {
    let mut chart = LineChart::new(
        "ROC inside the FOV",
        "false positive rate",
        "true positive rate",
        0.0..1.0,
        0.0..1.0,
    );
    chart.diagonal = true;
    for (i, s) in sources.iter().enumerate() {
        let label = format!("{} (AUC {})", s.label, s.auc);
        chart.lines.push(line(i, label, s.levels.roc_points()));
        let c = s.levels.confusion_at(s.threshold);
        if let (Some(tpr), Some(spec)) = (c.sensitivity(), c.specificity()) {
            let at = format!("threshold {:.3}", s.levels.probability(s.threshold));
            chart.lines.push(dot(i, at, (1.0 - spec, tpr)));
        }
    }
    chart.draw(path)
}

/// `pr.png`: precision vs recall, with average precision in the legend and the threshold's
/// point.
pub fn pr_chart(path: &Path, sources: &[CurveSource]) -> Result<(), TrainError> {
    let mut chart = LineChart::new(
        "Precision–recall inside the FOV",
        "recall (sensitivity)",
        "precision",
        0.0..1.0,
        0.0..1.0,
    );
    chart.legend = Corner::LowerLeft;
    for (i, s) in sources.iter().enumerate() {
        let label = format!("{} (AP {})", s.label, fmt_opt(s.average_precision));
        chart.lines.push(line(i, label, s.levels.pr_points()));
        let c = s.levels.confusion_at(s.threshold);
        if let (Some(r), Some(p)) = (c.sensitivity(), c.precision()) {
            let at = format!("threshold {:.3}", s.levels.probability(s.threshold));
            chart.lines.push(dot(i, at, (r, p)));
        }
    }
    chart.draw(path)
}

/// `f1-threshold.png`: F1 at every threshold, each evaluation's threshold as a dashed vertical.
pub fn f1_chart(path: &Path, sources: &[CurveSource]) -> Result<(), TrainError> {
    let mut chart = LineChart::new(
        "F1 inside the FOV vs threshold",
        "threshold (vessel probability ≥)",
        "F1",
        0.0..1.0,
        0.0..1.0,
    );
    chart.legend = Corner::LowerLeft;
    for (i, s) in sources.iter().enumerate() {
        let points = s
            .levels
            .f1_by_level()
            .into_iter()
            .filter_map(|(level, f1)| Some((s.levels.probability(level), f1?)))
            .collect();
        let best = s.levels.best_f1().map_or(String::new(), |b| {
            format!(", best {:.4} at {:.3}", b.f1, b.probability)
        });
        chart
            .lines
            .push(line(i, format!("{}{best}", s.label), points));
        let t = s.levels.probability(s.threshold);
        let f1 = s.levels.confusion_at(s.threshold).f1();
        chart.verticals.push((
            t,
            format!("{} threshold {t:.3} (F1 {})", s.label, fmt_opt(f1)),
            PALETTE[i % PALETTE.len()],
        ));
    }
    chart.draw(path)
}
