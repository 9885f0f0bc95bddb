//! A dilated convolution whose kernel reaches past the map (the ASPP's rates 12, 24 and 36 on
//! 32×32 to 64×64 maps) as one matrix product per kernel tap over only the output rectangle
//! where that tap reads inside the input.
//!
//! For a rate-36 3×3 on a 64×64 map, the upper taps read the input at output rows 36–63 only,
//! the lower ones at rows 0–27, and the same along the columns; the per-tap products
//! ([`super::taps`]) and im2col ([`super::im2col`]) multiply the padding everywhere else — 61 %
//! of the multiply-adds at rate 36, 44 % at rate 24, 23 % at rate 12. Here each tap's input
//! rectangle is copied into a `[C, pixels]` matrix (a block of input channels at a time) and
//! multiplied by the tap's `[O, C]` weights (re-laid out once per call, tap by tap), and the
//! product is added onto the tap's output rectangle.
//!
//! The gradients go tap by tap in the same way: the input gradient multiplies the tap's
//! transposed weights by the output gradient over its rectangle and adds the result onto the
//! input positions it read; the weight gradient multiplies the output gradient over the
//! rectangle by what the tap read there, accumulated over the samples.
//!
//! On maps under [`MIN_PIXELS`] (ResNet's layer3 and layer4 at 4×4 on 64×64 windows, whose
//! 3×3 read padding for 31 % and, dilated, 56 % of their multiply-adds) a tap's rectangle is a
//! few pixels, so the forward pass puts the samples side by side: each tap's product runs over
//! the rectangles of a group of samples at once.

use std::borrow::Cow;
use std::ops::Range;

use rayon::prelude::*;

use super::im2col::Im2col;
use super::matmul::{
    for_each_column_block, for_each_sample, gemm_into, parallelism, Epilogue, Float, Operands,
    SharedDst,
};

/// Elements of one copied block of input (4 MB of f32; small in the unit tests, so that their
/// channels run in several blocks).
const BLOCK_ELEMENTS: usize = if cfg!(test) { 1 << 9 } else { 1 << 20 };

/// Output maps smaller than this many pixels are computed with the samples side by side (their
/// taps' rectangles would make products of a few columns), and only in batches with at least
/// this many output pixels in all (else left to the other methods).
pub(super) const MIN_PIXELS: usize = 256;

/// Elements of one group's copied input for one tap, samples side by side (8 MB of f32; small
/// in the unit tests, so that their batches run in several groups).
const GROUP_ELEMENTS: usize = if cfg!(test) { 1 << 10 } else { 1 << 21 };

/// A kernel tap that reads inside the input somewhere, and where.
#[derive(Debug, Clone, PartialEq)]
struct Tap {
    /// `ky·kw + kx`.
    index: usize,
    /// The output rows and columns where it reads inside the input.
    rows: Range<usize>,
    cols: Range<usize>,
    /// The input row and column it reads at the rectangle's first output pixel.
    origin: [usize; 2],
}

impl Tap {
    fn pixels(&self) -> usize {
        self.rows.len() * self.cols.len()
    }
}

/// A convolution as products over each tap's output rectangle.
#[derive(Debug, Clone)]
pub(super) struct Clipped {
    geometry: Im2col,
    /// The taps that read the input, ascending.
    taps: Vec<Tap>,
}

impl Clipped {
    /// The taps of the convolution `geometry` clipped to where they read the input.
    pub fn new(geometry: Im2col) -> Self {
        let ([stride, padding, dilation], [_, _, h, w]) = (geometry.options(), geometry.x());
        let [_, _, ho, wo] = geometry.out();
        let [kh, kw] = geometry.kernel();
        let axis = |i: usize, out: usize, size: usize, k: usize| {
            (0..k)
                .map(|t| inside(out, size, t * dilation[i], stride[i], padding[i]))
                .collect::<Vec<_>>()
        };
        let (rows, cols) = (axis(0, ho, h, kh), axis(1, wo, w, kw));
        let mut taps = Vec::new();
        for (ky, row) in rows.iter().enumerate() {
            for (kx, col) in cols.iter().enumerate() {
                if let (Some((rows, iy)), Some((cols, ix))) = (row, col) {
                    taps.push(Tap {
                        index: ky * kw + kx,
                        rows: rows.clone(),
                        cols: cols.clone(),
                        origin: [*iy, *ix],
                    });
                }
            }
        }
        Self { geometry, taps }
    }

