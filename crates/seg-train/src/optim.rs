//! Adam with PyTorch's semantics (`torch.optim.Adam`, no weight decay, no AMSGrad): betas
//! (0.9, 0.999), eps 1e-8 added *outside* the square root of the bias-corrected second moment,
//! bias corrections `1 − βᵗ`, all scalars in f64.
//!
//! ```text
//! m ← m + (1 − β₁)(g − m)            (torch: exp_avg.lerp_(grad, 1 − β₁))
//! v ← β₂ v + (1 − β₂) g²
//! p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + eps)
//! ```
//!
//! On the Flex CPU backend each parameter is updated in one fused, multi-threaded pass over
//! `(p, g, m, v)` in place; Burn's own `Adam` makes a dozen separate passes (and uses eps 1e-5 by
//! default). Other backends run the same arithmetic as tensor operations, which their fusion merges.
//! The state (step count and both moments) is a Burn record, saved in `checkpoints/last/optim.mpk`.

use std::any::Any;

use burn::backend::Flex;
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{LearningRate, SimpleOptimizer};
use burn::prelude::*;
use burn::record::Record;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{DType, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

/// Adam settings; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl AdamConfig {
    /// The optimizer for a whole module (burn-train's `Optimizer`).
    pub fn init<B: AutodiffBackend, M: AutodiffModule<B>>(self) -> OptimizerAdaptor<Adam, M, B> {
        OptimizerAdaptor::from(Adam { config: self })
    }
}

/// The per-tensor optimizer (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Adam {
    config: AdamConfig,
}

/// Adam's state of one parameter tensor.
#[derive(Record, Clone)]
pub struct AdamState<B: Backend, const D: usize> {
    /// Steps taken (PyTorch's `state["step"]`).
    pub step: usize,
    /// First moment (`exp_avg`).
    pub exp_avg: Tensor<B, D>,
    /// Second moment (`exp_avg_sq`).
    pub exp_avg_sq: Tensor<B, D>,
}

/// The scalars of one update.
#[derive(Clone, Copy)]
struct StepScalars {
    beta_1: f64,
    beta_2: f64,
    eps: f64,
    step_size: f64,
    bias_correction2_sqrt: f64,
}

impl Adam {
    fn scalars(&self, lr: LearningRate, step: usize) -> StepScalars {
        let AdamConfig {
            beta_1,
            beta_2,
            epsilon,
        } = self.config;
        let t = step as i32;
        StepScalars {
            beta_1,
            beta_2,
            eps: epsilon,
            step_size: lr / (1.0 - beta_1.powi(t)),
            bias_correction2_sqrt: (1.0 - beta_2.powi(t)).sqrt(),
        }
    }
}

/// The update as tensor operations (any backend).
fn step_tensors<B: Backend, const D: usize>(
    s: StepScalars,
    param: Tensor<B, D>,
    grad: Tensor<B, D>,
    exp_avg: Tensor<B, D>,
    exp_avg_sq: Tensor<B, D>,
) -> (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>) {
    let exp_avg = exp_avg.clone() + (grad.clone() - exp_avg).mul_scalar(1.0 - s.beta_1);
    let exp_avg_sq = exp_avg_sq.mul_scalar(s.beta_2) + grad.square().mul_scalar(1.0 - s.beta_2);
    let denom = exp_avg_sq
        .clone()
        .sqrt()
        .div_scalar(s.bias_correction2_sqrt)
        .add_scalar(s.eps);
    let param = param - (exp_avg.clone() / denom).mul_scalar(s.step_size);
    (param, exp_avg, exp_avg_sq)
}

/// Elements per parallel chunk of the fused CPU update.
const CHUNK: usize = 1 << 14;

/// How the gradient's values are laid out in memory.
#[derive(Debug, Clone, Copy)]
enum GradLayout {
    /// In the parameter's order.
    Contiguous,
    /// Logical `[rows, cols, inner…]` stored as `[cols, rows, inner…]` (dims 0 and 1 swapped): what
    /// Burn's convolution weight gradient is. Read in tiles, without a copy.
    Swapped {
        rows: usize,
        cols: usize,
        inner: usize,
    },
}

