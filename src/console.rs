//! What the command line prints of the libraries' messages: the libraries (`seg-train`,
//! `deeplab`, `drive-data`) only write to the `log` facade; this logger shows their messages at
//! level info and above, warnings and errors on stderr. Other crates' messages (Burn, wgpu, …)
//! are not shown. While burn-train's interactive display owns the terminal, the per-epoch and
//! progress lines are left to it.

use std::io::IsTerminal;

use log::{Level, LevelFilter, Log, Metadata, Record};
use seg_train::train::run_log::{EPOCH_TARGET, PROGRESS_TARGET};

/// The crates whose messages are printed.
const OURS: [&str; 4] = ["seg_train", "deeplab", "drive_data", "retina_seg"];

struct Console {
    /// stdout is a terminal: training draws burn-train's interactive display there.
    interactive: bool,
}

impl Log for Console {
    fn enabled(&self, metadata: &Metadata) -> bool {
        let target = metadata.target();
        metadata.level() <= Level::Info
            && OURS
                .iter()
                .any(|c| target == *c || target.starts_with(&format!("{c}::")))
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let target = record.target();
        if self.interactive && (target == EPOCH_TARGET || target == PROGRESS_TARGET) {
            return;
        }
        match record.level() {
            Level::Error => eprintln!("error: {}", record.args()),
            Level::Warn => eprintln!("warning: {}", record.args()),
            _ => println!("{}", record.args()),
        }
    }

    fn flush(&self) {}
}

/// Installs the console logger (once per process; later calls change nothing).
pub fn install() {
    let console = Console {
        interactive: std::io::stdout().is_terminal(),
    };
    if log::set_boxed_logger(Box::new(console)).is_ok() {
        log::set_max_level(LevelFilter::Info);
    }
}
