//! Prediction and DRIVE-protocol evaluation end to end on the CPU: a tiny model trained here
//! predicts a synthetic folder; outputs exist at each input's original size; the evaluation agrees
//! with metrics recomputed from the written masks; folder and one-by-one runs agree; a tile larger
//! than the image equals the untiled prediction; bad inputs are reported, not fatal.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;

use burn::backend::Flex;
use drive_data::write::write_synthetic;
use drive_data::{DatasetDir, Layout, Split, SynthConfig};
use seg_train::evaluate::evaluate;
use seg_train::metrics::Confusion;
use seg_train::model::Tiling;
use seg_train::predict::probability::crop;
use seg_train::predict::{list_inputs, predict_file, predict_files, PredictOptions, Predictor};
use seg_train::{train, TrainData, TrainError};

type B = Flex;

/// A Kaggle-layout synthetic set (with test masks) and a tiny model trained on it for 2 epochs,
/// made once per test process in cargo's scratch folder for this test: the tests share it, and
/// only one training runs (Flex's random generator is process-global, so trainings in parallel
/// test threads would interleave their draws and train differently from run to run).
fn setup() -> (DatasetDir, Predictor<B>) {
    static TRAINED: OnceLock<PathBuf> = OnceLock::new();
    let dir = TRAINED.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("seg-train-predict");
        if dir.exists() {
            std::fs::remove_dir_all(&dir).unwrap();
        }
        let data_dir = dir.join("data");
        let synth = SynthConfig {
            width: 90,
            height: 84,
            ..SynthConfig::default()
        };
        write_synthetic(&data_dir, Layout::Kaggle, 10, 3, &synth).unwrap();
        let data = DatasetDir::open(&data_dir).unwrap();
        let mut c = common::tiny_config(&dir.join("run"), 64, 2);
        c.lr = 2e-3;
        let samples = TrainData {
            train: data.load(Split::Train).unwrap(),
            valid: data.load(Split::Valid).unwrap(),
        };
        train(c, samples).unwrap();
        dir
    });
    let data = DatasetDir::open(&dir.join("data")).unwrap();
    let predictor = Predictor::<B>::from_checkpoint(&dir.join("run"), &Default::default()).unwrap();
    assert_eq!(predictor.imgsz, 64);
    (data, predictor)
}

fn read_binary(path: &Path) -> Vec<u8> {
    image::open(path)
        .unwrap()
        .to_luma8()
        .iter()
        .map(|&v| u8::from(v >= 128))
        .collect()
}

#[test]
fn predict_then_evaluate_agrees_with_the_written_masks() {
    let dir = tempfile::tempdir().unwrap();
    let (data, predictor) = setup();
    let inputs = list_inputs(&data.root.join("test_images")).unwrap();
    assert_eq!(inputs.len(), 2);
    let out = dir.path().join("pred");
    let options = PredictOptions::default();
    let report = predict_files(&predictor, &inputs, None, &out, &options, |_, _, _, _| {});
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(report.written.len(), 2);
    for files in &report.written {
        for path in [&files.mask, &files.probability, &files.overlay] {
            let img = image::open(path).unwrap();
            assert_eq!((img.width(), img.height()), (90, 84), "{}", path.display());
        }
        let mask = image::open(&files.mask).unwrap().to_luma8();
        assert!(mask.iter().all(|&v| v == 0 || v == 255));
    }

    let evaluation = evaluate(&out, &data, Split::Test, 0.5).unwrap();
    assert!(evaluation.probabilities);
    assert_eq!(evaluation.images.len(), 2);
    let truth = data.load(Split::Test).unwrap();
    let (mut fov_total, mut image_total) = (Confusion::default(), Confusion::default());
    for (img, sample) in evaluation.images.iter().zip(&truth) {
        assert_eq!(img.id, sample.id);
        assert!(img.prediction.to_string_lossy().ends_with("_prob.png"));
        // The files it was scored with: the fundus image, its vessel mask and FOV mask.
        let entry = data
            .entries(Split::Test)
            .unwrap()
            .into_iter()
            .find(|e| e.id == sample.id);
        let entry = entry.unwrap();
        assert_eq!(img.image_file, sample.image_path);
        assert_eq!(Some(&img.vessel_mask), entry.vessels.as_ref());
        assert_ne!(img.vessel_mask, img.image_file);
        assert!(img.vessel_mask.is_file());
        assert_eq!(img.fov_mask, entry.fov);
        let files = report
            .written
            .iter()
            .find(|f| f.input == sample.image_path)
            .unwrap();
        let written = read_binary(&files.mask);
        let vessels = sample.vessels.as_ref().unwrap().as_raw();
        let fov = Confusion::from_pixels(&written, vessels, Some(sample.fov.as_raw()));
        let whole = Confusion::from_pixels(&written, vessels, None);
        assert_eq!(img.fov.confusion, fov);
        assert_eq!(img.image.confusion, whole);
        assert_eq!(img.fov.metrics, fov.summary());
        assert!(img.fov.auc.is_some_and(|a| (0.0..=1.0).contains(&a)));
        fov_total += fov;
        image_total += whole;
    }
    assert_eq!(evaluation.fov.confusion, fov_total);
    assert_eq!(evaluation.image.confusion, image_total);
    assert_eq!(evaluation.fov.metrics, fov_total.summary());

    // Binary masks only: same confusion matrices, no AUC.
    let masks_only = dir.path().join("masks");
    std::fs::create_dir_all(&masks_only).unwrap();
    for files in &report.written {
        std::fs::copy(
            &files.mask,
            masks_only.join(files.mask.file_name().unwrap()),
        )
        .unwrap();
    }
    let binary = evaluate(&masks_only, &data, Split::Test, 0.5).unwrap();
    assert!(!binary.probabilities);
    assert_eq!(binary.fov.confusion, fov_total);
    assert_eq!(binary.fov.auc, None);
    assert_eq!(binary.fov.average_precision, None);
    assert!(binary.fov_levels.is_none() && binary.best_f1_threshold.is_none());

    // JSON + CSV reports.
    let json = dir.path().join("report/evaluation.json");
    let csv = evaluation.write(&json).unwrap();
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(parsed["fov"]["confusion"]["tp"], fov_total.tp);
    let csv = std::fs::read_to_string(csv).unwrap();
    // Per image and over the split: FOV, whole image, thin and thick vessels (in the FOV).
    assert_eq!(csv.lines().count(), 1 + 2 * 4 + 4);
    let regions: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(&regions[..4], ["fov", "image", "thin", "thick"]);
    assert!(evaluation.table(true).contains("all"));

    // A missing prediction and a wrong-sized one are errors naming the file.
    std::fs::remove_file(&report.written[0].probability).unwrap();
    std::fs::remove_file(&report.written[0].mask).unwrap();
    let err = evaluate(&out, &data, Split::Test, 0.5).unwrap_err();
    assert!(err.to_string().contains("no prediction"), "{err}");
    image::GrayImage::new(10, 10)
        .save(&report.written[0].probability)
        .unwrap();
    let err = evaluate(&out, &data, Split::Test, 0.5).unwrap_err();
    assert!(
        err.to_string()
            .contains(&report.written[0].probability.display().to_string()),
        "{err}"
    );
}

