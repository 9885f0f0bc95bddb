//! `synth` and `check-data`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use drive_data::write::write_synthetic;
use drive_data::{Layout, Observer, Sample, Split, SynthConfig};
use rayon::prelude::*;

use crate::dataset_args::DatasetArgs;

pub fn synth(
    out: &Path,
    layout: Layout,
    count: usize,
    seed: u64,
    width: Option<u32>,
    height: Option<u32>,
) -> Result<()> {
    let start = Instant::now();
    let [native_w, native_h] = layout.native_size();
    let (width, height) = (width.unwrap_or(native_w), height.unwrap_or(native_h));
    let config = SynthConfig {
        width,
        height,
        ..SynthConfig::default()
    };
    let counts = write_synthetic(out, layout, count, seed, &config)?;
    let valid = if counts.valid > 0 {
        format!("valid {}", counts.valid)
    } else {
        "valid carved from training when read".into()
    };
    println!(
        "wrote {count} synthetic retinas ({width}×{height}, {} layout: {}) to {} in {:.1} s: \
         train {}, {valid}, test {}",
        layout,
        layout.dataset(),
        out.display(),
        start.elapsed().as_secs_f64(),
        counts.train,
        counts.test
    );
    Ok(())
}

/// What `check-data` reports of one image (decoded, summarised, dropped: a FIVES split does not
/// have to fit in memory).
struct Seen {
    size: [u32; 2],
    labelled: bool,
    fov_derived: bool,
    vessel_fraction: Option<f64>,
}

impl Seen {
    fn of(sample: &Sample) -> Self {
        let vessel_fraction = sample.vessels.as_ref().map(|v| {
            let inside: u64 = sample.fov.iter().map(|&f| f as u64).sum();
            let vessels: u64 = v
                .iter()
                .zip(sample.fov.iter())
                .map(|(&v, &f)| (v & f) as u64)
                .sum();
            vessels as f64 / inside.max(1) as f64
        });
        Self {
            size: sample.size(),
            labelled: sample.vessels.is_some(),
            fov_derived: sample.fov_derived,
            vessel_fraction,
        }
    }
}

pub fn check_data(root: &Path, args: &DatasetArgs, export: Option<&Path>) -> Result<()> {
    let mut dir = args.open(root)?;
    println!("{}: {}", root.display(), dir.describe());
    // DRIVE's second observer labelled the test images only: training splits are not read.
    let test_only = dir.layout == Layout::Drive && dir.observer == Observer::Second;
    if dir.layout != Layout::Kaggle && !test_only {
        // A valid dataset is valid: a hold-out larger than the training set is a training-time
        // setting, reported here as a warning.
        let training = dir.clone().with_holdout(0).entries(Split::Train)?.len();
        let holdout = dir
            .holdout
            .unwrap_or_else(|| drive_data::layout::default_holdout(dir.layout, training));
        if holdout >= training {
            println!(
                "  warning: {training} training image(s) cannot give {holdout} held-out validation \
                 image(s) and a training set: train with --holdout {} or less",
                training.saturating_sub(1)
            );
            dir = dir.with_holdout(0);
        } else {
            println!(
                "  validation: {} of the {training} training images ({})",
                dir.entries(Split::Valid)?.len(),
                match dir.layout {
                    Layout::Drive => "the highest ids",
                    Layout::Chase => "whole patients, spread evenly over the ids",
                    _ => "spread evenly over the ids",
                }
            );
        }
    }
    for split in Split::ALL {
        if test_only && split != Split::Test {
            println!(
                "  {split:<5}  not read: DRIVE's second observer labelled the test images only"
            );
            continue;
        }
        if !dir.has_split(split) {
            println!("  {split:<5}  absent");
            continue;
        }
        let entries = dir.entries(split)?;
        // Decoded in parallel, one summary kept per image; the first failing file (in id
        // order) is the error.
        let seen: Vec<Seen> = entries
            .par_iter()
            .map(|e| Sample::load(e).map(|s| Seen::of(&s)))
            .collect::<Result<_, _>>()?;
        let mut sizes: BTreeMap<[u32; 2], usize> = BTreeMap::new();
        for s in &seen {
            *sizes.entry(s.size).or_default() += 1;
        }
        let sizes: Vec<String> = sizes
            .iter()
            .map(|([w, h], n)| format!("{w}×{h} ({n})"))
            .collect();
        let labelled = seen.iter().filter(|s| s.labelled).count();
        let derived = seen.iter().filter(|s| s.fov_derived).count();
        let fractions: Vec<f64> = seen.iter().filter_map(|s| s.vessel_fraction).collect();
        let mean_fraction = if fractions.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.1}%",
                100.0 * fractions.iter().sum::<f64>() / fractions.len() as f64
            )
        };
        let fov = match derived {
            0 => "from files".to_string(),
            d if d == seen.len() => "derived from the images".to_string(),
            d => format!("derived for {d}"),
        };
        // What training (or evaluating) this split holds in memory once decoded: RGB image,
        // labels and FOV, a byte per pixel each.
        let megabytes: f64 = seen
            .iter()
            .map(|s| 5.0 * s.size[0] as f64 * s.size[1] as f64 / 1e6)
            .sum();
        println!(
            "  {split:<5}  {:>3} images, {labelled} with vessel labels, FOV {fov}, sizes {}, \
             vessels in FOV {mean_fraction}, {megabytes:.0} MB decoded",
            seen.len(),
            sizes.join(", "),
        );
    }
    if let Some(out) = export {
        let splits: Vec<Split> = Split::ALL
            .into_iter()
            .filter(|&s| !test_only || s == Split::Test)
            .collect();
        let written = crate::split_export::export_splits(&dir, &splits, out)?;
        println!(
            "  exported {written} images with labels and FOV masks to {} (listed in split.json)",
            out.display()
        );
    }
    Ok(())
}
