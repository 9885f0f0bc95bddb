//! Parity harness shared by the parity tests (Flex f64, Flex f32, CUDA, wgpu).
//!
//! A fixture is made by the reference library itself — `tests/fixtures/make_fixtures.py`
//! (torchvision's DeepLabV3) or `make_smp_fixtures.py` (segmentation_models_pytorch's DeepLabV3+):
//! `<prefix>.json` (the architecture: `arch`, absent for DeepLabV3, and its sizes), `<prefix>.pth`
//! (the reference state_dict) and `<prefix>_io.safetensors` (input, target, eval/train outputs,
//! loss, gradients). `DEEPLAB_PARITY_FIXTURE` names one fixture of either kind; by default the
//! tests check every committed one ([`committed`]).

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use burn_store::ModuleSnapshot;
use deeplab::weights::KeyMap;
use deeplab::{DeepLab, DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};

/// The committed fixtures: torchvision's DeepLabV3, SMP's DeepLabV3+ at output stride 16 with
/// separable ASPP branches, and at output stride 8 with plain ones, on small inputs (`tiny_*`:
/// `layer4` smaller than every ASPP rate, each atrous branch reduced to its centre tap); and
/// DeepLabV3, DeepLabV3+ separable and plain at output stride 8 on inputs whose `layer4` is larger
/// than the largest rate (`live_*`: every atrous tap reads real pixels, see `live_taps.rs`). One
/// name per line of `fixtures/committed.txt`, which `seg-train`'s trajectory tests read too.
pub fn committed() -> Vec<&'static str> {
    include_str!("../fixtures/committed.txt").lines().collect()
}

/// Tolerances on ‖a − b‖ / ‖b‖.
pub struct Tolerance {
    pub outputs: f64,
    pub gradients: f64,
    /// The run is in float32: a gradient may also be as far from the float64 reference as twice
    /// torchvision's own float32 result (`grad_f32.<key>` in the fixture, when it has one) —
    /// deep gradients through train-mode BatchNorm are ill-conditioned, and PyTorch's float32
    /// lands up to ~1e-2 from its float64 on small fixtures.
    pub float32: bool,
}

pub struct Fixture {
    pub prefix: PathBuf,
    pub config: DeepLabConfig,
    pub input_shape: [usize; 4],
    io: Vec<u8>,
}

/// The committed reference fixtures, `crates/deeplab/tests/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

impl Fixture {
    /// The fixture named by `DEEPLAB_PARITY_FIXTURE`, else every committed one.
    pub fn all() -> Vec<Self> {
        match std::env::var_os("DEEPLAB_PARITY_FIXTURE") {
            Some(prefix) => vec![Self::load_from(PathBuf::from(prefix))],
            None => committed()
                .iter()
                .map(|name| Self::load_from(fixtures_dir().join(name)))
                .collect(),
        }
    }

    /// The fixture's name (its prefix's file name).
    pub fn name(&self) -> String {
        self.prefix
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_string()
    }

    /// The DeepLabV3 configuration of a torchvision fixture.
    pub fn deeplabv3_config(&self) -> DeepLabV3Config {
        match &self.config {
            DeepLabConfig::DeepLabV3(c) => c.clone(),
            other => panic!("{} is a {} fixture", self.name(), other.arch_name()),
        }
    }

