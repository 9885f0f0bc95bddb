//! The convolutions here against Burn's own (Flex's im2col forward, transposed-convolution input
//! gradient and weight gradient), on the geometries the models use and uneven ones.

use burn::tensor::module::conv2d;
use burn::tensor::{DType, Shape, TensorData};

use super::ops::*;
use super::*;

/// Deterministic values in [-1, 1).
fn values(shape: &[usize], seed: u64) -> TensorData {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let n = shape.iter().product();
    let v: Vec<f64> = (0..n)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    TensorData::new(v, shape.to_vec())
}

type Conv = dyn Fn(Tensor<Ad, 4>, Tensor<Ad, 4>, Option<Tensor<Ad, 1>>) -> Tensor<Ad, 4>;

/// The output of `conv` and the gradients of `Σ conv(x)·r` for x, weight and bias.
fn run(conv: &Conv, [x, w, b, r]: [&TensorData; 4], dtype: DType) -> [TensorData; 4] {
    let device = Default::default();
    let x = Tensor::<Ad, 4>::from_data(x.clone(), (&device, dtype)).require_grad();
    let w = Tensor::<Ad, 4>::from_data(w.clone(), (&device, dtype)).require_grad();
    let b = Tensor::<Ad, 1>::from_data(b.clone(), (&device, dtype)).require_grad();
    let y = conv(x.clone(), w.clone(), Some(b.clone()));
    let g = (y.clone() * Tensor::from_data(r.clone(), (&device, dtype)))
        .sum()
        .backward();
    let grad = |t: Tensor<Ad, 4>| t.grad(&g).expect("gradient").into_data();
    let bias_grad = b.grad(&g).expect("bias gradient").into_data();
    [y.into_data(), grad(x), grad(w), bias_grad]
}

/// (input shape, weight shape, stride, padding, dilation, how the forward pass is computed,
/// how the gradients are: "taps", "im2col", "clipped", "batched", forward only "clipped side
/// by side")
type Case = (
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    &'static str,
    &'static str,
);

