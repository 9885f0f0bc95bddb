//! STARE, CHASE_DB1, HRF and FIVES read in the layouts their downloads unpack to (written by the
//! generator with the datasets' names, formats and folders): detection, pairing by each
//! dataset's ids, observers, FOV source, every split scheme's counts, and each broken variant's
//! error naming the file.

use std::path::{Path, PathBuf};

use drive_data::synth::generate;
use drive_data::write::{image_seed, second_observer, write_synthetic, STARE_IDS};
use drive_data::{
    DataError, DatasetDir, Layout, Observer, Sample, Split, SplitScheme, SynthConfig,
};
use image::GrayImage;

const SEED: u64 = 11;

fn config() -> SynthConfig {
    SynthConfig {
        width: 120,
        height: 110,
        ..SynthConfig::default()
    }
}

fn write(layout: Layout, count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_synthetic(dir.path(), layout, count, SEED, &config()).unwrap();
    dir
}

fn ids(data: &DatasetDir, split: Split) -> Vec<u32> {
    data.entries(split).unwrap().iter().map(|e| e.id).collect()
}

fn iou(a: &GrayImage, b: &GrayImage) -> f64 {
    let (mut inter, mut union) = (0u64, 0u64);
    for (&x, &y) in a.iter().zip(b.iter()) {
        inter += u64::from(x > 0 && y > 0);
        union += u64::from(x > 0 || y > 0);
    }
    inter as f64 / union.max(1) as f64
}

/// Every sample of `split` against the generator: labels exact (the observer's), image exact or
/// (JPEG) close, FOV from files exact or derived with IoU ≥ 0.98.
fn assert_matches_generator(data: &DatasetDir, split: Split, lossless: bool, fov_files: bool) {
    let samples = data.load(split).unwrap();
    assert!(!samples.is_empty(), "{split} is empty");
    for s in samples {
        let truth = generate(&config(), image_seed(SEED, data.layout, split, s.id));
        let labels = match data.observer {
            Observer::First => truth.vessels.clone(),
            Observer::Second => second_observer(&truth.vessels),
        };
        let name = s.image_path.display();
        assert_eq!(s.vessels.as_ref(), Some(&labels), "labels of {name}");
        if lossless {
            assert_eq!(s.image, truth.image, "{name}");
        } else {
            let diff: f64 = s
                .image
                .iter()
                .zip(truth.image.iter())
                .map(|(&a, &b)| (a as f64 - b as f64).abs())
                .sum::<f64>()
                / s.image.len() as f64;
            assert!(diff < 3.0, "{name}: JPEG mean error {diff}");
        }
        assert_eq!(s.fov_derived, !fov_files, "{name}");
        if fov_files {
            assert_eq!(s.fov, truth.fov, "{name}");
        } else {
            let iou = iou(&s.fov, &truth.fov);
            assert!(iou >= 0.98, "{name}: derived FOV IoU {iou}");
        }
    }
}

#[test]
fn stare_reads_gzipped_ppm_and_either_observer() {
    let dir = write(Layout::Stare, 20);
    let root = dir.path();
    assert!(root.join("stare-images/im0044.ppm.gz").is_file());
    assert!(root.join("labels-ah/im0044.ah.ppm.gz").is_file());
    assert!(root.join("labels-vk/im0044.vk.ppm.gz").is_file());
    let data = DatasetDir::open(root).unwrap();
    assert_eq!(data.layout, Layout::Stare);
    assert_eq!(data.scheme, SplitScheme::StareHalves);
    // 10 / 10; validation 2 of the 10 (20%), spread over the ids.
    assert_eq!(ids(&data, Split::Test), STARE_IDS[10..]);
    assert_eq!(ids(&data, Split::Valid), [STARE_IDS[2], STARE_IDS[7]]);
    assert_eq!(ids(&data, Split::Train).len(), 8);
    for split in Split::ALL {
        assert_matches_generator(&data, split, true, false);
    }
    let second = data.clone().with_observer(Observer::Second).unwrap();
    assert_matches_generator(&second, Split::Test, true, false);
    // Unzipped files read the same.
    for (gz, plain) in [
        ("stare-images/im0162.ppm.gz", "stare-images/im0162.ppm"),
        ("labels-ah/im0162.ah.ppm.gz", "labels-ah/im0162.ah.ppm"),
    ] {
        let bytes = std::fs::read(root.join(gz)).unwrap();
        let mut plain_bytes = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(bytes.as_slice()),
            &mut plain_bytes,
        )
        .unwrap();
        std::fs::write(root.join(plain), plain_bytes).unwrap();
        std::fs::remove_file(root.join(gz)).unwrap();
    }
    assert_matches_generator(&data, Split::Test, true, false);
}

