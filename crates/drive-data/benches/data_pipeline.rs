//! Data pipeline throughput: augmented training samples per second (resize + hflip + rotate ±50°
//! warp, normalisation) from in-memory DRIVE-sized (565×584) images, at 512/640/768, on one
//! thread and on all cores (as the data loader's workers do).
//!
//! `cargo bench -p drive-data --bench data_pipeline [-- --seconds S]`; results printed and written to
//! `target/bench/data_pipeline.json`.

use std::time::Instant;

use burn::data::dataset::Dataset;
use drive_data::synth::generate;
use drive_data::{DriveDataset, Normalization, Sample, SynthConfig, Transform};
use rayon::prelude::*;

fn samples() -> Vec<Sample> {
    (0..8)
        .map(|id| generate(&SynthConfig::default(), id).into_sample(id as u32))
        .collect()
}

/// Samples per second over at least `seconds`.
fn measure(seconds: f64, parallel: bool, dataset: &DriveDataset) -> f64 {
    let n = dataset.len();
    let start = Instant::now();
    let mut done = 0usize;
    let mut epoch = 0u64;
    while start.elapsed().as_secs_f64() < seconds {
        if parallel {
            done += (0..n)
                .into_par_iter()
                .map(|i| dataset.item(i, epoch).map_or(0, |it| it.image.len().min(1)))
                .sum::<usize>();
        } else {
            done += (0..n)
                .map(|i| dataset.item(i, epoch).map_or(0, |it| it.image.len().min(1)))
                .sum::<usize>();
        }
        epoch += 1;
    }
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds = args
        .iter()
        .position(|a| a == "--seconds")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let samples = std::sync::Arc::new(samples());
    let threads = rayon::current_num_threads();
    println!("augmented samples/s (565×584 sources, recipe augmentation), {threads} cores");
    println!(
        "{:>6} {:>12} {:>12}",
        "imgsz",
        "1 thread",
        format!("{threads} threads")
    );
    let mut rows = Vec::new();
    for size in [512, 640, 768] {
        let dataset = DriveDataset::from_shared(
            samples.clone(),
            Transform::train(size, Normalization::IMAGENET),
            0,
        );
        let single = measure(seconds, false, &dataset);
        let multi = measure(seconds, true, &dataset);
        println!("{size:>6} {single:>12.1} {multi:>12.1}");
        rows.push(serde_json::json!({"imgsz": size, "samples_per_s_1_thread": single, "samples_per_s_all": multi, "threads": threads}));
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("data_pipeline.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    );
}
