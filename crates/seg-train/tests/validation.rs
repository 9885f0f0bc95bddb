//! What validation reports during training, recomputed here without the validation code: the
//! confusion counts and the loss of whole images or of the sliding window's tiles (after training
//! on crops), for DeepLabV3 and DeepLabV3+.

mod common;

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use deeplab::DeepLab;
use seg_train::metrics::history::EpochRow;
use seg_train::metrics::Confusion;
use seg_train::model::checkpoint::{self, BEST_IOU, LAST};
use seg_train::model::loss::LossConfig;
use seg_train::model::Tiling;
use seg_train::{train, TrainConfig};

/// What validation reports, computed here from the checkpoint's model without the validation code:
/// each window's logits (the documented sliding window: `tile`-pixel windows every ¾ tile, the
/// last flush with the edge, blended with weights ramping linearly over ⅛ tile from 0.05 at the
/// edges; one window when the tile covers the image), vessel = blended probability ≥ 0.5, counted
/// pixel by pixel; and the loss, by hand in f64: class-weighted cross-entropy of the main output
/// + aux weight × that of the aux output + Dice weight × soft Dice, per window, averaged.
struct ByHand {
    /// `[tp, fp, fn, tn]` on whole images, then inside the FOV.
    image: [u64; 4],
    fov: [u64; 4],
    loss: f64,
    /// Each image's predicted vessels (probability ≥ 0.5) as 0/1.
    masks: Vec<image::GrayImage>,
}

