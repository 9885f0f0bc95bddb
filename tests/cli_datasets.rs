//! STARE, CHASE_DB1, HRF and FIVES through the command line: `synth --layout` writes each in its
//! download's layout, `check-data` says what it found, `train` runs an epoch on each (layout
//! detected), and `evaluate --checkpoint` scores each model on another dataset's test split
//! (cross-dataset), the report naming that dataset.

mod common;

use common::{ok, read_json, run, text, train_args};

/// (layout, images written, what `check-data` must say, test images under the default scheme).
const SETS: [(&str, &str, &str, usize); 4] = [
    ("stare", "8", "STARE (stare layout), split scheme 10-10", 4),
    (
        "chase",
        "8",
        "CHASE_DB1 (chase layout), split scheme 20-8",
        2,
    ),
    ("hrf", "9", "HRF (hrf layout), split scheme 5-per-class", 6),
    (
        "fives",
        "8",
        "FIVES (fives layout), split scheme folders",
        2,
    ),
];

#[test]
fn each_dataset_trains_and_evaluates_across_datasets() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (layout, count, found, _) in SETS {
        let data = format!("data-{layout}");
        ok(&run(
            &[
                "synth", "--out", &data, "--layout", layout, "--count", count, "--width", "72",
                "--height", "68",
            ],
            d,
        ));
        let out = ok(&run(&["check-data", "--data", &data], d));
        assert!(out.contains(found), "{out}");
        let fov = if layout == "hrf" {
            "FOV from files"
        } else {
            "FOV derived from the images"
        };
        assert!(out.contains(fov), "{out}");
        assert!(out.contains("72×68"), "{out}");

        let run_dir = format!("run-{layout}");
        let source = ["--weights", "none", "--data", &data, "--device", "cpu"];
        let mut args = train_args(&source, "32", &["--report", "false", "--batch", "2"]);
        let out_at = args.iter().position(|a| *a == "run").unwrap();
        args[out_at] = &run_dir;
        let out = ok(&run(&args, d));
        assert!(out.contains(found), "{out}");
        assert!(out.contains(fov), "{out}");
        assert!(d
            .join(&run_dir)
            .join("checkpoints/best-iou/meta.json")
            .is_file());
    }
    // Each model on the next dataset's test split.
    for (i, (layout, _, _, _)) in SETS.iter().enumerate() {
        let (other, _, found, test_images) = SETS[(i + 1) % SETS.len()];
        let checkpoint = format!("run-{layout}");
        let json = format!("cross-{layout}-on-{other}.json");
        let data = format!("data-{other}");
        let o = run(
            &[
                "evaluate",
                "--checkpoint",
                &checkpoint,
                "--data",
                &data,
                "--split",
                "test",
                "--device",
                "cpu",
                "--out",
                &json,
                "--no-report",
            ],
            d,
        );
        let out = ok(&o);
        assert!(out.contains(found), "{}", text(&o));
        let report = read_json(&d.join(&json));
        assert!(
            report["dataset"].as_str().unwrap().starts_with(found),
            "{report}"
        );
        assert_eq!(
            report["images"].as_array().unwrap().len(),
            test_images,
            "{report}"
        );
        assert!(report["fov"]["f1"].is_number(), "{report}");
    }
}

#[test]
fn dataset_flags_choose_scheme_and_observer_and_refuse_what_does_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    ok(&run(
        &[
            "synth", "--out", "data", "--layout", "chase", "--count", "28", "--width", "48",
            "--height", "44",
        ],
        d,
    ));
    let out = ok(&run(
        &[
            "check-data",
            "--data",
            "data",
            "--split-scheme",
            "8-20",
            "--observer",
            "second",
        ],
        d,
    ));
    assert!(out.contains("split scheme 8-20"), "{out}");
    assert!(out.contains("_2ndHO (second observer)"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("test") && l.contains(" 20 images")),
        "{out}"
    );
    let o = run(
        &["check-data", "--data", "data", "--split-scheme", "10-10"],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("20-8, 8-20"), "{}", text(&o));
    // Named as another dataset: the folder it needs is named.
    let o = run(&["check-data", "--data", "data", "--dataset", "hrf"], d);
    assert!(!o.status.success());
    assert!(text(&o).contains("images"), "{}", text(&o));
    // DRIVE's second observer: the test images only.
    ok(&run(
        &[
            "synth", "--out", "drive", "--layout", "drive", "--count", "6", "--width", "48",
            "--height", "44",
        ],
        d,
    ));
    let out = ok(&run(
        &["check-data", "--data", "drive", "--observer", "second"],
        d,
    ));
    assert!(out.contains("2nd_manual (second observer)"), "{out}");
    assert!(out.contains("not read"), "{out}");
    assert!(out.contains("3 with vessel labels"), "{out}");
}