#[test]
fn folder_and_single_runs_agree_and_bad_files_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (data, predictor) = setup();
    let folder = dir.path().join("inputs");
    std::fs::create_dir_all(&folder).unwrap();
    for f in list_inputs(&data.root.join("valid_images")).unwrap() {
        std::fs::copy(&f, folder.join(f.file_name().unwrap())).unwrap();
    }
    std::fs::write(folder.join("5_broken.png"), b"\x89PNG\r\n\x1a\nbroken").unwrap();
    let inputs = list_inputs(&folder).unwrap();
    assert_eq!(inputs.len(), 3);
    let options = PredictOptions {
        tta: true,
        ..PredictOptions::default()
    };
    let batch_out = dir.path().join("batch");
    let report = predict_files(
        &predictor,
        &inputs,
        None,
        &batch_out,
        &options,
        |_, _, _, _| {},
    );
    assert_eq!(report.written.len(), 2);
    assert_eq!(report.failed.len(), 1);
    assert!(report.failed[0].0.ends_with("5_broken.png"));
    for files in &report.written {
        let single_out = dir.path().join("single");
        let single = predict_file(&predictor, &files.input, None, &single_out, &options).unwrap();
        for (a, b) in [
            (&files.mask, &single.mask),
            (&files.probability, &single.probability),
        ] {
            assert_eq!(
                std::fs::read(a).unwrap(),
                std::fs::read(b).unwrap(),
                "{}",
                a.display()
            );
        }
    }
    let err =
        predict_file(&predictor, &report.failed[0].0, None, &batch_out, &options).unwrap_err();
    assert!(matches!(err, TrainError::Data(_)), "{err}");
}

#[test]
fn tiled_prediction_blends_the_windows() {
    let (data, predictor) = setup();
    let sample = &data.load(Split::Test).unwrap()[0];
    let [w, h] = sample.size().map(|v| v as usize);
    let untiled = predictor.probability(sample, false, None);

    // A tile at least as large as the image is one window: the untiled prediction.
    let one = Tiling {
        tile: 500,
        overlap: 0.25,
    };
    assert_eq!(one.windows([w, h]).len(), 1);
    assert_eq!(predictor.probability(sample, false, Some(one)), untiled);

    // Real tiling: 48 px windows overlapping by a quarter over the 90×84 image.
    let tiling = Tiling {
        tile: 48,
        overlap: 0.25,
    };
    let windows = tiling.windows([w, h]);
    assert!(windows.len() >= 4, "{windows:?}");
    let tiled = predictor.probability(sample, false, Some(tiling));
    assert_eq!(tiled.len(), w * h);
    // Each window on its own, as the untiled predictor sees its crop.
    let per_window: Vec<Vec<f32>> = windows
        .iter()
        .map(|&win| predictor.probability(&crop(sample, win), false, None))
        .collect();
    let (mut single, mut blended, mut disagreeing) = (0, 0, 0);
    for y in 0..h {
        for x in 0..w {
            let covering: Vec<f32> = windows
                .iter()
                .zip(&per_window)
                .filter(|(win, _)| {
                    (win.x..win.x + win.width).contains(&x)
                        && (win.y..win.y + win.height).contains(&y)
                })
                .map(|(win, p)| p[(y - win.y) * win.width + (x - win.x)])
                .collect();
            assert!(!covering.is_empty(), "pixel ({x}, {y}) is in a window");
            let v = tiled[y * w + x];
            let lo = covering.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = covering.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if covering.len() == 1 {
                assert!(
                    (v - covering[0]).abs() < 1e-6,
                    "({x}, {y}): {v} vs {}",
                    covering[0]
                );
                single += 1;
            } else {
                // A weighted mean of the windows that cover it.
                assert!(
                    lo - 1e-6 <= v && v <= hi + 1e-6,
                    "({x}, {y}): {v} outside [{lo}, {hi}]"
                );
                blended += 1;
                disagreeing += usize::from(hi - lo > 1e-3);
            }
        }
    }
    assert!(
        single > 0 && blended > 0 && disagreeing > 0,
        "{single} {blended} {disagreeing}"
    );
    assert_ne!(tiled, untiled);
}
