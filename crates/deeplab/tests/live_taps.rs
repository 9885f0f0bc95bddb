//! The `live_*` fixtures exercise the dilated convolutions as users run them: their `layer4` is
//! larger than the largest ASPP rate, so every tap of every atrous kernel reads real pixels (the
//! `tiny_*` fixtures' `layer4` is smaller than every rate: each atrous branch reduces to its centre
//! tap there). Checked two ways: the taps the model computes with, and a changed corner tap of the
//! rate-24 kernel, which moves the live fixtures' outputs far beyond the parity tolerance and the
//! tiny fixtures' not at all.

mod common;

use burn::backend::Flex;
use burn::prelude::*;
use common::{fixtures_dir, rel_err, Fixture};
use deeplab::aspp::Aspp;
use deeplab::conv_bn::live_taps;
use deeplab::DeepLab;

type B = Flex;

/// The committed fixtures whose atrous taps are all live.
const LIVE: [&str; 3] = [
    "live_deeplabv3",
    "live_deeplabv3plus_os8",
    "live_deeplabv3plus_os8_plain",
];

/// The f32 parity tests' limit on the relative error of outputs (this test runs in f32).
const PARITY_TOL: f64 = 1e-4;

/// The ASPP and the size of `layer4` for the fixture's input.
fn aspp_and_layer4(model: &DeepLab<B>, input: Tensor<B, 4>) -> (&Aspp<B>, [usize; 2]) {
    let (aspp, layer4) = match model {
        DeepLab::DeepLabV3(m) => (&m.classifier.aspp, m.backbone.forward(input).layer4),
        DeepLab::DeepLabV3Plus(m) => (&m.decoder.aspp, m.encoder.forward(input).layer4),
    };
    let [.., h, w] = layer4.dims();
    (aspp, [h, w])
}

/// Every atrous branch's `(rows, cols)` of taps on the fixture's `layer4`.
fn taps(fx: &Fixture) -> Vec<(usize, usize)> {
    let device = Default::default();
    let model = fx.model::<B>(&device);
    let input = fx.tensor::<B, 4>("input", &device);
    let (aspp, size) = aspp_and_layer4(&model, input);
    aspp.convs[1..]
        .iter()
        .map(|branch| {
            let (rows, cols) = live_taps(branch.atrous_conv(), size);
            (rows.len(), cols.len())
        })
        .collect()
}

#[test]
fn live_fixtures_compute_with_every_atrous_tap() {
    for name in LIVE {
        let fx = Fixture::load_from(fixtures_dir().join(name));
        let taps = taps(&fx);
        assert_eq!(taps.len(), 3, "{name}: rates 12, 24, 36");
        assert!(taps.iter().all(|&t| t == (3, 3)), "{name}: taps {taps:?}");
    }
    // The tiny fixtures take the shortcut: centre taps only.
    let fx = Fixture::load_from(fixtures_dir().join("tiny_deeplabv3"));
    assert!(taps(&fx).iter().all(|&t| t == (1, 1)), "{:?}", taps(&fx));
}

/// `eval_out`'s relative error after adding `delta` to the top-left tap of the rate-24 kernel
/// (the depthwise one of a separable branch).
fn corner_changed_error(fx: &Fixture, delta: f64) -> f64 {
    let device = Default::default();
    let mut model = fx.model::<B>(&device);
    let aspp = match &mut model {
        DeepLab::DeepLabV3(m) => &mut m.classifier.aspp,
        DeepLab::DeepLabV3Plus(m) => &mut m.decoder.aspp,
    };
    let branch = &mut aspp.convs[2];
    let conv = match branch.depthwise.as_mut() {
        Some(depthwise) => depthwise,
        None => &mut branch.conv,
    };
    assert_eq!(conv.dilation, [24, 24]);
    let weight = conv.weight.val();
    let [o, i, _, _] = weight.dims();
    let corner = Tensor::<B, 4>::zeros([o, i, 3, 3], &device).slice_assign(
        [0..o, 0..i, 0..1, 0..1],
        Tensor::full([o, i, 1, 1], delta, &device),
    );
    conv.weight = conv.weight.clone().map(|w| w + corner);
    let out = model.forward(fx.tensor::<B, 4>("input", &device)).out;
    rel_err(out, fx.tensor::<B, 4>("eval_out", &device))
}

#[test]
fn a_changed_corner_tap_of_the_rate_24_kernel_fails_the_live_fixtures_only() {
    for name in LIVE {
        let fx = Fixture::load_from(fixtures_dir().join(name));
        let unchanged = corner_changed_error(&fx, 0.0);
        let changed = corner_changed_error(&fx, 1.0);
        println!("{name}: eval rel err {unchanged:.2e}, with the corner tap changed {changed:.2e}");
        assert!(unchanged <= PARITY_TOL, "{name}: {unchanged:e}");
        assert!(changed > 5.0 * PARITY_TOL, "{name}: {changed:e}");
    }
    let fx = Fixture::load_from(fixtures_dir().join("tiny_deeplabv3"));
    let changed = corner_changed_error(&fx, 1.0);
    assert!(changed <= PARITY_TOL, "tiny_deeplabv3: {changed:e}");
}
