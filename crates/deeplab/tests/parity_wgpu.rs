//! Parity with torchvision on `Autodiff<Wgpu>`: the same CubeCL kernels (convolution, matmul,
//! reductions, fusion) as the CUDA backend, through Vulkan, Metal or DX12. On a machine without a
//! GPU it runs on Mesa's software Vulkan driver (lavapipe), as `.ci/run` does: a correctness check,
//! not a speed one. Fixture prefix from `DEEPLAB_PARITY_FIXTURE`, like the CPU parity tests.
//!
//! Tolerances: outputs 1e-4, gradients 5e-3 (or twice torchvision's own float32 distance from its
//! float64 reference, see `parity_f32.rs`).
#![cfg(feature = "wgpu")]

mod common;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Wgpu};
use common::{check_eval, check_train, Fixture, Tolerance};

type B = Autodiff<Wgpu>;

const TOL: Tolerance = Tolerance {
    outputs: 1e-4,
    gradients: 5e-3,
    float32: true,
};

/// Ignored by default because it needs a Vulkan, Metal or DX12 driver (software drivers such as
/// lavapipe work); `.ci/run` installs lavapipe when absent and runs it with `--ignored`. One test
/// function, so kernels are compiled once for both checks.
#[test]
#[ignore = "needs a Vulkan/Metal/DX12 driver; .ci/run runs it on lavapipe"]
fn eval_and_train_match_torchvision_wgpu() {
    autotune_cache_in_workspace_target();
    let device = WgpuDevice::DefaultDevice;
    let start = std::time::Instant::now();
    for fixture in Fixture::all() {
        check_eval::<B>(&fixture, &device, &TOL);
        println!("eval checked after {:.1} s", start.elapsed().as_secs_f64());
        check_train::<B>(&fixture, &device, &TOL);
        println!("train checked after {:.1} s", start.elapsed().as_secs_f64());
    }
}

/// cubecl keeps its autotune results beside the nearest `Cargo.toml` above the working directory
/// by default, which for this test is the crate's own folder: put them in the build's `target/`
/// (found from this test binary, `target/<profile>/deps/<test>`), where the other tests' go.
fn autotune_cache_in_workspace_target() {
    use burn::cubecl::config::cache::CacheConfig;
    use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig};
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe
        .ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").is_file())
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let mut config = CubeClRuntimeConfig::from_current_dir().override_from_env();
    config.autotune.cache = CacheConfig::File(target);
    CubeClRuntimeConfig::set(config);
}
