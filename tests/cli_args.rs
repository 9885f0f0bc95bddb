//! The command line's arguments: presets keep every setting no flag overrides, each flag sets its
//! own setting and nothing else, every numeric flag of every command refuses bad values with one
//! line naming the flag (no panic, nothing written), and device names follow one grammar whose
//! suggestions all parse.

mod common;

use std::path::Path;

use common::{ok, run, text};
use seg_train::train::config::Preset;
use seg_train::TrainConfig;
use serde_json::{json, Value};

/// `train --print-config` with `args`, as JSON.
fn print_config(args: &[&str], cwd: &Path) -> Value {
    let mut all = vec!["train", "--print-config"];
    all.extend_from_slice(args);
    serde_json::from_str(&ok(&run(&all, cwd))).expect("--print-config prints JSON")
}

/// Every leaf of `v` as (`a.b.c` path, value); arrays are leaves.
fn leaves(v: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaves(v, &path, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

fn leaf_map(v: &Value) -> std::collections::BTreeMap<String, Value> {
    let mut out = Vec::new();
    leaves(v, "", &mut out);
    out.into_iter().collect()
}

/// With no flag, every preset's settings are the preset's own, field by field; the `quick` ones
/// are also checked against the values its documentation gives.
#[test]
fn presets_survive_when_no_flag_is_given() {
    let dir = tempfile::tempdir().unwrap();
    for preset in Preset::ALL {
        let printed = print_config(&["--preset", preset.name()], dir.path());
        let expected = serde_json::to_value(TrainConfig::from_preset(preset)).unwrap();
        assert_eq!(leaf_map(&printed), leaf_map(&expected), "{}", preset.name());
    }
    let quick = print_config(&["--preset", "quick"], dir.path());
    for (path, value) in [
        ("/loss/class_weights", json!([1.0, 8.0])),
        ("/loss/dice_weight", json!(1.0)),
        ("/loss/aux_weight", json!(0.5)),
        ("/crop", json!(64)),
        ("/imgsz", json!(64)),
        ("/crops_per_image", json!(32)),
        ("/batch_size", json!(6)),
        ("/epochs", json!(19)),
        ("/model/arch", json!("deeplabv3plus")),
        ("/model/encoder/blocks", json!([3, 4, 6, 3])),
        (
            "/model/encoder/replace_stride_with_dilation",
            json!([false, false, true]),
        ),
        ("/lr", json!(1e-3)),
        ("/weights", Value::Null),
        ("/normalization", json!("computed")),
    ] {
        assert_eq!(quick.pointer(path), Some(&value), "quick preset {path}");
    }
}

/// Each flag changes exactly its own setting(s), on a whole-image preset and on the crop preset.
#[test]
fn each_flag_overrides_exactly_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let poly = serde_json::to_value(seg_train::train::schedule::ScheduleKind::poly()).unwrap();
    let no_augment = serde_json::to_value(drive_data::AugmentConfig::none()).unwrap();
    let model = |config: deeplab::DeepLabConfig| serde_json::to_value(config).unwrap();
    let plus_r50 = model(deeplab::DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).into());
    let plus_r50_os8 = model(
        deeplab::DeepLabV3PlusConfig::deeplabv3plus_resnet50(2)
            .with_output_stride(8)
            .unwrap()
            .into(),
    );
    let v3_r101 = model(deeplab::DeepLabV3Config::deeplabv3_resnet101(2).into());
    let plus_r101 = model(deeplab::DeepLabV3PlusConfig::deeplabv3plus_resnet101(2).into());
    let v3_r50 = model(deeplab::DeepLabV3Config::deeplabv3_resnet50(2).into());
    let cases: Vec<(Vec<&str>, Vec<(&str, Value)>)> = vec![
        (vec!["--epochs", "7"], vec![("epochs", json!(7))]),
        (vec!["--lr", "0.01"], vec![("lr", json!(0.01))]),
        (vec!["--batch", "4"], vec![("batch_size", json!(4))]),
        (
            vec!["--crop", "96"],
            vec![("crop", json!(96)), ("imgsz", json!(96))],
        ),
        (
            vec!["--crops-per-image", "5"],
            vec![("crops_per_image", json!(5))],
        ),
        (vec!["--weights", "none"], vec![("weights", Value::Null)]),
        (vec!["--weights", "coco"], vec![("weights", json!("coco"))]),
        (
            vec!["--backbone-weights", "imagenet"],
            vec![
                ("backbone_weights", json!("imagenet")),
                ("weights", Value::Null),
            ],
        ),
        (vec!["--scheduler", "poly"], vec![("schedule", poly)]),
        (
            vec!["--aux-weight", "0"],
            vec![("loss.aux_weight", json!(0.0))],
        ),
        (
            vec!["--dice-weight", "2"],
            vec![("loss.dice_weight", json!(2.0))],
        ),
        (
            vec!["--class-weights", "1,3"],
            vec![("loss.class_weights", json!([1.0, 3.0]))],
        ),
        (
            vec!["--class-weights", "none"],
            vec![("loss.class_weights", Value::Null)],
        ),
        (vec!["--fov-loss"], vec![("loss.fov_only", json!(true))]),
        (
            vec!["--loss", "skeleton-recall"],
            vec![("loss.topology", json!("skeleton-recall"))],
        ),
        (
            vec!["--loss", "cldice", "--dice-weight", "1"],
            vec![
                ("loss.topology", json!("cldice")),
                ("loss.dice_weight", json!(1.0)),
            ],
        ),
        (
            vec!["--fov-loss", "false"],
            vec![("loss.fov_only", json!(false))],
        ),
        (vec!["--augment", "none"], vec![("augment", no_augment)]),
        (
            vec!["--normalization", "drive"],
            vec![("normalization", json!("drive"))],
        ),
        (vec!["--workers", "0"], vec![("workers", json!(0))]),
        (
            vec!["--checkpoint-every", "0"],
            vec![("checkpoint_every_s", json!(0))],
        ),
        (vec!["--arch", "deeplabv3plus"], vec![("model", plus_r50)]),
        (
            vec!["--arch", "deeplabv3plus", "--output-stride", "8"],
            vec![("model", plus_r50_os8)],
        ),
        (vec!["--arch", "deeplabv3"], vec![("model", v3_r50)]),
        (vec!["--seed", "5"], vec![("seed", json!(5))]),
        (
            vec!["--out", "elsewhere"],
            vec![("out", json!("elsewhere"))],
        ),
        // Not training settings: nothing in the configuration changes.
        (vec!["--device", "cpu"], vec![]),
        (vec!["--holdout", "2"], vec![]),
        (vec!["--synthetic", "5"], vec![]),
    ];
    for (preset, r101) in [("r50-512", v3_r101), ("quick", plus_r101)] {
        let base = leaf_map(&print_config(&["--preset", preset], d));
        // The backbone flag keeps the preset's architecture.
        let backbone = (vec!["--backbone", "r101"], vec![("model", r101)]);
        for (flags, changed) in cases.iter().chain([&backbone]) {
            let mut args = vec!["--preset", preset];
            args.extend_from_slice(flags);
            let now = leaf_map(&print_config(&args, d));
            let mut expected = base.clone();
            for (path, value) in changed {
                // A whole object (schedule, augment) replaces the preset's leaves under it.
                expected.retain(|k, _| k != path && !k.starts_with(&format!("{path}.")));
                expected.extend(leaf_map(value).into_iter().map(|(k, v)| {
                    let key = if k.is_empty() {
                        path.to_string()
                    } else {
                        format!("{path}.{k}")
                    };
                    (key, v)
                }));
            }
            assert_eq!(now, expected, "--preset {preset} {flags:?}");
        }
    }
    // DeepLabV3 has one output stride.
    let o = run(&["train", "--output-stride", "16", "--print-config"], d);
    assert!(!o.status.success());
    assert!(text(&o).contains("--arch deeplabv3plus"), "{}", text(&o));
    // The input size is the crop size when training on crops.
    let o = run(
        &[
            "train",
            "--preset",
            "quick",
            "--imgsz",
            "96",
            "--print-config",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("--crop 96"), "{}", text(&o));
}

/// `train --preset quick` records the preset's loss in the run's checkpoint metadata (a short run
/// on small synthetic images: one epoch, two crops per image).
#[test]
fn a_quick_run_records_the_presets_class_weights() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--count", "6", "--width", "80", "--height", "84",
        ],
        d,
    ));
    ok(&run(
        &[
            "train",
            "--preset",
            "quick",
            "--data",
            "data",
            "--epochs",
            "1",
            "--crops-per-image",
            "2",
            "--batch",
            "2",
            "--workers",
            "0",
            "--device",
            "cpu",
            "--out",
            "run",
        ],
        d,
    ));
    let meta: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("run/checkpoints/last/meta.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta["loss"]["class_weights"], json!([1.0, 8.0]), "{meta}");
    assert_eq!(meta["settings"]["loss"]["class_weights"], json!([1.0, 8.0]));
    assert_eq!(meta["settings"]["loss"]["dice_weight"], json!(1.0));
    assert_eq!(meta["settings"]["crop"], json!(64));
}