#[test]
fn chase_pairs_left_and_right_eyes_under_both_schemes() {
    let dir = write(Layout::Chase, 28);
    let root = dir.path();
    assert!(root.join("Image_14R.jpg").is_file());
    assert!(root.join("Image_14R_1stHO.png").is_file());
    assert!(root.join("Image_14R_2ndHO.png").is_file());
    let data = DatasetDir::open(root).unwrap();
    assert_eq!(data.layout, Layout::Chase);
    // 20-8: patients 1–10 train (4 of them validate), 11–14 test.
    assert_eq!(ids(&data, Split::Test), (21..=28).collect::<Vec<_>>());
    assert_eq!(ids(&data, Split::Valid).len(), 4);
    assert_eq!(ids(&data, Split::Train).len(), 16);
    let other = data
        .clone()
        .with_scheme(SplitScheme::ChaseEightTwenty)
        .unwrap();
    assert_eq!(ids(&other, Split::Test), (9..=28).collect::<Vec<_>>());
    assert_eq!(
        ids(&other, Split::Train).len() + ids(&other, Split::Valid).len(),
        8
    );
    for split in Split::ALL {
        assert_matches_generator(&data, split, false, false);
    }
    let second = data.with_observer(Observer::Second).unwrap();
    assert_matches_generator(&second, Split::Valid, false, false);
}

#[test]
fn hrf_reads_mixed_case_extensions_and_its_fov_masks() {
    // 6 per group (healthy, DR, glaucoma): the first third of each group trains.
    let dir = write(Layout::Hrf, 18);
    let root = dir.path();
    assert!(root.join("images/02_dr.JPG").is_file());
    assert!(root.join("images/02_g.jpg").is_file());
    assert!(root.join("manual1/02_dr.tif").is_file());
    assert!(root.join("mask/02_dr_mask.tif").is_file());
    let data = DatasetDir::open(root).unwrap();
    assert_eq!(data.layout, Layout::Hrf);
    let mut train_and_valid = ids(&data, Split::Train);
    train_and_valid.extend(ids(&data, Split::Valid));
    train_and_valid.sort();
    // Numbers 01 and 02 of each group: ids 1..=6.
    assert_eq!(train_and_valid, (1..=6).collect::<Vec<_>>());
    assert_eq!(ids(&data, Split::Test), (7..=18).collect::<Vec<_>>());
    for split in Split::ALL {
        assert_matches_generator(&data, split, false, true);
    }
    // Without mask/, the FOV is derived.
    std::fs::remove_dir_all(root.join("mask")).unwrap();
    assert_matches_generator(&data, Split::Test, false, false);
}

#[test]
fn fives_reads_both_spellings_of_its_label_folder() {
    let dir = write(Layout::Fives, 12);
    let root = dir.path();
    assert!(root.join("train/Original/1_A.png").is_file());
    assert!(root.join("train/Ground truth/2_D.png").is_file());
    assert!(root.join("test/Original/3_G.png").is_file());
    // The archive's other spelling.
    std::fs::rename(
        root.join("test/Ground truth"),
        root.join("test/GroundTruth"),
    )
    .unwrap();
    let data = DatasetDir::open(root).unwrap();
    assert_eq!(data.layout, Layout::Fives);
    assert_eq!(ids(&data, Split::Test), [1, 2, 3]);
    assert_eq!(ids(&data, Split::Valid).len(), 2);
    assert_eq!(ids(&data, Split::Train).len(), 7);
    for split in Split::ALL {
        assert_matches_generator(&data, split, true, false);
    }
}

#[test]
fn every_layout_is_detected_and_can_be_named() {
    for layout in Layout::ALL {
        let dir = write(layout, 12);
        assert_eq!(DatasetDir::open(dir.path()).unwrap().layout, layout);
        assert_eq!(
            DatasetDir::open_as(dir.path(), layout).unwrap().layout,
            layout
        );
    }
}

/// The error of loading `split` (listing and decoding), which must name `path`.
fn fails_naming(data: &DatasetDir, split: Split, path: &Path) -> DataError {
    let err = data
        .entries(split)
        .and_then(|e| Sample::load_all(&e))
        .map(|s| s.len())
        .unwrap_err();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        err.to_string().contains(&name),
        "{err} does not name {name}"
    );
    err
}

#[test]
fn missing_labels_are_named() {
    for (layout, label, image) in [
        (
            Layout::Stare,
            "labels-ah/im0044.ah.ppm.gz",
            "stare-images/im0044.ppm.gz",
        ),
        (Layout::Hrf, "manual1/01_g.tif", "images/01_g.jpg"),
        (
            Layout::Fives,
            "train/Ground truth/2_D.png",
            "train/Original/2_D.png",
        ),
    ] {
        let dir = write(layout, 12);
        std::fs::remove_file(dir.path().join(label)).unwrap();
        let data = DatasetDir::open(dir.path()).unwrap();
        let err = fails_naming(&data, Split::Train, &dir.path().join(image));
        assert!(
            matches!(
                err,
                DataError::Unpaired {
                    missing: "vessel mask",
                    ..
                }
            ),
            "{layout}: {err}"
        );
    }
    // CHASE_DB1 without either observer's label for an image.
    let dir = write(Layout::Chase, 12);
    for name in ["Image_02L_1stHO.png", "Image_02L_2ndHO.png"] {
        std::fs::remove_file(dir.path().join(name)).unwrap();
    }
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = fails_naming(&data, Split::Train, &dir.path().join("Image_02L.jpg"));
    assert!(matches!(err, DataError::Unpaired { .. }), "{err}");
}

