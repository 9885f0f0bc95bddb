//! The matrix product the convolutions here are made of (`gemm`, the crate Flex itself uses)
//! and how the samples of a batch share the threads.

use rayon::prelude::*;

/// The element types the GEMM handles here.
pub(super) trait Float:
    Copy
    + Send
    + Sync
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
}

impl Float for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Float for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// Matrix products below this many multiply-adds run on one thread (as Flex's own matmul).
pub(super) const PARALLEL_WORK: usize = 192 * 192 * 192;

/// `dst = (read_dst ? dst : 0) + lhs · rhs` for `[m, n, k]`; each matrix given as
/// `(pointer, row stride, column stride)`.
///
/// # Safety
/// Every address `ptr + i·rs + j·cs` of the three matrices' elements must be valid (dst for
/// writes), and dst must not overlap lhs or rhs.
pub(super) unsafe fn gemm_into<T: Float>(
    [m, n, k]: [usize; 3],
    (dst, dst_rs, dst_cs): (*mut T, usize, usize),
    read_dst: bool,
    (lhs, lhs_rs, lhs_cs): (*const T, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const T, usize, usize),
    parallelism: gemm::Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs as isize,
        dst_rs as isize,
        read_dst,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        T::ONE,
        T::ONE,
        false,
        false,
        false,
        parallelism,
    );
}

/// Threads inside one product: none when the samples run in parallel (batch ≥ 2) or the product
/// is small, else all of them.
pub(super) fn parallelism(samples: usize, work: usize) -> gemm::Parallelism {
    if samples >= 2 || work < PARALLEL_WORK {
        gemm::Parallelism::None
    } else {
        gemm::Parallelism::Rayon(0)
    }
}

/// A weight gradient shared between threads below this many multiply-adds (all its products
/// together) runs on one.
const SPLIT_WORK: usize = 1 << 20;

/// Fewest output columns a thread takes when a weight gradient is split between threads.
const MIN_SPLIT_COLUMNS: usize = 16;

/// A pointer to a matrix that several threads write, each in its own columns.
pub(super) struct SharedDst<T>(*mut T);

// SAFETY: the threads given a `SharedDst` write disjoint elements (their own columns).
unsafe impl<T: Send> Send for SharedDst<T> {}
unsafe impl<T: Send> Sync for SharedDst<T> {}

impl<T> SharedDst<T> {
    pub(super) fn new(dst: &mut [T]) -> Self {
        Self(dst.as_mut_ptr())
    }

    pub(super) fn ptr(&self) -> *mut T {
        self.0
    }
}

/// Runs `f(columns, parallelism)` over the output columns `0..cols` of a weight gradient that
/// takes `work` multiply-adds in all, each of its products `product` of them: split into one
/// contiguous block of columns per thread, in parallel, when the gradient is large enough to
/// share (each product then on one thread) — the products accumulate over the batch, so its
/// samples cannot run in parallel as the forward pass's do; otherwise all columns at once,
/// each product on all threads when it is large ([`PARALLEL_WORK`]).
pub(super) fn for_each_column_block(
    cols: usize,
    work: usize,
    product: usize,
    f: impl Fn(std::ops::Range<usize>, gemm::Parallelism) + Send + Sync,
) {
    let threads = rayon::current_num_threads();
    let blocks = if work < SPLIT_WORK {
        1
    } else {
        threads.min(cols / MIN_SPLIT_COLUMNS)
    };
    if blocks <= 1 {
        return f(0..cols, parallelism(1, product));
    }
    let size = cols.div_ceil(blocks);
    (0..blocks).into_par_iter().for_each(|b| {
        let columns = b * size..((b + 1) * size).min(cols);
        if !columns.is_empty() {
            f(columns, gemm::Parallelism::None);
        }
    });
}

/// Runs `f(sample, out_plane)` over the `n` planes of `plane` elements of `out`, in parallel
/// when there are several.
pub(super) fn for_each_sample<T: Float>(
    out: &mut [T],
    plane: usize,
    n: usize,
    f: impl Fn((usize, &mut [T])) + Send + Sync,
) {
    let out = &mut out[..n * plane];
    if n >= 2 {
        out.par_chunks_exact_mut(plane).enumerate().for_each(f);
    } else {
        out.chunks_exact_mut(plane).enumerate().for_each(f);
    }
}

/// Each row of `len` elements of `dst` set to its channel's bias (rows in channel order), or
/// zero without bias.
pub(super) fn fill_bias<T: Float>(dst: &mut [T], len: usize, bias: Option<&[T]>) {
    match bias {
        Some(b) => {
            for (row, &bi) in dst.chunks_exact_mut(len).zip(b) {
                row.fill(bi);
            }
        }
        None => dst.fill(T::ZERO),
    }
}

/// A convolution's operands, contiguous: input `[N, C, H, W]`, weight `[O, C, kh, kw]`, bias `[O]`.
#[derive(Clone, Copy)]
pub(super) struct Operands<'a, T> {
    pub x: &'a [T],
    pub weight: &'a [T],
    pub bias: Option<&'a [T]>,
}

/// What is applied to each output plane right after its product, while it is in cache: the
/// residual added, then ReLU (the bottleneck's last convolution after BatchNorm folding does
/// both; the others ReLU alone).
#[derive(Clone, Copy)]
pub(super) struct Epilogue<'a, T> {
    /// `[N, O, Hₒ, Wₒ]`, contiguous.
    pub residual: Option<&'a [T]>,
    pub relu: bool,
}

impl<T: Float> Epilogue<'_, T> {
    /// Applies it to sample `sample`'s output plane `dst`.
    pub fn apply(&self, sample: usize, dst: &mut [T]) {
        if let Some(residual) = self.residual {
            let residual = &residual[sample * dst.len()..][..dst.len()];
            for (d, &r) in dst.iter_mut().zip(residual) {
                *d = *d + r;
            }
        }
        if self.relu {
            for d in dst.iter_mut() {
                // A select, not a branch (the signs are random: a branch mispredicts half the
                // time) and not `max` (NaN stays NaN, as in PyTorch).
                *d = if *d < T::ZERO { T::ZERO } else { *d };
            }
        }
    }
}
