//! The `retina-seg` command line end to end: synth → check-data → train → predict → evaluate, and
//! its failure modes (non-zero exit, a message naming the file or the fix).

mod common;

use std::path::Path;

use common::{ok, run, run_env, text, train_args, train_tiny};

/// `evaluate` of the predictions in `pred` against `data`, then `extra`.
fn evaluate_pred<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["evaluate", "--predictions", "pred", "--data", "data"];
    args.extend_from_slice(extra);
    args
}

#[test]
fn synth_check_train_predict_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--layout", "drive", "--count", "6", "--width", "80",
            "--height", "84",
        ],
        d,
    ));
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

    ok(&run(
        &[
            "predict",
            "--checkpoint",
            "run",
            "--input",
            "data/test/images",
            "--out",
            "pred",
            "--device",
            "cpu",
        ],
        d,
    ));
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
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(d.join("eval/report.csv").is_file());
    assert!(d.join("eval/report/report.html").is_file());
    assert_eq!(report["threshold"], 128);
    assert!(report["threshold_from"].is_null());

    // `--threshold-from`: the validation report's best-F1 level, recorded in the test report.
    let valid: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("run/evaluation-valid.json")).unwrap(),
    )
    .unwrap();
    let best = valid["best_f1_threshold"]["level"]
        .as_u64()
        .expect("a best level");
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
    let from: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/from-valid.json")).unwrap())
            .unwrap();
    assert_eq!(from["threshold"].as_u64(), Some(best));
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
    let o = run(
        &[
            "predict",
            "--checkpoint",
            "run",
            "--input",
            "data/test/images",
            "--out",
            "pred2",
            "--device",
            "cpu",
        ],
        d,
    );
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
    ok(&run(
        &[
            "synth", "--out", "data", "--layout", "drive", "--count", "6", "--width", "64",
            "--height", "64",
        ],
        d,
    ));
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

#[test]
fn synthetic_data_follows_count_and_seed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let count_images = |d: &Path| {
        ["train_images", "valid_images", "test_images"]
            .iter()
            .map(|s| {
                std::fs::read_dir(d.join("run/synthetic-data").join(s))
                    .unwrap()
                    .count()
            })
            .sum::<usize>()
    };
    let synth = |n: &str, seed: &str| {
        let source = [
            "--weights",
            "none",
            "--synthetic",
            n,
            "--seed",
            seed,
            "--device",
            "cpu",
        ];
        run(&train_args(&source, "32", &[]), d)
    };
    let out = ok(&synth("5", "1"));
    assert!(
        out.contains("generating 5 synthetic retinas (seed 1)"),
        "{out}"
    );
    assert_eq!(count_images(d), 5);
    let image = d.join("run/synthetic-data/train_images/21_training.png");
    let first = std::fs::read(&image).unwrap();
    let out = ok(&synth("5", "1"));
    assert!(out.contains("using the 5 synthetic retinas"), "{out}");
    let out = ok(&synth("6", "1"));
    assert!(out.contains("generating 6"), "{out}");
    assert_eq!(count_images(d), 6);
    ok(&synth("6", "2"));
    assert_ne!(
        std::fs::read(&image).unwrap(),
        first,
        "another seed, other images"
    );
}

#[test]
fn a_small_drive_set_is_valid_data() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--layout", "drive", "--count", "4",
        ],
        d,
    ));
    let out = ok(&run(&["check-data", "--data", "data"], d));
    assert!(
        out.contains("warning") && out.contains("--holdout 1"),
        "{out}"
    );
    // Training with the default hold-out is the error, naming the fix.
    let o = run(
        &[
            "train",
            "--data",
            "data",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--weights",
            "none",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("hold-out"), "{}", text(&o));
}

#[test]
fn choices_are_listed_and_typos_suggest_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = ok(&run(&["train", "--help"], d));
    for value in [
        "r50-512",
        "r101-640",
        "multistep",
        "poly",
        "recipe",
        "strong",
        "imagenet",
        "cuda",
    ] {
        assert!(help.contains(value), "--help lists {value}");
    }
    for (args, suggestion) in [
        (vec!["train", "--device", "cdua"], "cuda"),
        (vec!["train", "--scheduler", "multstep"], "multistep"),
        (vec!["train", "--augment", "strog"], "strong"),
        (vec!["train", "--preset", "r50-521"], "r50-512"),
        (vec!["synth", "--out", "x", "--layout", "kagle"], "kaggle"),
        (
            vec![
                "predict",
                "--checkpoint",
                "x",
                "--input",
                "x",
                "--out",
                "x",
                "--backbone",
                "r500",
            ],
            "r50",
        ),
        (
            vec!["train", "--arch", "deeplabv3pls", "--print-config"],
            "deeplabv3plus",
        ),
    ] {
        let o = run(&args, d);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let out = text(&o);
        assert!(out.contains(&format!("'{suggestion}'")), "{args:?}: {out}");
    }
}

