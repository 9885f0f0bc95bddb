//! [`Predictor`]: a model ready to predict (from one of our checkpoints or a reference library's
//! file) and the one-image-at-a-time calls that write its outputs.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use deeplab::{DeepLab, DeepLabConfig};
use drive_data::{Normalization, Sample};

use crate::error::TrainError;
use crate::model::checkpoint;
use crate::model::fingerprint::fingerprint;
use crate::model::pytorch::{read_smp_pretrained, state_dict_config, SMP_CONFIG};
use crate::model::Tiling;
use crate::predict::fov_masks::FovMasks;
use crate::predict::inputs::read_input;
use crate::predict::outputs::{
    output_paths, prediction_images, write_prediction, PredictionFiles, ProbDepth,
};
use crate::predict::probability::{default_batch, predict_probabilities};

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
    /// The input normalisation the model expects.
    pub normalization: Normalization,
    /// Square model input size.
    pub imgsz: usize,
    /// The sliding window used when a call gives none (a crop-trained checkpoint's).
    pub tiling: Option<Tiling>,
    /// Model inputs (whole images or sliding windows) per forward pass; `None`:
    /// [`default_batch`] for the input size and device.
    pub batch: Option<usize>,
    /// Where the model runs.
    pub device: B::Device,
    /// The SHA-256 of the weight files it was read from ([`fingerprint`]): what a prediction
    /// run records, so that a rerun knows which outputs this model wrote.
    pub fingerprint: String,
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
            batch: None,
            device: device.clone(),
            fingerprint: fingerprint(&[&checkpoint::model_file(&dir)])?,
        })
    }

    /// From a reference library's state_dict — a torchvision DeepLabV3 or SMP DeepLabV3+ `.pth`
    /// (`torch.save(model.state_dict())`) or safetensors with their keys, e.g. fine-tuned in
    /// PyTorch — with 2 classes (softmax) or 1 (sigmoid). The architecture is read from the file
    /// ([`state_dict_config`]); what it does not record is given: DeepLabV3+'s output stride
    /// (default 16), the normalisation and the input size (a multiple of what the architecture
    /// needs).
    pub fn from_state_dict(
        path: &Path,
        output_stride: Option<usize>,
        normalization: Normalization,
        imgsz: usize,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        let (config, _) = state_dict_config(path, output_stride)?;
        Self::from_reference(path, &[path], config, normalization, imgsz, device)
    }

    /// From SMP's `save_pretrained` folder (`config.json`, `model.safetensors`): the architecture
    /// from `config.json`; the normalisation and input size given.
    pub fn from_smp_pretrained(
        dir: &Path,
        normalization: Normalization,
        imgsz: usize,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        let (config, weights) = read_smp_pretrained(dir)?;
        let files = [weights.as_path(), &dir.join(SMP_CONFIG)];
        Self::from_reference(&weights, &files, config, normalization, imgsz, device)
    }

    /// The model of `config` with every tensor from `weights`.
    fn from_reference(
        weights: &Path,
        files: &[&Path],
        config: DeepLabConfig,
        normalization: Normalization,
        imgsz: usize,
        device: &B::Device,
    ) -> Result<Self, TrainError> {
        check_imgsz(imgsz, &config)?;
        let (model, report) = config.init::<B>(device).load_pretrained(weights)?;
        if let Some(first) = report.fresh.first() {
            return Err(TrainError::Checkpoint {
                path: weights.to_path_buf(),
                reason: format!(
                    "it leaves {} tensors of {} untrained (e.g. `{first}`): predicting needs a                      whole model",
                    report.fresh.len(),
                    config.describe()
                ),
            });
        }
        Ok(Self {
            model: model.fold_batch_norms(),
            config,
            normalization,
            imgsz,
            tiling: None,
            batch: None,
            device: device.clone(),
            fingerprint: fingerprint(files)?,
        })
    }

    /// Vessel probability of `sample` at its original size, row-major; `tiling` for sliding
    /// windows (default: the checkpoint's, else the whole image), its windows going through the
    /// model [`Predictor::batch_size`] at a time.
    pub fn probability(&self, sample: &Sample, tta: bool, tiling: Option<Tiling>) -> Vec<f32> {
        let mut probs = self.probabilities(&[sample], tta, tiling);
        probs.pop().expect("one probability per sample")
    }

    /// [`Predictor::probability`] of each sample: the inputs of all of them (whole images, or
    /// the windows of each in turn) go through the model [`Predictor::batch_size`] at a time.
    pub fn probabilities(
        &self,
        samples: &[&Sample],
        tta: bool,
        tiling: Option<Tiling>,
    ) -> Vec<Vec<f32>> {
        self.probabilities_in(samples, tta, tiling, self.batch_size())
    }

    /// [`Predictor::probabilities`] with `batch` model inputs per forward pass.
    pub fn probabilities_in(
        &self,
        samples: &[&Sample],
        tta: bool,
        tiling: Option<Tiling>,
        batch: usize,
    ) -> Vec<Vec<f32>> {
        predict_probabilities(
            &self.model,
            samples,
            self.imgsz,
            &self.normalization,
            tta,
            self.tiling_or_whole(tiling),
            batch,
            &self.device,
        )
    }

    /// Model inputs per forward pass: [`Predictor::batch`], else [`default_batch`].
    pub fn batch_size(&self) -> usize {
        self.batch.unwrap_or_else(|| default_batch::<B>(self.imgsz))
    }

    /// The sliding window a call uses: `tiling`, else the checkpoint's, else the whole image.
    pub fn tiling_or_whole(&self, tiling: Option<Tiling>) -> Tiling {
        tiling.or(self.tiling).unwrap_or(Tiling::WHOLE)
    }

    /// How many model inputs `sample` gives with `tiling` (its windows; 1 for a whole image).
    pub fn inputs_of(&self, sample: &Sample, tiling: Option<Tiling>) -> usize {
        let [width, height] = sample.size().map(|v| v as usize);
        self.tiling_or_whole(tiling).windows([width, height]).len()
    }
}

