//! A convolution as im2col blocked along K: for each sample, the input patches of a block of
//! input channels are copied into a `[Cb·kh·kw, Hₒ·Wₒ]` column matrix, which the weight — read
//! in its own `[O, C·kh·kw]` layout, the block's columns — multiplies into the output in place.
//! The block is sized to keep the column matrix within a few MB whatever the input, and the
//! weights are never re-laid out. The weight gradient multiplies the output gradient by the same
//! column blocks; the input gradient computes the column-matrix gradient block by block and adds
//! it back onto the input positions (col2im, one block of channels at a time, per sample in
//! parallel).
//!
//! For any stride, padding and dilation; used where the per-tap products ([`super::taps`]) do
//! not apply (strides above 1 with a kernel above 1×1: the 7×7 stem, ResNet's strided 3×3) or
//! would waste more than the copy costs (wide paddings on small maps: the ASPP's rate 12 at
//! 16×16).

use std::ops::Range;

use rayon::prelude::*;

use super::matmul::{
    for_each_column_block, for_each_sample, gemm_into, parallelism, Epilogue, Float, Operands,
    SharedDst,
};

/// Elements of one sample's column-matrix block (4 MB of f32).
const BLOCK_ELEMENTS: usize = 1 << 20;

/// The forward pass runs over tiles of whole output rows whose output holds at most this many
/// elements (512 KB of f32; small in the unit tests, so that their maps run in several tiles):
/// each block of input channels then adds onto a tile still in cache rather than onto the
/// whole output plane again (the stem's 7×7 on 3 channels: three products 49 deep, each
/// reading and writing the 16 MB plane of a 512×512 input).
const TILE_ELEMENTS: usize = if cfg!(test) { 1 << 8 } else { 1 << 17 };

/// An ungrouped convolution's shapes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Im2col {
    /// Input `[N, C, H, W]`.
    x: [usize; 4],
    /// Output `[N, O, Hₒ, Wₒ]`.
    out: [usize; 4],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
}

impl Im2col {
    /// The geometry of a convolution of `x` by a `[O, C, kh, kw]` weight, or `None` when the
    /// shapes do not describe one.
    pub fn new(
        x: [usize; 4],
        [o, c, kh, kw]: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
    ) -> Option<Self> {
        let [n, xc, h, w] = x;
        if xc != c || [n, o, c, kh, kw, stride[0], stride[1]].contains(&0) {
            return None;
        }
        let span = |i: usize, size: usize, k: usize| {
            (size + 2 * padding[i])
                .checked_sub((k - 1) * dilation[i] + 1)
                .map(|s| s / stride[i] + 1)
        };
        Some(Self {
            x,
            out: [n, o, span(0, h, kh)?, span(1, w, kw)?],
            kernel: [kh, kw],
            stride,
            padding,
            dilation,
        })
    }

    /// The output shape.
    pub fn out(&self) -> [usize; 4] {
        self.out
    }

    /// The input shape.
    pub fn x(&self) -> [usize; 4] {
        self.x
    }

    /// The kernel's `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// `[stride, padding, dilation]`.
    pub fn options(&self) -> [[usize; 2]; 3] {
        [self.stride, self.padding, self.dilation]
    }

    /// Kernel taps, `kh·kw`.
    pub fn taps(&self) -> usize {
        self.kernel[0] * self.kernel[1]
    }

    /// For each output pixel (row-major), the index in an input plane that kernel tap `tap`
    /// reads there, `None` where it reads padding.
    pub fn sources(&self, tap: usize) -> Vec<Option<usize>> {
        let ([w, wo], sw) = ([self.x[3], self.out[3]], self.stride[1]);
        let (rows, cols, start) = self.reads(tap);
        rows.flat_map(|iy| {
            let cols = cols.clone();
            (0..wo).map(move |j| {
                let iy = iy.filter(|_| cols.contains(&j))?;
                Some(iy * w + start + (j - cols.start) * sw)
            })
        })
        .collect()
    }

