//! Model throughput per configuration: training step (forward, CE + 0.5·aux CE, backward, Adam
//! step) and inference (forward + argmax) images/s, warm-up cost (first steps: kernel compilation
//! and autotune on CUDA), and peak memory (CUDA: the process's device memory as `nvidia-smi`
//! reports it, memory-pool reservations included; CPU: the process's peak resident set, `VmHWM`,
//! read after the training steps — cumulative over the configurations of one process, so
//! `scripts/cpu-side-by-side.sh` runs each in its own).
//!
//! ```text
//! cargo bench --bench throughput [-- --device auto|cpu|cuda --configs r50-512,r101-640 \
//!     --iters 10 --warmup 3 --dtypes f32,bf16 --out target/bench/throughput.json] [--profile] \
//!     [--train-loop]
//! ```
//! Inference runs the model as `predict` does: `valid()` with every BatchNorm folded into its
//! convolution. `--train-loop` also times the real `retina-seg train` loop (data loading and
//! augmentation from 565×584 synthetic fundus images, the step, the metrics; validation excluded)
//! over two epochs of `batch × iters` images and reports its second epoch's images/s next to the
//! bare step's.
//! `--profile` adds, per configuration (f32), the time of each stage with the device synchronised
//! around it: the inference forward split into stem, layer1..4, the ASPP branches, the heads and the
//! upsampling, and the training step split into forward + loss, backward and the Adam step — where
//! the time goes, to find the kernels to speed up.
//! On CUDA the default configurations are the original experiments at batch 2 (R50 @512/768,
//! R101 @512/640/768) plus R50 @512/768 at batch 8, in f32 and bf16; on the CPU a reduced set
//! (a tiny DeepLabV3 and R50 at 128) so the bench finishes anywhere.

mod configs;
mod memory;
mod profile;
mod report;

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use drive_data::SegBatch;
use seg_train::device::{dispatch, BackendJob};
use seg_train::model::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::train::optim::AdamConfig;
use seg_train::DeviceChoice;

use configs::{parse_config, Config};
use memory::{nvidia_smi, peak_rss_gib, MemorySampler};
use profile::profile_config;
use report::{print_row, today, Row};

struct Settings {
    iters: usize,
    warmup: usize,
}

fn batch<B: Backend>(cfg: &Config, device: &B::Device) -> SegBatch<B> {
    let (n, s) = (cfg.batch, cfg.imgsz);
    SegBatch {
        images: Tensor::random([n, 3, s, s], Distribution::Normal(0.0, 1.0), device),
        targets: Tensor::<B, 3>::random([n, s, s], Distribution::Uniform(0.0, 1.0), device)
            .greater_elem(0.9)
            .int(),
        fov: Tensor::<B, 3>::ones([n, s, s], device).greater_elem(0.5),
        skeletons: None,
        ids: (0..n as u32).collect(),
    }
}

fn run_config<B: AutodiffBackend>(
    cfg: &Config,
    settings: &Settings,
    device: &B::Device,
    gpu: bool,
) -> Row {
    let sync = || {
        let _ = B::sync(device);
    };
    B::seed(device, 0);
    let mut model = SegModel {
        net: cfg.model.init::<B>(device),
        loss: LossConfig::default(),
    };
    let mut optim = AdamConfig::default().init::<B, SegModel<B>>();
    let data = batch::<B>(cfg, device);
    let mut step = |model: SegModel<B>| -> SegModel<B> {
        let out = model.forward_loss(data.clone());
        let grads = GradientsParams::from_grads(out.loss.backward(), &model);
        optim.step(1e-4, model, grads)
    };
    let start = Instant::now();
    model = step(model);
    sync();
    let first = start.elapsed().as_secs_f64();
    for _ in 1..settings.warmup {
        model = step(model);
    }
    sync();
    let warmup = start.elapsed().as_secs_f64();
    let sampler = MemorySampler::start(gpu);
    let t = Instant::now();
    for _ in 0..settings.iters {
        model = step(model);
    }
    sync();
    let train = (settings.iters * cfg.batch) as f64 / t.elapsed().as_secs_f64();
    let peak = if gpu {
        sampler.finish()
    } else {
        peak_rss_gib()
    };

    let inference = model.valid().net.fold_batch_norms();
    let images = data.images.clone().inner();
    let infer = || inference.forward(images.clone()).out.argmax(1);
    for _ in 0..settings.warmup.max(1) {
        let _ = infer();
    }
    sync();
    let t = Instant::now();
    for _ in 0..settings.iters {
        let _ = infer();
    }
    sync();
    let infer_ips = (settings.iters * cfg.batch) as f64 / t.elapsed().as_secs_f64();
    Row {
        config: cfg.name.clone(),
        dtype: String::new(),
        device: String::new(),
        train_img_per_s: Some(train),
        infer_img_per_s: Some(infer_ips),
        first_step_s: Some(first),
        warmup_s: Some(warmup),
        peak_mem_gib: peak,
        loop_img_per_s: None,
        error: None,
    }
}

