//! A stride-1 convolution as one matrix product per kernel tap, on row-padded planes, for the
//! forward pass, the input gradient and the weight gradient — no im2col buffer, no col2im scatter,
//! weights read in their own `[O, C, kh, kw]` layout.
//!
//! Each input plane is copied once into a zeroed plane whose rows are `wₚ = max(W + pw, Wₒ)` long
//! (`ph` zero rows above, enough below, each row's data `pw` columns in): the `wₚ − W ≥ pw` zeros
//! between two rows' data serve as the right padding of one and the left padding of the next.
//! Output and output-gradient planes use the same row length, their columns `Wₒ..wₚ` being
//! padding. Then the tap `(ky, kx)` reads the input at the constant offset `ky·dh·wₚ + kx·dw` from
//! the output position: a strided matrix the GEMM reads in place.
//!
//! * forward: `Yₚ[o, :] += W[o, c, ky, kx] · Xₚ[c, offset + :]` over the taps, then cropped;
//! * input gradient: `∂Xₚ[c, offset + :] += W[o, c, ky, kx] · Gₚ[o, :]` over the taps (the padding
//!   columns of `Gₚ` are zero, so the wrap-around adds nothing), then cropped;
//! * weight gradient: `∂W[o, c, ky, kx] += Gₚ[o, :] · Xₚ[c, offset + :]` over the samples.
//!
//! The padded row length makes a tap's product longer than the output by `wₚ / Wₒ`: small for the
//! backbone's convolutions, ×1.75 for a dilation of 12 on a 16-wide map, where the caller may
//! prefer another method ([`Geometry::padding_overhead`]). A dilated kernel of which only the
//! centre tap reads the input (ASPP rates at or above the map's size) is a 1×1 convolution with
//! that tap's weights, and is computed as one.

use std::borrow::Cow;

use rayon::prelude::*;

use super::matmul::{
    fill_bias, for_each_column_block, for_each_sample, gemm_into, parallelism, Epilogue, Float,
    Operands, SharedDst,
};

