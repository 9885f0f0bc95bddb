//! Parity with torchvision: a DeepLabV3 built from torchvision's own classes (`make_fixtures.py`),
//! its `.pth` weights loaded into our model, outputs, loss and gradients compared.
//!
//! The fixture prefix comes from `DEEPLAB_PARITY_FIXTURE` (default: the shared tiny fixture), so any
//! fixture made by `make_fixtures.py` with other settings is checked the same way:
//! `DEEPLAB_PARITY_FIXTURE=/path/to/name cargo test -p deeplab --test parity`.

use std::path::PathBuf;

use burn::backend::{Autodiff, Flex};
use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn_store::ModuleSnapshot;
use deeplab::weights::KeyMap;
use deeplab::{DeepLabV3, DeepLabV3Config, ResNetConfig};

type B = Autodiff<Flex>;

struct Fixture {
    prefix: PathBuf,
    config: DeepLabV3Config,
    input_shape: [usize; 4],
    io: Vec<u8>,
}

impl Fixture {
    fn load() -> Self {
        let prefix = std::env::var_os("DEEPLAB_PARITY_FIXTURE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../../shared/fixtures/torchvision/tiny_deeplabv3")
            });
        let json_path = with_suffix(&prefix, ".json");
        let text = std::fs::read_to_string(&json_path)
            .unwrap_or_else(|e| panic!("fixture config {}: {e}", json_path.display()));
        let json: serde_json::Value = serde_json::from_str(&text).expect("fixture json");
        // make_fixtures.py writes `{name: {...}}`; accept the bare object too.
        let meta = if json.get("blocks").is_some() {
            json
        } else {
            let name = prefix.file_name().unwrap().to_string_lossy().to_string();
            json.get(&name)
                .cloned()
                .unwrap_or_else(|| panic!("{} has no entry `{name}`", json_path.display()))
        };
        let usizes = |key: &str| -> Vec<usize> {
            meta[key]
                .as_array()
                .unwrap_or_else(|| panic!("fixture json lacks `{key}`"))
                .iter()
                .map(|v| v.as_u64().unwrap() as usize)
                .collect()
        };
        let blocks: [usize; 4] = usizes("blocks").try_into().expect("4 block counts");
        let input_shape: [usize; 4] = usizes("input_shape").try_into().expect("4-d input");
        let config = DeepLabV3Config::new(
            ResNetConfig::new(blocks).with_base_width(meta["base"].as_u64().unwrap() as usize),
            meta["num_classes"].as_u64().unwrap() as usize,
        )
        .with_aspp_channels(meta["aspp_channels"].as_u64().unwrap() as usize);
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

    fn tensor<const D: usize>(&self, name: &str) -> Tensor<B, D> {
        let (shape, values) = self.raw(name);
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn raw(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let file = safetensors::SafeTensors::deserialize(&self.io).unwrap();
        let view = file
            .tensor(name)
            .unwrap_or_else(|_| panic!("fixture has no `{name}`"));
        assert_eq!(view.dtype(), safetensors::Dtype::F32, "{name}");
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (view.shape().to_vec(), values)
    }

    fn target(&self) -> Tensor<B, 3, Int> {
        let file = safetensors::SafeTensors::deserialize(&self.io).unwrap();
        let view = file.tensor("target").unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::I64);
        let values: Vec<i64> = view
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        let shape: [usize; 3] = view.shape().try_into().unwrap();
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn gradient_names(&self) -> Vec<String> {
        let file = safetensors::SafeTensors::deserialize(&self.io).unwrap();
        let mut names: Vec<String> = file
            .names()
            .into_iter()
            .filter_map(|n| n.strip_prefix("grad.").map(String::from))
            .collect();
        names.sort();
        names
    }

    fn model(&self) -> DeepLabV3<B> {
        let model = self.config.init::<B>(&Default::default());
        let (model, report) = model
            .load_torchvision(with_suffix(&self.prefix, ".pth"))
            .expect("fixture weights load");
        assert!(report.fresh.is_empty(), "parameters left unloaded: {report}");
        assert!(
            report
                .skipped
                .iter()
                .all(|(k, _)| k.ends_with("num_batches_tracked")),
            "unexpected skipped keys: {report}"
        );
        model
    }
}

