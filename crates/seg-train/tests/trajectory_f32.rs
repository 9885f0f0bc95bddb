//! Several training steps match the reference library's in f32 on Flex, the precision training
//! runs in (see `trajectory.rs` for f64 and `common/trajectory.rs` for the fixtures).

#[path = "common/trajectory.rs"]
mod harness;

use burn::backend::{Autodiff, Flex};
use harness::{check_trajectory, prefixes, FLOAT32};

type B = Autodiff<Flex>;

#[test]
fn adam_steps_match_the_reference_f32() {
    let device = Default::default();
    for prefix in prefixes() {
        check_trajectory::<B>(&prefix, &device, &FLOAT32);
    }
}