#[test]
fn a_label_of_another_size_is_refused() {
    let dir = write(Layout::Chase, 12);
    let label = dir.path().join("Image_01R_1stHO.png");
    GrayImage::new(50, 40).save(&label).unwrap();
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = fails_naming(&data, Split::Train, &label);
    assert!(matches!(err, DataError::SizeMismatch { .. }), "{err}");
}

#[test]
fn a_gz_that_is_not_gzip_is_refused() {
    let dir = write(Layout::Stare, 12);
    let image = dir.path().join("stare-images/im0002.ppm.gz");
    std::fs::write(&image, b"P6 not compressed").unwrap();
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = fails_naming(&data, Split::Train, &image);
    assert!(
        matches!(err, DataError::Decode { .. }) && err.to_string().contains("gzip"),
        "{err}"
    );
}

#[test]
fn mixed_observers_are_refused() {
    // A second-observer label among STARE's first-observer labels.
    let dir = write(Layout::Stare, 12);
    let root = dir.path();
    std::fs::rename(
        root.join("labels-ah/im0003.ah.ppm.gz"),
        root.join("labels-ah/im0003.vk.ppm.gz"),
    )
    .unwrap();
    let data = DatasetDir::open(root).unwrap();
    let err = fails_naming(
        &data,
        Split::Train,
        &root.join("labels-ah/im0003.vk.ppm.gz"),
    );
    assert!(matches!(err, DataError::MixedObservers { .. }), "{err}");
    // A CHASE_DB1 image labelled by the second observer only.
    let dir = write(Layout::Chase, 12);
    std::fs::remove_file(dir.path().join("Image_03R_1stHO.png")).unwrap();
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = fails_naming(&data, Split::Train, &dir.path().join("Image_03R_2ndHO.png"));
    assert!(matches!(err, DataError::MixedObservers { .. }), "{err}");
}

#[test]
fn empty_folders_and_unknown_layouts_are_refused() {
    let empty = tempfile::tempdir().unwrap();
    let err = DatasetDir::open(empty.path()).unwrap_err();
    assert!(matches!(err, DataError::UnknownLayout { .. }), "{err}");
    for msg in ["STARE", "CHASE_DB1", "HRF", "FIVES", "--dataset"] {
        assert!(err.to_string().contains(msg), "{err}");
    }
    // Named explicitly, an empty folder says which folder it needed.
    let err = DatasetDir::open_as(empty.path(), Layout::Stare)
        .unwrap()
        .entries(Split::Train)
        .unwrap_err();
    assert!(
        matches!(err, DataError::MissingFolder { ref path, .. } if path.ends_with("stare-images")),
        "{err}"
    );
    let err = DatasetDir::open_as(empty.path(), Layout::Chase)
        .unwrap()
        .entries(Split::Train)
        .unwrap_err();
    assert!(matches!(err, DataError::EmptyFolder { .. }), "{err}");
    // STARE's image folder emptied.
    let dir = write(Layout::Stare, 12);
    for entry in std::fs::read_dir(dir.path().join("stare-images")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let err = DatasetDir::open(dir.path())
        .unwrap()
        .entries(Split::Test)
        .unwrap_err();
    assert!(matches!(err, DataError::EmptyFolder { .. }), "{err}");
}

#[test]
fn settings_of_another_dataset_are_refused() {
    let dir = write(Layout::Hrf, 12);
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = data
        .clone()
        .with_scheme(SplitScheme::ChaseTwentyEight)
        .unwrap_err();
    assert!(err.to_string().contains("5-per-class"), "{err}");
    let err = data.with_observer(Observer::Second).unwrap_err();
    assert!(matches!(err, DataError::Setting { .. }), "{err}");
    // DRIVE's second observer labelled the test images only.
    let dir = write(Layout::Drive, 6);
    let data = DatasetDir::open(dir.path())
        .unwrap()
        .with_observer(Observer::Second)
        .unwrap();
    assert_eq!(ids(&data, Split::Test).len(), 3);
    let err = data.entries(Split::Train).unwrap_err();
    assert!(err.to_string().contains("test images only"), "{err}");
}

#[test]
fn unexpected_names_say_the_dataset_s_naming() {
    let dir = write(Layout::Hrf, 12);
    let odd: PathBuf = dir.path().join("images/03_x.jpg");
    std::fs::copy(dir.path().join("images/01_h.jpg"), &odd).unwrap();
    let data = DatasetDir::open(dir.path()).unwrap();
    let err = fails_naming(&data, Split::Train, &odd);
    assert!(
        matches!(err, DataError::UnexpectedName { .. }) && err.to_string().contains("01_dr.JPG"),
        "{err}"
    );
}
