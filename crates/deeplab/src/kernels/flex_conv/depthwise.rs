//! Depthwise convolutions — one `kh×kw` filter per channel (`groups` = input channels = output
//! channels), the first half of DeepLabV3+'s separable convolutions — plane by plane: each tap
//! adds its weight times the input, shifted, onto the output rectangle where it reads inside
//! the input ([`super::clipped::inside`]); row by row, so that the inner loops run over
//! contiguous rows. The input gradient is the same walk backwards; the weight gradient, per
//! channel and tap, a dot product of the output gradient with what the tap read, over the batch.
//!
//! Flex computes them as grouped convolutions: one im2col matrix product per channel (`[1, 9]`
//! by `[9, H·W]`), its input gradient a transposed convolution.

use std::ops::Range;

use rayon::prelude::*;

use super::clipped::inside;
use super::matmul::{Epilogue, Float, Operands};

/// A kernel tap of one channel's filter and the output rectangle where it reads the input.
#[derive(Debug, Clone)]
struct Tap {
    /// `ky·kw + kx`.
    index: usize,
    rows: Range<usize>,
    cols: Range<usize>,
    /// The input row and column read at the rectangle's first output pixel.
    origin: [usize; 2],
}

/// A depthwise convolution's shapes.
#[derive(Debug, Clone)]
pub(super) struct Depthwise {
    /// Input `[N, C, H, W]`.
    x: [usize; 4],
    /// Output `[N, C, Hₒ, Wₒ]`.
    out: [usize; 4],
    stride: [usize; 2],
    /// Kernel taps, `kh·kw`.
    taps: usize,
    /// The taps that read the input somewhere.
    live: Vec<Tap>,
}

impl Depthwise {
    /// The geometry of a convolution of `x` (`[N, C, H, W]`) by a `[C, 1, kh, kw]` weight in
    /// `C` groups, or `None` when it is not one.
    pub fn new(
        x: [usize; 4],
        [o, one, kh, kw]: [usize; 4],
        groups: usize,
        [stride, padding, dilation]: [[usize; 2]; 3],
    ) -> Option<Self> {
        let [n, c, h, w] = x;
        if groups != c || o != c || one != 1 || [n, c, kh, kw, stride[0], stride[1]].contains(&0) {
            return None;
        }
        let span = |i: usize, size: usize, k: usize| {
            (size + 2 * padding[i])
                .checked_sub((k - 1) * dilation[i] + 1)
                .map(|s| s / stride[i] + 1)
        };
        let (ho, wo) = (span(0, h, kh)?, span(1, w, kw)?);
        let mut live = Vec::new();
        for ky in 0..kh {
            for kx in 0..kw {
                let rows = inside(ho, h, ky * dilation[0], stride[0], padding[0]);
                let cols = inside(wo, w, kx * dilation[1], stride[1], padding[1]);
                if let (Some((rows, iy)), Some((cols, ix))) = (rows, cols) {
                    live.push(Tap {
                        index: ky * kw + kx,
                        rows,
                        cols,
                        origin: [iy, ix],
                    });
                }
            }
        }
        Some(Self {
            x,
            out: [n, c, ho, wo],
            stride,
            taps: kh * kw,
            live,
        })
    }

    /// The output shape.
    pub fn out(&self) -> [usize; 4] {
        self.out
    }

