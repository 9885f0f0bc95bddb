//! Max pooling on the Flex CPU backend (ResNet's stem: 3×3, stride 2, padding 1), forward and
//! backward, one plane per task.
//!
//! Burn-flex 0.21's `max_pool2d` took 80 ms for the stem's pooling of a `[2, 64, 256, 256]` map
//! (2 cores), more than the 7×7 convolution before it. Here each output is the maximum over its
//! window's in-bounds inputs (padding never wins, as in PyTorch, and a NaN in the window is the
//! result), the backward pass adds each output gradient to the input position that won (the
//! first of equal maxima, in row-major window order).

use std::any::Any;
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{DType, Element, Shape, Tensor, TensorPrimitive};
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::flex_alloc::zeros;

type Ad = Autodiff<Flex>;

/// A max pooling's window: kernel, stride, padding (the same on both sides) and dilation, per
/// axis (height, width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Pool {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Pool {
    /// Output height and width for an `h × w` input (floor mode), `None` when the window does
    /// not fit or could lie wholly in the padding.
    fn out(&self, [h, w]: [usize; 2]) -> Option<[usize; 2]> {
        let axis = |i: usize, size: usize| {
            let span = (self.kernel[i] - 1) * self.dilation[i] + 1;
            if self.kernel[i] == 0 || self.stride[i] == 0 || 2 * self.padding[i] >= span + 1 {
                return None;
            }
            (size + 2 * self.padding[i])
                .checked_sub(span)
                .map(|s| s / self.stride[i] + 1)
        };
        Some([axis(0, h)?, axis(1, w)?])
    }

    /// For each output index along axis `i` (of an input of `size`), the first input index its
    /// window reads inside the input and how many it reads there (every `dilation`-th).
    fn reads(&self, i: usize, outputs: usize, size: usize) -> Vec<(usize, usize)> {
        let (s, p, d) = (self.stride[i], self.padding[i], self.dilation[i]);
        (0..outputs)
            .map(|o| {
                let inside = (0..self.kernel[i])
                    .filter(|k| (o * s + k * d).checked_sub(p).is_some_and(|at| at < size));
                let (first, count) = inside.fold((None, 0), |(first, count), k| {
                    (first.or(Some(k)), count + 1)
                });
                let first = first.expect("a window reads at least one input");
                (o * s + first * d - p, count)
            })
            .collect()
    }
}

/// `max_pool2d(x)` through this module when `B` is `Flex` or `Autodiff<Flex>` and `x` is f32 or
/// f64; `Err` gives `x` back for any other backend or element type.
pub(crate) fn try_max_pool2d<B: Backend>(
    x: Tensor<B, 4>,
    pool: Pool,
) -> Result<Tensor<B, 4>, Tensor<B, 4>> {
    let mut input = Some(x);
    let any = &mut input as &mut dyn Any;
    let y: Box<dyn Any> = if let Some(slot) = any.downcast_mut::<Option<Tensor<Ad, 4>>>() {
        let x = slot.take().expect("input present");
        match autodiff(x.into_primitive().tensor(), pool) {
            Ok(y) => Box::new(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(y))),
            Err(x) => {
                *slot = Some(Tensor::from_primitive(TensorPrimitive::Float(x)));
                return Err(input.expect("input given back"));
            }
        }
    } else if let Some(slot) = any.downcast_mut::<Option<Tensor<Flex, 4>>>() {
        let x = slot.take().expect("input present");
        let primitive = x.clone().into_primitive().tensor();
        match pooled(&primitive, pool) {
            Some(y) => Box::new(Tensor::<Flex, 4>::from_primitive(TensorPrimitive::Float(y))),
            None => {
                *slot = Some(x);
                return Err(input.expect("input given back"));
            }
        }
    } else {
        return Err(input.expect("input not taken"));
    };
    Ok(*y
        .downcast::<Tensor<B, 4>>()
        .expect("B is Autodiff<Flex> or Flex"))
}

/// The input position (within its plane) each output took its value from, per output, in
/// `[N, C, Hₒ, Wₒ]` order.
type Winners = Arc<Vec<u32>>;

