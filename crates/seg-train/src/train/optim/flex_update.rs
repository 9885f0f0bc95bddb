//! Adam's fused update on the Flex CPU backend: one multi-threaded pass over `(p, g, m, v)` in
//! place, reading a convolution weight's transposed gradient without a copy.

use std::any::Any;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::StepScalars;

/// `(parameter, gradient, first moment, second moment)`.
pub(super) type Inputs<B, const D: usize> =
    (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>, Tensor<B, D>);
/// `(parameter, first moment, second moment)` after the step.
pub(super) type Outputs<B, const D: usize> = (Tensor<B, D>, Tensor<B, D>, Tensor<B, D>);

/// The fused update when `B` is Flex (decided by type, at no cost) and the buffers are ones it
/// handles; `Err` gives the inputs back for the tensor operations.
#[allow(clippy::type_complexity)]
pub(super) fn try_step<B: Backend, const D: usize>(
    s: StepScalars,
    inputs: Inputs<B, D>,
) -> Result<Outputs<B, D>, Inputs<B, D>> {
    let mut inputs = Some(inputs);
    let Some(slot) = (&mut inputs as &mut dyn Any).downcast_mut::<Option<Inputs<Flex, D>>>() else {
        return Err(inputs.expect("inputs not taken"));
    };
    let (p, g, m, v) = slot.take().expect("inputs present");
    match step_flex(s, p, g, m, v) {
        Ok(out) => {
            let out: Box<dyn Any> = Box::new(out);
            Ok(*out.downcast::<Outputs<B, D>>().expect("B is Flex"))
        }
        Err([p, g, m, v]) => {
            let back: Box<dyn Any> = Box::new((p, g, m, v));
            Err(*back.downcast::<Inputs<B, D>>().expect("B is Flex"))
        }
    }
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

#[cfg(test)]
mod tests {
    use burn::optim::SimpleOptimizer;

    use super::super::{Adam, AdamConfig};
    use super::*;

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