/// The update's scalars in the parameter's precision, as PyTorch casts them.
#[derive(Clone, Copy)]
struct Coefficients<E> {
    one_minus_beta_1: E,
    beta_2: E,
    one_minus_beta_2: E,
    bias_correction2_sqrt: E,
    eps: E,
    neg_step_size: E,
}

impl<E: AdamFloat> Coefficients<E> {
    fn new(s: &StepScalars) -> Self {
        Self {
            one_minus_beta_1: E::from_f64(1.0 - s.beta_1),
            beta_2: E::from_f64(s.beta_2),
            one_minus_beta_2: E::from_f64(1.0 - s.beta_2),
            bias_correction2_sqrt: E::from_f64(s.bias_correction2_sqrt),
            eps: E::from_f64(s.eps),
            neg_step_size: E::from_f64(-s.step_size),
        }
    }
}

/// One element of the update, operation by operation as PyTorch's single-tensor Adam rounds it
/// (`lerp_`, `mul_`+`addcmul_`, `sqrt`/`div`/`add_`, `addcdiv_`), in the element's precision
/// (so the loop vectorises).
#[inline(always)]
fn update<E: AdamFloat>(c: &Coefficients<E>, p: &mut E, m: &mut E, v: &mut E, g: E) {
    let mi = *m + c.one_minus_beta_1 * (g - *m);
    let vi = *v * c.beta_2 + c.one_minus_beta_2 * g * g;
    let denom = vi.sqrt() / c.bias_correction2_sqrt + c.eps;
    *p = *p + c.neg_step_size * (mi / denom);
    *m = mi;
    *v = vi;
}

/// The fused in-place update over the parameter's buffers, for `f32` or `f64`.
fn fused_update<E: AdamFloat>(
    s: StepScalars,
    param: &mut [E],
    grad: &[E],
    layout: GradLayout,
    m: &mut [E],
    v: &mut [E],
) {
    let s = Coefficients::<E>::new(&s);
    match layout {
        GradLayout::Contiguous => param
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(grad.par_chunks(CHUNK))
            .for_each(|(((p, m), v), g)| {
                for i in 0..p.len() {
                    update(&s, &mut p[i], &mut m[i], &mut v[i], g[i]);
                }
            }),
        GradLayout::Swapped { rows, cols, inner } => {
            // Blocks of rows in parallel; inside, tiles of columns so that the gradient's
            // `[col][row]` runs stay in cache.
            let row_len = cols * inner;
            let block_rows = (CHUNK / row_len.max(1)).clamp(1, 64);
            const TILE_COLS: usize = 32;
            param
                .par_chunks_mut(block_rows * row_len)
                .zip(m.par_chunks_mut(block_rows * row_len))
                .zip(v.par_chunks_mut(block_rows * row_len))
                .enumerate()
                .for_each(|(block, ((p, m), v))| {
                    let first_row = block * block_rows;
                    let n_rows = p.len() / row_len;
                    for c0 in (0..cols).step_by(TILE_COLS) {
                        for r in 0..n_rows {
                            for c in c0..(c0 + TILE_COLS).min(cols) {
                                let at = r * row_len + c * inner;
                                let from = (c * rows + first_row + r) * inner;
                                for k in 0..inner {
                                    update(
                                        &s,
                                        &mut p[at + k],
                                        &mut m[at + k],
                                        &mut v[at + k],
                                        grad[from + k],
                                    );
                                }
                            }
                        }
                    }
                });
        }
    }
}

/// The gradient's layout, if the fused update can read it in place.
fn grad_layout(g: &FlexTensor) -> Option<GradLayout> {
    let layout = g.layout();
    let n = layout.num_elements();
    if layout.contiguous_offsets() == Some((0, n)) {
        return Some(GradLayout::Contiguous);
    }
    let shape = layout.shape();
    let strides = layout.strides();
    if shape.num_dims() < 2 || layout.start_offset() != 0 {
        return None;
    }
    let (rows, cols) = (shape[0], shape[1]);
    // The trailing dims contiguous, then dims 0 and 1 swapped.
    let mut expected = 1isize;
    for d in (2..shape.num_dims()).rev() {
        if strides[d] != expected && shape[d] != 1 {
            return None;
        }
        expected *= shape[d] as isize;
    }
    let inner = expected as usize;
    let swapped = (strides[0] == inner as isize || rows == 1)
        && (strides[1] == (rows * inner) as isize || cols == 1);
    swapped.then_some(GradLayout::Swapped { rows, cols, inner })
}

