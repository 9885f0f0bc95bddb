//! Backend choice at run time. One binary holds every backend it was built with: CUDA (feature
//! `cuda`), wgpu — Vulkan, Metal, DX12 — (feature `wgpu`) and always Burn's Flex CPU backend.
//!
//! `auto` tries CUDA, then wgpu on a hardware GPU (a software adapter such as Mesa's lavapipe is
//! skipped: it is a correctness tool, far slower than Flex), then the CPU, and says what it picked
//! and why. A device is probed by initialising it and running one small kernel on a separate
//! thread; a failure (a missing driver, toolkit or adapter) becomes a message, not a crash, and
//! panics of other threads still reach the process's panic hook while the probe runs.

use std::sync::Mutex;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;

pub use crate::device::choice::{DeviceChoice, DeviceName, DEVICE_NAMES};
use crate::device::cpu_allocator;
pub use crate::device::probe::probe_thread;
use crate::error::TrainError;

/// Work that runs on whichever backend was chosen.
pub trait BackendJob {
    /// What the job returns.
    type Output;
    /// `device_name` describes the device for logs and reports.
    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output;
}

/// Runs `job` on the chosen device. `Auto` falls back with one line saying why; an explicit GPU
/// that does not work is an error saying why and what to do.
pub fn dispatch<J: BackendJob>(choice: DeviceChoice, job: J) -> Result<J::Output, TrainError> {
    Ok(match resolve(choice)? {
        Resolved::Cpu => run_cpu(job),
        Resolved::Cuda(index, name) => cuda::run(job, index, name),
        Resolved::Wgpu(index, name) => wgpu::run(job, index, name),
    })
}

/// The device a choice runs on, with its description.
#[derive(Debug, Clone)]
enum Resolved {
    Cpu,
    Cuda(usize, String),
    Wgpu(Option<usize>, String),
}

/// Each choice is probed once per process: a wgpu device initialises only once, and `auto` says
/// what it picked once (a run that trains and then predicts asks twice).
fn resolve(choice: DeviceChoice) -> Result<Resolved, TrainError> {
    static ANSWERS: Mutex<Vec<(DeviceChoice, Result<Resolved, String>)>> = Mutex::new(Vec::new());
    let mut answers = ANSWERS.lock().unwrap_or_else(|e| e.into_inner());
    let answer = match answers.iter().find(|(c, _)| *c == choice) {
        Some((_, answer)) => answer.clone(),
        None => {
            let answer = probe_choice(choice);
            answers.push((choice, answer.clone()));
            answer
        }
    };
    answer.map_err(TrainError::Device)
}

fn probe_choice(choice: DeviceChoice) -> Result<Resolved, String> {
    match choice {
        DeviceChoice::Cpu => Ok(Resolved::Cpu),
        DeviceChoice::Cuda(index) => cuda::probe(index)
            .map(|name| Resolved::Cuda(index, name))
            .map_err(|reason| format!("cuda:{index} cannot be used: {reason}")),
        DeviceChoice::Wgpu(index) => wgpu::probe(index)
            .map(|adapter| Resolved::Wgpu(index, adapter.describe()))
            .map_err(|reason| format!("{choice} cannot be used: {reason}")),
        DeviceChoice::Auto => {
            let cuda_reason = match cuda::probe(0) {
                Ok(name) => return Ok(Resolved::Cuda(0, name)),
                Err(reason) => reason,
            };
            let wgpu_reason = match wgpu::probe_hardware() {
                Ok((index, adapter)) => {
                    note(&format!(
                        "CUDA not available ({cuda_reason}); using {}",
                        adapter.describe()
                    ));
                    return Ok(Resolved::Wgpu(Some(index), adapter.describe()));
                }
                Err(reason) => reason,
            };
            note(&format!(
                "no GPU used: CUDA not available ({cuda_reason}); wgpu: {wgpu_reason}; using the CPU \
                 (Flex backend)"
            ));
            Ok(Resolved::Cpu)
        }
    }
}

/// One line through the `log` facade (the CLI prints it).
fn note(message: &str) {
    log::warn!("{message}");
}

/// Runs `job` on Flex with `malloc` keeping freed buffers for reuse during the job
/// ([`cpu_allocator`]), and the memory it kept handed back afterwards.
fn run_cpu<J: BackendJob>(job: J) -> J::Output {
    let threads = rayon::current_num_threads();
    let tuning = cpu_allocator::tune();
    log::debug!("malloc for the CPU job: {tuning:?}");
    let output =
        job.run::<Autodiff<Flex>>(Default::default(), format!("CPU (Flex, {threads} threads)"));
    cpu_allocator::release();
    output
}

