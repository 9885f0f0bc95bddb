//! Several training steps match the reference library's on `Autodiff<Wgpu>`: the GPU code path
//! (CubeCL kernels, fusion), in f32 — on Mesa's software Vulkan driver (lavapipe) in `.ci/run`.
//! Tolerances as `trajectory_f32.rs`. By default `live_deeplabv3plus_os8`, a fixture whose atrous
//! taps all read pixels (the convolutions users' images run) with SMP's depthwise-separable
//! ASPP: three training steps at 296×304 take minutes on the software driver;
//! `DEEPLAB_TRAJECTORY_FIXTURE` names another (e.g. `live_deeplabv3`).
#![cfg(feature = "wgpu")]

#[path = "common/trajectory.rs"]
mod harness;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Wgpu};
use harness::{check_trajectory, committed_or_env, FLOAT32};

type B = Autodiff<Wgpu>;

/// Ignored by default because it needs a Vulkan, Metal or DX12 driver (software drivers such as
/// lavapipe work); `.ci/run` installs lavapipe when absent and runs it with `--ignored`.
#[test]
#[ignore = "needs a Vulkan/Metal/DX12 driver; .ci/run runs it on lavapipe"]
fn adam_steps_match_the_reference_wgpu() {
    let device = WgpuDevice::DefaultDevice;
    for prefix in committed_or_env(&["live_deeplabv3plus_os8"]) {
        check_trajectory::<B>(&prefix, &device, &FLOAT32);
    }
}
