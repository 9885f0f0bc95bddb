//! The ASPP's atrous shortcut (skipping 3×3 taps that can only read zero padding) gives exactly
//! the full convolution's outputs and gradients, whichever axes it shortens.

use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::{Distribution, FloatDType, IntDType};
use deeplab::aspp::AsppConfig;

type B = Autodiff<Flex>;

fn max_abs_diff<const D: usize>(a: Tensor<Flex, D>, b: Tensor<Flex, D>) -> f64 {
    a.sub(b)
        .abs()
        .max()
        .into_data()
        .convert::<f64>()
        .to_vec::<f64>()
        .unwrap()[0]
}

#[test]
fn skipped_taps_change_nothing() {
    let device = Default::default();
    let _ = burn::tensor::set_default_dtypes::<B>(&device, FloatDType::F64, IntDType::I64);
    B::seed(&device, 5);
    let aspp = AsppConfig::new(6)
        .with_out_channels(4)
        .with_atrous_rates(vec![3, 5, 9])
        .with_dropout(0.0)
        .init::<B>(&device);
    // (height, width): rate 5 shortens rows only at 4×7, both at 4×5, none at 6×6; rate 9 always
    // both, rate 3 never (except below 4).
    for [h, w] in [[4, 7], [4, 5], [6, 6], [3, 12]] {
        let x = Tensor::<B, 4>::random([2, 6, h, w], Distribution::Normal(0.0, 1.0), &device)
            .require_grad();
        for branch in &aspp.convs[1..] {
            let probe = Tensor::<B, 4>::random([2, 4, h, w], Distribution::Default, &device);
            // Each path in its own graph (a backward pass consumes the graph it runs on).
            let shortcut = branch.forward_relu_atrous(x.clone());
            let gs = (shortcut.clone() * probe.clone()).sum().backward();
            let full = branch.forward_relu(x.clone());
            let gf = (full.clone() * probe).sum().backward();
            let d = max_abs_diff(shortcut.inner(), full.inner());
            assert!(
                d < 1e-12,
                "{h}×{w} rate {:?}: outputs differ by {d}",
                branch.conv.dilation
            );
            let weight = &branch.conv.weight;
            let d = max_abs_diff(weight.grad(&gs).unwrap(), weight.grad(&gf).unwrap());
            assert!(d < 1e-12, "{h}×{w}: weight gradients differ by {d}");
            let d = max_abs_diff(x.grad(&gs).unwrap(), x.grad(&gf).unwrap());
            assert!(d < 1e-12, "input gradients differ by {d}");
        }
    }
}
