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

use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::Distribution;
use deeplab::{DeepLab, DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};
use drive_data::SegBatch;
use seg_train::device::{dispatch, BackendJob};
use seg_train::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::optim::AdamConfig;
use seg_train::DeviceChoice;

#[derive(Debug, Clone)]
struct Config {
    name: String,
    model: DeepLabConfig,
    imgsz: usize,
    batch: usize,
}

fn parse_config(spec: &str) -> Result<Config, String> {
    // <arch>-<imgsz>[-b<batch>], arch = r50 | r101 | tiny (DeepLabV3) or r50plus | r101plus |
    // tinyplus (DeepLabV3+, output stride 16)
    let parts: Vec<&str> = spec.split('-').collect();
    let tiny = || ResNetConfig::new([1, 1, 1, 1]).with_base_width(16);
    let plus = |c: DeepLabV3PlusConfig| -> Result<DeepLabConfig, String> {
        Ok(c.with_output_stride(16).map_err(|e| e.to_string())?.into())
    };
    let model: DeepLabConfig = match parts.first().copied() {
        Some("r50") => DeepLabV3Config::deeplabv3_resnet50(2).into(),
        Some("r101") => DeepLabV3Config::deeplabv3_resnet101(2).into(),
        Some("tiny") => DeepLabV3Config::new(tiny(), 2)
            .with_aspp_channels(32)
            .into(),
        Some("r50plus") => plus(DeepLabV3PlusConfig::deeplabv3plus_resnet50(2))?,
        Some("r101plus") => plus(DeepLabV3PlusConfig::deeplabv3plus_resnet101(2))?,
        Some("tinyplus") => plus(DeepLabV3PlusConfig::new(tiny(), 2).with_decoder_channels(32))?,
        _ => {
            return Err(format!(
                "bad config `{spec}` (e.g. r50-512, r101-640-b8, tiny-128, r50plus-512)"
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
    /// `--train-loop`: images/s of the real training loop (second epoch).
    loop_img_per_s: Option<f64>,
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

/// The process's peak resident set so far (`VmHWM` of `/proc/self/status`, Linux), GiB.
fn peak_rss_gib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / (1024.0 * 1024.0))
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

/// Milliseconds per call of `f`, averaged over `iters` calls after one untimed call, with the
/// device synchronised before and after.
fn time_ms<B: Backend, T>(device: &B::Device, iters: usize, mut f: impl FnMut() -> T) -> f64 {
    drop(f());
    let _ = B::sync(device);
    let t = Instant::now();
    for _ in 0..iters {
        drop(f());
    }
    let _ = B::sync(device);
    t.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64
}

/// Per-stage times (ms) of one configuration: inference forward stage by stage, then the
/// training step's forward + loss, backward and optimizer step.
fn profile_config<B: AutodiffBackend>(
    cfg: &Config,
    settings: &Settings,
    device: &B::Device,
) -> Vec<(String, f64)> {
    let iters = settings.iters.max(1);
    B::seed(device, 0);
    let model = SegModel::<B> {
        net: cfg.model.init::<B>(device),
        loss: LossConfig::default(),
    };
    let data = batch::<B>(cfg, device);
    let mut stages: Vec<(String, f64)> = Vec::new();

    // Inference, stage by stage (each stage's input computed once beforehand), as `predict` runs
    // it: BatchNorm folded.
    let unfolded = model.valid().net;
    let net = unfolded.clone().fold_batch_norms();
    let inner = device.clone();
    let time = |f: &mut dyn FnMut() -> Tensor<B::InnerBackend, 4>| {
        time_ms::<B::InnerBackend, _>(&inner, iters, f)
    };
    let images = data.images.clone().inner();
    let [_, _, h, w] = images.dims();
    let bb = match &net {
        DeepLab::DeepLabV3(m) => &m.backbone,
        DeepLab::DeepLabV3Plus(m) => &m.encoder,
    };
    let stem = |x: Tensor<B::InnerBackend, 4>| bb.stem(x);
    let run = |layer: &[deeplab::resnet::Bottleneck<B::InnerBackend>], x| {
        layer.iter().fold(x, |x, block| block.forward(x))
    };
    let x0 = stem(images.clone());
    stages.push((
        "infer: stem (conv1, bn1, maxpool)".into(),
        time(&mut || stem(images.clone())),
    ));
    let mut x = x0;
    let (mut layer1, mut layer3) = (None, None);
    for (name, layer) in [
        ("layer1", &bb.layer1),
        ("layer2", &bb.layer2),
        ("layer3", &bb.layer3),
        ("layer4", &bb.layer4),
    ] {
        let input = x.clone();
        let label = format!("infer: {name} ({} blocks)", layer.len());
        stages.push((label, time(&mut || run(layer, input.clone()))));
        x = run(layer, x);
        match name {
            "layer1" => layer1 = Some(x.clone()),
            "layer3" => layer3 = Some(x.clone()),
            _ => {}
        }
    }
    let layer4 = x;
    let (aspp, rates) = match (&net, &cfg.model) {
        (DeepLab::DeepLabV3(m), DeepLabConfig::DeepLabV3(c)) => {
            (&m.classifier.aspp, &c.atrous_rates)
        }
        (DeepLab::DeepLabV3Plus(m), DeepLabConfig::DeepLabV3Plus(c)) => {
            (&m.decoder.aspp, &c.atrous_rates)
        }
        _ => unreachable!("the model is built from its config"),
    };
    for (i, branch) in aspp.convs.iter().enumerate() {
        let rate = if i == 0 {
            "1×1".to_string()
        } else {
            format!("3×3 rate {}", rates[i - 1])
        };
        stages.push((
            format!("infer: ASPP branch {i} ({rate})"),
            time(&mut || match i {
                0 => branch.forward_relu(layer4.clone()),
                _ => branch.forward_relu_atrous(layer4.clone()),
            }),
        ));
    }
    stages.push((
        "infer: ASPP total".into(),
        time(&mut || aspp.forward(layer4.clone())),
    ));
    match &net {
        DeepLab::DeepLabV3(net) => {
            stages.push((
                "infer: DeepLab head (ASPP + 3×3 + 1×1)".into(),
                time(&mut || net.classifier.forward(layer4.clone())),
            ));
            if let (Some(aux), Some(l3)) = (&net.aux_classifier, &layer3) {
                stages.push((
                    "infer: FCN aux head".into(),
                    time(&mut || aux.forward(l3.clone())),
                ));
            }
            let logits = net.classifier.forward(layer4.clone());
            stages.push((
                "infer: upsample ×8 (matmul bilinear)".into(),
                time(&mut || deeplab::upsample::resize_bilinear(logits.clone(), [h, w])),
            ));
        }
        DeepLab::DeepLabV3Plus(net) => {
            let l1 = layer1.expect("layer1 ran");
            stages.push((
                "infer: DeepLabV3+ decoder (ASPP, separable 3×3, ×4, low-level fusion)".into(),
                time(&mut || net.decoder.forward(l1.clone(), layer4.clone())),
            ));
            let decoded = net.decoder.forward(l1.clone(), layer4.clone());
            let logits = net.segmentation_head.forward(decoded);
            stages.push((
                "infer: upsample ×4 (matmul bilinear, corners aligned)".into(),
                time(&mut || {
                    deeplab::upsample::resize_bilinear_with(
                        logits.clone(),
                        [h, w],
                        deeplab::upsample::Corners::Aligned,
                    )
                }),
            ));
        }
    }
    stages.push((
        "infer: whole forward, BatchNorm not folded".into(),
        time(&mut || unfolded.forward(images.clone()).out),
    ));
    stages.push((
        "infer: whole forward, BatchNorm folded".into(),
        time(&mut || net.forward(images.clone()).out),
    ));

    // Training step, split.
    let mut optim = AdamConfig::default().init::<B, SegModel<B>>();
    let mut model = model;
    let (mut fwd, mut bwd, mut opt) = (0.0, 0.0, 0.0);
    for i in 0..=iters {
        let _ = B::sync(device);
        let t = Instant::now();
        let loss = model.forward_loss(data.clone()).loss;
        let _ = B::sync(device);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let _ = B::sync(device);
        let t2 = Instant::now();
        model = optim.step(1e-4, model, grads);
        let _ = B::sync(device);
        if i > 0 {
            fwd += (t1 - t).as_secs_f64();
            bwd += (t2 - t1).as_secs_f64();
            opt += t2.elapsed().as_secs_f64();
        }
    }
    let per = |v: f64| v * 1e3 / iters as f64;
    stages.push(("train: forward + loss".into(), per(fwd)));
    stages.push(("train: backward".into(), per(bwd)));
    stages.push(("train: Adam step".into(), per(opt)));
    stages
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

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

fn print_row(r: &Row) {
    let ratio = r
        .loop_img_per_s
        .zip(r.train_img_per_s)
        .map(|(l, s)| format!("{l:.2} ({:.2}×)", l / s));
    println!(
        "{:<14} {:<5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>14}  {}",
        r.config,
        r.dtype,
        cell(r.train_img_per_s, 2),
        cell(r.infer_img_per_s, 2),
        cell(r.first_step_s, 1),
        cell(r.warmup_s, 1),
        cell(r.peak_mem_gib, 2),
        ratio.unwrap_or_else(|| "-".into()),
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