/// The pooled tensor and where each output came from; `None` for other element types, inputs
/// that are not 4-D, or windows that do not fit.
fn forward(x: &FlexTensor, pool: Pool) -> Option<(FlexTensor, Winners)> {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let [ho, wo] = pool.out([h, w])?;
    if h * w > u32::MAX as usize {
        return None;
    }
    let x = x.to_contiguous();
    let mut out = zeros(Shape::new([n, c, ho, wo]), x.dtype());
    let mut winners = vec![0u32; n * c * ho * wo];
    fn run<T: Element + bytemuck::Pod + PartialOrd>(
        x: &FlexTensor,
        out: &mut FlexTensor,
        winners: &mut [u32],
        pool: Pool,
        [h, w, ho, wo]: [usize; 4],
    ) -> Option<()> {
        let x = x.as_slice::<T>()?;
        let (rows, cols) = (pool.reads(0, ho, h), pool.reads(1, wo, w));
        let [dh, dw] = pool.dilation;
        out.storage_mut::<T>()
            .par_chunks_exact_mut(ho * wo)
            .zip(winners.par_chunks_exact_mut(ho * wo))
            .zip(x.par_chunks_exact(h * w))
            .for_each(|((dst, won), plane)| {
                for (i, &(r0, rn)) in rows.iter().enumerate() {
                    for (j, &(c0, cn)) in cols.iter().enumerate() {
                        let mut at = r0 * w + c0;
                        let mut best = plane[at];
                        for a in 0..rn {
                            let row = (r0 + a * dh) * w;
                            for b in 0..cn {
                                let k = row + c0 + b * dw;
                                let v = plane[k];
                                // A NaN wins and stays (nothing compares above it), as in
                                // PyTorch; among equal maxima the first.
                                #[allow(clippy::eq_op)]
                                let nan = v != v;
                                if v > best || (nan && k != at) {
                                    (best, at) = (v, k);
                                }
                            }
                        }
                        dst[i * wo + j] = best;
                        won[i * wo + j] = at as u32;
                    }
                }
            });
        Some(())
    }
    let dims = [h, w, ho, wo];
    match x.dtype() {
        DType::F32 => run::<f32>(&x, &mut out, &mut winners, pool, dims)?,
        DType::F64 => run::<f64>(&x, &mut out, &mut winners, pool, dims)?,
        _ => return None,
    }
    Some((out, Arc::new(winners)))
}

/// `v` if it wins over `best` in a window: above it, or a NaN (which then stays: nothing
/// compares above it).
#[inline]
fn wins<T: PartialOrd + Copy>(best: T, v: T) -> T {
    #[allow(clippy::eq_op)]
    let nan = v != v;
    if v > best || nan {
        v
    } else {
        best
    }
}

/// The pooled tensor alone, for inference (no record of where each output came from): per
/// output row, the maximum over its window's input rows, element by element along whole rows
/// (vectorised), then over each window's columns of that row. The same values as [`forward`]'s
/// (a NaN in the window is the result), up to the sign of a zero maximum among equal ones.
/// Burn-flex's took 80 ms and [`forward`] 36 ms for the stem's pooling of a
/// `[2, 64, 256, 256]` map (2-core Intel Xeon), PyTorch 29 ms.
fn pooled(x: &FlexTensor, pool: Pool) -> Option<FlexTensor> {
    let [n, c, h, w] = x.layout().shape().dims::<4>();
    let [ho, wo] = pool.out([h, w])?;
    let x = x.to_contiguous();
    let mut out = zeros(Shape::new([n, c, ho, wo]), x.dtype());
    fn run<T: Element + bytemuck::Pod + PartialOrd>(
        x: &FlexTensor,
        out: &mut FlexTensor,
        pool: Pool,
        [h, w, ho, wo]: [usize; 4],
    ) -> Option<()> {
        let x = x.as_slice::<T>()?;
        let (rows, cols) = (pool.reads(0, ho, h), pool.reads(1, wo, w));
        let [dh, dw] = pool.dilation;
        out.storage_mut::<T>()
            .par_chunks_exact_mut(ho * wo)
            .zip(x.par_chunks_exact(h * w))
            .for_each_init(Vec::new, |column_max, (dst, plane)| {
                for (dst_row, &(r0, rn)) in dst.chunks_exact_mut(wo).zip(&rows) {
                    column_max.clear();
                    column_max.extend_from_slice(&plane[r0 * w..][..w]);
                    for a in 1..rn {
                        let row = &plane[(r0 + a * dh) * w..][..w];
                        for (m, &v) in column_max.iter_mut().zip(row) {
                            *m = wins(*m, v);
                        }
                    }
                    for (d, &(c0, cn)) in dst_row.iter_mut().zip(&cols) {
                        *d = (1..cn).fold(column_max[c0], |best, b| {
                            wins(best, column_max[c0 + b * dw])
                        });
                    }
                }
            });
        Some(())
    }
    let dims = [h, w, ho, wo];
    match x.dtype() {
        DType::F32 => run::<f32>(&x, &mut out, pool, dims)?,
        DType::F64 => run::<f64>(&x, &mut out, pool, dims)?,
        _ => return None,
    }
    Some(out)
}