/// Invalid values for every numeric flag of every command: a non-zero exit, an error naming the
/// flag, no panic, and no output folder.
#[test]
fn every_numeric_flag_refuses_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--count", "5", "--width", "80", "--height", "84",
        ],
        d,
    ));
    const BAD_INT: [&str; 5] = ["-1", "NaN", "1.5", "99999999999999999999999", "1e3"];
    // (command and its other arguments, flag, bad values beyond BAD_INT / BAD_REAL)
    let train = vec![
        "train",
        "--data",
        "data",
        "--weights",
        "none",
        "--device",
        "cpu",
        "--workers",
        "0",
        "--epochs",
        "1",
        "--imgsz",
        "32",
        "--out",
        "out",
    ];
    let predict = vec![
        "predict",
        "--checkpoint",
        "missing",
        "--input",
        "data/test_images",
        "--out",
        "out",
        "--device",
        "cpu",
    ];
    let evaluate = vec![
        "evaluate",
        "--predictions",
        "missing",
        "--data",
        "data",
        "--out",
        "out/r.json",
    ];
    let synth = vec!["synth", "--out", "out"];
    let check = vec!["check-data", "--data", "data"];
    let ints: Vec<(&Vec<&str>, &str, Vec<&str>)> = vec![
        (&train, "--synthetic", vec!["0", "2", "100000"]),
        (&train, "--epochs", vec!["0", "1000000000"]),
        (&train, "--batch", vec!["0", "1", "5000"]),
        (&train, "--imgsz", vec!["0", "16", "100000"]),
        (&train, "--crop", vec!["0", "36", "100000"]),
        (&train, "--crops-per-image", vec!["0", "1000000"]),
        (&train, "--holdout", vec!["0", "100000"]),
        (&train, "--workers", vec!["100000"]),
        (&train, "--checkpoint-every", vec!["100000"]),
        (&train, "--seed", vec![]),
        (&predict, "--imgsz", vec!["0", "8", "100000"]),
        (&predict, "--tile", vec!["0", "8", "10000000"]),
        (&evaluate, "--imgsz", vec!["0", "100000"]),
        (&evaluate, "--tile", vec!["0", "10000000"]),
        (&evaluate, "--holdout", vec!["100000"]),
        (&synth, "--count", vec!["0", "2", "100000"]),
        (&synth, "--seed", vec![]),
        (&synth, "--width", vec!["0", "8", "100000"]),
        (&synth, "--height", vec!["0", "8", "100000"]),
        (&check, "--holdout", vec!["100000"]),
    ];
    const BAD_REAL: [&str; 5] = ["NaN", "inf", "-inf", "1e400", "x"];
    let reals: Vec<(&Vec<&str>, &str, Vec<&str>)> = vec![
        (&train, "--lr", vec!["0", "-1e-3", "2", "1e30"]),
        (&train, "--aux-weight", vec!["-0.5", "1e30"]),
        (&train, "--dice-weight", vec!["-1", "1e30"]),
        (
            &train,
            "--class-weights",
            vec!["0,0", "-1,2", "1", "1,2,3", "NaN,1", "1,1e30"],
        ),
        (&predict, "--overlap", vec!["-0.1", "1", "0.95", "1e30"]),
        (&predict, "--threshold", vec!["-0.1", "1.5", "1e30"]),
        (&evaluate, "--overlap", vec!["1", "-1"]),
        (&evaluate, "--threshold", vec!["2", "-1"]),
    ];
    let cases = ints
        .iter()
        .flat_map(|(cmd, flag, extra)| BAD_INT.iter().chain(extra).map(move |v| (*cmd, *flag, *v)))
        .chain(reals.iter().flat_map(|(cmd, flag, extra)| {
            BAD_REAL.iter().chain(extra).map(move |v| (*cmd, *flag, *v))
        }))
        // Values larger than the data: crops larger than the 80×84 images, a batch larger than
        // the training set.
        .chain([(&train, "--crop", "128"), (&train, "--batch", "8")]);
    let mut checked = 0;
    for (cmd, flag, value) in cases {
        // The command's own arguments without the flag under test (its base value, if any).
        let mut args: Vec<&str> = Vec::new();
        let mut rest = cmd.iter();
        while let Some(&a) = rest.next() {
            if a == flag {
                rest.next();
            } else {
                args.push(a);
            }
        }
        args.extend_from_slice(&[flag, value]);
        let o = run(&args, d);
        let out = text(&o);
        assert!(!o.status.success(), "{args:?} succeeded:\n{out}");
        assert!(!out.contains("panicked"), "{args:?}:\n{out}");
        let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error")).collect();
        assert_eq!(errors.len(), 1, "{args:?}: one error line:\n{out}");
        assert!(
            errors[0].contains(flag),
            "{args:?}: the error names {flag}:\n{out}"
        );
        assert!(!d.join("out").exists(), "{args:?} wrote its output folder");
        checked += 1;
    }
    assert!(checked > 150, "{checked} cases");
}

