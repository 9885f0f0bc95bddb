//! Sliding windows in batches: the windows of several images of different sizes going through
//! the model a batch at a time (the last batch partial, one batch holding windows of two
//! images) give the probabilities of the one-window-per-forward-pass path, for DeepLabV3 and
//! DeepLabV3+, with and without flip TTA; `Predictor` and the default batch size.

mod common;

use burn::backend::{Autodiff, Flex};
use deeplab::DeepLabConfig;
use drive_data::{Normalization, Sample};
use seg_train::model::Tiling;
use seg_train::predict::probability::{
    default_batch, predict_probabilities, predict_probability_tiled,
};
use seg_train::Predictor;

type B = Flex;

const IMGSZ: usize = 64;

/// 48-px windows overlapping by a quarter.
const TILING: Tiling = Tiling {
    tile: 48,
    overlap: 0.25,
};

/// Three retinas: 90×84 (3 × 2 windows), 70×101 (2 × 3 windows) and 40×44 (smaller than a tile:
/// one window, the whole image) — 13 windows.
fn images() -> Vec<Sample> {
    [(90, 84), (70, 101), (40, 44)]
        .into_iter()
        .enumerate()
        .flat_map(|(i, (w, h))| common::samples(i as u32..i as u32 + 1, w, h))
        .collect()
}

/// The model of `config` with random weights, BatchNorms folded as for inference.
fn predictor(config: DeepLabConfig) -> Predictor<B> {
    let device = Default::default();
    Predictor {
        model: config.init::<B>(&device).fold_batch_norms(),
        config,
        normalization: Normalization::DRIVE,
        imgsz: IMGSZ,
        tiling: Some(TILING),
        batch: None,
        device,
        fingerprint: String::new(),
    }
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

#[test]
fn batched_windows_equal_one_window_at_a_time() {
    let samples = images();
    let refs: Vec<&Sample> = samples.iter().collect();
    let windows: usize = samples
        .iter()
        .map(|s| TILING.windows(s.size().map(|v| v as usize)).len())
        .sum();
    assert_eq!(windows, 13, "the test's windows");
    for (name, config) in [
        ("DeepLabV3", common::tiny_model()),
        ("DeepLabV3+", common::tiny_plus_model()),
    ] {
        let p = predictor(config);
        let norm = &p.normalization;
        for tta in [false, true] {
            let one_by_one: Vec<Vec<f32>> = samples
                .iter()
                .map(|s| {
                    predict_probability_tiled(&p.model, s, IMGSZ, norm, tta, TILING, &p.device)
                })
                .collect();
            for (s, prob) in samples.iter().zip(&one_by_one) {
                let [w, h] = s.size();
                assert_eq!(prob.len(), (w * h) as usize);
            }
            // 5 per batch: 5 + 5 + 3, the first two batches holding windows of two images.
            for batch in [5, 13, 64] {
                let batched = predict_probabilities(
                    &p.model, &refs, IMGSZ, norm, tta, TILING, batch, &p.device,
                );
                assert_eq!(batched.len(), samples.len());
                for (i, (a, b)) in batched.iter().zip(&one_by_one).enumerate() {
                    let d = max_diff(a, b);
                    assert!(
                        d <= 1e-5,
                        "{name}, tta {tta}, batch {batch}, image {i}: {d:e}"
                    );
                }
            }
        }
    }
}

/// `Predictor::probabilities` runs the batched path with its batch size; `probability` of one
/// image gives the same as in a group.
#[test]
fn predictor_batches_the_windows_of_its_images() {
    let samples = images();
    let refs: Vec<&Sample> = samples.iter().collect();
    let mut p = predictor(common::tiny_plus_model());
    p.batch = Some(4);
    assert_eq!(p.batch_size(), 4);
    let grouped = p.probabilities(&refs, false, None);
    for (s, prob) in samples.iter().zip(&grouped) {
        let alone = p.probability(s, false, None);
        assert!(max_diff(prob, &alone) <= 1e-5);
        let one_window = predict_probability_tiled(
            &p.model,
            s,
            IMGSZ,
            &p.normalization,
            false,
            TILING,
            &p.device,
        );
        assert!(max_diff(prob, &one_window) <= 1e-5);
    }
    // Whole images (no tiling) batch too: each image its own single window.
    p.tiling = None;
    assert_eq!(p.inputs_of(&samples[0], None), 1);
    assert_eq!(p.inputs_of(&samples[0], Some(TILING)), 6);
    let whole = p.probabilities(&refs, false, None);
    for (s, prob) in samples.iter().zip(&whole) {
        let alone = predict_probability_tiled(
            &p.model,
            s,
            IMGSZ,
            &p.normalization,
            false,
            Tiling::WHOLE,
            &p.device,
        );
        assert!(max_diff(prob, &alone) <= 1e-5);
    }
}

/// The default: inputs making 2^18 pixels on the CPU, from 1 to 64.
#[test]
fn default_batch_follows_the_input_size() {
    assert_eq!(default_batch::<B>(64), 64);
    assert_eq!(default_batch::<B>(128), 16);
    assert_eq!(default_batch::<B>(256), 4);
    assert_eq!(default_batch::<B>(512), 1);
    assert_eq!(default_batch::<B>(1024), 1);
    assert_eq!(default_batch::<B>(32), 64);
    assert_eq!(default_batch::<Autodiff<B>>(128), 16);
}