/// The input gradient (`[N, C, H, W]`): each output gradient added to the input position its
/// output came from.
fn backward(grad: &FlexTensor, winners: &[u32], x_shape: [usize; 4]) -> FlexTensor {
    let [n, c, h, w] = x_shape;
    let grad = grad.to_contiguous();
    let planes = n * c;
    let out_plane = winners.len() / planes.max(1);
    let mut dx = zeros(Shape::new(x_shape), grad.dtype());
    fn run<T: Element + bytemuck::Pod + std::ops::Add<Output = T>>(
        grad: &FlexTensor,
        dx: &mut FlexTensor,
        winners: &[u32],
        [hw, out_plane]: [usize; 2],
    ) {
        let grad = grad.as_slice::<T>().expect("gradient of the pooled type");
        dx.storage_mut::<T>()
            .par_chunks_exact_mut(hw)
            .zip(grad.par_chunks_exact(out_plane))
            .zip(winners.par_chunks_exact(out_plane))
            .for_each(|((dst, g), won)| {
                for (&at, &v) in won.iter().zip(g) {
                    let at = at as usize;
                    dst[at] = dst[at] + v;
                }
            });
    }
    let sizes = [h * w, out_plane];
    match grad.dtype() {
        DType::F64 => run::<f64>(&grad, &mut dx, winners, sizes),
        _ => run::<f32>(&grad, &mut dx, winners, sizes),
    }
    dx
}

/// The autodiff max pooling: the forward pass above, its backward pass registered for the
/// input; `Err` gives the input back when it is not handled here.
fn autodiff(x: FloatTensor<Ad>, pool: Pool) -> Result<FloatTensor<Ad>, FloatTensor<Ad>> {
    #[derive(Debug)]
    struct MaxPool2dBackward;

    impl Backward<Flex, 1> for MaxPool2dBackward {
        type State = (Winners, [usize; 4]);

        fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
            let [node] = ops.parents;
            let grad = grads.consume::<Flex>(&ops.node);
            let (winners, x_shape) = ops.state;
            if let Some(node) = node {
                grads.register::<Flex>(node.id, backward(&grad, &winners, x_shape));
            }
        }
    }

    let Some((y, winners)) = forward(&x.primitive, pool) else {
        return Err(x);
    };
    let x_shape = x.primitive.layout().shape().dims::<4>();
    Ok(
        match MaxPool2dBackward
            .prepare::<NoCheckpointing>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((winners, x_shape), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    )
}

#[cfg(test)]
mod tests {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::TensorData;

    use super::*;

