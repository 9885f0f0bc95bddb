//! BatchNorm in training on `Autodiff<Flex>` as one operation with its own backward pass.
//!
//! Written with tensor operations (mean, centre, square, mean, scale, shift), a training-mode
//! BatchNorm makes six passes over the activation forward and about a dozen backward, each a
//! separate Flex kernel and autodiff node. Here the forward pass reads the input twice (mean,
//! then variance) and writes the output once; the backward pass reads the input and the output
//! gradient twice (the two per-channel sums, then the input gradient) — with
//! `x̂ = (x − μ)·σ⁻¹`, `M = N·H·W`:
//!
//! * `∂β = Σ g`, `∂γ = Σ g·x̂`;
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

type Ad = Autodiff<Flex>;

/// The inputs of a training BatchNorm: activation `[N, C, H, W]`, γ and β (`[C]`).
pub(crate) type Inputs<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// The output of a training BatchNorm and the batch statistics (mean and biased variance, `[C]`,
/// outside the autodiff graph).
pub(crate) type Outputs<B> = (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>);

/// `(γ·(x − μ)/√(σ² + ε) + β, μ, σ²)` with the batch statistics, through this module when `B` is
/// `Autodiff<Flex>` and the element type is f32 or f64; `Err` gives the inputs back untouched
/// otherwise.
pub(crate) fn try_train<B: Backend>(
    (x, gamma, beta): Inputs<B>,
    epsilon: f64,
) -> Result<Outputs<B>, Inputs<B>> {
    let supported = matches!(x.dtype(), DType::F32 | DType::F64)
        && gamma.dtype() == x.dtype()
        && beta.dtype() == x.dtype();
    let mut inputs = Some((x, gamma, beta));
    let slot = (&mut inputs as &mut dyn Any).downcast_mut::<Option<Inputs<Ad>>>();
    let Some(slot) = slot.filter(|_| supported) else {
        return Err(inputs.expect("inputs not taken"));
    };
    let (x, gamma, beta) = slot.take().expect("inputs present");
    let primitive = |t: Tensor<Ad, 1>| t.into_primitive().tensor();
    let (y, mean, var) = train(
        x.into_primitive().tensor(),
        primitive(gamma),
        primitive(beta),
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

/// The autodiff operation: output, batch mean and biased batch variance.
fn train(
    x: FloatTensor<Ad>,
    gamma: FloatTensor<Ad>,
    beta: FloatTensor<Ad>,
    epsilon: f64,
) -> (FloatTensor<Ad>, FlexTensor, FlexTensor) {
    #[derive(Debug)]
    struct BatchNormTrain;

    /// The input's node, γ, and the per-channel mean and 1/√(σ² + ε).
    type State = (NodeId, FlexTensor, Vec<f64>, Vec<f64>);

    impl Backward<Flex, 3> for BatchNormTrain {
        type State = State;

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_gamma, node_beta] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, gamma, mean, inv_std) = ops.state;
            let x = ckpt.retrieve_node_output::<FlexTensor>(x);
            let [dx, dgamma, dbeta] = backward(&x, &grad, &gamma, &mean, &inv_std);
            for (node, g) in [(node_x, dx), (node_gamma, dgamma), (node_beta, dbeta)] {
                if let Some(node) = node {
                    grads.register::<Flex>(node, g);
                }
            }
        }
    }

    let (y, mean, var) = forward(&x.primitive, &gamma.primitive, &beta.primitive, epsilon);
    let dtype = x.primitive.dtype();
    let inv_std: Vec<f64> = var.iter().map(|v| 1.0 / (v + epsilon).sqrt()).collect();
    let stats = (tensor(mean.clone(), dtype), tensor(var.clone(), dtype));
    let y = match BatchNormTrain
        .prepare::<NoCheckpointing>([x.node.clone(), gamma.node.clone(), beta.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), gamma.primitive.clone(), mean, inv_std);
            prep.finish(state, y)
        }
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    (y, stats.0, stats.1)
}

