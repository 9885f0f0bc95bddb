//! Parity with torchvision on `Autodiff<Wgpu>`: the same CubeCL kernels (convolution, matmul,
//! reductions, fusion) as the CUDA backend, through Vulkan, Metal or DX12. On a machine without a
//! GPU it runs on Mesa's software Vulkan driver (lavapipe), as `.ci/run` does: a correctness check,
//! not a speed one. Fixture prefix from `DEEPLAB_PARITY_FIXTURE`, like the CPU parity tests.
//!
//! Tolerances: outputs 1e-4, gradients 1e-2 (or twice torchvision's own float32 distance from its
//! float64 reference, see `parity_f32.rs`): on `live_deeplabv3` lavapipe's float32 sums give the
//! stem's and one `layer3` kernel's gradients 7.0e-3 and 5.8e-3 (Flex in f32: within 5e-3). On
//! `holdout_deeplabv3` one `layer2.0.bn1` output sits 1.7e-7 below zero in float64 and above it
//! in float32, so its ReLU opens and every gradient below it moves: the stem's is 1.1e-2 from
//! the reference in torchvision's own float32 and Flex's, 1.7e-2 here (limit 2.2e-2).
//!
//! What runs: with `DEEPLAB_PARITY_FIXTURE`, that fixture in eval and train mode. Otherwise every
//! committed fixture in eval mode, and `tiny_deeplabv3` in train mode too (forward, loss,
//! gradients): a train-mode check at the `live_*` fixtures' 289×297 takes about 6 minutes on
//! lavapipe's two cores, one of the small DeepLabV3+ fixtures about one — `trajectory_wgpu`
//! trains DeepLabV3+ (SMP's separable ASPP) on `live_deeplabv3plus_os8`, and the variable runs
//! any other (`DEEPLAB_PARITY_FIXTURE=crates/deeplab/tests/fixtures/live_deeplabv3 cargo test
//! --workspace --test parity_wgpu -- --ignored`).
#![cfg(feature = "wgpu")]

mod common;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Wgpu};
use common::{check_eval, check_train, Fixture, Tolerance};

type B = Autodiff<Wgpu>;

const TOL: Tolerance = Tolerance {
    outputs: 1e-4,
    gradients: 1e-2,
    float32: true,
};

/// The committed fixtures checked in train mode too (see the module docs).
const TRAIN_CHECKED: [&str; 1] = ["tiny_deeplabv3"];

/// Ignored by default because it needs a Vulkan, Metal or DX12 driver (software drivers such as
/// lavapipe work); `.ci/run` installs lavapipe when absent and runs it with `--ignored`. One test
/// function, so kernels are compiled once for both checks. Without `DEEPLAB_PARITY_FIXTURE`,
/// train mode on [`TRAIN_CHECKED`] only (see the module docs).
#[test]
#[ignore = "needs a Vulkan/Metal/DX12 driver; .ci/run runs it on lavapipe"]
fn eval_and_train_match_torchvision_wgpu() {
    autotune_cache_in_workspace_target();
    let device = WgpuDevice::DefaultDevice;
    let start = std::time::Instant::now();
    let named = std::env::var_os("DEEPLAB_PARITY_FIXTURE").is_some();
    for fixture in Fixture::all() {
        check_eval::<B>(&fixture, &device, &TOL);
        println!("eval checked after {:.1} s", start.elapsed().as_secs_f64());
        if named || TRAIN_CHECKED.contains(&fixture.name().as_str()) {
            check_train::<B>(&fixture, &device, &TOL);
            println!("train checked after {:.1} s", start.elapsed().as_secs_f64());
        }
    }
}

/// cubecl keeps its autotune results beside the nearest `Cargo.toml` above the working directory
/// by default, which for this test is the crate's own folder: put them in the build's `target/`
/// (found from this test binary, `target/<profile>/deps/<test>`), where the other tests' go —
/// unless a `cubecl.toml` above the working directory names a cache (as `.ci/run` does).
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
    if !matches!(config.autotune.cache, CacheConfig::Target) {
        return;
    }
    config.autotune.cache = CacheConfig::File(target);
    CubeClRuntimeConfig::set(config);
}
