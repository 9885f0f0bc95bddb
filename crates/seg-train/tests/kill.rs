//! Killing a run (SIGKILL) while it writes a checkpoint leaves loadable checkpoints, and the run
//! resumes from them. The test re-runs its own binary as the training child process;
//! `RETINA_SEG_CHECKPOINT_DELAY_MS` stretches each checkpoint write stage so kills land inside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use burn::backend::Flex;
use deeplab::{DeepLabV3Config, ResNetConfig};
use drive_data::synth::generate;
use drive_data::{NormalizationPreset, Sample, SynthConfig};
use seg_train::checkpoint::{self, BEST_IOU, LAST};
use seg_train::{train, DeviceChoice, TrainConfig, TrainData};

const CHILD_ENV: &str = "SEG_TRAIN_KILL_TEST_OUT";

fn samples(ids: std::ops::Range<u32>) -> Vec<Sample> {
    let config = SynthConfig {
        width: 64,
        height: 64,
        ..SynthConfig::default()
    };
    ids.map(|id| generate(&config, id as u64).into_sample(id))
        .collect()
}

/// The child: trains a tiny model for many epochs (resuming when a checkpoint exists).
#[test]
fn kill_test_child() {
    let Some(out) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return; // only does something when started by `kill_during_checkpoint_writes`
    };
    let mut c = TrainConfig::preset("r50-512").unwrap();
    c.model = DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
        .with_aspp_channels(16);
    c.imgsz = 32;
    c.epochs = 1000;
    c.workers = 0;
    c.normalization = NormalizationPreset::Drive;
    c.device = DeviceChoice::Cpu;
    c.resume = checkpoint::resolve(&checkpoint::checkpoints_dir(&out), LAST).is_some();
    c.out = out;
    let _ = train(
        c,
        TrainData {
            train: samples(0..2),
            valid: samples(10..11),
        },
    );
}

fn spawn(out: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_test_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, out)
        .env("RETINA_SEG_CHECKPOINT_DELAY_MS", "150")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn assert_loadable(root: &Path, name: &str) -> usize {
    let dir = checkpoint::resolve(root, name).unwrap_or_else(|| panic!("no committed `{name}`"));
    let (_, meta) = checkpoint::load_model::<Flex>(&dir, &Default::default())
        .unwrap_or_else(|e| panic!("`{name}` does not load: {e}"));
    meta.epoch
}

#[test]
fn kill_during_checkpoint_writes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let root = checkpoint::checkpoints_dir(&out);
    let tmp_last = root.join(".tmp-last");
    let mut last_epoch = 0;
    // Kill at different points of the write: model, optimizer, meta/rename stages.
    for (round, delay_ms) in [0u64, 120, 260, 420, 40].into_iter().enumerate() {
        let mut child = spawn(&out);
        // Wait for a checkpoint write that starts after this child's first commit (so it has
        // really resumed and is writing a new one), then kill inside it.
        wait_for("a committed checkpoint", Duration::from_secs(120), || {
            checkpoint::resolve(&root, LAST)
                .and_then(|d| checkpoint::read_meta(&d).ok())
                .is_some_and(|m| m.epoch > last_epoch)
        });
        wait_for("a checkpoint write", Duration::from_secs(120), || {
            tmp_last.exists()
        });
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let epoch = assert_loadable(&root, LAST);
        assert!(
            epoch >= last_epoch,
            "round {round}: went back from {last_epoch} to {epoch}"
        );
        assert_loadable(&root, BEST_IOU);
        last_epoch = epoch;
    }
}
