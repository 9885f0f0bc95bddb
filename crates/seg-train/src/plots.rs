//! Training curves (`loss.png`, `accuracy.png`, `miou.png`) with plotters.

use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::TrainError;
use crate::history::EpochRow;
use crate::metrics::EpochMetrics;

static FONT: Once = Once::new();

/// plotters' `ab_glyph` text needs a registered font; DejaVu Sans is embedded (no system fonts).
fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
    });
}

type Series<'a> = (
    &'a str,
    RGBColor,
    Box<dyn Fn(&EpochMetrics) -> Option<f64> + 'a>,
);

/// Draws one chart: a line per (split, series) over the epochs in `rows`.
fn chart(
    path: &Path,
    title: &str,
    rows: &[EpochRow],
    series: Vec<Series<'_>>,
) -> Result<(), TrainError> {
    register_font();
    let err = |e: String| TrainError::Output {
        path: path.to_path_buf(),
        reason: e,
    };
    let mut lines: Vec<(String, RGBColor, bool, Vec<(f64, f64)>)> = Vec::new();
    for (name, colour, value) in &series {
        for (split, dashed) in [("train", false), ("valid", true)] {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.split == split)
                .filter_map(|r| Some((r.epoch as f64, value(&r.metrics)?)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            lines.push((format!("{split} {name}"), *colour, dashed, points));
        }
    }
    let all: Vec<&(f64, f64)> = lines.iter().flat_map(|l| &l.3).collect();
    let max_epoch = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(1.0..max_epoch.max(2.0), (lo - pad)..(hi + pad))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .x_labels((max_epoch as usize).clamp(2, 11))
        .x_label_formatter(&|x| format!("{}", x.round() as i64))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (label, colour, dashed, points) in lines {
        let style = ShapeStyle::from(&colour).stroke_width(if dashed { 1 } else { 2 });
        let drawn = chart
            .draw_series(LineSeries::new(points.clone(), style))
            .map_err(|e| err(e.to_string()))?;
        drawn
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 3, style.filled())))
            .map_err(|e| err(e.to_string()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Writes `loss.png`, `accuracy.png` and `miou.png` in `dir` (solid: train, thin: valid).
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