fn starts(len: usize, tile: usize) -> Vec<usize> {
    if tile >= len {
        return vec![0];
    }
    let stride = (tile as f64 * 0.75).round() as usize;
    let mut v: Vec<usize> = (0..)
        .map(|k| k * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    v.push(len - tile);
    v.dedup();
    v
}

fn ramp(i: usize, n: usize, tile: usize) -> f64 {
    let ramp = (tile as f64 * 0.25 / 2.0).round();
    let d = i.min(n - 1 - i) as f64 + 0.5;
    (d / ramp).clamp(0.05, 1.0)
}

/// Cross-entropy of `[2, pixels]` logits with per-pixel weights (a weighted mean).
fn cross_entropy(logits: &[f32], targets: &[u8], weights: &[f64]) -> f64 {
    let n = targets.len();
    let (mut sum, mut total) = (0.0, 0.0);
    for i in 0..n {
        let (l0, l1) = (logits[i] as f64, logits[n + i] as f64);
        let m = l0.max(l1);
        let log_z = m + ((l0 - m).exp() + (l1 - m).exp()).ln();
        let l_t = if targets[i] != 0 { l1 } else { l0 };
        sum += weights[i] * (log_z - l_t);
        total += weights[i];
    }
    sum / total.max(1e-6)
}

fn loss_by_hand(
    out: &[f32],
    aux: Option<&[f32]>,
    vessels: &[u8],
    fov: &[u8],
    cfg: &LossConfig,
) -> f64 {
    let [bg, vessel] = cfg.class_weights.unwrap_or([1.0, 1.0]).map(f64::from);
    let inside = |i: usize| if cfg.fov_only { f64::from(fov[i]) } else { 1.0 };
    let weights: Vec<f64> = (0..vessels.len())
        .map(|i| if vessels[i] != 0 { vessel } else { bg } * inside(i))
        .collect();
    let mut loss = cross_entropy(out, vessels, &weights);
    if let Some(aux) = aux {
        loss += cfg.aux_weight * cross_entropy(aux, vessels, &weights);
    }
    let n = vessels.len();
    let (mut inter, mut total) = (0.0, 0.0);
    for i in 0..n {
        let p = 1.0 / (1.0 + (out[i] as f64 - out[n + i] as f64).exp());
        let t = f64::from(vessels[i]);
        inter += p * t * inside(i);
        total += (p + t) * inside(i);
    }
    loss + cfg.dice_weight * (1.0 - (2.0 * inter + 1.0) / (total + 1.0))
}

fn validate_by_hand(
    model: &DeepLab<Flex>,
    samples: &[drive_data::Sample],
    normalization: &drive_data::Normalization,
    cfg: &LossConfig,
    tile: usize,
) -> ByHand {
    let device = Default::default();
    let luts = [0, 1, 2].map(|c| normalization.lut(c));
    let (mut image, mut fov_counts, mut losses) = ([0u64; 4], [0u64; 4], Vec::new());
    let mut masks = Vec::new();
    for sample in samples {
        let [w, h] = sample.size().map(|v| v as usize);
        let truth = sample.vessels.as_ref().unwrap().as_raw();
        let fov = sample.fov.as_raw();
        let (mut sum, mut weight) = (vec![0f64; w * h], vec![0f64; w * h]);
        for &y0 in &starts(h, tile) {
            for &x0 in &starts(w, tile) {
                let (tw, th) = (tile.min(w), tile.min(h));
                let mut input = vec![0f32; 3 * tw * th];
                let (mut t, mut f) = (vec![0u8; tw * th], vec![0u8; tw * th]);
                for y in 0..th {
                    for x in 0..tw {
                        let px = sample.image.get_pixel((x0 + x) as u32, (y0 + y) as u32).0;
                        for c in 0..3 {
                            input[(c * th + y) * tw + x] = luts[c][px[c] as usize];
                        }
                        t[y * tw + x] = u8::from(truth[(y0 + y) * w + x0 + x] != 0);
                        f[y * tw + x] = u8::from(fov[(y0 + y) * w + x0 + x] != 0);
                    }
                }
                let x =
                    Tensor::<Flex, 4>::from_data(TensorData::new(input, [1, 3, th, tw]), &device);
                let output = model.forward(x);
                let host =
                    |t: Tensor<Flex, 4>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
                let out = host(output.out);
                let aux = output.aux.map(host);
                losses.push(loss_by_hand(&out, aux.as_deref(), &t, &f, cfg));
                let n = tw * th;
                for y in 0..th {
                    for x in 0..tw {
                        let i = y * tw + x;
                        let p = 1.0 / (1.0 + (out[i] as f64 - out[n + i] as f64).exp());
                        let wgt = if tile >= w.max(h) {
                            1.0
                        } else {
                            ramp(y, th, tile) * ramp(x, tw, tile)
                        };
                        sum[(y0 + y) * w + x0 + x] += wgt * p;
                        weight[(y0 + y) * w + x0 + x] += wgt;
                    }
                }
            }
        }
        let mask: Vec<u8> = (0..w * h)
            .map(|i| u8::from(sum[i] / weight[i] >= 0.5))
            .collect();
        for i in 0..w * h {
            let pred = mask[i] != 0;
            let code = match (pred, truth[i] != 0) {
                (true, true) => 0,
                (true, false) => 1,
                (false, true) => 2,
                (false, false) => 3,
            };
            image[code] += 1;
            if fov[i] != 0 {
                fov_counts[code] += 1;
            }
        }
        masks.push(image::GrayImage::from_raw(w as u32, h as u32, mask).unwrap());
    }
    ByHand {
        image,
        fov: fov_counts,
        loss: losses.iter().sum::<f64>() / losses.len() as f64,
        masks,
    }
}

fn counts(c: &Confusion) -> [u64; 4] {
    [c.tp, c.fp, c.fn_, c.tn]
}

/// The validation row of a one-epoch run against [`validate_by_hand`] on the checkpoint's model
/// (BatchNorm folded, as validation runs it).
fn check_validation(out: &Path, valid: &[drive_data::Sample], tile: usize, row: &EpochRow) {
    let (model, meta) = checkpoint::load_model::<Flex>(
        &checkpoint::checkpoints_dir(out).join(LAST),
        &Default::default(),
    )
    .unwrap();
    let expected = validate_by_hand(
        &model.fold_batch_norms(),
        valid,
        &meta.normalization,
        &meta.loss,
        tile,
    );
    assert_eq!(row.split, "valid");
    assert_eq!(
        counts(&row.metrics.image),
        expected.image,
        "whole-image counts"
    );
    assert_eq!(
        counts(&row.metrics.fov),
        expected.fov,
        "counts inside the FOV"
    );
    let rel = (row.metrics.loss - expected.loss).abs() / expected.loss;
    assert!(
        rel < 1e-5,
        "valid loss {} vs {} by hand",
        row.metrics.loss,
        expected.loss
    );
    // The epoch's overlay shows the first validation image's prediction (the tiny models here
    // predict uniform masks after one epoch: this checks the overlay's image, truth, FOV and
    // threshold, not which image's probability it came from).
    let first = &valid[0];
    let overlay = image::open(out.join("overlays/epoch-001.png"))
        .unwrap()
        .to_rgb8();
    let by_hand = seg_train::predict::overlay::overlay(
        &first.image,
        &expected.masks[0],
        first.vessels.as_ref(),
        Some(&first.fov),
    );
    assert!(overlay == by_hand, "overlay of the first validation image");
}

/// The run's loss settings for the validation tests: every term switched on.
fn weighted_loss(c: &mut TrainConfig) {
    c.loss.class_weights = Some([1.0, 8.0]);
    c.loss.aux_weight = 0.5;
    c.loss.dice_weight = 1.0;
}

/// Training on crops: `crops_per_image` crops of each image per epoch; validation predicts whole
/// images through the sliding window of crop-sized tiles, and its loss is the training loss of
/// those tiles.
#[test]
fn crop_training_validates_whole_images_through_the_sliding_window() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crops");
    let mut c = common::tiny_config(&out, 32, 1);
    c.crop = Some(32);
    c.crops_per_image = 3;
    c.lr = 2e-3;
    weighted_loss(&mut c);
    let data = common::data(4, 2, 80, 72);
    let valid = data.valid.clone();
    let summary = train(c, data).unwrap();
    let train_row = &summary.rows[0];
    assert_eq!(train_row.split, "train");
    assert_eq!(
        train_row.metrics.image.total(),
        4 * 3 * 32 * 32,
        "4 images × 3 crops of 32²"
    );
    assert_eq!(
        summary.rows[1].metrics.image.total(),
        2 * 80 * 72,
        "whole validation images"
    );
    let meta = checkpoint::read_meta(&checkpoint::checkpoints_dir(&out).join(BEST_IOU)).unwrap();
    assert_eq!(
        meta.tiling,
        Some(Tiling {
            tile: 32,
            overlap: 0.25
        })
    );
    check_validation(&out, &valid, 32, &summary.rows[1]);
}

