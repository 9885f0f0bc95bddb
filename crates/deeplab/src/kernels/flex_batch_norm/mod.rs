//! BatchNorm in training on `Autodiff<Flex>` as one operation with its own backward pass,
//! optionally followed by a residual addition and ReLU (torchvision's `relu(bn(conv(x)))` and
//! the bottleneck's `relu(bn3(conv3(out)) + identity)`).
//!
//! Written with tensor operations (mean, centre, square, mean, scale, shift, add, ReLU), this
//! makes eight passes over the activation forward and about a dozen backward, each a separate
//! Flex kernel and autodiff node. Here the forward pass reads the input twice (mean, then
//! variance) and writes the output once; the backward pass masks the output gradient by the
//! ReLU's zeros (one pass, when there is a ReLU), then reads the input and that gradient twice
//! (the two per-channel sums, then the input gradient) — with
//! `x̂ = (x − μ)·σ⁻¹`, `M = N·H·W`, and `g` the output gradient passed through the ReLU
//! (zero where the output is zero, as PyTorch's `threshold_backward`):
//!
//! * `∂residual = g`, `∂β = Σ g`, `∂γ = Σ g·x̂`;
//! * `∂x = γ·σ⁻¹ · (g − ∂β/M − x̂·∂γ/M)`, the exact gradient through the batch statistics.
//!
//! Statistics are accumulated in f64 (for f32 activations too) and the work is split over the
//! channels (statistics) and the `[N·C]` rows (element-wise passes).

use std::any::Any;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, TensorData, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use crate::kernels::flex_alloc::from_chunks;

/// Runs `f::<T>` for the tensor's element type (f32 or f64; the caller checked).
macro_rules! by_dtype {
    ($dtype:expr, $f:ident ( $($arg:expr),* )) => {
        match $dtype {
            DType::F32 => $f::<f32>($($arg),*),
            DType::F64 => $f::<f64>($($arg),*),
            other => unreachable!("BatchNorm kernel called for {other:?}"),
        }
    };
}

type Ad = Autodiff<Flex>;

/// The inputs of a training BatchNorm: activation `[N, C, H, W]`, γ and β (`[C]`), and the
/// residual added to its output (`[N, C, H, W]`) if any.
pub(crate) type Inputs<B> = (
    Tensor<B, 4>,
    Tensor<B, 1>,
    Tensor<B, 1>,
    Option<Tensor<B, 4>>,
);

/// The output of a training BatchNorm (after the residual and the ReLU) and the batch statistics
/// (mean and biased variance, `[C]`, outside the autodiff graph).
pub(crate) type Outputs<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// `(act(γ·(x − μ)/√(σ² + ε) + β [+ residual]), μ, σ²)` with the batch statistics, `act` the
/// ReLU when `relu`, through this module when `B` is `Autodiff<Flex>` and the element type is
/// f32 or f64; `Err` gives the inputs back untouched otherwise.
pub(crate) fn try_train<B: Backend>(
    inputs: Inputs<B>,
    relu: bool,
    epsilon: f64,
) -> Result<Outputs<B>, Inputs<B>> {
    let (x, gamma, beta, residual) = &inputs;
    let dtype = x.dtype();
    let supported = matches!(dtype, DType::F32 | DType::F64)
        && gamma.dtype() == dtype
        && beta.dtype() == dtype
        && residual
            .as_ref()
            .is_none_or(|r| r.dtype() == dtype && r.dims() == x.dims());
    let mut inputs = Some(inputs);
    let slot = (&mut inputs as &mut dyn Any).downcast_mut::<Option<Inputs<Ad>>>();
    let Some(slot) = slot.filter(|_| supported) else {
        return Err(inputs.expect("inputs not taken"));
    };
    let (x, gamma, beta, residual) = slot.take().expect("inputs present");
    let primitive = |t: Tensor<Ad, 1>| t.into_primitive().tensor();
    let (y, mean, var) = train(
        x.into_primitive().tensor(),
        primitive(gamma),
        primitive(beta),
        residual.map(|r| r.into_primitive().tensor()),
        relu,
        epsilon,
    );
    let stat =
        |t: FlexTensor| Tensor::<Ad, 1>::from_primitive(TensorPrimitive::Float(Ad::from_inner(t)));
    let outputs: Box<dyn Any> = Box::new((
        Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(y)),
        stat(mean),
        stat(var),
    ));
    Ok(*outputs
        .downcast::<Outputs<B>>()
        .expect("B is Autodiff<Flex>"))
}

