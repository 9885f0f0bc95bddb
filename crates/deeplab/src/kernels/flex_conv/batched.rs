//! Convolutions whose output maps are small computed for the whole batch at once — the
//! gradients on maps of at most [`SMALL_MAP_PIXELS`] pixels (ResNet's layer2 to layer4 and the
//! ASPP on 64×64 crops), the forward pass on maps under 64 (4×4 on 64×64 windows, see `ops`) —
//! by im2col over the samples side by side: a `[C·taps, N·Hₒ·Wₒ]` column matrix (only the taps
//! that read the input), so that the output, the input gradient and the weight gradient are
//! each one large matrix product instead of one per sample (or per sample and tap) of a few
//! dozen rows.
//!
//! Per sample, such maps give products of 16–64 rows: the weights are packed again for every
//! sample and tap, read with the taps' stride, and the weight gradient accumulates over the
//! batch through products only `Hₒ·Wₒ` deep, each reading and writing the whole gradient.
//! Side by side, the column matrix of a 6-sample batch of 4×4 maps is 96 columns wide and the
//! weight gradient's product 96 deep.

use std::ops::Range;

use rayon::prelude::*;

use super::im2col::Im2col;
use super::matmul::{gemm_into, parallelism, Epilogue, Float, Operands};

/// Gradients of output maps of at most this many pixels are computed for the whole batch at
/// once (batches of two samples or more). 8×8: limits of 4×4, 8×8 and 12×12 measured within
/// run-to-run noise of each other on the quick preset's training step, all faster than per
/// sample.
pub(super) const SMALL_MAP_PIXELS: usize = 64;

/// Elements of the column matrix of one group of samples (8 MB of f32); larger batches run in
/// groups (small in the unit tests, so that their batches run in several groups).
const GROUP_ELEMENTS: usize = if cfg!(test) { 1 << 12 } else { 1 << 21 };

/// A convolution on small maps, its column matrix holding the taps that read the input.
#[derive(Debug, Clone)]
pub(super) struct Batched {
    geometry: Im2col,
    /// The kernel taps (`ky·kw + kx`) that read at least one input element, ascending.
    live: Vec<usize>,
    /// `[live, Hₒ·Wₒ]`: the input-plane index each live tap reads at each output pixel, `None`
    /// where it reads padding.
    sources: Vec<Option<usize>>,
}

impl Batched {
    /// For a batch of two or more samples whose output maps have at most [`SMALL_MAP_PIXELS`]
    /// pixels, else `None`.
    pub fn new(geometry: Im2col) -> Option<Self> {
        let [n, _, ho, wo] = geometry.out();
        if n < 2 || ho * wo > SMALL_MAP_PIXELS {
            return None;
        }
        let (mut live, mut sources) = (Vec::new(), Vec::new());
        for tap in 0..geometry.taps() {
            let reads = geometry.sources(tap);
            if reads.iter().any(Option::is_some) {
                live.push(tap);
                sources.extend(reads);
            }
        }
        Some(Self {
            geometry,
            live,
            sources,
        })
    }

    /// The output shape.
    pub fn out(&self) -> [usize; 4] {
        self.geometry.out()
    }

