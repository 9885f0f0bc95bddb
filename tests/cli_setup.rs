//! The `retina-seg` command line before any training: synthetic data, data checks, choices and
//! devices, and its failure modes (non-zero exit, a message naming the file or the fix).

mod common;

use std::path::Path;

use common::{ok, run, run_env, synth, text, train_args};

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
    let train_synthetic = |n: &str, seed: &str| {
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
    let out = ok(&train_synthetic("5", "1"));
    assert!(
        out.contains("generating 5 synthetic retinas (seed 1)"),
        "{out}"
    );
    assert_eq!(count_images(d), 5);
    let image = d.join("run/synthetic-data/train_images/21_training.png");
    let first = std::fs::read(&image).unwrap();
    let out = ok(&train_synthetic("5", "1"));
    assert!(out.contains("using the 5 synthetic retinas"), "{out}");
    let out = ok(&train_synthetic("6", "1"));
    assert!(out.contains("generating 6"), "{out}");
    assert_eq!(count_images(d), 6);
    ok(&train_synthetic("6", "2"));
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
    synth(d, &["--layout", "drive", "--count", "4"]);
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
    synth(d, &["--count", "5", "--width", "40", "--height", "44"]);
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
    synth(d, &["--count", "5", "--width", "40", "--height", "44"]);
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
    synth(d, &["--count", "5", "--width", "40", "--height", "44"]);
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
