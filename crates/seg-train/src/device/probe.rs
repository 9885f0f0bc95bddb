//! Probing a device on a thread of its own: a driver that panics while it initialises becomes an
//! error message, and the process's panic hook stays in charge of every other panic.

use std::sync::{Arc, Mutex};

/// The name probe threads carry; the panic hook keeps their panics quiet.
const PROBE_THREAD: &str = "retina-seg-device-probe";

/// Serialises probes (each swaps the panic hook for its duration).
static PROBE_LOCK: Mutex<()> = Mutex::new(());

/// Whether a panic belongs to a probe: raised on the probe thread, or by the GPU stack (cudarc,
/// cubecl, wgpu) on one of its own threads while a probe runs.
fn is_probe_panic(info: &std::panic::PanicHookInfo<'_>) -> bool {
    std::thread::current().name() == Some(PROBE_THREAD)
        || info.location().is_some_and(|l| {
            let file = l.file();
            ["cudarc", "cubecl", "wgpu", "burn-cuda", "burn-wgpu"]
                .iter()
                .any(|krate| file.contains(krate))
        })
}

/// Runs `f` on a probe thread; a panic becomes `Err(message)`, the message of the first panic the
/// probe caused (often raised on a driver thread, with the root cause). While it runs, the
/// process's panic hook stays in charge of every other panic (the probe only adds a filter in
/// front of it) and it is the hook again afterwards.
pub fn probe_thread<R: Send + 'static>(
    f: impl FnOnce() -> R + Send + 'static,
) -> Result<R, String> {
    let _guard = PROBE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let previous: Arc<Box<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync>> =
        Arc::new(std::panic::take_hook());
    let forward = previous.clone();
    let first = Arc::new(Mutex::new(None::<String>));
    let record = first.clone();
    std::panic::set_hook(Box::new(move |info| {
        if !is_probe_panic(info) {
            return forward(info);
        }
        let mut slot = record.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(info.payload_as_str().unwrap_or("panicked").to_string());
        }
    }));
    let result = std::thread::Builder::new()
        .name(PROBE_THREAD.into())
        .spawn(f)
        .map_err(|e| format!("cannot start the probe thread: {e}"))
        .and_then(|handle| {
            handle
                .join()
                .map_err(|_| String::from("initialisation failed"))
        });
    drop(std::panic::take_hook());
    std::panic::set_hook(Box::new(move |info| previous(info)));
    let first = first.lock().unwrap_or_else(|e| e.into_inner()).take();
    result.map_err(|fallback| {
        // Burn and its drivers write multi-line messages: keep them on one line.
        let message = first.unwrap_or(fallback);
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    })
}