/// A `[C]` tensor of `dtype` from f64 values.
fn tensor(values: Vec<f64>, dtype: DType) -> FlexTensor {
    let c = values.len();
    FlexTensor::from_data(TensorData::new(values, [c]).convert_dtype(dtype))
}

/// The element types handled here.
trait Real: burn::tensor::Element + bytemuck::Pod + Send + Sync {
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

/// `(y, mean, biased variance)`.
fn forward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    beta: &FlexTensor,
    epsilon: f64,
) -> (FlexTensor, Vec<f64>, Vec<f64>) {
    fn run<T: Real>(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
        epsilon: f64,
    ) -> (FlexTensor, Vec<f64>, Vec<f64>) {
        let [n, c, h, w] = x.layout().shape().dims::<4>();
        let hw = h * w;
        let x = x.to_contiguous();
        let xs: &[T] = x.as_slice().expect("contiguous");
        let (gamma, beta) = (values::<T>(gamma), values::<T>(beta));
        let count = (n * hw) as f64;
        let (mean, var): (Vec<f64>, Vec<f64>) = (0..c)
            .into_par_iter()
            .map(|ch| {
                let rows = || (0..n).map(|i| &xs[(i * c + ch) * hw..][..hw]);
                let mean = rows().flatten().map(|v| v.widen()).sum::<f64>() / count;
                let var = rows()
                    .flatten()
                    .map(|v| (v.widen() - mean).powi(2))
                    .sum::<f64>()
                    / count;
                (mean, var)
            })
            .unzip();
        // y = x·a + b with a = γ/√(σ² + ε), b = β − μ·a.
        let a: Vec<f64> = (0..c)
            .map(|ch| gamma[ch] / (var[ch] + epsilon).sqrt())
            .collect();
        let b: Vec<f64> = (0..c).map(|ch| beta[ch] - mean[ch] * a[ch]).collect();
        let mut y = FlexTensor::empty(x.layout().shape().clone(), x.dtype());
        y.storage_mut::<T>()
            .par_chunks_exact_mut(hw)
            .zip(xs.par_chunks_exact(hw))
            .enumerate()
            .for_each(|(row, (dst, src))| {
                let (a, b) = (a[row % c], b[row % c]);
                for (d, s) in dst.iter_mut().zip(src) {
                    *d = T::narrow(s.widen() * a + b);
                }
            });
        (y, mean, var)
    }
    by_dtype!(x.dtype(), run(x, gamma, beta, epsilon))
}

