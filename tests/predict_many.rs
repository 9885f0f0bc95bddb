//! `predict` over many images: shards together equal one run, a run killed at any moment and
//! run again leaves exactly the files of an uninterrupted run, and memory does not grow with the
//! number of images.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ok, run, run_env, text, train_tiny};

/// A synthetic set of `count` images of `size` px in `d/data`, the images copied into
/// `d/images/site-{a,b}/NNN.png`, and a tiny model trained on it at `imgsz` in `d/run`.
fn cohort(d: &Path, count: usize, size: u32, imgsz: usize, train: bool) {
    let (count_s, size_s) = (count.to_string(), size.to_string());
    ok(&run(
        &[
            "synth", "--out", "data", "--count", &count_s, "--width", &size_s, "--height", &size_s,
        ],
        d,
    ));
    let mut i = 0;
    for split in ["train_images", "valid_images", "test_images"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(d.join("data").join(split))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            i += 1;
            let site = if i % 2 == 0 { "site-a" } else { "site-b" };
            let to = d.join("images").join(site).join(format!("{i:03}.png"));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(f, to).unwrap();
        }
    }
    if train {
        // The report of the validation split is not what these tests are about.
        ok(&train_tiny(d, &imgsz.to_string(), &["--report", "false"]));
    }
}

/// Every file under `dir` except the manifests, by relative path.
fn outputs(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if !path.to_string_lossy().contains("manifest-") {
                let bytes = std::fs::read(&path).unwrap();
                files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
            }
        }
    }
    files
}

fn predict<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "predict",
        "--checkpoint",
        "run",
        "--input",
        "images",
        "--out",
        out,
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    args
}

/// `"status":"ok"` lines of the manifests in `out`, per input.
fn manifest_counts(out: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for entry in std::fs::read_dir(out).unwrap() {
        let path = entry.unwrap().path();
        if !path.to_string_lossy().ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            if v["status"] == "ok" {
                *counts
                    .entry(v["input"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
    }
    counts
}

#[test]
fn shards_together_equal_one_run_and_a_killed_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cohort(d, 30, 96, 64, true);
    ok(&run(&predict("whole", &[]), d));
    let reference = outputs(&d.join("whole"));
    assert_eq!(reference.len(), 30 * 3, "three outputs per image");
    assert!(reference.contains_key(Path::new("site-a/002_mask.png")));

    // Three shards, in any order, one of them pipelined with two images per batch: the same
    // bytes, every image exactly once across the manifests.
    for (k, extra) in [
        ("3/3", vec![]),
        ("1/3", vec!["--workers", "0"]),
        ("2/3", vec!["--batch", "2"]),
    ] {
        let mut args = predict("sharded", &["--shard", k]);
        args.extend(extra);
        ok(&run(&args, d));
    }
    assert_eq!(outputs(&d.join("sharded")), reference);
    let counts = manifest_counts(&d.join("sharded"));
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");
    // --shard auto from a SLURM array task's environment.
    let env = [
        ("SLURM_ARRAY_TASK_ID", "1"),
        ("SLURM_ARRAY_TASK_COUNT", "3"),
    ];
    let auto = ok(&run_env(&predict("sharded", &["--shard", "auto"]), d, &env));
    assert!(
        auto.contains("shard 2/3") && auto.contains("already there"),
        "{auto}"
    );
    let none = run(&predict("x", &["--shard", "auto"]), d);
    assert!(!none.status.success() && text(&none).contains("SLURM_ARRAY_TASK_ID"));

    // Killed once it has written its first image, then run again.
    let binary = env!("CARGO_BIN_EXE_retina-seg");
    let mut child = Command::new(binary)
        .args(predict("killed", &["--shard", "1/1", "--workers", "1"]))
        .current_dir(d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let manifest = d.join("killed/manifest-1-of-1.jsonl");
    let start = Instant::now();
    while std::fs::metadata(&manifest).map_or(true, |m| m.len() == 0) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no image written"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = outputs(&d.join("killed")).len();
    assert!(
        partial < 90,
        "the run finished before it was killed ({partial} files): nothing to resume"
    );
    // Also as if killed while writing an image: its probability written, its mask half.
    let killed = d.join("killed");
    std::fs::create_dir_all(killed.join("site-b")).unwrap();
    let _ = std::fs::remove_file(killed.join("site-b/001_mask.png"));
    std::fs::write(killed.join("site-b/.001_mask.png.1.partial"), b"half a png").unwrap();
    // And one left by an older version (no process id in the name).
    std::fs::write(killed.join("site-b/.001_mask.png.partial"), b"half a png").unwrap();
    let prob = std::fs::read(d.join("whole/site-b/001_prob.png")).unwrap();
    std::fs::write(killed.join("site-b/001_prob.png"), prob).unwrap();
    let rerun = ok(&run(&predict("killed", &["--shard", "1/1"]), d));
    // Byte for byte the uninterrupted run's files, no temporary file left.
    assert_eq!(outputs(&killed), reference, "{rerun}");
    assert!(rerun.contains("already there"), "{rerun}");
}

/// Peak memory (the `predict` summary's `peak memory N MiB`) of a run over `count` images.
fn peak_mib(d: &Path, count: usize) -> f64 {
    let sub = d.join(count.to_string());
    std::fs::create_dir_all(&sub).unwrap();
    cohort(&sub, count, 256, 64, false);
    // Four model inputs per forward pass: what the run holds is bounded by the batch and the
    // queues, which 20 images already fill (the default batch, 64 inputs of 64×64, would
    // need more than 20 to fill).
    let mut args = predict("out", &["--batch", "4"]);
    args[2] = "../run";
    let out = ok(&run(&args, &sub));
    let mib = out
        .split("peak memory ")
        .nth(1)
        .and_then(|s| s.split(" MiB").next())
        .and_then(|s| s.parse::<f64>().ok());
    mib.unwrap_or_else(|| panic!("no peak memory in: {out}"))
}

#[test]
fn memory_stays_flat_with_the_number_of_images() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cohort(d, 12, 64, 64, true);
    let small = peak_mib(d, 20);
    let large = peak_mib(d, 200);
    // 200 decoded 256×256 images with their probabilities would hold over 100 MiB.
    println!("peak memory: {small:.0} MiB over 20 images, {large:.0} MiB over 200");
    assert!(
        large <= 1.10 * small,
        "peak memory {large:.0} MiB over 200 images vs {small:.0} MiB over 20"
    );
}
