//! Parity with torchvision in single precision (Flex, f32), the precision training runs in.
//!
//! Outputs and loss hold the 1e-4 everywhere. Gradients hold 1e-3 on the shared tiny
//! fixture (measured ~1e-5), but on other fixtures f32 rounding can reach a few 1e-3 in the deepest
//! gradients — measured 2.4e-3 for `backbone.conv1.weight` with a 57×71 input and 3 classes, where
//! the f64 run (`tests/parity.rs`) matches to 1e-6, so the implementation is exact and the loss is
//! f32 conditioning (train-mode BatchNorm over tiny batches, e.g. the ASPP pooling branch normalises
//! two values per channel). Hence 5e-3 for f32 gradients.

mod common;

use burn::backend::{Autodiff, Flex};
use common::{check_eval, check_train, Fixture, Tolerance};

type B = Autodiff<Flex>;

const TOL: Tolerance = Tolerance {
    outputs: 1e-4,
    gradients: 5e-3,
};

#[test]
fn eval_outputs_match_torchvision_f32() {
    check_eval::<B>(&Fixture::load(), &Default::default(), &TOL);
}

#[test]
fn train_outputs_loss_and_gradients_match_torchvision_f32() {
    check_train::<B>(&Fixture::load(), &Default::default(), &TOL);
}
