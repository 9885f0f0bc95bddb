//! The `retina-seg` command line end to end: synth → check-data → train → predict → evaluate, and
//! its failure modes (non-zero exit, a message naming the file).

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retina-seg"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn synth_check_train_predict_evaluate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(
        &[
            "synth", "--out", "data", "--layout", "drive", "--count", "6", "--width", "80",
            "--height", "84",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(d.join("data/training/images/4_training.tif").is_file());

    let o = run(&["check-data", "--data", "data", "--holdout", "1"], d);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("drive layout"), "{out}");
    assert!(out.contains("train    2 images"), "{out}");
    assert!(out.contains("80×84"), "{out}");

    let o = run(
        &[
            "train",
            "--data",
            "data",
            "--holdout",
            "1",
            "--imgsz",
            "32",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--workers",
            "0",
            "--out",
            "run",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "checkpoints/best-iou/meta.json",
        "checkpoints/last/optim.mpk",
        "metrics.csv",
        "loss.png",
        "overlays/epoch-001.png",
    ] {
        assert!(d.join("run").join(f).is_file(), "{f}");
    }

    let o = run(
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
    );
    assert!(o.status.success(), "{}", text(&o));
    for stem in ["01_test", "02_test", "03_test"] {
        for kind in ["mask", "prob", "overlay"] {
            let img = image::open(d.join(format!("pred/{stem}_{kind}.png"))).unwrap();
            assert_eq!((img.width(), img.height()), (80, 84));
        }
    }

    let o = run(
        &[
            "evaluate",
            "--predictions",
            "pred",
            "--data",
            "data",
            "--split",
            "test",
            "--out",
            "eval/report.json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("inside the FOV (DRIVE protocol)") && out.contains("whole image"),
        "{out}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("eval/report.json")).unwrap())
            .unwrap();
    assert_eq!(report["images"].as_array().unwrap().len(), 3);
    assert!(d.join("eval/report.csv").is_file());

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

#[test]
fn bad_data_and_missing_data_fail_with_a_useful_message() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let o = run(
        &[
            "synth", "--out", "data", "--count", "5", "--width", "40", "--height", "44",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
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

    let o = run(&["train", "--epochs", "1"], d);
    assert!(!o.status.success());
    let out = text(&o);
    assert!(
        out.contains("--synthetic") && out.contains("DRIVE"),
        "{out}"
    );

    let o = run(&["train", "--preset", "r18-256"], d);
    assert!(!o.status.success());
    assert!(text(&o).contains("r50-512"), "{}", text(&o));
}