    /// The output shape.
    pub fn out(&self) -> [usize; 4] {
        self.geometry.out()
    }

    /// The multiply-adds of the clipped products over those of every tap at every output pixel.
    pub fn live_fraction(&self) -> f64 {
        let [_, _, ho, wo] = self.geometry.out();
        let live: usize = self.taps.iter().map(Tap::pixels).sum();
        live as f64 / (ho * wo * self.geometry.taps()) as f64
    }

    /// `(batch, input channels, input plane, output channels, output plane)`.
    fn sizes(&self) -> (usize, usize, usize, usize, usize) {
        let [n, c, h, w] = self.geometry.x();
        let [_, o, ho, wo] = self.geometry.out();
        (n, c, h * w, o, ho * wo)
    }

    /// The live taps' weights as `[live, O, C]` from `[O, C, kh, kw]`, written in order, tap
    /// after tap (4× faster than one pass over the weights writing each tap's at a stride);
    /// borrowed for a 1×1 kernel, whose weights are already in that layout.
    fn weights<'a, T: Float>(&self, weight: &'a [T]) -> Cow<'a, [T]> {
        let (_, c, _, o, _) = self.sizes();
        let taps = self.geometry.taps();
        if taps == 1 {
            return weight.into();
        }
        let mut out = Vec::with_capacity(self.taps.len() * o * c);
        for tap in &self.taps {
            out.extend(weight.chunks_exact(taps).map(|w| w[tap.index]));
        }
        out.into()
    }

    /// The blocks of the input channels `channels` copied at once for a rectangle of `pixels`.
    fn blocks(channels: Range<usize>, pixels: usize) -> impl Iterator<Item = Range<usize>> {
        let size = (BLOCK_ELEMENTS / pixels).max(1);
        let end = channels.end;
        channels
            .step_by(size)
            .map(move |c0| c0..(c0 + size).min(end))
    }

    /// What `tap` reads from the channels `channels` of the sample `src` (`[C, H, W]`), into
    /// `dst` (`[channels, pixels]`).
    fn gather<T: Float>(&self, src: &[T], tap: &Tap, channels: Range<usize>, dst: &mut [T]) {
        let ([_, _, h, w], [[sh, sw], ..]) = (self.geometry.x(), self.geometry.options());
        let width = tap.cols.len();
        let mut out_rows = dst.chunks_exact_mut(width);
        for ci in channels {
            let plane = &src[ci * h * w..][..h * w];
            for r in 0..tap.rows.len() {
                let in_row = &plane[(tap.origin[0] + r * sh) * w..][..w];
                let out_row = out_rows.next().expect("dst holds channels × pixels");
                if sw == 1 {
                    out_row.copy_from_slice(&in_row[tap.origin[1]..][..width]);
                } else {
                    for (v, ix) in out_row.iter_mut().zip((tap.origin[1]..).step_by(sw)) {
                        *v = in_row[ix];
                    }
                }
            }
        }
    }

    /// The adjoint of [`Clipped::gather`]: `src` (`[channels, pixels]`) added onto the input
    /// positions `tap` reads in `dst` (`[C, H, W]`).
    fn scatter_add<T: Float>(&self, src: &[T], tap: &Tap, channels: Range<usize>, dst: &mut [T]) {
        let ([_, _, h, w], [[sh, sw], ..]) = (self.geometry.x(), self.geometry.options());
        let mut in_rows = src.chunks_exact(tap.cols.len());
        for ci in channels {
            let plane = &mut dst[ci * h * w..][..h * w];
            for r in 0..tap.rows.len() {
                let row = &mut plane[(tap.origin[0] + r * sh) * w..][..w];
                let values = in_rows.next().expect("src holds channels × pixels");
                for (&v, ix) in values.iter().zip((tap.origin[1]..).step_by(sw)) {
                    row[ix] = row[ix] + v;
                }
            }
        }
    }

    /// `plane` (`[O, Hₒ, Wₒ]`) over `tap`'s rectangle, as `[O, pixels]`.
    fn crop<T: Float>(&self, plane: &[T], tap: &Tap) -> Vec<T> {
        let [_, o, ho, wo] = self.geometry.out();
        let mut out = Vec::with_capacity(o * tap.pixels());
        for channel in plane.chunks_exact(ho * wo) {
            for r in tap.rows.clone() {
                out.extend_from_slice(&channel[r * wo..][tap.cols.clone()]);
            }
        }
        out
    }

    /// `values` (`[O, pixels]`, output channel `oi`'s from `oi·stride`) added onto `plane`
    /// (`[O, Hₒ, Wₒ]`) over `tap`'s rectangle.
    fn add_onto<T: Float>(&self, values: &[T], stride: usize, tap: &Tap, plane: &mut [T]) {
        let [_, _, ho, wo] = self.geometry.out();
        let width = tap.cols.len();
        for (channel, values) in plane.chunks_exact_mut(ho * wo).zip(values.chunks(stride)) {
            for (r, values) in tap
                .rows
                .clone()
                .zip(values[..tap.pixels()].chunks_exact(width))
            {
                let row = &mut channel[r * wo..][tap.cols.clone()];
                for (d, &v) in row.iter_mut().zip(values) {
                    *d = *d + v;
                }
            }
        }
    }

    /// Whether the forward pass puts the samples side by side (maps under [`MIN_PIXELS`]).
    pub fn side_by_side(&self) -> bool {
        let [_, _, ho, wo] = self.geometry.out();
        ho * wo < MIN_PIXELS
    }

    /// `y = epilogue(conv(x, weight) + bias)` into `out` (`[N, O, Hₒ, Wₒ]`, each output channel's planes holding its bias).
    pub fn forward<T: Float>(&self, operands: Operands<T>, epilogue: Epilogue<T>, out: &mut [T]) {
        if self.side_by_side() {
            return self.forward_side_by_side(operands, epilogue, out);
        }
        let Operands { x, weight, .. } = operands;
        let (n, c, hw, o, pixels) = self.sizes();
        let weights = self.weights(weight);
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            let src = &x[sample * c * hw..][..c * hw];
            let (mut sum, mut col) = (Vec::new(), Vec::new());
            for (t, tap) in self.taps.iter().enumerate() {
                let p = tap.pixels();
                sum.resize(o * p, T::ZERO);
                for (block, channels) in Self::blocks(0..c, p).enumerate() {
                    col.resize(channels.len() * p, T::ZERO);
                    self.gather(src, tap, channels.clone(), &mut col);
                    // SAFETY: sum is o × p; the weight view (oi, k) ↦ t·o·c + oi·c +
                    // channels.start + k stays inside the tap's o × c weights; col is
                    // channels × p.
                    unsafe {
                        gemm_into(
                            [o, p, channels.len()],
                            (sum.as_mut_ptr(), p, 1),
                            block > 0,
                            (weights.as_ptr().add(t * o * c + channels.start), c, 1),
                            (col.as_ptr(), p, 1),
                            parallelism(n, o * p * channels.len()),
                        )
                    }
                }
                self.add_onto(&sum, p, tap, dst);
            }
            epilogue.apply(sample, dst);
        };
        for_each_sample(out, o * pixels, n, per_sample);
    }

    /// [`Clipped::forward`] with the samples side by side: per group of samples and live tap,
    /// what the tap reads in every sample of the group copied into one `[C, samples·pixels]`
    /// matrix, one product with the tap's weights, added onto each sample's rectangle.
    fn forward_side_by_side<T: Float>(
        &self,
        operands: Operands<T>,
        epilogue: Epilogue<T>,
        out: &mut [T],
    ) {
        let Operands { x, weight, .. } = operands;
        let (n, c, hw, o, pixels) = self.sizes();
        let weights = self.weights(weight);
        let planes = &mut out[..n * o * pixels];
        let (mut sum, mut col) = (Vec::new(), Vec::new());
        for (t, tap) in self.taps.iter().enumerate() {
            let p = tap.pixels();
            let size = (GROUP_ELEMENTS / (c * p).max(1)).clamp(1, n);
            for group in (0..n).step_by(size).map(|s0| s0..(s0 + size).min(n)) {
                let width = group.len() * p;
                col.resize(c * width, T::ZERO);
                col.par_chunks_exact_mut(width)
                    .enumerate()
                    .for_each(|(ci, row)| {
                        for (s, dst) in group.clone().zip(row.chunks_exact_mut(p)) {
                            let src = &x[s * c * hw..][..c * hw];
                            self.gather(src, tap, ci..ci + 1, dst);
                        }
                    });
                sum.resize(o * width, T::ZERO);
                // SAFETY: sum is o × width; the weight view (oi, k) ↦ t·o·c + oi·c + k stays
                // inside the tap's o × c weights; col is c × width.
                unsafe {
                    gemm_into(
                        [o, width, c],
                        (sum.as_mut_ptr(), width, 1),
                        false,
                        (weights.as_ptr().add(t * o * c), c, 1),
                        (col.as_ptr(), width, 1),
                        parallelism(1, o * width * c),
                    )
                }
                let dst = &mut planes[group.start * o * pixels..group.end * o * pixels];
                dst.par_chunks_exact_mut(o * pixels)
                    .enumerate()
                    .for_each(|(i, plane)| self.add_onto(&sum[i * p..], width, tap, plane));
            }
        }
        planes
            .par_chunks_exact_mut(o * pixels)
            .enumerate()
            .for_each(|(sample, dst)| epilogue.apply(sample, dst));
    }

    /// `∂L/∂x` (`[N, C, H, W]`, any contents) from the output gradient: per live tap, its
    /// transposed weights times the output gradient over its rectangle, added onto the input
    /// positions it read.
    pub fn input_grad<T: Float>(&self, grad: &[T], weight: &[T], out: &mut [T]) {
        let (n, c, hw, o, pixels) = self.sizes();
        let weights = self.weights(weight);
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            dst.fill(T::ZERO);
            let g_plane = &grad[sample * o * pixels..][..o * pixels];
            let mut col = Vec::new();
            for (t, tap) in self.taps.iter().enumerate() {
                let p = tap.pixels();
                let g = self.crop(g_plane, tap);
                for channels in Self::blocks(0..c, p) {
                    col.resize(channels.len() * p, T::ZERO);
                    // SAFETY: col is channels × p; the transposed weight view (k, oi) ↦
                    // t·o·c + oi·c + channels.start + k stays inside the tap's o × c weights;
                    // g is o × p.
                    unsafe {
                        gemm_into(
                            [channels.len(), p, o],
                            (col.as_mut_ptr(), p, 1),
                            false,
                            (weights.as_ptr().add(t * o * c + channels.start), 1, c),
                            (g.as_ptr(), p, 1),
                            parallelism(n, o * p * channels.len()),
                        )
                    }
                    self.scatter_add(&col, tap, channels, dst);
                }
            }
        };
        for_each_sample(out, c * hw, n, per_sample);
    }

    /// `∂L/∂W` (`[O, C, kh, kw]`, any contents) from the input and the output gradient: per
    /// sample and live tap, the output gradient over its rectangle times what the tap read
    /// there, transposed; the input channels shared between threads.
    pub fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let (n, c, hw, o, pixels) = self.sizes();
        let live: usize = self.taps.iter().map(Tap::pixels).sum();
        // `[live taps, O, C]`, spread into `out` at the end.
        let mut per_tap = vec![T::ZERO; self.taps.len() * o * c];
        let dst = SharedDst::new(&mut per_tap);
        let work = n * o * c * live;
        for_each_column_block(
            c,
            work,
            work / (n * self.taps.len()).max(1),
            |columns, parallelism| {
                let mut col = Vec::new();
                for sample in 0..n {
                    let src = &x[sample * c * hw..][..c * hw];
                    let g_plane = &grad[sample * o * pixels..][..o * pixels];
                    for (t, tap) in self.taps.iter().enumerate() {
                        let p = tap.pixels();
                        let g = self.crop(g_plane, tap);
                        for channels in Self::blocks(columns.clone(), p) {
                            col.resize(channels.len() * p, T::ZERO);
                            self.gather(src, tap, channels.clone(), &mut col);
                            // SAFETY: dst addresses per_tap[t·o·c + oi·c + ci] for oi < o and ci
                            // in `channels` (within this thread's `columns`): inside per_tap, and
                            // only this thread's columns; g is o × p; colᵀ (j, k) ↦ k·p + j is
                            // inside channels × p.
                            unsafe {
                                gemm_into(
                                    [o, channels.len(), p],
                                    (dst.ptr().add(t * o * c + channels.start), c, 1),
                                    true,
                                    (g.as_ptr(), p, 1),
                                    (col.as_ptr(), 1, p),
                                    parallelism,
                                )
                            }
                        }
                    }
                }
            },
        );
        out.fill(T::ZERO);
        let taps = self.geometry.taps();
        for (oc, w) in out.chunks_exact_mut(taps).enumerate() {
            for (t, tap) in self.taps.iter().enumerate() {
                w[tap.index] = per_tap[t * o * c + oc];
            }
        }
    }
}

