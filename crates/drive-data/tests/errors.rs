//! Bad input never panics and never silently drops data: each problem is a specific error that
//! names the path.

use std::path::{Path, PathBuf};

use drive_data::write::write_synthetic;
use drive_data::{DataError, DatasetDir, Layout, Split, SynthConfig};

fn kaggle_set() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        width: 40,
        height: 44,
        ..SynthConfig::default()
    };
    write_synthetic(dir.path(), Layout::Kaggle, 6, 1, &config).unwrap();
    dir
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

fn assert_names(err: &DataError, path: &Path) {
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "`{text}` should name {}",
        path.display()
    );
}

#[test]
fn unknown_root_and_missing_folders() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let err = DatasetDir::open(&missing).unwrap_err();
    assert!(matches!(err, DataError::MissingFolder { .. }), "{err}");
    assert_names(&err, &missing);

    let err = DatasetDir::open(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::UnknownLayout { .. }), "{err}");
    assert!(err.to_string().contains("README"), "{err}");

    let set = kaggle_set();
    std::fs::remove_dir_all(set.path().join("valid_masks")).unwrap();
    let err = load(set.path(), Split::Valid).unwrap_err();
    assert!(matches!(err, DataError::MissingFolder { .. }), "{err}");
    assert_names(&err, &set.path().join("valid_masks"));
}

#[test]
fn empty_image_folder() {
    let set = kaggle_set();
    let images = set.path().join("train_images");
    for f in std::fs::read_dir(&images).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    std::fs::write(images.join(".DS_Store"), b"junk").unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::EmptyFolder { .. }), "{err}");
    assert_names(&err, &images);
}

#[test]
fn image_without_mask_and_mask_without_image() {
    let set = kaggle_set();
    let mask = first_file(&set.path().join("train_masks"));
    std::fs::remove_file(&mask).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    match &err {
        DataError::Unpaired { missing, path, .. } => {
            assert_eq!(*missing, "vessel mask");
            assert!(path.starts_with(set.path().join("train_images")));
        }
        other => panic!("expected Unpaired, got {other}"),
    }

    let set = kaggle_set();
    let image = first_file(&set.path().join("train_images"));
    std::fs::remove_file(&image).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    match &err {
        DataError::Unpaired { missing, path, .. } => {
            assert_eq!(*missing, "image");
            assert!(path.starts_with(set.path().join("train_masks")), "{err}");
        }
        other => panic!("expected Unpaired, got {other}"),
    }
}

#[test]
fn corrupt_truncated_and_empty_files() {
    let set = kaggle_set();
    let image = first_file(&set.path().join("train_images"));
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() / 2]).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
    assert_names(&err, &image);

    std::fs::write(&image, b"").unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::EmptyFile { .. }), "{err}");
    assert_names(&err, &image);

    let mask = first_file(&set.path().join("train_masks"));
    std::fs::write(&image, &bytes).unwrap();
    std::fs::write(&mask, b"GIF89a this is not really an image").unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
    assert_names(&err, &mask);
}

#[test]
fn corrupt_tiff_in_drive_layout() {
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        width: 40,
        height: 44,
        ..SynthConfig::default()
    };
    write_synthetic(dir.path(), Layout::Drive, 4, 1, &config).unwrap();
    let image = first_file(&dir.path().join("test/images"));
    let bytes = std::fs::read(&image).unwrap();
    std::fs::write(&image, &bytes[..bytes.len() - 500]).unwrap();
    let err = load(dir.path(), Split::Test).unwrap_err();
    assert!(matches!(err, DataError::Decode { .. }), "{err}");
    assert_names(&err, &image);
}

#[test]
fn image_and_mask_of_different_sizes() {
    let set = kaggle_set();
    let mask = first_file(&set.path().join("train_masks"));
    image::GrayImage::new(20, 20).save(&mask).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
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
    assert_names(&err, &mask);
}

#[test]
fn unsupported_formats_missing_ids_and_duplicates() {
    let set = kaggle_set();
    let notes = set.path().join("train_images").join("notes.txt");
    std::fs::write(&notes, b"hello").unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::UnsupportedFormat { .. }), "{err}");
    assert_names(&err, &notes);
    std::fs::remove_file(&notes).unwrap();

    let webp = set.path().join("train_images").join("99_training.webp");
    std::fs::write(&webp, b"RIFF").unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::UnsupportedFormat { .. }), "{err}");
    std::fs::remove_file(&webp).unwrap();

    let no_id = set.path().join("train_images").join("fundus.png");
    std::fs::copy(first_file(&set.path().join("train_images")), &no_id).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::NoNumericId { .. }), "{err}");
    assert_names(&err, &no_id);
    std::fs::remove_file(&no_id).unwrap();

    let first = first_file(&set.path().join("train_images"));
    let id = drive_data::layout::numeric_id(&first).unwrap();
    let twin = set
        .path()
        .join("train_images")
        .join(format!("{id}_copy.jpg"));
    std::fs::copy(&first, &twin).unwrap();
    let err = load(set.path(), Split::Train).unwrap_err();
    assert!(matches!(err, DataError::DuplicateId { .. }), "{err}");
    assert_names(&err, &twin);
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
    let dir = tempfile::tempdir().unwrap();
    let config = SynthConfig {
        width: 40,
        height: 44,
        ..SynthConfig::default()
    };
    write_synthetic(dir.path(), Layout::Drive, 4, 1, &config).unwrap();
    let data = DatasetDir::open(dir.path()).unwrap().with_holdout(2);
    let err = data.entries(Split::Train).unwrap_err();
    assert!(err.to_string().contains("hold-out"), "{err}");
}