    /// Deterministic values in [-1, 1), with repeats (ties) and, optionally, a NaN.
    fn values(shape: [usize; 4], seed: u64, nan: bool) -> TensorData {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let n = shape.iter().product();
        let mut v: Vec<f64> = (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // 16 levels: plenty of ties inside 3×3 windows.
                ((state >> 60) as f64 - 8.0) / 8.0
            })
            .collect();
        if nan {
            v[n / 2] = f64::NAN;
        }
        TensorData::new(v, shape.to_vec())
    }

    /// (input shape, kernel, stride, padding, dilation)
    type Case = ([usize; 4], [usize; 2], [usize; 2], [usize; 2], [usize; 2]);

    /// ResNet's stem pooling on even and odd sizes, a batch of one, non-square and dilated
    /// windows, no padding.
    const CASES: [Case; 6] = [
        ([2, 3, 8, 8], [3, 3], [2, 2], [1, 1], [1, 1]),
        ([1, 4, 9, 7], [3, 3], [2, 2], [1, 1], [1, 1]),
        ([3, 2, 10, 11], [2, 3], [1, 2], [1, 1], [1, 1]),
        ([2, 2, 9, 9], [3, 3], [1, 1], [2, 2], [2, 2]),
        ([2, 3, 7, 6], [2, 2], [2, 2], [0, 0], [1, 1]),
        ([1, 2, 5, 5], [5, 3], [3, 1], [2, 0], [1, 1]),
    ];

    /// Forward values and input gradients (of `Σ y·r`) equal Burn's own max pooling's on every
    /// case, in f64 and f32, ties included (both take the first maximum in row-major window
    /// order).
    #[test]
    fn equals_burns_max_pool() {
        for (i, &(xs, kernel, stride, padding, dilation)) in CASES.iter().enumerate() {
            let pool = Pool {
                kernel,
                stride,
                padding,
                dilation,
            };
            let x = values(xs, i as u64, false);
            for dtype in [DType::F64, DType::F32] {
                let device = Default::default();
                let run = |ours: bool| {
                    let x = Tensor::<Ad, 4>::from_data(x.clone(), (&device, dtype)).require_grad();
                    let y = if ours {
                        try_max_pool2d(x.clone(), pool).expect("Autodiff<Flex> is handled")
                    } else {
                        max_pool2d(x.clone(), kernel, stride, padding, dilation, false)
                    };
                    let r = values(y.dims(), 100 + i as u64, false);
                    let g = (y.clone() * Tensor::from_data(r, (&device, dtype)))
                        .sum()
                        .backward();
                    let dx = x.grad(&g).expect("input gradient");
                    (y.into_data(), dx.into_data())
                };
                let (got, expected) = (run(true), run(false));
                assert_eq!(got.0, expected.0, "case {i} {dtype:?}: output");
                assert_eq!(got.1, expected.1, "case {i} {dtype:?}: input gradient");
                let inference = try_max_pool2d(
                    Tensor::<Flex, 4>::from_data(x.clone(), (&device, dtype)),
                    pool,
                )
                .expect("Flex is handled");
                assert_eq!(
                    inference.into_data(),
                    got.0,
                    "case {i} {dtype:?}: inference"
                );
            }
        }
    }

    /// A NaN in a window is that window's maximum (PyTorch's rule), wherever it sits — at a
    /// corner, on an edge, inside — in inference and in training.
    #[test]
    fn nan_is_the_maximum_of_its_windows() {
        let pool = Pool {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
        };
        let device = Default::default();
        for (r, c) in [(3, 3), (0, 0), (0, 4), (6, 5), (2, 6)] {
            let mut x = values([1, 1, 7, 7], 3, false).to_vec::<f64>().expect("f64");
            x[r * 7 + c] = f64::NAN;
            let x = TensorData::new(x, [1, 1, 7, 7]);
            let inference = try_max_pool2d(
                Tensor::<Flex, 4>::from_data(x.clone(), (&device, DType::F64)),
                pool,
            )
            .expect("handled");
            let training =
                try_max_pool2d(Tensor::<Ad, 4>::from_data(x, (&device, DType::F64)), pool)
                    .expect("handled");
            for y in [inference.into_data(), training.inner().into_data()] {
                let y = y.to_vec::<f64>().expect("f64");
                for (k, v) in y.iter().enumerate() {
                    // Output i reads input rows 2i − 1 ..= 2i + 1 (columns likewise).
                    let (i, j) = (k / 4, k % 4);
                    let reads = |at: usize, o: usize| (2 * o).abs_diff(at) <= 1;
                    let reads_nan = reads(r, i) && reads(c, j);
                    assert_eq!(
                        v.is_nan(),
                        reads_nan,
                        "NaN at ({r}, {c}): output ({i}, {j}) = {v}"
                    );
                }
            }
        }
    }

    /// Windows that cannot be pooled here (padding of half the window or more) and other
    /// element types are left to Burn.
    #[test]
    fn other_geometries_and_types_are_left_to_burn() {
        let device = Default::default();
        let wide = Pool {
            kernel: [2, 2],
            stride: [1, 1],
            padding: [2, 2],
            dilation: [1, 1],
        };
        let x = Tensor::<Flex, 4>::from_data(values([1, 1, 4, 4], 1, false), (&device, DType::F32));
        assert!(try_max_pool2d(x, wide).is_err());
        let half =
            Tensor::<Flex, 4>::from_data(values([1, 1, 4, 4], 1, false), (&device, DType::F16));
        let stem = Pool {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
            dilation: [1, 1],
        };
        assert!(try_max_pool2d(half, stem).is_err());
    }
}
