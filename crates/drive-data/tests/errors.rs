//! Bad input never panics and never silently drops data: each problem is a specific error that
//! names the path.

use std::path::{Path, PathBuf};

use drive_data::write::write_synthetic;
use drive_data::{DataError, DatasetDir, Layout, Split, SynthConfig};

/// A synthetic set of `count` 40×44 images in `layout`.
fn synthetic_set(layout: Layout, count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        width: 40,
        height: 44,
        ..SynthConfig::default()
    };
    write_synthetic(dir.path(), layout, count, 1, &config).unwrap();
    dir
}

fn kaggle_set() -> tempfile::TempDir {
    synthetic_set(Layout::Kaggle, 6)
}

fn load(root: &Path, split: Split) -> Result<usize, DataError> {
    Ok(DatasetDir::open(root)?.load(split)?.len())
}

fn first_file(dir: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.remove(0)
}

/// Loading `split` of `root` fails with an error that names `path`; the error, for its variant.
fn fails_naming(root: &Path, split: Split, path: &Path) -> DataError {
    let err = load(root, split).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "`{text}` should name {}",
        path.display()
    );
    err
}

#[test]
fn unknown_root_and_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = fails_naming(&missing, Split::Train, &missing);
    assert!(matches!(err, DataError::MissingFolder { .. }), "{err}");

    let err = DatasetDir::open(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::UnknownLayout { .. }), "{err}");
    assert!(err.to_string().contains("README"), "{err}");

    let set = kaggle_set();
    std::fs::remove_dir_all(set.path().join("valid_masks")).unwrap();
    let err = fails_naming(set.path(), Split::Valid, &set.path().join("valid_masks"));
    assert!(matches!(err, DataError::MissingFolder { .. }), "{err}");
}

#[test]
fn empty_image_folder() {
    let set = kaggle_set();
    let images = set.path().join("train_images");
    for f in std::fs::read_dir(&images).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    std::fs::write(images.join(".DS_Store"), b"junk").unwrap();
    let err = fails_naming(set.path(), Split::Train, &images);
    assert!(matches!(err, DataError::EmptyFolder { .. }), "{err}");
}

#[test]
fn image_without_mask_and_mask_without_image() {
    // (folder whose first file is removed, what is then missing, folder of the orphan)
    for (removed, expected, orphan) in [
        ("train_masks", "vessel mask", "train_images"),
        ("train_images", "image", "train_masks"),
    ] {
        let set = kaggle_set();
        std::fs::remove_file(first_file(&set.path().join(removed))).unwrap();
        let err = load(set.path(), Split::Train).unwrap_err();
        match &err {
            DataError::Unpaired { missing, path, .. } => {
                assert_eq!(*missing, expected);
                assert!(path.starts_with(set.path().join(orphan)), "{err}");
            }
            other => panic!("expected Unpaired, got {other}"),
        }
    }
}

#[test]
fn corrupt_truncated_and_empty_files() {
    let set = kaggle_set();
    let image = first_file(&set.path().join("train_images"));
    let mask = first_file(&set.path().join("train_masks"));
    let bytes = std::fs::read(&image).unwrap();
    // (file, its new content, whether the error is `EmptyFile` rather than `Decode`)
    let cases: [(&Path, Vec<u8>, bool); 3] = [
        (&image, bytes[..bytes.len() / 2].to_vec(), false),
        (&image, Vec::new(), true),
        (&mask, b"GIF89a this is not really an image".to_vec(), false),
    ];
    for (file, content, empty) in cases {
        let saved = std::fs::read(file).unwrap();
        std::fs::write(file, &content).unwrap();
        let err = fails_naming(set.path(), Split::Train, file);
        if empty {
            assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
        } else {
            assert!(matches!(err, DataError::Decode { .. }), "{err}");
        }
        std::fs::write(file, saved).unwrap();
    }
}

#[test]
fn corrupt_tiff_in_drive_layout() {
    let dir = synthetic_set(Layout::Drive, 4);
    let image = first_file(&dir.path().join("test/images"));
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() - 500]).unwrap();
    let err = fails_naming(dir.path(), Split::Test, &image);
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
}

#[test]
fn image_and_mask_of_different_sizes() {
    let set = kaggle_set();
    let mask = first_file(&set.path().join("train_masks"));
    image::GrayImage::new(20, 20).save(&mask).unwrap();
    let err = fails_naming(set.path(), Split::Train, &mask);
    match &err {
        DataError::SizeMismatch {
            mask_size,
            image_size,
            ..
        } => {
            assert_eq!(*mask_size, [20, 20]);
            assert_eq!(*image_size, [40, 44]);
        }
        other => panic!("expected SizeMismatch, got {other}"),
    }
}

#[test]
fn unsupported_formats_missing_ids_and_duplicates() {
    let set = kaggle_set();
    let images = set.path().join("train_images");
    let first = first_file(&images);
    let id = drive_data::layout::numeric_id(&first).unwrap();
    let image = std::fs::read(&first).unwrap();
    // (file added beside the images, its content, the expected error)
    let cases: [(String, &[u8], fn(&DataError) -> bool); 4] = [
        ("notes.txt".into(), b"hello", |e| {
            matches!(e, DataError::UnsupportedFormat { .. })
        }),
        ("99_training.webp".into(), b"RIFF", |e| {
            matches!(e, DataError::UnsupportedFormat { .. })
        }),
        ("fundus.png".into(), &image, |e| {
            matches!(e, DataError::UnexpectedName { .. })
        }),
        (format!("{id}_copy.jpg"), &image, |e| {
            matches!(e, DataError::DuplicateId { .. })
        }),
    ];
    for (name, content, expected) in cases {
        let added = images.join(&name);
        std::fs::write(&added, content).unwrap();
        let err = fails_naming(set.path(), Split::Train, &added);
        assert!(expected(&err), "{name}: {err}");
        std::fs::remove_file(&added).unwrap();
    }
}

#[test]
fn system_files_are_ignored() {
    let set = kaggle_set();
    let before = load(set.path(), Split::Train).unwrap();
    for name in [".DS_Store", "Thumbs.db", "desktop.ini", "._3_training.png"] {
        std::fs::write(set.path().join("train_images").join(name), b"junk").unwrap();
        std::fs::write(set.path().join("train_masks").join(name), b"junk").unwrap();
    }
    std::fs::create_dir(set.path().join("train_images").join("backup")).unwrap();
    assert_eq!(load(set.path(), Split::Train).unwrap(), before);
}

#[test]
fn too_large_holdout_is_an_error() {
    let dir = synthetic_set(Layout::Drive, 4);
    let data = DatasetDir::open(dir.path()).unwrap().with_holdout(2);
    let err = data.entries(Split::Train).unwrap_err();
    assert!(err.to_string().contains("hold-out"), "{err}");
}
