//! End-to-end training on the CPU (Flex) with a tiny DeepLabV3 and a tiny synthetic set: loss goes
//! down, every output is written and parses, checkpoints agree with metrics.csv, resuming gives
//! the uninterrupted run's numbers, and a non-finite loss stops training keeping the last good
//! checkpoint.

mod common;

use std::path::Path;

use burn::backend::Flex;
use burn::prelude::*;
use deeplab::DeepLab;
use drive_data::AugmentConfig;
use seg_train::checkpoint::{self, BEST_IOU, BEST_LOSS, LAST};
use seg_train::history::{read_csv, EpochRow};
use seg_train::loss::LossConfig;
use seg_train::metrics::Confusion;
use seg_train::probability::Tiling;
use seg_train::schedule::ScheduleKind;
use seg_train::{train, TrainConfig, TrainData, TrainError};

/// Flex's random generator is process-global: trainings in parallel test threads would interleave
/// their draws, so the tests that train run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn data() -> TrainData {
    common::data(6, 2, 96, 100)
}

fn config(out: &Path, epochs: usize) -> TrainConfig {
    let mut c = common::tiny_config(out, 64, epochs);
    c.lr = 2e-3;
    c.seed = 7;
    c.augment = AugmentConfig::recipe();
    // The rate halves every epoch (a schedule that does not depend on the run length).
    c.schedule = ScheduleKind::MultiStep {
        milestones: vec![1, 2],
        gamma: 0.5,
    };
    c
}

