//! The GPU code path (Burn's wgpu backend: the CubeCL kernels the CUDA backend runs too) against
//! the CPU: seg-train's real training step, and `retina-seg predict --device wgpu`. Without a GPU
//! these run on Mesa's software Vulkan driver (lavapipe): `.ci/run` installs it and runs them with
//! `--ignored`. They fail, not skip, when no wgpu adapter works.
#![cfg(feature = "wgpu")]

use std::path::Path;
use std::process::Command;

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Autodiff, Flex, Wgpu};
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::tensor::backend::AutodiffBackend;
use burn::train::TrainStep;
use burn_store::ModuleSnapshot;
use deeplab::{DeepLabV3Config, ResNetConfig};
use drive_data::synth::generate;
use drive_data::{DriveDataset, Normalization, SegBatcher, SynthConfig, Transform};
use seg_train::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::optim::AdamConfig;

fn tiny() -> DeepLabV3Config {
    DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(8), 2)
        .with_aspp_channels(16)
        .with_aspp_dropout(0.0)
        .with_aux_dropout(0.0)
}

/// Two training steps of seg-train's step (loss, backward, PyTorch Adam) on `B`, from the weights
/// in `record`: the losses, and every parameter and running statistic after them.
fn two_steps<B: AutodiffBackend>(
    device: &B::Device,
    weights: &Path,
) -> (Vec<f64>, Vec<(String, Vec<f64>)>) {
    let (net, _) = tiny().init::<B>(device).load_torchvision(weights).unwrap();
    let mut model = SegModel {
        net,
        loss: LossConfig {
            dice_weight: 0.5,
            ..LossConfig::default()
        },
    };
    let mut optim = AdamConfig::default().init::<B, SegModel<B>>();
    let samples = (0..2)
        .map(|id| {
            let synth = SynthConfig {
                width: 72,
                height: 64,
                ..SynthConfig::default()
            };
            generate(&synth, id).into_sample(id as u32)
        })
        .collect();
    let dataset = DriveDataset::new(samples, Transform::train(64, Normalization::DRIVE), 3);
    let mut losses = Vec::new();
    for epoch in 0..2 {
        let items = (0..2).map(|i| dataset.item(i, epoch).unwrap()).collect();
        let batch =
            burn::data::dataloader::batcher::Batcher::<B, _, _>::batch(&SegBatcher, items, device);
        let output = TrainStep::step(&model, batch);
        let loss: Vec<f64> = output
            .item
            .loss
            .clone()
            .into_data()
            .convert::<f64>()
            .to_vec()
            .unwrap();
        losses.push(loss[0]);
        model = optim.step(1e-3, model, output.grads);
    }
    let state = model
        .valid()
        .net
        .collect(None, None, true)
        .into_iter()
        .map(|s| {
            let values = s.to_data().unwrap().convert::<f64>().to_vec().unwrap();
            (s.full_path(), values)
        })
        .collect();
    (losses, state)
}

/// max |a − b| / max |b| over a tensor.
fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    let diff = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    let scale = b.iter().fold(0f64, |m, y| m.max(y.abs()));
    diff / scale.max(1e-12)
}

/// Ignored by default because it needs a Vulkan/Metal/DX12 driver (lavapipe works); `.ci/run`
/// runs it with `--ignored`.
#[test]
#[ignore = "needs a wgpu adapter; .ci/run runs it on lavapipe"]
fn training_steps_on_wgpu_equal_flex() {
    let weights = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/deeplab/tests/fixtures/tiny_deeplabv3.pth");
    let start = std::time::Instant::now();
    let (gpu_losses, gpu_state) = two_steps::<Autodiff<Wgpu>>(&WgpuDevice::DefaultDevice, &weights);
    println!("wgpu: two steps in {:.1} s", start.elapsed().as_secs_f64());
    let (cpu_losses, cpu_state) = two_steps::<Autodiff<Flex>>(&Default::default(), &weights);
    for (g, c) in gpu_losses.iter().zip(&cpu_losses) {
        assert!(
            (g - c).abs() / c.abs() <= 1e-4,
            "loss {g} on wgpu vs {c} on Flex"
        );
    }
    let mut worst = (0.0, String::new());
    for ((path, g), (_, c)) in gpu_state.iter().zip(&cpu_state) {
        let e = max_rel(g, c);
        if e > worst.0 {
            worst = (e, path.clone());
        }
    }
    println!(
        "largest parameter difference: {:.2e} ({})",
        worst.0, worst.1
    );
    assert!(worst.0 <= 1e-4, "{} differs by {:e}", worst.1, worst.0);
}

/// Ignored by default because it needs a wgpu adapter; `.ci/run` runs it with `--ignored`.
#[test]
#[ignore = "needs a wgpu adapter; .ci/run runs it on lavapipe"]
fn predict_on_wgpu_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A tiny checkpoint, trained on the CPU.
    let mut config = seg_train::TrainConfig::preset("r50-512").unwrap();
    config.model = tiny();
    config.imgsz = 64;
    config.epochs = 1;
    config.workers = 0;
    config.weights = None;
    config.normalization = drive_data::NormalizationPreset::Drive;
    config.device = seg_train::DeviceChoice::Cpu;
    config.out = d.join("run");
    let synth = SynthConfig {
        width: 72,
        height: 64,
        ..SynthConfig::default()
    };
    let sample = |id: u64| generate(&synth, id).into_sample(id as u32);
    let data = seg_train::TrainData {
        train: (0..2).map(sample).collect(),
        valid: vec![sample(9)],
    };
    seg_train::train(config, data).unwrap();
    drive_data::write::write_synthetic(&d.join("data"), drive_data::Layout::Kaggle, 5, 1, &synth)
        .unwrap();

    let predict = |device: &str, out: &str| {
        let o = Command::new(env!("CARGO_BIN_EXE_retina-seg"))
            .args([
                "predict",
                "--checkpoint",
                "run",
                "--input",
                "data/test_images",
                "--out",
                out,
                "--device",
                device,
            ])
            .current_dir(d)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{text}");
        text
    };
    let text = predict("wgpu", "gpu");
    assert!(text.contains("on wgpu"), "{text}");
    predict("cpu", "cpu");
    for entry in std::fs::read_dir(d.join("cpu")).unwrap() {
        let name = entry.unwrap().file_name();
        if !name.to_string_lossy().ends_with("_prob.png") {
            continue;
        }
        let cpu = image::open(d.join("cpu").join(&name)).unwrap().to_luma8();
        let gpu = image::open(d.join("gpu").join(&name)).unwrap().to_luma8();
        let worst = cpu
            .iter()
            .zip(gpu.iter())
            .map(|(a, b)| a.abs_diff(*b))
            .max()
            .unwrap();
        assert!(worst <= 1, "{name:?}: probabilities differ by {worst}/255");
    }
}
