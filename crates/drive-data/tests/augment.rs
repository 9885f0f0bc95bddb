//! Augmentation keeps image and masks aligned, rotates/flips the way it says, fills borders by
//! reflection, and is a pure function of (seed, epoch, index) whatever the loader's worker count.

use std::collections::BTreeMap;
use std::sync::Arc;

use burn::backend::Flex;
use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use drive_data::augment::warp;
use drive_data::synth::generate;
use drive_data::{
    AugmentConfig, AugmentParams, DriveDataset, Normalization, Sample, SegBatcher, SynthConfig,
    Transform,
};
use image::{GrayImage, RgbImage};

/// Normalisation that leaves values on the 0..255 scale, to read warped images directly.
const RAW: Normalization = Normalization {
    mean: [0.0; 3],
    std: [1.0 / 255.0; 3],
};

/// A sample whose image is exactly its vessel mask (white vessels on black), so alignment can be
/// read off the warped output.
fn mask_as_image(vessels: &GrayImage) -> Sample {
    let image = RgbImage::from_fn(vessels.width(), vessels.height(), |x, y| {
        let v = vessels.get_pixel(x, y).0[0] * 255;
        image::Rgb([v, v, v])
    });
    Sample {
        id: 1,
        image_path: "memory".into(),
        image,
        vessels: Some(vessels.clone()),
        fov: GrayImage::from_pixel(vessels.width(), vessels.height(), image::Luma([1])),
        fov_derived: false,
    }
}

fn synthetic_sample(seed: u64) -> Sample {
    generate(
        &SynthConfig {
            width: 140,
            height: 150,
            ..SynthConfig::default()
        },
        seed,
    )
    .into_sample(seed as u32)
}

#[test]
fn rotated_vessels_stay_under_the_rotated_mask() {
    let vessels = synthetic_sample(3).vessels.unwrap();
    let sample = mask_as_image(&vessels);
    for params in [
        AugmentParams {
            angle_deg: 37.0,
            ..AugmentParams::identity()
        },
        AugmentParams {
            angle_deg: -50.0,
            hflip: true,
            ..AugmentParams::identity()
        },
        AugmentParams {
            angle_deg: 12.0,
            vflip: true,
            zoom: 1.3,
            centre: [0.4, 0.6],
            ..AugmentParams::identity()
        },
    ] {
        let out = warp(&sample, [128, 128], &params, &RAW);
        let plane = &out.image[..128 * 128];
        let (mut on, mut n_on, mut off, mut n_off, mut disagree) = (0.0, 0, 0.0, 0, 0);
        for (v, &m) in plane.iter().zip(&out.vessels) {
            if m == 1 {
                on += v;
                n_on += 1;
            } else {
                off += v;
                n_off += 1;
            }
            disagree += usize::from((*v > 127.5) != (m == 1));
        }
        let (on, off) = (on / n_on as f32, off / n_off as f32);
        let share = disagree as f64 / (128.0 * 128.0);
        assert!(n_on > 500, "{params:?}: only {n_on} vessel pixels");
        assert!(
            on > 150.0 && off < 40.0,
            "{params:?}: mean {on} under vessels, {off} elsewhere"
        );
        // Disagreement only at vessel edges (bilinear vs nearest sampling).
        assert!(share < 0.03, "{params:?}: {share} of pixels disagree");
    }
}

#[test]
fn rotation_is_counter_clockwise_and_flips_mirror() {
    // A 1-pixel-wide vertical bar right of centre; a 90° counter-clockwise turn puts it above the
    // centre (horizontal), a horizontal flip puts it left of the centre.
    let mut mask = GrayImage::new(41, 41);
    for y in 0..41 {
        mask.put_pixel(30, y, image::Luma([1]));
    }
    let sample = mask_as_image(&mask);
    let rotated = warp(
        &sample,
        [41, 41],
        &AugmentParams {
            angle_deg: 90.0,
            ..AugmentParams::identity()
        },
        &RAW,
    );
    let at = |out: &drive_data::augment::Warped, x: usize, y: usize| out.vessels[y * 41 + x];
    assert!(
        (0..41).all(|x| at(&rotated, x, 10) == 1),
        "row 10 should hold the bar"
    );
    assert_eq!(rotated.vessels.iter().filter(|&&v| v == 1).count(), 41);
    let flipped = warp(
        &sample,
        [41, 41],
        &AugmentParams {
            hflip: true,
            ..AugmentParams::identity()
        },
        &RAW,
    );
    assert!(
        (0..41).all(|y| at(&flipped, 10, y) == 1),
        "column 10 should hold the bar"
    );
}