    pub fn load_from(prefix: PathBuf) -> Self {
        let json_path = with_suffix(&prefix, ".json");
        let text = std::fs::read_to_string(&json_path)
            .unwrap_or_else(|e| panic!("fixture config {}: {e}", json_path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
        // The generators write `{name: {...}}`; accept the bare object too.
        let meta = if json.get("blocks").is_some() {
            json
        } else {
            let name = prefix.file_name().unwrap().to_string_lossy().to_string();
            json.get(&name)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no entry `{name}`", json_path.display()))
        };
        let number = |key: &str| -> usize {
            meta[key]
                .as_u64()
                .unwrap_or_else(|| panic!("fixture json lacks `{key}`")) as usize
        };
        let list = |key: &str| -> Vec<usize> {
            meta[key]
                .as_array()
                .unwrap_or_else(|| panic!("fixture json lacks `{key}`"))
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        let blocks: [usize; 4] = list("blocks").try_into().expect("4 block counts");
        let input_shape: [usize; 4] = list("input_shape").try_into().expect("4-d input");
        let backbone = ResNetConfig::new(blocks).with_base_width(number("base"));
        let config = match meta["arch"].as_str().unwrap_or("deeplabv3") {
            "deeplabv3" => DeepLabV3Config::new(backbone, number("num_classes"))
                .with_aspp_channels(number("aspp_channels"))
                .into(),
            "deeplabv3plus" => DeepLabV3PlusConfig::new(backbone, number("num_classes"))
                .with_decoder_channels(number("decoder_channels"))
                .with_aspp_separable(meta["aspp_separable"].as_bool().expect("aspp_separable"))
                .with_output_stride(number("output_stride"))
                .expect("output stride 8 or 16")
                .into(),
            other => panic!("{}: unknown arch `{other}`", json_path.display()),
        };
        let io_path = with_suffix(&prefix, "_io.safetensors");
        let io = std::fs::read(&io_path)
            .unwrap_or_else(|e| panic!("fixture tensors {}: {e}", io_path.display()));
        Self {
            prefix,
            config,
            input_shape,
            io,
        }
    }

    /// Whether the fixture records an aux output (torchvision's DeepLabV3 does, SMP's DeepLabV3+
    /// has none).
    pub fn has_aux(&self) -> bool {
        self.file().tensor("eval_aux").is_ok()
    }

    fn file(&self) -> safetensors::SafeTensors<'_> {
        safetensors::SafeTensors::deserialize(&self.io).expect("fixture safetensors")
    }

    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Tensor<B, D> {
        let file = self.file();
        let view = file
            .tensor(name)
            .unwrap_or_else(|_| panic!("fixture has no `{name}`"));
        let values = stored_values(&view, name);
        Tensor::from_data(TensorData::new(values, view.shape().to_vec()), device)
    }

    /// The class ids of `target` (int64, or uint8 in a compact fixture).
    pub fn target<B: Backend>(&self, device: &B::Device) -> Tensor<B, 3, Int> {
        let file = self.file();
        let view = file.tensor("target").expect("fixture has no `target`");
        let values: Vec<i64> = stored_values(&view, "target")
            .into_iter()
            .map(|v| v as i64)
            .collect();
        let shape: [usize; 3] = view.shape().try_into().unwrap();
        Tensor::from_data(TensorData::new(values, shape), device)
    }

    /// torchvision's own float32 gradient for `name`, if the fixture records it.
    pub fn float32_gradient<B: Backend>(
        &self,
        name: &str,
        device: &B::Device,
    ) -> Option<Tensor<B, 4>> {
        let key = format!("grad_f32.{name}");
        self.file().tensor(&key).ok()?;
        Some(self.tensor(&key, device))
    }

    pub fn gradient_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .file()
            .names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("grad.").map(String::from))
            .collect();
        names.sort();
        names
    }

    /// The fixture's model with its reference weights loaded (every tensor, nothing skipped).
    pub fn model<B: Backend>(&self, device: &B::Device) -> DeepLab<B> {
        let model = self.config.init::<B>(device);
        let (model, report) = model
            .load_pretrained(with_suffix(&self.prefix, ".pth"))
            .expect("fixture weights load");
        assert!(
            report.fresh.is_empty(),
            "parameters left unloaded: {report}"
        );
        assert!(
            report.skipped.is_empty(),
            "unexpected skipped keys: {report}"
        );
        model
    }
}

/// A stored tensor's values: float32 (references, weights), float16 (the inputs of a compact
/// fixture, exactly the values the reference ran on), int64 or uint8 (class ids, counters).
pub fn stored_values(view: &safetensors::tensor::TensorView<'_>, name: &str) -> Vec<f64> {
    use safetensors::Dtype;
    let data = view.data();
    match view.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::F16 => data
            .chunks_exact(2)
            .map(|b| burn::tensor::f16::from_le_bytes(b.try_into().unwrap()).to_f64())
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
            .collect(),
        Dtype::U8 => data.iter().map(|&b| b as f64).collect(),
        other => panic!("`{name}`: unexpected dtype {other:?} in a fixture"),
    }
}

/// Reference key → Burn path, and Burn path → parameter id, of the model inside `model`.
pub fn key_index<B: Backend>(
    model: &DeepLab<B>,
) -> (KeyMap, HashMap<String, burn::module::ParamId>) {
    fn ids<B: Backend, M: ModuleSnapshot<B>>(m: &M) -> HashMap<String, burn::module::ParamId> {
        m.collect(None, None, true)
            .into_iter()
            .map(|s| (s.full_path(), s.tensor_id.expect("param id")))
            .collect()
    }
    match model {
        DeepLab::DeepLabV3(m) => (KeyMap::for_model(m), ids(m)),
        DeepLab::DeepLabV3Plus(m) => (KeyMap::for_plus(m), ids(m)),
    }
}