/// Device names have one grammar, listed in `--help`; a typo gets a suggestion, and every
/// suggestion is itself accepted.
#[test]
fn device_names_follow_one_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let help = ok(&run(&["train", "--help"], d));
    assert!(
        help.contains("cuda[:N]") && help.contains("wgpu[:N]"),
        "{help}"
    );
    for name in ["auto", "cpu", "cuda", "cuda:1", "wgpu", "wgpu:0"] {
        print_config(&["--device", name], d);
    }
    for (typed, suggestion) in [
        ("gpu", "wgpu"),
        ("gpu:1", "wgpu:1"),
        ("cpu:1", "cpu"),
        ("cdua:2", "cuda:2"),
        ("cuda:x", "cuda"),
        ("auto:0", "auto"),
    ] {
        let o = run(&["train", "--device", typed, "--print-config"], d);
        assert_eq!(o.status.code(), Some(2), "{typed}");
        let out = text(&o);
        assert!(out.contains(&format!("'{suggestion}'")), "{typed}: {out}");
        print_config(&["--device", suggestion], d);
    }
}

#[test]
fn cldice_without_a_dice_term_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    // The default preset trains without Dice: clDice has nothing to share the term with.
    let o = run(&["train", "--loss", "cldice", "--print-config"], dir.path());
    assert!(!o.status.success());
    let message = text(&o);
    assert!(message.contains("--dice-weight"), "{message}");
    // `quick` has a Dice term: accepted, and the preset says `dice`.
    let quick = print_config(&["--preset", "quick"], dir.path());
    assert_eq!(quick["loss"]["topology"], json!("none"));
    let cl = print_config(&["--preset", "quick", "--loss", "cldice"], dir.path());
    assert_eq!(cl["loss"]["topology"], json!("cldice"));
    assert_eq!(cl["loss"]["cldice_alpha"], json!(0.5));
    assert_eq!(cl["loss"]["cldice_iterations"], json!(3));
}
