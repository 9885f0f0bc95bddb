//! A downstream program using the libraries directly, without the CLI: load a checkpoint written
//! by `retina-seg train`, fold its BatchNorms into the convolutions, segment one fundus image and
//! save the vessel mask — with the public API of `deeplab`, `drive-data` and `seg-train` only.
//!
//! ```text
//! cargo run --release --example embed_inference -- runs/demo image.png mask.png [threshold]
//! ```
//! The first argument is a checkpoint folder, a run's `checkpoints/` folder or the run folder
//! itself (then its `best-iou` checkpoint). The image may be any format `drive-data` reads (TIFF,
//! GIF, PNG, JPEG, BMP); its field of view is derived from the image. Runs on the CPU (Flex).

use std::path::PathBuf;
use std::process::ExitCode;

use burn::backend::Flex;
use deeplab::DeepLab;
use drive_data::sample::Sample;
use image::GrayImage;
use seg_train::model::checkpoint;
use seg_train::model::fingerprint::fingerprint;
use seg_train::predict::{read_input, Predictor};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run, image, mask, rest @ ..] = args.as_slice() else {
        return Err("usage: embed_inference CHECKPOINT IMAGE MASK_PNG [THRESHOLD]".into());
    };
    let threshold: f32 = match rest.first() {
        Some(t) => t
            .parse()
            .map_err(|_| format!("threshold `{t}` is not a number"))?,
        None => 0.5,
    };
    let device = Default::default();

    // 1. The checkpoint: its folder, then the model (any architecture it was trained with) and
    //    the metadata that says how its inputs were prepared.
    let dir = checkpoint::find(&PathBuf::from(run))?;
    let (model, meta): (DeepLab<Flex>, _) = checkpoint::load_model(&dir, &device)?;
    println!("{}: {}", dir.display(), meta.model.describe());

    // 2. Inference model: BatchNorm folded into the convolutions.
    let predictor = Predictor {
        model: model.fold_batch_norms(),
        config: meta.model,
        normalization: meta.normalization,
        imgsz: meta.imgsz,
        tiling: meta.tiling,
        // Model inputs per forward pass: by input size and device (see `default_batch`).
        batch: None,
        device,
        // What a prediction run records to know which model wrote its outputs.
        fingerprint: fingerprint(&[&checkpoint::model_file(&dir)])?,
    };

    // 3. One image (with its derived field-of-view mask), its vessel probability at the
    //    original size, thresholded inside the FOV.
    let sample: Sample = read_input(&PathBuf::from(image), None)?;
    let probability = predictor.probability(&sample, false, None);
    let (w, h) = sample.image.dimensions();
    let pixels: Vec<u8> = probability
        .iter()
        .zip(sample.fov.as_raw())
        .map(|(&p, &inside)| {
            if inside != 0 && p >= threshold {
                255
            } else {
                0
            }
        })
        .collect();
    let vessels = pixels.iter().filter(|&&v| v != 0).count();

    // 4. The mask.
    GrayImage::from_raw(w, h, pixels)
        .ok_or("mask size")?
        .save(mask)
        .map_err(|e| format!("cannot write {mask}: {e}"))?;
    println!(
        "{mask}: {w}×{h}, {vessels} vessel pixels ({:.1} %) at threshold {threshold}",
        100.0 * vessels as f64 / (w as f64 * h as f64)
    );
    Ok(())
}
