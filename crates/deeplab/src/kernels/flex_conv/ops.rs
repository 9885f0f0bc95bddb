//! The convolution operations on Flex tensors — forward (with its inference epilogue), input
//! gradient, weight gradient — each routed to the per-tap products ([`super::taps`]) or im2col
//! ([`super::im2col`]) by the geometry, `None` where Flex's own should run.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Element, Shape};
use burn_flex::FlexTensor;

use super::batched::Batched;
use super::clipped::{Clipped, MIN_PIXELS};
use super::depthwise::Depthwise;
use super::im2col::Im2col;
use super::matmul::{Epilogue, Float, Operands};
use super::taps::Geometry;
use crate::kernels::flex_alloc::{filled_planes, zeros};

/// The element types computed here: f32 and f64, the weight's the input's.
fn element_types(x: &FlexTensor, weight: &FlexTensor) -> bool {
    matches!(x.dtype(), DType::F32 | DType::F64) && weight.dtype() == x.dtype()
}

/// An ungrouped convolution of the element types computed here.
pub(super) fn supported(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> bool {
    options.groups == 1 && element_types(x, weight)
}

/// The depthwise convolution `options` describes for an `x`-shaped input, if it is one.
fn depthwise(x: [usize; 4], weight: &FlexTensor, options: &ConvOptions<2>) -> Option<Depthwise> {
    Depthwise::new(
        x,
        dims(weight),
        options.groups,
        [options.stride, options.padding, options.dilation],
    )
}

/// A stride-1 convolution's geometry for the tap kernels, when they handle it: ungrouped,
/// f32/f64, and a padded row at most `max_overhead` times the output row.
pub(super) fn tap_geometry(
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

pub(super) fn dims(t: &FlexTensor) -> [usize; 4] {
    t.layout().shape().dims()
}

/// Gradients: above this padded-row / output-row ratio they are computed by im2col (the taps'
/// gradients need no column matrix, which makes them worth more waste than the forward pass).
const GRADIENT_MAX_OVERHEAD: f64 = 2.0;

/// Forward pass: above this ratio the im2col copy costs less than the taps' wasted work
/// (measured: the ASPP's rate 12 at 16×16, ratio 1.75, 30 ms by taps, 19 ms by im2col).
const FORWARD_MAX_OVERHEAD: f64 = 1.25;

/// Forward pass: a kernel above 1×1 goes by taps only when each sample's padded output plane
/// has at least this many pixels — the rows of each tap's product, one full 64-row tile of the
/// GEMM's AVX-512 kernel. On smaller maps the products are too short to run at speed
/// (measured: layer3's 3×3 on 4×4 maps, padded rows 5 long, batch 6, 1.61 ms by taps and
/// 0.77 ms by im2col, whose product is 9× deeper; layer4's dilated 3×3 on 8×8, 80 padded
/// pixels, as fast by taps).
const FORWARD_MIN_PADDED_PIXELS: usize = 64;

/// Taps clipped to where they read the input are used where that skips at least this share of
/// a convolution's multiply-adds (the ASPP's rates on maps they reach past; not the backbone's
/// dilated 3×3, which read padding only along the borders).
const CLIPPED_MAX_LIVE_FRACTION: f64 = 0.8;

/// The clipped taps' copies of the input taken as this many multiply-adds of their products
/// (the per-tap products copy nothing).
const CLIPPED_COPY_COST: f64 = 1.1;

/// Forward pass: batches of two or more samples whose output maps have at most this many
/// pixels (4×4 in layer3, layer4 and the ASPP on 64×64 windows) go by im2col over the whole
/// batch ([`Batched`]), whatever the kernel: per sample their products are under one 64-row
/// tile of the GEMM's AVX-512 kernel, whose 16-row one does a quarter of the multiply-adds per
/// load. Measured on the quick preset's model (2-core Intel Xeon): at batch 64, layer3 100 →
/// 79 ms, layer4 157 → 133 ms, the whole inference 132 → 154 images/s; at batch 6, layer4
/// 18–19.5 → 15.6–16.4 ms. Maps of one pixel (the ASPP's pooled branch) stay per sample: they
/// cost nothing either way, and in training on two samples their BatchNorm leaves that
/// convolution's weight gradient at rounding level, where a changed f32 summation order turns
/// into different Adam steps.
const FORWARD_BATCHED_MAX_PIXELS: usize = 63;

/// `im2col`'s convolution by taps clipped to where they read the input, where that does less
/// work than the per-tap products (`taps`, when they apply) and im2col: output maps on which the
/// kernel reads padding for at least a fifth of its multiply-adds
/// ([`CLIPPED_MAX_LIVE_FRACTION`]), of at least [`MIN_PIXELS`] pixels — or, for the forward pass
/// (`side_by_side`, its samples then side by side), smaller maps of at least that many pixels
/// over the batch.
fn clipped(im2col: Im2col, taps: Option<&Geometry>, side_by_side: bool) -> Option<Clipped> {
    let [n, _, ho, wo] = im2col.out();
    let pixels = if side_by_side { n * ho * wo } else { ho * wo };
    if pixels < MIN_PIXELS {
        return None;
    }
    let clipped = Clipped::new(im2col);
    let live = clipped.live_fraction();
    let taps_work = taps.map_or(f64::INFINITY, Geometry::relative_work);
    (live > 0.0 && live <= CLIPPED_MAX_LIVE_FRACTION && live * CLIPPED_COPY_COST < taps_work)
        .then_some(clipped)
}

/// How a forward convolution is computed.
pub(super) enum Method {
    /// Per-tap products.
    Taps(Geometry),
    /// Blocked im2col.
    Im2col(Im2col),
    /// Per-tap products over where each tap reads the input.
    Clipped(Clipped),
    /// One filter per channel.
    Depthwise(Depthwise),
    /// Im2col over the whole batch (tiny maps).
    Batched(Batched),
}

impl Method {
    fn out(&self) -> [usize; 4] {
        match self {
            Method::Batched(g) => g.out(),
            Method::Taps(g) => g.out,
            Method::Im2col(g) => g.out(),
            Method::Clipped(g) => g.out(),
            Method::Depthwise(g) => g.out(),
        }
    }

    /// The output, allocated holding the bias (see [`filled_planes`]), onto which the method
    /// adds the products; `None` if a tensor is not readable as `T`.
    fn run<T: Float + Element + bytemuck::Pod>(
        &self,
        x: &FlexTensor,
        weight: &FlexTensor,
        bias: Option<&FlexTensor>,
        then: Then,
    ) -> Option<FlexTensor> {
        let bias = match bias {
            Some(b) => Some(b.as_slice::<T>()?),
            None => None,
        };
        let mut out = filled_planes(self.out(), |c| bias.map_or(T::ZERO, |b| b[c]));
        let epilogue = Epilogue {
            residual: match then.residual {
                Some(r) => Some(r.as_slice::<T>()?),
                None => None,
            },
            relu: then.relu,
        };
        let operands = Operands {
            x: x.as_slice::<T>()?,
            weight: weight.as_slice::<T>()?,
            bias,
        };
        match self {
            Method::Taps(g) => g.forward(operands, epilogue, out.storage_mut()),
            Method::Im2col(g) => g.forward(operands, epilogue, out.storage_mut()),
            Method::Clipped(g) => g.forward(operands, epilogue, out.storage_mut()),
            Method::Depthwise(g) => g.forward(operands, epilogue, out.storage_mut()),
            Method::Batched(g) => g.forward(operands, epilogue, out.storage_mut()),
        }
        Some(out)
    }
}

/// What follows the convolution in the same pass (inference only).
#[derive(Clone, Copy, Default)]
pub(super) struct Then<'a> {
    /// Added to the output (same shape, contiguous).
    pub residual: Option<&'a FlexTensor>,
    /// ReLU after the addition.
    pub relu: bool,
}

/// The forward convolution, followed by `then` (`None`: not handled here).
pub(super) fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
    then: Then,
) -> Option<FlexTensor> {
    let dtype = x.dtype();
    if !element_types(x, weight) || bias.is_some_and(|b| b.dtype() != dtype) {
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
    match dtype {
        DType::F32 => method.run::<f32>(&x, &weight, bias.as_ref(), then),
        _ => method.run::<f64>(&x, &weight, bias.as_ref(), then),
    }
}

/// How the forward pass of a convolution of an `x`-shaped input is computed: a depthwise one
/// channel by channel; an ungrouped one by im2col over the whole batch on tiny maps (see
/// [`FORWARD_BATCHED_MAX_PIXELS`]), by clipped taps where a dilated kernel reads much padding,
/// else per-tap products where their padded rows waste little and the maps are not tiny (see
/// [`FORWARD_MIN_PADDED_PIXELS`]), im2col otherwise; a strided 1×1 as the stride-1 1×1 of the
/// subsampled input (see [`strided_pointwise`]).
pub(super) fn forward_method(
    x: [usize; 4],
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<Method> {
    if let Some(sub_options) = strided_pointwise(weight, options) {
        let [n, c, h, w] = x;
        let [sh, sw] = options.stride;
        return forward_method([n, c, h.div_ceil(sh), w.div_ceil(sw)], weight, &sub_options);
    }
    if options.groups != 1 {
        return depthwise(x, weight, options).map(Method::Depthwise);
    }
    let im2col = Im2col::new(
        x,
        dims(weight),
        options.stride,
        options.padding,
        options.dilation,
    )?;
    let [_, _, ho, wo] = im2col.out();
    if ho * wo <= FORWARD_BATCHED_MAX_PIXELS && ho * wo > 1 {
        if let Some(batched) = Batched::new(im2col) {
            return Some(Method::Batched(batched));
        }
    }
    let taps = (options.stride == [1, 1])
        .then(|| Geometry::new(x, dims(weight), options.padding, options.dilation))
        .flatten();
    if let Some(clipped) = clipped(im2col, taps.as_ref(), true) {
        return Some(Method::Clipped(clipped));
    }
    Some(
        match taps.filter(|g| {
            g.padding_overhead() <= FORWARD_MAX_OVERHEAD
                && (g.pointwise() || g.padded_pixels() >= FORWARD_MIN_PADDED_PIXELS)
        }) {
            Some(geometry) => Method::Taps(geometry),
            None => Method::Im2col(im2col),
        },
    )
}

/// For a strided 1×1 convolution without padding, the stride-1 options of the same convolution
/// on the subsampled input `x[:, :, ::sh, ::sw]`, which it equals.
pub(super) fn strided_pointwise(
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<ConvOptions<2>> {
    let [_, _, kh, kw] = dims(weight);
    (options.stride != [1, 1] && [kh, kw] == [1, 1] && options.padding == [0, 0])
        .then(|| ConvOptions::new([1, 1], [0, 0], options.dilation, options.groups))
}

/// `x[:, :, ::sh, ::sw]`, contiguous (f32/f64 only).
pub(super) fn subsample(x: &FlexTensor, [sh, sw]: [usize; 2]) -> Option<FlexTensor> {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let (ho, wo) = (h.div_ceil(sh), w.div_ceil(sw));
    let x = x.to_contiguous();
    let mut out = zeros(Shape::new([n, c, ho, wo]), x.dtype());
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
pub(super) fn spread(
    g: &FlexTensor,
    [n, c, h, w]: [usize; 4],
    [sh, sw]: [usize; 2],
) -> Option<FlexTensor> {
    let [_, _, ho, wo] = dims(g);
    let g = g.to_contiguous();
    let mut out = zeros(Shape::new([n, c, h, w]), g.dtype());
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

/// How a gradient is computed.
pub(super) enum GradientMethod {
    /// Im2col over the whole batch (small output maps).
    Batched(Batched),
    /// Per-tap products.
    Taps(Geometry),
    /// Blocked im2col, sample by sample.
    Im2col(Im2col),
    /// Per-tap products over where each tap reads the input.
    Clipped(Clipped),
    /// One filter per channel.
    Depthwise(Depthwise),
}

impl GradientMethod {
    fn out(&self) -> [usize; 4] {
        match self {
            GradientMethod::Batched(g) => g.out(),
            GradientMethod::Taps(g) => g.out,
            GradientMethod::Im2col(g) => g.out(),
            GradientMethod::Clipped(g) => g.out(),
            GradientMethod::Depthwise(g) => g.out(),
        }
    }
}

/// How a gradient is computed: a depthwise convolution's channel by channel; an ungrouped
/// one's for the whole batch at once on small output maps (the forward pass only on maps under
/// 64 pixels, see [`FORWARD_BATCHED_MAX_PIXELS`]), else by clipped taps where a dilated kernel reads much
/// padding, per-tap products for stride-1 convolutions whose padded rows waste little, im2col
/// otherwise.
pub(super) fn gradient_method(
    x: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<GradientMethod> {
    if !element_types(x, weight) {
        return None;
    }
    if options.groups != 1 {
        return depthwise(dims(x), weight, options).map(GradientMethod::Depthwise);
    }
    let im2col = Im2col::new(
        dims(x),
        dims(weight),
        options.stride,
        options.padding,
        options.dilation,
    )?;
    if let Some(batched) = Batched::new(im2col) {
        return Some(GradientMethod::Batched(batched));
    }
    let taps = tap_geometry(x, weight, options, f64::INFINITY);
    if let Some(clipped) = clipped(im2col, taps.as_ref(), false) {
        return Some(GradientMethod::Clipped(clipped));
    }
    Some(
        match taps.filter(|g| g.padding_overhead() <= GRADIENT_MAX_OVERHEAD) {
            Some(geometry) => GradientMethod::Taps(geometry),
            None => GradientMethod::Im2col(im2col),
        },
    )
}

/// The input gradient (`None`: not handled here).
pub(super) fn input_grad(
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
    gradient(
        &method,
        Wrt::Input,
        [grad, weight],
        grad,
        Shape::new(dims(x)),
    )
}

/// The weight gradient (`None`: not handled here).
pub(super) fn weight_grad(
    x: &FlexTensor,
    grad: &FlexTensor,
    weight: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if let Some(sub_options) = strided_pointwise(weight, options) {
        return weight_grad(&subsample(x, options.stride)?, grad, weight, &sub_options);
    }
    let method = gradient_method(x, weight, options)?;
    gradient(
        &method,
        Wrt::Weight,
        [x, grad],
        grad,
        weight.layout().shape().clone(),
    )
}

/// Which gradient [`gradient`] computes.
#[derive(Clone, Copy)]
enum Wrt {
    /// The input's, from `[output gradient, weight]`.
    Input,
    /// The weight's, from `[input, output gradient]`.
    Weight,
}

/// The gradient `wrt`, of shape `shape`, from its two operands by `method`; `None` when the
/// output gradient `grad` does not have the method's output shape and the input's element type.
fn gradient(
    method: &GradientMethod,
    wrt: Wrt,
    operands: [&FlexTensor; 2],
    grad: &FlexTensor,
    shape: Shape,
) -> Option<FlexTensor> {
    let dtype = operands[1].dtype();
    if operands[0].dtype() != dtype || dims(grad) != method.out() {
        return None;
    }
    let [a, b] = operands.map(FlexTensor::to_contiguous);
    let mut out = zeros(shape, dtype);
    fn run<T: Float + Element + bytemuck::Pod>(
        method: &GradientMethod,
        wrt: Wrt,
        [a, b]: [&FlexTensor; 2],
        out: &mut FlexTensor,
    ) -> Option<()> {
        let (a, b, out) = (a.as_slice::<T>()?, b.as_slice::<T>()?, out.storage_mut());
        match (method, wrt) {
            (GradientMethod::Batched(g), Wrt::Input) => g.input_grad(a, b, out),
            (GradientMethod::Batched(g), Wrt::Weight) => g.weight_grad(a, b, out),
            (GradientMethod::Taps(g), Wrt::Input) => g.input_grad(a, b, out),
            (GradientMethod::Taps(g), Wrt::Weight) => g.weight_grad(a, b, out),
            (GradientMethod::Im2col(g), Wrt::Input) => g.input_grad(a, b, out),
            (GradientMethod::Im2col(g), Wrt::Weight) => g.weight_grad(a, b, out),
            (GradientMethod::Clipped(g), Wrt::Input) => g.input_grad(a, b, out),
            (GradientMethod::Clipped(g), Wrt::Weight) => g.weight_grad(a, b, out),
            (GradientMethod::Depthwise(g), Wrt::Input) => g.input_grad(a, b, out),
            (GradientMethod::Depthwise(g), Wrt::Weight) => g.weight_grad(a, b, out),
        }
        Some(())
    }
    match dtype {
        DType::F32 => run::<f32>(method, wrt, [&a, &b], &mut out)?,
        _ => run::<f64>(method, wrt, [&a, &b], &mut out)?,
    }
    Some(out)
}
