//! What `predict` reads: one image file, every image under a folder (recursively), or the paths
//! listed in a text file — each with the path its outputs keep, relative to the input root, so
//! that `out/` mirrors the input's layout and shards agree on which input is which.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use drive_data::decode::{check_extension, is_ignored, read_mask, read_rgb};
use drive_data::fov::derive_fov;
use drive_data::layout::numeric_id;
use drive_data::Sample;

use crate::error::TrainError;

/// An input image and its path relative to the input root (what shards hash and what the
/// outputs mirror).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct InputFile {
    /// Where to read it.
    pub path: PathBuf,
    /// Relative to the input root (a single file: its name).
    pub relative: PathBuf,
}

impl InputFile {
    /// The relative path with `/` separators (stable across platforms: the shard key).
    pub fn key(&self) -> String {
        let parts: Vec<String> = self
            .relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        parts.join("/")
    }
}

/// The image files under `input` — the file itself, or a folder's supported images at any depth
/// (hidden files and folders skipped) — in the order of their relative paths.
pub fn list_input_files(input: &Path) -> Result<Vec<InputFile>, TrainError> {
    if input.is_file() {
        let name = input.file_name().map(PathBuf::from).unwrap_or_default();
        return Ok(vec![InputFile {
            path: input.to_path_buf(),
            relative: name,
        }]);
    }
    let mut files: Vec<InputFile> = image_files_under(input)?
        .into_iter()
        .map(|path| InputFile {
            relative: path.strip_prefix(input).unwrap_or(&path).to_path_buf(),
            path,
        })
        .collect();
    files.sort_by(|a, b| a.relative.cmp(&b.relative));
    if files.is_empty() {
        return Err(TrainError::Output {
            path: input.to_path_buf(),
            reason: "no image files (tif, gif, png, jpg, bmp) to predict, at any depth".into(),
        });
    }
    check_distinct_outputs(&files)?;
    Ok(files)
}

/// Every supported image file under `dir`, at any depth (hidden files and folders skipped),
/// in no particular order.
pub fn image_files_under(dir: &Path) -> Result<Vec<PathBuf>, TrainError> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let err = |e: std::io::Error| TrainError::Output {
            path: folder.clone(),
            reason: e.to_string(),
        };
        for entry in std::fs::read_dir(&folder).map_err(err)? {
            let path = entry.map_err(err)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            if is_ignored(&name) {
                continue;
            }
            if path.is_dir() {
                folders.push(path);
            } else if path.is_file() && check_extension(&path).is_ok() {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// The images listed in `list`, one path per line (blank lines and `#` comments skipped;
/// relative paths are relative to the list's folder). Outputs keep each path relative to the
/// deepest folder holding all of them. Missing files are kept: reading them fails and is
/// reported per image, as for any unreadable file.
pub fn read_input_list(list: &Path) -> Result<Vec<InputFile>, TrainError> {
    let text = std::fs::read_to_string(list).map_err(|e| TrainError::Output {
        path: list.to_path_buf(),
        reason: e.to_string(),
    })?;
    let base = list.parent().unwrap_or(Path::new(""));
    let paths: Vec<PathBuf> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| normalise(&base.join(l)))
        .collect();
    if paths.is_empty() {
        return Err(TrainError::Output {
            path: list.to_path_buf(),
            reason: "the list names no image (one path per line)".into(),
        });
    }
    let root = common_folder(&paths);
    let mut files: Vec<InputFile> = paths
        .into_iter()
        .map(|path| InputFile {
            relative: path.strip_prefix(&root).unwrap_or(&path).to_path_buf(),
            path,
        })
        .collect();
    files.sort();
    files.dedup();
    check_distinct_outputs(&files)?;
    Ok(files)
}

/// `a/./b/../c` → `a/c`, lexically.
fn normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// The deepest folder that holds every path.
fn common_folder(paths: &[PathBuf]) -> PathBuf {
    let mut common: Vec<Component> = paths[0]
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for p in &paths[1..] {
        let parts: Vec<Component> = p
            .parent()
            .map(|p| p.components().collect())
            .unwrap_or_default();
        let shared = common
            .iter()
            .zip(&parts)
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(shared);
    }
    common.iter().collect()
}

/// Two inputs whose outputs would be the same files (`01.png` and `01.tif` in one folder).
fn check_distinct_outputs(files: &[InputFile]) -> Result<(), TrainError> {
    let mut seen: BTreeMap<PathBuf, &Path> = BTreeMap::new();
    for f in files {
        let key = f.relative.with_extension("");
        if let Some(other) = seen.insert(key, &f.path) {
            return Err(TrainError::Output {
                path: f.path.clone(),
                reason: format!(
                    "its outputs would overwrite those of {} (same folder and name without \
                     extension): rename one of them",
                    other.display()
                ),
            });
        }
    }
    Ok(())
}

/// The image files of `input` (a file, or a folder's supported images at any depth, in the
/// order of their relative paths; see [`crate::predict::inputs`]).
pub fn list_inputs(input: &Path) -> Result<Vec<PathBuf>, TrainError> {
    Ok(list_input_files(input)?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// `path` made absolute with its existing part's symbolic links resolved (the rest as written).
fn resolved(path: &Path) -> PathBuf {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            return rest.iter().rev().fold(real, |p, part| p.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name.to_os_string());
                existing = parent;
            }
            _ => return absolute,
        }
    }
}

