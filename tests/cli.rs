//! The `retina-seg` command line end to end: synth → check-data → train → predict → evaluate →
//! compare, for both architectures.

mod common;

use common::{evaluate_pred, ok, predict, read_json, run, synth, text, train_tiny};

#[test]
fn synth_check_train_predict_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth(
        d,
        &[
            "--layout", "drive", "--count", "6", "--width", "80", "--height", "84",
        ],
    );
    // DRIVE's own naming: training ids from 21, two digits everywhere.
    for f in [
        "training/images/21_training.tif",
        "training/1st_manual/21_manual1.gif",
        "training/mask/21_training_mask.gif",
        "test/images/01_test.tif",
        "test/1st_manual/01_manual1.gif",
    ] {
        assert!(d.join("data").join(f).is_file(), "{f}");
    }

    let out = ok(&run(&["check-data", "--data", "data", "--holdout", "1"], d));
    assert!(out.contains("drive layout"), "{out}");
    assert!(out.contains("train    2 images"), "{out}");
    assert!(out.contains("80×84"), "{out}");

    // The run log: each epoch's summary once (not also echoed by the logger).
    let out = ok(&train_tiny(d, "32", &["--holdout", "1"]));
    assert_eq!(out.matches("epoch 1/1: train loss").count(), 1, "{out}");
    for f in [
        "checkpoints/best-iou/meta.json",
        "checkpoints/last/optim.mpk",
        "metrics.csv",
        "loss.png",
        "overlays/epoch-001.png",
        // The best checkpoint's report on the validation split.
        "evaluation-valid.json",
        "evaluation-valid/report.html",
        "evaluation-valid/roc.png",
    ] {
        assert!(d.join("run").join(f).is_file(), "{f}");
    }
    assert!(out.contains("evaluation-valid/report.html"), "{out}");

    ok(&run(&predict("run", "data/test/images", "pred", &[]), d));
    for stem in ["01_test", "02_test", "03_test"] {
        for kind in ["mask", "prob", "overlay"] {
            let img = image::open(d.join(format!("pred/{stem}_{kind}.png"))).unwrap();
            assert_eq!((img.width(), img.height()), (80, 84));
        }
    }

    let out = ok(&run(
        &evaluate_pred(&["--split", "test", "--out", "eval/report.json"]),
        d,
    ));
    assert!(
        out.contains("inside the FOV (DRIVE protocol)") && out.contains("whole image"),
        "{out}"
    );
    let report: serde_json::Value = read_json(&d.join("eval/report.json"));
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(d.join("eval/report.csv").is_file());
    assert!(d.join("eval/report/report.html").is_file());
    assert_eq!(report["threshold"], 128);
    assert!(report["threshold_from"].is_null());

    // `--threshold-from`: the validation report's best-F1 level, recorded in the test report.
    let valid: serde_json::Value = read_json(&d.join("run/evaluation-valid.json"));
    // The training run scored float probabilities, so its best threshold is a probability (at
    // 16-bit resolution); the test split's 8-bit maps apply it as the first level at or above it.
    let best = valid["best_f1_threshold"]["probability"]
        .as_f64()
        .expect("a best threshold");
    let best_level = (255.0 * best + 0.5).ceil() as u64;
    let out = ok(&run(
        &evaluate_pred(&[
            "--split",
            "test",
            "--threshold-from",
            "run/evaluation-valid.json",
            "--out",
            "eval/from-valid.json",
            "--no-report",
        ]),
        d,
    ));
    assert!(out.contains("run/evaluation-valid.json"), "{out}");
    let from: serde_json::Value = read_json(&d.join("eval/from-valid.json"));
    assert_eq!(from["threshold_probability"].as_f64(), Some(best));
    assert_eq!(from["threshold"].as_u64(), Some(best_level));
    assert_eq!(from["threshold_from"], "run/evaluation-valid.json");
    assert!(
        !d.join("eval/from-valid").exists(),
        "--no-report writes no page"
    );
    // Not both ways of choosing, and not the test split's own evaluation.
    let both = run(
        &evaluate_pred(&[
            "--threshold",
            "0.3",
            "--threshold-from",
            "run/evaluation-valid.json",
        ]),
        d,
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    let own = run(
        &evaluate_pred(&["--split", "test", "--threshold-from", "eval/report.json"]),
        d,
    );
    assert!(!own.status.success());
    assert!(text(&own).contains("eval/report.json"), "{}", text(&own));

    // `compare`: the run (its metrics.csv and validation report) against the test evaluation.
    let out = ok(&run(
        &["compare", "run", "eval/report.json", "--out", "cmp"],
        d,
    ));
    for row in [
        "FOV F1 (Dice) %",
        "FOV ROC AUC",
        "thin vessels F1 %",
        "best valid vessel IoU",
    ] {
        assert!(out.contains(row), "{row}: {out}");
    }
    assert!(out.contains("Δ report"), "{out}");
    for f in [
        "compare.html",
        "compare.csv",
        "roc.png",
        "pr.png",
        "training-loss.png",
    ] {
        assert!(d.join("cmp").join(f).is_file(), "{f}");
    }
    let lone = run(&["compare", "run"], d);
    assert_eq!(lone.status.code(), Some(2), "{}", text(&lone));

    // `--fov-only`: the DRIVE-protocol table alone.
    let out = ok(&run(
        &evaluate_pred(&["--out", "eval/r2.json", "--fov-only"]),
        d,
    ));
    assert!(
        out.contains("inside the FOV") && !out.contains("whole image"),
        "{out}"
    );

    // A bad input file: reported, the others still written, non-zero exit.
    std::fs::write(d.join("data/test/images/09_test.tif"), b"II*\0broken").unwrap();
    let o = run(&predict("run", "data/test/images", "pred2", &[]), d);
    assert!(!o.status.success());
    assert!(text(&o).contains("09_test.tif"), "{}", text(&o));
    assert!(d.join("pred2/01_test_mask.png").is_file());
}