#[test]
fn borders_are_filled_by_reflection_not_black() {
    let flat = Sample {
        id: 1,
        image_path: "memory".into(),
        image: RgbImage::from_pixel(50, 60, image::Rgb([200, 100, 50])),
        vessels: Some(GrayImage::new(50, 60)),
        fov: GrayImage::from_pixel(50, 60, image::Luma([1])),
        fov_derived: false,
    };
    let out = warp(
        &flat,
        [64, 64],
        &AugmentParams {
            angle_deg: 45.0,
            zoom: 0.7,
            ..AugmentParams::identity()
        },
        &RAW,
    );
    for (c, value) in [200.0, 100.0, 50.0].into_iter().enumerate() {
        let plane = &out.image[c * 64 * 64..(c + 1) * 64 * 64];
        assert!(
            plane.iter().all(|v| (v - value).abs() < 1e-3),
            "channel {c}"
        );
    }
    assert!(
        out.fov.iter().all(|&f| f == 1),
        "the FOV mask is reflected too"
    );
}

#[test]
fn photometric_jitter_changes_the_image_not_the_masks() {
    let sample = synthetic_sample(4);
    let base = warp(&sample, [64, 64], &AugmentParams::identity(), &RAW);
    let jittered = warp(
        &sample,
        [64, 64],
        &AugmentParams {
            brightness: 0.1,
            contrast: 1.2,
            gamma: 0.8,
            ..AugmentParams::identity()
        },
        &RAW,
    );
    assert_eq!(base.vessels, jittered.vessels);
    assert_eq!(base.fov, jittered.fov);
    assert_ne!(base.image, jittered.image);
}

#[test]
fn augmentation_depends_on_seed_epoch_and_index_only() {
    let samples: Vec<Sample> = (0..6).map(synthetic_sample).collect();
    let transform = Transform {
        size: [48, 48],
        augment: Some(AugmentConfig::strong()),
        normalization: Normalization::DRIVE,
        crop: None,
    };
    let dataset = DriveDataset::new(samples.clone(), transform.clone(), 11);
    assert_eq!(dataset.item(2, 5), dataset.item(2, 5));
    assert_ne!(dataset.params(2, 5), dataset.params(2, 6));
    assert_ne!(dataset.params(2, 5), dataset.params(3, 5));
    let other_seed = DriveDataset::new(samples.clone(), transform.clone(), 12);
    assert_ne!(dataset.params(2, 5), other_seed.params(2, 5));

    // Through Burn's data loader, shuffled, for 3 epochs: same items with 1 and 2 workers.
    let run = |workers: usize| -> BTreeMap<(usize, u32), Vec<f32>> {
        let dataset = Arc::new(DriveDataset::new(samples.clone(), transform.clone(), 11));
        let loader = DataLoaderBuilder::<Flex, _, _>::new(SegBatcher::default())
            .batch_size(2)
            .shuffle(99)
            .num_workers(workers)
            .build(dataset.clone());
        let mut out = BTreeMap::new();
        for epoch in 0..3 {
            for batch in loader.iter() {
                let images: Vec<f32> = batch.images.into_data().to_vec().unwrap();
                let per = images.len() / batch.ids.len();
                for (k, id) in batch.ids.iter().enumerate() {
                    out.insert((epoch, *id), images[k * per..(k + 1) * per].to_vec());
                }
            }
        }
        out
    };
    let one = run(1);
    let two = run(2);
    assert_eq!(one.len(), 18);
    assert_eq!(one, two);
    // And equal to the explicit (epoch, index) items: index = position in `samples`.
    let explicit = DriveDataset::new(samples.clone(), transform, 11);
    for epoch in 0..3u64 {
        for (index, s) in samples.iter().enumerate() {
            assert_eq!(
                one[&(epoch as usize, s.id)],
                explicit.item(index, epoch).unwrap().image
            );
        }
    }
}

trait IntoTransform {
    fn into_transform(self) -> Transform;
}
impl IntoTransform for AugmentConfig {
    fn into_transform(self) -> Transform {
        Transform {
            size: [48, 48],
            augment: Some(self),
            normalization: Normalization::DRIVE,
            crop: None,
        }
    }
}

#[test]
fn resuming_continues_the_epoch_sequence() {
    let samples: Vec<Sample> = (0..2).map(synthetic_sample).collect();
    let fresh = DriveDataset::new(samples.clone(), AugmentConfig::recipe().into_transform(), 3);
    for _ in 0..2 {
        fresh.get(1);
    }
    let third = fresh.get(1).unwrap();
    let resumed = DriveDataset::new(samples, AugmentConfig::recipe().into_transform(), 3)
        .starting_at_epoch(2);
    assert_eq!(resumed.get(1).unwrap(), third);
}

#[test]
fn shuffled_order_changes_per_epoch_and_drop_last_trims() {
    let samples: Vec<Sample> = (0..5).map(synthetic_sample).collect();
    let transform = AugmentConfig::recipe().into_transform();
    let dataset = DriveDataset::new(samples, transform, 8)
        .shuffled()
        .drop_last(2);
    assert_eq!(dataset.len(), 4);
    let order = |epoch| {
        (0..5)
            .map(|i| dataset.sample_index(i, epoch))
            .collect::<Vec<_>>()
    };
    let mut sorted = order(0);
    sorted.sort();
    assert_eq!(sorted, vec![0, 1, 2, 3, 4], "a permutation");
    assert_ne!(order(0), order(1));
    assert_eq!(order(3), order(3));
    assert!(
        dataset.item(4, 0).is_none(),
        "the trimmed position is not served"
    );
    assert_eq!(
        dataset.item(1, 2).unwrap().id,
        dataset.samples()[dataset.sample_index(1, 2)].id
    );
}

