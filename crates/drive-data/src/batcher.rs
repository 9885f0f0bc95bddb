//! Items → tensors: images `[B, 3, H, W]` (f32, normalised), targets `[B, H, W]` (class ids),
//! FOV `[B, H, W]` (bool), and on request the targets' tubed skeletons `[B, H, W]` (0/1, for the
//! Skeleton Recall loss).

use burn::data::dataloader::batcher::Batcher;
use burn::prelude::*;

use crate::dataset::SegItem;
use crate::skeleton;

/// A batch on the device.
#[derive(Debug, Clone)]
pub struct SegBatch<B: Backend> {
    /// Normalised images, `[N, 3, H, W]`.
    pub images: Tensor<B, 4>,
    /// 0 background, 1 vessel.
    pub targets: Tensor<B, 3, Int>,
    /// True inside the field of view.
    pub fov: Tensor<B, 3, Bool>,
    /// The targets' tubed skeletons ([`skeleton::tube`]) as 0/1, `[N, H, W]`, when the batcher
    /// was asked for them ([`SegBatcher::with_skeletons`]).
    pub skeletons: Option<Tensor<B, 3>>,
    /// The samples' DRIVE ids, in batch order.
    pub ids: Vec<u32>,
}

/// Stacks [`SegItem`]s (all of one size) into a [`SegBatch`].
///
/// ```
/// use burn::backend::Flex;
/// use burn::data::dataloader::batcher::Batcher;
/// use drive_data::{SegBatch, SegBatcher, SegItem};
///
/// let item = SegItem {
///     id: 1,
///     image: vec![0.0; 3 * 4 * 5],
///     vessels: vec![0; 20],
///     fov: vec![1; 20],
///     size: [4, 5],
/// };
/// let batch: SegBatch<Flex> = SegBatcher::default().batch(vec![item.clone()], &Default::default());
/// assert_eq!(batch.images.dims(), [1, 3, 4, 5]);
/// assert!(batch.skeletons.is_none());
/// let batch: SegBatch<Flex> = SegBatcher::with_skeletons().batch(vec![item], &Default::default());
/// assert_eq!(batch.skeletons.map(|s| s.dims()), Some([1, 4, 5]));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct SegBatcher {
    skeletons: bool,
}

impl SegBatcher {
    /// A batcher that also computes each item's tubed skeleton (on the loader's worker threads).
    pub fn with_skeletons() -> Self {
        Self { skeletons: true }
    }

    /// Whether the batches carry skeletons.
    pub fn skeletons(&self) -> bool {
        self.skeletons
    }
}

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
        let mut skeletons = Vec::with_capacity(if self.skeletons { n * h * w } else { 0 });
        let mut ids = Vec::with_capacity(n);
        for item in items {
            images.extend_from_slice(&item.image);
            targets.extend(item.vessels.iter().map(|&v| v as i32));
            fov.extend(item.fov.iter().map(|&v| v != 0));
            if self.skeletons {
                let tube = skeleton::tube(&item.vessels, w, h);
                skeletons.extend(tube.into_iter().map(f32::from));
            }
            ids.push(item.id);
        }
        SegBatch {
            images: Tensor::from_data(TensorData::new(images, [n, 3, h, w]), device),
            targets: Tensor::from_data(TensorData::new(targets, [n, h, w]), device),
            fov: Tensor::from_data(TensorData::new(fov, [n, h, w]), device),
            skeletons: self
                .skeletons
                .then(|| Tensor::from_data(TensorData::new(skeletons, [n, h, w]), device)),
            ids,
        }
    }
}