/// `evaluate --checkpoint` predicts into the run folder (not the current directory) with the
/// dataset's FOV masks, the ones it scores with.
#[test]
fn evaluate_with_a_checkpoint_predicts_beside_the_run_with_the_dataset_fov() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth(
        d,
        &[
            "--layout", "drive", "--count", "6", "--width", "64", "--height", "64",
        ],
    );
    ok(&train_tiny(d, "32", &["--holdout", "1"]));
    // A FOV mask that keeps only the left half: a derived FOV would cover the whole retina.
    let fov_path = d.join("data/test/mask/01_test_mask.gif");
    let mut fov = image::open(&fov_path).unwrap().to_luma8();
    for (x, _, p) in fov.enumerate_pixels_mut() {
        if x >= 32 {
            p.0[0] = 0;
        }
    }
    drive_data::write::write_mask(&fov_path, &fov, image::ImageFormat::Gif).unwrap();

    let cwd = d.join("elsewhere");
    std::fs::create_dir(&cwd).unwrap();
    let out = ok(&run(
        &[
            "evaluate",
            "--checkpoint",
            "../run",
            "--data",
            "../data",
            "--split",
            "test",
            "--device",
            "cpu",
            "--threshold",
            "0.0",
        ],
        &cwd,
    ));
    assert!(out.contains("inside the FOV"), "{out}");
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing in the cwd"
    );
    assert!(d.join("run/evaluation-test.json").is_file());
    // With threshold 0 every pixel inside the FOV is vessel: the written mask is the FOV used,
    // which must be the dataset's (half) mask, not one derived from the image.
    let mask = image::open(d.join("run/predictions-test/01_test_mask.png"))
        .unwrap()
        .to_luma8();
    assert_eq!(mask.dimensions(), fov.dimensions());
    for (x, y, p) in mask.enumerate_pixels() {
        assert_eq!(
            p.0[0] != 0,
            fov.get_pixel(x, y).0[0] != 0,
            "pixel ({x}, {y})"
        );
    }
    assert!(fov.pixels().any(|p| p.0[0] != 0), "the FOV is not empty");
}

/// `--arch deeplabv3plus` end to end: train (ResNet-50 DeepLabV3+ at 32×32) → predict → evaluate.
/// `predict` and `evaluate` need no architecture flag: the checkpoint records it. Input sizes
/// that are not multiples of the output stride are refused, naming the flag.
#[test]
fn deeplabv3plus_trains_predicts_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth(
        d,
        &[
            "--layout", "drive", "--count", "6", "--width", "80", "--height", "84",
        ],
    );
    ok(&train_tiny(
        d,
        "32",
        &["--holdout", "1", "--arch", "deeplabv3plus"],
    ));
    let meta: serde_json::Value = read_json(&d.join("run/checkpoints/last/meta.json"));
    assert_eq!(meta["model"]["arch"], "deeplabv3plus", "{meta}");
    let predict = |extra: &[&str]| run(&predict("run", "data/test/images", "pred", extra), d);
    let out = ok(&predict(&[]));
    assert!(
        out.contains("DeepLabV3+ ResNet-50, output stride 16"),
        "{out}"
    );
    for stem in ["01_test", "02_test", "03_test"] {
        let img = image::open(d.join(format!("pred/{stem}_prob.png"))).unwrap();
        assert_eq!((img.width(), img.height()), (80, 84));
    }
    ok(&run(&evaluate_pred(&["--split", "test"]), d));
    std::fs::remove_dir_all(d.join("pred")).unwrap();
    let o = predict(&["--imgsz", "40"]);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("--imgsz 40") && out.contains("multiple of 16"),
        "{out}"
    );
    assert!(!d.join("pred").exists(), "nothing written");
    let o = run(
        &[
            "train",
            "--arch",
            "deeplabv3plus",
            "--imgsz",
            "40",
            "--print-config",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("multiple of 16"), "{}", text(&o));
}

/// Both topology-aware losses train end to end (Skeleton Recall's tubes made by the data
/// loader's workers, clDice's soft skeletons on the model's output), inside the FOV, and the run
/// records the loss it used.
#[test]
fn topology_losses_train_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    synth(d, &["--count", "4", "--width", "64", "--height", "64"]);
    for loss in ["skeleton-recall", "cldice"] {
        let out = ok(&train_tiny(
            d,
            "32",
            &[
                "--holdout",
                "1",
                "--loss",
                loss,
                "--dice-weight",
                "1",
                "--fov-loss",
                "--report",
                "false",
            ],
        ));
        assert!(out.contains("epoch 1/1: train loss"), "{out}");
        let meta = read_json(&d.join("run/checkpoints/last/meta.json"));
        let recorded = meta.to_string();
        assert!(
            recorded.contains(&format!("\"topology\":\"{loss}\"")),
            "{recorded}"
        );
        let csv = std::fs::read_to_string(d.join("run/metrics.csv")).unwrap();
        assert!(!csv.contains("NaN") && !csv.contains("inf"), "{csv}");
        std::fs::remove_dir_all(d.join("run")).unwrap();
    }
}