/// The float element types of the fused update.
trait AdamFloat:
    Copy
    + Send
    + Sync
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn from_f64(v: f64) -> Self;
    fn sqrt(self) -> Self;
}

impl AdamFloat for f32 {
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
}

impl AdamFloat for f64 {
    fn from_f64(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
}

fn flex_primitive<const D: usize>(t: Tensor<Flex, D>) -> FlexTensor {
    t.into_primitive().tensor()
}

fn from_flex<const D: usize>(t: FlexTensor) -> Tensor<Flex, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// The fused Flex update; `Err` (inputs returned untouched) when a buffer's layout or dtype is
/// not one it handles (then the tensor-op path runs).
fn step_flex<const D: usize>(
    s: StepScalars,
    param: Tensor<Flex, D>,
    grad: Tensor<Flex, D>,
    exp_avg: Tensor<Flex, D>,
    exp_avg_sq: Tensor<Flex, D>,
) -> Result<(Tensor<Flex, D>, Tensor<Flex, D>, Tensor<Flex, D>), [Tensor<Flex, D>; 4]> {
    let (mut p, g, mut m, mut v) = (
        flex_primitive(param),
        flex_primitive(grad),
        flex_primitive(exp_avg),
        flex_primitive(exp_avg_sq),
    );
    let dtype = p.dtype();
    let n = p.layout().num_elements();
    let contiguous = |t: &FlexTensor| t.layout().contiguous_offsets() == Some((0, n));
    let layout = grad_layout(&g);
    let usable = matches!(dtype, DType::F32 | DType::F64)
        && [&p, &g, &m, &v].iter().all(|t| t.dtype() == dtype)
        && [&p, &m, &v].iter().all(|t| contiguous(t))
        && layout.is_some();
    let Some(layout) = layout.filter(|_| usable) else {
        return Err([from_flex(p), from_flex(g), from_flex(m), from_flex(v)]);
    };
    // Copy-on-write: a buffer shared elsewhere is copied once, the caller's value is never changed.
    match dtype {
        DType::F32 => fused_update::<f32>(
            s,
            p.storage_mut(),
            &g.storage()[..n],
            layout,
            m.storage_mut(),
            v.storage_mut(),
        ),
        _ => fused_update::<f64>(
            s,
            p.storage_mut(),
            &g.storage()[..n],
            layout,
            m.storage_mut(),
            v.storage_mut(),
        ),
    }
    Ok((from_flex(p), from_flex(m), from_flex(v)))
}

impl<B: Backend> SimpleOptimizer<B> for Adam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let (step, exp_avg, exp_avg_sq) = match state {
            Some(s) => (s.step + 1, s.exp_avg, s.exp_avg_sq),
            None => (1, tensor.zeros_like(), tensor.zeros_like()),
        };
        let s = self.scalars(lr, step);
        // The fused CPU path when the backend is Flex (decided by type, at no cost).
        let mut inputs = Some((tensor, grad, exp_avg, exp_avg_sq));
        let fused = (&mut inputs as &mut dyn Any)
            .downcast_mut::<Option<FlexInputs<D>>>()
            .and_then(|slot| {
                let (p, g, m, v) = slot.take()?;
                match step_flex(s, p, g, m, v) {
                    Ok(out) => Some(out),
                    Err([p, g, m, v]) => {
                        *slot = Some((p, g, m, v));
                        None
                    }
                }
            });
        let (param, exp_avg, exp_avg_sq) = match fused {
            Some(out) => {
                let mut out = Some(out);
                let out = (&mut out as &mut dyn Any)
                    .downcast_mut::<Option<Outputs<B, D>>>()
                    .and_then(Option::take)
                    .expect("B is Flex");
                out
            }
            None => {
                let (p, g, m, v) = inputs.expect("inputs not consumed");
                step_tensors(s, p, g, m, v)
            }
        };
        let state = AdamState {
            step,
            exp_avg,
            exp_avg_sq,
        };
        (param, Some(state))
    }

    fn to_device<const D: usize>(mut state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        state.exp_avg = state.exp_avg.to_device(device);
        state.exp_avg_sq = state.exp_avg_sq.to_device(device);
        state
    }
}

