//! Backend choice at run time: what `--device` names ([`choice`]) and running a job on the
//! backend it picks ([`dispatch`](mod@dispatch): CUDA, wgpu or the CPU, each probed on a thread of its own by
//! [`probe`]), with glibc's `malloc` set up for tensor work around CPU jobs
//! ([`cpu_allocator`]). Uses nothing else of the crate but its error type; training,
//! prediction and evaluation run through it.

pub mod choice;
pub mod cpu_allocator;
pub mod dispatch;
pub mod probe;

pub use choice::{DeviceChoice, DeviceName, DEVICE_NAMES};
pub use dispatch::{cuda_visibility, dispatch, probe_thread, Adapter, BackendJob};