/// A stride-1, ungrouped convolution's shapes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    /// Input `[N, C, H, W]`.
    pub x: [usize; 4],
    /// Output (gradient) `[N, O, Hₒ, Wₒ]`.
    pub out: [usize; 4],
    pub kernel: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl Geometry {
    /// The geometry of a stride-1 convolution of `x` (`[N, C, H, W]`) by a `[O, C, kh, kw]` weight,
    /// or `None` when the shapes do not describe one (then the caller leaves it to Burn).
    pub fn new(
        x: [usize; 4],
        [o, c, kh, kw]: [usize; 4],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Option<Self> {
        let [n, xc, h, w] = x;
        if xc != c || kh == 0 || kw == 0 || n == 0 || o == 0 || c == 0 {
            return None;
        }
        let span = |size: usize, pad: usize, k: usize, d: usize| {
            (size + 2 * pad).checked_sub((k - 1) * d).filter(|&s| s > 0)
        };
        let ho = span(h, padding[0], kh, dilation[0])?;
        let wo = span(w, padding[1], kw, dilation[1])?;
        Some(Self {
            x,
            out: [n, o, ho, wo],
            kernel: [kh, kw],
            padding,
            dilation,
        })
    }

    /// The tap whose weights make this a plain matrix product per sample, if it is one: a 1×1
    /// kernel without padding, or a kernel of which only one tap reads the input, unshifted.
    fn pointwise_tap(&self) -> Option<usize> {
        let [_, _, h, w] = self.x;
        let [kh, kw] = self.kernel;
        let [dh, dw] = self.dilation;
        if self.out[2..] != [h, w] {
            return None;
        }
        match self.taps()[..] {
            [(tap, _)]
                if (tap / kw) * dh == self.padding[0] && (tap % kw) * dw == self.padding[1] =>
            {
                debug_assert!(tap < kh * kw);
                Some(tap)
            }
            _ => None,
        }
    }

    /// Whether this is a plain matrix product per sample (see `pointwise_tap`).
    pub fn pointwise(&self) -> bool {
        self.pointwise_tap().is_some()
    }

    /// Pixels of a padded output plane, `Hₒ·wₚ`: the rows of each tap's product per sample.
    pub fn padded_pixels(&self) -> usize {
        self.out[2] * self.row()
    }

    /// Padded row length `wₚ`: at least `pw` zeros between two rows' data, and room for an
    /// output row.
    fn row(&self) -> usize {
        (self.x[3] + self.padding[1]).max(self.out[3])
    }

    /// Elements of a padded input plane: `ph` zero rows above, `ph` below, plus the rows the
    /// last tap's reads run past them ((kw − 1)·dw elements).
    fn plane(&self) -> usize {
        let wp = self.row();
        let extra = ((self.kernel[1] - 1) * self.dilation[1]).div_ceil(wp);
        (self.x[2] + 2 * self.padding[0] + extra) * wp
    }

    /// Length of an output row in a tap's product over its padded output length, `wₚ / Wₒ`.
    pub fn padding_overhead(&self) -> f64 {
        if self.pointwise_tap().is_some() {
            1.0
        } else {
            self.row() as f64 / self.out[3] as f64
        }
    }

    /// The multiply-adds of the products over those of the convolution, padding included:
    /// the padded-row overhead times the share of the taps that read the input.
    pub fn relative_work(&self) -> f64 {
        let taps = self.kernel[0] * self.kernel[1];
        self.padding_overhead() * self.taps().len() as f64 / taps as f64
    }

    /// The taps that read at least one input element, with their offsets into a padded plane.
    fn taps(&self) -> Vec<(usize, usize)> {
        let [_, _, h, w] = self.x;
        let [_, _, ho, wo] = self.out;
        let [kh, kw] = self.kernel;
        let [ph, pw] = self.padding;
        let [dh, dw] = self.dilation;
        let wp = self.row();
        let mut taps = Vec::with_capacity(kh * kw);
        for ky in 0..kh {
            for kx in 0..kw {
                if !reads_nothing(ho, h, ky * dh, ph) && !reads_nothing(wo, w, kx * dw, pw) {
                    taps.push((ky * kw + kx, ky * dh * wp + kx * dw));
                }
            }
        }
        taps
    }

    /// `y = epilogue(conv(x, weight) + bias)` into `out` (`[N, O, Hₒ, Wₒ]`, each output channel's planes holding its bias;
    /// the padded-row products overwrite it).
    pub fn forward<T: Float>(&self, operands: Operands<T>, epilogue: Epilogue<T>, out: &mut [T]) {
        let Operands { x, weight, bias } = operands;
        let [n, c, h, w] = self.x;
        let [_, o, ho, wo] = self.out;
        let taps = self.kernel[0] * self.kernel[1];
        let out_plane = o * ho * wo;
        if let Some(tap) = self.pointwise_tap() {
            let hw = h * w;
            let per_sample = |(sample, dst): (usize, &mut [T])| {
                let src = &x[sample * c * hw..][..c * hw];
                // SAFETY: dst is o × hw (row stride hw); the weight view (o, c) ↦ o·c·taps +
                // c·taps + tap stays inside o·c·taps; src is c × hw: all in bounds.
                unsafe {
                    gemm_into(
                        [o, hw, c],
                        (dst.as_mut_ptr(), hw, 1),
                        true,
                        (weight.as_ptr().add(tap), c * taps, taps),
                        (src.as_ptr(), hw, 1),
                        parallelism(n, o * hw * c),
                    )
                }
                epilogue.apply(sample, dst);
            };
            for_each_sample(out, out_plane, n, per_sample);
            return;
        }
        let (wp, plane) = (self.row(), self.plane());
        let xp = pad_rows(x, n * c, [h, w], plane, wp, self.padding);
        let k = ho * wp;
        let tap_list = self.taps();
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            let mut yp = vec![T::ZERO; o * k];
            fill_bias(&mut yp, k, bias);
            let src = &xp[sample * c * plane..][..c * plane];
            for &(tap, offset) in &tap_list {
                debug_assert!(offset + k <= plane);
                // SAFETY: yp is o × k; the weight view (o, c) ↦ o·c·taps + c·taps + tap stays
                // inside o·c·taps; the input view (c, kk) ↦ offset + c·plane + kk with
                // kk < k ≤ plane − offset stays inside c·plane.
                unsafe {
                    gemm_into(
                        [o, k, c],
                        (yp.as_mut_ptr(), k, 1),
                        true,
                        (weight.as_ptr().add(tap), c * taps, taps),
                        (src.as_ptr().add(offset), plane, 1),
                        parallelism(n, o * k * c),
                    )
                }
            }
            for (dst_row, src_row) in dst
                .chunks_exact_mut(wo)
                .zip(yp.chunks_exact(wp).map(|r| &r[..wo]).take(o * ho))
            {
                dst_row.copy_from_slice(src_row);
            }
            epilogue.apply(sample, dst);
        };
        for_each_sample(out, out_plane, n, per_sample);
    }

    /// `∂L/∂x` (`[N, C, H, W]`, any contents) from the output gradient `grad`.
    pub fn input_grad<T: Float>(&self, grad: &[T], weight: &[T], out: &mut [T]) {
        let [n, c, h, w] = self.x;
        let [_, o, ho, wo] = self.out;
        let taps = self.kernel[0] * self.kernel[1];
        let x_plane = c * h * w;
        if let Some(tap) = self.pointwise_tap() {
            let hw = h * w;
            let per_sample = |(sample, dst): (usize, &mut [T])| {
                let g = &grad[sample * o * hw..][..o * hw];
                // SAFETY: dst c × hw; weightᵀ (c, o) ↦ o·c·taps + c·taps + tap, inside
                // o·c·taps; g o × hw.
                unsafe {
                    gemm_into(
                        [c, hw, o],
                        (dst.as_mut_ptr(), hw, 1),
                        false,
                        (weight.as_ptr().add(tap), taps, c * taps),
                        (g.as_ptr(), hw, 1),
                        parallelism(n, o * hw * c),
                    )
                }
            };
            for_each_sample(out, x_plane, n, per_sample);
            return;
        }
        let (wp, plane) = (self.row(), self.plane());
        let k = ho * wp;
        let gp = pad_rows(grad, n * o, [ho, wo], k, wp, [0, 0]);
        let tap_list = self.taps();
        let [ph, pw] = self.padding;
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            let mut xp = vec![T::ZERO; c * plane];
            let g = &gp[sample * o * k..][..o * k];
            for &(tap, offset) in &tap_list {
                // SAFETY: the destination view (c, kk) ↦ offset + c·plane + kk stays inside
                // c·plane (as the forward's input view); weightᵀ (c, o) ↦ o·c·taps + c·taps +
                // tap inside o·c·taps; g is o × k.
                unsafe {
                    gemm_into(
                        [c, k, o],
                        (xp.as_mut_ptr().add(offset), plane, 1),
                        true,
                        (weight.as_ptr().add(tap), taps, c * taps),
                        (g.as_ptr(), k, 1),
                        parallelism(n, o * k * c),
                    )
                }
            }
            for (ci, dst_plane) in dst.chunks_exact_mut(h * w).enumerate() {
                let src = &xp[ci * plane..][..plane];
                for (r, dst_row) in dst_plane.chunks_exact_mut(w).enumerate() {
                    dst_row.copy_from_slice(&src[(r + ph) * wp + pw..][..w]);
                }
            }
        };
        for_each_sample(out, x_plane, n, per_sample);
    }

    /// `∂L/∂W` (`[O, C, kh, kw]`, zero-initialised) from the input and the output gradient.
    pub fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let [n, c, h, w] = self.x;
        let [_, o, ho, wo] = self.out;
        let taps = self.kernel[0] * self.kernel[1];
        if let Some(tap) = self.pointwise_tap() {
            let hw = h * w;
            let dst = SharedDst::new(out);
            let product = o * c * hw;
            for_each_column_block(c, product * n, product, |cols, parallelism| {
                for sample in 0..n {
                    let lhs = &grad[sample * o * hw..][..o * hw];
                    let rhs = &x[(sample * c + cols.start) * hw..][..cols.len() * hw];
                    // SAFETY: dst addresses out[oi·c·taps + ci·taps + tap] for ci in `cols`:
                    // inside `out`, and only this block's columns; lhs is o × hw, rhsᵀ (hw,
                    // ci) ↦ ci·hw + hw, inside the block's cols.len()·hw.
                    unsafe {
                        gemm_into(
                            [o, cols.len(), hw],
                            (dst.ptr().add(cols.start * taps + tap), c * taps, taps),
                            sample > 0,
                            (lhs.as_ptr(), hw, 1),
                            (rhs.as_ptr(), 1, hw),
                            parallelism,
                        )
                    }
                }
            });
            return;
        }
        let (wp, plane) = (self.row(), self.plane());
        let xp = pad_rows(x, n * c, [h, w], plane, wp, self.padding);
        // Output gradient with zero columns up to the padded row length.
        let k = ho * wp;
        let gp = pad_rows(grad, n * o, [ho, wo], k, wp, [0, 0]);
        let tap_list = self.taps();
        let dst = SharedDst::new(out);
        let product = o * c * k;
        let work = product * n * tap_list.len();
        for_each_column_block(c, work, product, |cols, parallelism| {
            for &(tap, offset) in &tap_list {
                for sample in 0..n {
                    let lhs = &gp[sample * o * k..][..o * k];
                    let rhs = &xp[sample * c * plane..][..c * plane];
                    debug_assert!(offset + k <= plane);
                    // SAFETY: dst addresses out[oi·c·taps + ci·taps + tap] for oi < o, ci in
                    // `cols`: inside `out` (o·c·taps elements), and only this block's columns.
                    // lhs reads lhs[oi·k + kk], kk < k: inside. rhs reads rhs[offset +
                    // ci·plane + kk] ≤ offset + k − 1 + (c − 1)·plane < c·plane, since
                    // offset + k ≤ plane.
                    unsafe {
                        gemm_into(
                            [o, cols.len(), k],
                            (dst.ptr().add(cols.start * taps + tap), c * taps, taps),
                            sample > 0,
                            (lhs.as_ptr(), k, 1),
                            (rhs.as_ptr().add(offset + cols.start * plane), 1, plane),
                            parallelism,
                        )
                    }
                }
            }
        });
    }
}

/// Whether no output index `i < out` reads an input index `i + offset − pad` inside `0..size`.
fn reads_nothing(out: usize, size: usize, offset: usize, pad: usize) -> bool {
    offset + out <= pad || offset >= size + pad
}

/// `planes` row-major `[h, w]` planes copied into zeroed planes of `plane` elements with rows of
/// `row` elements, starting at row `top` and column `left`; borrowed when nothing moves.
fn pad_rows<T: Float>(
    src: &[T],
    planes: usize,
    [h, w]: [usize; 2],
    plane: usize,
    row: usize,
    [top, left]: [usize; 2],
) -> Cow<'_, [T]> {
    if plane == h * w && row == w {
        return Cow::Borrowed(src);
    }
    let mut out = vec![T::ZERO; planes * plane];
    out.par_chunks_exact_mut(plane)
        .zip(src.par_chunks_exact(h * w))
        .for_each(|(dst, src)| {
            for (r, src_row) in src.chunks_exact(w).enumerate() {
                dst[(r + top) * row + left..][..w].copy_from_slice(src_row);
            }
        });
    Cow::Owned(out)
}
