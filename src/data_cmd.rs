//! `synth` and `check-data`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Split, SynthConfig};

pub fn synth(
    out: &Path,
    layout: Layout,
    count: usize,
    seed: u64,
    width: u32,
    height: u32,
) -> Result<()> {
    let start = Instant::now();
    let config = SynthConfig {
        width,
        height,
        ..SynthConfig::default()
    };
    let counts = write_synthetic(out, layout, count, seed, &config)?;
    println!(
        "wrote {count} synthetic retinas ({width}×{height}, {layout} layout) to {} in {:.1} s: \
         train {}, valid {}, test {}",
        out.display(),
        start.elapsed().as_secs_f64(),
        counts.train,
        counts.valid,
        counts.test
    );
    Ok(())
}

pub fn check_data(root: &Path, holdout: usize) -> Result<()> {
    let mut dir = DatasetDir::open(root)?.with_holdout(holdout);
    println!("{}: {} layout", root.display(), dir.layout);
    if dir.layout == Layout::Drive {
        // A valid dataset is valid: a hold-out larger than the training set is a training-time
        // setting, reported here as a warning.
        let training = dir.clone().with_holdout(0).entries(Split::Train)?.len();
        if holdout >= training {
            println!(
                "  warning: {training} training image(s) cannot give {holdout} held-out validation \
                 image(s) and a training set: train with --holdout {} or less",
                training.saturating_sub(1)
            );
            dir = dir.with_holdout(0);
        }
    }
    for split in Split::ALL {
        if !dir.has_split(split) {
            println!("  {split:<5}  absent");
            continue;
        }
        let samples = dir.load(split)?;
        let mut sizes: BTreeMap<[u32; 2], usize> = BTreeMap::new();
        for s in &samples {
            *sizes.entry(s.size()).or_default() += 1;
        }
        let sizes: Vec<String> = sizes
            .iter()
            .map(|([w, h], n)| format!("{w}×{h} ({n})"))
            .collect();
        let labelled = samples.iter().filter(|s| s.vessels.is_some()).count();
        let derived = samples.iter().filter(|s| s.fov_derived).count();
        let vessel_fraction: Vec<f64> = samples
            .iter()
            .filter_map(|s| {
                let v = s.vessels.as_ref()?;
                let inside: u64 = s.fov.iter().map(|&f| f as u64).sum();
                let vessels: u64 = v
                    .iter()
                    .zip(s.fov.iter())
                    .map(|(&v, &f)| (v & f) as u64)
                    .sum();
                Some(vessels as f64 / inside.max(1) as f64)
            })
            .collect();
        let mean_fraction = if vessel_fraction.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.1}%",
                100.0 * vessel_fraction.iter().sum::<f64>() / vessel_fraction.len() as f64
            )
        };
        println!(
            "  {split:<5}  {:>3} images, {labelled} with vessel masks, FOV {}, sizes {}, vessels in FOV {mean_fraction}",
            samples.len(),
            if derived == 0 {
                "from files".to_string()
            } else {
                format!("derived for {derived}")
            },
            sizes.join(", "),
        );
    }
    Ok(())
}