/// Every geometry the models use and uneven ones: 1×1 of stride 1 and 2; 3×3 of stride 1
/// and 2; dilations 2, 4, 12, 24 and 36 with "same" padding, on maps wider than the
/// dilation and on maps it reaches past (only the centre tap reads the input, or whole rows
/// of taps read padding only); the 7×7 stem's kernel, also strided; padded rows more than
/// twice the output's (gradients by im2col too); non-square kernels, strides and padding;
/// padding 0 with dilation; channel counts that are not multiples of any SIMD width;
/// batches of 1, 2, 3 and 5; weight gradients shared between threads; gradients on small maps
/// for the whole batch at once, in one group and in several, with taps that read only padding;
/// dilated kernels reaching past larger maps, by clipped taps, and past smaller ones with the
/// samples side by side; 3×3 kernels on maps too small for the taps' forward pass.
#[rustfmt::skip]
const CASES: [Case; 35] = [
    ([2, 8, 6, 5], [12, 8, 1, 1], [1, 1], [0, 0], [1, 1], "batched", "batched"),
    ([3, 7, 9, 8], [5, 7, 1, 1], [2, 2], [0, 0], [1, 1], "batched", "batched"),
    ([1, 5, 7, 7], [9, 5, 1, 1], [2, 2], [0, 0], [1, 1], "taps", "im2col"),
    ([2, 5, 9, 7], [6, 5, 3, 3], [1, 1], [1, 1], [1, 1], "batched", "batched"),
    ([3, 5, 9, 7], [6, 5, 3, 3], [2, 2], [1, 1], [1, 1], "batched", "batched"),
    ([1, 4, 8, 8], [3, 4, 3, 3], [1, 1], [2, 2], [2, 2], "taps", "taps"),
    ([3, 3, 7, 9], [5, 3, 3, 3], [1, 1], [4, 4], [4, 4], "batched", "batched"),
    ([2, 6, 5, 6], [4, 6, 3, 3], [1, 1], [12, 12], [12, 12], "batched", "batched"),
    ([1, 3, 16, 16], [5, 3, 3, 3], [1, 1], [12, 12], [12, 12], "clipped", "clipped"),
    ([2, 3, 30, 29], [4, 3, 3, 3], [1, 1], [24, 24], [24, 24], "clipped", "clipped"),
    ([3, 5, 16, 16], [3, 5, 3, 3], [1, 1], [24, 24], [24, 24], "taps", "taps"),
    ([1, 3, 40, 44], [5, 3, 3, 3], [1, 1], [36, 36], [36, 36], "clipped", "clipped"),
    ([2, 3, 10, 10], [4, 3, 3, 3], [1, 1], [36, 36], [36, 36], "taps", "taps"),
    ([1, 3, 12, 11], [4, 3, 7, 7], [1, 1], [3, 3], [1, 1], "im2col", "taps"),
    ([2, 4, 9, 9], [3, 4, 3, 5], [1, 1], [0, 2], [1, 1], "batched", "batched"),
    ([1, 2, 10, 10], [3, 2, 3, 3], [1, 1], [0, 0], [3, 2], "im2col", "taps"),
    ([2, 3, 19, 18], [5, 3, 7, 7], [2, 2], [3, 3], [1, 1], "im2col", "im2col"),
    ([1, 4, 11, 12], [3, 4, 3, 2], [3, 2], [2, 1], [2, 3], "im2col", "im2col"),
    ([2, 3, 6, 5], [4, 3, 3, 5], [1, 1], [1, 6], [1, 3], "batched", "batched"),
    // Weight gradients large enough to be split between threads by input channels (41: blocks
    // of unequal width), pointwise, by taps and by im2col.
    ([3, 41, 20, 20], [40, 41, 1, 1], [1, 1], [0, 0], [1, 1], "taps", "taps"),
    ([2, 41, 12, 12], [36, 41, 3, 3], [1, 1], [1, 1], [1, 1], "taps", "taps"),
    ([2, 21, 32, 32], [32, 21, 3, 3], [2, 2], [1, 1], [1, 1], "im2col", "im2col"),
    // Gradients for the whole batch: the strided 7×7 on a small output; a batch in five groups.
    ([2, 3, 12, 11], [4, 3, 7, 7], [2, 2], [3, 3], [1, 1], "batched", "batched"),
    ([5, 48, 8, 8], [8, 48, 3, 3], [1, 1], [1, 1], [1, 1], "taps", "batched"),
    // Clipped taps: input channels in several blocks; a strided kernel with uneven padding
    // and dilation; a weight gradient split between threads.
    ([3, 7, 20, 24], [6, 7, 3, 3], [1, 1], [12, 12], [12, 12], "clipped", "clipped"),
    ([2, 4, 33, 35], [5, 4, 3, 3], [2, 2], [8, 6], [8, 6], "clipped", "clipped"),
    ([2, 40, 24, 24], [24, 40, 3, 3], [1, 1], [12, 12], [12, 12], "clipped", "clipped"),
    // Tiny maps, the whole batch at once: layer4's dilated 3×3 on 4×4 (five groups); layer3's
    // strided 3×3 onto 4×4 (five groups, the last of three samples); a 1×1 in two groups.
    ([20, 6, 4, 4], [5, 6, 3, 3], [1, 1], [2, 2], [2, 2], "batched", "batched"),
    ([23, 5, 7, 7], [4, 5, 3, 3], [2, 2], [1, 1], [1, 1], "batched", "batched"),
    ([40, 9, 3, 5], [7, 9, 1, 1], [1, 1], [0, 0], [1, 1], "batched", "batched"),
    // A one-pixel map (the ASPP's pooled branch) keeps its forward pass per sample.
    ([3, 5, 1, 1], [4, 5, 1, 1], [1, 1], [0, 0], [1, 1], "taps", "batched"),
    // Clipped taps on small maps, the samples side by side: a dilated 3×3 on 8×8 (two groups
    // for the corner taps, six for the centre); a map too large for the gradients' batched
    // im2col.
    ([12, 6, 8, 8], [5, 6, 3, 3], [1, 1], [4, 4], [4, 4], "clipped side by side", "batched"),
    ([2, 3, 8, 16], [4, 3, 3, 3], [1, 1], [4, 4], [4, 4], "clipped side by side", "taps"),
    // Maps too small for the taps' forward pass (padded planes under 64 pixels) of a single
    // sample: layer3's 3×3 on 4×4 (64×64 windows), a non-square kernel on 4×9.
    ([1, 6, 4, 4], [5, 6, 3, 3], [1, 1], [1, 1], [1, 1], "im2col", "taps"),
    ([1, 4, 6, 9], [3, 4, 3, 5], [1, 1], [0, 2], [1, 1], "im2col", "taps"),
];

