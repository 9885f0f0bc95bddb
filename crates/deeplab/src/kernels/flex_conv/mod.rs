//! Convolutions on the Flex CPU backend computed by this crate: the forward pass (training on
//! `Autodiff<Flex>` and inference on `Flex`), the input gradient and the weight gradient, as one
//! matrix product per kernel tap ([`taps`]) or, for the forward pass where those do not apply,
//! by im2col blocked along K ([`im2col`]), through the `gemm` crate Flex itself uses
//! ([`matmul`]).
//!
//! Burn 0.21's Flex convolution re-lays the whole weight tensor out on every call, copies the
//! input to NHWC, multiplies im2col tiles and scatters the result back to NCHW; its input
//! gradient is a transposed convolution with a serial col2im scatter-add, and its weight gradient
//! a convolution with the output gradient as kernel (3–7× the forward's time). Here the weights
//! are read in their own layout and nothing is scattered.
//!
//! Handled: every ungrouped f32/f64 convolution, forward and backward — stride-1 ones by taps
//! where the padded rows waste little, strided 1×1 ones through the subsampled input, the rest
//! (the 7×7 stem, ResNet's strided 3×3, wide paddings on small maps) by im2col. Left to Flex:
//! grouped convolutions (DeepLabV3+'s depthwise ones) and other element types.

use std::any::Any;

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

mod im2col;
mod matmul;
mod taps;

use burn::tensor::Element;
use im2col::Im2col;
use matmul::{Epilogue, Float};
use taps::Geometry;

type Ad = Autodiff<Flex>;
type Inputs<B> = (Tensor<B, 4>, Tensor<B, 4>, Option<Tensor<B, 1>>);

/// `conv2d(x, weight, bias, options)` through this module when `B` is `Autodiff<Flex>` (training)
/// or `Flex` (inference); `Err` gives the inputs back untouched for any other backend.
pub(crate) fn try_conv2d<B: Backend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, Inputs<B>> {
    let mut inputs = Some((x, weight, bias));
    let any = &mut inputs as &mut dyn Any;
    let y: Box<dyn Any> = if let Some(slot) = any.downcast_mut::<Option<Inputs<Ad>>>() {
        let (x, weight, bias) = slot.take().expect("inputs present");
        Box::new(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(
            conv2d(
                x.into_primitive().tensor(),
                weight.into_primitive().tensor(),
                bias.map(|b| b.into_primitive().tensor()),
                options.clone(),
            ),
        )))
    } else if let Some(slot) = any.downcast_mut::<Option<Inputs<Flex>>>() {
        let (x, weight, bias) = slot.take().expect("inputs present");
        Box::new(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(
            flex_conv2d(
                x.into_primitive().tensor(),
                weight.into_primitive().tensor(),
                bias.map(|b| b.into_primitive().tensor()),
                options.clone(),
            ),
        )))
    } else {
        return Err(inputs.expect("inputs not taken"));
    };
    Ok(*y
        .downcast::<Tensor<B, 4>>()
        .expect("B is Autodiff<Flex> or Flex"))
}

/// The inputs of a convolution followed by a residual addition and ReLU.
type FusedInputs<B> = (
    Tensor<B, 4>,
    Tensor<B, 4>,
    Option<Tensor<B, 1>>,
    Option<Tensor<B, 4>>,
);

/// `relu(conv2d(x, weight, bias, options) [+ residual])` in one pass — the addition and the ReLU
/// applied to each sample's output as soon as it is computed — when `B` is `Flex` (inference)
/// and this module computes the convolution; `Err` gives the inputs back untouched otherwise.
pub(crate) fn try_conv2d_relu<B: Backend>(
    (x, weight, bias, residual): FusedInputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, FusedInputs<B>> {
    let mut inputs = Some((x, weight, bias, residual));
    let y = match (&inputs as &dyn Any).downcast_ref::<Option<FusedInputs<Flex>>>() {
        Some(Some((x, weight, bias, residual))) => {
            let primitive = |t: &Tensor<Flex, 4>| t.clone().into_primitive().tensor();
            let residual = residual.as_ref().map(primitive);
            let then = Then {
                residual: residual.as_ref(),
                relu: true,
            };
            let bias = bias.as_ref().map(|b| b.clone().into_primitive().tensor());
            forward(
                &primitive(x),
                &primitive(weight),
                bias.as_ref(),
                options,
                then,
            )
        }
        _ => None,
    };
    let Some(y) = y else {
        return Err(inputs.take().expect("inputs present"));
    };
    let y: Box<dyn Any> = Box::new(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y)));
    Ok(*y.downcast::<Tensor<B, 4>>().expect("B is Flex"))
}

