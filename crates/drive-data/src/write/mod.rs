//! Writing synthetic sets in every dataset's layout, with the real file formats and names
//! ([`names`]): DRIVE's archive (LZW TIFF images, GIF masks), the Kaggle split (PNG), STARE
//! (gzipped PPM), CHASE_DB1 (JPEG images, PNG labels, one folder), HRF (JPEG images, TIFF labels
//! and FOV masks), FIVES (PNG). Where the dataset has a second observer, the second labels are
//! the first ones widened by a pixel to the right ([`second_observer`]): different, and known.

mod formats;
pub mod names;

use std::path::Path;

use image::{GrayImage, ImageFormat};
use rayon::prelude::*;

use crate::error::{DataError, Result};
use crate::layout::{Entry, Layout, Split};
use crate::synth::{generate, SynthConfig, SynthRetina};
pub use formats::{write_jpeg, write_mask, write_png, write_ppm_gz, write_tiff_lzw};
pub use names::{file_paths, SynthFiles, STARE_IDS};

/// How many images of each split a synthetic set of `count` images has, as its dataset's
/// default split scheme divides them (validation: the Kaggle split's folder; elsewhere carved
/// from training when loading, so 0 here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitCounts {
    /// Training images.
    pub train: usize,
    /// Validation images.
    pub valid: usize,
    /// Test images.
    pub test: usize,
}

impl SplitCounts {
    /// Kaggle: 20% validation and 20% test (at least one each). DRIVE: half training, half
    /// test. FIVES: 75% training (600 of 800). STARE, CHASE_DB1, HRF: their default scheme.
    pub fn for_layout(layout: Layout, count: usize) -> Self {
        let fraction = |f: f64| ((count as f64 * f).round() as usize).max(1);
        match layout {
            Layout::Kaggle => {
                let (valid, test) = (fraction(0.2), fraction(0.2));
                Self {
                    train: count.saturating_sub(valid + test),
                    valid,
                    test,
                }
            }
            Layout::Drive => Self {
                train: count.div_ceil(2),
                valid: 0,
                test: count / 2,
            },
            Layout::Fives => {
                let test = fraction(0.25);
                Self {
                    train: count.saturating_sub(test),
                    valid: 0,
                    test,
                }
            }
            Layout::Stare | Layout::Chase | Layout::Hrf => {
                let all = one_folder_ids(layout, count)
                    .into_iter()
                    .map(|id| Entry {
                        id,
                        image: Default::default(),
                        vessels: None,
                        fov: None,
                    })
                    .collect();
                let (train, test) = layout.default_scheme().partition(all);
                Self {
                    train: train.len(),
                    valid: 0,
                    test: test.len(),
                }
            }
        }
    }
}

/// The ids of a one-folder synthetic set (STARE's real ids first, then 400, 401, …; CHASE_DB1
/// and HRF 1, 2, …).
fn one_folder_ids(layout: Layout, count: usize) -> Vec<u32> {
    (0..count as u32)
        .map(|k| match layout {
            Layout::Stare => STARE_IDS.get(k as usize).copied().unwrap_or(400 + k - 20),
            _ => k + 1,
        })
        .collect()
}

/// One image to write: where, and which generated retina.
struct Job {
    split: Split,
    id: u32,
    seed: u64,
}

/// The generator seed of image `id` in a set written with `seed`.
pub fn synth_seed(seed: u64, id: u32) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(id as u64)
}

/// FIVES numbers its train and test images from 1 each: test image `id` of a synthetic set is
/// generated as image `FIVES_TEST_OFFSET + id`.
pub const FIVES_TEST_OFFSET: u32 = 100_000;

/// The generator seed of the image `id` of `split` in a set written with `seed` in `layout`
/// ([`synth_seed`], with FIVES's test images offset by [`FIVES_TEST_OFFSET`]).
pub fn image_seed(seed: u64, layout: Layout, split: Split, id: u32) -> u64 {
    if layout == Layout::Fives && split == Split::Test {
        synth_seed(seed, FIVES_TEST_OFFSET + id)
    } else {
        synth_seed(seed, id)
    }
}