/// Images/s of `retina-seg train`'s loop for `cfg` (the second of two epochs), on synthetic
/// DRIVE-sized images.
fn train_loop(cfg: &Config, settings: &Settings, device: DeviceChoice) -> Result<f64, String> {
    use drive_data::synth::generate;
    use drive_data::{NormalizationPreset, SynthConfig};
    let synth = SynthConfig::default();
    let sample = |id: u32| generate(&synth, id as u64).into_sample(id);
    let images = (cfg.batch * settings.iters.max(1)) as u32;
    let data = seg_train::TrainData {
        train: (0..images).map(sample).collect(),
        valid: (1000..1000 + cfg.batch as u32).map(sample).collect(),
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut config = seg_train::TrainConfig::preset("r50-512").map_err(|e| e.to_string())?;
    config.model = cfg.model.clone();
    config.imgsz = cfg.imgsz;
    config.batch_size = cfg.batch;
    config.epochs = 2;
    config.normalization = NormalizationPreset::Imagenet;
    config.weights = None;
    config.device = device;
    config.out = dir.path().to_path_buf();
    let summary = seg_train::train(config, data).map_err(|e| e.to_string())?;
    summary
        .train_images_per_s
        .last()
        .copied()
        .ok_or_else(|| "no epoch ran".into())
}

/// Runs `f`, turning a panic (e.g. an unsupported dtype, out of memory) into an error row.
fn guarded(cfg: &Config, dtype: &str, device: &str, f: impl FnOnce() -> Row) -> Row {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    let mut row = result.unwrap_or_else(|panic| Row {
        config: cfg.name.clone(),
        dtype: String::new(),
        device: String::new(),
        train_img_per_s: None,
        infer_img_per_s: None,
        first_step_s: None,
        warmup_s: None,
        peak_mem_gib: None,
        loop_img_per_s: None,
        error: Some(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panicked".into()),
        ),
    });
    row.dtype = dtype.into();
    row.device = device.into();
    row
}

struct Job {
    configs: Option<Vec<Config>>,
    dtypes: Vec<String>,
    settings: Settings,
    profile: bool,
    /// `--train-loop`: also time `retina-seg train` on this device.
    train_loop: Option<DeviceChoice>,
}

/// Per-stage times of one configuration (`--profile`).
#[derive(Debug, Clone, serde::Serialize)]
struct Profile {
    config: String,
    stages_ms: Vec<(String, f64)>,
}

impl BackendJob for Job {
    type Output = (Vec<Row>, Vec<Profile>);

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Self::Output {
        let gpu = device_name.starts_with("CUDA");
        let defaults: Vec<&str> = if gpu {
            vec![
                "r50-512",
                "r50-768",
                "r101-512",
                "r101-640",
                "r101-768",
                "r50-512-b8",
                "r50-768-b8",
            ]
        } else {
            vec!["tiny-128", "r50-128"]
        };
        let configs = self
            .configs
            .unwrap_or_else(|| defaults.iter().map(|s| parse_config(s).unwrap()).collect());
        let mut rows = Vec::new();
        for cfg in &configs {
            for dtype in &self.dtypes {
                let mut row = match dtype.as_str() {
                    "f32" => guarded(cfg, "f32", &device_name, || {
                        run_config::<B>(cfg, &self.settings, &device, gpu)
                    }),
                    "bf16" => bf16(cfg, &self.settings, &device_name, gpu),
                    other => guarded(cfg, other, &device_name, || panic!("unknown dtype {other}")),
                };
                if let (Some(choice), "f32") = (self.train_loop, dtype.as_str()) {
                    match train_loop(cfg, &self.settings, choice) {
                        Ok(ips) => row.loop_img_per_s = Some(ips),
                        Err(e) => row.error = Some(format!("train loop: {e}")),
                    }
                }
                print_row(&row);
                rows.push(row);
            }
        }
        let mut profiles = Vec::new();
        if self.profile {
            for cfg in &configs {
                let stages = profile_config::<B>(cfg, &self.settings, &device);
                println!("\n{} f32 on {device_name}: ms per call", cfg.name);
                for (stage, ms) in &stages {
                    println!("  {stage:<44} {ms:>10.2}");
                }
                profiles.push(Profile {
                    config: cfg.name.clone(),
                    stages_ms: stages,
                });
            }
        }
        (rows, profiles)
    }
}

#[cfg(feature = "cuda")]
fn bf16(cfg: &Config, settings: &Settings, device_name: &str, gpu: bool) -> Row {
    use burn::backend::cuda::CudaDevice;
    use burn::backend::{Autodiff, Cuda};
    if !gpu {
        return guarded(cfg, "bf16", device_name, || {
            panic!("bf16 is benchmarked on CUDA only")
        });
    }
    guarded(cfg, "bf16", device_name, || {
        run_config::<Autodiff<Cuda<burn::tensor::bf16>>>(cfg, settings, &CudaDevice::new(0), gpu)
    })
}

#[cfg(not(feature = "cuda"))]
fn bf16(cfg: &Config, _settings: &Settings, device_name: &str, _gpu: bool) -> Row {
    guarded(cfg, "bf16", device_name, || {
        panic!("bf16 is benchmarked on CUDA only")
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let device: DeviceChoice =
        value("--device").map_or(DeviceChoice::Auto, |d| d.parse().expect("--device"));
    let configs = value("--configs").map(|list| {
        list.split(',')
            .map(|s| parse_config(s).unwrap_or_else(|e| panic!("{e}")))
            .collect::<Vec<_>>()
    });
    let gpu_default = !matches!(device, DeviceChoice::Cpu);
    let dtypes: Vec<String> = value("--dtypes")
        .map(|d| d.split(',').map(String::from).collect())
        .unwrap_or_else(|| {
            if gpu_default && cfg!(feature = "cuda") {
                vec!["f32".into(), "bf16".into()]
            } else {
                vec!["f32".into()]
            }
        });
    let iters: usize = value("--iters")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if gpu_default { 10 } else { 3 });
    let warmup: usize = value("--warmup").and_then(|v| v.parse().ok()).unwrap_or(2);
    let out = value("--out").unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/target/bench/throughput.json").into()
    });

    println!("DeepLabV3 throughput (burn 0.21.0), {iters} timed iterations after {warmup} warm-up");
    println!(
        "{:<14} {:<5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>14}",
        "config",
        "dtype",
        "train im/s",
        "infer im/s",
        "1st step",
        "warm-up",
        "mem GiB",
        "loop im/s"
    );
    let (rows, profiles) = dispatch(
        device,
        Job {
            configs,
            dtypes,
            settings: Settings { iters, warmup },
            profile: args.iter().any(|a| a == "--profile"),
            train_loop: args.iter().any(|a| a == "--train-loop").then_some(device),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gpu = nvidia_smi(&["--query-gpu=name,driver_version", "--format=csv,noheader"]);
    let report = serde_json::json!({
        "date": today(),
        "burn": "0.21.0",
        "gpu": gpu,
        "cpu_threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "iters": iters,
        "warmup": warmup,
        "rows": rows,
        "profiles": profiles,
    });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap())
        .expect("write the JSON report");
    println!("written {out}");
}