    /// For each output row of `tap`'s rectangle: the output row's elements in the rectangle
    /// (`offset` into the output plane) and the input row's start (into the input plane).
    fn rows(&self, tap: &Tap) -> impl Iterator<Item = (usize, usize)> + '_ {
        let ([.., w], [.., wo]) = (self.x, self.out);
        let [sh, _] = self.stride;
        let tap = tap.clone();
        tap.rows
            .clone()
            .enumerate()
            .map(move |(r, row)| (row * wo + tap.cols.start, (tap.origin[0] + r * sh) * w))
    }

    /// `y = epilogue(conv(x, weight) + bias)` into `out` (`[N, C, Hₒ, Wₒ]`, each channel's
    /// planes holding its bias).
    pub fn forward<T: Float>(&self, operands: Operands<T>, epilogue: Epilogue<T>, out: &mut [T]) {
        let Operands { x, weight, .. } = operands;
        let [_, c, h, w] = self.x;
        let [.., ho, wo] = self.out;
        let sw = self.stride[1];
        out.par_chunks_exact_mut(ho * wo)
            .enumerate()
            .for_each(|(plane, dst)| {
                let ci = plane % c;
                let src = &x[plane * h * w..][..h * w];
                for tap in &self.live {
                    let k = weight[ci * self.taps + tap.index];
                    let width = tap.cols.len();
                    for (o, i) in self.rows(tap) {
                        let dst = &mut dst[o..][..width];
                        let src = &src[i + tap.origin[1]..];
                        if sw == 1 {
                            for (d, &v) in dst.iter_mut().zip(&src[..width]) {
                                *d = *d + k * v;
                            }
                        } else {
                            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(sw)) {
                                *d = *d + k * v;
                            }
                        }
                    }
                }
                epilogue.apply(plane, dst);
            });
    }

    /// `∂L/∂x` (`[N, C, H, W]`, any contents) from the output gradient `grad`.
    pub fn input_grad<T: Float>(&self, grad: &[T], weight: &[T], out: &mut [T]) {
        let [_, c, h, w] = self.x;
        let [.., ho, wo] = self.out;
        let sw = self.stride[1];
        out.par_chunks_exact_mut(h * w)
            .enumerate()
            .for_each(|(plane, dst)| {
                let ci = plane % c;
                dst.fill(T::ZERO);
                let g = &grad[plane * ho * wo..][..ho * wo];
                for tap in &self.live {
                    let k = weight[ci * self.taps + tap.index];
                    let width = tap.cols.len();
                    for (o, i) in self.rows(tap) {
                        let g = &g[o..][..width];
                        let dst = &mut dst[i + tap.origin[1]..];
                        if sw == 1 {
                            for (d, &v) in dst[..width].iter_mut().zip(g) {
                                *d = *d + k * v;
                            }
                        } else {
                            for (d, &v) in dst.iter_mut().step_by(sw).zip(g) {
                                *d = *d + k * v;
                            }
                        }
                    }
                }
            });
    }

    /// `∂L/∂W` (`[C, 1, kh, kw]`, any contents) from the input and the output gradient: per
    /// channel and tap, the sum over the batch of the output gradient times what the tap read.
    pub fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let [n, c, h, w] = self.x;
        let [.., ho, wo] = self.out;
        let sw = self.stride[1];
        out.par_chunks_exact_mut(self.taps)
            .enumerate()
            .for_each(|(ci, dst)| {
                dst.fill(T::ZERO);
                for tap in &self.live {
                    let width = tap.cols.len();
                    let mut sum = T::ZERO;
                    for sample in 0..n {
                        let plane = sample * c + ci;
                        let src = &x[plane * h * w..][..h * w];
                        let g = &grad[plane * ho * wo..][..ho * wo];
                        for (o, i) in self.rows(tap) {
                            let g = &g[o..][..width];
                            let src = &src[i + tap.origin[1]..];
                            sum = sum
                                + if sw == 1 {
                                    dot(g, &src[..width])
                                } else {
                                    g.iter()
                                        .zip(src.iter().step_by(sw))
                                        .fold(T::ZERO, |s, (&a, &b)| s + a * b)
                                };
                        }
                    }
                    dst[tap.index] = sum;
                }
            });
    }
}

/// `Σ a[i]·b[i]` (equal lengths) in 16 interleaved partial sums: vectorisable, and their
/// rounding errors grow with a 16th of the length.
fn dot<T: Float>(a: &[T], b: &[T]) -> T {
    let mut lanes = [T::ZERO; 16];
    let (a_chunks, b_chunks) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail = a_chunks.remainder().iter().zip(b_chunks.remainder());
    for (a, b) in a_chunks.zip(b_chunks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(a).zip(b) {
            *lane = *lane + x * y;
        }
    }
    for (lane, (&x, &y)) in lanes.iter_mut().zip(tail) {
        *lane = *lane + x * y;
    }
    lanes.into_iter().fold(T::ZERO, |s, v| s + v)
}