/// The forward convolution on `Flex`: this module's when it handles the geometry, else Flex's.
fn flex_conv2d(
    x: FlexTensor,
    weight: FlexTensor,
    bias: Option<FlexTensor>,
    options: ConvOptions<2>,
) -> FlexTensor {
    forward(&x, &weight, bias.as_ref(), &options, Then::default())
        .unwrap_or_else(|| Flex::conv2d(x, weight, bias, options))
}

/// The autodiff convolution, as `burn-autodiff`'s own but with this module's forward pass and
/// input and weight gradients.
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
    let y = flex_conv2d(
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
        let g = input_grad(&x, &weight, &grad, &options).unwrap_or_else(|| {
            Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone())
        });
        grads.register::<Flex>(node, g);
    }
    if let Some(node) = node_weight {
        let g = weight_grad(&x, &grad, &weight, &options)
            .unwrap_or_else(|| Flex::conv2d_weight_backward(x, weight, grad, options));
        grads.register::<Flex>(node, g);
    }
}

/// The element types computed here.
fn supported(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && matches!(x.dtype(), DType::F32 | DType::F64)
        && weight.dtype() == x.dtype()
}

/// A stride-1 convolution's geometry for the tap kernels, when they handle it: ungrouped,
/// f32/f64, and a padded row at most `max_overhead` times the output row.
fn tap_geometry(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
    max_overhead: f64,
) -> Option<Geometry> {
    if options.stride != [1, 1] || !supported(x, weight, options) {
        return None;
    }
    let geometry = Geometry::new(dims(x), dims(weight), options.padding, options.dilation)?;
    (geometry.padding_overhead() <= max_overhead).then_some(geometry)
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    t.layout().shape().dims()
}

/// Gradients: above this padded-row / output-row ratio they are computed by im2col (the taps'
/// gradients need no column matrix, which makes them worth more waste than the forward pass).
const GRADIENT_MAX_OVERHEAD: f64 = 2.0;

/// Forward pass: above this ratio the im2col copy costs less than the taps' wasted work
/// (measured: the ASPP's rate 12 at 16×16, ratio 1.75, 30 ms by taps, 19 ms by im2col).
const FORWARD_MAX_OVERHEAD: f64 = 1.25;

/// How a forward convolution is computed.
enum Method {
    Taps(Geometry),
    Im2col(Im2col),
}

impl Method {
    fn out(&self) -> [usize; 4] {
        match self {
            Method::Taps(g) => g.out,
            Method::Im2col(g) => g.out(),
        }
    }

    /// Into `out` (a zeroed tensor of the output's shape); `None` if a tensor is not readable
    /// as `T`.
    fn run<T: Float + Element + bytemuck::Pod>(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        bias: Option<&FlexTensor>,
        then: Then,
        out: &mut FlexTensor,
    ) -> Option<()> {
        let bias = match bias {
            Some(b) => Some(b.as_slice::<T>()?),
            None => None,
        };
        let epilogue = Epilogue {
            residual: match then.residual {
                Some(r) => Some(r.as_slice::<T>()?),
                None => None,
            },
            relu: then.relu,
        };
        let (x, weight) = (x.as_slice::<T>()?, weight.as_slice::<T>()?);
        match self {
            Method::Taps(g) => g.forward(x, weight, bias, epilogue, out.storage_mut()),
            Method::Im2col(g) => g.forward(x, weight, bias, epilogue, out.storage_mut()),
        }
        Some(())
    }
}

/// What follows the convolution in the same pass (inference only).
#[derive(Clone, Copy, Default)]
struct Then<'a> {
    /// Added to the output (same shape, contiguous).
    residual: Option<&'a FlexTensor>,
    /// ReLU after the addition.
    relu: bool,
}

/// The forward convolution, followed by `then` (`None`: not handled here).
fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
    then: Then,
) -> Option<FlexTensor> {
    let dtype = x.dtype();
    if !supported(x, weight, options) || bias.is_some_and(|b| b.dtype() != dtype) {
        return None;
    }
    let method = forward_method(dims(x), weight, options)?;
    if then
        .residual
        .is_some_and(|r| r.dtype() != dtype || dims(r) != method.out())
    {
        return None;
    }
    let residual = then.residual.map(FlexTensor::to_contiguous);
    let then = Then {
        residual: residual.as_ref(),
        ..then
    };
    let x = match strided_pointwise(weight, options) {
        Some(_) => subsample(x, options.stride)?,
        None => x.to_contiguous(),
    };
    let weight = weight.to_contiguous();
    let bias = bias.map(FlexTensor::to_contiguous);
    let mut out = FlexTensor::zeros(Shape::new(method.out()), dtype);
    match dtype {
        DType::F32 => method.run::<f32>(&x, &weight, bias.as_ref(), then, &mut out)?,
        _ => method.run::<f64>(&x, &weight, bias.as_ref(), then, &mut out)?,
    }
    Some(out)
}

