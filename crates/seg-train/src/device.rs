//! Backend choice at run time: CUDA when built with the `cuda` feature and a GPU works, otherwise
//! Burn's Flex CPU backend. One binary, both monomorphisations.

use std::fmt;
use std::str::FromStr;

use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::AutodiffBackend;

use crate::error::TrainError;

/// What `--device` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA GPU 0 if available, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(Self::Cuda)
                .ok_or_else(|| format!("unknown device `{other}` (auto, cpu, cuda, cuda:N)")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

/// Work that runs on whichever backend was chosen.
pub trait BackendJob {
    type Output;
    /// `device_name` describes the device for logs and reports.
    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output;
}

/// Runs `job` on the chosen device; `Auto` falls back to the CPU with one log line.
pub fn dispatch<J: BackendJob>(choice: DeviceChoice, job: J) -> Result<J::Output, TrainError> {
    match choice {
        DeviceChoice::Cpu => Ok(run_cpu(job)),
        DeviceChoice::Auto => match cuda::probe(0) {
            Ok(()) => Ok(cuda::run(job, 0)),
            Err(reason) => {
                log::warn!("CUDA not available ({reason}); using the CPU (Flex backend)");
                eprintln!("note: CUDA not available ({reason}); using the CPU (Flex backend)");
                Ok(run_cpu(job))
            }
        },
        DeviceChoice::Cuda(index) => match cuda::probe(index) {
            Ok(()) => Ok(cuda::run(job, index)),
            Err(reason) => Err(TrainError::Device(format!(
                "cuda:{index} requested but {reason}"
            ))),
        },
    }
}

fn run_cpu<J: BackendJob>(job: J) -> J::Output {
    let threads = rayon::current_num_threads();
    job.run::<Autodiff<Flex>>(Default::default(), format!("CPU (Flex, {threads} threads)"))
}

#[cfg(feature = "cuda")]
mod cuda {
    use super::BackendJob;
    use burn::backend::cuda::CudaDevice;
    use burn::backend::{Autodiff, Cuda};
    use burn::prelude::*;

    /// Runs one real kernel on `cuda:index` (driver, NVRTC and toolkit headers all exercised) in a
    /// separate thread, catching the panic Burn raises when something is missing.
    pub fn probe(index: usize) -> Result<(), String> {
        if std::env::var_os("CUDA_PATH").is_none()
            && !std::path::Path::new("/usr/local/cuda").exists()
            && !std::path::Path::new("/opt/cuda").exists()
        {
            return Err("no CUDA toolkit found (set CUDA_PATH)".into());
        }
        if !std::path::Path::new("/dev/nvidiactl").exists() && cfg!(target_os = "linux") {
            return Err("no NVIDIA driver (/dev/nvidiactl missing)".into());
        }
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::thread::spawn(move || {
            let device = CudaDevice::new(index);
            Tensor::<Cuda, 1>::ones([8], &device)
                .add_scalar(1.0)
                .sum()
                .into_scalar()
                .elem::<f32>()
        })
        .join();
        std::panic::set_hook(hook);
        match result {
            Ok(v) if v == 16.0 => Ok(()),
            Ok(v) => Err(format!("the CUDA probe kernel returned {v} instead of 16")),
            Err(panic) => Err(panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "CUDA initialisation failed".into())),
        }
    }

    pub fn run<J: BackendJob>(job: J, index: usize) -> J::Output {
        job.run::<Autodiff<Cuda>>(CudaDevice::new(index), format!("CUDA GPU {index}"))
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use super::BackendJob;

    pub fn probe(_index: usize) -> Result<(), String> {
        Err("this binary was built without the `cuda` feature (cargo ... --features cuda)".into())
    }

    pub fn run<J: BackendJob>(_job: J, _index: usize) -> J::Output {
        unreachable!("probe() always fails without the cuda feature")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert!("tpu".parse::<DeviceChoice>().is_err());
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
    }
}