/// Whether `CUDA_VISIBLE_DEVICES` (its value `visible`, `None` when unset) leaves GPU `index`
/// visible: an empty list, or one starting with `-1`, hides every GPU; otherwise the list's
/// entries up to the first invalid one (a negative number) are the visible GPUs, numbered from 0.
pub fn cuda_visibility(visible: Option<&str>, index: usize) -> Result<(), String> {
    let Some(list) = visible else {
        return Ok(());
    };
    let count = list
        .split(',')
        .map(str::trim)
        .take_while(|e| !e.is_empty() && !e.starts_with('-'))
        .count();
    match count {
        0 => Err(format!(
            "CUDA_VISIBLE_DEVICES=\"{list}\" hides every GPU; unset it or list the GPUs to use"
        )),
        n if index >= n => Err(format!(
            "CUDA_VISIBLE_DEVICES=\"{list}\" makes {n} GPU(s) visible, numbered from 0: choose \
             cuda:0 to cuda:{}",
            n - 1
        )),
        _ => Ok(()),
    }
}

/// What to do when CUDA is not found.
#[allow(dead_code)]
const CUDA_HELP: &str = "if CUDA is installed, set CUDA_PATH to the toolkit folder (the one with \
                         include/cuda.h; default /usr/local/cuda) and make libcuda and libnvrtc \
                         loadable (LD_LIBRARY_PATH)";

/// The cause of a failed CUDA initialisation in a few words (driver and toolkit messages list
/// dozens of library names), and what to do.
#[allow(dead_code)]
fn explain_cuda(message: &str) -> String {
    let cause = if message.contains("load the \"cuda\" shared library") {
        "the NVIDIA driver library (libcuda) was not found".into()
    } else if message.contains("load the \"nvrtc\" shared library") {
        "the CUDA runtime compiler (libnvrtc, in the CUDA toolkit) was not found".into()
    } else if message.contains("CUDA installation not found") {
        "no CUDA toolkit found (CUDA_PATH unset, no /usr/local/cuda or /opt/cuda)".into()
    } else {
        first_words(message)
    };
    format!("{cause}; {CUDA_HELP}")
}

/// At most the first 200 characters of `message`.
#[allow(dead_code)]
fn first_words(message: &str) -> String {
    match message.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &message[..i]),
        None => message.to_string(),
    }
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::{probe_thread, BackendJob};
    use burn::backend::cuda::CudaDevice;
    use burn::backend::{Autodiff, Cuda};
    use burn::prelude::*;

    /// Initialises `cuda:index` and runs one kernel (driver, NVRTC and toolkit headers all used),
    /// unless `CUDA_VISIBLE_DEVICES` hides it.
    pub fn probe(index: usize) -> Result<String, String> {
        super::cuda_visibility(std::env::var("CUDA_VISIBLE_DEVICES").ok().as_deref(), index)?;
        let result = probe_thread(move || {
            let device = CudaDevice::new(index);
            Tensor::<Cuda, 1>::ones([8], &device)
                .add_scalar(1.0)
                .sum()
                .into_scalar()
                .elem::<f32>()
        });
        match result {
            Ok(v) if v == 16.0 => Ok(format!("CUDA GPU {index}")),
            Ok(v) => Err(format!("the CUDA probe kernel returned {v} instead of 16")),
            Err(reason) => Err(super::explain_cuda(&reason)),
        }
    }

    pub fn run<J: BackendJob>(job: J, index: usize, name: String) -> J::Output {
        job.run::<Autodiff<Cuda>>(CudaDevice::new(index), name)
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::BackendJob;

    pub fn probe(_index: usize) -> Result<String, String> {
        Err("this binary was built without the `cuda` feature".into())
    }

    pub fn run<J: BackendJob>(_job: J, _index: usize, _name: String) -> J::Output {
        unreachable!("probe() always fails without the cuda feature")
    }
}

/// A wgpu adapter that initialised.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The adapter's name, as the driver reports it.
    pub name: String,
    /// wgpu's device type: `DiscreteGpu`, `IntegratedGpu`, `VirtualGpu`, `Cpu` or `Other`.
    pub kind: String,
    /// The graphics API it runs on (Vulkan, Metal, DX12, …).
    pub backend: String,
}

impl Adapter {
    fn describe(&self) -> String {
        format!("wgpu {} ({}, {})", self.name, self.kind, self.backend)
    }
}