/// `[∂x, ∂γ, ∂β]` from the output gradient.
fn backward(
    x: &FlexTensor,
    grad: &FlexTensor,
    gamma: &FlexTensor,
    mean: &[f64],
    inv_std: &[f64],
) -> [FlexTensor; 3] {
    fn run<T: Real>(
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
                (0..n)
                    .flat_map(|i| {
                        let at = (i * c + ch) * hw;
                        xs[at..][..hw].iter().zip(&gs[at..][..hw])
                    })
                    .fold((0.0, 0.0), |(sg, sgx), (x, g)| {
                        let g = g.widen();
                        (sg + g, sgx + g * (x.widen() - mean[ch]))
                    })
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
        let mut dx = FlexTensor::empty(x.layout().shape().clone(), x.dtype());
        dx.storage_mut::<T>()
            .par_chunks_exact_mut(hw)
            .zip(xs.par_chunks_exact(hw).zip(gs.par_chunks_exact(hw)))
            .enumerate()
            .for_each(|(row, (dst, (xr, gr)))| {
                let [k, p, q] = coefficients[row % c];
                for ((d, x), g) in dst.iter_mut().zip(xr).zip(gr) {
                    *d = T::narrow(k * g.widen() + p * x.widen() + q);
                }
            });
        [dx, tensor(dgamma, x.dtype()), tensor(dbeta, x.dtype())]
    }
    by_dtype!(x.dtype(), run(x, grad, gamma, mean, inv_std))
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
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::batch_norm::BatchNorm2dConfig;

    /// Largest difference relative to `max(1, max |expected|)`.
    fn relative_error<const D: usize>(got: Tensor<Flex, D>, expected: Tensor<Flex, D>) -> f64 {
        let scale = expected
            .clone()
            .abs()
            .max()
            .into_scalar()
            .elem::<f64>()
            .max(1.0);
        (got - expected).abs().max().into_scalar().elem::<f64>() / scale
    }

    /// The operation's output, batch statistics and gradients (input, γ, β of `Σ y·r`) equal the
    /// tensor-operation BatchNorm's (`BatchNorm2d::normalise_batch`, differentiated by Burn's
    /// autodiff), in f64 to 1e-12 and f32 to 1e-5, on shapes with one sample, with 1×1 maps,
    /// and with channel counts that are not a multiple of the thread count; the activation is
    /// offset and scaled so that a one-pass variance would lose digits.
    #[test]
    fn equals_the_tensor_operation_batch_norm() {
        let device = Default::default();
        for (shape, dtype, tolerance) in [
            ([3, 5, 4, 3], DType::F64, 1e-12),
            ([1, 7, 6, 5], DType::F64, 1e-12),
            ([4, 3, 1, 1], DType::F64, 1e-12),
            ([2, 6, 9, 8], DType::F32, 1e-5),
            ([1, 3, 3, 2], DType::F32, 1e-5),
        ] {
            let c = shape[1];
            let random = |shape: [usize; 4]| {
                Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
            };
            let x = random(shape).mul_scalar(3.0).add_scalar(40.0).cast(dtype);
            let r = random(shape).cast(dtype);
            let gamma =
                Tensor::<Flex, 1>::random([c], Distribution::Normal(1.0, 0.5), &device).cast(dtype);
            let beta =
                Tensor::<Flex, 1>::random([c], Distribution::Normal(0.0, 1.0), &device).cast(dtype);
            let bn = BatchNorm2dConfig::new(c).init::<Ad>(&device);
            let run = |fused: bool| {
                let x = Tensor::<Ad, 4>::from_inner(x.clone()).require_grad();
                let gamma = Tensor::<Ad, 1>::from_inner(gamma.clone()).require_grad();
                let beta = Tensor::<Ad, 1>::from_inner(beta.clone()).require_grad();
                let inputs = (x.clone(), gamma.clone(), beta.clone());
                let (y, mean, var) = if fused {
                    match try_train(inputs, bn.epsilon) {
                        Ok(outputs) => outputs,
                        Err(_) => panic!("Autodiff<Flex> takes the fused BatchNorm"),
                    }
                } else {
                    bn.normalise_batch(inputs)
                };
                let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();
                let x_grad = x.grad(&grads).expect("input gradient");
                let gamma_grad = gamma.grad(&grads).expect("γ gradient");
                let beta_grad = beta.grad(&grads).expect("β gradient");
                (
                    y.inner(),
                    [mean.inner(), var.inner(), gamma_grad, beta_grad],
                    x_grad,
                )
            };
            let (y, stats, x_grad) = run(true);
            let (y_ref, stats_ref, x_grad_ref) = run(false);
            assert_eq!(y.dtype(), dtype);
            let error = relative_error(y, y_ref);
            assert!(error <= tolerance, "{shape:?} {dtype:?} output: {error:e}");
            let error = relative_error(x_grad, x_grad_ref);
            assert!(
                error <= tolerance,
                "{shape:?} {dtype:?} input gradient: {error:e}"
            );
            for (name, (got, expected)) in ["mean", "variance", "∂γ", "∂β"]
                .iter()
                .zip(stats.into_iter().zip(stats_ref))
            {
                let error = relative_error(got, expected);
                assert!(error <= tolerance, "{shape:?} {dtype:?} {name}: {error:e}");
            }
        }
    }

    /// Other backends get their inputs back.
    #[test]
    fn other_backends_are_left_to_tensor_operations() {
        let device = Default::default();
        let x = Tensor::<Flex, 4>::zeros([2, 3, 2, 2], &device);
        let gamma = Tensor::<Flex, 1>::ones([3], &device);
        assert!(try_train((x, gamma.clone(), gamma), 1e-5).is_err());
    }
}