/// Crops: image, vessel mask and FOV of a crop come from the same warped image; a crop equals the
/// same window of the whole augmented image at native size.
#[test]
fn crops_are_windows_of_the_augmented_native_image() {
    let vessels = synthetic_sample(5).vessels.unwrap();
    let mut sample = mask_as_image(&vessels);
    // A FOV that is the left two thirds only, so its crop is checkable.
    let (w, h) = vessels.dimensions();
    sample.fov = GrayImage::from_fn(w, h, |x, _| image::Luma([u8::from(x < 2 * w / 3)]));
    for params in [
        AugmentParams {
            angle_deg: 33.0,
            hflip: true,
            ..AugmentParams::identity()
        },
        AugmentParams {
            angle_deg: -48.0,
            vflip: true,
            ..AugmentParams::identity()
        },
    ] {
        let size = [h as usize, w as usize];
        let whole = warp(&sample, size, &params, &RAW);
        let window = [21, 37, 64, 48];
        let crop = drive_data::augment::warp_window(&sample, size, window, &params, &RAW);
        assert_eq!(crop.size, [48, 64]);
        let [x0, y0, cw, ch] = window;
        let mut worst = 0f32;
        for y in 0..ch {
            for x in 0..cw {
                let (o, c) = ((y0 + y) * w as usize + x0 + x, y * cw + x);
                assert_eq!(crop.vessels[c], whole.vessels[o]);
                assert_eq!(crop.fov[c], whole.fov[o]);
                worst = worst.max((crop.image[c] - whole.image[o]).abs());
            }
        }
        // The same sample points up to f32 rounding of the coordinates (the window starts its
        // f32 steps at its own corner): a few thousandths of a grey level at vessel edges.
        assert!(
            worst < 0.05,
            "{params:?}: images differ by {worst} grey levels"
        );
        // And the crop's image agrees with its own mask (vessels bright, background dark).
        let disagree = crop.image[..cw * ch]
            .iter()
            .zip(&crop.vessels)
            .filter(|(v, &m)| (**v > 127.5) != (m == 1))
            .count();
        assert!(
            disagree < cw * ch / 20,
            "{params:?}: {disagree} pixels disagree"
        );
    }
}

#[test]
fn crops_per_image_are_reproducible_and_prefer_the_fov() {
    let samples: Vec<Sample> = (0..3).map(synthetic_sample).collect();
    let transform = Transform::train_crops(32, Normalization::DRIVE);
    let dataset = DriveDataset::new(samples.clone(), transform.clone(), 4)
        .shuffled()
        .crops_per_image(5);
    assert_eq!(dataset.len(), 15);
    let mut per_sample = BTreeMap::new();
    for i in 0..dataset.len() {
        let item = dataset.item(i, 0).unwrap();
        assert_eq!(item.size, [32, 32]);
        assert_eq!(item.image.len(), 3 * 32 * 32);
        // Mostly inside the field of view.
        let inside = item.fov.iter().filter(|&&f| f != 0).count();
        assert!(inside * 2 >= 32 * 32, "crop {i}: {inside} FOV pixels");
        *per_sample.entry(item.id).or_insert(0) += 1;
    }
    assert_eq!(per_sample.values().copied().collect::<Vec<_>>(), [5, 5, 5]);
    // Different crops of one image differ; the same (epoch, index) is the same crop.
    assert_ne!(
        dataset.item(0, 0).unwrap().image,
        dataset.item(1, 0).unwrap().image
    );
    assert_eq!(dataset.item(3, 2), dataset.item(3, 2));
    assert_ne!(dataset.item(3, 2), dataset.item(3, 1));

    // Through Burn's data loader: the same crops with 1 and 2 workers (in whatever order the
    // workers deliver them).
    let run = |workers: usize| -> Vec<Vec<f32>> {
        let dataset = Arc::new(
            DriveDataset::new(samples.clone(), transform.clone(), 4)
                .shuffled()
                .crops_per_image(5),
        );
        let loader = DataLoaderBuilder::<Flex, _, _>::new(SegBatcher::default())
            .batch_size(3)
            .num_workers(workers)
            .build(dataset);
        let mut out: Vec<Vec<f32>> = Vec::new();
        for _epoch in 0..2 {
            for batch in loader.iter() {
                let images: Vec<f32> = batch.images.into_data().to_vec().unwrap();
                out.extend(images.chunks(3 * 32 * 32).map(<[f32]>::to_vec));
            }
        }
        out.sort_by(|a, b| a.partial_cmp(b).unwrap());
        out
    };
    let one = run(1);
    assert_eq!(one.len(), 30);
    assert_eq!(one, run(2));
}