#[cfg(feature = "wgpu")]
mod wgpu {
    use super::{probe_thread, Adapter, BackendJob};
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, RuntimeOptions, WgpuDevice};
    use burn::backend::{Autodiff, Wgpu};
    use burn::prelude::*;

    const HELP: &str = "wgpu needs a Vulkan, Metal or DX12 driver (on Linux the Vulkan loader and \
                        a driver, e.g. Debian's libvulkan1 and mesa-vulkan-drivers)";

    fn device(index: Option<usize>) -> WgpuDevice {
        match index {
            None => WgpuDevice::DefaultDevice,
            Some(n) => WgpuDevice::DiscreteGpu(n),
        }
    }

    fn probe_device(device: WgpuDevice) -> Result<Adapter, String> {
        probe_thread(move || {
            let setup = init_setup::<AutoGraphicsApi>(&device, RuntimeOptions::default());
            let info = setup.adapter.get_info();
            let sum: f32 = Tensor::<Wgpu, 1>::ones([8], &device)
                .add_scalar(1.0)
                .sum()
                .into_scalar()
                .elem();
            (
                info.name,
                format!("{:?}", info.device_type),
                format!("{:?}", info.backend),
                sum,
            )
        })
        .map_err(|reason| {
            let cause = if reason.contains("No possible adapter") || reason.contains("device found")
            {
                "no wgpu adapter found".to_string()
            } else {
                super::first_words(&reason)
            };
            format!("{cause}; {HELP}")
        })
        .and_then(|(name, kind, backend, sum)| {
            if sum == 16.0 {
                Ok(Adapter {
                    name,
                    kind,
                    backend,
                })
            } else {
                Err(format!(
                    "the wgpu probe kernel returned {sum} instead of 16"
                ))
            }
        })
    }

    /// Initialises the adapter `index` selects and runs one kernel.
    pub fn probe(index: Option<usize>) -> Result<Adapter, String> {
        probe_device(device(index))
    }

    /// The first discrete GPU, else wgpu's default adapter if it is a hardware GPU.
    pub fn probe_hardware() -> Result<(usize, Adapter), String> {
        if let Ok(adapter) = probe_device(WgpuDevice::DiscreteGpu(0)) {
            if adapter.kind == "DiscreteGpu" {
                return Ok((0, adapter));
            }
        }
        let adapter = probe_device(WgpuDevice::DefaultDevice)?;
        match adapter.kind.as_str() {
            "DiscreteGpu" | "IntegratedGpu" => Err(format!(
                "{} is not the first discrete GPU: choose it with --device wgpu",
                adapter.describe()
            )),
            _ => Err(format!(
                "only a software adapter ({}); --device wgpu uses it anyway",
                adapter.describe()
            )),
        }
    }

    pub fn run<J: BackendJob>(job: J, index: Option<usize>, name: String) -> J::Output {
        job.run::<Autodiff<Wgpu>>(device(index), name)
    }
}

#[cfg(not(feature = "wgpu"))]
mod wgpu {
    use super::{Adapter, BackendJob};

    const MISSING: &str = "this binary was built without the `wgpu` feature";

    pub fn probe(_index: Option<usize>) -> Result<Adapter, String> {
        Err(MISSING.into())
    }

    pub fn probe_hardware() -> Result<(usize, Adapter), String> {
        Err(MISSING.into())
    }

    pub fn run<J: BackendJob>(_job: J, _index: Option<usize>, _name: String) -> J::Output {
        unreachable!("probe() always fails without the wgpu feature")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuda_visible_devices_is_respected() {
        assert_eq!(cuda_visibility(None, 3), Ok(()));
        assert_eq!(cuda_visibility(Some("0,1"), 1), Ok(()));
        assert_eq!(cuda_visibility(Some("GPU-5d3e,MIG-1"), 0), Ok(()));
        for hidden in ["", " ", "-1", "-1,0"] {
            let err = cuda_visibility(Some(hidden), 0).unwrap_err();
            assert!(err.contains("hides every GPU"), "{hidden:?}: {err}");
        }
        let err = cuda_visibility(Some("2,-1,3"), 1).unwrap_err();
        assert!(
            err.contains("1 GPU(s) visible") && err.contains("cuda:0 to cuda:0"),
            "{err}"
        );
    }

    /// Messages cudarc and cubecl give when CUDA is missing, as seen on machines without it.
    #[test]
    fn missing_cuda_is_explained() {
        for (raw, cause) in [
            (
                "Unable to dynamically load the \"cuda\" shared library - searched for library \
                 names: [\"libcuda.so\", ...]",
                "libcuda",
            ),
            (
                "Unable to dynamically load the \"nvrtc\" shared library - searched for ...",
                "libnvrtc",
            ),
            ("CUDA installation not found", "no CUDA toolkit found"),
        ] {
            let text = explain_cuda(raw);
            assert!(text.contains(cause) && text.contains("CUDA_PATH"), "{text}");
            assert!(!text.contains("searched for"), "{text}");
        }
        let long = "x".repeat(500);
        assert!(explain_cuda(&long).starts_with(&format!("{}…", "x".repeat(200))));
    }

    /// A probe's panic becomes an error, and the process's own hook sees panics of other threads
    /// again afterwards.
    #[test]
    fn probe_panics_are_caught_and_the_hook_is_kept() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SEEN: AtomicUsize = AtomicUsize::new(0);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {
            SEEN.fetch_add(1, Ordering::SeqCst);
        }));
        let err = probe_thread(|| -> u32 { panic!("no driver\n  here") }).unwrap_err();
        assert_eq!(err, "no driver here");
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            0,
            "the probe's panic stays quiet"
        );
        let _ = std::thread::spawn(|| panic!("another thread")).join();
        assert_eq!(
            SEEN.load(Ordering::SeqCst),
            1,
            "the process's hook still runs"
        );
        std::panic::set_hook(previous);
    }
}
