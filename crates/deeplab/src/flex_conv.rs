//! Convolution on `Autodiff<Flex>` (the CPU training backend) with a GEMM weight gradient.
//!
//! Burn 0.21 computes a convolution's weight gradient as another convolution whose "kernel" is the
//! output gradient (batch and channel axes swapped); on Flex that runs as many small matrix
//! products and took 3–7× the forward convolution's time, most of a training step's backward
//! pass. Here the weight gradient of a stride-1 convolution is one matrix product per kernel tap
//! and sample, read in place from a zero-padded copy of the input:
//!
//! `∂L/∂W[o, c, ky, kx] = Σₙ Σ_{i,j} G[n, o, i, j] · Xₚ[n, c, i + ky·dh, j + kx·dw]`
//!
//! With the padded input flattened per channel (row length `wₚ`) and the output gradient padded
//! with zero columns to the same row length, the tap `(ky, kx)` reads the input at the constant
//! offset `ky·dh·wₚ + kx·dw`: a strided matrix the GEMM reads without copying, and the zero
//! columns cancel the wrap-around of each row. The products accumulate straight into the
//! `[O, C, kh, kw]` gradient.
//!
//! The forward pass, the input gradient and the bias gradient are Flex's own. Strided or grouped
//! convolutions and element types other than f32/f64 use Burn's weight gradient unchanged.

use std::any::Any;
use std::borrow::Cow;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{DType, Shape, Tensor, TensorPrimitive};
use burn_flex::FlexTensor;

type Ad = Autodiff<Flex>;
type Inputs<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// `conv2d(x, weight, bias, options)` through the fast weight gradient when `B` is
/// `Autodiff<Flex>`; `Err` gives the inputs back untouched for any other backend.
pub(crate) fn try_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, Inputs<B>> {
    let mut inputs = Some((x, weight, bias));
    let Some(slot) = (&mut inputs as &mut dyn Any).downcast_mut::<Option<Inputs<Ad>>>() else {
        return Err(inputs.expect("inputs not taken"));
    };
    let (x, weight, bias) = slot.take().expect("inputs present");
    let y = Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(conv2d(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
        options.clone(),
    )));
    let mut out = Some(y);
    Ok((&mut out as &mut dyn Any)
        .downcast_mut::<Option<Tensor<B, 4>>>()
        .and_then(Option::take)
        .expect("B is Autodiff<Flex>"))
}

/// The autodiff convolution, as `burn-autodiff`'s own but with [`weight_grad`].
fn conv2d(
    x: FloatTensor<Ad>,
    weight: FloatTensor<Ad>,
    bias: Option<FloatTensor<Ad>>,
    options: ConvOptions<2>,
) -> FloatTensor<Ad> {
    #[derive(Debug)]
    struct Conv2dNoBias;
    #[derive(Debug)]
    struct Conv2dWithBias;

    impl Backward<Flex, 2> for Conv2dNoBias {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, weight, options) = ops.state;
            let x = ckpt.retrieve_node_output::<FlexTensor>(x);
            let weight = ckpt.retrieve_node_output::<FlexTensor>(weight);
            input_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    impl Backward<Flex, 3> for Conv2dWithBias {
        type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, weight, bias, options) = ops.state;
            let x = ckpt.retrieve_node_output::<FlexTensor>(x);
            let weight = ckpt.retrieve_node_output::<FlexTensor>(weight);
            if let Some(node) = node_bias {
                let bias = ckpt.retrieve_node_output::<FlexTensor>(bias);
                let g = Flex::conv2d_bias_backward(x.clone(), bias, grad.clone());
                grads.register::<Flex>(node, g);
            }
            input_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    // The output does not depend on whether the graph is tracked (the primitives' storage is
    // shared, not copied).
    let y = Flex::conv2d(
        x.primitive.clone(),
        weight.primitive.clone(),
        bias.as_ref().map(|b| b.primitive.clone()),
        options.clone(),
    );
    match bias {
        None => match Conv2dNoBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
        Some(bias) => match Conv2dWithBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                    options,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    }
}

/// Registers the gradients of the input and the weight (for the parents that track them).
fn input_grads(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: ConvOptions<2>,
    [node_x, node_weight]: [Option<NodeId>; 2],
    grads: &mut Gradients,
) {
    if let Some(node) = node_x {
        let g = Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
        grads.register::<Flex>(node, g);
    }
    if let Some(node) = node_weight {
        let g = weight_grad(&x, &grad, &weight, &options)
            .unwrap_or_else(|| Flex::conv2d_weight_backward(x, weight, grad, options));
        grads.register::<Flex>(node, g);
    }
}