/// What the backward pass keeps: the input's node, γ, the per-channel mean and 1/√(σ² + ε), and
/// the output when a ReLU followed (its zeros mask the gradient).
#[derive(Debug, Clone)]
struct State {
    x: NodeId,
    gamma: FlexTensor,
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    relu_output: Option<FlexTensor>,
}

impl State {
    /// `[∂x, ∂γ, ∂β, ∂residual]` from the output gradient.
    fn gradients(self, grad: FlexTensor, ckpt: &mut Checkpointer) -> [FlexTensor; 4] {
        let x = ckpt.retrieve_node_output::<FlexTensor>(self.x);
        let grad = match &self.relu_output {
            Some(y) => by_dtype!(grad.dtype(), relu_backward(y, &grad)),
            None => grad,
        };
        let (gamma, mean, inv_std) = (&self.gamma, &self.mean, &self.inv_std);
        let [dx, dgamma, dbeta] = by_dtype!(x.dtype(), backward(&x, &grad, gamma, mean, inv_std));
        [dx, dgamma, dbeta, grad]
    }
}

/// Registers the gradients of the parents that track them.
fn register<const N: usize>(
    parents: [Option<NodeId>; N],
    gradients: [FlexTensor; 4],
    grads: &mut Gradients,
) {
    for (node, g) in parents.into_iter().zip(gradients) {
        if let Some(node) = node {
            grads.register::<Flex>(node, g);
        }
    }
}

/// The autodiff operation: output, batch mean and biased batch variance.
fn train(
    x: FloatTensor<Ad>,
    gamma: FloatTensor<Ad>,
    beta: FloatTensor<Ad>,
    residual: Option<FloatTensor<Ad>>,
    relu: bool,
    epsilon: f64,
) -> (FloatTensor<Ad>, FlexTensor, FlexTensor) {
    /// The operation with its `N` parents: x, γ, β and, for `N = 4`, the residual.
    #[derive(Debug)]
    struct BatchNormTrain<const N: usize>;

    impl<const N: usize> Backward<Flex, N> for BatchNormTrain<N> {
        type State = State;

        fn backward(self, ops: Ops<State, N>, grads: &mut Gradients, ckpt: &mut Checkpointer) {
            let parents = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            register(parents, ops.state.gradients(grad, ckpt), grads);
        }
    }

    /// The output `y` as the result of `BatchNormTrain<N>` on the `parents` (x first).
    fn record<const N: usize>(
        parents: [&FloatTensor<Ad>; N],
        state: impl FnOnce(NodeId) -> State,
        y: FlexTensor,
    ) -> FloatTensor<Ad> {
        match BatchNormTrain::<N>
            .prepare::<NoCheckpointing>(parents.map(|p| p.node.clone()))
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = state(prep.checkpoint(parents[0]));
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }

    let dtype = x.primitive.dtype();
    let residual_values = residual.as_ref().map(|r| &r.primitive);
    let (y, mean, var) = by_dtype!(
        dtype,
        forward(
            &x.primitive,
            &gamma.primitive,
            &beta.primitive,
            residual_values,
            relu,
            epsilon
        )
    );
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    let stats = (tensor(mean.clone(), dtype), tensor(var.clone(), dtype));
    let (gamma_values, relu_output) = (gamma.primitive.clone(), relu.then(|| y.clone()));
    let state = move |x: NodeId| State {
        x,
        gamma: gamma_values,
        mean,
        inv_std,
        relu_output,
    };
    let y = match &residual {
        None => record([&x, &gamma, &beta], state, y),
        Some(residual) => record([&x, &gamma, &beta, residual], state, y),
    };
    (y, stats.0, stats.1)
}

/// A `[C]` tensor of `dtype` from f64 values.
fn tensor(values: Vec<f64>, dtype: DType) -> FlexTensor {
    let c = values.len();
    FlexTensor::from_data(TensorData::new(values, [c]).convert_dtype(dtype))
}

