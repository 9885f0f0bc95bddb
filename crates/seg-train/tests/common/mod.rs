//! Shared by seg-train's tests: a tiny DeepLabV3, in-memory synthetic retinas and a training
//! configuration that runs in seconds on the CPU.

#![allow(dead_code)]

use std::path::Path;

use deeplab::{DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};
use drive_data::synth::generate;
use drive_data::{NormalizationPreset, Sample, SynthConfig};
use seg_train::{DeviceChoice, TrainConfig, TrainData};

/// DeepLabV3 with one block per stage, stem width 8, ASPP width 16, 2 classes.
pub fn tiny_model() -> DeepLabConfig {
    DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
        .with_aspp_channels(16)
        .into()
}

/// DeepLabV3+ (output stride 16, separable ASPP) with one block per stage, stem width 8,
/// decoder width 16, 2 classes.
pub fn tiny_plus_model() -> DeepLabConfig {
    DeepLabV3PlusConfig::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
        .with_decoder_channels(16)
        .with_output_stride(16)
        .expect("stride 16")
        .into()
}

/// Synthetic retinas of `width × height` with exact ground truth, one per id.
pub fn samples(ids: std::ops::Range<u32>, width: u32, height: u32) -> Vec<Sample> {
    let config = SynthConfig {
        width,
        height,
        ..SynthConfig::default()
    };
    ids.map(|id| generate(&config, id as u64).into_sample(id))
        .collect()
}

/// `train` training and `valid` validation retinas of `width × height`.
pub fn data(train: u32, valid: u32, width: u32, height: u32) -> TrainData {
    TrainData {
        train: samples(0..train, width, height),
        valid: samples(100..100 + valid, width, height),
    }
}

/// The tiny model from scratch at `imgsz`, on the CPU, loading on the training thread, writing to
/// `out`.
pub fn tiny_config(out: &Path, imgsz: usize, epochs: usize) -> TrainConfig {
    let mut c = TrainConfig::preset("r50-512").unwrap();
    c.model = tiny_model();
    c.imgsz = imgsz;
    c.epochs = epochs;
    c.workers = 0;
    c.normalization = NormalizationPreset::Drive;
    c.device = DeviceChoice::Cpu;
    c.weights = None;
    c.out = out.to_path_buf();
    c
}

/// Flex's random generator is process-global: trainings in parallel test threads would interleave
/// their draws, so the tests that train run one at a time (within a test binary).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Holds the lock that runs trainings one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}
