//! The two folder layouts DRIVE is distributed in, and pairing of images with their masks by the
//! numeric id in the file name (never by sort order).
//!
//! **Kaggle split** (the original tutorial's "DRIVE train/validation split"):
//! ```text
//! <root>/train_images/  train_masks/  valid_images/  valid_masks/  test_images/  [test_masks/]
//!        [train_fov/  valid_fov/  test_fov/]      optional FOV masks, else derived from the images
//! ```
//! **Original DRIVE archive**:
//! ```text
//! <root>/training/images/21_training.tif  1st_manual/21_manual1.gif  mask/21_training_mask.gif
//! <root>/test/images/01_test.tif  [1st_manual/01_manual1.gif  2nd_manual/...  mask/01_test_mask.gif]
//! ```
//! DRIVE has no validation folder: the `holdout` training images with the highest ids form it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::decode::{check_extension, is_ignored};
use crate::error::{DataError, Result};

/// Folder layout of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `train_images/`, `train_masks/`, `valid_images/`, … (the tutorial's Kaggle split).
    Kaggle,
    /// `training/`, `test/` with `images/`, `1st_manual/`, `mask/` (the original archive).
    Drive,
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kaggle => "kaggle",
            Self::Drive => "drive",
        })
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kaggle" => Ok(Self::Kaggle),
            "drive" => Ok(Self::Drive),
            other => Err(format!("unknown layout `{other}` (kaggle or drive)")),
        }
    }
}

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images.
    Train,
    /// Validation images.
    Valid,
    /// Test images.
    Test,
}

impl Split {
    /// The three splits, in this order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Valid => "valid",
            Self::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" | "training" => Ok(Self::Train),
            "valid" | "val" | "validation" => Ok(Self::Valid),
            "test" => Ok(Self::Test),
            other => Err(format!("unknown split `{other}` (train, valid or test)")),
        }
    }
}

/// One image and the files of its masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The numeric id in the file names (`21` for `21_training.tif`).
    pub id: u32,
    /// The fundus image.
    pub image: PathBuf,
    /// Vessel ground truth (`1st_manual` / `*_masks`), when the split has it.
    pub vessels: Option<PathBuf>,
    /// FOV mask, when the dataset has one; otherwise derived from the image.
    pub fov: Option<PathBuf>,
}

/// Where each split's files live.
struct SplitFolders {
    images: PathBuf,
    vessels: PathBuf,
    vessels_required: bool,
    fov: PathBuf,
}

/// A dataset folder in either layout.
#[derive(Debug, Clone)]
pub struct DatasetDir {
    /// The dataset folder.
    pub root: PathBuf,
    /// Which layout it is in.
    pub layout: Layout,
    /// DRIVE layout: how many training images (highest ids) form the validation split.
    pub holdout: usize,
}

/// Default number of DRIVE training images held out for validation (4 of 20).
pub const DEFAULT_HOLDOUT: usize = 4;

