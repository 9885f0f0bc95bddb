//! AUC as the literature computes it: on float probabilities. A split whose probabilities a
//! confident model would give — most background and some vessel pixels below 1/510, which an
//! 8-bit map writes as level 0 — is scored three ways: from the floats (`evaluate_samples` with
//! the probabilities, as `evaluate --checkpoint` does), from 8-bit and from 16-bit maps written
//! by `predict`'s writer. The float AUC equals the Mann–Whitney statistic computed here by
//! sorting the values; the 8-bit one differs from it by more than 0.005 and says so (its
//! resolution and tie bound), and the bound covers the difference.

use std::path::Path;

use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Sample, Split, SynthConfig};
use seg_train::evaluate::{evaluate, evaluate_samples, EvaluationReport, Resolution};
use seg_train::predict::{output_paths, prediction_images, write_prediction, ProbDepth};

/// A hash of (image, pixel) in [0, 1).
fn unit(id: u32, pixel: usize) -> f32 {
    let mut h = (id as u64) << 32 | pixel as u64;
    h = (h ^ (h >> 33)).wrapping_mul(0xff51afd7ed558ccd);
    h = (h ^ (h >> 33)).wrapping_mul(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    (h % 1_000_000) as f32 / 1e6
}

/// Background below 1e-4; 30 % of the vessel pixels between 1.5e-3 and 1.6e-3 (above every
/// background pixel, still level 0 at 8 bits), the others from 0.9 to 0.99.
fn probabilities(sample: &Sample) -> Vec<f32> {
    let truth = sample.vessels.as_ref().unwrap();
    truth
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let u = unit(sample.id, i);
            match (t != 0, u < 0.3) {
                (false, _) => 1e-4 * unit(sample.id + 1000, i),
                (true, true) => 1.5e-3 + 1e-4 * u,
                (true, false) => 0.9 + 0.09 * u,
            }
        })
        .collect()
}

/// The Mann–Whitney AUC of the FOV pixels, by sorting: average ranks for ties.
fn mann_whitney(samples: &[Sample], probs: &[Vec<f32>]) -> f64 {
    let mut pixels: Vec<(f32, bool)> = Vec::new();
    for (s, p) in samples.iter().zip(probs) {
        let truth = s.vessels.as_ref().unwrap();
        for ((&v, &t), &f) in p.iter().zip(truth.iter()).zip(s.fov.iter()) {
            if f != 0 {
                pixels.push((v, t != 0));
            }
        }
    }
    pixels.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0f64, 0f64);
    let mut i = 0;
    while i < pixels.len() {
        let mut j = i;
        while j < pixels.len() && pixels[j].0 == pixels[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average.
        let average = (i + 1 + j) as f64 / 2.0;
        for p in &pixels[i..j] {
            if p.1 {
                rank_sum += average;
                positives += 1.0;
            }
        }
        i = j;
    }
    let negatives = pixels.len() as f64 - positives;
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

fn write_maps(samples: &[Sample], probs: &[Vec<f32>], dir: &Path, depth: ProbDepth) {
    for (s, p) in samples.iter().zip(probs) {
        let images = prediction_images(s, p, 0.5, depth);
        write_prediction(&images, &output_paths(&s.image_path, dir)).unwrap();
    }
}

fn auc(report: &EvaluationReport) -> f64 {
    report.fov.auc.unwrap()
}

#[test]
fn float_auc_is_exact_and_8_bit_levels_say_how_far_off_they_can_be() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let synth = SynthConfig {
        width: 96,
        height: 90,
        ..SynthConfig::default()
    };
    write_synthetic(&data_dir, Layout::Kaggle, 8, 3, &synth).unwrap();
    let data = DatasetDir::open(&data_dir).unwrap();
    let samples = data.load(Split::Test).unwrap();
    let probs: Vec<Vec<f32>> = samples.iter().map(probabilities).collect();
    let expected = mann_whitney(&samples, &probs);

    let maps8 = dir.path().join("pred8");
    write_maps(&samples, &probs, &maps8, ProbDepth::Eight);
    let exact = evaluate_samples(
        std::slice::from_ref(&maps8),
        &data,
        Split::Test,
        &samples,
        0.5,
        Some(&probs),
    )
    .unwrap();
    assert_eq!(exact.fov.auc_resolution, Some(Resolution::Exact));
    assert!(
        (auc(&exact) - expected).abs() < 1e-9,
        "exact {} vs sorted {expected}",
        auc(&exact)
    );
    assert!(
        exact.fov.auc_text().contains("exact"),
        "{}",
        exact.fov.auc_text()
    );

    let eight = evaluate(&maps8, &data, Split::Test, 0.5).unwrap();
    assert_eq!(eight.fov.auc_resolution, Some(Resolution::Levels8));
    let gap = (auc(&eight) - expected).abs();
    assert!(gap > 0.005, "8-bit {} vs float {expected}", auc(&eight));
    let bound = eight.fov.auc_tie_bound.unwrap();
    assert!(
        gap <= bound + 1e-12,
        "gap {gap} within the tie bound {bound}"
    );
    assert!(
        eight.table(true).contains("8-bit levels, ties"),
        "{}",
        eight.table(true)
    );

    let maps16 = dir.path().join("pred16");
    write_maps(&samples, &probs, &maps16, ProbDepth::Sixteen);
    let p16 = image::open(maps16.join(format!(
        "{}_prob.png",
        samples[0].image_path.file_stem().unwrap().to_string_lossy()
    )))
    .unwrap();
    assert!(
        matches!(p16, image::DynamicImage::ImageLuma16(_)),
        "16-bit map"
    );
    let sixteen = evaluate(&maps16, &data, Split::Test, 0.5).unwrap();
    assert_eq!(sixteen.fov.auc_resolution, Some(Resolution::Levels16));
    let gap16 = (auc(&sixteen) - expected).abs();
    assert!(gap16 <= sixteen.fov.auc_tie_bound.unwrap() + 1e-12);
    assert!(gap16 < gap, "16 bits are closer: {gap16} vs {gap}");
    // The thresholded masks are the same at every resolution.
    assert_eq!(exact.fov.confusion, eight.fov.confusion);
    assert_eq!(exact.fov.confusion, sixteen.fov.confusion);
}
