//! Burn `Dataset` of warped samples. Augmentation is a pure function of (seed, epoch, index), so
//! it is reproducible whatever the number of loader workers and the order they run in.
//!
//! Two ways to make a model input from a fundus image: resize the whole image to the transform's
//! size (the original experiments), or, with [`Transform::crop`], take random `N×N` crops at the
//! native resolution after the geometric augmentation (vessel-segmentation practice: no vessel
//! shrinks below a pixel), several per image and epoch, preferring crops inside the FOV.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use burn::data::dataset::Dataset;
use serde::{Deserialize, Serialize};

use crate::augment::{warp, warp_window, AugmentConfig, AugmentParams, Warped};
use crate::normalize::Normalization;
use crate::rng::Rng;
use crate::sample::Sample;

/// One model input: normalised CHW image and 0/1 masks at the transform's size.
#[derive(Debug, Clone, PartialEq)]
pub struct SegItem {
    /// The sample's DRIVE id.
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

/// Resize target (or crop size), augmentation and normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    /// Output `[height, width]` of the whole-image resize (unused with `crop`).
    pub size: [usize; 2],
    /// Random augmentation (training); `None` resizes only (validation, test).
    pub augment: Option<AugmentConfig>,
    /// Per-channel normalisation applied after augmentation.
    pub normalization: Normalization,
    /// Random `N×N` crops at the native resolution instead of the whole-image resize.
    #[serde(default)]
    pub crop: Option<usize>,
}

impl Transform {
    /// Training transform: square `imgsz`, the original recipe's augmentation.
    pub fn train(imgsz: usize, normalization: Normalization) -> Self {
        Self {
            size: [imgsz, imgsz],
            augment: Some(AugmentConfig::recipe()),
            normalization,
            crop: None,
        }
    }

    /// Training crops: random `crop × crop` windows at native resolution, the recipe's
    /// augmentation.
    pub fn train_crops(crop: usize, normalization: Normalization) -> Self {
        Self {
            crop: Some(crop),
            ..Self::train(crop, normalization)
        }
    }

    /// Validation/test transform: square `imgsz`, resize only.
    pub fn eval(imgsz: usize, normalization: Normalization) -> Self {
        Self {
            size: [imgsz, imgsz],
            augment: None,
            normalization,
            crop: None,
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
    /// Items per sample and epoch (crops; 1 for the whole-image resize).
    per_sample: usize,
    /// Items served per epoch (`samples.len() · per_sample` unless [`DriveDataset::drop_last`]
    /// trims it).
    len: usize,
}

/// Crop candidates tried per item before taking the one with the most FOV.
const CROP_TRIES: usize = 8;
/// A crop with at least this fraction inside the FOV is taken at once.
const CROP_MIN_FOV: f64 = 0.5;

impl DriveDataset {
    /// A dataset of `samples` with `transform`; `seed` makes the augmentation reproducible (one random stream per item and epoch).
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
            per_sample: 1,
            len,
        }
    }

    /// Serves `k` items (crops) per sample and epoch, each with its own augmentation and crop
    /// position (with [`Transform::crop`]; without it `k` augmented copies).
    pub fn crops_per_image(mut self, k: usize) -> Self {
        let k = k.max(1);
        self.per_sample = k;
        self.len = self.samples.len() * k;
        self.visits = Arc::new((0..self.len).map(|_| AtomicU64::new(0)).collect());
        self
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
        let n = self.samples.len() * self.per_sample;
        self.len = n - n % batch_size.max(1);
        self
    }

    /// The item (sample · per_sample + crop) served at position `index` of `epoch`.
    fn item_slot(&self, index: usize, epoch: u64) -> usize {
        if !self.shuffle {
            return index;
        }
        let n = self.samples.len() * self.per_sample;
        let mut order: Vec<usize> = (0..n).collect();
        let mut rng = Rng::derive(self.seed ^ 0x5348_5546, epoch, 0);
        for i in (1..n).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            order.swap(i, j);
        }
        order[index]
    }

    /// The sample served at position `index` of `epoch`.
    pub fn sample_index(&self, index: usize, epoch: u64) -> usize {
        self.item_slot(index, epoch) / self.per_sample
    }

    /// Resumes the per-index epoch counters at `epoch` (0-based) — for resuming training.
    pub fn starting_at_epoch(self, epoch: u64) -> Self {
        for v in self.visits.iter() {
            v.store(epoch, Ordering::Relaxed);
        }
        self
    }

    /// The samples, in order.
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }

    /// The transform applied to every item.
    pub fn transform(&self) -> &Transform {
        &self.transform
    }

    /// The augmentation drawn for (seed, epoch, sample index); identity without augmentation.
    pub fn params(&self, index: usize, epoch: u64) -> AugmentParams {
        self.draw(&mut Rng::derive(self.seed, epoch, index as u64))
    }

    fn draw(&self, rng: &mut Rng) -> AugmentParams {
        match &self.transform.augment {
            Some(config) => config.draw(rng),
            None => AugmentParams::identity(),
        }
    }

    /// A random `crop × crop` window of the augmented sample at native resolution: up to
    /// [`CROP_TRIES`] positions, the first mostly inside the FOV, else the one with the most FOV.
    fn random_crop(&self, sample: &Sample, crop: usize, rng: &mut Rng) -> Warped {
        let params = self.draw(rng);
        let [w0, h0] = sample.size().map(|v| v as usize);
        let (cw, ch) = (crop.min(w0), crop.min(h0));
        let mut best: Option<(f64, Warped)> = None;
        for _ in 0..CROP_TRIES {
            let x = (rng.next_u64() % (w0 - cw + 1) as u64) as usize;
            let y = (rng.next_u64() % (h0 - ch + 1) as u64) as usize;
            let warped = warp_window(
                sample,
                [h0, w0],
                [x, y, cw, ch],
                &params,
                &self.transform.normalization,
            );
            let inside = warped.fov.iter().filter(|&&f| f != 0).count() as f64 / (cw * ch) as f64;
            if inside >= CROP_MIN_FOV {
                return warped;
            }
            if best.as_ref().is_none_or(|(b, _)| inside > *b) {
                best = Some((inside, warped));
            }
        }
        best.expect("at least one try").1
    }

    /// The item at `index` for `epoch`: a pure function of (seed, epoch, index).
    pub fn item(&self, index: usize, epoch: u64) -> Option<SegItem> {
        if index >= self.len {
            return None;
        }
        let slot = self.item_slot(index, epoch);
        let sample_index = slot / self.per_sample;
        let sample = self.samples.get(sample_index)?;
        let warped = match self.transform.crop {
            Some(crop) => {
                let mut rng = Rng::derive(self.seed ^ 0x4352_4f50, epoch, slot as u64);
                self.random_crop(sample, crop, &mut rng)
            }
            None => {
                // One item per sample: its draw is keyed by the sample, as before crops existed.
                let key = if self.per_sample == 1 {
                    sample_index
                } else {
                    slot
                };
                warp(
                    sample,
                    self.transform.size,
                    &self.params(key, epoch),
                    &self.transform.normalization,
                )
            }
        };
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
