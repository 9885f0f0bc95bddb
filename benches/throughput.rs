//! Model throughput per configuration: training step (forward, CE + 0.5·aux CE, backward, Adam
//! step) and inference (forward + argmax) images/s, warm-up cost (first steps: kernel compilation
//! and autotune on CUDA), and peak device memory (CUDA: the process's usage as `nvidia-smi` reports
//! it, memory-pool reservations included).
//!
//! ```text
//! cargo bench --bench throughput [-- --device auto|cpu|cuda --configs r50-512,r101-640 \
//!     --iters 10 --warmup 3 --dtypes f32,bf16 --out target/bench/throughput.json]
//! ```
//! On CUDA the default configurations are the original experiments at batch 2 (R50 @512/768,
//! R101 @512/640/768) plus R50 @512/768 at batch 8, in f32 and bf16; on the CPU a reduced set
//! (a tiny DeepLabV3 and R50 at 128) so the bench finishes anywhere.

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use deeplab::{DeepLabV3Config, ResNetConfig};
use drive_data::SegBatch;
use seg_train::device::{dispatch, BackendJob};
use seg_train::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::DeviceChoice;

#[derive(Debug, Clone)]
struct Config {
    name: String,
    model: DeepLabV3Config,
    imgsz: usize,
    batch: usize,
}

fn parse_config(spec: &str) -> Result<Config, String> {
    // <arch>-<imgsz>[-b<batch>], arch = r50 | r101 | tiny
    let parts: Vec<&str> = spec.split('-').collect();
    let model = match parts.first().copied() {
        Some("r50") => DeepLabV3Config::deeplabv3_resnet50(2),
        Some("r101") => DeepLabV3Config::deeplabv3_resnet101(2),
        Some("tiny") => {
            DeepLabV3Config::new(ResNetConfig::new([1, 1, 1, 1]).with_base_width(16), 2)
                .with_aspp_channels(32)
        }
        _ => {
            return Err(format!(
                "bad config `{spec}` (e.g. r50-512, r101-640-b8, tiny-128)"
            ))
        }
    };
    let imgsz = parts
        .get(1)
        .and_then(|s| s.parse().ok())
        .ok_or(format!("bad size in `{spec}`"))?;
    let batch = match parts.get(2) {
        Some(b) => b
            .strip_prefix('b')
            .and_then(|b| b.parse().ok())
            .ok_or(format!("bad batch in `{spec}`"))?,
        None => 2,
    };
    Ok(Config {
        name: format!("{}-{imgsz}-b{batch}", parts[0]),
        model,
        imgsz,
        batch,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
struct Row {
    config: String,
    dtype: String,
    device: String,
    train_img_per_s: Option<f64>,
    infer_img_per_s: Option<f64>,
    first_step_s: Option<f64>,
    warmup_s: Option<f64>,
    peak_mem_gib: Option<f64>,
    error: Option<String>,
}

/// Samples `nvidia-smi`'s memory.used (MiB) of GPU 0 until stopped; returns the maximum.
struct MemorySampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<Option<f64>>>,
}

impl MemorySampler {
    fn start(enabled: bool) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let handle = enabled.then(|| {
            std::thread::spawn(move || {
                let mut peak: Option<f64> = None;
                while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some(v) =
                        nvidia_smi(&["--query-gpu=memory.used", "--format=csv,noheader,nounits"])
                            .and_then(|s| {
                                s.lines().next().and_then(|l| l.trim().parse::<f64>().ok())
                            })
                    {
                        peak = Some(peak.map_or(v, |p: f64| p.max(v)));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                peak.map(|mib| mib / 1024.0)
            })
        });
        Self { stop, handle }
    }

    fn finish(mut self) -> Option<f64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok().flatten())
    }
}

fn nvidia_smi(args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("nvidia-smi")
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

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
    let mut optim = AdamConfig::new()
        .with_epsilon(1e-8)
        .init::<B, SegModel<B>>();
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
    let peak = sampler.finish();

    let inference = model.valid();
    let images = data.images.clone().inner();
    let infer = || inference.net.forward(images.clone()).out.argmax(1);
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
        error: None,
    }
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
}

impl BackendJob for Job {
    type Output = Vec<Row>;

    fn run<B: AutodiffBackend>(self, device: B::Device, device_name: String) -> Vec<Row> {
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
                let row = match dtype.as_str() {
                    "f32" => guarded(cfg, "f32", &device_name, || {
                        run_config::<B>(cfg, &self.settings, &device, gpu)
                    }),
                    "bf16" => bf16(cfg, &self.settings, &device_name, gpu),
                    other => guarded(cfg, other, &device_name, || panic!("unknown dtype {other}")),
                };
                print_row(&row);
                rows.push(row);
            }
        }
        rows
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

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_row(r: &Row) {
    println!(
        "{:<14} {:<5} {:>10} {:>10} {:>9} {:>9} {:>9}  {}",
        r.config,
        r.dtype,
        cell(r.train_img_per_s, 2),
        cell(r.infer_img_per_s, 2),
        cell(r.first_step_s, 1),
        cell(r.warmup_s, 1),
        cell(r.peak_mem_gib, 2),
        r.error.as_deref().unwrap_or("")
    );
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
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
        "{:<14} {:<5} {:>10} {:>10} {:>9} {:>9} {:>9}",
        "config", "dtype", "train im/s", "infer im/s", "1st step", "warm-up", "mem GiB"
    );
    let rows = dispatch(
        device,
        Job {
            configs,
            dtypes,
            settings: Settings { iters, warmup },
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
    });
    if let Some(dir) = std::path::Path::new(&out).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap())
        .expect("write the JSON report");
    println!("written {out}");
}
