//! `BatchNorm2d`: PyTorch's `nn.BatchNorm2d` semantics.
//!
//! * Training (autodiff backends): normalises with the batch mean and the *biased* batch variance,
//!   and updates the running statistics with momentum 0.1 and the *unbiased* variance
//!   (`n/(n−1)` times the biased one, `n = N·H·W`), incrementing `num_batches_tracked` — exactly
//!   what PyTorch does. (Burn's own `BatchNorm` updates `running_var` with the biased variance.)
//! * Inference: `y = x · scale + shift` with `scale = γ/√(running_var + ε)` and
//!   `shift = β − running_mean · scale` computed once on the `C` channel values.
//! * [`BatchNorm2d::fold_into`] folds the inference transform into the preceding convolution, after
//!   which the BatchNorm is an identity (see [`crate::DeepLabV3::fold_batch_norms`]).
//!
//! The input is viewed as `[N, C, H·W]`, per-channel values as `[N, C, 1]`
//! (`kernels::per_channel`); training runs as one operation where a backend has a kernel for it.

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use crate::kernels::per_channel;

/// [`BatchNorm2d`] configuration (PyTorch's defaults).
#[derive(Config, Debug)]
pub struct BatchNorm2dConfig {
    /// Number of channels `C`.
    pub num_features: usize,
    #[config(default = 1e-5)]
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
    /// Weight of the current batch in the running statistics.
    #[config(default = 0.1)]
    pub momentum: f64,
}

impl BatchNorm2dConfig {
    /// γ = 1, β = 0, running mean 0, running variance 1, no batches tracked.
    pub fn init<B: Backend>(&self, device: &B::Device) -> BatchNorm2d<B> {
        let c = self.num_features;
        BatchNorm2d {
            gamma: Param::from_tensor(Tensor::ones([c], device)),
            beta: Param::from_tensor(Tensor::zeros([c], device)),
            running_mean: RunningState::new(Tensor::zeros([c], device)),
            running_var: RunningState::new(Tensor::ones([c], device)),
            num_batches_tracked: RunningState::new(Tensor::zeros([1], device)),
            momentum: self.momentum,
            epsilon: self.epsilon,
            folded: false,
        }
    }
}

/// Batch normalisation over `[N, C, H, W]` with PyTorch's semantics (see the module docs).
///
/// Field names are Burn's `BatchNorm` ones (`gamma`/`beta` for torchvision's `weight`/`bias`), so
/// the weight mapping and Burn records stay as they were.
#[derive(Module, Debug)]
pub struct BatchNorm2d<B: Backend> {
    /// γ (torchvision's `weight`).
    pub gamma: Param<Tensor<B, 1>>,
    /// β (torchvision's `bias`).
    pub beta: Param<Tensor<B, 1>>,
    /// Running mean (inference statistics).
    pub running_mean: RunningState<Tensor<B, 1>>,
    /// Running (unbiased) variance (inference statistics).
    pub running_var: RunningState<Tensor<B, 1>>,
    /// Training forward passes so far (`[1]`, a float holding an integer).
    pub num_batches_tracked: RunningState<Tensor<B, 1>>,
    /// Weight of the current batch in the running statistics.
    pub momentum: f64,
    /// Added to the variance for numerical stability.
    pub epsilon: f64,
    /// Set by [`BatchNorm2d::fold_into`]: the transform lives in the convolution, `forward` is
    /// the identity. Not part of records (a loaded model is never folded).
    pub folded: bool,
}

/// `y [+ residual]`, then ReLU if `relu`.
fn activate<B: Backend>(
    y: Tensor<B, 4>,
    residual: Option<Tensor<B, 4>>,
    relu: bool,
) -> Tensor<B, 4> {
    let y = match residual {
        Some(residual) => y + residual,
        None => y,
    };
    if relu {
        burn::tensor::activation::relu(y)
    } else {
        y
    }
}