fn with_suffix(prefix: &std::path::Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// ‖a − b‖ / ‖b‖.
fn rel_err<const D: usize, BB: Backend>(a: Tensor<BB, D>, b: Tensor<BB, D>) -> f64 {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    let diff = (a - b.clone()).powi_scalar(2).sum().into_scalar().elem::<f64>();
    let norm = b.powi_scalar(2).sum().into_scalar().elem::<f64>();
    (diff / norm).sqrt()
}

/// Mean pixel-wise cross-entropy of `[N, C, H, W]` logits against `[N, H, W]` class ids.
fn cross_entropy(logits: Tensor<B, 4>, target: Tensor<B, 3, Int>) -> Tensor<B, 1> {
    let picked = log_softmax(logits, 1).gather(1, target.unsqueeze_dim::<4>(1));
    picked.mean().neg()
}

#[test]
fn eval_outputs_match_torchvision() {
    let fx = Fixture::load();
    let model = fx.model().valid();
    let input = fx.tensor::<4>("input").inner();
    assert_eq!(input.dims(), fx.input_shape);
    let out = model.forward(input);
    let e_out = rel_err(out.out, fx.tensor::<4>("eval_out").inner());
    let e_aux = rel_err(out.aux.unwrap(), fx.tensor::<4>("eval_aux").inner());
    println!("eval rel err: out {e_out:.2e}, aux {e_aux:.2e}");
    assert!(e_out <= 1e-4, "eval out rel err {e_out:e}");
    assert!(e_aux <= 1e-4, "eval aux rel err {e_aux:e}");
}

#[test]
fn train_outputs_loss_and_gradients_match_torchvision() {
    let fx = Fixture::load();
    let model = fx.model().without_dropout();
    let out = model.forward(fx.tensor::<4>("input"));
    let aux = out.aux.expect("aux head");
    let e_out = rel_err(out.out.clone().inner(), fx.tensor::<4>("train_out").inner());
    let e_aux = rel_err(aux.clone().inner(), fx.tensor::<4>("train_aux").inner());
    let target = fx.target();
    let loss = cross_entropy(out.out, target.clone()) + cross_entropy(aux, target).mul_scalar(0.5);
    let e_loss = rel_err(loss.clone().inner(), fx.tensor::<1>("train_loss").inner());
    println!("train rel err: out {e_out:.2e}, aux {e_aux:.2e}, loss {e_loss:.2e}");
    assert!(e_out <= 1e-4, "train out rel err {e_out:e}");
    assert!(e_aux <= 1e-4, "train aux rel err {e_aux:e}");
    assert!(e_loss <= 1e-4, "train loss rel err {e_loss:e}");

    let grads = GradientsParams::from_grads(loss.backward(), &model);
    let map = KeyMap::for_model(&model);
    let ids: std::collections::HashMap<String, _> = model
        .collect(None, None, true)
        .into_iter()
        .map(|s| (s.full_path(), s.tensor_id.expect("param id")))
        .collect();
    let names = fx.gradient_names();
    assert!(!names.is_empty(), "fixture records no gradients");
    for name in names {
        let path = map.to_burn(&name).expect("gradient key maps to the model");
        let grad = grads
            .get::<Flex, 4>(ids[&path])
            .unwrap_or_else(|| panic!("no gradient for {name}"));
        let e = rel_err(grad, fx.tensor::<4>(&format!("grad.{name}")).inner());
        println!("grad {name}: rel err {e:.2e}");
        assert!(e <= 1e-3, "gradient of {name}: rel err {e:e}");
    }
}
