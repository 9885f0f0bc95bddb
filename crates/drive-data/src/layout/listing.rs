//! Listing a folder's image files by id, and pairing images with their masks.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Entry;
use crate::decode::{check_extension, is_ignored};
use crate::error::{DataError, Result};

/// The files of one role (images, vessel masks, FOV masks) by id, and where they were listed.
pub(crate) struct Listing {
    pub(crate) folder: PathBuf,
    pub(crate) files: BTreeMap<u32, PathBuf>,
}

/// How a folder's files are read.
pub(crate) struct Naming<'a> {
    /// What the files are, for messages ("train images").
    pub(crate) what: &'a str,
    /// Whether a file (by name) belongs to this role; others are skipped. Hidden and system
    /// files and sub-folders are always skipped.
    pub(crate) select: &'a dyn Fn(&str) -> bool,
    /// The file's id; `None` is an error naming `expected`.
    pub(crate) id: &'a dyn Fn(&Path) -> Option<u32>,
    /// The naming the dataset uses, for the error when `id` finds none.
    pub(crate) expected: &'a str,
}

/// The selected files of `dir` by id. A selected file that is not a supported image, has no id,
/// or repeats an id is an error.
pub(crate) fn list(dir: &Path, naming: &Naming) -> Result<Listing> {
    if !dir.is_dir() {
        return Err(DataError::MissingFolder {
            path: dir.to_path_buf(),
            what: naming.what.to_string(),
        });
    }
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| DataError::io(dir, e))? {
        let entry = entry.map_err(|e| DataError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if is_ignored(&name) || path.is_dir() || !(naming.select)(&name) {
            continue;
        }
        paths.push(path);
    }
    paths.sort();
    let mut files: BTreeMap<u32, PathBuf> = BTreeMap::new();
    for path in paths {
        check_extension(&path)?;
        let id = (naming.id)(&path).ok_or_else(|| DataError::UnexpectedName {
            path: path.clone(),
            expected: naming.expected.to_string(),
        })?;
        if let Some(first) = files.get(&id) {
            return Err(DataError::DuplicateId {
                id,
                first: first.clone(),
                second: path,
            });
        }
        files.insert(id, path);
    }
    Ok(Listing {
        folder: dir.to_path_buf(),
        files,
    })
}

/// Images paired with their vessel and FOV masks by id, in id order. Every image needs a mask of
/// each listed kind and every mask an image.
pub(crate) fn pair(
    images: Listing,
    vessels: Option<Listing>,
    fov: Option<Listing>,
) -> Result<Vec<Entry>> {
    if images.files.is_empty() {
        return Err(DataError::EmptyFolder {
            path: images.folder,
        });
    }
    for (name, masks) in [("vessel mask", &vessels), ("FOV mask", &fov)] {
        let Some(masks) = masks else { continue };
        if let Some((&id, path)) = images
            .files
            .iter()
            .find(|(id, _)| !masks.files.contains_key(id))
        {
            return Err(DataError::Unpaired {
                path: path.clone(),
                id,
                missing: name,
                folder: masks.folder.clone(),
            });
        }
        if let Some((&id, path)) = masks
            .files
            .iter()
            .find(|(id, _)| !images.files.contains_key(id))
        {
            return Err(DataError::Unpaired {
                path: path.clone(),
                id,
                missing: "image",
                folder: images.folder.clone(),
            });
        }
    }
    Ok(images
        .files
        .into_iter()
        .map(|(id, image)| Entry {
            id,
            image,
            vessels: vessels.as_ref().map(|m| m.files[&id].clone()),
            fov: fov.as_ref().map(|m| m.files[&id].clone()),
        })
        .collect())
}

/// The sub-folder of `dir` whose name, ignoring case, spaces, `_` and `-`, is one of `names`
/// (given in that normalised form): FIVES's archive spells `Ground truth` differently in places.
pub(crate) fn find_folder(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    let normalise = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, ' ' | '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter(|e| names.contains(&normalise(&e.file_name().to_string_lossy()).as_str()))
        .map(|e| e.path())
        .collect();
    found.sort();
    found.into_iter().next()
}
