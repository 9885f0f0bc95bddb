//! `predict`: run a model on image files, writing per image (at its original resolution) a binary
//! vessel mask, an 8-bit vessel probability and an overlay on the fundus. Outside the field of
//! view (from a FOV mask, else derived from the image) everything is background.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use deeplab::{DeepLab, DeepLabConfig};
use drive_data::decode::{read_mask, read_rgb};
use drive_data::fov::derive_fov;
use drive_data::layout::numeric_id;
use drive_data::{Normalization, Sample};
use image::{GrayImage, RgbImage};

use crate::checkpoint;
use crate::error::TrainError;
use crate::overlay::overlay;
use crate::predict_inputs::list_input_files;
use crate::probability::{predict_probability_batch, predict_probability_tiled, Tiling};

/// `imgsz` suits `config` (DeepLabV3+ needs multiples of its output stride).
pub fn check_imgsz(imgsz: usize, config: &DeepLabConfig) -> Result<(), TrainError> {
    let multiple = config.input_multiple();
    if imgsz % multiple != 0 {
        return Err(TrainError::Config(format!(
            "input size {imgsz} is not a multiple of {multiple}, as {} needs; the nearest are {} \
             and {}",
            config.describe(),
            imgsz / multiple * multiple,
            imgsz.div_ceil(multiple) * multiple
        )));
    }
    Ok(())
}

/// A model ready to predict, with what its inputs need.
pub struct Predictor<B: Backend> {
    /// The inference model, BatchNorms folded into the convolutions.
    pub model: DeepLab<B>,
    /// Its architecture.
    pub config: DeepLabConfig,
    pub normalization: Normalization,
    /// Square model input size.
    pub imgsz: usize,
    /// The sliding window used when a call gives none (a crop-trained checkpoint's).
    pub tiling: Option<Tiling>,
    pub device: B::Device,
}

impl<B: Backend> Predictor<B> {
    /// From one of our checkpoints (a checkpoint folder, `checkpoints/`, or a training `--out`
    /// folder: then `best-iou`): model, normalisation and image size come from its metadata.
    pub fn from_checkpoint(path: &Path, device: &B::Device) -> Result<Self, TrainError> {
        let dir = checkpoint::find(path)?;
        let (model, meta) = checkpoint::load_model::<B>(&dir, device)?;
        Ok(Self {
            model: model.fold_batch_norms(),
            config: meta.model,
            normalization: meta.normalization,
            imgsz: meta.imgsz,
            tiling: meta.tiling,
            device: device.clone(),
        })
    }

    /// From a reference-library checkpoint with 2 classes — a torchvision DeepLabV3 `.pth` or an
    /// SMP DeepLabV3+ one, e.g. fine-tuned in PyTorch — whose architecture, normalisation and
    /// input size must be given (`imgsz` a multiple of what the architecture needs).
    pub fn from_pretrained(
        path: &Path,
        config: &DeepLabConfig,
        normalization: Normalization,
        imgsz: usize,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        check_imgsz(imgsz, config)?;
        let (model, report) = config.init::<B>(device).load_pretrained(path)?;
        if !report.fresh.is_empty() {
            return Err(TrainError::Config(format!(
                "{} leaves {} tensors untrained (e.g. `{}`): predicting needs a full {} \
                 checkpoint with {} classes",
                path.display(),
                report.fresh.len(),
                report.fresh[0],
                config.describe(),
                config.num_classes()
            )));
        }
        Ok(Self {
            model: model.fold_batch_norms(),
            config: config.clone(),
            normalization,
            imgsz,
            tiling: None,
            device: device.clone(),
        })
    }

    /// Vessel probability of `sample` at its original size; `tiling` for sliding windows (default:
    /// the checkpoint's, else the whole image).
    pub fn probability(&self, sample: &Sample, tta: bool, tiling: Option<Tiling>) -> Vec<f32> {
        let tiling = tiling.or(self.tiling).unwrap_or(Tiling {
            tile: usize::MAX,
            overlap: 0.0,
        });
        predict_probability_tiled(
            &self.model,
            sample,
            self.imgsz,
            &self.normalization,
            tta,
            tiling,
            &self.device,
        )
    }
}

impl<B: Backend> Predictor<B> {
    /// [`Predictor::probability`] of each sample; whole images without TTA go through the model
    /// together, as one batch.
    pub fn probabilities(
        &self,
        samples: &[&Sample],
        tta: bool,
        tiling: Option<Tiling>,
    ) -> Vec<Vec<f32>> {
        let whole = tiling.or(self.tiling).is_none();
        if whole && !tta && samples.len() > 1 {
            let (model, norm) = (&self.model, &self.normalization);
            return predict_probability_batch(model, samples, self.imgsz, norm, &self.device);
        }
        samples
            .iter()
            .map(|s| self.probability(s, tta, tiling))
            .collect()
    }
}

/// Prediction settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Probability at or above which a pixel is vessel.
    pub threshold: f32,
    pub tta: bool,
    pub tiling: Option<Tiling>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            tta: false,
            tiling: None,
        }
    }
}

