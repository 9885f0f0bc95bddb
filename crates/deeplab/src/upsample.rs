//! Bilinear resizing with PyTorch's `F.interpolate` rules, `align_corners = false` (torchvision's
//! DeepLabV3) or `true` (segmentation_models_pytorch's DeepLabV3+ decoder), written as two matrix
//! products, `Y = A_h · X · A_wᵀ`.
//!
//! Burn 0.21's own bilinear `interpolate` has no backward pass on CUDA (nor on NdArray); matmul
//! differentiates on every backend, so training works everywhere. The forward equals
//! `interpolate(.., Bilinear, align_corners = false)` and the gradient its bilinear backward
//! (both checked in `tests/upsample.rs`).
//!
//! The free functions build the matrices for each call; the models keep theirs in a
//! [`MatrixCache`] they own, so a training step uploads nothing.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{Arc, Mutex};

use burn::prelude::*;
use burn::tensor::backend::{DeviceId, DeviceOps};
use burn::tensor::DType;

/// Interpolation matrices kept on their device for the model that owns this cache (clones of the
/// model share it), so that a training step uploads nothing. Entries are told apart by backend,
/// device id, dtype, sizes and corner rule; not part of the model's records.
#[derive(Clone, Default)]
pub struct MatrixCache {
    entries: Arc<Mutex<Vec<CachedMatrix>>>,
}

struct CachedMatrix {
    key: MatrixKey,
    /// A `Tensor<B, 2>` of the backend named in the key.
    matrix: Box<dyn Any + Send + Sync>,
}

/// (backend, device, dtype, axis).
type MatrixKey = (TypeId, DeviceId, DType, Axis);

/// One axis of a resize: input size, output size, corner rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Axis {
    from: usize,
    to: usize,
    corners: Corners,
}

/// At most this many cached matrices (sliding windows over many image sizes create new ones).
const MAX_CACHED: usize = 64;

impl fmt::Debug for MatrixCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cached = self.entries.lock().map_or(0, |entries| entries.len());
        write!(f, "MatrixCache({cached} matrices)")
    }
}

impl MatrixCache {
    /// [`resize_bilinear_with`], with the interpolation matrices from this cache.
    pub fn resize<B: Backend>(
        &self,
        x: Tensor<B, 4>,
        size: [usize; 2],
        corners: Corners,
    ) -> Tensor<B, 4> {
        resize_with_matrices(x, size, corners, |axis, dtype, device| {
            self.matrix(axis, dtype, device)
        })
    }

    /// The `[to, from]` matrix of `axis` on `device`, built on first use.
    fn matrix<B: Backend>(&self, axis: Axis, dtype: DType, device: &B::Device) -> Tensor<B, 2> {
        let key = (TypeId::of::<B>(), device.id(), dtype, axis);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let cached = entries
            .iter()
            .find(|entry| entry.key == key)
            .and_then(|entry| entry.matrix.downcast_ref::<Tensor<B, 2>>());
        if let Some(m) = cached {
            return m.clone();
        }
        let m = matrix::<B>(axis, dtype, device);
        if entries.len() >= MAX_CACHED {
            entries.clear();
        }
        entries.push(CachedMatrix {
            key,
            matrix: Box::new(m.clone()),
        });
        m
    }
}

/// The `[to, from]` interpolation matrix of `axis` on `device`.
fn matrix<B: Backend>(axis: Axis, dtype: DType, device: &B::Device) -> Tensor<B, 2> {
    let Axis { from, to, corners } = axis;
    let data = TensorData::new(bilinear_matrix(from, to, corners), [to, from]);
    Tensor::from_data(data.convert_dtype(dtype), device)
}

/// Where the sample grid's corners sit: PyTorch's `align_corners` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    resize_with_matrices(x, size, corners, matrix)
}

/// `Y = A_h · X · A_wᵀ` with `matrix(axis, dtype, device)` giving each axis's matrix.
fn resize_with_matrices<B: Backend>(
    x: Tensor<B, 4>,
    size: [usize; 2],
    corners: Corners,
    matrix: impl Fn(Axis, DType, &B::Device) -> Tensor<B, 2>,
) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let [ho, wo] = size;
    if [h, w] == size {
        return x;
    }
    let (device, dtype) = (x.device(), x.dtype());
    let axis = |from, to| Axis { from, to, corners };
    let a_h = matrix(axis(h, ho), dtype, &device);
    let a_w = matrix(axis(w, wo), dtype, &device);
    // Width: [N·C·H, W] × [W, Wo].
    let y = x.reshape([n * c * h, w]).matmul(a_w.transpose());
    // Height: [N·C, Ho, H] × [N·C, H, Wo].
    let y = a_h
        .unsqueeze::<3>()
        .expand([n * c, ho, h])
        .matmul(y.reshape([n * c, h, wo]));
    y.reshape([n, c, ho, wo])
}