/// Along one axis (`out` output positions, input size `size`), the output positions at which
/// the kernel index at offset `offset` (its index times the dilation) reads inside the input,
/// `0 ≤ i·stride + offset − pad < size`, and the input position it reads at the first of them;
/// `None` where it reads padding only.
pub(super) fn inside(
    out: usize,
    size: usize,
    offset: usize,
    stride: usize,
    pad: usize,
) -> Option<(Range<usize>, usize)> {
    let first = pad.saturating_sub(offset).div_ceil(stride);
    let end = (size + pad)
        .saturating_sub(offset)
        .div_ceil(stride)
        .min(out);
    (first < end).then(|| (first..end, first * stride + offset - pad))
}

#[cfg(test)]
mod tests {
    use super::inside;

    /// A rate-36 3×3 with "same" padding on 64 positions: the first index reads from output 36
    /// on (input 0), the centre everywhere, the last up to output 27 (from input 36).
    #[test]
    fn where_a_kernel_reaching_past_the_map_reads() {
        let reads = [0, 36, 72].map(|offset| inside(64, 64, offset, 1, 36));
        assert_eq!(
            reads,
            [Some((36..64, 0)), Some((0..64, 0)), Some((0..28, 36))]
        );
        assert_eq!(inside(16, 16, 0, 1, 24), None);
        assert_eq!(inside(16, 16, 48, 1, 24), None);
    }

    /// Stride 2, dilation and padding 8, 33 inputs → 17 outputs.
    #[test]
    fn where_a_strided_kernel_reads() {
        let reads = [0, 8, 16].map(|offset| inside(17, 33, offset, 2, 8));
        assert_eq!(
            reads,
            [Some((4..17, 0)), Some((0..17, 0)), Some((0..13, 8))]
        );
    }
}
