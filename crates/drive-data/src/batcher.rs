//! Items → tensors: images `[B, 3, H, W]` (f32, normalised), targets `[B, H, W]` (class ids),
//! FOV `[B, H, W]` (bool).

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use crate::dataset::SegItem;

/// A batch on the device.
#[derive(Debug, Clone)]
pub struct SegBatch<B: Backend> {
    /// Normalised images, `[N, 3, H, W]`.
    pub images: Tensor<B, 4>,
    /// 0 background, 1 vessel.
    pub targets: Tensor<B, 3, Int>,
    /// True inside the field of view.
    pub fov: Tensor<B, 3, Bool>,
    /// The samples' DRIVE ids, in batch order.
    pub ids: Vec<u32>,
}

/// Stacks [`SegItem`]s (all of one size) into a [`SegBatch`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SegBatcher;

impl<B: Backend> Batcher<B, SegItem, SegBatch<B>> for SegBatcher {
    fn batch(&self, items: Vec<SegItem>, device: &B::Device) -> SegBatch<B> {
        let n = items.len();
        let [h, w] = items.first().map(|i| i.size).unwrap_or([0, 0]);
        assert!(
            items.iter().all(|i| i.size == [h, w]),
            "all items of a batch must have one size; use one Transform per loader"
        );
        let mut images = Vec::with_capacity(n * 3 * h * w);
        let mut targets = Vec::with_capacity(n * h * w);
        let mut fov = Vec::with_capacity(n * h * w);
        let mut ids = Vec::with_capacity(n);
        for item in items {
            images.extend_from_slice(&item.image);
            targets.extend(item.vessels.iter().map(|&v| v as i32));
            fov.extend(item.fov.iter().map(|&v| v != 0));
            ids.push(item.id);
        }
        SegBatch {
            images: Tensor::from_data(TensorData::new(images, [n, 3, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, h, w]), device),
            fov: Tensor::from_data(TensorData::new(fov, [n, h, w]), device),
            ids,
        }
    }
}