impl<B: Backend> BatchNorm2d<B> {
    /// Normalises `[N, C, H, W]`: batch statistics on autodiff backends (training), running
    /// statistics otherwise.
    ///
    /// # Panics
    /// In training, when a channel has a single value (`N·H·W = 1`), as PyTorch does: the
    /// variance of one value is undefined.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        if self.folded {
            x
        } else if B::ad_enabled(&x.device()) {
            self.forward_train(x, None, false)
        } else {
            self.forward_inference(x)
        }
    }

    /// `relu(bn(x) [+ residual])` — torchvision's `relu(bn(conv(x)))` and the bottleneck's
    /// `relu(bn3(conv3(out)) + identity)` — in training as one operation where the backend has a
    /// kernel for it (see `kernels`), otherwise as the separate operations.
    ///
    /// # Panics
    /// As [`BatchNorm2d::forward`].
    pub fn forward_relu(&self, x: Tensor<B, 4>, residual: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
        if self.folded {
            activate(x, residual, true)
        } else if B::ad_enabled(&x.device()) {
            self.forward_train(x, residual, true)
        } else {
            activate(self.forward_inference(x), residual, true)
        }
    }

    /// The inference transform as per-channel `(scale, shift)`, each `[C]`.
    pub fn scale_shift(&self) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let scale = self.gamma.val() / self.running_var.value().add_scalar(self.epsilon).sqrt();
        let shift = self.beta.val() - self.running_mean.value() * scale.clone();
        (scale, shift)
    }

    fn forward_inference(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let (scale, shift) = self.scale_shift();
        let y = x.reshape([n, c, h * w]) * per_channel(scale, n) + per_channel(shift, n);
        y.reshape([n, c, h, w])
    }

    /// Batch statistics, running statistics updated; then the residual and the ReLU if asked.
    fn forward_train(
        &self,
        x: Tensor<B, 4>,
        residual: Option<Tensor<B, 4>>,
        relu: bool,
    ) -> Tensor<B, 4> {
        let [n, c, h, w] = x.dims();
        let count = n * h * w;
        assert!(
            count > 1,
            "BatchNorm2d in training needs more than one value per channel, got an input of \
             shape [{n}, {c}, {h}, {w}]: use a batch size of at least 2"
        );
        let inputs = (x, self.gamma.val(), self.beta.val(), residual);
        let inputs = match crate::kernels::batch_norm_train(inputs, relu, self.epsilon) {
            Ok(outputs) => return self.update_running_stats(outputs, count),
            Err(inputs) => inputs,
        };
        let (x, gamma, beta, residual) = inputs;
        let y = self.update_running_stats(self.normalise_batch((x, gamma, beta)), count);
        activate(y, residual, relu)
    }

    /// `(γ·(x − μ)/√(σ² + ε) + β, μ, σ²)` with the batch mean and biased variance, written with
    /// tensor operations.
    pub(crate) fn normalise_batch(
        &self,
        (x, gamma, beta): (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>),
    ) -> (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>) {
        let [n, c, h, w] = x.dims();
        let count = n * h * w;
        let x = x.reshape([n, c, h * w]);
        // Sum over H·W (the contiguous axis), then over N. (`mul_scalar` by 1/n, not `div_scalar`:
        // Burn 0.21's autodiff differentiates `div_scalar` with an f32 reciprocal.)
        let channel_mean = |t: Tensor<B, 3>| -> Tensor<B, 1> {
            t.sum_dim(2)
                .sum_dim(0)
                .reshape([c])
                .mul_scalar(1.0 / count as f64)
        };
        let mean = channel_mean(x.clone());
        let centred = x - per_channel(mean.clone(), n);
        let var = channel_mean(centred.clone().square());
        let scale = gamma / var.clone().add_scalar(self.epsilon).sqrt();
        let y = centred * per_channel(scale, n) + per_channel(beta, n);
        (y.reshape([n, c, h, w]), mean, var)
    }

    /// Running statistics updated from a batch's `(y, μ, σ²)` (momentum `m`, unbiased variance
    /// `count/(count − 1)·σ²`), `num_batches_tracked` incremented; returns `y`.
    fn update_running_stats(
        &self,
        (y, mean, var): (Tensor<B, 4>, Tensor<B, 1>, Tensor<B, 1>),
        count: usize,
    ) -> Tensor<B, 4> {
        let m = self.momentum;
        let running_mean =
            self.running_mean.value_sync().mul_scalar(1.0 - m) + mean.detach().mul_scalar(m);
        let unbiased = var.detach().mul_scalar(count as f64 / (count - 1) as f64);
        let running_var =
            self.running_var.value_sync().mul_scalar(1.0 - m) + unbiased.mul_scalar(m);
        self.running_mean.update(running_mean);
        self.running_var.update(running_var);
        self.num_batches_tracked
            .update(self.num_batches_tracked.value_sync().add_scalar(1.0));
        y
    }

    /// Folds the inference transform into `conv` (weights scaled per output channel, bias set to
    /// the shift, plus the scaled old bias) and marks this BatchNorm as an identity. The pair then
    /// computes in one convolution what `bn(conv(x))` computed in inference. A BatchNorm that is
    /// already folded returns the pair unchanged: folding twice would apply the transform twice.
    pub fn fold_into(mut self, mut conv: Conv2d<B>) -> (Conv2d<B>, Self) {
        if self.folded {
            return (conv, self);
        }
        let (scale, shift) = self.scale_shift();
        let c = scale.dims()[0];
        let weight = conv.weight.val() * scale.clone().reshape([c, 1, 1, 1]);
        let bias = match &conv.bias {
            Some(b) => b.val() * scale + shift,
            None => shift,
        };
        conv.weight = Param::from_tensor(weight);
        conv.bias = Some(Param::from_tensor(bias));
        self.folded = true;
        (conv, self)
    }
}
