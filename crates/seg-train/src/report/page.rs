//! The evaluation report: `report.html` in a folder beside `evaluation-<split>.json`, with the
//! split's curves (`roc.png`, `pr.png`, `f1-threshold.png`) and each image's overlay at the
//! threshold (TP green, FP red, FN blue; full size and a thumbnail) as files next to it.

use std::path::{Path, PathBuf};

use drive_data::Sample;
use image::imageops::FilterType;
use image::GrayImage;
use rayon::prelude::*;

use crate::chart::curves::{f1_chart, pr_chart, roc_chart, CurveSource};
use crate::error::TrainError;
use crate::evaluate::{EvaluationReport, ImageReport, PredictionMap};
use crate::predict::overlay::overlay;
use crate::report::html::{render, PageFiles};

/// Thumbnails' width in pixels.
const THUMB_WIDTH: u32 = 200;

/// The report folder of an evaluation JSON: its path without the extension
/// (`evaluation-test.json` → `evaluation-test/`).
pub fn report_dir(json_path: &Path) -> PathBuf {
    json_path.with_extension("")
}

/// Writes `dir/report.html` and its images for `report`; `samples` are the evaluated split's
/// (fundus, ground truth and FOV by id, as [`crate::evaluate::evaluate`] scored them). Returns
/// the page's path.
pub fn write_report(
    report: &EvaluationReport,
    samples: &[Sample],
    dir: &Path,
) -> Result<PathBuf, TrainError> {
    let err = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let overlays_dir = dir.join("overlays");
    std::fs::create_dir_all(&overlays_dir).map_err(|e| err(&overlays_dir, e.to_string()))?;
    let curves = report.fov_levels.as_ref().map(|levels| {
        vec![CurveSource {
            label: report.split.to_string(),
            levels,
            threshold: report.threshold,
            auc: report.fov.auc_text(),
            average_precision: report.fov.average_precision,
        }]
    });
    if let Some(sources) = &curves {
        roc_chart(&dir.join("roc.png"), sources)?;
        pr_chart(&dir.join("pr.png"), sources)?;
        f1_chart(&dir.join("f1-threshold.png"), sources)?;
    }
    let overlays = report
        .images
        .par_iter()
        .map(|img| {
            let sample = samples.iter().find(|s| s.id == img.id).ok_or_else(|| {
                err(
                    &img.image_file,
                    format!("image {} is not in the split's samples", img.id),
                )
            })?;
            write_overlay(img, sample, report.threshold_probability, &overlays_dir)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let page = dir.join("report.html");
    let html = render(
        report,
        &PageFiles {
            curves: curves.is_some(),
            overlays,
        },
    );
    std::fs::write(&page, html).map_err(|e| err(&page, e.to_string()))?;
    Ok(page)
}

/// `overlays/<id>.png` and `overlays/<id>-thumb.png` of one image; their paths relative to the
/// page.
fn write_overlay(
    img: &ImageReport,
    sample: &Sample,
    threshold: f64,
    dir: &Path,
) -> Result<(u32, String, String), TrainError> {
    let bad = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let (pred, [w, h]) = PredictionMap::read(&img.prediction)?;
    let binary = GrayImage::from_raw(w, h, pred.binary(threshold)).expect("same size");
    let picture = overlay(
        &sample.image,
        &binary,
        sample.vessels.as_ref(),
        Some(&sample.fov),
    );
    let (full, thumb) = (format!("{}.png", img.id), format!("{}-thumb.png", img.id));
    picture
        .save(dir.join(&full))
        .map_err(|e| bad(&dir.join(&full), e.to_string()))?;
    let tw = THUMB_WIDTH.min(w);
    let th = (tw as u64 * h as u64 / w.max(1) as u64).max(1) as u32;
    image::imageops::resize(&picture, tw, th, FilterType::Triangle)
        .save(dir.join(&thumb))
        .map_err(|e| bad(&dir.join(&thumb), e.to_string()))?;
    Ok((
        img.id,
        format!("overlays/{full}"),
        format!("overlays/{thumb}"),
    ))
}
