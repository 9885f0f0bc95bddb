//! The evaluation's threshold-free scores and its report against computations written here:
//! probability maps made up for a synthetic split, scored by `evaluate`, checked against ROC,
//! precision–recall, AUC, average precision and the best-F1 threshold computed from the sorted
//! FOV pixels (scikit-learn's definitions); `threshold_from` takes the validation optimum; the
//! report folder holds its page, curves and overlays.

use std::path::{Path, PathBuf};

use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Split, SynthConfig};
use seg_train::evaluate::{evaluate, threshold_from};
use seg_train::report::{report_dir, write_report};

/// A pseudo-random level per pixel: vessels 70..=255, background 0..=169 (overlapping, so the
/// curves are not trivial), from a hash of (image, pixel).
fn made_up_level(id: u32, pixel: usize, vessel: bool) -> u8 {
    let mut h = (id as u64) << 32 | pixel as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51afd7ed558ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    if vessel {
        70 + (h % 186) as u8
    } else {
        (h % 170) as u8
    }
}

/// A synthetic Kaggle-layout set and made-up probability maps of `split` in `<dir>/pred-<split>`.
fn setup(dir: &Path, split: Split) -> (DatasetDir, PathBuf) {
    let data_dir = dir.join("data");
    if !data_dir.exists() {
        let synth = SynthConfig {
            width: 70,
            height: 66,
            ..SynthConfig::default()
        };
        write_synthetic(&data_dir, Layout::Kaggle, 8, 5, &synth).unwrap();
    }
    let data = DatasetDir::open(&data_dir).unwrap();
    let pred = dir.join(format!("pred-{split}"));
    std::fs::create_dir_all(&pred).unwrap();
    for s in data.load(split).unwrap() {
        let truth = s.vessels.as_ref().unwrap();
        let (w, h) = truth.dimensions();
        let levels: Vec<u8> = truth
            .iter()
            .enumerate()
            .map(|(i, &t)| made_up_level(s.id, i, t != 0))
            .collect();
        image::GrayImage::from_raw(w, h, levels)
            .unwrap()
            .save(prob_path(pred.as_path(), &s))
            .unwrap();
    }
    (data, pred)
}

/// `<pred>/<image stem>_prob.png`.
fn prob_path(pred: &Path, sample: &drive_data::Sample) -> PathBuf {
    let stem = sample.image_path.file_stem().unwrap().to_string_lossy();
    pred.join(format!("{stem}_prob.png"))
}

/// (level, vessel) of every FOV pixel of the split, read back from the written maps.
fn fov_pixels(data: &DatasetDir, split: Split, pred: &Path) -> Vec<(u8, bool)> {
    let mut out = Vec::new();
    for s in data.load(split).unwrap() {
        let p = image::open(prob_path(pred, &s)).unwrap().to_luma8();
        let truth = s.vessels.as_ref().unwrap();
        for ((&level, &t), &f) in p.iter().zip(truth.iter()).zip(s.fov.iter()) {
            if f != 0 {
                out.push((level, t != 0));
            }
        }
    }
    out
}

/// scikit-learn's curves from scores sorted in decreasing order: cumulative (tp, fp) at each
/// distinct score.
fn cumulative_counts(pixels: &[(u8, bool)]) -> Vec<(f64, f64)> {
    let mut sorted = pixels.to_vec();
    sorted.sort_by_key(|p| std::cmp::Reverse(p.0));
    let mut out = Vec::new();
    let (mut tp, mut fp) = (0f64, 0f64);
    for (i, &(score, vessel)) in sorted.iter().enumerate() {
        if vessel {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        if sorted.get(i + 1).is_none_or(|next| next.0 != score) {
            out.push((tp, fp));
        }
    }
    out
}

fn assert_points(got: &[(f64, f64)], want: &[(f64, f64)], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: number of points");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g.0 - w.0).abs() < 1e-12 && (g.1 - w.1).abs() < 1e-12,
            "{what} point {k}: {g:?} vs {w:?}"
        );
    }
}