type FlexInputs<const D: usize> = (
    Tensor<Flex, D>,
    Tensor<Flex, D>,
    Tensor<Flex, D>,
    Tensor<Flex, D>,
);
type Outputs<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Two PyTorch Adam steps by hand (lr 0.1): p = 1, g = 0.5 then g = −1.
    #[test]
    fn matches_pytorch_by_hand_on_both_paths() {
        let adam = Adam {
            config: AdamConfig::default(),
        };
        let device = Default::default();
        let p0 = Tensor::<Flex, 1>::from_floats([1.0, 2.0], &device);
        let g1 = Tensor::<Flex, 1>::from_floats([0.5, 0.5], &device);
        let g2 = Tensor::<Flex, 1>::from_floats([-1.0, -1.0], &device);
        // Step 1: m = 0.05, v = 0.00025, m̂ = 0.5, v̂ = 0.25 → p −= 0.1 · 0.5 / (0.5 + 1e-8).
        let p1_expected = 1.0 - 0.1 * 0.5 / (0.5 + 1e-8);
        // Step 2: m = 0.045 − 0.1 = −0.055, v = 0.00024975 + 0.001 = 0.00124975.
        let (m2, v2) = (0.9 * 0.05 + 0.1 * -1.0, 0.999 * 0.00025 + 0.001);
        let step2 =
            0.1 / (1.0 - 0.81) * m2 / ((v2 as f64).sqrt() / (1.0 - 0.998001f64).sqrt() + 1e-8);
        let p2_expected = p1_expected - step2;

        let (p1, state) = adam.step(0.1, p0.clone(), g1.clone(), None);
        let (p2, _) = adam.step(0.1, p1.clone(), g2.clone(), state);
        let got: Vec<f32> = p2.into_data().to_vec().unwrap();
        assert!(
            (got[0] as f64 - p2_expected).abs() < 1e-6,
            "{got:?} vs {p2_expected}"
        );
        assert!(
            (got[1] as f64 - (p2_expected + 1.0)).abs() < 1e-6,
            "{got:?}"
        );

        // The tensor-op path (used by every other backend) gives the same numbers.
        let s1 = adam.scalars(0.1, 1);
        let zeros = p0.zeros_like();
        let (q1, m, v) = step_tensors(s1, p0, g1, zeros.clone(), zeros);
        let (q2, _, _) = step_tensors(adam.scalars(0.1, 2), q1, g2, m, v);
        let q2: Vec<f32> = q2.into_data().to_vec().unwrap();
        assert!((q2[0] as f64 - p2_expected).abs() < 1e-6, "{q2:?}");
    }

    /// A gradient stored with dims 0 and 1 swapped (as Burn's convolution weight gradients are)
    /// gives the same update as its contiguous copy, read in place.
    #[test]
    fn swapped_gradient_layout_is_read_in_place() {
        let adam = Adam {
            config: AdamConfig::default(),
        };
        let device = Default::default();
        let dist = burn::tensor::Distribution::Default;
        let p = Tensor::<Flex, 4>::random([70, 33, 3, 3], dist, &device);
        let g = Tensor::<Flex, 4>::random([33, 70, 3, 3], dist, &device).swap_dims(0, 1);
        let layout = grad_layout(&g.clone().into_primitive().tensor());
        assert!(matches!(
            layout,
            Some(GradLayout::Swapped {
                rows: 70,
                cols: 33,
                inner: 9
            })
        ));
        let g_copy = Tensor::<Flex, 4>::from_data(g.to_data(), &device);
        let (a, _) = adam.step(0.01, p.clone(), g, None);
        let (b, _) = adam.step(0.01, p, g_copy, None);
        let (a, b): (Vec<f32>, Vec<f32>) = (
            a.into_data().to_vec().unwrap(),
            b.into_data().to_vec().unwrap(),
        );
        assert_eq!(a, b);
    }
}