/// Without crops each validation image is one input, resized to the training size (here its own
/// size); the loss is the same training loss as with crops, per image.
#[test]
fn whole_image_validation_reports_the_training_loss_per_image() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("whole");
    let mut c = common::tiny_config(&out, 64, 1);
    c.lr = 2e-3;
    weighted_loss(&mut c);
    let data = common::data(4, 3, 64, 64);
    let valid = data.valid.clone();
    let summary = train(c, data).unwrap();
    check_validation(&out, &valid, 64, &summary.rows[1]);
}

/// DeepLabV3+ trains through the same loop (no aux head: its loss is the main output's), on
/// crops and on whole images, and its checkpoint reproduces the validation exactly.
#[test]
fn deeplabv3plus_trains_and_its_checkpoint_reproduces_validation() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    for (name, crop, size) in [("crops", Some(32), 32), ("whole", None, 64)] {
        let out = dir.path().join(name);
        let mut c = common::tiny_config(&out, size, 1);
        c.model = common::tiny_plus_model();
        c.crop = crop;
        c.crops_per_image = 2;
        c.lr = 2e-3;
        weighted_loss(&mut c);
        let data = if crop.is_some() {
            common::data(4, 2, 80, 72)
        } else {
            common::data(4, 2, 64, 64)
        };
        let valid = data.valid.clone();
        let summary = train(c, data).unwrap();
        let meta = checkpoint::read_meta(&checkpoint::checkpoints_dir(&out).join(LAST)).unwrap();
        assert_eq!(meta.model, common::tiny_plus_model(), "{name}");
        assert_eq!(meta.model.arch_name(), "deeplabv3plus");
        check_validation(&out, &valid, crop.unwrap_or(size), &summary.rows[1]);
    }
    // DeepLabV3+ needs input sides that are multiples of its output stride.
    let mut c = common::tiny_config(&dir.path().join("bad"), 40, 1);
    c.model = common::tiny_plus_model();
    let err = train(c, common::data(4, 2, 64, 64)).unwrap_err();
    assert!(err.to_string().contains("multiple of 16"), "{err}");
}
