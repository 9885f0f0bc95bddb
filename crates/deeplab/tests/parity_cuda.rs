//! Parity with torchvision on `Autodiff<Cuda>`, backward included (`scripts/gpu-run.sh` runs
//! it on a GPU machine). f32 matmuls and convolutions may run as TF32 on tensor cores, so outputs
//! are held to 2e-3 and gradients to 1e-2 (f32 alone already loses up to a few 1e-3 in the
//! deepest gradients; see `parity_f32.rs`).
#![cfg(feature = "cuda")]

mod common;

use burn::backend::cuda::CudaDevice;
use burn::backend::{Autodiff, Cuda};
use common::{check_eval, check_train, Fixture, Tolerance};

type B = Autodiff<Cuda>;

const TOL: Tolerance = Tolerance {
    outputs: 2e-3,
    gradients: 1e-2,
    float32: true,
};

/// Ignored by default because it needs an NVIDIA GPU with a CUDA toolkit; run with
/// `cargo test -p deeplab --features cuda --test parity_cuda -- --ignored`.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn eval_outputs_match_torchvision_cuda() {
    for fx in Fixture::all() {
        check_eval::<B>(&fx, &CudaDevice::new(0), &TOL);
    }
}

/// Ignored by default because it needs an NVIDIA GPU with a CUDA toolkit; run with
/// `cargo test -p deeplab --features cuda --test parity_cuda -- --ignored`.
#[test]
#[ignore = "needs an NVIDIA GPU"]
fn train_outputs_loss_and_gradients_match_torchvision_cuda() {
    for fx in Fixture::all() {
        check_train::<B>(&fx, &CudaDevice::new(0), &TOL);
    }
}
