//! Bilinear resizing with PyTorch's `F.interpolate` rules, `align_corners = false` (torchvision's
//! DeepLabV3) or `true` (segmentation_models_pytorch's DeepLabV3+ decoder), written as two matrix
//! products, `Y = A_h · X · A_wᵀ`.
//!
//! Burn 0.21's own bilinear `interpolate` has no backward pass on CUDA (nor on NdArray); matmul
//! differentiates on every backend, so training works everywhere. The forward equals
//! `interpolate(.., Bilinear, align_corners = false)` and the gradient its bilinear backward
//! (both checked in `tests/upsample.rs`).
//!
//! The matrices are built once per (backend, device, dtype, input size, output size) and kept on
//! the device, so a training step uploads nothing.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use burn::prelude::*;
use burn::tensor::DType;

/// Cached interpolation matrices: (backend, device, dtype, in, out, align_corners) → `Tensor<B, 2>`.
type MatrixKey = (TypeId, String, DType, usize, usize, bool);
static MATRICES: LazyLock<Mutex<HashMap<MatrixKey, Box<dyn Any + Send + Sync>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// At most this many cached matrices (sliding windows over many image sizes create new ones).
const MAX_CACHED: usize = 256;

/// The `[out_size, in_size]` interpolation matrix on `device`, from the cache when possible.
fn matrix<B: Backend>(
    in_size: usize,
    out_size: usize,
    corners: Corners,
    dtype: DType,
    device: &B::Device,
) -> Tensor<B, 2> {
    let key = (
        TypeId::of::<B>(),
        format!("{device:?}"),
        dtype,
        in_size,
        out_size,
        corners == Corners::Aligned,
    );
    let mut cache = MATRICES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = cache
        .get(&key)
        .and_then(|m| m.downcast_ref::<Tensor<B, 2>>())
    {
        return m.clone();
    }
    let data = TensorData::new(
        bilinear_matrix(in_size, out_size, corners),
        [out_size, in_size],
    );
    let m = Tensor::<B, 2>::from_data(data.convert_dtype(dtype), device);
    if cache.len() >= MAX_CACHED {
        cache.clear();
    }
    cache.insert(key, Box::new(m.clone()));
    m
}

/// Where the sample grid's corners sit: PyTorch's `align_corners` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corners {
    /// `align_corners = false` (PyTorch's default, torchvision's DeepLabV3): pixel centres at
    /// half-integers, output pixel `o` samples `max(0, (o + ½)·in/out − ½)`.
    HalfPixel,
    /// `align_corners = true` (segmentation_models_pytorch's `nn.Upsample` in DeepLabV3+): the
    /// corner pixels of input and output coincide, output pixel `o` samples `o·(in − 1)/(out − 1)`.
    Aligned,
}

/// The `[out_size, in_size]` interpolation matrix (row-major) for one axis: each output index
/// samples its source coordinate (see [`Corners`]) linearly between its two neighbours.
pub fn bilinear_matrix(in_size: usize, out_size: usize, corners: Corners) -> Vec<f64> {
    let mut m = vec![0f64; out_size * in_size];
    for o in 0..out_size {
        let src = match corners {
            Corners::HalfPixel => {
                ((o as f64 + 0.5) * (in_size as f64 / out_size as f64) - 0.5).max(0.0)
            }
            Corners::Aligned if out_size > 1 => {
                o as f64 * (in_size - 1) as f64 / (out_size - 1) as f64
            }
            Corners::Aligned => 0.0,
        };
        let i0 = (src.floor() as usize).min(in_size - 1);
        let i1 = (i0 + 1).min(in_size - 1);
        let t = src - i0 as f64;
        m[o * in_size + i0] += 1.0 - t;
        m[o * in_size + i1] += t;
    }
    m
}

/// Bilinear resize of `[N, C, H, W]` to `[N, C, size[0], size[1]]` with `align_corners = false`
/// (torchvision's DeepLabV3), differentiable on every backend.
///
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// let x = Tensor::<Flex, 4>::ones([1, 2, 8, 8], &Default::default());
/// let y = deeplab::upsample::resize_bilinear(x, [64, 40]);
/// assert_eq!(y.dims(), [1, 2, 64, 40]);
/// ```
pub fn resize_bilinear<B: Backend>(x: Tensor<B, 4>, size: [usize; 2]) -> Tensor<B, 4> {
    resize_bilinear_with(x, size, Corners::HalfPixel)
}

/// Bilinear resize of `[N, C, H, W]` to `[N, C, size[0], size[1]]` with either corner rule,
/// differentiable on every backend.
///
/// ```
/// use burn::backend::Flex;
/// use burn::prelude::*;
/// use deeplab::upsample::{resize_bilinear_with, Corners};
/// let x = Tensor::<Flex, 4>::from_data([[[[0.0f32, 3.0]]]], &Default::default());
/// // align_corners = true keeps both end values: 0, 1, 2, 3.
/// let y = resize_bilinear_with(x, [1, 4], Corners::Aligned);
/// assert_eq!(y.into_data().to_vec::<f32>().unwrap(), [0.0, 1.0, 2.0, 3.0]);
/// ```
pub fn resize_bilinear_with<B: Backend>(
    x: Tensor<B, 4>,
    size: [usize; 2],
    corners: Corners,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [ho, wo] = size;
    if [h, w] == size {
        return x;
    }
    let (device, dtype) = (x.device(), x.dtype());
    let a_h = matrix::<B>(h, ho, corners, dtype, &device);
    let a_w = matrix::<B>(w, wo, corners, dtype, &device);
    // Width: [N·C·H, W] × [W, Wo].
    let y = x.reshape([n * c * h, w]).matmul(a_w.transpose());
    // Height: [N·C, Ho, H] × [N·C, H, Wo].
    let y = a_h
        .unsqueeze::<3>()
        .expand([n * c, ho, h])
        .matmul(y.reshape([n * c, h, wo]));
    y.reshape([n, c, ho, wo])
}