/// The files written for one input.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionFiles {
    pub input: PathBuf,
    pub mask: PathBuf,
    pub probability: PathBuf,
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
/// (`out_dir/<relative folder>/<stem>_mask.png`, …).
pub fn output_paths_for(path: &Path, relative: &Path, out_dir: &Path) -> PredictionFiles {
    let stem = relative
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
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

/// The image files of `input` (a file, or a folder's supported images at any depth, in the
/// order of their relative paths; see [`crate::predict_inputs`]).
pub fn list_inputs(input: &Path) -> Result<Vec<PathBuf>, TrainError> {
    Ok(list_input_files(input)?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// The FOV mask of `image_path` in `fov_dir` (same numeric id), if a folder is given.
fn fov_file(fov_dir: Option<&Path>, image_path: &Path) -> Result<Option<PathBuf>, TrainError> {
    let Some(dir) = fov_dir else { return Ok(None) };
    let id = numeric_id(image_path).ok_or_else(|| TrainError::Output {
        path: image_path.to_path_buf(),
        reason: "no numeric id in the file name to find its FOV mask".into(),
    })?;
    let files = list_inputs(dir)?;
    files
        .into_iter()
        .find(|f| numeric_id(f) == Some(id))
        .map(Some)
        .ok_or_else(|| TrainError::Output {
            path: image_path.to_path_buf(),
            reason: format!("no FOV mask with id {id} in {}", dir.display()),
        })
}

/// Reads an image file as a [`Sample`] for prediction: its FOV from `fov_dir` (a mask with the same
/// numeric id) when given, else derived from the image.
pub fn read_input(input: &Path, fov_dir: Option<&Path>) -> Result<Sample, TrainError> {
    let image = read_rgb(input)?;
    let (fov, fov_derived) = match fov_file(fov_dir, input)? {
        Some(path) => {
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

/// The three output images of one prediction.
pub struct PredictionImages {
    /// 0 / 255.
    pub mask: GrayImage,
    /// The vessel probability × 255.
    pub probability: GrayImage,
    /// The mask over the fundus.
    pub overlay: RgbImage,
}

/// The output images of `sample` from its vessel probability; outside the sample's FOV
/// everything is background.
pub fn prediction_images(sample: &Sample, prob: &[f32], threshold: f32) -> PredictionImages {
    let (w, h) = sample.image.dimensions();
    let inside = sample.fov.as_raw();
    let prob_u8: Vec<u8> = prob
        .iter()
        .zip(inside)
        .map(|(&p, &f)| {
            if f == 0 {
                0
            } else {
                (p.clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect();
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
        probability: GrayImage::from_raw(w, h, prob_u8).expect("size"),
        overlay,
    }
}

/// Writes the images to `files`, each under a temporary name in its folder, renamed when
/// complete (a reader, or a rerun after a kill, never sees a partial PNG). The mask is renamed
/// last.
pub fn write_prediction(
    images: &PredictionImages,
    files: &PredictionFiles,
) -> Result<(), TrainError> {
    let fail = |path: &Path, reason: String| TrainError::Output {
        path: path.to_path_buf(),
        reason,
    };
    if let Some(dir) = files.mask.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
    }
    let save = |path: &Path, write: &dyn Fn(&Path) -> image::ImageResult<()>| {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        let partial = path.with_file_name(format!(".{}.partial", name.unwrap_or_default()));
        write(&partial).map_err(|e| fail(&partial, e.to_string()))?;
        std::fs::rename(&partial, path).map_err(|e| fail(path, e.to_string()))
    };
    let png = image::ImageFormat::Png;
    save(&files.probability, &|p| {
        images.probability.save_with_format(p, png)
    })?;
    save(&files.overlay, &|p| images.overlay.save_with_format(p, png))?;
    save(&files.mask, &|p| images.mask.save_with_format(p, png))
}

/// Predicts one sample and writes its three outputs, named after `sample.image_path`, into
/// `out_dir`; outside the sample's FOV everything is background.
pub fn predict_sample<B: Backend>(
    predictor: &Predictor<B>,
    sample: &Sample,
    out_dir: &Path,
    options: &PredictOptions,
) -> Result<PredictionFiles, TrainError> {
    let prob = predictor.probability(sample, options.tta, options.tiling);
    let files = output_paths(&sample.image_path, out_dir);
    write_prediction(&prediction_images(sample, &prob, options.threshold), &files)?;
    Ok(files)
}

/// Predicts one image file (see [`read_input`]) and writes its three outputs.
pub fn predict_file<B: Backend>(
    predictor: &Predictor<B>,
    input: &Path,
    fov_dir: Option<&Path>,
    out_dir: &Path,
    options: &PredictOptions,
) -> Result<PredictionFiles, TrainError> {
    predict_sample(predictor, &read_input(input, fov_dir)?, out_dir, options)
}

/// Outcome of a folder run.
#[derive(Debug, Default)]
pub struct PredictReport {
    pub written: Vec<PredictionFiles>,
    /// Inputs that failed, with the reason; the others were still processed.
    pub failed: Vec<(PathBuf, String)>,
}

/// Predicts every input, reporting progress through `progress(done, total, file, result)`; a
/// failing file is recorded and skipped.
pub fn predict_files<B: Backend>(
    predictor: &Predictor<B>,
    inputs: &[PathBuf],
    fov_dir: Option<&Path>,
    out_dir: &Path,
    options: &PredictOptions,
    mut progress: impl FnMut(usize, usize, &Path, &Result<PredictionFiles, TrainError>),
) -> PredictReport {
    let mut report = PredictReport::default();
    for (i, input) in inputs.iter().enumerate() {
        let result = predict_file(predictor, input, fov_dir, out_dir, options);
        progress(i + 1, inputs.len(), input, &result);
        match result {
            Ok(files) => report.written.push(files),
            Err(e) => report.failed.push((input.clone(), e.to_string())),
        }
    }
    report
}