#[test]
fn trains_writes_outputs_and_resumes_identically() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    let summary = train(config(&full, 3), data()).unwrap();
    assert_eq!(summary.last_epoch, 3);

    // Training loss decreases.
    let rows = read_csv(&full.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), 6);
    let train_loss: Vec<f64> = rows
        .iter()
        .filter(|r| r.split == "train")
        .map(|r| r.metrics.loss)
        .collect();
    assert!(train_loss[2] < train_loss[0], "train loss {train_loss:?}");
    assert_eq!(rows, summary.rows);

    // Outputs exist and parse.
    for png in [
        "loss.png",
        "accuracy.png",
        "miou.png",
        "overlays/epoch-001.png",
        "overlays/epoch-003.png",
    ] {
        let img = image::open(full.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert!(img.width() > 50, "{png}");
    }
    let overlay = image::open(full.join("overlays/epoch-003.png")).unwrap();
    assert_eq!(
        (overlay.width(), overlay.height()),
        (96, 100),
        "overlay at the original size"
    );
    let log = std::fs::read_to_string(full.join("train.log")).unwrap();
    for epoch in 1..=3 {
        assert!(
            log.contains(&format!("epoch {epoch}/3: train loss")),
            "epoch {epoch} in this run's train.log:\n{log}"
        );
    }
    let mut entries: Vec<String> = std::fs::read_dir(&full)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(
        entries,
        [
            "accuracy.png",
            "checkpoints",
            "loss.png",
            "metrics.csv",
            "miou.png",
            "overlays",
            "train.log"
        ],
        "only the documented outputs"
    );

    // Checkpoints: metadata agrees with metrics.csv, weights load.
    let root = checkpoint::checkpoints_dir(&full);
    let valid_rows: Vec<_> = rows.iter().filter(|r| r.split == "valid").collect();
    let best_iou_row = valid_rows
        .iter()
        .max_by(|a, b| {
            let iou =
                |r: &&&seg_train::history::EpochRow| r.metrics.fov.vessel_iou().unwrap_or(0.0);
            iou(a)
                .partial_cmp(&iou(b))
                .unwrap()
                .then(b.epoch.cmp(&a.epoch))
        })
        .unwrap();
    let best_loss_row = valid_rows
        .iter()
        .min_by(|a, b| {
            a.metrics
                .loss
                .partial_cmp(&b.metrics.loss)
                .unwrap()
                .then(a.epoch.cmp(&b.epoch))
        })
        .unwrap();
    for (name, row) in [(BEST_IOU, best_iou_row), (BEST_LOSS, best_loss_row)] {
        let meta = checkpoint::read_meta(&root.join(name)).unwrap();
        assert_eq!(meta.epoch, row.epoch, "{name}");
        assert_eq!(meta.valid, row.metrics, "{name}");
        assert_eq!(meta.kind, name);
    }
    assert_eq!(summary.best_epoch, Some(best_iou_row.epoch));
    let last = checkpoint::read_meta(&root.join(LAST)).unwrap();
    assert_eq!(last.epoch, 3);
    assert_eq!(last.imgsz, 64);
    let (model, meta) =
        checkpoint::load_model::<Flex>(&root.join(BEST_IOU), &Default::default()).unwrap();
    assert_eq!(model.num_classes(), 2);
    assert_eq!(meta.model, common::tiny_model());

    // Stop after epoch 1, resume to 3: epochs 2 and 3 match the uninterrupted run, learning
    // rates included, although the resuming configuration has another `lr` (no `resume_lr`: the
    // checkpoint's schedule continues).
    let split = dir.path().join("split");
    train(config(&split, 1), data()).unwrap();
    let mut resume = config(&split, 3);
    resume.resume = true;
    resume.lr = 1e-4;
    let resumed = train(resume, data()).unwrap();
    assert_eq!(resumed.rows.len(), 6);
    let lrs: Vec<f64> = rows.iter().map(|r| r.lr).collect();
    assert!(lrs[0] > lrs[2] && lrs[2] > lrs[4], "schedule: {lrs:?}");
    for (a, b) in resumed.rows.iter().zip(&rows) {
        assert_eq!((a.epoch, &a.split), (b.epoch, &b.split));
        assert_eq!(a.lr, b.lr, "epoch {} learning rate", a.epoch);
        assert_eq!(
            a.metrics.image, b.metrics.image,
            "epoch {} {}",
            a.epoch, a.split
        );
        assert_eq!(
            a.metrics.fov, b.metrics.fov,
            "epoch {} {}",
            a.epoch, a.split
        );
        let rel = (a.metrics.loss - b.metrics.loss).abs() / b.metrics.loss;
        assert!(
            rel < 1e-5,
            "epoch {} {} loss {} vs {}",
            a.epoch,
            a.split,
            a.metrics.loss,
            b.metrics.loss
        );
    }
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    train(config(&out, 1), data()).unwrap();
    let root = checkpoint::checkpoints_dir(&out);
    let before = std::fs::read(root.join(LAST).join("model.mpk")).unwrap();

    // An absurd learning rate blows the weights up: the loss becomes NaN/inf in epoch 2.
    let mut resume = config(&out, 3);
    resume.resume = true;
    resume.resume_lr = Some(1e30);
    let err = train(resume, data()).unwrap_err();
    let log = std::fs::read_to_string(out.join("train.log")).unwrap();
    assert!(
        log.contains("resuming with base learning rate 1e30 instead of the checkpoint's 2e-3"),
        "the changed learning rate is logged"
    );
    match &err {
        TrainError::NonFiniteLoss { epoch, kept, .. } => {
            assert_eq!(*epoch, 2);
            assert!(kept.contains("epoch 1"), "{kept}");
        }
        other => panic!("expected NonFiniteLoss, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("lower the learning rate"), "{message}");
    let meta = checkpoint::read_meta(&root.join(LAST)).unwrap();
    assert_eq!(meta.epoch, 1);
    assert_eq!(
        std::fs::read(root.join(LAST).join("model.mpk")).unwrap(),
        before
    );
    checkpoint::load_model::<Flex>(&root.join(LAST), &Default::default()).unwrap();
    let rows = read_csv(&out.join("metrics.csv")).unwrap();
    assert!(rows.iter().all(|r| r.epoch == 1));
}

#[test]
fn settings_are_validated() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), 1);
    c.batch_size = 1;
    let err = train(c, data()).unwrap_err();
    assert!(err.to_string().contains("BatchNorm"), "{err}");
    let mut unlabelled = data();
    unlabelled.valid[0].vessels = None;
    let err = train(config(dir.path(), 1), unlabelled).unwrap_err();
    assert!(err.to_string().contains("synthetic-100"), "{err}");
    let mut c = config(dir.path(), 1);
    c.resume = true;
    let err = train(c.clone(), data()).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
    // A batch counts samples: 6 whole images are fewer than 8, 6 images × 2 crops are not (the run
    // gets as far as looking for the checkpoint to resume).
    c.batch_size = 8;
    let err = train(c.clone(), data()).unwrap_err();
    assert!(
        err.to_string().contains("fewer than one batch of 8"),
        "{err}"
    );
    c.crop = Some(32);
    c.crops_per_image = 2;
    let err = train(c, data()).unwrap_err();
    assert!(err.to_string().contains("nothing to resume"), "{err}");
}

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
        for i in 0..w * h {
            let pred = sum[i] / weight[i] >= 0.5;
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
    }
    ByHand {
        image,
        fov: fov_counts,
        loss: losses.iter().sum::<f64>() / losses.len() as f64,
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
    let _serial = serial();
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
    let _serial = serial();
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
    let _serial = serial();
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