/// Output size of a case along axis `i` (0: height, 1: width).
fn out_size((xs, ws, stride, padding, dilation, ..): &Case, i: usize) -> usize {
    (xs[i + 2] + 2 * padding[i] - dilation[i] * (ws[i + 2] - 1) - 1) / stride[i] + 1
}

/// Relative maximum difference, `max |got − expected| / max(1, max |expected|)`.
fn relative_error(got: &TensorData, expected: &TensorData) -> f64 {
    let got = got
        .clone()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("f64 data");
    let expected = expected
        .clone()
        .convert::<f64>()
        .to_vec::<f64>()
        .expect("f64 data");
    assert_eq!(got.len(), expected.len());
    let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(&expected)
        .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
    diff / scale
}

/// Training (`Autodiff<Flex>`) through this module equals Burn's own convolution: the output and
/// the gradients of `Σ conv(x)·r` for the input, the weight and the bias, of the element type
/// asked for, in f64 to 1e-12 and in f32 to 1e-5 relative to the largest value.
fn training_equals_burns(options: &ConvOptions<2>, data: [&TensorData; 4], context: &str) {
    let o = options.clone();
    let fast: Box<Conv> = Box::new(move |x, w, b| match try_conv2d((x, w, b), &o) {
        Ok(y) => y,
        Err(_) => panic!("Autodiff<Flex> takes the project's convolution"),
    });
    let o = options.clone();
    let burn: Box<Conv> = Box::new(move |x, w, b| conv2d(x, w, b, o.clone()));
    for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
        let got = run(&*fast, data, dtype);
        let expected = run(&*burn, data, dtype);
        for (name, (got, expected)) in ["output", "x", "weight", "bias"]
            .iter()
            .zip(got.iter().zip(&expected))
        {
            assert_eq!(got.dtype, dtype, "{context} {name}");
            assert_eq!(got.shape, expected.shape, "{context} {name}");
            let error = relative_error(got, expected);
            assert!(
                error <= tolerance,
                "{context}, {name} in {dtype:?}: relative error {error:e}"
            );
        }
    }
}

/// Training (`Autodiff<Flex>`): the output and the gradients for the input, the weight and
/// the bias equal Burn's own convolution's (an independent implementation: Flex's im2col
/// forward, its transposed-convolution input gradient and its weight gradient), in f64 to
/// 1e-12 and in f32 to 1e-5 relative to the largest value. Each case also checks which
/// methods compute its forward pass and its gradients, so that every one is covered.
#[test]
fn gradients_equal_burns_convolution() {
    for (case, geometry) in CASES.iter().enumerate() {
        let &(xs, ws, stride, padding, dilation, forward_by, gradients_by) = geometry;
        let options = ConvOptions::new(stride, padding, dilation, 1);
        let seed = 4 * case as u64;
        let x = values(&xs, seed);
        let w = values(&ws, seed + 1);
        let b = values(&[ws[0]], seed + 2);
        let out = [xs[0], ws[0], out_size(geometry, 0), out_size(geometry, 1)];
        let r = values(&out, seed + 3);
        let weight = FlexTensor::from_data(w.clone());
        let method = match forward_method(xs, &weight, &options).expect("computed here") {
            Method::Taps(_) => "taps",
            Method::Im2col(_) => "im2col",
            Method::Clipped(c) if c.side_by_side() => "clipped side by side",
            Method::Clipped(_) => "clipped",
            Method::Depthwise(_) => "depthwise",
            Method::Batched(_) => "batched",
        };
        assert_eq!(method, forward_by, "case {case}: forward pass");
        let x_tensor = FlexTensor::from_data(x.clone());
        let gradients = match gradient_method(&x_tensor, &weight, &options).expect("computed here")
        {
            GradientMethod::Batched(_) => "batched",
            GradientMethod::Taps(_) => "taps",
            GradientMethod::Im2col(_) => "im2col",
            GradientMethod::Clipped(_) => "clipped",
            GradientMethod::Depthwise(_) => "depthwise",
        };
        assert_eq!(gradients, gradients_by, "case {case}: gradients");
        training_equals_burns(
            &options,
            [&x, &w, &b, &r],
            &format!("case {case} {geometry:?}"),
        );
    }
}