/// Writes `count` synthetic retinas under `out` in `layout` (at `config`'s size; see
/// [`Layout::native_size`] for the dataset's own). DRIVE ids: test images are 1, 2, …, training
/// images start at 21 (or after the test ids when there are more than 20), and the Kaggle split's
/// validation images follow the training images. STARE, CHASE_DB1, HRF: see [`names`]; FIVES:
/// train and test each from 1.
pub fn write_synthetic(
    out: &Path,
    layout: Layout,
    count: usize,
    seed: u64,
    config: &SynthConfig,
) -> Result<SplitCounts> {
    let counts = SplitCounts::for_layout(layout, count);
    // Training needs an image, and where validation is carved from training, two.
    let enough = |c: SplitCounts| c.train >= if layout == Layout::Kaggle { 1 } else { 2 };
    if !enough(counts) {
        let least = (count..)
            .find(|&c| enough(SplitCounts::for_layout(layout, c)))
            .unwrap_or(count);
        return Err(DataError::Invalid {
            path: out.to_path_buf(),
            reason: format!(
                "{count} images are too few for a {layout} set ({} for training); use at least \
                 {least}",
                counts.train
            ),
        });
    }
    let mut jobs = Vec::new();
    let mut job = |split, id| {
        jobs.push(Job {
            split,
            id,
            seed: image_seed(seed, layout, split, id),
        })
    };
    match layout {
        Layout::Kaggle | Layout::Drive => {
            let mut id = 0u32;
            for (split, n) in [
                (Split::Test, counts.test),
                (Split::Train, counts.train),
                (Split::Valid, counts.valid),
            ] {
                if split == Split::Train {
                    id = id.max(20);
                }
                for _ in 0..n {
                    id += 1;
                    job(split, id);
                }
            }
        }
        Layout::Fives => {
            for (split, n) in [(Split::Train, counts.train), (Split::Test, counts.test)] {
                for id in 1..=n as u32 {
                    job(split, id);
                }
            }
        }
        Layout::Stare | Layout::Chase | Layout::Hrf => {
            for id in one_folder_ids(layout, count) {
                job(Split::Train, id);
            }
        }
    }
    jobs.par_iter().try_for_each(|job| {
        let retina = generate(config, job.seed);
        write_one(out, layout, job.split, job.id, &retina)
    })?;
    Ok(counts)
}

/// The synthetic second observer: the first observer's vessels widened by one pixel to the
/// right.
pub fn second_observer(vessels: &GrayImage) -> GrayImage {
    let mut out = vessels.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if x > 0 && vessels.get_pixel(x - 1, y).0[0] > 0 {
            p.0[0] = 1;
        }
    }
    out
}

fn write_one(
    out: &Path,
    layout: Layout,
    split: Split,
    id: u32,
    retina: &SynthRetina,
) -> Result<()> {
    let files = file_paths(out, layout, split, id);
    let (mask_format, fov_format) = match layout {
        Layout::Drive => {
            write_tiff_lzw(&files.image, &retina.image)?;
            (ImageFormat::Gif, ImageFormat::Gif)
        }
        Layout::Kaggle | Layout::Fives => {
            write_png(&files.image, &retina.image)?;
            (ImageFormat::Png, ImageFormat::Png)
        }
        Layout::Stare => {
            write_ppm_gz(&files.image, &retina.image)?;
            (ImageFormat::Pnm, ImageFormat::Pnm)
        }
        Layout::Chase => {
            write_jpeg(&files.image, &retina.image)?;
            (ImageFormat::Png, ImageFormat::Png)
        }
        Layout::Hrf => {
            write_jpeg(&files.image, &retina.image)?;
            (ImageFormat::Tiff, ImageFormat::Tiff)
        }
    };
    write_mask(&files.vessels, &retina.vessels, mask_format)?;
    if let Some(second) = &files.second {
        write_mask(second, &second_observer(&retina.vessels), mask_format)?;
    }
    if let Some(fov) = &files.fov {
        write_mask(fov, &retina.fov, fov_format)?;
    }
    Ok(())
}