/// The element types handled here.
trait Real: burn::tensor::Element + bytemuck::Pod + Send + Sync + PartialOrd {
    fn widen(self) -> f64;
    fn narrow(v: f64) -> Self;
}

impl Real for f32 {
    fn widen(self) -> f64 {
        self as f64
    }
    fn narrow(v: f64) -> Self {
        v as f32
    }
}

impl Real for f64 {
    fn widen(self) -> f64 {
        self
    }
    fn narrow(v: f64) -> Self {
        v
    }
}

/// `(y, mean, biased variance)`.
fn forward<T: Real>(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    residual: Option<&FlexTensor>,
    relu: bool,
    epsilon: f64,
) -> (FlexTensor, Vec<f64>, Vec<f64>) {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let hw = h * w;
    let x = x.to_contiguous();
    let xs: &[T] = x.as_slice().expect("contiguous");
    let residual = residual.map(FlexTensor::to_contiguous);
    let rs: Option<&[T]> = residual.as_ref().map(|r| r.as_slice().expect("contiguous"));
    let (gamma, beta) = (values::<T>(gamma), values::<T>(beta));
    let count = (n * hw) as f64;
    let (mean, var): (Vec<f64>, Vec<f64>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let rows = || (0..n).map(|i| &xs[(i * c + ch) * hw..][..hw]);
            let mean = lane_sum(rows(), |v| v) / count;
            let var = lane_sum(rows(), |v| (v - mean) * (v - mean)) / count;
            (mean, var)
        })
        .unzip();
    // y = x·a + b with a = γ/√(σ² + ε), b = β − μ·a; then + residual, then ReLU.
    let a: Vec<f64> = (0..c)
        .map(|ch| gamma[ch] / (var[ch] + epsilon).sqrt())
        .collect();
    let b: Vec<f64> = (0..c).map(|ch| beta[ch] - mean[ch] * a[ch]).collect();
    // One pass per `[N·C]` row, the output written once.
    let zero = T::narrow(0.0);
    let act = move |v: T| if relu && v < zero { zero } else { v };
    let shape = x.layout().shape().clone();
    let (a, b) = (&a, &b);
    let y = match rs {
        None => from_chunks(shape, hw, |row| {
            let (a, b) = (a[row % c], b[row % c]);
            let src = &xs[row * hw..][..hw];
            src.iter().map(move |s| act(T::narrow(s.widen() * a + b)))
        }),
        Some(rs) => from_chunks(shape, hw, |row| {
            let (a, b) = (a[row % c], b[row % c]);
            let (src, res) = (&xs[row * hw..][..hw], &rs[row * hw..][..hw]);
            src.iter()
                .zip(res)
                .map(move |(s, r)| act(T::narrow(T::narrow(s.widen() * a + b).widen() + r.widen())))
        }),
    };
    (y, mean, var)
}

/// The output gradient through the ReLU: zero where its output `y` is not positive.
fn relu_backward<T: Real>(y: &FlexTensor, grad: &FlexTensor) -> FlexTensor {
    let (y, grad) = (y.to_contiguous(), grad.to_contiguous());
    let ys: &[T] = y.as_slice().expect("contiguous");
    let gs: &[T] = grad.as_slice().expect("contiguous");
    let zero = T::narrow(0.0);
    const CHUNK: usize = 1 << 14;
    from_chunks(grad.layout().shape().clone(), CHUNK, |i| {
        let at = i * CHUNK;
        let (ys, gs) = (&ys[at..], &gs[at..]);
        ys.iter()
            .zip(gs)
            .take(CHUNK)
            .map(move |(&y, &g)| if y > zero { g } else { zero })
    })
}