/// Inference (plain `Flex`): the output equals Flex's own convolution's on every case, with
/// and without bias, in f64 to 1e-12 and in f32 to 1e-5.
#[test]
fn inference_equals_flexs_convolution() {
    for (case, geometry) in CASES.iter().enumerate() {
        let &(xs, ws, stride, padding, dilation, ..) = geometry;
        let options = ConvOptions::new(stride, padding, dilation, 1);
        let seed = 4 * case as u64 + 100;
        let (x, w, b) = (
            values(&xs, seed),
            values(&ws, seed + 1),
            values(&[ws[0]], seed + 2),
        );
        for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let device = Default::default();
            let x = Tensor::<Flex, 4>::from_data(x.clone(), (&device, dtype));
            let w = Tensor::<Flex, 4>::from_data(w.clone(), (&device, dtype));
            for bias in [
                None,
                Some(Tensor::<Flex, 1>::from_data(b.clone(), (&device, dtype))),
            ] {
                let expected = conv2d(x.clone(), w.clone(), bias.clone(), options.clone());
                let got = match try_conv2d((x.clone(), w.clone(), bias.clone()), &options) {
                    Ok(y) => y,
                    Err(_) => panic!("Flex takes the project's convolution"),
                };
                let error = relative_error(&got.into_data(), &expected.into_data());
                assert!(
                    error <= tolerance,
                    "case {case} {geometry:?} in {dtype:?} (bias: {}): relative error {error:e}",
                    bias.is_some()
                );
            }
        }
    }
}

/// The fused inference epilogue: `relu(conv(x) + bias [+ residual])` in one pass equals
/// Burn's convolution followed by the addition and ReLU, on every case, f64 to 1e-12 and f32
/// to 1e-5, by both forward methods.
#[test]
fn fused_relu_and_residual_equal_separate_operations() {
    use burn::tensor::activation::relu;
    for (case, geometry) in CASES.iter().enumerate() {
        let &(xs, ws, stride, padding, dilation, ..) = geometry;
        let options = ConvOptions::new(stride, padding, dilation, 1);
        let seed = 4 * case as u64 + 200;
        let out = [xs[0], ws[0], out_size(geometry, 0), out_size(geometry, 1)];
        let data = [
            values(&xs, seed),
            values(&ws, seed + 1),
            values(&out, seed + 3),
        ];
        let b = values(&[ws[0]], seed + 2);
        for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let device = Default::default();
            let [x, w, r] = data
                .clone()
                .map(|d| Tensor::<Flex, 4>::from_data(d, (&device, dtype)));
            let bias = Tensor::<Flex, 1>::from_data(b.clone(), (&device, dtype));
            for residual in [None, Some(r)] {
                let conv = conv2d(x.clone(), w.clone(), Some(bias.clone()), options.clone());
                let expected = relu(match residual.clone() {
                    Some(r) => conv + r,
                    None => conv,
                });
                let inputs = (x.clone(), w.clone(), Some(bias.clone()), residual.clone());
                let got = match try_conv2d_relu(inputs, &options) {
                    Ok(y) => y,
                    Err(_) => panic!("case {case}: Flex fuses the epilogue"),
                };
                let error = relative_error(&got.into_data(), &expected.into_data());
                assert!(
                    error <= tolerance,
                    "case {case} {geometry:?} in {dtype:?} (residual: {}): {error:e}",
                    residual.is_some()
                );
            }
        }
    }
}

/// Every ungrouped or depthwise f32/f64 convolution is computed here, forward and backward
/// (strided k×k included); other grouped convolutions and other element types are Flex's
/// (`None`).
#[test]
fn groups_and_other_element_types_are_left_to_flex() {
    let zeros = |dims: [usize; 4], dtype| FlexTensor::zeros(Shape::new(dims), dtype);
    let x = zeros([1, 2, 8, 8], DType::F32);
    let strided = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
    let (weight, grad) = (
        zeros([3, 2, 3, 3], DType::F32),
        zeros([1, 3, 4, 4], DType::F32),
    );
    assert!(weight_grad(&x, &grad, &weight, &strided).is_some());
    assert!(input_grad(&x, &weight, &grad, &strided).is_some());
    assert!(forward(&x, &weight, None, &strided, Then::default()).is_some());
    let grouped = ConvOptions::new([1, 1], [0, 0], [1, 1], 2);
    let depthwise = zeros([2, 1, 3, 3], DType::F32);
    assert!(forward(&x, &depthwise, None, &grouped, Then::default()).is_some());
    let (weight, grad) = (
        zeros([4, 1, 1, 1], DType::F32),
        zeros([1, 4, 8, 8], DType::F32),
    );
    assert!(forward(&x, &weight, None, &grouped, Then::default()).is_none());
    assert!(weight_grad(&x, &grad, &weight, &grouped).is_none());
    assert!(input_grad(&x, &weight, &grad, &grouped).is_none());
    let half = |dims| zeros(dims, DType::F16);
    let plain = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let (x, weight) = (half([1, 2, 8, 8]), half([3, 2, 1, 1]));
    assert!(forward(&x, &weight, None, &plain, Then::default()).is_none());
}

