//! The ASPP's atrous shortcut (skipping 3×3 taps that can only read zero padding) is taken where
//! it applies, and gives exactly the full convolution's outputs and gradients, whichever axes it
//! shortens.

use burn::backend::{Autodiff, Flex};
use burn::module::Param;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Distribution, FloatDType, IntDType};
use deeplab::aspp::AsppConfig;
use deeplab::conv_bn::ConvBn;

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

/// The (one) Flex device with f64 as its default float type; both tests ask for it first, as
/// whichever test creates a tensor first fixes the device's default types.
fn f64_device() -> burn::backend::flex::FlexDevice {
    let device = Default::default();
    let _ = burn::tensor::set_default_dtypes::<B>(&device, FloatDType::F64, IntDType::I64);
    let probe = Tensor::<B, 1>::zeros([1], &device);
    assert_eq!(
        probe.dtype(),
        burn::tensor::DType::F64,
        "f64 default dtype in effect"
    );
    device
}

#[test]
fn skipped_taps_change_nothing() {
    let device = f64_device();
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

/// Off-centre taps set to NaN: a convolution that reads them gives NaN (0 · NaN is NaN, and the
/// padding is read as zeros), so the shortcut's output is finite exactly where it skips them
/// (checked before the ReLU, which would turn NaN into 0). `[h, w]` → (rows skipped, columns
/// skipped) for rate 5, by hand: an axis no longer than the rate is skipped.
#[test]
fn the_shortcut_skips_the_taps_that_read_only_padding() {
    let device = f64_device();
    let aspp = AsppConfig::new(6)
        .with_out_channels(4)
        .with_atrous_rates(vec![5, 5, 5])
        .with_dropout(0.0)
        .init::<Flex>(&device);
    let branch = &aspp.convs[1];
    assert_eq!(branch.conv.dilation, [5, 5]);
    let [o, i, _, _] = branch.conv.weight.dims();
    let finite = |t: Tensor<Flex, 4>| t.is_nan().int().sum().into_scalar().elem::<i64>() == 0;
    for ([h, w], rows_skipped, cols_skipped) in [
        ([4, 7], true, false),
        ([7, 4], false, true),
        ([4, 5], true, true),
        ([6, 6], false, false),
    ] {
        let x = Tensor::<Flex, 4>::random([2, 6, h, w], Distribution::Normal(0.0, 1.0), &device);
        let nan = |rows: std::ops::Range<usize>, cols: std::ops::Range<usize>| {
            Tensor::<Flex, 4>::full([o, i, rows.len(), cols.len()], f64::NAN, &device)
        };
        // NaN in the off-centre rows, then in the off-centre columns.
        let mut weight = branch.conv.weight.val();
        for r in [0..1, 2..3] {
            weight = weight.slice_assign([0..o, 0..i, r.clone(), 0..3], nan(r, 0..3));
        }
        let mut poisoned_rows = branch.clone();
        poisoned_rows.conv.weight = Param::from_tensor(weight);
        let mut weight = branch.conv.weight.val();
        for c in [0..1, 2..3] {
            weight = weight.slice_assign([0..o, 0..i, 0..3, c.clone()], nan(0..3, c));
        }
        let mut poisoned_cols = branch.clone();
        poisoned_cols.conv.weight = Param::from_tensor(weight);

        assert_eq!(
            finite(poisoned_rows.forward_atrous(x.clone())),
            rows_skipped,
            "{h}×{w}: off-centre rows skipped"
        );
        assert_eq!(
            finite(poisoned_cols.forward_atrous(x.clone())),
            cols_skipped,
            "{h}×{w}: off-centre columns skipped"
        );
        // Burn's own full convolution reads them all: NaN shows up whenever they are read.
        let full = |branch: &ConvBn<Flex>| {
            let options = ConvOptions::new([1, 1], [5, 5], [5, 5], 1);
            conv2d(x.clone(), branch.conv.weight.val(), None, options)
        };
        assert!(!finite(full(&poisoned_rows)), "{h}×{w}");
        assert!(!finite(full(&poisoned_cols)), "{h}×{w}");
    }
}