/// Refuses an output folder inside the inputs' root folder (the input folder, or the deepest
/// folder holding a list's images): the PNGs written there would be read as inputs by the next
/// run over that folder, and a sharded run would hash them into shards.
pub fn check_outside_inputs(out: &Path, inputs: &[InputFile]) -> Result<(), TrainError> {
    let Some(first) = inputs.first() else {
        return Ok(());
    };
    let mut root = first.path.clone();
    for _ in first.relative.components() {
        root.pop();
    }
    let (out_abs, root_abs) = (resolved(out), resolved(&root));
    if out_abs.starts_with(&root_abs) {
        return Err(TrainError::Output {
            path: out.to_path_buf(),
            reason: format!(
                "the output folder is inside the input folder {}: the predictions would be read \
                 as inputs by the next run over it; give an --out outside it",
                root.display()
            ),
        });
    }
    Ok(())
}

/// Reads an image file as a [`Sample`] for prediction: its FOV from `fov_mask` when given (see
/// [`crate::predict::fov_masks`] for matching masks to images), else derived from the image.
pub fn read_input(input: &Path, fov_mask: Option<&Path>) -> Result<Sample, TrainError> {
    let image = read_rgb(input)?;
    let (fov, fov_derived) = match fov_mask {
        Some(path) => {
            let path = path.to_path_buf();
            let fov = read_mask(&path)?;
            if fov.dimensions() != image.dimensions() {
                return Err(TrainError::Output {
                    path,
                    reason: format!(
                        "FOV mask is {:?} but the image is {:?}",
                        fov.dimensions(),
                        image.dimensions()
                    ),
                });
            }
            (fov, false)
        }
        None => (derive_fov(&image), true),
    };
    Ok(Sample {
        id: numeric_id(input).unwrap_or(0),
        image_path: input.to_path_buf(),
        image,
        vessels: None,
        fov,
        fov_derived,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(root: &Path, relative: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"not decoded here").unwrap();
    }

    #[test]
    fn folders_are_walked_keeping_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "b/2.png",
            "a/x/1.jpg",
            "3.tif",
            ".hidden/4.png",
            "a/notes.txt",
            "a/.5.png",
        ] {
            touch(dir.path(), f);
        }
        let files = list_input_files(dir.path()).unwrap();
        let keys: Vec<String> = files.iter().map(InputFile::key).collect();
        assert_eq!(keys, ["3.tif", "a/x/1.jpg", "b/2.png"]);
        assert_eq!(files[1].path, dir.path().join("a/x/1.jpg"));
        let single = list_input_files(&dir.path().join("b/2.png")).unwrap();
        assert_eq!(single[0].key(), "2.png");
    }

    #[test]
    fn clashing_outputs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), "s/01.png");
        touch(dir.path(), "s/01.tif");
        let err = list_input_files(dir.path()).unwrap_err().to_string();
        assert!(err.contains("overwrite") && err.contains("01.png"), "{err}");
    }

    #[test]
    fn lists_resolve_against_their_folder() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("lists/cohort.txt");
        std::fs::create_dir_all(list.parent().unwrap()).unwrap();
        let abs = dir.path().join("imgs/site2/7.png");
        std::fs::write(
            &list,
            format!(
                "# cohort\n../imgs/site1/5.png\n\n  {}  \n../imgs/./site1/6.png\n",
                abs.display()
            ),
        )
        .unwrap();
        let files = read_input_list(&list).unwrap();
        let keys: Vec<String> = files.iter().map(InputFile::key).collect();
        assert_eq!(keys, ["site1/5.png", "site1/6.png", "site2/7.png"]);
        assert_eq!(files[2].path, abs);
        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, "# nothing\n").unwrap();
        assert!(read_input_list(&empty).is_err());
    }
}
