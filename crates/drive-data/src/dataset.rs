//! Burn `Dataset` of warped samples. Augmentation is a pure function of (seed, epoch, index), so
//! it is reproducible whatever the number of loader workers and the order they run in.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::augment::{warp, AugmentConfig, AugmentParams};
use crate::normalize::Normalization;
use crate::rng::Rng;
use crate::sample::Sample;

/// One model input: normalised CHW image and 0/1 masks at the transform's size.
#[derive(Debug, Clone, PartialEq)]
pub struct SegItem {
    pub id: u32,
    /// `3 × height × width`, normalised.
    pub image: Vec<f32>,
    /// `height × width`, 0 background / 1 vessel (all 0 for unlabelled images).
    pub vessels: Vec<u8>,
    /// `height × width`, 1 inside the field of view.
    pub fov: Vec<u8>,
    /// `[height, width]`.
    pub size: [usize; 2],
}

/// Resize target, augmentation and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Output `[height, width]`.
    pub size: [usize; 2],
    /// Random augmentation (training); `None` resizes only (validation, test).
    pub augment: Option<AugmentConfig>,
    pub normalization: Normalization,
}

impl Transform {
    /// Training transform: square `imgsz`, the original recipe's augmentation.
    pub fn train(imgsz: usize, normalization: Normalization) -> Self {
        Self {
            size: [imgsz, imgsz],
            augment: Some(AugmentConfig::recipe()),
            normalization,
        }
    }

    /// Validation/test transform: square `imgsz`, resize only.
    pub fn eval(imgsz: usize, normalization: Normalization) -> Self {
        Self {
            size: [imgsz, imgsz],
            augment: None,
            normalization,
        }
    }
}

/// In-memory DRIVE samples served through a [`Transform`].
///
/// `get(index)` counts how often each index was visited and uses that count as the epoch, which
/// matches one pass per epoch of Burn's data loader; [`DriveDataset::item`] gives the same item for
/// an explicit epoch.
#[derive(Debug, Clone)]
pub struct DriveDataset {
    samples: Arc<Vec<Sample>>,
    transform: Transform,
    seed: u64,
    visits: Arc<Vec<AtomicU64>>,
    /// Serve the samples in a new seeded order every epoch.
    shuffle: bool,
    /// Items served per epoch (`samples.len()` unless [`DriveDataset::drop_last`] trims it).
    len: usize,
}

impl DriveDataset {
    pub fn new(samples: Vec<Sample>, transform: Transform, seed: u64) -> Self {
        Self::from_shared(Arc::new(samples), transform, seed)
    }

    /// Shares already-decoded samples (e.g. one set served at two sizes).
    pub fn from_shared(samples: Arc<Vec<Sample>>, transform: Transform, seed: u64) -> Self {
        let visits = Arc::new((0..samples.len()).map(|_| AtomicU64::new(0)).collect());
        let len = samples.len();
        Self {
            samples,
            transform,
            seed,
            visits,
            shuffle: false,
            len,
        }
    }

    /// Serves the samples in a different seeded order each epoch (a pure function of
    /// (seed, epoch)), so the loader itself need not shuffle and resumed runs see the same order.
    pub fn shuffled(mut self) -> Self {
        self.shuffle = true;
        self
    }

    /// Serves only whole batches of `batch_size` per epoch (with [`DriveDataset::shuffled`], a
    /// different remainder is left out each epoch): BatchNorm never sees a size-1 batch.
    pub fn drop_last(mut self, batch_size: usize) -> Self {
        let n = self.samples.len();
        self.len = n - n % batch_size.max(1);
        self
    }

    /// The sample served at position `index` of `epoch`.
    pub fn sample_index(&self, index: usize, epoch: u64) -> usize {
        if !self.shuffle {
            return index;
        }
        let n = self.samples.len();
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::derive(self.seed ^ 0x5348_5546, epoch, 0);
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order[index]
    }

    /// Resumes the per-index epoch counters at `epoch` (0-based) — for resuming training.
    pub fn starting_at_epoch(self, epoch: u64) -> Self {
        for v in self.visits.iter() {
            v.store(epoch, Ordering::Relaxed);
        }
        self
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The augmentation drawn for (seed, epoch, index); identity without augmentation.
    pub fn params(&self, index: usize, epoch: u64) -> AugmentParams {
        match &self.transform.augment {
            Some(config) => config.draw(&mut Rng::derive(self.seed, epoch, index as u64)),
            None => AugmentParams::identity(),
        }
    }

    /// The item at `index` for `epoch`: a pure function of (seed, epoch, index).
    pub fn item(&self, index: usize, epoch: u64) -> Option<SegItem> {
        if index >= self.len {
            return None;
        }
        let sample_index = self.sample_index(index, epoch);
        let sample = self.samples.get(sample_index)?;
        let params = self.params(sample_index, epoch);
        let warped = warp(
            sample,
            self.transform.size,
            &params,
            &self.transform.normalization,
        );
        Some(SegItem {
            id: sample.id,
            image: warped.image,
            vessels: warped.vessels,
            fov: warped.fov,
            size: warped.size,
        })
    }
}

impl Dataset<SegItem> for DriveDataset {
    fn get(&self, index: usize) -> Option<SegItem> {
        let epoch = self.visits.get(index)?.fetch_add(1, Ordering::Relaxed);
        self.item(index, epoch)
    }

    fn len(&self) -> usize {
        self.len
    }
}