#[test]
fn curves_and_areas_match_the_sorted_scores() {
    let dir = tempfile::tempdir().unwrap();
    let (data, pred) = setup(dir.path(), Split::Test);
    let report = evaluate(&pred, &data, Split::Test, 0.5).unwrap();
    let levels = report
        .fov_levels
        .as_ref()
        .expect("probability maps give level counts");

    let pixels = fov_pixels(&data, Split::Test, &pred);
    let positives = pixels.iter().filter(|p| p.1).count() as f64;
    let negatives = pixels.len() as f64 - positives;
    let counts = cumulative_counts(&pixels);
    assert!(
        counts.len() > 200,
        "a non-trivial curve: {} distinct scores",
        counts.len()
    );

    // ROC: (0, 0), then (fp/N, tp/P) at each distinct score; AUC by the trapezoid rule.
    let mut roc = vec![(0.0, 0.0)];
    roc.extend(
        counts
            .iter()
            .map(|&(tp, fp)| (fp / negatives, tp / positives)),
    );
    assert_points(&levels.roc_points(), &roc, "ROC");
    let auc: f64 = roc
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[1].1 + w[0].1) / 2.0)
        .sum();
    assert!(
        (report.fov.auc.unwrap() - auc).abs() < 1e-12,
        "{:?} vs {auc}",
        report.fov.auc
    );

    // PR: (recall 0, precision 1), then (tp/P, tp/(tp+fp)); AP = Σ (Rₙ − Rₙ₋₁) Pₙ.
    let mut pr = vec![(0.0, 1.0)];
    pr.extend(
        counts
            .iter()
            .map(|&(tp, fp)| (tp / positives, tp / (tp + fp))),
    );
    assert_points(&levels.pr_points(), &pr, "PR");
    let ap: f64 = pr.windows(2).map(|w| (w[1].0 - w[0].0) * w[1].1).sum();
    let got = report.fov.average_precision.unwrap();
    assert!((got - ap).abs() < 1e-12, "AP {got} vs {ap}");
    assert!(ap > 0.3 && ap < 0.99, "the made-up maps overlap: AP {ap}");

    // The best F1 over thresholds 1..=255, counted pixel by pixel; lowest level on ties.
    let (mut best_level, mut best_f1) = (0u8, -1.0);
    for level in 1..=255u8 {
        let tp = pixels.iter().filter(|p| p.1 && p.0 >= level).count() as f64;
        let fp = pixels.iter().filter(|p| !p.1 && p.0 >= level).count() as f64;
        let f1 = 2.0 * tp / (tp + positives + fp);
        if f1 > best_f1 {
            (best_level, best_f1) = (level, f1);
        }
    }
    let best = report.best_f1_threshold.unwrap();
    assert_eq!(best.level, best_level as u32);
    assert!((best.f1 - best_f1).abs() < 1e-12);
    assert!((best.probability - (best_level as f64 - 0.5) / 255.0).abs() < 1e-15);

    // Thin and thick vessels partition the FOV's vessel pixels and its predictions.
    let w = report.widths.unwrap();
    let (thin, thick) = (w.thin.confusion, w.thick.confusion);
    assert_eq!(thin.tp + thin.fn_ + thick.tp + thick.fn_, positives as u64);
    assert_eq!(thin.tp + thick.tp, report.fov.confusion.tp);
    assert_eq!(thin.fp + thick.fp, report.fov.confusion.fp);
    assert!(thin.tp + thin.fn_ > 0 && thick.tp + thick.fn_ > 0, "{w:?}");
}

