//! Several training steps match the reference library's (torchvision for DeepLabV3,
//! segmentation_models_pytorch for DeepLabV3+) in f64 on Flex: the loss and the Adam optimizer
//! that `retina-seg train` uses, BatchNorm running statistics (momentum 0.1, unbiased variance)
//! and the batch counters. See `common/trajectory.rs` for the fixtures.

#[path = "common/trajectory.rs"]
mod harness;

use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, FloatDType, IntDType};
use harness::{check_trajectory, prefixes, StateLimit, Tolerance};

type B = Autodiff<Flex>;

/// Observed: losses ≤ 1.7e-14 relative (float64 summation order); states and the final eval
/// output ≤ 5.7e-8 of their largest value (the float32 rounding of the stored references).
const TOL: Tolerance = Tolerance {
    loss: 1e-10,
    state: StateLimit::MaxRelative(1e-6),
    dtype: DType::F64,
    sharpness: true,
};

#[test]
fn adam_steps_match_the_reference_f64() {
    let device = Default::default();
    burn::tensor::set_default_dtypes::<B>(&device, FloatDType::F64, IntDType::I64)
        .expect("the only test of this binary sets the dtype first");
    for prefix in prefixes() {
        check_trajectory::<B>(&prefix, &device, &TOL);
    }
}
