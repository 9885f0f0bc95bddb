//! Runs and evaluations side by side: what `retina-seg compare` reads and the table it shows.
//!
//! Each input is an evaluation (`evaluation-<split>.json`), a training run's `metrics.csv`, or a
//! run folder (its `metrics.csv` and its evaluation of the compared split, if any). The table has
//! one column per input and, for every input after the first, its difference from the first.

use std::path::{Path, PathBuf};

use drive_data::Split;

use crate::error::TrainError;
use crate::evaluate::EvaluationReport;
use crate::metrics::history::{read_csv, EpochRow};

/// One compared input.
#[derive(Debug)]
pub struct Compared {
    /// Its column heading (the run folder's name, or the evaluation file's).
    pub label: String,
    /// Where it was read from.
    pub source: PathBuf,
    /// Its evaluation, when it has one.
    pub evaluation: Option<EvaluationReport>,
    /// The run's `metrics.csv` rows.
    pub history: Option<Vec<EpochRow>>,
}

/// How a table row's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A fraction shown as a percentage; differences in percentage points.
    Percent,
    /// A number shown with four decimals.
    Fraction,
    /// A count or an epoch.
    Whole,
}

/// One row of the table: a value per input (`None`: not available).
#[derive(Debug)]
pub struct Row {
    /// The row's heading.
    pub name: &'static str,
    /// How its values read (and how differences are written).
    pub unit: Unit,
    /// One value per input (`None`: not available).
    pub values: Vec<Option<f64>>,
}

impl Row {
    /// A value as shown in the table.
    pub fn show(&self, v: Option<f64>) -> String {
        match (v, self.unit) {
            (None, _) => "–".into(),
            (Some(v), Unit::Percent) => format!("{:.2}", 100.0 * v),
            (Some(v), Unit::Fraction) => format!("{v:.4}"),
            (Some(v), Unit::Whole) => format!("{v:.0}"),
        }
    }

    /// Input `i`'s difference from the first input, signed, in the row's unit.
    pub fn difference(&self, i: usize) -> String {
        match (self.values[i], self.values[0]) {
            (Some(a), Some(b)) => match self.unit {
                Unit::Percent => format!("{:+.2}", 100.0 * (a - b)),
                Unit::Fraction => format!("{:+.4}", a - b),
                Unit::Whole => format!("{:+.0}", a - b),
            },
            _ => "–".into(),
        }
    }
}

/// Reads the inputs; `split` picks the evaluation in run folders (default: `test` when every
/// run folder has one, else `valid`).
pub fn load(inputs: &[PathBuf], split: Option<Split>) -> Result<Vec<Compared>, TrainError> {
    if inputs.len() < 2 {
        return Err(TrainError::Config(
            "compare needs two or more runs or evaluations".into(),
        ));
    }
    let split = split.unwrap_or_else(|| {
        let all_have_test = inputs
            .iter()
            .filter(|p| p.is_dir())
            .all(|p| p.join("evaluation-test.json").is_file());
        if all_have_test {
            Split::Test
        } else {
            Split::Valid
        }
    });
    let mut out: Vec<Compared> = inputs
        .iter()
        .map(|p| load_one(p, split))
        .collect::<Result<_, _>>()?;
    // Distinct headings: a repeated name gets its position appended.
    let repeated: Vec<bool> = out
        .iter()
        .map(|c| out.iter().filter(|o| o.label == c.label).count() > 1)
        .collect();
    for (i, (c, repeated)) in out.iter_mut().zip(repeated).enumerate() {
        if repeated {
            c.label = format!("{} ({})", c.label, i + 1);
        }
    }
    Ok(out)
}

