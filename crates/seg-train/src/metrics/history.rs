//! `metrics.csv`: one row per epoch and split, with the loss, learning rate, the metrics on the
//! whole image and inside the FOV, and the raw confusion counts (so every figure can be recomputed).

use std::fmt::Write as _;
use std::path::Path;

use crate::error::TrainError;
use crate::metrics::{Confusion, EpochMetrics, MetricSummary};

/// One row of `metrics.csv`.
///
/// The `loss` column is the run's training loss (its loss settings: class weights, aux head,
/// Dice, FOV restriction) in both splits: for `train`, the mean over the epoch's training batches
/// (weighted by their samples); for `valid`, the mean over the validation inputs, each evaluated
/// alone with the inference model — whole images resized to the input size, or, for runs trained
/// on crops, every crop-sized window of the sliding window over the whole images. The
/// `best-loss` checkpoint is the epoch with the lowest `valid` loss.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    /// 1-based epoch.
    pub epoch: usize,
    /// `train` or `valid`.
    pub split: String,
    /// Learning rate at the epoch's last iteration.
    pub lr: f64,
    /// The split's loss and confusion counts.
    pub metrics: EpochMetrics,
}

const COUNTS: [&str; 8] = [
    "image_tp", "image_fp", "image_fn", "image_tn", "fov_tp", "fov_fp", "fov_fn", "fov_tn",
];

/// The CSV header.
pub fn header() -> String {
    let mut cols = vec![
        "epoch".to_string(),
        "split".into(),
        "lr".into(),
        "loss".into(),
    ];
    for region in ["image", "fov"] {
        cols.extend(MetricSummary::NAMES.iter().map(|n| format!("{region}_{n}")));
    }
    cols.extend(COUNTS.iter().map(|c| c.to_string()));
    cols.join(",")
}

fn row_line(row: &EpochRow) -> String {
    let mut line = format!(
        "{},{},{:e},{}",
        row.epoch, row.split, row.lr, row.metrics.loss
    );
    for c in [row.metrics.image, row.metrics.fov] {
        for v in c.summary().values() {
            match v {
                Some(v) => write!(line, ",{v:.6}").unwrap(),
                None => line.push(','),
            }
        }
    }
    for c in [row.metrics.image, row.metrics.fov] {
        write!(line, ",{},{},{},{}", c.tp, c.fp, c.fn_, c.tn).unwrap();
    }
    line
}

/// Writes all rows (atomically: temp file + rename).
pub fn write_csv(path: &Path, rows: &[EpochRow]) -> Result<(), TrainError> {
    let mut text = header();
    text.push('\n');
    for row in rows {
        text.push_str(&row_line(row));
        text.push('\n');
    }
    let tmp = path.with_extension("csv.tmp");
    let err = |e: std::io::Error| TrainError::Output {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::write(&tmp, text).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Reads rows back (loss, learning rate and counts exactly; the ratios are recomputed from counts).
pub fn read_csv(path: &Path) -> Result<Vec<EpochRow>, TrainError> {
    let bad = |reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    let col = |name: &str| {
        head.iter()
            .position(|h| *h == name)
            .ok_or_else(|| bad(format!("no column `{name}`")))
    };
    let (epoch, split, lr, loss) = (col("epoch")?, col("split")?, col("lr")?, col("loss")?);
    let counts: Vec<usize> = COUNTS.iter().map(|c| col(c)).collect::<Result<_, _>>()?;
    let mut rows = Vec::new();
    for (n, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let num = |i: usize| -> Result<f64, TrainError> {
            cells
                .get(i)
                .and_then(|c| c.parse::<f64>().ok())
                .ok_or_else(|| bad(format!("line {}: bad value in column {}", n + 2, head[i])))
        };
        let c: Vec<u64> = counts
            .iter()
            .map(|&i| num(i).map(|v| v as u64))
            .collect::<Result<_, _>>()?;
        rows.push(EpochRow {
            epoch: num(epoch)? as usize,
            split: cells.get(split).unwrap_or(&"").to_string(),
            lr: num(lr)?,
            metrics: EpochMetrics {
                loss: num(loss)?,
                image: Confusion::new(c[0], c[1], c[2], c[3]),
                fov: Confusion::new(c[4], c[5], c[6], c[7]),
            },
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let rows = vec![
            EpochRow {
                epoch: 1,
                split: "train".into(),
                lr: 1e-4,
                metrics: EpochMetrics {
                    loss: 0.123_456_789_012_345,
                    image: Confusion::new(1, 2, 3, 4),
                    fov: Confusion::new(0, 0, 0, 9),
                },
            },
            EpochRow {
                epoch: 1,
                split: "valid".into(),
                lr: 1e-4,
                metrics: EpochMetrics::default(),
            },
        ];
        write_csv(&path, &rows).unwrap();
        assert_eq!(read_csv(&path).unwrap(), rows);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("epoch,split,lr,loss,image_accuracy,"));
        // Undefined ratios are empty cells.
        assert!(text.lines().nth(1).unwrap().contains(",,"));
    }
}