/// Prediction settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PredictOptions {
    /// Probability at or above which a pixel is vessel.
    pub threshold: f32,
    /// Average with the horizontal mirror (test-time augmentation).
    pub tta: bool,
    /// Sliding windows (default: the checkpoint's, else whole images).
    pub tiling: Option<Tiling>,
    /// Bit depth of the probability maps written.
    pub prob_depth: ProbDepth,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self {
            threshold: 0.5,
            tta: false,
            tiling: None,
            prob_depth: ProbDepth::Eight,
        }
    }
}

/// Predicts one sample and writes its three outputs, named after `sample.image_path`, into
/// `out_dir`; outside the sample's FOV everything is background.
pub fn predict_sample<B: Backend>(
    predictor: &Predictor<B>,
    sample: &Sample,
    out_dir: &Path,
    options: &PredictOptions,
) -> Result<PredictionFiles, TrainError> {
    predict_sample_keeping(predictor, sample, out_dir, options).map(|(files, _)| files)
}

/// [`predict_sample`], also returning the vessel probability (row-major at the image's size, as
/// predicted: before the FOV and the written map's levels).
pub fn predict_sample_keeping<B: Backend>(
    predictor: &Predictor<B>,
    sample: &Sample,
    out_dir: &Path,
    options: &PredictOptions,
) -> Result<(PredictionFiles, Vec<f32>), TrainError> {
    let prob = predictor.probability(sample, options.tta, options.tiling);
    let files = output_paths(&sample.image_path, out_dir);
    let images = prediction_images(sample, &prob, options.threshold, options.prob_depth);
    write_prediction(&images, &files)?;
    Ok((files, prob))
}

/// Predicts one image file (see [`read_input`]), its FOV from `fov_mask` when given, and writes
/// its three outputs.
pub fn predict_file<B: Backend>(
    predictor: &Predictor<B>,
    input: &Path,
    fov_mask: Option<&Path>,
    out_dir: &Path,
    options: &PredictOptions,
) -> Result<PredictionFiles, TrainError> {
    predict_sample(predictor, &read_input(input, fov_mask)?, out_dir, options)
}

/// Outcome of a folder run.
#[derive(Debug, Default)]
pub struct PredictReport {
    /// The outputs of each input that succeeded.
    pub written: Vec<PredictionFiles>,
    /// Inputs that failed, with the reason; the others were still processed.
    pub failed: Vec<(PathBuf, String)>,
}

/// Predicts every input, reporting progress through `progress(done, total, file, result)`; a
/// failing file is recorded and skipped. `fov` gives the inputs' FOV masks (matched with
/// [`FovMasks::match_inputs`]); without, each FOV is derived from its image.
pub fn predict_files<B: Backend>(
    predictor: &Predictor<B>,
    inputs: &[PathBuf],
    fov: Option<&FovMasks>,
    out_dir: &Path,
    options: &PredictOptions,
    mut progress: impl FnMut(usize, usize, &Path, &Result<PredictionFiles, TrainError>),
) -> PredictReport {
    let mut report = PredictReport::default();
    for (i, input) in inputs.iter().enumerate() {
        let result = fov
            .map(|f| f.mask_of(input))
            .transpose()
            .and_then(|mask| predict_file(predictor, input, mask, out_dir, options));
        progress(i + 1, inputs.len(), input, &result);
        match result {
            Ok(files) => report.written.push(files),
            Err(e) => report.failed.push((input.clone(), e.to_string())),
        }
    }
    report
}