/// (input shape, kernel, stride, padding, dilation) of depthwise convolutions (`groups` =
/// channels, one filter each): DeepLabV3+'s separable 3×3 (plain, and dilated past a small
/// map so that only the centre or some taps read it), strided, non-square kernels, strides,
/// paddings and dilations, rows longer than the weight gradient's 16 partial sums.
#[rustfmt::skip]
const DEPTHWISE: [([usize; 4], [usize; 2], [usize; 2], [usize; 2], [usize; 2]); 6] = [
    ([2, 6, 9, 8], [3, 3], [1, 1], [1, 1], [1, 1]),
    ([1, 5, 16, 16], [3, 3], [1, 1], [12, 12], [12, 12]),
    ([2, 7, 6, 5], [3, 3], [1, 1], [24, 24], [24, 24]),
    ([3, 4, 7, 9], [3, 3], [2, 2], [1, 1], [1, 1]),
    ([2, 3, 10, 11], [3, 5], [1, 2], [2, 1], [2, 1]),
    ([2, 3, 40, 37], [3, 3], [1, 1], [2, 2], [2, 2]),
];

/// Depthwise convolutions are computed here, forward and backward, and equal Burn's grouped
/// convolution (Flex's per-group im2col, its transposed-convolution input gradient and weight
/// gradient): output and the gradients for the input, the weight and the bias in training, the
/// inference output with the fused residual and ReLU; f64 to 1e-12, f32 to 1e-5.
#[test]
fn depthwise_equals_burns_grouped_convolution() {
    use burn::tensor::activation::relu;
    for (case, &(xs, kernel, stride, padding, dilation)) in DEPTHWISE.iter().enumerate() {
        let c = xs[1];
        let options = ConvOptions::new(stride, padding, dilation, c);
        let ws = [c, 1, kernel[0], kernel[1]];
        let out_size = |i: usize| {
            (xs[i + 2] + 2 * padding[i] - dilation[i] * (kernel[i] - 1) - 1) / stride[i] + 1
        };
        let out = [xs[0], c, out_size(0), out_size(1)];
        let seed = 4 * case as u64 + 300;
        let (x, w, b, r) = (
            values(&xs, seed),
            values(&ws, seed + 1),
            values(&[c], seed + 2),
            values(&out, seed + 3),
        );
        let weight = FlexTensor::from_data(w.clone());
        assert!(matches!(
            forward_method(xs, &weight, &options),
            Some(Method::Depthwise(_))
        ));
        let x_tensor = FlexTensor::from_data(x.clone());
        assert!(matches!(
            gradient_method(&x_tensor, &weight, &options),
            Some(GradientMethod::Depthwise(_))
        ));
        training_equals_burns(
            &options,
            [&x, &w, &b, &r],
            &format!("depthwise case {case}"),
        );
        for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
            let device = Default::default();
            let [x, w, r] =
                [&x, &w, &r].map(|d| Tensor::<Flex, 4>::from_data(d.clone(), (&device, dtype)));
            let bias = Tensor::<Flex, 1>::from_data(b.clone(), (&device, dtype));
            let expected =
                relu(conv2d(x.clone(), w.clone(), Some(bias.clone()), options.clone()) + r.clone());
            let got = match try_conv2d_relu((x, w, Some(bias), Some(r)), &options) {
                Ok(y) => y,
                Err(_) => panic!("depthwise case {case}: Flex fuses the epilogue"),
            };
            let error = relative_error(&got.into_data(), &expected.into_data());
            assert!(
                error <= tolerance,
                "depthwise case {case} inference in {dtype:?}: relative error {error:e}"
            );
        }
    }
}