/// How the forward pass of a convolution of an `x`-shaped input is computed: per-tap products
/// where their padded rows waste little, im2col otherwise; a strided 1×1 as the stride-1 1×1 of
/// the subsampled input (see [`strided_pointwise`]).
fn forward_method(x: [usize; 4], weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Method> {
    if let Some(sub_options) = strided_pointwise(weight, options) {
        let [n, c, h, w] = x;
        let [sh, sw] = options.stride;
        return forward_method([n, c, h.div_ceil(sh), w.div_ceil(sw)], weight, &sub_options);
    }
    let taps = (options.stride == [1, 1])
        .then(|| Geometry::new(x, dims(weight), options.padding, options.dilation))
        .flatten()
        .filter(|g| g.padding_overhead() <= FORWARD_MAX_OVERHEAD);
    match taps {
        Some(geometry) => Some(Method::Taps(geometry)),
        None => Im2col::new(
            x,
            dims(weight),
            options.stride,
            options.padding,
            options.dilation,
        )
        .map(Method::Im2col),
    }
}

/// For a strided 1×1 convolution without padding, the stride-1 options of the same convolution
/// on the subsampled input `x[:, :, ::sh, ::sw]`, which it equals.
fn strided_pointwise(weight: &FlexTensor, options: &ConvOptions<2>) -> Option<ConvOptions<2>> {
    let [_, _, kh, kw] = dims(weight);
    (options.stride != [1, 1] && [kh, kw] == [1, 1] && options.padding == [0, 0])
        .then(|| ConvOptions::new([1, 1], [0, 0], options.dilation, options.groups))
}

/// `x[:, :, ::sh, ::sw]`, contiguous (f32/f64 only).
fn subsample(x: &FlexTensor, [sh, sw]: [usize; 2]) -> Option<FlexTensor> {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let (ho, wo) = (h.div_ceil(sh), w.div_ceil(sw));
    let x = x.to_contiguous();
    let mut out = FlexTensor::zeros(Shape::new([n, c, ho, wo]), x.dtype());
    fn copy<T: Copy>(src: &[T], dst: &mut [T], [h, w, ho, wo, sh, sw]: [usize; 6]) {
        for (d, s) in dst.chunks_exact_mut(ho * wo).zip(src.chunks_exact(h * w)) {
            for (i, row) in d.chunks_exact_mut(wo).enumerate() {
                let src_row = &s[i * sh * w..];
                for (j, v) in row.iter_mut().enumerate() {
                    *v = src_row[j * sw];
                }
            }
        }
    }
    let dims = [h, w, ho, wo, sh, sw];
    match x.dtype() {
        DType::F32 => copy::<f32>(x.as_slice()?, out.storage_mut(), dims),
        DType::F64 => copy::<f64>(x.as_slice()?, out.storage_mut(), dims),
        _ => return None,
    }
    Some(out)
}

/// The adjoint of [`subsample`]: `g` (`[N, C, ⌈H/sh⌉, ⌈W/sw⌉]`) placed at every `sh`-th row and
/// `sw`-th column of a zero `[N, C, H, W]` tensor.
fn spread(g: &FlexTensor, [n, c, h, w]: [usize; 4], [sh, sw]: [usize; 2]) -> Option<FlexTensor> {
    let [_, _, ho, wo] = dims(g);
    let g = g.to_contiguous();
    let mut out = FlexTensor::zeros(Shape::new([n, c, h, w]), g.dtype());
    fn place<T: Copy>(src: &[T], dst: &mut [T], [h, w, ho, wo, sh, sw]: [usize; 6]) {
        for (d, s) in dst.chunks_exact_mut(h * w).zip(src.chunks_exact(ho * wo)) {
            for (i, row) in s.chunks_exact(wo).enumerate() {
                let dst_row = &mut d[i * sh * w..];
                for (j, &v) in row.iter().enumerate() {
                    dst_row[j * sw] = v;
                }
            }
        }
    }
    let shape = [h, w, ho, wo, sh, sw];
    match g.dtype() {
        DType::F32 => place::<f32>(g.as_slice()?, out.storage_mut(), shape),
        DType::F64 => place::<f64>(g.as_slice()?, out.storage_mut(), shape),
        _ => return None,
    }
    Some(out)
}

/// How a gradient is computed: per-tap products for stride-1 convolutions whose padded rows
/// waste little, im2col otherwise.
fn gradient_method(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<Method> {
    if !supported(x, weight, options) {
        return None;
    }
    match tap_geometry(x, weight, options, GRADIENT_MAX_OVERHEAD) {
        Some(geometry) => Some(Method::Taps(geometry)),
        None => Im2col::new(
            dims(x),
            dims(weight),
            options.stride,
            options.padding,
            options.dilation,
        )
        .map(Method::Im2col),
    }
}

/// The input gradient (`None`: not handled here).
fn input_grad(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some(sub_options) = strided_pointwise(weight, options) {
        let sub = subsample(x, options.stride)?;
        let g = input_grad(&sub, weight, grad, &sub_options)?;
        return spread(&g, dims(x), options.stride);
    }
    let method = gradient_method(x, weight, options)?;
    let dtype = x.dtype();
    if grad.dtype() != dtype || dims(grad) != method.out() {
        return None;
    }
    let (grad, weight) = (grad.to_contiguous(), weight.to_contiguous());
    let mut out = FlexTensor::zeros(Shape::new(dims(x)), dtype);
    fn run<T: Float + Element + bytemuck::Pod>(
        method: &Method,
        grad: &FlexTensor,
        weight: &FlexTensor,
        out: &mut FlexTensor,
    ) -> Option<()> {
        let (grad, weight) = (grad.as_slice::<T>()?, weight.as_slice::<T>()?);
        match method {
            Method::Taps(g) => g.input_grad(grad, weight, out.storage_mut()),
            Method::Im2col(g) => g.input_grad(grad, weight, out.storage_mut()),
        }
        Some(())
    }
    match dtype {
        DType::F32 => run::<f32>(&method, &grad, &weight, &mut out)?,
        _ => run::<f64>(&method, &grad, &weight, &mut out)?,
    }
    Some(out)
}

/// The weight gradient (`None`: not handled here).
fn weight_grad(
    x: &FlexTensor,
    grad: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some(sub_options) = strided_pointwise(weight, options) {
        return weight_grad(&subsample(x, options.stride)?, grad, weight, &sub_options);
    }
    let method = gradient_method(x, weight, options)?;
    let dtype = x.dtype();
    if grad.dtype() != dtype || dims(grad) != method.out() {
        return None;
    }
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let mut out = FlexTensor::zeros(weight.layout().shape().clone(), dtype);
    fn run<T: Float + Element + bytemuck::Pod>(
        method: &Method,
        x: &FlexTensor,
        grad: &FlexTensor,
        out: &mut FlexTensor,
    ) -> Option<()> {
        let (x, grad) = (x.as_slice::<T>()?, grad.as_slice::<T>()?);
        match method {
            Method::Taps(g) => g.weight_grad(x, grad, out.storage_mut()),
            Method::Im2col(g) => g.weight_grad(x, grad, out.storage_mut()),
        }
        Some(())
    }
    match dtype {
        DType::F32 => run::<f32>(&method, &x, &grad, &mut out)?,
        _ => run::<f64>(&method, &x, &grad, &mut out)?,
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::conv2d;
    use burn::tensor::TensorData;

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

    /// (input shape, weight shape, stride, padding, dilation, forward pass by per-tap products
    /// rather than im2col)
    type Case = (
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        bool,
    );

    /// Every geometry the models use and uneven ones: 1×1 of stride 1 and 2; 3×3 of stride 1
    /// and 2; dilations 2, 4, 12, 24 and 36 with "same" padding, on maps wider than the
    /// dilation and on maps it reaches past (only the centre tap reads the input, or whole rows
    /// of taps read padding only); the 7×7 stem's kernel, also strided; padded rows more than
    /// twice the output's (gradients by im2col too); non-square kernels, strides and padding;
    /// padding 0 with dilation; channel counts that are not multiples of any SIMD width;
    /// batches of 1, 2 and 3.
    #[rustfmt::skip]
    const CASES: [Case; 19] = [
        ([2, 8, 6, 5], [12, 8, 1, 1], [1, 1], [0, 0], [1, 1], true),
        ([3, 7, 9, 8], [5, 7, 1, 1], [2, 2], [0, 0], [1, 1], true),
        ([1, 5, 7, 7], [9, 5, 1, 1], [2, 2], [0, 0], [1, 1], true),
        ([2, 5, 9, 7], [6, 5, 3, 3], [1, 1], [1, 1], [1, 1], true),
        ([3, 5, 9, 7], [6, 5, 3, 3], [2, 2], [1, 1], [1, 1], false),
        ([1, 4, 8, 8], [3, 4, 3, 3], [1, 1], [2, 2], [2, 2], true),
        ([3, 3, 7, 9], [5, 3, 3, 3], [1, 1], [4, 4], [4, 4], false),
        ([2, 6, 5, 6], [4, 6, 3, 3], [1, 1], [12, 12], [12, 12], true),
        ([1, 3, 16, 16], [5, 3, 3, 3], [1, 1], [12, 12], [12, 12], false),
        ([2, 3, 30, 29], [4, 3, 3, 3], [1, 1], [24, 24], [24, 24], false),
        ([3, 5, 16, 16], [3, 5, 3, 3], [1, 1], [24, 24], [24, 24], true),
        ([1, 3, 40, 44], [5, 3, 3, 3], [1, 1], [36, 36], [36, 36], false),
        ([2, 3, 10, 10], [4, 3, 3, 3], [1, 1], [36, 36], [36, 36], true),
        ([2, 3, 12, 11], [4, 3, 7, 7], [1, 1], [3, 3], [1, 1], false),
        ([2, 4, 6, 9], [3, 4, 3, 5], [1, 1], [0, 2], [1, 1], true),
        ([1, 2, 10, 10], [3, 2, 3, 3], [1, 1], [0, 0], [3, 2], false),
        ([2, 3, 19, 18], [5, 3, 7, 7], [2, 2], [3, 3], [1, 1], false),
        ([1, 4, 11, 12], [3, 4, 3, 2], [3, 2], [2, 1], [2, 3], false),
        ([2, 3, 6, 5], [4, 3, 3, 5], [1, 1], [1, 6], [1, 3], false),
    ];

    /// Output size of a case along axis `i` (0: height, 1: width).
    fn out_size((xs, ws, stride, padding, dilation, _): &Case, i: usize) -> usize {
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

    /// Training (`Autodiff<Flex>`): the output and the gradients for the input, the weight and
    /// the bias equal Burn's own convolution's (an independent implementation: Flex's im2col
    /// forward, its transposed-convolution input gradient and its weight gradient), in f64 to
    /// 1e-12 and in f32 to 1e-5 relative to the largest value. Each case also checks which of
    /// the two forward methods computes it, so that both are covered.
    #[test]
    fn gradients_equal_burns_convolution() {
        for (case, geometry) in CASES.iter().enumerate() {
            let &(xs, ws, stride, padding, dilation, taps) = geometry;
            let options = ConvOptions::new(stride, padding, dilation, 1);
            let seed = 4 * case as u64;
            let x = values(&xs, seed);
            let w = values(&ws, seed + 1);
            let b = values(&[ws[0]], seed + 2);
            let out = [xs[0], ws[0], out_size(geometry, 0), out_size(geometry, 1)];
            let r = values(&out, seed + 3);
            let weight = FlexTensor::from_data(w.clone());
            let method = forward_method(xs, &weight, &options).expect("computed here");
            assert_eq!(
                matches!(method, Method::Taps(_)),
                taps,
                "case {case}: forward by taps"
            );
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
                    assert_eq!(got.dtype, dtype, "case {case} {name}");
                    assert_eq!(got.shape, expected.shape, "case {case} {name}");
                    let error = relative_error(got, expected);
                    assert!(
                        error <= tolerance,
                        "case {case} {geometry:?}, {name} in {dtype:?}: relative error {error:e}"
                    );
                }
            }
        }
    }

    /// Inference (plain `Flex`): the output equals Flex's own convolution's on every case, with
    /// and without bias, in f64 to 1e-12 and in f32 to 1e-5.
    #[test]
    fn inference_equals_flexs_convolution() {
        for (case, geometry) in CASES.iter().enumerate() {
            let &(xs, ws, stride, padding, dilation, _) = geometry;
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
                    let got = match try_conv2d(x.clone(), w.clone(), bias.clone(), &options) {
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
            let &(xs, ws, stride, padding, dilation, _) = geometry;
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

    /// Every ungrouped f32/f64 convolution is computed here, forward and backward (strided k×k
    /// included); grouped convolutions and other element types are Flex's (`None`).
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
}