    /// `(batch, input channels, input plane, output channels, output plane)`.
    fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        let [n, c, h, w] = self.geometry.x();
        let [_, o, ho, wo] = self.geometry.out();
        (n, c, h * w, o, ho * wo)
    }

    /// Rows of the column matrix: input channels × live taps.
    fn rows(&self) -> usize {
        self.geometry.x()[1] * self.live.len()
    }

    /// The batch in groups of consecutive samples whose column matrix has at most
    /// [`GROUP_ELEMENTS`] elements (at least one sample each).
    fn groups(&self) -> impl Iterator<Item = Range<usize>> {
        let (n, .., pixels) = self.sizes();
        let size = (GROUP_ELEMENTS / (self.rows() * pixels).max(1)).clamp(1, n);
        (0..n).step_by(size).map(move |s0| s0..(s0 + size).min(n))
    }

    /// The weights as `[O, C·live]`: borrowed when every tap is live.
    fn weights<'a, T: Float>(&self, weight: &'a [T]) -> std::borrow::Cow<'a, [T]> {
        let taps = self.geometry.taps();
        if self.live.len() == taps {
            return weight.into();
        }
        weight
            .chunks_exact(taps)
            .flat_map(|w| self.live.iter().map(move |&tap| w[tap]))
            .collect::<Vec<T>>()
            .into()
    }

    /// The column matrix of `samples` of `x` into `col` (`[C·live, samples·Hₒ·Wₒ]`): row
    /// `ci·live + t` holds, sample after sample, what live tap `t` reads from channel `ci`.
    fn columns<T: Float>(&self, x: &[T], samples: &Range<usize>, col: &mut [T]) {
        let (_, c, hw, _, pixels) = self.sizes();
        let width = samples.len() * pixels;
        if self.identity() {
            col.par_chunks_exact_mut(width)
                .with_min_len(16)
                .enumerate()
                .for_each(|(ci, dst)| {
                    for (s, dst) in samples.clone().zip(dst.chunks_exact_mut(pixels)) {
                        dst.copy_from_slice(&x[(s * c + ci) * hw..][..hw]);
                    }
                });
            return;
        }
        col.par_chunks_exact_mut(width)
            .with_min_len(16)
            .enumerate()
            .for_each(|(row, dst)| {
                let (ci, t) = (row / self.live.len(), row % self.live.len());
                let sources = &self.sources[t * pixels..][..pixels];
                for (s, dst) in samples.clone().zip(dst.chunks_exact_mut(pixels)) {
                    let plane = &x[(s * c + ci) * hw..][..hw];
                    for (d, source) in dst.iter_mut().zip(sources) {
                        *d = source.map_or(T::ZERO, |i| plane[i]);
                    }
                }
            });
    }

    /// Whether the column matrix is the input's planes side by side: one live tap reading input
    /// pixel `i` at output pixel `i` (a stride-1 1×1 without padding).
    fn identity(&self) -> bool {
        let (.., hw, _, pixels) = self.sizes();
        self.live.len() == 1
            && hw == pixels
            && self.sources.iter().enumerate().all(|(i, s)| *s == Some(i))
    }

    /// `y = epilogue(conv(x, weight) + bias)` into `out` (`[N, O, Hₒ, Wₒ]`, each output
    /// channel's planes holding its bias): per group of samples, one product of the weights by
    /// the group's column matrix, its columns then added onto each sample's output plane before
    /// the epilogue.
    pub fn forward<T: Float>(&self, operands: Operands<T>, epilogue: Epilogue<T>, out: &mut [T]) {
        let Operands { x, weight, .. } = operands;
        let (_, _, _, o, pixels) = self.sizes();
        let rows = self.rows();
        let weight = self.weights(weight);
        let (mut col, mut sum) = (Vec::new(), Vec::new());
        for samples in self.groups() {
            let width = samples.len() * pixels;
            col.resize(rows * width, T::ZERO);
            self.columns(x, &samples, &mut col);
            sum.resize(o * width, T::ZERO);
            // SAFETY: sum is o × width; the weights are o × rows; col is rows × width.
            unsafe {
                gemm_into(
                    [o, width, rows],
                    (sum.as_mut_ptr(), width, 1),
                    false,
                    (weight.as_ptr(), rows, 1),
                    (col.as_ptr(), width, 1),
                    parallelism(1, o * width * rows),
                )
            }
            let planes = &mut out[samples.start * o * pixels..samples.end * o * pixels];
            planes
                .par_chunks_exact_mut(o * pixels)
                .enumerate()
                .for_each(|(i, plane)| {
                    for (oi, dst) in plane.chunks_exact_mut(pixels).enumerate() {
                        let src = &sum[oi * width + i * pixels..][..pixels];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d = *d + v;
                        }
                    }
                    epilogue.apply(samples.start + i, plane);
                });
        }
    }

    /// `[O, samples·Hₒ·Wₒ]`: the `[N, O, Hₒ, Wₒ]` tensor `t`'s planes of `samples`, side by side.
    fn side_by_side<T: Float>(&self, t: &[T], samples: &Range<usize>) -> Vec<T> {
        let (.., o, pixels) = self.sizes();
        let mut out = vec![T::ZERO; o * samples.len() * pixels];
        out.par_chunks_exact_mut(samples.len() * pixels)
            .enumerate()
            .for_each(|(oi, row)| {
                for (s, dst) in samples.clone().zip(row.chunks_exact_mut(pixels)) {
                    dst.copy_from_slice(&t[(s * o + oi) * pixels..][..pixels]);
                }
            });
        out
    }

    /// `∂L/∂x` (`[N, C, H, W]`, any contents) from the output gradient: the column-matrix
    /// gradient `Wᵀ·G` of each group added back onto the input positions each column read.
    pub fn input_grad<T: Float>(&self, grad: &[T], weight: &[T], out: &mut [T]) {
        let (_, c, hw, o, pixels) = self.sizes();
        let rows = self.rows();
        let live = self.live.len();
        let weight = self.weights(weight);
        for samples in self.groups() {
            let width = samples.len() * pixels;
            let g = self.side_by_side(grad, &samples);
            let mut col = vec![T::ZERO; rows * width];
            // SAFETY: col is rows × width; the transposed weights (r, oi) ↦ oi·rows + r are
            // inside o·rows; g is o × width.
            unsafe {
                gemm_into(
                    [rows, width, o],
                    (col.as_mut_ptr(), width, 1),
                    false,
                    (weight.as_ptr(), 1, rows),
                    (g.as_ptr(), width, 1),
                    parallelism(1, o * width * rows),
                )
            }
            let planes = &mut out[samples.start * c * hw..samples.end * c * hw];
            planes
                .par_chunks_exact_mut(hw)
                .enumerate()
                .for_each(|(i, plane)| {
                    let (s, ci) = (i / c, i % c);
                    plane.fill(T::ZERO);
                    for (t, sources) in self.sources.chunks_exact(pixels).enumerate() {
                        let row = &col[(ci * live + t) * width + s * pixels..][..pixels];
                        for (&v, source) in row.iter().zip(sources) {
                            if let Some(i) = *source {
                                plane[i] = plane[i] + v;
                            }
                        }
                    }
                });
        }
    }

    /// `∂L/∂W` (`[O, C, kh, kw]`, zero-initialised) from the input and the output gradient:
    /// `G·colᵀ`, one product as deep as a group's pixels.
    pub fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let (.., o, pixels) = self.sizes();
        let (rows, taps) = (self.rows(), self.geometry.taps());
        let all_live = self.live.len() == taps;
        // Every tap live: straight into `out` (`[O, C·taps]`); else into `[O, C·live]`, spread
        // afterwards (the dead taps' gradients stay zero).
        let mut compact = if all_live {
            Vec::new()
        } else {
            vec![T::ZERO; o * rows]
        };
        let dst = if all_live {
            &mut out[..]
        } else {
            &mut compact[..]
        };
        for (group, samples) in self.groups().enumerate() {
            let width = samples.len() * pixels;
            let mut col = vec![T::ZERO; rows * width];
            self.columns(x, &samples, &mut col);
            let g = self.side_by_side(grad, &samples);
            // SAFETY: dst is o × rows; g is o × width; colᵀ (j, r) ↦ r·width + j is inside
            // rows·width.
            unsafe {
                gemm_into(
                    [o, rows, width],
                    (dst.as_mut_ptr(), rows, 1),
                    group > 0,
                    (g.as_ptr(), width, 1),
                    (col.as_ptr(), 1, width),
                    parallelism(1, o * width * rows),
                )
            }
        }
        if !all_live {
            for (dst, src) in out
                .chunks_exact_mut(taps)
                .zip(compact.chunks_exact(self.live.len()))
            {
                for (&tap, &v) in self.live.iter().zip(src) {
                    dst[tap] = v;
                }
            }
        }
    }
}
