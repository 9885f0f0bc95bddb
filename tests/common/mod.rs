//! Running the `retina-seg` binary from the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with `args` in `cwd`.
pub fn run(args: &[&str], cwd: &Path) -> Output {
    run_env(args, cwd, &[])
}

/// Runs the binary with `args` in `cwd` and extra environment variables.
pub fn run_env(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retina-seg"))
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .output()
        .expect("the binary runs")
}

/// stdout then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The output of a run that must succeed.
pub fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", text(o));
    text(o)
}

/// `train` with `source` (data, weights, device), then R50 at `imgsz`, one epoch, no loader
/// threads, into `run`, then `extra`.
pub fn train_args<'a>(source: &[&'a str], imgsz: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train"];
    args.extend_from_slice(source);
    args.extend_from_slice(&[
        "--imgsz",
        imgsz,
        "--epochs",
        "1",
        "--workers",
        "0",
        "--out",
        "run",
    ]);
    args.extend_from_slice(extra);
    args
}

/// Tiny training on `data` into `run` from scratch on the CPU at `imgsz`.
pub fn train_tiny(d: &Path, imgsz: &str, extra: &[&str]) -> Output {
    let source = ["--weights", "none", "--data", "data", "--device", "cpu"];
    run(&train_args(&source, imgsz, extra), d)
}

/// `synth --out data` in `d` with `extra` (layout, count, size), which must succeed.
pub fn synth(d: &Path, extra: &[&str]) -> String {
    let mut args = vec!["synth", "--out", "data"];
    args.extend_from_slice(extra);
    ok(&run(&args, d))
}

/// `predict` on the CPU from `checkpoint` over `input` into `out`, then `extra`.
pub fn predict<'a>(
    checkpoint: &'a str,
    input: &'a str,
    out: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "predict",
        "--checkpoint",
        checkpoint,
        "--input",
        input,
        "--out",
        out,
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    args
}

/// `evaluate` of the predictions in `pred` against `data`, then `extra`.
pub fn evaluate_pred<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["evaluate", "--predictions", "pred", "--data", "data"];
    args.extend_from_slice(extra);
    args
}

/// A JSON file's content.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
