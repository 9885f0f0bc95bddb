//! What the command line must never do silently: resume with settings it does not use, export
//! weights PyTorch cannot load, match an image with another image's FOV mask, write into its own
//! input, take another model's outputs as done, or call an incomplete sharded run complete.

mod common;

use std::path::Path;

use common::{ok, predict, run, synth, text, train_tiny};
use image::{GrayImage, Luma, RgbImage};

/// A tiny DeepLabV3 trained on 64×64 synthetic images at 32 into `run`, ImageNet-normalised.
fn tiny_run(d: &Path) {
    synth(d, &["--count", "6", "--width", "64", "--height", "64"]);
    ok(&train_tiny(d, "32", &["--normalization", "imagenet"]));
}

/// The 8-bit probability map `dir/<stem>_prob.png`.
fn prob(d: &Path, dir: &str, stem: &str) -> GrayImage {
    image::open(d.join(dir).join(format!("{stem}_prob.png")))
        .unwrap_or_else(|e| panic!("{dir}/{stem}_prob.png: {e}"))
        .to_luma8()
}

/// `images/` with `count` copies of the first synthetic test image, named by `names`.
fn image_folder(d: &Path, names: &[&str]) {
    let source = std::fs::read_dir(d.join("data/test_images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .expect("a test image");
    let image: RgbImage = image::open(source).unwrap().to_rgb8();
    for name in names {
        let path = d.join("images").join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image.save(path).unwrap();
    }
}

#[test]
fn help_says_what_the_code_does() {
    let d = tempfile::tempdir().unwrap();
    let help = ok(&run(&["train", "--help"], d.path()));
    assert!(help.contains("[preset: 100 (quick: 19)"), "{help}");
    assert!(
        help.contains("[preset: deeplabv3 (quick: deeplabv3plus)]"),
        "{help}"
    );
    let top = ok(&run(&["--help"], d.path()));
    assert!(top.contains("Train DeepLabV3 or DeepLabV3+"), "{top}");
}

/// A resumed run refuses the flags it cannot honour, naming them, and `--print-config` shows
/// the checkpoint's settings with the ones it does honour.
#[test]
fn resume_refuses_what_it_cannot_honour_and_prints_what_it_uses() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_run(d);
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--data", "data", "--out", "run", "--resume"];
        args.extend_from_slice(extra);
        run(&args, d)
    };
    let o = resume(&["--batch", "4", "--class-weights", "none", "--epochs", "2"]);
    assert!(!o.status.success(), "{}", text(&o));
    let message = text(&o);
    assert!(
        message.contains("--batch") && message.contains("--class-weights"),
        "{message}"
    );
    assert!(
        !message.contains("--epochs,"),
        "--epochs is honoured: {message}"
    );

    let o = resume(&["--epochs", "3", "--checkpoint-every", "5", "--print-config"]);
    let config: serde_json::Value = serde_json::from_str(&ok(&o)).expect("JSON settings");
    assert_eq!(config["epochs"], 3, "the flag it honours");
    assert_eq!(config["checkpoint_every_s"], 5, "the flag it honours");
    // The checkpoint's input size (32), not the default preset's (512).
    assert_eq!(config["imgsz"], 32, "{config}");
}