#[test]
fn the_threshold_comes_from_the_validation_optimum_and_the_report_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let (data, valid_pred) = setup(dir.path(), Split::Valid);
    let (_, test_pred) = setup(dir.path(), Split::Test);
    let valid = evaluate(&valid_pred, &data, Split::Valid, 0.5).unwrap();
    let valid_json = dir.path().join("evaluation-valid.json");
    valid.write(&valid_json).unwrap();

    // The validation optimum, counted here.
    let pixels = fov_pixels(&data, Split::Valid, &valid_pred);
    let positives = pixels.iter().filter(|p| p.1).count();
    let f1_at = |level: u8| {
        let tp = pixels.iter().filter(|p| p.1 && p.0 >= level).count();
        let fp = pixels.iter().filter(|p| !p.1 && p.0 >= level).count();
        2.0 * tp as f64 / (tp + positives + fp) as f64
    };
    let optimum = (1..=255u8)
        .max_by(|&a, &b| f1_at(a).total_cmp(&f1_at(b)).then(b.cmp(&a)))
        .unwrap();
    assert_ne!(
        optimum, 128,
        "the test would not tell the optimum from the default"
    );
    let point = threshold_from(&valid_json, Split::Test).unwrap();
    assert_eq!(point.level, optimum as u32);

    // Applied to the test split: its report records the level and where it came from.
    let mut test = evaluate(&test_pred, &data, Split::Test, point.probability).unwrap();
    test.threshold_from = Some(valid_json.clone());
    let test_json = dir.path().join("evaluation-test.json");
    test.write(&test_json).unwrap();
    let read = seg_train::evaluate::EvaluationReport::read(&test_json).unwrap();
    assert_eq!(read, test);
    assert!(
        test.threshold_text().contains("evaluation-valid.json"),
        "{}",
        test.threshold_text()
    );

    // The test split's own evaluation and binary masks are refused as sources.
    let err = threshold_from(&test_json, Split::Test)
        .unwrap_err()
        .to_string();
    assert!(err.contains("test split"), "{err}");
    let err = threshold_from(&valid_json, Split::Valid)
        .unwrap_err()
        .to_string();
    assert!(err.contains("valid split itself"), "{err}");

    // The page, its curves and one overlay (full size and thumbnail) per image.
    let page = write_report(
        &test,
        &data.load(Split::Test).unwrap(),
        &report_dir(&test_json),
    )
    .unwrap();
    assert_eq!(page, dir.path().join("evaluation-test/report.html"));
    let html = std::fs::read_to_string(&page).unwrap();
    for f in ["roc.png", "pr.png", "f1-threshold.png"] {
        assert!(html.contains(&format!("src=\"{f}\"")), "{f}");
        assert!(page.with_file_name(f).is_file(), "{f}");
    }
    for img in &test.images {
        let full = format!("overlays/{}.png", img.id);
        let thumb = format!("overlays/{}-thumb.png", img.id);
        assert!(html.contains(&format!("<a href=\"{full}\"><img src=\"{thumb}\"")));
        let size = image::image_dimensions(page.with_file_name(&full)).unwrap();
        assert_eq!(size, (70, 66), "full-size overlay");
    }
    // Rows worst F1 first.
    let mut by_f1: Vec<_> = test.images.iter().collect();
    by_f1.sort_by(|a, b| {
        a.fov
            .metrics
            .f1
            .unwrap()
            .total_cmp(&b.fov.metrics.f1.unwrap())
    });
    let positions: Vec<usize> = by_f1
        .iter()
        .map(|i| html.find(&format!("overlays/{}.png", i.id)).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
}

/// The same image's probability map in two shard folders is an error naming both files, not the
/// first one found; a probability map beside its mask is chosen over the mask.
#[test]
fn a_prediction_found_twice_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let map = image::GrayImage::new(4, 4);
    for file in [
        "a/01_test_prob.png",
        "a/01_test_mask.png",
        "b/02_test_prob.png",
    ] {
        let path = dir.path().join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        map.save(&path).unwrap();
    }
    let folders = [dir.path().join("a"), dir.path().join("b")];
    let files =
        seg_train::evaluate::prediction_files_in(&folders, drive_data::Layout::Kaggle).unwrap();
    assert_eq!(files[&1], dir.path().join("a/01_test_prob.png"));
    assert_eq!(files[&2], dir.path().join("b/02_test_prob.png"));

    let again = dir.path().join("b/01_test_prob.png");
    map.save(&again).unwrap();
    let err = seg_train::evaluate::prediction_files_in(&folders, drive_data::Layout::Kaggle)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a/01_test_prob.png") && err.contains("b/01_test_prob.png"),
        "{err}"
    );
}
