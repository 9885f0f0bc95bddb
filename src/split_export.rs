//! `check-data --export DIR`: a dataset's splits as this program reads them — the images, the
//! chosen observer's vessel labels and the FOV masks (from files or derived from the images),
//! all decoded and written as PNG, listed in `DIR/split.json`. Another program (e.g. a PyTorch
//! training script) then trains and evaluates on exactly the same images, labels, FOV and
//! validation hold-out without reading TIFF, GIF or `.ppm.gz` or knowing any dataset's layout.
//!
//! `split.json`: `{"dataset": ..., "splits": {"train": [entry, ...], "valid": [...], "test":
//! [...]}}`, each entry `{"id", "name", "image", "vessels", "fov", "fov_derived", "source"}` with
//! paths relative to `DIR` (`vessels` is `null` for unlabelled images); masks are 0/255.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use drive_data::{DatasetDir, Sample, Split};
use rayon::prelude::*;
use serde::Serialize;

/// One exported image.
#[derive(Debug, Serialize)]
struct ExportedEntry {
    id: u32,
    /// The image file's name up to its first dot: what `predict` names its outputs after.
    name: String,
    image: String,
    vessels: Option<String>,
    fov: String,
    fov_derived: bool,
    /// The file it was decoded from.
    source: PathBuf,
}

#[derive(Debug, Serialize)]
struct Manifest {
    dataset: String,
    splits: std::collections::BTreeMap<String, Vec<ExportedEntry>>,
}

/// The image file's name up to its first dot (`21_training.tif` → `21_training`,
/// `im0001.ppm.gz` → `im0001`).
fn stem(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.split_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem.to_string(),
        _ => name,
    }
}

/// 0/1 mask → 0/255 grey image.
fn visible(mask: &image::GrayImage) -> image::GrayImage {
    let mut out = mask.clone();
    out.iter_mut()
        .for_each(|v| *v = if *v != 0 { 255 } else { 0 });
    out
}

fn save(img: image::DynamicImage, path: &Path) -> Result<()> {
    img.save_with_format(path, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", path.display()))
}

fn export_one(sample: &Sample, split: Split, out: &Path) -> Result<ExportedEntry> {
    let name = stem(&sample.image_path);
    let rel = |kind: &str| format!("{split}/{kind}/{name}.png");
    save(sample.image.clone().into(), &out.join(rel("images")))?;
    save(visible(&sample.fov).into(), &out.join(rel("fov")))?;
    let vessels = match &sample.vessels {
        Some(v) => {
            save(visible(v).into(), &out.join(rel("vessels")))?;
            Some(rel("vessels"))
        }
        None => None,
    };
    Ok(ExportedEntry {
        id: sample.id,
        image: rel("images"),
        vessels,
        fov: rel("fov"),
        fov_derived: sample.fov_derived,
        source: sample.image_path.clone(),
        name,
    })
}

/// Writes `splits` of `dir` (those it has) into `out` (created; an existing `split.json` there
/// is replaced) and returns the number of images written.
pub fn export_splits(dir: &DatasetDir, splits_to_write: &[Split], out: &Path) -> Result<usize> {
    let mut splits = std::collections::BTreeMap::new();
    let mut written = 0;
    for &split in splits_to_write {
        if !dir.has_split(split) {
            continue;
        }
        for kind in ["images", "vessels", "fov"] {
            let folder = out.join(split.to_string()).join(kind);
            fs::create_dir_all(&folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        let entries = dir.entries(split)?;
        let exported: Vec<ExportedEntry> = entries
            .par_iter()
            .map(|e| export_one(&Sample::load(e)?, split, out))
            .collect::<Result<_>>()?;
        let mut names: Vec<&str> = exported.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            anyhow::bail!(
                "two {split} images are both named `{}` once their extensions are dropped: \
                 export cannot write both; rename one",
                w[0]
            );
        }
        written += exported.len();
        splits.insert(split.to_string(), exported);
    }
    let manifest = Manifest {
        dataset: dir.describe(),
        splits,
    };
    let path = out.join("split.json");
    fs::write(&path, serde_json::to_string_pretty(&manifest)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_drop_every_extension() {
        assert_eq!(stem(Path::new("a/21_training.tif")), "21_training");
        assert_eq!(stem(Path::new("im0001.ppm.gz")), "im0001");
        assert_eq!(stem(Path::new("Image_01L.jpg")), "Image_01L");
        assert_eq!(stem(Path::new(".hidden")), ".hidden");
    }
}
