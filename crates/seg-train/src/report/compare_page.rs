//! `compare`'s outputs in one folder: `compare.html` (the table with differences and the
//! charts), `compare.csv`, overlaid `roc.png`, `pr.png`, `f1-threshold.png` (evaluations with
//! probability maps) and `training-loss.png`, `training-f1.png` (runs' `metrics.csv`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::chart::curves::{f1_chart, pr_chart, roc_chart, CurveSource};
use crate::chart::epochs::{epoch_chart, epoch_points};
use crate::chart::{Line, PALETTE};
use crate::error::TrainError;
use crate::metrics::history::EpochRow;
use crate::metrics::EpochMetrics;
use crate::report::compare::{csv_table, rows, Compared};
use crate::report::html::{escape, STYLE};

/// Writes the comparison into `dir`; returns the page's path.
pub fn write_comparison(inputs: &[Compared], dir: &Path) -> Result<PathBuf, TrainError> {
    let err = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, e.to_string()))?;
    let table = rows(inputs);
    let csv = dir.join("compare.csv");
    std::fs::write(&csv, csv_table(inputs, &table)).map_err(|e| err(&csv, e.to_string()))?;
    let mut charts: Vec<&str> = Vec::new();
    let sources: Vec<CurveSource> = inputs
        .iter()
        .filter_map(|c| {
            let e = c.evaluation.as_ref()?;
            Some(CurveSource {
                label: c.label.clone(),
                levels: e.fov_levels.as_ref()?,
                threshold: e.threshold,
                auc: e.fov.auc_text(),
                average_precision: e.fov.average_precision,
            })
        })
        .collect();
    if !sources.is_empty() {
        roc_chart(&dir.join("roc.png"), &sources)?;
        pr_chart(&dir.join("pr.png"), &sources)?;
        f1_chart(&dir.join("f1-threshold.png"), &sources)?;
        charts.extend(["roc.png", "pr.png", "f1-threshold.png"]);
    }
    let runs: Vec<(usize, &str, &[EpochRow])> = inputs
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some((i, c.label.as_str(), c.history.as_deref()?)))
        .collect();
    if !runs.is_empty() {
        training_chart(&dir.join("training-loss.png"), "Loss", &runs, true, |m| {
            Some(m.loss)
        })?;
        training_chart(
            &dir.join("training-f1.png"),
            "F1 inside the FOV (threshold 0.5)",
            &runs,
            false,
            |m| m.fov.f1(),
        )?;
        charts.extend(["training-loss.png", "training-f1.png"]);
    }
    let mut html = format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>Comparison</title>\
         <style>{STYLE}</style></head><body>\n<h1>Comparison</h1>\n<table class=meta>\n"
    );
    for c in inputs {
        let what = match (&c.evaluation, &c.history) {
            (Some(e), Some(_)) => format!("training run; evaluation of the {} split", e.split),
            (Some(e), None) => format!("evaluation of the {} split", e.split),
            (None, _) => "training run (metrics.csv)".into(),
        };
        let _ = writeln!(
            html,
            "<tr><th class=l>{}</th><td>{}</td><td>{}</td></tr>",
            escape(&c.label),
            escape(&c.source.display().to_string()),
            escape(&what)
        );
    }
    html.push_str("</table>\n<h2>Side by side</h2>\n<table>\n<tr><th></th>");
    for c in inputs {
        let _ = write!(html, "<th>{}</th>", escape(&c.label));
    }
    for c in inputs.iter().skip(1) {
        let _ = write!(
            html,
            "<th>Δ {} − {}</th>",
            escape(&c.label),
            escape(&inputs[0].label)
        );
    }
    html.push_str("</tr>\n");
    for row in &table {
        let _ = write!(html, "<tr><th class=l>{}</th>", escape(row.name));
        for v in &row.values {
            let _ = write!(html, "<td>{}</td>", row.show(*v));
        }
        for i in 1..inputs.len() {
            let _ = write!(html, "<td>{}</td>", row.difference(i));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n<p>Percentages: differences in percentage points.</p>\n");
    if !charts.is_empty() {
        html.push_str("<h2>Curves</h2>\n<div class=curves>");
        for c in &charts {
            let _ = write!(html, "<img src=\"{c}\" alt=\"{c}\">");
        }
        html.push_str("</div>\n");
    }
    html.push_str("</body></html>\n");
    let page = dir.join("compare.html");
    std::fs::write(&page, html).map_err(|e| err(&page, e.to_string()))?;
    Ok(page)
}

/// One value per epoch and run: validation thick, training thin (with `train`).
fn training_chart(
    path: &Path,
    title: &str,
    runs: &[(usize, &str, &[EpochRow])],
    train: bool,
    value: fn(&EpochMetrics) -> Option<f64>,
) -> Result<(), TrainError> {
    let mut lines = Vec::new();
    for (i, label, rows) in runs {
        let splits: &[(&str, u32)] = if train {
            &[("valid", 2), ("train", 1)]
        } else {
            &[("valid", 2)]
        };
        for (split, width) in splits {
            lines.push(Line {
                label: format!("{label} {split}"),
                colour: PALETTE[i % PALETTE.len()],
                width: *width,
                dots: true,
                points: epoch_points(rows, split, value),
            });
        }
    }
    epoch_chart(path, title, lines, (640, 480))
}
