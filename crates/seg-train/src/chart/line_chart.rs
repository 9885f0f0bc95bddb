//! One line chart as a PNG (plotters, DejaVu Sans embedded: no system fonts): what the training
//! curves, the evaluation report and `compare` draw.

use std::ops::Range;
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;

use crate::error::TrainError;

/// Colours of successive series.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// Where the legend goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    /// Top left.
    UpperLeft,
    /// Top right.
    UpperRight,
    /// Bottom left.
    LowerLeft,
    /// Bottom right.
    LowerRight,
}

/// One series.
pub struct Line {
    /// Its name in the legend.
    pub label: String,
    /// Its colour.
    pub colour: RGBColor,
    /// Stroke width in pixels.
    pub width: u32,
    /// Mark each point with a dot.
    pub dots: bool,
    /// `(x, y)` in data units, drawn in order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: its axes, series and optional marks.
pub struct LineChart {
    /// Caption above the chart.
    pub title: String,
    /// Label of the x axis.
    pub x_desc: String,
    /// Label of the y axis.
    pub y_desc: String,
    /// The x axis' range.
    pub x: Range<f64>,
    /// The y axis' range.
    pub y: Range<f64>,
    /// The series, drawn in order.
    pub lines: Vec<Line>,
    /// Dashed vertical lines at these x, labelled in the legend.
    pub verticals: Vec<(f64, String, RGBColor)>,
    /// The dashed grey diagonal from (x.start, y.start) to (x.end, y.end) (chance on a ROC).
    pub diagonal: bool,
    /// Integer tick labels on x (epochs).
    pub integer_x: bool,
    /// Where the legend goes.
    pub legend: Corner,
    /// `(width, height)` in pixels.
    pub size: (u32, u32),
}

impl LineChart {
    /// A chart with no series on the given axes, legend at the lower right, 640×480.
    pub fn new(title: &str, x_desc: &str, y_desc: &str, x: Range<f64>, y: Range<f64>) -> Self {
        Self {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            x,
            y,
            lines: Vec::new(),
            verticals: Vec::new(),
            diagonal: false,
            integer_x: false,
            legend: Corner::LowerRight,
            size: (640, 480),
        }
    }

    /// Draws the chart into `path` (PNG).
    pub fn draw(&self, path: &Path) -> Result<(), TrainError> {
        register_font();
        let err = |e: String| TrainError::Output {
            path: path.to_path_buf(),
            reason: e,
        };
        let root = BitMapBackend::new(path, self.size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(self.x.clone(), self.y.clone())
            .map_err(|e| err(e.to_string()))?;
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_desc).y_desc(&self.y_desc);
        let integer = |x: &f64| format!("{}", x.round() as i64);
        if self.integer_x {
            let span = (self.x.end - self.x.start).round() as usize;
            mesh.x_labels(span.clamp(2, 11)).x_label_formatter(&integer);
        }
        mesh.draw().map_err(|e| err(e.to_string()))?;
        if self.diagonal {
            let grey = ShapeStyle::from(&RGBColor(160, 160, 160)).stroke_width(1);
            let (x, y) = (&self.x, &self.y);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x.start, y.start), (x.end, y.end)],
                    6,
                    4,
                    grey,
                ))
                .map_err(|e| err(e.to_string()))?;
        }
        for line in &self.lines {
            let style = ShapeStyle::from(&line.colour).stroke_width(line.width);
            let series = chart
                .draw_series(LineSeries::new(line.points.clone(), style))
                .map_err(|e| err(e.to_string()))?
                .label(line.label.clone());
            if line.dots && line.points.len() == 1 {
                series.legend(move |(x, y)| Circle::new((x + 9, y), 5, style.filled()));
            } else {
                series.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
            if line.dots {
                // A lone point (an operating point) is drawn larger than a curve's points.
                let radius = if line.points.len() == 1 { 6 } else { 3 };
                chart
                    .draw_series(
                        line.points
                            .iter()
                            .map(|p| Circle::new(*p, radius, style.filled())),
                    )
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        for (x, label, colour) in &self.verticals {
            let style = ShapeStyle::from(colour).stroke_width(1);
            chart
                .draw_series(DashedLineSeries::new(
                    [(*x, self.y.start), (*x, self.y.end)],
                    5,
                    3,
                    style,
                ))
                .map_err(|e| err(e.to_string()))?
                .label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(match self.legend {
                Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                Corner::UpperRight => SeriesLabelPosition::UpperRight,
                Corner::LowerLeft => SeriesLabelPosition::LowerLeft,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .draw()
            .map_err(|e| err(e.to_string()))?;
        root.present().map_err(|e| err(e.to_string()))
    }
}

/// `lo..hi` padded by 5 % (at least `min_pad`) around the finite `values`; `fallback` without any.
pub fn padded_range(
    values: impl Iterator<Item = f64>,
    min_pad: f64,
    fallback: Range<f64>,
) -> Range<f64> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return fallback;
    }
    let pad = ((hi - lo) * 0.05).max(min_pad);
    (lo - pad)..(hi + pad)
}

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
