//! What `predict` writes for one image: the file names (`<stem>_mask.png`, `<stem>_prob.png`,
//! `<stem>_overlay.png`), the three images from a probability map, and their atomic writing.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use drive_data::Sample;
use image::{GrayImage, ImageBuffer, Luma, RgbImage};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::predict::overlay::overlay;

/// The files written for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionFiles {
    /// The image read.
    pub input: PathBuf,
    /// `<stem>_mask.png`: 255 where vessel.
    pub mask: PathBuf,
    /// `<stem>_prob.png`: the vessel probability.
    pub probability: PathBuf,
    /// `<stem>_overlay.png`: the mask over the fundus.
    pub overlay: PathBuf,
}

impl PredictionFiles {
    /// The three outputs, mask first.
    pub fn outputs(&self) -> [&Path; 3] {
        [&self.mask, &self.probability, &self.overlay]
    }

    /// Whether all three outputs exist. Each is written under a temporary name and renamed when
    /// complete, so an existing output is a whole one; an input with some missing was stopped
    /// while being written and is predicted again.
    pub fn complete(&self) -> bool {
        self.outputs().iter().all(|p| p.is_file())
    }
}

/// Output file names for an input: `<stem>_mask.png`, `<stem>_prob.png`, `<stem>_overlay.png`
/// in `out_dir`.
pub fn output_paths(input: &Path, out_dir: &Path) -> PredictionFiles {
    let name = input.file_name().map(PathBuf::from).unwrap_or_default();
    output_paths_for(input, &name, out_dir)
}

/// Output file names for an input read from `path`, at `relative` below `out_dir`
/// (`out_dir/<relative folder>/<stem>_mask.png`, …; the stem without `.gz` either:
/// `im0001.ppm.gz` → `im0001_mask.png`).
pub fn output_paths_for(path: &Path, relative: &Path, out_dir: &Path) -> PredictionFiles {
    let stem = Some(drive_data::decode::image_stem(relative))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "image".into());
    let dir = match relative.parent() {
        Some(parent) => out_dir.join(parent),
        None => out_dir.to_path_buf(),
    };
    PredictionFiles {
        input: path.to_path_buf(),
        mask: dir.join(format!("{stem}_mask.png")),
        probability: dir.join(format!("{stem}_prob.png")),
        overlay: dir.join(format!("{stem}_overlay.png")),
    }
}

/// The bit depth of `<stem>_prob.png`: 8 (levels `round(255 p)`, what most tools read) or 16
/// (`round(65535 p)`: resolution 1.5e-5, for threshold-free scores as the literature computes
/// them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProbDepth {
    /// 8-bit grey levels.
    #[default]
    #[serde(rename = "8")]
    Eight,
    /// 16-bit grey levels.
    #[serde(rename = "16")]
    Sixteen,
}

impl ProbDepth {
    /// The largest level: 255 or 65 535.
    pub fn max_level(self) -> u32 {
        match self {
            Self::Eight => 255,
            Self::Sixteen => 65_535,
        }
    }
}

/// A vessel probability map, `round(p · max level)` per pixel.
pub enum ProbabilityMap {
    /// 8-bit levels.
    Eight(GrayImage),
    /// 16-bit levels.
    Sixteen(ImageBuffer<Luma<u16>, Vec<u16>>),
}

/// The three output images of one prediction.
pub struct PredictionImages {
    /// 0 / 255.
    pub mask: GrayImage,
    /// The vessel probability, in levels of the chosen depth.
    pub probability: ProbabilityMap,
    /// The mask over the fundus.
    pub overlay: RgbImage,
}

