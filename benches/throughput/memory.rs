//! Peak memory: the GPU's as `nvidia-smi` reports it, the process's resident set on the CPU.

use std::time::Duration;

/// Samples `nvidia-smi`'s memory.used (MiB) of GPU 0 until stopped; returns the maximum.
pub struct MemorySampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Option<f64>>>,
}

impl MemorySampler {
    pub fn start(enabled: bool) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = enabled.then(|| {
            std::thread::spawn(move || {
                let mut peak: Option<f64> = None;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(v) =
                        nvidia_smi(&["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
                            .and_then(|s| {
                                s.lines().next().and_then(|l| l.trim().parse::<f64>().ok())
                            })
                    {
                        peak = Some(peak.map_or(v, |p: f64| p.max(v)));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                peak.map(|mib| mib / 1024.0)
            })
        });
        Self { stop, handle }
    }

    pub fn finish(mut self) -> Option<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok().flatten())
    }
}

/// The process's peak resident set so far (`VmHWM` of `/proc/self/status`, Linux), GiB.
pub fn peak_rss_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
}

pub fn nvidia_smi(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
