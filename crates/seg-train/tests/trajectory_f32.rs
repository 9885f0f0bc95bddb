//! Several training steps match the reference library's in f32 on Flex, the precision training
//! runs in (see `trajectory.rs` for f64 and `common/trajectory.rs` for the fixtures).

#[path = "common/trajectory.rs"]
mod harness;

use burn::backend::{Autodiff, Flex};
use burn::tensor::DType;
use harness::{check_trajectory, prefixes, StateLimit, Tolerance};

type B = Autodiff<Flex>;

/// Float32 against the float64 reference, compared tensor by tensor (see [`StateLimit`]): losses
/// within 1e-4 relative, every state_dict entry and the final eval output within 1e-2 (relative
/// L2). Observed on the committed fixtures: losses ≤ 3.4e-5, states ≤ 2.1e-3, eval outputs
/// ≤ 1.7e-3; element by element the largest difference is 4 % of a tensor's largest value (an
/// element whose float64 gradient is near zero steps by the learning rate either way).
const TOL: Tolerance = Tolerance {
    loss: 1e-4,
    state: StateLimit::RelativeL2(1e-2),
    dtype: DType::F32,
    sharpness: false,
};

#[test]
fn adam_steps_match_the_reference_f32() {
    let device = Default::default();
    for prefix in prefixes() {
        check_trajectory::<B>(&prefix, &device, &TOL);
    }
}