/// The weight gradient of a stride-1, ungrouped f32/f64 convolution (module docs); `None` for
/// any other convolution.
fn weight_grad(
    x: &FlexTensor,
    grad: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    let dims = |t: &FlexTensor| -> [usize; 4] { t.layout().shape().dims() };
    let (x_dims, grad_dims, [o, c, kh, kw]) = (dims(x), dims(grad), dims(weight));
    let geometry = Geometry {
        x: x_dims,
        grad: grad_dims,
        kernel: [kh, kw],
        padding: options.padding,
        dilation: options.dilation,
    };
    let dtype = x.dtype();
    if options.stride != [1, 1]
        || options.groups != 1
        || !matches!(dtype, DType::F32 | DType::F64)
        || grad.dtype() != dtype
        || !geometry.is_consistent(o, c)
    {
        return None;
    }
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let mut out = FlexTensor::zeros(Shape::new([o, c, kh, kw]), dtype);
    match dtype {
        DType::F32 => {
            geometry.weight_grad::<f32>(x.as_slice()?, grad.as_slice()?, out.storage_mut())
        }
        DType::F64 => {
            geometry.weight_grad::<f64>(x.as_slice()?, grad.as_slice()?, out.storage_mut())
        }
        _ => return None,
    }
    Some(out)
}

/// A stride-1, ungrouped convolution's shapes.
struct Geometry {
    /// Input `[N, C, H, W]`.
    x: [usize; 4],
    /// Output gradient `[N, O, Hₒ, Wₒ]`.
    grad: [usize; 4],
    kernel: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

/// The element types the GEMM handles here.
trait Float: Copy + Send + Sync + 'static {
    const ZERO: Self;
    const ONE: Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// Matrix products below this many multiply-adds run on one thread (as Flex's own matmul).
const PARALLEL_WORK: usize = 192 * 192 * 192;

impl Geometry {
    /// Whether the shapes are those of a stride-1 convolution of `c` into `o` channels.
    fn is_consistent(&self, o: usize, c: usize) -> bool {
        let [n, xc, h, w] = self.x;
        let [gn, go, ho, wo] = self.grad;
        let span =
            |size: usize, pad: usize, k: usize, d: usize| (size + 2 * pad).checked_sub((k - 1) * d);
        n == gn
            && xc == c
            && go == o
            && self.kernel.iter().all(|&k| k > 0)
            && span(h, self.padding[0], self.kernel[0], self.dilation[0]) == Some(ho)
            && span(w, self.padding[1], self.kernel[1], self.dilation[1]) == Some(wo)
    }

    /// Writes `∂L/∂W` (`[O, C, kh, kw]`, zero-initialised) from the input and output gradient.
    fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let [n, c, h, w] = self.x;
        let [_, o, ho, wo] = self.grad;
        let [kh, kw] = self.kernel;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        // Padded input: `ph` rows above, `ph` + `extra` below (the last tap's reads run up to
        // (kw − 1)·dw elements past the last padded row), `pw` columns on each side.
        let wp = w + 2 * pw;
        let extra = ((kw - 1) * dw).div_ceil(wp);
        let plane = (h + 2 * ph + extra) * wp;
        let xp = pad_rows(x, n * c, [h, w], plane, wp, [ph, pw]);
        // Output gradient with zero columns up to the padded row length.
        let k = ho * wp;
        let gp = pad_rows(grad, n * o, [ho, wo], k, wp, [0, 0]);
        let taps = kh * kw;
        let parallelism = if o * c * k >= PARALLEL_WORK {
            gemm::Parallelism::Rayon(0)
        } else {
            gemm::Parallelism::None
        };
        for ky in 0..kh {
            for kx in 0..kw {
                // A tap whose reads all fall in the padding contributes nothing.
                if reads_nothing(ho, h, ky * dh, ph) || reads_nothing(wo, w, kx * dw, pw) {
                    continue;
                }
                let offset = ky * dh * wp + kx * dw;
                for sample in 0..n {
                    let lhs = &gp[sample * o * k..][..o * k];
                    let rhs = &xp[sample * c * plane..][..c * plane];
                    debug_assert!(offset + k <= plane);
                    // SAFETY: dst addresses out[oi·c·taps + ci·taps + tap] for oi < o, ci < c:
                    // inside `out` (o·c·taps elements). lhs reads lhs[oi·k + kk], kk < k: inside.
                    // rhs reads rhs[offset + ci·plane + kk] ≤ offset + k − 1 + (c − 1)·plane <
                    // c·plane, since offset + k ≤ (h + 2ph)·wp + (kw − 1)·dw ≤ plane.
                    unsafe {
                        gemm::gemm(
                            o,
                            c,
                            k,
                            out.as_mut_ptr().add(ky * kw + kx),
                            taps as isize,
                            (c * taps) as isize,
                            sample > 0,
                            lhs.as_ptr(),
                            1,
                            k as isize,
                            rhs.as_ptr().add(offset),
                            plane as isize,
                            1,
                            T::ONE,
                            T::ONE,
                            false,
                            false,
                            false,
                            parallelism,
                        );
                    }
                }
            }
        }
    }
}

/// Whether no output index `i < out` reads an input index `i + offset − pad` inside `0..size`.
fn reads_nothing(out: usize, size: usize, offset: usize, pad: usize) -> bool {
    offset + out <= pad || offset >= size + pad
}