/// The output images of `sample` from its vessel probability, the probability map at `depth`;
/// outside the sample's FOV everything is background.
pub fn prediction_images(
    sample: &Sample,
    prob: &[f32],
    threshold: f32,
    depth: ProbDepth,
) -> PredictionImages {
    let (w, h) = sample.image.dimensions();
    let inside = sample.fov.as_raw();
    let max = depth.max_level() as f32;
    let levels = prob.iter().zip(inside).map(|(&p, &f)| {
        if f == 0 {
            0
        } else {
            (p.clamp(0.0, 1.0) * max).round() as u16
        }
    });
    let probability = match depth {
        ProbDepth::Eight => {
            let raw = levels.map(|v| v as u8).collect();
            ProbabilityMap::Eight(GrayImage::from_raw(w, h, raw).expect("size"))
        }
        ProbDepth::Sixteen => {
            let raw = levels.collect();
            ProbabilityMap::Sixteen(ImageBuffer::from_raw(w, h, raw).expect("size"))
        }
    };
    let mask: Vec<u8> = prob
        .iter()
        .zip(inside)
        .map(|(&p, &f)| u8::from(f != 0 && p >= threshold))
        .collect();
    let mask = GrayImage::from_raw(w, h, mask).expect("size");
    let overlay = overlay(&sample.image, &mask, None, Some(&sample.fov));
    let mut binary = mask;
    binary.iter_mut().for_each(|v| *v *= 255);
    PredictionImages {
        mask: binary,
        probability,
        overlay,
    }
}

/// The temporary files a killed writer left for the output `name` in `dir`
/// (`.<name>.<pid>.partial` of another process, or `.<name>.partial` of older versions): the
/// folder is listed once per process, on its first write there, and each name's leftovers are
/// handed out once, to be removed when this process has written that output itself. Only the
/// output's own writer removes them, so another task writing other images into the same folder
/// (another node of an array job) keeps its temporary files.
fn stale_partials(dir: &Path, name: &str) -> Vec<PathBuf> {
    type ByName = HashMap<String, Vec<PathBuf>>;
    static FOUND: OnceLock<Mutex<HashMap<PathBuf, ByName>>> = OnceLock::new();
    let mut found = FOUND
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let by_name = found.entry(dir.to_path_buf()).or_insert_with(|| {
        let own = format!(".{}", std::process::id());
        let mut by_name = ByName::new();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return by_name;
        };
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().to_string();
            let Some(inner) = file
                .strip_prefix('.')
                .and_then(|f| f.strip_suffix(".partial"))
            else {
                continue;
            };
            let output = match inner.rsplit_once('.') {
                Some((_, pid)) if format!(".{pid}") == own => continue,
                Some((output, pid)) if pid.bytes().all(|b| b.is_ascii_digit()) => output,
                _ => inner,
            };
            by_name
                .entry(output.to_string())
                .or_default()
                .push(entry.path());
        }
        by_name
    });
    by_name.remove(name).unwrap_or_default()
}

/// Writes the images to `files`, each under a temporary name of this process in its folder
/// (`.<name>.<pid>.partial`), synced to disk, then renamed, the mask last, and the folder synced:
/// a reader, a rerun after a kill or a power loss, or another process writing the same outputs
/// never sees a partial PNG.
pub fn write_prediction(
    images: &PredictionImages,
    files: &PredictionFiles,
) -> Result<(), TrainError> {
    let fail = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    let dir = files.mask.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
    let save = |path: &Path, encode: &dyn Fn(&mut BufWriter<File>) -> image::ImageResult<()>| {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let partial = path.with_file_name(format!(
            ".{}.{}.partial",
            name.unwrap_or_default(),
            std::process::id()
        ));
        let write = || -> Result<(), String> {
            let mut out = BufWriter::new(File::create(&partial).map_err(|e| e.to_string())?);
            encode(&mut out).map_err(|e| e.to_string())?;
            let file = out.into_inner().map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())
        };
        if let Err(reason) = write() {
            let _ = std::fs::remove_file(&partial);
            return Err(fail(&partial, reason));
        }
        std::fs::rename(&partial, path).map_err(|e| fail(path, e.to_string()))?;
        if let Some(name) = path.file_name() {
            for stale in stale_partials(dir, &name.to_string_lossy()) {
                let _ = std::fs::remove_file(stale);
            }
        }
        Ok(())
    };
    let png = image::ImageFormat::Png;
    save(&files.probability, &|w| match &images.probability {
        ProbabilityMap::Eight(map) => map.write_to(w, png),
        ProbabilityMap::Sixteen(map) => map.write_to(w, png),
    })?;
    save(&files.overlay, &|w| images.overlay.write_to(w, png))?;
    save(&files.mask, &|w| images.mask.write_to(w, png))?;
    // The renames on disk too (best effort where a folder cannot be opened).
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