/// ‖a − b‖ / ‖b‖, accumulated in f64 on the host.
pub fn rel_err<B: Backend, const D: usize>(a: Tensor<B, D>, b: Tensor<B, D>) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let a: Vec<f64> = a.into_data().convert::<f64>().to_vec().unwrap();
    let b: Vec<f64> = b.into_data().convert::<f64>().to_vec().unwrap();
    let diff: f64 = a.iter().zip(&b).map(|(x, y)| (x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    (diff / norm).sqrt()
}

/// Mean pixel-wise cross-entropy of `[N, C, H, W]` logits against `[N, H, W]` class ids
/// (PyTorch's `F.cross_entropy`).
pub fn cross_entropy<B: Backend>(logits: Tensor<B, 4>, target: Tensor<B, 3, Int>) -> Tensor<B, 1> {
    let picked = log_softmax(logits, 1).gather(1, target.unsqueeze_dim::<4>(1));
    picked.mean().neg()
}

/// Eval-mode outputs vs the reference's `model.eval()`.
pub fn check_eval<B: AutodiffBackend>(fx: &Fixture, device: &B::Device, tol: &Tolerance) {
    let name = fx.name();
    let model = fx.model::<B>(device).valid();
    let input = fx.tensor::<B::InnerBackend, 4>("input", device);
    assert_eq!(input.dims(), fx.input_shape);
    let out = model.forward(input);
    let e_out = rel_err(out.out, fx.tensor::<B::InnerBackend, 4>("eval_out", device));
    println!("{name}: eval rel err: out {e_out:.2e}");
    assert!(e_out <= tol.outputs, "{name}: eval out rel err {e_out:e}");
    assert_eq!(out.aux.is_some(), fx.has_aux(), "{name}: aux head");
    if let Some(aux) = out.aux {
        let e_aux = rel_err(aux, fx.tensor::<B::InnerBackend, 4>("eval_aux", device));
        println!("{name}: eval rel err: aux {e_aux:.2e}");
        assert!(e_aux <= tol.outputs, "{name}: eval aux rel err {e_aux:e}");
    }
}

/// Train-mode (batch-statistics BatchNorm, no dropout) outputs, loss (cross-entropy, + 0.5 × the
/// aux one when there is an aux head) and recorded gradients.
pub fn check_train<B: AutodiffBackend>(fx: &Fixture, device: &B::Device, tol: &Tolerance) {
    let name = fx.name();
    let model = fx.model::<B>(device).without_dropout();
    let out = model.forward(fx.tensor::<B, 4>("input", device));
    let e_out = rel_err(out.out.clone(), fx.tensor::<B, 4>("train_out", device));
    let target = fx.target::<B>(device);
    let mut loss = cross_entropy(out.out, target.clone());
    assert_eq!(out.aux.is_some(), fx.has_aux(), "{name}: aux head");
    if let Some(aux) = out.aux {
        let e_aux = rel_err(aux.clone(), fx.tensor::<B, 4>("train_aux", device));
        println!("{name}: train rel err: aux {e_aux:.2e}");
        assert!(e_aux <= tol.outputs, "{name}: train aux rel err {e_aux:e}");
        loss = loss + cross_entropy(aux, target).mul_scalar(0.5);
    }
    let e_loss = rel_err(loss.clone(), fx.tensor::<B, 1>("train_loss", device));
    println!("{name}: train rel err: out {e_out:.2e}, loss {e_loss:.2e}");
    assert!(e_out <= tol.outputs, "{name}: train out rel err {e_out:e}");
    assert!(
        e_loss <= tol.outputs,
        "{name}: train loss rel err {e_loss:e}"
    );

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let (map, ids) = key_index(&model);
    let names = fx.gradient_names();
    assert!(!names.is_empty(), "{name}: fixture records no gradients");
    let mut failures = Vec::new();
    for key in names {
        let path = map.to_burn(&key).expect("gradient key maps to the model");
        let grad = grads
            .get::<B::InnerBackend, 4>(ids[&path])
            .unwrap_or_else(|| panic!("{name}: no gradient for {key}"));
        let reference = fx.tensor::<B::InnerBackend, 4>(&format!("grad.{key}"), device);
        let torch_f32 = fx
            .float32_gradient::<B::InnerBackend>(&key, device)
            .filter(|_| tol.float32)
            .map(|g| rel_err(g, reference.clone()));
        let limit = tol.gradients.max(2.0 * torch_f32.unwrap_or(0.0));
        let e = rel_err(grad, reference);
        match torch_f32 {
            Some(t) => println!("{name}: grad {key}: rel err {e:.2e} (reference f32: {t:.2e})"),
            None => println!("{name}: grad {key}: rel err {e:.2e}"),
        }
        if e > limit {
            failures.push(format!("{key}: rel err {e:e} > {limit:e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: gradients differ: {failures:?}"
    );
}
