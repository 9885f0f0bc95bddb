//! Killing a run (SIGKILL) while it writes a checkpoint leaves loadable checkpoints, and the run
//! resumes from them. The test starts its own binary's ignored `kill_test_child` as the training
//! child process, which stretches each checkpoint write stage (`checkpoint::on_write_stage`) so
//! kills land inside it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

mod common;

use burn::backend::Flex;
use seg_train::model::checkpoint::{self, BEST_IOU, LAST};
use seg_train::train;

const CHILD_ENV: &str = "SEG_TRAIN_KILL_TEST_OUT";

/// The child process of `kill_during_checkpoint_writes`, which starts it with `--ignored` and
/// the output folder in `SEG_TRAIN_KILL_TEST_OUT`: trains a tiny model for many epochs (resuming
/// when a checkpoint exists) until killed. Ignored because on its own it would run for hours.
#[test]
#[ignore = "child process of kill_during_checkpoint_writes, which starts it"]
fn kill_test_child() {
    let out = std::env::var_os(CHILD_ENV)
        .map(PathBuf::from)
        .expect("started by kill_during_checkpoint_writes with SEG_TRAIN_KILL_TEST_OUT set");
    checkpoint::on_write_stage(|_| std::thread::sleep(Duration::from_millis(150)));
    let mut c = common::tiny_config(&out, 32, 1000);
    c.checkpoint_every_s = 0;
    c.resume = checkpoint::resolve(&checkpoint::checkpoints_dir(&out), LAST).is_some();
    let _ = train(c, common::data(2, 1, 64, 64));
}

fn spawn(out: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "kill_test_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, out)
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