fn name_of(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn load_one(path: &Path, split: Split) -> Result<Compared, TrainError> {
    let missing = |reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    if path.is_dir() {
        let csv = path.join("metrics.csv");
        let json = path.join(format!("evaluation-{split}.json"));
        let history = csv.is_file().then(|| read_csv(&csv)).transpose()?;
        let evaluation = json
            .is_file()
            .then(|| EvaluationReport::read(&json))
            .transpose()?;
        if history.is_none() && evaluation.is_none() {
            return Err(missing(format!(
                "neither metrics.csv nor evaluation-{split}.json in this folder: give a training \
                 run's folder, its metrics.csv or an evaluation JSON"
            )));
        }
        return Ok(Compared {
            label: name_of(path),
            source: path.to_path_buf(),
            evaluation,
            history,
        });
    }
    if !path.is_file() {
        return Err(missing("no such file or folder".into()));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
    let stem = path
        .file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned());
    let is_csv = path.extension().is_some_and(|e| e == "csv");
    // `<run>/metrics.csv` and `<run>/evaluation-test.json` are named after their run.
    let label = match parent {
        Some(dir) if is_csv || stem.starts_with("evaluation-") => name_of(dir),
        _ => stem,
    };
    let (evaluation, history) = if is_csv {
        (None, Some(read_csv(path)?))
    } else {
        (Some(EvaluationReport::read(path)?), None)
    };
    Ok(Compared {
        label,
        source: path.to_path_buf(),
        evaluation,
        history,
    })
}

/// The best validation epoch of a run (highest vessel IoU inside the FOV, as the `best-iou`
/// checkpoint) and that row.
pub fn best_epoch(history: &[EpochRow]) -> Option<&EpochRow> {
    history
        .iter()
        .filter(|r| r.split == "valid")
        .filter(|r| r.metrics.fov.vessel_iou().is_some())
        .max_by(|a, b| {
            let iou = |r: &EpochRow| r.metrics.fov.vessel_iou().unwrap_or(0.0);
            iou(a).total_cmp(&iou(b)).then(b.epoch.cmp(&a.epoch))
        })
}

/// The table's rows.
pub fn rows(inputs: &[Compared]) -> Vec<Row> {
    type Eval = fn(&EvaluationReport) -> Option<f64>;
    let eval_rows: [(&'static str, Unit, Eval); 23] = [
        ("threshold", Unit::Fraction, |e| {
            Some(e.threshold_probability)
        }),
        ("images", Unit::Whole, |e| Some(e.images.len() as f64)),
        ("FOV F1 (Dice) %", Unit::Percent, |e| e.fov.metrics.f1),
        ("FOV sensitivity %", Unit::Percent, |e| {
            e.fov.metrics.sensitivity
        }),
        ("FOV specificity %", Unit::Percent, |e| {
            e.fov.metrics.specificity
        }),
        ("FOV precision %", Unit::Percent, |e| {
            e.fov.metrics.precision
        }),
        ("FOV accuracy %", Unit::Percent, |e| e.fov.metrics.accuracy),
        ("FOV vessel IoU %", Unit::Percent, |e| {
            e.fov.metrics.vessel_iou
        }),
        ("FOV MCC", Unit::Fraction, |e| Some(e.fov.metrics.mcc)),
        ("FOV ROC AUC", Unit::Fraction, |e| e.fov.auc),
        // Empty for AUCs of the float probabilities (exact); for probability levels, how far
        // the ties within levels could move the AUC.
        ("FOV AUC tie bound (levels)", Unit::Fraction, |e| {
            e.fov.auc_tie_bound
        }),
        ("FOV average precision", Unit::Fraction, |e| {
            e.fov.average_precision
        }),
        ("best-F1 threshold", Unit::Fraction, |e| {
            e.best_f1_threshold.map(|b| b.probability)
        }),
        ("thin vessels F1 %", Unit::Percent, |e| {
            e.widths?.thin.metrics.f1
        }),
        ("thin vessels sensitivity %", Unit::Percent, |e| {
            e.widths?.thin.metrics.sensitivity
        }),
        ("thick vessels F1 %", Unit::Percent, |e| {
            e.widths?.thick.metrics.f1
        }),
        ("thick vessels sensitivity %", Unit::Percent, |e| {
            e.widths?.thick.metrics.sensitivity
        }),
        ("clDice %", Unit::Percent, |e| e.topology?.cldice),
        ("skeleton recall %", Unit::Percent, |e| e.topology?.tsens),
        ("thin skeleton recall %", Unit::Percent, |e| {
            e.topology?.skeleton_recall_thin
        }),
        ("mean |β0 error| per image", Unit::Fraction, |e| {
            Some(e.topology?.betti0_error)
        }),
        ("mean |β1 error| per image", Unit::Fraction, |e| {
            Some(e.topology?.betti1_error)
        }),
        ("whole-image mIoU %", Unit::Percent, |e| {
            e.image.metrics.miou
        }),
    ];
    type Hist = fn(&[EpochRow]) -> Option<f64>;
    let history_rows: [(&'static str, Unit, Hist); 4] = [
        ("epochs", Unit::Whole, |h| {
            h.iter().map(|r| r.epoch).max().map(|e| e as f64)
        }),
        ("best epoch (valid vessel IoU)", Unit::Whole, |h| {
            best_epoch(h).map(|r| r.epoch as f64)
        }),
        ("best valid vessel IoU (FOV) %", Unit::Percent, |h| {
            best_epoch(h)?.metrics.fov.vessel_iou()
        }),
        ("last valid loss", Unit::Fraction, |h| {
            h.iter()
                .rfind(|r| r.split == "valid")
                .map(|r| r.metrics.loss)
        }),
    ];
    let mut out = Vec::new();
    if inputs.iter().any(|c| c.evaluation.is_some()) {
        for (name, unit, f) in eval_rows {
            let values = inputs
                .iter()
                .map(|c| c.evaluation.as_ref().and_then(f))
                .collect();
            out.push(Row { name, unit, values });
        }
    }
    if inputs.iter().any(|c| c.history.is_some()) {
        for (name, unit, f) in history_rows {
            let values = inputs
                .iter()
                .map(|c| c.history.as_deref().and_then(f))
                .collect();
            out.push(Row { name, unit, values });
        }
    }
    out
}

/// The table as text: a column per input, then each later input's difference from the first.
pub fn text_table(inputs: &[Compared], rows: &[Row]) -> String {
    let mut header: Vec<String> = vec![String::new()];
    header.extend(inputs.iter().map(|c| c.label.clone()));
    header.extend(inputs.iter().skip(1).map(|c| format!("Δ {}", c.label)));
    let mut lines = vec![header];
    for row in rows {
        let mut line = vec![row.name.to_string()];
        line.extend(row.values.iter().map(|v| row.show(*v)));
        line.extend((1..inputs.len()).map(|i| row.difference(i)));
        lines.push(line);
    }
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|k| {
            lines
                .iter()
                .map(|l| l[k].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &lines {
        for (k, cell) in line.iter().enumerate() {
            let pad = widths[k] - cell.chars().count();
            if k == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

/// The table as CSV: `metric`, one column per input, then the differences.
pub fn csv_table(inputs: &[Compared], rows: &[Row]) -> String {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut out = String::from("metric");
    for c in inputs {
        out.push(',');
        out.push_str(&quote(&c.label));
    }
    for c in inputs.iter().skip(1) {
        out.push(',');
        out.push_str(&quote(&format!("difference {}", c.label)));
    }
    out.push('\n');
    for row in rows {
        out.push_str(&quote(row.name));
        for v in &row.values {
            out.push(',');
            out.push_str(&v.map_or(String::new(), |v| format!("{v:.6}")));
        }
        for i in 1..inputs.len() {
            out.push(',');
            if let (Some(a), Some(b)) = (row.values[i], row.values[0]) {
                out.push_str(&format!("{:.6}", a - b));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::history::write_csv;
    use crate::metrics::{Confusion, EpochMetrics};

    /// A `valid` row whose FOV vessel IoU is `tp / 100` (FP + FN = 100 − TP).
    fn valid(epoch: usize, tp: u64, loss: f64) -> EpochRow {
        let fov = Confusion::new(tp, 100 - tp, 0, 1000);
        EpochRow {
            epoch,
            split: "valid".into(),
            lr: 1e-3,
            metrics: EpochMetrics {
                loss,
                image: fov,
                fov,
            },
        }
    }

    #[test]
    fn runs_side_by_side_with_differences_from_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a/run"), dir.path().join("b/run"));
        for (path, rows) in [
            (
                &a,
                vec![valid(1, 20, 0.9), valid(2, 40, 0.7), valid(3, 30, 0.6)],
            ),
            (&b, vec![valid(1, 50, 0.5), valid(2, 45, 0.4)]),
        ] {
            std::fs::create_dir_all(path).unwrap();
            write_csv(&path.join("metrics.csv"), &rows).unwrap();
        }
        let inputs = load(&[a.clone(), b], None).unwrap();
        // Two folders named `run`: headings told apart by position.
        let labels: Vec<&str> = inputs.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(labels, ["run (1)", "run (2)"]);
        let table = rows(&inputs);
        let row = |name: &str| table.iter().find(|r| r.name == name).unwrap();
        // No evaluations: only the training rows.
        assert!(table.iter().all(|r| !r.name.starts_with("FOV")));
        assert_eq!(row("epochs").values, [Some(3.0), Some(2.0)]);
        assert_eq!(
            row("best epoch (valid vessel IoU)").values,
            [Some(2.0), Some(1.0)]
        );
        let best = row("best valid vessel IoU (FOV) %");
        assert_eq!(best.values, [Some(0.4), Some(0.5)]);
        assert_eq!(best.show(best.values[1]), "50.00");
        assert_eq!(best.difference(1), "+10.00");
        let loss = row("last valid loss");
        assert_eq!(loss.difference(1), "-0.2000");
        let text = text_table(&inputs, &table);
        assert!(
            text.lines().next().unwrap().ends_with("Δ run (2)"),
            "{text}"
        );
        let csv = csv_table(&inputs, &table);
        assert!(csv.contains("\"best valid vessel IoU (FOV) %\",0.400000,0.500000,0.100000"));

        // One input is not a comparison; a folder with nothing to compare is named.
        assert!(load(std::slice::from_ref(&a), None).is_err());
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        let err = load(&[a, empty], None).unwrap_err().to_string();
        assert!(
            err.contains("empty") && err.contains("metrics.csv"),
            "{err}"
        );
    }
}
