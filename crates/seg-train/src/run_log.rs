//! `train.log` of one run: the run's own messages, appended to `<out>/train.log`.
//!
//! Each run writes its own file, so several trainings in one process (a sweep, a test suite) never
//! mix their logs, which a process-wide logger bound to the first run's folder would do. Messages
//! also go to the `log` facade for applications that install a logger of their own.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends lines to `<out>/train.log`; writing never fails a run (a full disk only loses log lines).
#[derive(Debug, Clone)]
pub struct RunLog {
    path: PathBuf,
}

impl RunLog {
    /// The log of the run writing to `out`.
    pub fn new(out: &Path) -> Self {
        Self {
            path: out.join("train.log"),
        }
    }

    /// Where the lines go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn info(&self, message: &str) {
        log::info!("{message}");
        self.append("INFO", message);
    }

    pub fn warn(&self, message: &str) {
        log::warn!("{message}");
        self.append("WARN", message);
    }

    pub fn error(&self, message: &str) {
        log::error!("{message}");
        self.append("ERROR", message);
    }

    fn append(&self, level: &str, message: &str) {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            for line in message.lines() {
                let _ = writeln!(file, "{secs} {level:<5} {line}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_keep_separate_logs() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunLog::new(&dir.path().join("a"));
        let b = RunLog::new(&dir.path().join("b"));
        a.info("first\nsecond");
        b.warn("other run");
        a.error("bad");
        let text = std::fs::read_to_string(a.path()).unwrap();
        let levels: Vec<(&str, &str)> = text
            .lines()
            .map(|l| {
                let mut parts = l.splitn(3, ' ');
                parts.next();
                (parts.next().unwrap(), parts.next().unwrap().trim())
            })
            .collect();
        assert_eq!(
            levels,
            [("INFO", "first"), ("INFO", "second"), ("ERROR", "bad")]
        );
        let other = std::fs::read_to_string(b.path()).unwrap();
        assert!(other.contains("WARN") && other.contains("other run"));
        assert!(!other.contains("first"));
    }
}
