//! `predict --fov-masks DIR`: each input's FOV mask, matched once for the whole run by the
//! image's full file stem — `<stem>`, `<stem>_mask` or `<stem>_fov` (DRIVE's `21_training` ↔
//! `21_training_mask`, the Kaggle split's ids alike) — in the folder of the mask tree that mirrors
//! the image's own folder, or anywhere in a flat mask folder. A missing mask, two candidates for
//! one image, or one mask claimed by images of different folders (`site-a/001` and
//! `site-b/001` with one flat `001_mask`) is an error for those images naming the files: no image
//! silently gets another one's mask.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::TrainError;
use crate::predict::inputs::{image_files_under, InputFile};

/// The suffixes a mask's stem may add to its image's.
const SUFFIXES: [&str; 3] = ["", "_mask", "_fov"];

/// The FOV mask of each input (or why it has none).
#[derive(Debug, Clone, Default)]
pub struct FovMasks {
    by_input: BTreeMap<PathBuf, Result<PathBuf, String>>,
}

impl FovMasks {
    /// Matches every input to a mask under `dir` (listed once).
    pub fn match_inputs(dir: &Path, inputs: &[InputFile]) -> Result<Self, TrainError> {
        if !dir.is_dir() {
            return Err(TrainError::Output {
                path: dir.to_path_buf(),
                reason: "no such folder of FOV masks".into(),
            });
        }
        // (relative folder, stem) → mask files.
        let mut index: BTreeMap<(PathBuf, String), Vec<PathBuf>> = BTreeMap::new();
        let mut flat = true;
        for path in image_files_under(dir)? {
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            let folder = relative.parent().map(Path::to_path_buf).unwrap_or_default();
            flat &= folder.as_os_str().is_empty();
            let stem = stem_of(&path);
            index.entry((folder, stem)).or_default().push(path);
        }
        let mut by_input: BTreeMap<PathBuf, Result<PathBuf, String>> = BTreeMap::new();
        let mut claimed: BTreeMap<PathBuf, Vec<&InputFile>> = BTreeMap::new();
        for input in inputs {
            let folder = input
                .relative
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default();
            let stem = stem_of(&input.relative);
            let look_in = |folder: &Path| -> Vec<PathBuf> {
                SUFFIXES
                    .iter()
                    .filter_map(|s| index.get(&(folder.to_path_buf(), format!("{stem}{s}"))))
                    .flatten()
                    .cloned()
                    .collect()
            };
            let mut candidates = look_in(&folder);
            if candidates.is_empty() && flat {
                candidates = look_in(Path::new(""));
            }
            let result = match candidates.as_slice() {
                [mask] => {
                    claimed.entry(mask.clone()).or_default().push(input);
                    Ok(mask.clone())
                }
                [] => Err(format!(
                    "no FOV mask for it in {}: expected {} in {}",
                    dir.display(),
                    SUFFIXES.map(|s| format!("{stem}{s}.*")).join(" or "),
                    if flat {
                        "the folder".to_string()
                    } else {
                        format!("its folder {}", dir.join(&folder).display())
                    }
                )),
                several => Err(format!(
                    "several FOV masks match it: {} (keep one)",
                    several
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            by_input.insert(input.path.clone(), result);
        }
        // One mask for images of different folders: the stems repeat across folders.
        for (mask, owners) in claimed.into_iter().filter(|(_, o)| o.len() > 1) {
            let names: Vec<String> = owners
                .iter()
                .map(|i| i.path.display().to_string())
                .collect();
            for owner in owners {
                by_input.insert(
                    owner.path.clone(),
                    Err(format!(
                        "its FOV mask {} would also serve {}: images of different folders share \
                         a file name; give the masks the images' folder layout",
                        mask.display(),
                        names.join(", ")
                    )),
                );
            }
        }
        Ok(Self { by_input })
    }

    /// The FOV mask of `image`, or the error naming the files.
    pub fn mask_of(&self, image: &Path) -> Result<&Path, TrainError> {
        match self.by_input.get(image) {
            Some(Ok(mask)) => Ok(mask),
            Some(Err(reason)) => Err(TrainError::Output {
                path: image.to_path_buf(),
                reason: reason.clone(),
            }),
            None => Err(TrainError::Output {
                path: image.to_path_buf(),
                reason: "not among the inputs the FOV masks were matched to".into(),
            }),
        }
    }
}

/// The file name without its image extension (and `.gz`).
fn stem_of(path: &Path) -> String {
    drive_data::decode::image_stem(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // The index reads names only: PNG content whatever the extension (`.gif` too).
        image::GrayImage::new(2, 2)
            .save_with_format(path, image::ImageFormat::Png)
            .unwrap();
    }

    fn input(root: &Path, relative: &str) -> InputFile {
        InputFile {
            path: root.join(relative),
            relative: PathBuf::from(relative),
        }
    }

    /// Names starting with a year: the numeric id (the first run of digits) is the same for both
    /// images; the full stem tells them apart.
    #[test]
    fn stems_not_ids() {
        let dir = tempfile::tempdir().unwrap();
        let masks = dir.path().join("masks");
        touch(&masks.join("2019_001_mask.png"));
        touch(&masks.join("2019_002_mask.png"));
        let images = dir.path().join("images");
        let inputs = [
            input(&images, "2019_001.png"),
            input(&images, "2019_002.png"),
        ];
        let fov = FovMasks::match_inputs(&masks, &inputs).unwrap();
        assert_eq!(
            fov.mask_of(&inputs[1].path).unwrap(),
            masks.join("2019_002_mask.png")
        );
        assert_eq!(
            fov.mask_of(&inputs[0].path).unwrap(),
            masks.join("2019_001_mask.png")
        );
    }

    #[test]
    fn drive_names_and_mirrored_folders() {
        let dir = tempfile::tempdir().unwrap();
        let masks = dir.path().join("masks");
        touch(&masks.join("site-a/001_mask.png"));
        touch(&masks.join("site-b/001_fov.png"));
        let images = dir.path().join("images");
        let inputs = [
            input(&images, "site-a/001.png"),
            input(&images, "site-b/001.png"),
        ];
        let fov = FovMasks::match_inputs(&masks, &inputs).unwrap();
        assert_eq!(
            fov.mask_of(&inputs[0].path).unwrap(),
            masks.join("site-a/001_mask.png")
        );
        assert_eq!(
            fov.mask_of(&inputs[1].path).unwrap(),
            masks.join("site-b/001_fov.png")
        );
    }

    #[test]
    fn missing_ambiguous_and_shared_masks_are_errors_naming_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let masks = dir.path().join("masks");
        touch(&masks.join("01_test_mask.gif"));
        touch(&masks.join("01_test_fov.png"));
        touch(&masks.join("007_mask.png"));
        let images = dir.path().join("images");
        let inputs = [
            input(&images, "01_test.tif"),
            input(&images, "02_test.tif"),
            input(&images, "a/007.png"),
            input(&images, "b/007.png"),
        ];
        let fov = FovMasks::match_inputs(&masks, &inputs).unwrap();
        let err = |i: usize| fov.mask_of(&inputs[i].path).unwrap_err().to_string();
        assert!(
            err(0).contains("01_test_mask.gif") && err(0).contains("01_test_fov.png"),
            "{}",
            err(0)
        );
        assert!(
            err(1).contains("02_test.tif") && err(1).contains("02_test_mask"),
            "{}",
            err(1)
        );
        for i in [2, 3] {
            assert!(
                err(i).contains("007_mask.png") && err(i).contains("a/007.png"),
                "{}",
                err(i)
            );
        }
    }
}