impl DatasetDir {
    /// Detects the layout of `root`.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(DataError::MissingFolder {
                path: root,
                what: "dataset root".into(),
            });
        }
        let layout = if root.join("train_images").is_dir() {
            Layout::Kaggle
        } else if root.join("training").is_dir() {
            Layout::Drive
        } else {
            return Err(DataError::UnknownLayout { root });
        };
        Ok(Self {
            root,
            layout,
            holdout: DEFAULT_HOLDOUT,
        })
    }

    /// Sets how many DRIVE training images form the validation split.
    pub fn with_holdout(mut self, holdout: usize) -> Self {
        self.holdout = holdout;
        self
    }

    fn folders(&self, split: Split) -> SplitFolders {
        match self.layout {
            Layout::Kaggle => {
                let prefix = split.to_string();
                SplitFolders {
                    images: self.root.join(format!("{prefix}_images")),
                    vessels: self.root.join(format!("{prefix}_masks")),
                    vessels_required: split != Split::Test,
                    fov: self.root.join(format!("{prefix}_fov")),
                }
            }
            Layout::Drive => {
                let dir = self.root.join(match split {
                    Split::Train | Split::Valid => "training",
                    Split::Test => "test",
                });
                SplitFolders {
                    images: dir.join("images"),
                    vessels: dir.join("1st_manual"),
                    vessels_required: split != Split::Test,
                    fov: dir.join("mask"),
                }
            }
        }
    }

    /// Whether the split's image folder exists.
    pub fn has_split(&self, split: Split) -> bool {
        self.folders(split).images.is_dir()
    }

    /// The split's images paired with their masks by id, in id order.
    pub fn entries(&self, split: Split) -> Result<Vec<Entry>> {
        let folders = self.folders(split);
        let images = list_folder(&folders.images, &format!("{split} images"))?;
        if images.is_empty() {
            return Err(DataError::EmptyFolder {
                path: folders.images,
            });
        }
        let vessels = if folders.vessels_required || folders.vessels.is_dir() {
            Some(list_folder(
                &folders.vessels,
                &format!("{split} vessel masks"),
            )?)
        } else {
            None
        };
        let fov = if folders.fov.is_dir() {
            Some(list_folder(&folders.fov, &format!("{split} FOV masks"))?)
        } else {
            None
        };
        for (name, masks, folder) in [
            ("vessel mask", &vessels, &folders.vessels),
            ("FOV mask", &fov, &folders.fov),
        ] {
            let Some(masks) = masks else { continue };
            if let Some((&id, path)) = images.iter().find(|(id, _)| !masks.contains_key(id)) {
                return Err(DataError::Unpaired {
                    path: path.clone(),
                    id,
                    missing: name,
                    folder: folder.clone(),
                });
            }
            if let Some((&id, path)) = masks.iter().find(|(id, _)| !images.contains_key(id)) {
                return Err(DataError::Unpaired {
                    path: path.clone(),
                    id,
                    missing: "image",
                    folder: folders.images.clone(),
                });
            }
        }
        let mut entries: Vec<Entry> = images
            .into_iter()
            .map(|(id, image)| Entry {
                id,
                image,
                vessels: vessels.as_ref().map(|m| m[&id].clone()),
                fov: fov.as_ref().map(|m| m[&id].clone()),
            })
            .collect();
        if self.layout == Layout::Drive && split != Split::Test {
            let n = entries.len();
            if self.holdout >= n {
                return Err(DataError::Invalid {
                    path: folders.images,
                    reason: format!(
                        "{n} training images cannot give {} held-out validation images and a \
                         training set; lower the hold-out",
                        self.holdout
                    ),
                });
            }
            let valid = entries.split_off(n - self.holdout);
            if split == Split::Valid {
                entries = valid;
            }
        }
        Ok(entries)
    }
}

/// The numeric id of a file: the first run of digits in its stem (`01_test` → 1).
pub fn numeric_id(path: &Path) -> Option<u32> {
    let stem = path.file_stem()?.to_string_lossy();
    let digits: String = stem
        .chars()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// Image files of a folder by id. Hidden/system files and sub-folders are ignored; anything else
/// that is not a supported image, has no id, or repeats an id is an error.
fn list_folder(dir: &Path, what: &str) -> Result<BTreeMap<u32, PathBuf>> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder {
            path: dir.to_path_buf(),
            what: what.to_string(),
        });
    }
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if is_ignored(&name) || path.is_dir() {
            continue;
        }
        paths.push(path);
    }
    paths.sort();
    let mut out: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for path in paths {
        check_extension(&path)?;
        let id = numeric_id(&path).ok_or_else(|| DataError::NoNumericId { path: path.clone() })?;
        if let Some(first) = out.get(&id) {
            return Err(DataError::DuplicateId {
                id,
                first: first.clone(),
                second: path,
            });
        }
        out.insert(id, path);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_first_number() {
        assert_eq!(numeric_id(Path::new("a/21_training.tif")), Some(21));
        assert_eq!(numeric_id(Path::new("01_test_mask.gif")), Some(1));
        assert_eq!(numeric_id(Path::new("img-007.png")), Some(7));
        assert_eq!(numeric_id(Path::new("manual.gif")), None);
    }
}
