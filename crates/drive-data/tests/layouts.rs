//! Both layouts written by the generator load back exactly, paired by id, into batches of the right
//! shapes and values.

use std::path::Path;

use burn::backend::Flex;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use drive_data::synth::generate;
use drive_data::write::{synth_seed, write_synthetic, SplitCounts};
use drive_data::{
    DatasetDir, DriveDataset, Layout, Normalization, SegBatcher, Split, SynthConfig, Transform,
};

const SEED: u64 = 5;

fn config() -> SynthConfig {
    SynthConfig {
        width: 90,
        height: 96,
        ..SynthConfig::default()
    }
}

fn write(dir: &Path, layout: Layout, count: usize) -> SplitCounts {
    write_synthetic(dir, layout, count, SEED, &config()).unwrap()
}

/// Every loaded sample equals the generator's output for its id: image (lossless formats), vessel
/// mask and FOV — so files were paired by id, whatever their sort order.
fn assert_exact(data: &DatasetDir, split: Split, fov_from_files: bool) {
    for sample in data.load(split).unwrap() {
        let truth = generate(&config(), synth_seed(SEED, sample.id));
        assert_eq!(sample.image, truth.image, "image {}", sample.id);
        assert_eq!(
            sample.vessels.as_ref(),
            Some(&truth.vessels),
            "vessels {}",
            sample.id
        );
        assert_eq!(sample.fov_derived, !fov_from_files);
        if fov_from_files {
            assert_eq!(sample.fov, truth.fov, "fov {}", sample.id);
        } else {
            // Derived from the image: the generated disc up to its rim.
            let differ = sample
                .fov
                .iter()
                .zip(truth.fov.iter())
                .filter(|(a, b)| a != b)
                .count();
            assert!(
                differ < 30,
                "derived FOV of {} differs in {differ} pixels",
                sample.id
            );
        }
    }
}

#[test]
fn drive_layout_loads_tif_and_gif_paired_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let counts = write(dir.path(), Layout::Drive, 24);
    assert_eq!((counts.train, counts.test), (12, 12));
    let data = DatasetDir::open(dir.path()).unwrap().with_holdout(3);
    assert_eq!(data.layout, Layout::Drive);
    assert!(dir.path().join("training/images/21_training.tif").is_file());
    assert!(dir
        .path()
        .join("training/1st_manual/21_manual1.gif")
        .is_file());
    assert!(dir
        .path()
        .join("training/mask/21_training_mask.gif")
        .is_file());
    assert!(dir.path().join("test/mask/01_test_mask.gif").is_file());
    let train: Vec<u32> = data
        .entries(Split::Train)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let valid: Vec<u32> = data
        .entries(Split::Valid)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    let test: Vec<u32> = data
        .entries(Split::Test)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(train, (21..=29).collect::<Vec<_>>());
    assert_eq!(
        valid,
        vec![30, 31, 32],
        "the highest training ids are held out"
    );
    assert_eq!(test, (1..=12).collect::<Vec<_>>());
    for split in Split::ALL {
        assert_exact(&data, split, true);
    }
}

#[test]
fn kaggle_layout_loads_png_paired_by_id_with_derived_fov() {
    let dir = tempfile::tempdir().unwrap();
    let counts = write(dir.path(), Layout::Kaggle, 12);
    assert_eq!((counts.train, counts.valid, counts.test), (8, 2, 2));
    // Images with even ids renamed `0NN_training.png`: the images' lexical order then differs
    // from the masks' (`NN_manual1.png`), so only pairing by id gives the right masks.
    let images = dir.path().join("train_images");
    for entry in std::fs::read_dir(&images).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let id: u32 = name[..2].parse().unwrap();
        if id % 2 == 0 {
            std::fs::rename(&path, images.join(format!("0{name}"))).unwrap();
        }
    }
    let data = DatasetDir::open(dir.path()).unwrap();
    assert_eq!(data.layout, Layout::Kaggle);
    std::fs::remove_dir_all(dir.path().join("train_fov")).ok();
    std::fs::remove_dir_all(dir.path().join("valid_fov")).ok();
    std::fs::remove_dir_all(dir.path().join("test_fov")).ok();
    assert_exact(&data, Split::Train, false);
    assert_exact(&data, Split::Valid, false);
    assert_exact(&data, Split::Test, false);
}

#[test]
fn kaggle_test_split_without_masks_is_unlabelled() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Layout::Kaggle, 6);
    std::fs::remove_dir_all(dir.path().join("test_masks")).unwrap();
    let data = DatasetDir::open(dir.path()).unwrap();
    let test = data.load(Split::Test).unwrap();
    assert!(!test.is_empty());
    assert!(test.iter().all(|s| s.vessels.is_none()));
}

#[test]
fn batches_have_the_right_shapes_and_values() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Layout::Drive, 8);
    let data = DatasetDir::open(dir.path()).unwrap().with_holdout(1);
    let samples = data.load(Split::Train).unwrap();
    let norm = Normalization::DRIVE;
    // At the original (non-square) size without augmentation the warp is the identity.
    let transform = Transform {
        size: [96, 90],
        augment: None,
        normalization: norm,
        crop: None,
    };
    let dataset = DriveDataset::new(samples.clone(), transform, 0);
    let items: Vec<_> = (0..dataset.len())
        .map(|i| dataset.get(i).unwrap())
        .collect();
    let batch = SegBatcher::default().batch(items, &Default::default());
    let batch: drive_data::SegBatch<Flex> = batch;
    let n = samples.len();
    assert_eq!(batch.images.dims(), [n, 3, 96, 90]);
    assert_eq!(batch.targets.dims(), [n, 96, 90]);
    assert_eq!(batch.fov.dims(), [n, 96, 90]);
    assert_eq!(batch.ids, samples.iter().map(|s| s.id).collect::<Vec<_>>());
    let images: Vec<f32> = batch.images.into_data().to_vec().unwrap();
    let targets: Vec<i64> = batch.targets.into_data().iter::<i64>().collect();
    let fov: Vec<bool> = batch.fov.into_data().to_vec().unwrap();
    let plane = 96 * 90;
    for (b, s) in samples.iter().enumerate() {
        for (i, (p, v)) in s
            .image
            .pixels()
            .zip(s.vessels.as_ref().unwrap().iter())
            .enumerate()
        {
            for c in 0..3 {
                let expected = (p.0[c] as f32 / 255.0 - norm.mean[c]) / norm.std[c];
                let got = images[(b * 3 + c) * plane + i];
                assert!(
                    (got - expected).abs() < 1e-5,
                    "pixel {i} channel {c}: {got} vs {expected}"
                );
            }
            assert_eq!(targets[b * plane + i], *v as i64);
            assert_eq!(fov[b * plane + i], s.fov.as_raw()[i] == 1);
        }
    }
}

#[test]
fn resized_items_have_the_requested_size() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Layout::Kaggle, 5);
    let samples = DatasetDir::open(dir.path())
        .unwrap()
        .load(Split::Train)
        .unwrap();
    let dataset = DriveDataset::new(samples, Transform::train(64, Normalization::IMAGENET), 1);
    let item = dataset.get(0).unwrap();
    assert_eq!(item.size, [64, 64]);
    assert_eq!(item.image.len(), 3 * 64 * 64);
    assert_eq!(item.vessels.len(), 64 * 64);
    assert!(item.vessels.iter().all(|&v| v <= 1));
    let vessel_share = item.vessels.iter().filter(|&&v| v == 1).count() as f64 / (64.0 * 64.0);
    assert!((0.02..0.2).contains(&vessel_share), "{vessel_share}");
}