/// `planes` row-major `[h, w]` planes copied into zeroed planes of `plane` elements with rows of
/// `row` elements, starting at row `top` and column `left`; borrowed when nothing moves.
fn pad_rows<T: Float>(
    src: &[T],
    planes: usize,
    [h, w]: [usize; 2],
    plane: usize,
    row: usize,
    [top, left]: [usize; 2],
) -> Cow<'_, [T]> {
    if plane == h * w && row == w {
        return Cow::Borrowed(src);
    }
    let mut out = vec![T::ZERO; planes * plane];
    for (dst, src) in out.chunks_exact_mut(plane).zip(src.chunks_exact(h * w)) {
        for (r, src_row) in src.chunks_exact(w).enumerate() {
            dst[(r + top) * row + left..][..w].copy_from_slice(src_row);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d;
    use burn::tensor::{TensorData, Tolerance};

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

    /// Every geometry the models use (1×1; 3×3 with padding = dilation 1, 2, 4 and 12 — also
    /// where the dilation reaches past the input, so that whole taps read only padding; the 7×7
    /// stem's kernel) plus uneven ones (non-square kernel and padding, padding 0 with dilation):
    /// the output and all three gradients equal Burn's own convolution's (an independent
    /// implementation), in f64 to 1e-12 and in f32 to 1e-5.
    #[test]
    fn gradients_equal_burns_convolution() {
        // (input shape, weight shape, padding, dilation)
        type Case = ([usize; 4], [usize; 4], [usize; 2], [usize; 2]);
        let cases: [Case; 8] = [
            ([2, 8, 6, 5], [12, 8, 1, 1], [0, 0], [1, 1]),
            ([2, 5, 9, 7], [6, 5, 3, 3], [1, 1], [1, 1]),
            ([1, 4, 8, 8], [3, 4, 3, 3], [2, 2], [2, 2]),
            ([3, 3, 7, 9], [5, 3, 3, 3], [4, 4], [4, 4]),
            ([2, 6, 5, 6], [4, 6, 3, 3], [12, 12], [12, 12]),
            ([2, 3, 12, 11], [4, 3, 7, 7], [3, 3], [1, 1]),
            ([2, 4, 6, 9], [3, 4, 3, 5], [0, 2], [1, 1]),
            ([1, 2, 10, 10], [3, 2, 3, 3], [0, 0], [3, 2]),
        ];
        for (case, (xs, ws, padding, dilation)) in cases.into_iter().enumerate() {
            let options = ConvOptions::new([1, 1], padding, dilation, 1);
            let out = |i: usize| xs[i + 2] + 2 * padding[i] - dilation[i] * (ws[i + 2] - 1);
            let seed = 4 * case as u64;
            let x = values(&xs, seed);
            let w = values(&ws, seed + 1);
            let b = values(&[ws[0]], seed + 2);
            let r = values(&[xs[0], ws[0], out(0), out(1)], seed + 3);
            let o = options.clone();
            let fast: Box<Conv> = Box::new(move |x, w, b| match try_conv2d(x, w, b, &o) {
                Ok(y) => y,
                Err(_) => panic!("Autodiff<Flex> takes the project's convolution"),
            });
            let burn: Box<Conv> = Box::new(move |x, w, b| conv2d(x, w, b, options.clone()));
            for (dtype, tolerance) in [(DType::F64, 1e-12), (DType::F32, 1e-5)] {
                let got = run(&*fast, [&x, &w, &b, &r], dtype);
                let expected = run(&*burn, [&x, &w, &b, &r], dtype);
                for (name, (got, expected)) in ["output", "x", "weight", "bias"]
                    .iter()
                    .zip(got.iter().zip(&expected))
                {
                    println!("case {case}, {name}, {dtype:?}");
                    assert_eq!(got.dtype, dtype, "case {case} {name}");
                    let (got, expected) = (
                        got.clone().convert::<f64>(),
                        expected.clone().convert::<f64>(),
                    );
                    let scale = expected.iter::<f64>().fold(1.0f64, |m, v| m.max(v.abs()));
                    got.assert_approx_eq::<f64>(&expected, Tolerance::absolute(tolerance * scale));
                }
            }
        }
    }

    /// A strided convolution's weight gradient is left to Burn (`None` here).
    #[test]
    fn strided_convolutions_are_left_to_burn() {
        let x = FlexTensor::zeros(Shape::new([1, 2, 8, 8]), DType::F32);
        let grad = FlexTensor::zeros(Shape::new([1, 3, 4, 4]), DType::F32);
        let weight = FlexTensor::zeros(Shape::new([3, 2, 1, 1]), DType::F32);
        let options = ConvOptions::new([2, 2], [0, 0], [1, 1], 1);
        assert!(weight_grad(&x, &grad, &weight, &options).is_none());
        let grad = FlexTensor::zeros(Shape::new([1, 3, 8, 8]), DType::F32);
        let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
        assert!(weight_grad(&x, &grad, &weight, &options).is_some());
    }
}
