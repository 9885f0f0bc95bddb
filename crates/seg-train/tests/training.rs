//! End-to-end training on the CPU (Flex) with a tiny DeepLabV3 and a tiny synthetic set: loss goes
//! down, every output is written and parses, checkpoints agree with metrics.csv, resuming gives
//! the uninterrupted run's numbers, `last` is written on a timer with the same checkpoints as
//! after every epoch, and a non-finite loss stops training keeping the last good checkpoint.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor};
use drive_data::AugmentConfig;
use seg_train::metrics::history::read_csv;
use seg_train::model::checkpoint::{self, WriteStage, BEST_IOU, BEST_LOSS, LAST};
use seg_train::train::schedule::ScheduleKind;
use seg_train::{train, TrainConfig, TrainData, TrainError, TrainSummary};

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
    let _serial = common::serial();
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
            let iou = |r: &&&seg_train::metrics::history::EpochRow| {
                r.metrics.fov.vessel_iou().unwrap_or(0.0)
            };
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

/// The output folder whose checkpoint commits [`record_commit`] records, and what it recorded:
/// `(name, epoch)` of each checkpoint as its `meta.json` is written.
static WATCHED: Mutex<Option<PathBuf>> = Mutex::new(None);
static COMMITS: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

fn record_commit(stage: WriteStage) {
    let Some(root) = WATCHED.lock().unwrap().clone() else {
        return;
    };
    if stage != WriteStage::Meta {
        return;
    }
    for entry in std::fs::read_dir(&root).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(name) = name.strip_prefix(".tmp-") {
            let meta = checkpoint::read_meta(&entry.path()).unwrap();
            COMMITS.lock().unwrap().push((name.to_string(), meta.epoch));
        }
    }
}

/// Trains `config` recording its checkpoint commits.
fn commits_of(config: TrainConfig) -> (Result<TrainSummary, TrainError>, Vec<(String, usize)>) {
    let root = checkpoint::checkpoints_dir(&config.out);
    COMMITS.lock().unwrap().clear();
    *WATCHED.lock().unwrap() = Some(root);
    let result = train(config, data());
    *WATCHED.lock().unwrap() = None;
    (result, std::mem::take(&mut *COMMITS.lock().unwrap()))
}

/// `name`'s checkpoint in the runs `a` and `b` (folders in `dir`): same epoch, metrics and
/// weights (the same outputs).
fn assert_same_checkpoint(dir: &Path, a: &str, b: &str, name: &str) {
    let device = Default::default();
    let load = |run: &str| {
        let dir = checkpoint::checkpoints_dir(&dir.join(run)).join(name);
        checkpoint::load_model::<Flex>(&dir, &device)
            .unwrap_or_else(|e| panic!("{run}'s {name}: {e}"))
    };
    let ((model_a, meta_a), (model_b, meta_b)) = (load(a), load(b));
    assert_eq!(meta_a.epoch, meta_b.epoch, "{name}");
    assert_eq!(meta_a.valid, meta_b.valid, "{name}");
    assert_eq!(meta_a.best_vessel_iou, meta_b.best_vessel_iou, "{name}");
    assert_eq!(meta_a.best_valid_loss, meta_b.best_valid_loss, "{name}");
    let input = Tensor::<Flex, 4>::random([1, 3, 64, 64], Distribution::Default, &device);
    let diff = (model_a.forward(input.clone()).out - model_b.forward(input).out)
        .abs()
        .max()
        .into_scalar();
    assert!(diff <= 1e-5, "{name}: outputs differ by {diff}");
}

fn lasts(commits: &[(String, usize)]) -> Vec<usize> {
    commits
        .iter()
        .filter(|(name, _)| name == LAST)
        .map(|&(_, epoch)| epoch)
        .collect()
}

#[test]
fn last_is_written_on_a_timer_with_the_same_checkpoints() {
    let _serial = common::serial();
    checkpoint::on_write_stage(record_commit);
    let dir = tempfile::tempdir().unwrap();
    let timed = |name: &str, epochs: usize, every: u64| {
        let mut c = config(&dir.path().join(name), epochs);
        c.checkpoint_every_s = every;
        c
    };

    // A run to its end: `last` after the first and the final epoch only, and the same
    // checkpoints as with a write after every epoch.
    let finished = |name: &str, every: u64| {
        let (result, commits) = commits_of(timed(name, 4, every));
        result.unwrap();
        commits
    };
    let each = finished("each", 0);
    let hourly = finished("hourly", 3600);
    assert_eq!(lasts(&each), [1, 2, 3, 4], "{each:?}");
    assert_eq!(lasts(&hourly), [1, 4], "{hourly:?}");
    for name in [LAST, BEST_IOU, BEST_LOSS] {
        assert_same_checkpoint(dir.path(), "each", "hourly", name);
    }

    // A run that stops (the loss explodes in epoch 4): the best models held since epoch 1's
    // `last` are written when it stops, the same as those written after every epoch.
    let explode = |name: &str, every: u64| {
        let mut c = timed(name, 6, every);
        c.schedule = ScheduleKind::MultiStep {
            milestones: vec![3],
            gamma: 1e30,
        };
        let (result, commits) = commits_of(c);
        let err = result.unwrap_err();
        assert!(
            matches!(err, TrainError::NonFiniteLoss { epoch: 4, .. }),
            "{err}"
        );
        commits
    };
    let each = explode("explode-each", 0);
    let hourly = explode("explode-hourly", 3600);
    assert_eq!(lasts(&each), [1, 2, 3], "{each:?}");
    assert_eq!(lasts(&hourly), [1], "{hourly:?}");
    let held: Vec<_> = hourly.iter().filter(|(_, epoch)| *epoch > 1).collect();
    assert!(
        !held.is_empty(),
        "the validation loss improved after epoch 1, and its model was written: {hourly:?}"
    );
    for name in [BEST_IOU, BEST_LOSS] {
        assert_same_checkpoint(dir.path(), "explode-each", "explode-hourly", name);
    }
}

#[test]
fn non_finite_loss_stops_and_keeps_the_last_good_checkpoint() {
    let _serial = common::serial();
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
    let _serial = common::serial();
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
