//! The text of `report.html`: one self-contained page (inline CSS, no script, images by relative
//! path) of an [`EvaluationReport`].

use std::fmt::Write as _;

use crate::evaluate::topology::TopologyScores;
use crate::evaluate::vessel_width::WidthScores;
use crate::evaluate::{EvaluationReport, ImageReport, Resolution, Scores};

/// Text with `&`, `<`, `>` and `"` escaped for HTML.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The page's style, shared with `compare`'s page.
pub const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}\
table{border-collapse:collapse;margin:8px 0 20px}\
td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th{background:#f0f0f0}td.l,th.l{text-align:left}\
.curves img{width:32%;min-width:320px;margin-right:1%}\
.key span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}\
.meta td{text-align:left}";

/// A percentage with two decimals, or a dash.
pub fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.2}", 100.0 * v))
}

/// A fraction with four decimals, or a dash.
pub fn frac(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{v:.4}"))
}

/// What the page links to besides its own text.
pub struct PageFiles {
    /// `roc.png`, `pr.png` and `f1-threshold.png` were drawn (probability maps only).
    pub curves: bool,
    /// Per image id: (full-size overlay, thumbnail), relative to the page.
    pub overlays: Vec<(u32, String, String)>,
}

fn metrics_rows(out: &mut String, fov: &Scores, image: &Scores) {
    type Cell = fn(&Scores) -> String;
    let rows: [(&str, Cell); 10] = [
        ("Accuracy %", |s| pct(s.metrics.accuracy)),
        ("Sensitivity %", |s| pct(s.metrics.sensitivity)),
        ("Specificity %", |s| pct(s.metrics.specificity)),
        ("Precision %", |s| pct(s.metrics.precision)),
        ("F1 (Dice) %", |s| pct(s.metrics.f1)),
        ("Vessel IoU %", |s| pct(s.metrics.vessel_iou)),
        ("mIoU %", |s| pct(s.metrics.miou)),
        ("MCC", |s| frac(Some(s.metrics.mcc))),
        ("ROC AUC", |s| s.auc_text()),
        ("Average precision", |s| frac(s.average_precision)),
    ];
    for (name, value) in rows {
        let _ = writeln!(
            out,
            "<tr><th class=l>{name}</th><td>{}</td><td>{}</td></tr>",
            value(fov),
            value(image)
        );
    }
}

fn width_rows(out: &mut String, w: &WidthScores) {
    for (name, s) in [("thin (≤ 2 px)", &w.thin), ("thick (≥ 3 px)", &w.thick)] {
        let _ = writeln!(
            out,
            "<tr><th class=l>{name}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            pct(s.metrics.f1),
            pct(s.metrics.sensitivity),
            pct(s.metrics.precision),
            s.confusion.tp + s.confusion.fn_
        );
    }
}

fn topology_table(out: &mut String, t: &TopologyScores) {
    let c = &t.counts;
    out.push_str(
        "<h2>Topology (inside the FOV)</h2>\n<p>Skeletons by Guo–Hall thinning; clDice = \
         2·Tprec·Tsens / (Tprec + Tsens), skeleton counts over all images; Betti errors are the \
         mean over images.</p>\n<table>\n",
    );
    for (name, value) in [
        ("clDice %", pct(t.cldice)),
        ("topology precision Tprec %", pct(t.tprec)),
        ("skeleton recall (Tsens) %", pct(t.tsens)),
        (
            "skeleton recall, thin vessels %",
            pct(t.skeleton_recall_thin),
        ),
        (
            "skeleton recall, thick vessels %",
            pct(t.skeleton_recall_thick),
        ),
        (
            "vessel components β0 (predicted / true)",
            format!("{} / {}", c.pred_components, c.truth_components),
        ),
        (
            "mean |β0 error| per image",
            format!("{:.2}", t.betti0_error),
        ),
        (
            "loops β1 (predicted / true)",
            format!("{} / {}", c.pred_holes, c.truth_holes),
        ),
        (
            "mean |β1 error| per image",
            format!("{:.2}", t.betti1_error),
        ),
    ] {
        let _ = writeln!(out, "<tr><th class=l>{name}</th><td>{value}</td></tr>");
    }
    out.push_str("</table>\n");
}

