//! `train.log` of one run: the run's own messages, appended to `<out>/train.log`, each line
//! starting with its time in ISO 8601 (UTC, e.g. `2026-11-30T05:50:04Z`).
//!
//! Each run writes its own file, so several trainings in one process (a sweep, a test suite) never
//! mix their logs, which a process-wide logger bound to the first run's folder would do. Messages
//! also go to the `log` facade: this crate never prints; an application shows them by installing
//! a logger (the `retina-seg` CLI prints them). The end-of-epoch summaries use the target
//! [`EPOCH_TARGET`] and the periodic progress lines [`PROGRESS_TARGET`], so that an application
//! that draws its own progress display can leave them out.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// `log` target of the one-line summary written at the end of every epoch.
pub const EPOCH_TARGET: &str = "seg_train::epoch";
/// `log` target of the periodic progress lines within an epoch (logs and CI; a terminal gets
/// burn-train's interactive display instead).
pub const PROGRESS_TARGET: &str = "seg_train::train::progress";

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

    /// An informational message.
    pub fn info(&self, message: &str) {
        log::info!("{message}");
        self.append("INFO", message);
    }

    /// The end-of-epoch summary (target [`EPOCH_TARGET`]).
    pub fn epoch(&self, message: &str) {
        log::info!(target: EPOCH_TARGET, "{message}");
        self.append("INFO", message);
    }

    /// Something the user should know about (the run goes on).
    pub fn warn(&self, message: &str) {
        log::warn!("{message}");
        self.append("WARN", message);
    }

    /// What stopped the run.
    pub fn error(&self, message: &str) {
        log::error!("{message}");
        self.append("ERROR", message);
    }

    fn append(&self, level: &str, message: &str) {
        let time = iso8601_utc(SystemTime::now());
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut file) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            for line in message.lines() {
                let _ = writeln!(file, "{time} {level:<5} {line}");
            }
        }
    }
}

/// `time` as `YYYY-MM-DDThh:mm:ssZ` (UTC, whole seconds; times before 1970 read as 1970).
pub fn iso8601_utc(time: SystemTime) -> String {
    let secs = time
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
                let time = parts.next().unwrap();
                assert_eq!(time.len(), "2026-11-30T05:50:04Z".len(), "{l}");
                assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{l}");
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

    /// Dates checked against Python's `datetime.fromtimestamp(t, timezone.utc)`.
    #[test]
    fn times_read_as_iso_8601() {
        let at = |secs: u64| iso8601_utc(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_796_013_173), "2026-11-30T04:32:53Z");
        assert_eq!(at(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(at(951_868_800), "2000-03-01T00:00:00Z");
    }
}