/// `check-data --export`: every split as read — the images, labels and FOV masks `train` and
/// `evaluate` use (HRF: FOV from files, JPEG/TIFF; Kaggle DRIVE: FOV derived) — written as PNG
/// with 0/255 masks and listed in `split.json`; DRIVE's second observer exports the test split
/// alone.
#[test]
fn check_data_exports_the_splits_as_read() {
    use drive_data::{DatasetDir, Sample, Split};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (layout, count, derived) in [("hrf", "9", false), ("kaggle", "6", true)] {
        let data = d.join(format!("data-{layout}"));
        let out = d.join(format!("export-{layout}"));
        ok(&run(
            &[
                "synth",
                "--out",
                data.to_str().unwrap(),
                "--layout",
                layout,
                "--count",
                count,
                "--width",
                "40",
                "--height",
                "36",
            ],
            d,
        ));
        let said = ok(&run(
            &[
                "check-data",
                "--data",
                data.to_str().unwrap(),
                "--export",
                out.to_str().unwrap(),
            ],
            d,
        ));
        assert!(said.contains(&format!("exported {count} images")), "{said}");
        let manifest = read_json(&out.join("split.json"));
        let dataset = DatasetDir::open(&data).unwrap();
        let mut total = 0;
        for split in Split::ALL {
            let listed = manifest["splits"][split.to_string()].as_array().unwrap();
            let entries = dataset.entries(split).unwrap();
            assert_eq!(listed.len(), entries.len(), "{layout} {split}");
            for (item, entry) in listed.iter().zip(&entries) {
                let sample = Sample::load(entry).unwrap();
                assert_eq!(item["id"], sample.id);
                assert_eq!(item["fov_derived"], derived);
                let name = item["name"].as_str().unwrap();
                let stem = entry.image.file_stem().unwrap().to_str().unwrap();
                assert!(
                    stem.starts_with(name) && !name.contains('.'),
                    "{name} {stem}"
                );
                let path = |key: &str| out.join(item[key].as_str().unwrap());
                let image = image::open(path("image")).unwrap().to_rgb8();
                assert_eq!(image, sample.image, "{name}: the decoded pixels");
                let mask = |key: &str| image::open(path(key)).unwrap().to_luma8().into_raw();
                let as_read = |m: &image::GrayImage| -> Vec<u8> {
                    m.iter().map(|&v| if v != 0 { 255 } else { 0 }).collect()
                };
                assert_eq!(mask("fov"), as_read(&sample.fov), "{name}: FOV");
                let vessels = sample.vessels.as_ref().expect("synthetic labels");
                assert_eq!(mask("vessels"), as_read(vessels), "{name}: labels");
                assert!(mask("vessels").iter().any(|&v| v == 255));
                total += 1;
            }
        }
        assert_eq!(total.to_string(), count);
    }
    // DRIVE's second observer labelled the test images only: nothing else is exported.
    ok(&run(
        &[
            "synth", "--out", "drive", "--layout", "drive", "--count", "6", "--width", "48",
            "--height", "44",
        ],
        d,
    ));
    ok(&run(
        &[
            "check-data",
            "--data",
            "drive",
            "--observer",
            "second",
            "--export",
            "second",
        ],
        d,
    ));
    let manifest = read_json(&d.join("second/split.json"));
    let splits: Vec<&String> = manifest["splits"].as_object().unwrap().keys().collect();
    assert_eq!(splits, ["test"]);
    assert!(!d.join("second/train").exists());
}