fn image_row(out: &mut String, img: &ImageReport, overlay: Option<&(u32, String, String)>) {
    let name = img
        .image_file
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let (thin, thick) = img.widths.as_ref().map_or(("–".into(), "–".into()), |w| {
        (pct(w.thin.metrics.f1), pct(w.thick.metrics.f1))
    });
    let thumb = overlay.map_or(String::new(), |(_, full, thumb)| {
        format!(
            "<a href=\"{}\"><img src=\"{}\" alt=\"overlay of image {}\"></a>",
            escape(full),
            escape(thumb),
            img.id
        )
    });
    let m = &img.fov.metrics;
    let (cldice, betti0) = img.topology.as_ref().map_or(("–".into(), "–".into()), |t| {
        (
            pct(t.cldice),
            format!(
                "{} / {}",
                t.counts.pred_components, t.counts.truth_components
            ),
        )
    });
    let _ = writeln!(
        out,
        "<tr><td>{}</td><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        img.id,
        escape(&name),
        pct(m.f1),
        pct(m.sensitivity),
        pct(m.precision),
        frac(img.fov.auc),
        thin,
        thick,
        cldice,
        betti0,
        thumb
    );
}

/// The whole page.
pub fn render(report: &EvaluationReport, files: &PageFiles) -> String {
    let mut out = String::new();
    let title = format!("Vessel segmentation: {} split", report.split);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{t}</title>\
         <style>{STYLE}</style></head><body>\n<h1>{t}</h1>\n<table class=meta>\n",
        t = escape(&title)
    );
    let best = report.best_f1_threshold.map_or("–".into(), |b| {
        format!("{:.3} (F1 {:.2} %)", b.probability, 100.0 * b.f1)
    });
    for (k, v) in [
        ("Data", report.data.display().to_string()),
        (
            "Dataset",
            report.dataset.clone().unwrap_or_else(|| "–".into()),
        ),
        ("Predictions", report.predictions.display().to_string()),
        ("Images", report.images.len().to_string()),
        (
            "Predictions were",
            if report.probabilities {
                "probability maps"
            } else {
                "binary masks"
            }
            .into(),
        ),
        ("Threshold", report.threshold_text()),
        (
            "AUC and average precision from",
            match (report.probabilities, report.fov.auc_resolution) {
                (false, _) => "– (binary masks)".into(),
                (true, Some(Resolution::Exact)) => "the float probabilities (exact)".into(),
                (true, r) => format!(
                    "{} probability levels (ties within a level move the AUC by at most {:.4})",
                    r.unwrap_or(Resolution::Levels8).name(),
                    report.fov.auc_tie_bound.unwrap_or(0.0)
                ),
            },
        ),
        ("This split's best-F1 threshold", best),
    ] {
        let _ = writeln!(out, "<tr><th class=l>{k}</th><td>{}</td></tr>", escape(&v));
    }
    out.push_str("</table>\n<h2>Metrics over all pixels of the split</h2>\n<table>\n");
    out.push_str(
        "<tr><th></th><th>inside the FOV (DRIVE protocol)</th><th>whole image</th></tr>\n",
    );
    metrics_rows(&mut out, &report.fov, &report.image);
    out.push_str("</table>\n");
    if let Some(w) = &report.widths {
        out.push_str(
            "<h2>Thin and thick vessels (inside the FOV)</h2>\n<p>Vessel width from the ground \
             truth's distance transform; background pixels go with their nearest vessel.</p>\n\
             <table>\n<tr><th></th><th>F1 %</th><th>Sensitivity %</th><th>Precision %</th>\
             <th>vessel pixels</th></tr>\n",
        );
        width_rows(&mut out, w);
        out.push_str("</table>\n");
    }
    if let Some(t) = &report.topology {
        topology_table(&mut out, t);
    }
    if files.curves {
        out.push_str(
            "<h2>Curves (all FOV pixels of the split, every threshold)</h2>\n<div class=curves>\
             <img src=\"roc.png\" alt=\"ROC curve\"><img src=\"pr.png\" alt=\"precision-recall \
             curve\"><img src=\"f1-threshold.png\" alt=\"F1 against threshold\"></div>\n",
        );
    }
    out.push_str(
        "<h2>Images, worst F1 first</h2>\n<p class=key>Overlay at the threshold: \
         <span style=\"background:#00e600\"></span>vessel found \
         <span style=\"background:#ff2828\"></span>false positive \
         <span style=\"background:#2878ff\"></span>missed vessel</p>\n<table>\n\
         <tr><th>id</th><th class=l>image</th><th>F1 %</th><th>Sens %</th><th>Prec %</th>\
         <th>AUC</th><th>thin F1 %</th><th>thick F1 %</th><th>clDice %</th>\
         <th>components (pred / true)</th><th>overlay</th></tr>\n",
    );
    let mut images: Vec<&ImageReport> = report.images.iter().collect();
    images.sort_by(|a, b| {
        let f1 = |i: &ImageReport| i.fov.metrics.f1.unwrap_or(f64::INFINITY);
        f1(a).total_cmp(&f1(b)).then(a.id.cmp(&b.id))
    });
    for img in images {
        let overlay = files.overlays.iter().find(|(id, _, _)| *id == img.id);
        image_row(&mut out, img, overlay);
    }
    out.push_str("</table>\n</body></html>\n");
    out
}
