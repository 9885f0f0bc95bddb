//! Training curves (`loss.png`, `accuracy.png`, `miou.png`).

use std::path::Path;

use plotters::prelude::{BLUE, RED};
use plotters::style::RGBColor;

use crate::chart::{padded_range, Corner, Line, LineChart};
use crate::error::TrainError;
use crate::metrics::history::EpochRow;
use crate::metrics::EpochMetrics;

type Series<'a> = (
    &'a str,
    RGBColor,
    Box<dyn Fn(&EpochMetrics) -> Option<f64> + 'a>,
);

/// `(epoch, value)` of the `split` rows, finite values only.
pub fn epoch_points(
    rows: &[EpochRow],
    split: &str,
    value: impl Fn(&EpochMetrics) -> Option<f64>,
) -> Vec<(f64, f64)> {
    rows.iter()
        .filter(|r| r.split == split)
        .filter_map(|r| Some((r.epoch as f64, value(&r.metrics)?)))
        .filter(|(_, v)| v.is_finite())
        .collect()
}

/// Draws `lines` over epochs (integer ticks from 1, the values' range padded), legend upper
/// right.
pub fn epoch_chart(
    path: &Path,
    title: &str,
    lines: Vec<Line>,
    size: (u32, u32),
) -> Result<(), TrainError> {
    let points = || lines.iter().flat_map(|l| &l.points);
    let max_epoch = points().map(|p| p.0).fold(2.0, f64::max);
    let y = padded_range(points().map(|p| p.1), 1e-3, 0.0..1.0);
    let mut chart = LineChart::new(title, "epoch", "", 1.0..max_epoch, y);
    chart.lines = lines;
    chart.integer_x = true;
    chart.legend = Corner::UpperRight;
    chart.size = size;
    chart.draw(path)
}

/// Draws one chart: a line per (split, series) over the epochs in `rows`.
fn chart(
    path: &Path,
    title: &str,
    rows: &[EpochRow],
    series: Vec<Series<'_>>,
) -> Result<(), TrainError> {
    let mut lines = Vec::new();
    for (name, colour, value) in &series {
        for (split, width) in [("train", 2), ("valid", 1)] {
            lines.push(Line {
                label: format!("{split} {name}"),
                colour: *colour,
                width,
                dots: true,
                points: epoch_points(rows, split, value),
            });
        }
    }
    epoch_chart(path, title, lines, (800, 500))
}

/// Writes `loss.png`, `accuracy.png` and `miou.png` in `dir` (thick: train, thin: valid).
pub fn write_curves(dir: &Path, rows: &[EpochRow]) -> Result<(), TrainError> {
    chart(
        &dir.join("loss.png"),
        "Loss",
        rows,
        vec![("loss", BLUE, Box::new(|m: &EpochMetrics| Some(m.loss)))],
    )?;
    chart(
        &dir.join("accuracy.png"),
        "Pixel accuracy",
        rows,
        vec![
            (
                "image",
                BLUE,
                Box::new(|m: &EpochMetrics| m.image.accuracy()),
            ),
            ("FOV", RED, Box::new(|m: &EpochMetrics| m.fov.accuracy())),
        ],
    )?;
    chart(
        &dir.join("miou.png"),
        "mIoU and vessel IoU",
        rows,
        vec![
            (
                "mIoU (image)",
                BLUE,
                Box::new(|m: &EpochMetrics| m.image.miou()),
            ),
            (
                "vessel IoU (FOV)",
                RED,
                Box::new(|m: &EpochMetrics| m.fov.vessel_iou()),
            ),
        ],
    )
}