    /// `y = epilogue(conv(x, weight) + bias)` into `out` (`[N, O, Hₒ, Wₒ]`, each output channel's planes holding its bias): per
    /// sample and tile of output rows (see [`TILE_ELEMENTS`]), per block of input channels, the
    /// block's column matrix multiplied into the tile.
    pub fn forward<T: Float>(&self, operands: Operands<T>, epilogue: Epilogue<T>, out: &mut [T]) {
        let Operands { x, weight, .. } = operands;
        let (n, c, hw, o, taps, pixels, _) = self.sizes();
        let wo = self.out[3];
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            let src = &x[sample * c * hw..][..c * hw];
            let mut col = Vec::new();
            for rows in self.tiles() {
                let tile = rows.len() * wo;
                for (c0, channels) in self.blocks() {
                    col.resize(channels * taps * tile, T::ZERO);
                    for (row, dst_row) in col.chunks_exact_mut(tile).enumerate() {
                        let (ci, tap) = (c0 + row / taps, row % taps);
                        self.patch_rows(&src[ci * hw..][..hw], tap, rows.clone(), dst_row);
                    }
                    // SAFETY: the destination view (oi, p) ↦ oi·pixels + rows.start·wo + p
                    // with p < tile stays inside dst (o × pixels); the weight view (o, k) ↦
                    // o·c·taps + c0·taps + k with k < channels·taps stays inside o·c·taps; col
                    // is (channels·taps) × tile.
                    unsafe {
                        gemm_into(
                            [o, tile, channels * taps],
                            (dst.as_mut_ptr().add(rows.start * wo), pixels, 1),
                            true,
                            (weight.as_ptr().add(c0 * taps), c * taps, 1),
                            (col.as_ptr(), tile, 1),
                            parallelism(n, o * tile * channels * taps),
                        )
                    }
                }
            }
            epilogue.apply(sample, dst);
        };
        for_each_sample(out, o * pixels, n, per_sample);
    }

    /// `∂L/∂x` (`[N, C, H, W]`, any contents) from the output gradient: per block of input
    /// channels, the column-matrix gradient `Wᵀ·G` added back onto the input positions each
    /// column read.
    pub fn input_grad<T: Float>(&self, grad: &[T], weight: &[T], out: &mut [T]) {
        let (n, c, hw, o, taps, pixels, block) = self.sizes();
        let per_sample = |(sample, dst): (usize, &mut [T])| {
            dst.fill(T::ZERO);
            let g = &grad[sample * o * pixels..][..o * pixels];
            let mut col = vec![T::ZERO; block * taps * pixels];
            for (c0, channels) in self.blocks() {
                let col = &mut col[..channels * taps * pixels];
                // SAFETY: col is (channels·taps) × pixels; the transposed weight view (k, o) ↦
                // c0·taps + k + o·c·taps with k < channels·taps stays inside o·c·taps; g is
                // o × pixels.
                unsafe {
                    gemm_into(
                        [channels * taps, pixels, o],
                        (col.as_mut_ptr(), pixels, 1),
                        false,
                        (weight.as_ptr().add(c0 * taps), 1, c * taps),
                        (g.as_ptr(), pixels, 1),
                        parallelism(n, o * pixels * channels * taps),
                    )
                }
                for (row, col_row) in col.chunks_exact(pixels).enumerate() {
                    let (ci, tap) = (c0 + row / taps, row % taps);
                    self.add_patch_row(col_row, tap, &mut dst[ci * hw..][..hw]);
                }
            }
        };
        for_each_sample(out, c * hw, n, per_sample);
    }

    /// `∂L/∂W` (`[O, C, kh, kw]`, any contents) from the input and the output gradient: per
    /// sample and block of input channels, `G·colᵀ` into the block's weight columns.
    pub fn weight_grad<T: Float>(&self, x: &[T], grad: &[T], out: &mut [T]) {
        let (n, c, hw, o, taps, pixels, block) = self.sizes();
        let mut col = vec![T::ZERO; block * taps * pixels];
        for sample in 0..n {
            let src = &x[sample * c * hw..][..c * hw];
            let g = &grad[sample * o * pixels..][..o * pixels];
            for (c0, channels) in self.blocks() {
                let col = &mut col[..channels * taps * pixels];
                col.par_chunks_exact_mut(pixels)
                    .enumerate()
                    .for_each(|(row, dst_row)| {
                        let (ci, tap) = (c0 + row / taps, row % taps);
                        self.patch_row(&src[ci * hw..][..hw], tap, dst_row);
                    });
                let (dst, cols) = (SharedDst::new(out), channels * taps);
                let product = o * pixels * cols;
                for_each_column_block(cols, product, product, |block, parallelism| {
                    // SAFETY: dst addresses out[oi·c·taps + c0·taps + k] for k in `block`
                    // (within channels·taps): inside `out`, and only this block's columns; g
                    // is o × pixels; the transposed col view (p, k) ↦ k·pixels + p stays
                    // inside col.
                    unsafe {
                        gemm_into(
                            [o, block.len(), pixels],
                            (dst.ptr().add(c0 * taps + block.start), c * taps, 1),
                            sample > 0,
                            (g.as_ptr(), pixels, 1),
                            (col.as_ptr().add(block.start * pixels), 1, pixels),
                            parallelism,
                        )
                    }
                });
            }
        }
    }

    /// `(batch, input channels, input plane, output channels, kernel taps, output plane,
    /// channels per block)`.
    fn sizes(&self) -> (usize, usize, usize, usize, usize, usize, usize) {
        let [n, c, h, w] = self.x;
        let [_, o, ho, wo] = self.out;
        let taps = self.kernel[0] * self.kernel[1];
        (n, c, h * w, o, taps, ho * wo, self.block())
    }

    /// The blocks of input channels: `(first channel, channels)`.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> {
        let (c, block) = (self.x[1], self.block());
        (0..c).step_by(block).map(move |c0| (c0, block.min(c - c0)))
    }

    /// The forward pass's tiles of output rows.
    fn tiles(&self) -> impl Iterator<Item = Range<usize>> {
        let [_, o, ho, wo] = self.out;
        let size = (TILE_ELEMENTS / (o * wo)).clamp(1, ho);
        (0..ho).step_by(size).map(move |r0| r0..(r0 + size).min(ho))
    }

    /// Input channels per column-matrix block.
    fn block(&self) -> usize {
        let taps = self.kernel[0] * self.kernel[1];
        (BLOCK_ELEMENTS / (taps * self.out[2] * self.out[3])).clamp(1, self.x[1])
    }

    /// The adjoint of [`Im2col::patch_row`]: each value of the column-matrix row `row` added to
    /// the input position of `plane` it was read from.
    fn add_patch_row<T: Float>(&self, row: &[T], tap: usize, plane: &mut [T]) {
        let ([w, wo], sw) = ([self.x[3], self.out[3]], self.stride[1]);
        let (rows, cols, start) = self.reads(tap);
        for (iy, values) in rows.zip(row.chunks_exact(wo)) {
            let Some(iy) = iy else { continue };
            let in_row = &mut plane[iy * w..][..w];
            for (&v, ix) in values[cols.clone()].iter().zip((start..).step_by(sw)) {
                in_row[ix] = in_row[ix] + v;
            }
        }
    }

    /// What kernel tap `tap` reads: for each output row, the input row (`None` where it reads
    /// the padding); the output columns that read inside the input; the input column the first
    /// of those reads (the next ones every `sw`-th after it).
    fn reads(&self, tap: usize) -> (impl Iterator<Item = Option<usize>>, Range<usize>, usize) {
        let [_, _, h, w] = self.x;
        let [_, _, ho, wo] = self.out;
        let [sh, sw] = self.stride;
        let (ky, kx) = (tap / self.kernel[1], tap % self.kernel[1]);
        let row_offset = (ky * self.dilation[0]) as isize - self.padding[0] as isize;
        let col_offset = (kx * self.dilation[1]) as isize - self.padding[1] as isize;
        let rows = (0..ho).map(move |i| {
            let iy = (i * sh) as isize + row_offset;
            (0..h as isize).contains(&iy).then_some(iy as usize)
        });
        // Output columns j whose input column j·sw + col_offset lies inside 0..w.
        let first = first_inside(col_offset, sw).min(wo);
        let last = first_inside(col_offset - w as isize, sw).clamp(first, wo);
        let start = if first < last {
            ((first * sw) as isize + col_offset) as usize
        } else {
            0
        };
        (rows, first..last, start)
    }

    /// One row of the column matrix: what kernel tap `tap` reads from the input plane `plane`
    /// at every output position (zero where it reads padding).
    fn patch_row<T: Float>(&self, plane: &[T], tap: usize, dst: &mut [T]) {
        self.patch_rows(plane, tap, 0..self.out[2], dst);
    }

    /// [`Im2col::patch_row`] over the output rows `rows` only.
    fn patch_rows<T: Float>(&self, plane: &[T], tap: usize, rows: Range<usize>, dst: &mut [T]) {
        let ([w, wo], sw) = ([self.x[3], self.out[3]], self.stride[1]);
        let (input_rows, cols, start) = self.reads(tap);
        let input_rows = input_rows.skip(rows.start).take(rows.len());
        for (iy, out_row) in input_rows.zip(dst.chunks_exact_mut(wo)) {
            let Some(iy) = iy else {
                out_row.fill(T::ZERO);
                continue;
            };
            let in_row = &plane[iy * w..][..w];
            out_row[..cols.start].fill(T::ZERO);
            out_row[cols.end..].fill(T::ZERO);
            let out_cols = &mut out_row[cols.clone()];
            if sw == 1 {
                out_cols.copy_from_slice(&in_row[start..][..out_cols.len()]);
            } else {
                for (v, ix) in out_cols.iter_mut().zip((start..).step_by(sw)) {
                    *v = in_row[ix];
                }
            }
        }
    }
}

/// The smallest `j ≥ 0` with `j·stride + offset ≥ 0`.
fn first_inside(offset: isize, stride: usize) -> usize {
    if offset >= 0 {
        0
    } else {
        ((-offset) as usize).div_ceil(stride)
    }
}
