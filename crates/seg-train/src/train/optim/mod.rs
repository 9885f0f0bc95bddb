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

mod flex_update;

use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{LearningRate, SimpleOptimizer};
use burn::prelude::*;
use burn::record::Record;
use burn::tensor::backend::AutodiffBackend;

/// Adam settings; the defaults are PyTorch's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// Decay of the first moment (0.9).
    pub beta_1: f64,
    /// Decay of the second moment (0.999).
    pub beta_2: f64,
    /// Added to the root of the second moment (1e-8).
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
pub(crate) struct StepScalars {
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
        let (param, exp_avg, exp_avg_sq) =
            match flex_update::try_step(s, (tensor, grad, exp_avg, exp_avg_sq)) {
                Ok(out) => out,
                Err((p, g, m, v)) => step_tensors(s, p, g, m, v),
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

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

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
}