/// `export` writes torchvision's keys, refuses a format of the other architecture, and the file
/// predicts exactly like the checkpoint it came from when read back as a PyTorch state_dict.
#[test]
fn export_round_trips_and_refuses_other_formats() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_run(d);
    let out = ok(&run(
        &[
            "export",
            "--checkpoint",
            "run",
            "--out",
            "model.safetensors",
        ],
        d,
    ));
    assert!(
        out.contains("load_state_dict"),
        "the loading snippet: {out}"
    );
    assert!(out.contains("deeplabv3_resnet50"), "{out}");
    let bytes = std::fs::read(d.join("model.safetensors")).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let names: Vec<String> = file.names().into_iter().map(String::from).collect();
    for key in [
        "backbone.conv1.weight",
        "backbone.bn1.num_batches_tracked",
        "classifier.0.convs.3.0.weight",
        "classifier.4.weight",
        "aux_classifier.4.bias",
    ] {
        assert!(names.iter().any(|n| n == key), "{key} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.starts_with("encoder.")), "SMP keys");

    for format in ["smp", "smp-pretrained"] {
        let o = run(
            &[
                "export",
                "--checkpoint",
                "run",
                "--out",
                "other",
                "--format",
                format,
            ],
            d,
        );
        assert!(!o.status.success(), "--format {format}: {}", text(&o));
        assert!(text(&o).contains("DeepLabV3"), "{}", text(&o));
        assert!(!d.join("other").exists(), "nothing written");
    }
    let o = run(
        &[
            "export",
            "--checkpoint",
            "run",
            "--out",
            "x",
            "--format",
            "onnx",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("torchvision"),
        "the choices: {}",
        text(&o)
    );

    ok(&run(&predict("run", "data/test_images", "ours", &[]), d));
    ok(&run(
        &predict(
            "model.safetensors",
            "data/test_images",
            "theirs",
            &["--normalization", "imagenet", "--imgsz", "32"],
        ),
        d,
    ));
    let mut stems = 0;
    for entry in std::fs::read_dir(d.join("data/test_images")).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        assert_eq!(
            prob(d, "ours", &stem),
            prob(d, "theirs", &stem),
            "{stem}: the exported weights predict like the checkpoint"
        );
        stems += 1;
    }
    assert!(stems > 0);
}

/// Masks are matched by the image's full stem: `2019_001` and `2019_002` (same first digits)
/// each get their own; two candidates for one image are an error naming both.
#[test]
fn fov_masks_match_the_full_stem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_run(d);
    image_folder(d, &["2019_001.png", "2019_002.png"]);
    std::fs::create_dir(d.join("fov")).unwrap();
    // 2019_001: the left half; 2019_002: the right half.
    for (name, left) in [("2019_001_mask.png", true), ("2019_002_mask.png", false)] {
        let mask = GrayImage::from_fn(64, 64, |x, _| Luma([u8::from((x < 32) == left) * 255]));
        mask.save(d.join("fov").join(name)).unwrap();
    }
    let args = ["--fov-masks", "fov", "--threshold", "0.0"];
    ok(&run(&predict("run", "images", "pred", &args), d));
    for (stem, left) in [("2019_001", true), ("2019_002", false)] {
        let mask = image::open(d.join(format!("pred/{stem}_mask.png")))
            .unwrap()
            .to_luma8();
        // Threshold 0: the mask is the FOV that was applied.
        for (x, y, p) in mask.enumerate_pixels() {
            assert_eq!(p.0[0] != 0, (x < 32) == left, "{stem} at ({x}, {y})");
        }
    }

    image::open(d.join("fov/2019_001_mask.png"))
        .unwrap()
        .save(d.join("fov/2019_001_fov.png"))
        .unwrap();
    let o = run(&predict("run", "images", "pred2", &args), d);
    assert!(!o.status.success(), "{}", text(&o));
    let message = text(&o);
    assert!(
        message.contains("2019_001_mask.png") && message.contains("2019_001_fov.png"),
        "{message}"
    );
    assert!(!d.join("pred2/2019_001_mask.png").exists());
}

/// `--out` inside `--input` is refused before anything is written.
#[test]
fn output_inside_the_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_run(d);
    image_folder(d, &["a.png"]);
    let o = run(&predict("run", "images", "images/pred", &[]), d);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("inside"), "{}", text(&o));
    assert!(!d.join("images/pred").exists(), "nothing written");
}

/// A sharded rerun skips only what the same model and settings completed; the coverage check
/// says whether every input was predicted exactly once.
#[test]
fn reruns_redo_other_settings_and_the_check_finds_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    tiny_run(d);
    image_folder(d, &["site-a/001.png", "site-b/001.png", "site-b/002.png"]);
    let shard = ["--shard", "1/1"];
    let statuses = || -> Vec<String> {
        let text = std::fs::read_to_string(d.join("pred/manifest-1-of-1.jsonl")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len() - 3..]
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["status"].to_string())
            .collect()
    };
    ok(&run(&predict("run", "images", "pred", &shard), d));
    assert_eq!(statuses(), ["\"ok\""; 3]);
    ok(&run(&predict("run", "images", "pred", &shard), d));
    assert_eq!(statuses(), ["\"skipped\""; 3], "same model and settings");
    let mut other = shard.to_vec();
    other.extend_from_slice(&["--threshold", "0.3"]);
    ok(&run(&predict("run", "images", "pred", &other), d));
    assert_eq!(statuses(), ["\"ok\""; 3], "another threshold: redone");

    let check = ["check-predictions", "--out", "pred", "--input", "images"];
    assert!(ok(&run(&check, d)).contains("complete"));
    std::fs::remove_file(d.join("pred/site-b/002_mask.png")).unwrap();
    let o = run(&check, d);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("site-b/002.png"), "{}", text(&o));
    assert!(!text(&o).contains("site-a/001.png"), "{}", text(&o));
    let manifest = read_json_lines(&d.join("pred/manifest-1-of-1.jsonl"));
    assert!(manifest.iter().all(|e| e["run"]["model"].is_string()));
}

fn read_json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