/// `[∂x, ∂γ, ∂β]` from the output gradient.
fn backward<T: Real>(
    x: &FlexTensor,
    grad: &FlexTensor,
    gamma: &FlexTensor,
    mean: &[f64],
    inv_std: &[f64],
) -> [FlexTensor; 3] {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let hw = h * w;
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let xs: &[T] = x.as_slice().expect("contiguous");
    let gs: &[T] = grad.as_slice().expect("contiguous");
    let gamma = values::<T>(gamma);
    let count = (n * hw) as f64;
    // Per channel: Σ g and Σ g·(x − μ).
    let (sum_g, sum_gx): (Vec<f64>, Vec<f64>) = (0..c)
        .into_par_iter()
        .map(|ch| {
            let rows = (0..n).map(|i| {
                let at = (i * c + ch) * hw;
                (&gs[at..][..hw], &xs[at..][..hw])
            });
            lane_sums_of_products(rows, mean[ch])
        })
        .unzip();
    let dbeta = sum_g.clone();
    let dgamma: Vec<f64> = (0..c).map(|ch| sum_gx[ch] * inv_std[ch]).collect();
    // ∂x = k·(g − ∂β/M − (x − μ)·σ⁻²·Σg(x − μ)/M) = k·g + p·x + q per channel.
    let coefficients: Vec<[f64; 3]> = (0..c)
        .map(|ch| {
            let k = gamma[ch] * inv_std[ch];
            let p = -k * inv_std[ch] * inv_std[ch] * sum_gx[ch] / count;
            let q = -k * sum_g[ch] / count - p * mean[ch];
            [k, p, q]
        })
        .collect();
    let coefficients = &coefficients;
    let dx = from_chunks(x.layout().shape().clone(), hw, |row| {
        let [k, p, q] = coefficients[row % c];
        let (xr, gr) = (&xs[row * hw..][..hw], &gs[row * hw..][..hw]);
        xr.iter()
            .zip(gr)
            .map(move |(x, g)| T::narrow(k * g.widen() + p * x.widen() + q))
    });
    [dx, tensor(dgamma, x.dtype()), tensor(dbeta, x.dtype())]
}

/// Partial sums kept side by side by the per-channel reductions: independent additions, which
/// the compiler turns into vector instructions, instead of one chain of dependent f64 additions
/// (each waiting for the last; on the stem's and layer1's maps, 64K–1M values per channel).
const LANES: usize = 16;

/// `Σ f(v)` over the values of `rows`, widened to f64, in [`LANES`] partial sums.
fn lane_sum<'a, T: Real + 'a>(rows: impl Iterator<Item = &'a [T]>, f: impl Fn(f64) -> f64) -> f64 {
    let (mut lanes, mut rest) = ([0.0; LANES], 0.0);
    for row in rows {
        let chunks = row.chunks_exact(LANES);
        rest += chunks.remainder().iter().map(|v| f(v.widen())).sum::<f64>();
        for chunk in chunks {
            for (s, v) in lanes.iter_mut().zip(chunk) {
                *s += f(v.widen());
            }
        }
    }
    lanes.iter().sum::<f64>() + rest
}

/// `(Σ g, Σ g·(x − mean))` over the pairs of rows `(g, x)`, in f64, in [`LANES`] partial sums
/// each.
fn lane_sums_of_products<'a, T: Real + 'a>(
    rows: impl Iterator<Item = (&'a [T], &'a [T])>,
    mean: f64,
) -> (f64, f64) {
    let (mut sg, mut sgx) = ([0.0; LANES], [0.0; LANES]);
    let (mut rest_g, mut rest_gx) = (0.0, 0.0);
    for (g, x) in rows {
        let (gc, xc) = (g.chunks_exact(LANES), x.chunks_exact(LANES));
        for (g, x) in gc.remainder().iter().zip(xc.remainder()) {
            rest_g += g.widen();
            rest_gx += g.widen() * (x.widen() - mean);
        }
        for (g, x) in gc.zip(xc) {
            for (((sg, sgx), g), x) in sg.iter_mut().zip(sgx.iter_mut()).zip(g).zip(x) {
                let g = g.widen();
                *sg += g;
                *sgx += g * (x.widen() - mean);
            }
        }
    }
    (
        sg.iter().sum::<f64>() + rest_g,
        sgx.iter().sum::<f64>() + rest_gx,
    )
}

/// A `[C]` tensor's values as f64.
fn values<T: Real>(t: &FlexTensor) -> Vec<f64> {
    let t = t.to_contiguous();
    t.as_slice::<T>()
        .expect("contiguous")
        .iter()
        .map(|v| v.widen())
        .collect()
}

#[cfg(test)]
mod tests;