#[test]
fn missing_data_suggests_a_run_that_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["train", "--epochs", "1"], dir.path());
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("DRIVE") && out.contains("cargo run --release -- train"),
        "{out}"
    );
    assert!(out.contains("--synthetic"), "{out}");
}

#[test]
fn bad_data_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--count", "5", "--width", "40", "--height", "44",
        ],
        d,
    ));
    let mask = std::fs::read_dir(d.join("data/train_masks"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&mask, b"").unwrap();
    let o = run(&["check-data", "--data", "data"], d);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&mask.file_name().unwrap().to_string_lossy().to_string()),
        "{}",
        text(&o)
    );
}

/// `--device cuda` on a CUDA that cannot be used fails saying why, and `auto` falls back to the CPU
/// with one note saying why; no raw panic reaches the user. Deterministic on every machine:
/// `CUDA_VISIBLE_DEVICES=""` hides every GPU from a binary built with CUDA (whether or not the
/// machine has one), and a binary built without it says so. (The explanations of a missing
/// driver or toolkit are unit tests of `seg_train::device`.)
#[test]
fn unusable_cuda_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--count", "5", "--width", "40", "--height", "44",
        ],
        d,
    ));
    let env = [("CUDA_VISIBLE_DEVICES", "")];
    let reason = if cfg!(feature = "cuda") {
        "CUDA_VISIBLE_DEVICES=\"\" hides every GPU"
    } else {
        "built without the `cuda` feature"
    };
    let o = run_env(
        &train_args(
            &["--weights", "none", "--data", "data", "--device", "cuda"],
            "32",
            &[],
        ),
        d,
        &env,
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("cuda:0 cannot be used") && out.contains(reason),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
    assert!(!d.join("run/checkpoints").exists(), "nothing trained");
    // `auto` goes on without a GPU, saying why (wgpu finds no hardware adapter here either).
    let o = run_env(
        &train_args(&["--weights", "none", "--data", "data"], "32", &[]),
        d,
        &env,
    );
    let out = ok(&o);
    assert!(
        out.contains("CUDA not available") && out.contains(reason),
        "{out}"
    );
    assert!(!out.contains("panicked"), "{out}");
}

/// The presets start from COCO weights found by name in the torch hub cache (`$TORCH_HOME`),
/// without any network access when the file is there.
#[test]
fn named_weights_come_from_the_torch_hub_cache() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--count", "5", "--width", "40", "--height", "44",
        ],
        d,
    ));
    let cache = d.join("torch/hub/checkpoints");
    std::fs::create_dir_all(&cache).unwrap();
    // Any torchvision state_dict under the COCO name: here the tiny test model, which does not fit
    // ResNet-50, so loading it fails naming the cached file.
    let cached = cache.join("deeplabv3_resnet50_coco-cd0a2569.pth");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("crates/deeplab/tests/fixtures/tiny_deeplabv3.pth"),
        &cached,
    )
    .unwrap();
    let torch_home = d.join("torch");
    let env = [
        ("TORCH_HOME", torch_home.to_str().unwrap()),
        ("RETINA_SEG_WEIGHTS_URL", "http://127.0.0.1:9/models/"),
    ];
    let o = run_env(
        &train_args(&["--data", "data", "--device", "cpu"], "32", &[]),
        d,
        &env,
    );
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains(&cached.display().to_string()), "{out}");
    assert!(
        !out.contains("cannot download"),
        "no download attempted: {out}"
    );
}

/// `--arch deeplabv3plus` end to end: train (ResNet-50 DeepLabV3+ at 32×32) → predict → evaluate.
/// `predict` and `evaluate` need no architecture flag: the checkpoint records it. Input sizes
/// that are not multiples of the output stride are refused, naming the flag.
#[test]
fn deeplabv3plus_trains_predicts_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--layout", "drive", "--count", "6", "--width", "80",
            "--height", "84",
        ],
        d,
    ));
    ok(&train_tiny(
        d,
        "32",
        &["--holdout", "1", "--arch", "deeplabv3plus"],
    ));
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("run/checkpoints/last/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["model"]["arch"], "deeplabv3plus", "{meta}");
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            "--checkpoint",
            "run",
            "--input",
            "data/test/images",
            "--out",
            "pred",
            "--device",
            "cpu",
        ];
        args.extend_from_slice(extra);
        run(&args, d)
    };
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
