//! The trajectory harness: several training steps of `SegModel` (its `TrainStep`, this crate's
//! Adam) against the reference library's (torchvision for DeepLabV3, segmentation_models_pytorch
//! for DeepLabV3+): each step's loss, then every parameter, BatchNorm running statistic and batch
//! counter, and the final eval output. Used by `trajectory.rs` (Flex f64), `trajectory_f32.rs`
//! (Flex f32) and `trajectory_wgpu.rs` (`Autodiff<Wgpu>`).
//!
//! The fixture prefix comes from `DEEPLAB_TRAJECTORY_FIXTURE` (default: every committed fixture
//! in `crates/deeplab/tests/fixtures`): `<prefix>.json` (the architecture), `<prefix>.pth` (initial
//! weights), `<prefix>_trajectory.json` (steps, lr, betas, eps, aux weight) and
//! `<prefix>_trajectory.safetensors` (per-step inputs, targets and losses; the final state_dict;
//! the final eval output), made by `make_fixtures.py` / `make_smp_fixtures.py` there.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::DType;
use burn::train::TrainStep;
use burn_store::ModuleSnapshot;
use deeplab::weights::KeyMap;
use deeplab::{DeepLab, DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};
use drive_data::SegBatch;
use seg_train::model::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::train::optim::AdamConfig;

pub fn with_suffix(prefix: &Path, suffix: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The committed fixtures with a trajectory: torchvision's DeepLabV3 and SMP's DeepLabV3+ (output
/// stride 16 separable, 8 plain) on inputs whose `layer4` is smaller than every ASPP rate (`tiny_*`),
/// and the three architectures on inputs where every atrous tap reads real pixels (`live_*`).
pub fn committed() -> Vec<&'static str> {
    include_str!("../../../deeplab/tests/fixtures/committed.txt")
        .lines()
        .collect()
}

/// The fixture named by `DEEPLAB_TRAJECTORY_FIXTURE`, else every committed one.
pub fn prefixes() -> Vec<PathBuf> {
    committed_or_env(&committed())
}

/// The fixture named by `DEEPLAB_TRAJECTORY_FIXTURE`, else the committed ones named.
pub fn committed_or_env(names: &[&str]) -> Vec<PathBuf> {
    match std::env::var_os("DEEPLAB_TRAJECTORY_FIXTURE") {
        Some(prefix) => vec![PathBuf::from(prefix)],
        None => names
            .iter()
            .map(|name| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../deeplab/tests/fixtures")
                    .join(name)
            })
            .collect(),
    }
}

/// How the state after the steps is compared with the reference's.
#[derive(Clone, Copy)]
pub enum StateLimit {
    /// Largest element difference relative to the tensor's largest value, for every state_dict
    /// entry and the final eval output: exact arithmetic (f64) must meet it element by element.
    MaxRelative(f64),
    /// ‖a − b‖ / ‖b‖ of every tensor: in float32, Adam divides each gradient by its own running
    /// magnitude, so an element whose float64 gradient is near zero steps by up to the learning
    /// rate either way on rounding alone; the tensor as a whole stays close.
    RelativeL2(f64),
}

impl StateLimit {
    fn error(self, got: &[f64], expected: &[f64]) -> f64 {
        match self {
            Self::MaxRelative(_) => max_rel(got, expected),
            Self::RelativeL2(_) => rel_l2(got, expected),
        }
    }

    fn limit(self) -> f64 {
        match self {
            Self::MaxRelative(l) | Self::RelativeL2(l) => l,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::MaxRelative(_) => "max rel diff",
            Self::RelativeL2(_) => "rel L2 diff",
        }
    }
}

/// What a backend and precision must hold.
pub struct Tolerance {
    /// Relative error of each step's loss.
    pub loss: f64,
    /// Every state_dict entry and the final eval output after the steps.
    pub state: StateLimit,
    /// The float type the model must run in.
    pub dtype: DType,
    /// Also check that a 1 % change of one BatchNorm's running variance is seen (only where
    /// `state` is well below 1 %).
    pub sharpness: bool,
}

/// The fixture's model configuration (`{name: {...}}` or a bare object), dropout off.
fn model_config(prefix: &Path) -> DeepLabConfig {
    let json = read_json(&with_suffix(prefix, ".json"));
    let name = prefix.file_name().unwrap().to_string_lossy().to_string();
    let meta = json.get(&name).cloned().unwrap_or(json);
    let n = |k: &str| {
        meta[k]
            .as_u64()
            .unwrap_or_else(|| panic!("config lacks `{k}`")) as usize
    };
    let blocks: Vec<usize> = serde_json::from_value(meta["blocks"].clone()).expect("blocks");
    let backbone =
        ResNetConfig::new(blocks.try_into().expect("4 block counts")).with_base_width(n("base"));
    match meta["arch"].as_str().unwrap_or("deeplabv3") {
        "deeplabv3" => DeepLabV3Config::new(backbone, n("num_classes"))
            .with_aspp_channels(n("aspp_channels"))
            .with_aspp_dropout(0.0)
            .with_aux_dropout(0.0)
            .into(),
        "deeplabv3plus" => DeepLabV3PlusConfig::new(backbone, n("num_classes"))
            .with_decoder_channels(n("decoder_channels"))
            .with_aspp_separable(meta["aspp_separable"].as_bool().expect("aspp_separable"))
            .with_aspp_dropout(0.0)
            .with_output_stride(n("output_stride"))
            .expect("output stride 8 or 16")
            .into(),
        other => panic!("{name}: unknown arch `{other}`"),
    }
}

/// The trajectory's tensors, as f64 host values with their shapes.
struct Reference {
    tensors: BTreeMap<String, (Vec<usize>, Vec<f64>)>,
}

impl Reference {
    fn load(path: &Path) -> Self {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = safetensors::SafeTensors::deserialize(&bytes).expect("trajectory safetensors");
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                // float32 (references), float16 (a compact fixture's inputs, exactly the values
                // the reference ran on), int64 or uint8 (targets, counters).
                let data = view.data();
                let values: Vec<f64> = match view.dtype() {
                    safetensors::Dtype::F32 => data
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    safetensors::Dtype::F16 => data
                        .chunks_exact(2)
                        .map(|b| burn::tensor::f16::from_le_bytes(b.try_into().unwrap()).to_f64())
                        .collect(),
                    safetensors::Dtype::I64 => data
                        .chunks_exact(8)
                        .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f64)
                        .collect(),
                    safetensors::Dtype::U8 => data.iter().map(|&b| b as f64).collect(),
                    other => panic!("{name}: unexpected dtype {other:?}"),
                };
                (name, (view.shape().to_vec(), values))
            })
            .collect();
        Self { tensors }
    }

    fn get(&self, name: &str) -> &(Vec<usize>, Vec<f64>) {
        self.tensors
            .get(name)
            .unwrap_or_else(|| panic!("trajectory has no `{name}`"))
    }

    fn float<Bk: Backend, const D: usize>(&self, name: &str, device: &Bk::Device) -> Tensor<Bk, D> {
        let (shape, values) = self.get(name);
        Tensor::from_data(TensorData::new(values.clone(), shape.clone()), device)
    }
}

/// max |a − b| / max |b|.
/// ‖a − b‖ / ‖b‖ (‖a − b‖ when b is 0).
fn rel_l2(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff: f64 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
    let norm: f64 = b.iter().map(|y| y * y).sum();
    if norm == 0.0 {
        diff.sqrt()
    } else {
        (diff / norm).sqrt()
    }
}

fn max_rel(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let diff = a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()));
    let scale = b.iter().fold(0f64, |m, y| m.max(y.abs()));
    if scale == 0.0 {
        diff
    } else {
        diff / scale
    }
}

/// Every state_dict entry of `model` that differs from `final.<key>` by more than `tol`.
fn state_differences<I: Backend>(
    net: &DeepLab<I>,
    reference: &Reference,
    limit: StateLimit,
) -> Vec<String> {
    let (map, snapshots) = match net {
        DeepLab::DeepLabV3(m) => (KeyMap::for_model(m), m.collect(None, None, true)),
        DeepLab::DeepLabV3Plus(m) => (KeyMap::for_plus(m), m.collect(None, None, true)),
    };
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut worst = (0f64, String::new());
    for snapshot in snapshots {
        let path = snapshot.full_path();
        let key = map.to_torch(&path).expect("torchvision key");
        let (_, expected) = reference.get(&format!("final.{key}"));
        let got: Vec<f64> = snapshot
            .to_data()
            .unwrap()
            .convert::<f64>()
            .to_vec()
            .unwrap();
        let err = limit.error(&got, expected);
        if err > worst.0 {
            worst = (err, key.clone());
        }
        if err > limit.limit() {
            failures.push(format!("{key}: {} {err:.2e}", limit.name()));
        }
        compared += 1;
    }
    let expected_entries = reference
        .tensors
        .keys()
        .filter(|k| k.starts_with("final."))
        .count()
        - 1;
    assert_eq!(
        compared, expected_entries,
        "every state_dict entry compared"
    );
    println!(
        "state_dict after the steps: largest {} {:.2e} ({})",
        limit.name(),
        worst.0,
        worst.1
    );
    failures
}

/// Runs the fixture's steps on `B` and compares with the reference within `tol`.
pub fn check_trajectory<B: AutodiffBackend>(prefix: &Path, device: &B::Device, tol: &Tolerance) {
    println!("{}:", prefix.display());
    let prefix = prefix.to_path_buf();
    let device = device.clone();
    let meta = read_json(&with_suffix(&prefix, "_trajectory.json"));
    let reference = Reference::load(&with_suffix(&prefix, "_trajectory.safetensors"));
    let steps = meta["steps"].as_u64().expect("steps") as usize;
    let lr = meta["lr"].as_f64().expect("lr");
    let betas: Vec<f64> = serde_json::from_value(meta["betas"].clone()).expect("betas");
    let adam = AdamConfig {
        beta_1: betas[0],
        beta_2: betas[1],
        epsilon: meta["eps"].as_f64().expect("eps"),
    };
    let loss = LossConfig {
        aux_weight: meta["aux_weight"].as_f64().expect("aux_weight"),
        ..LossConfig::default()
    };

    let (net, _) = model_config(&prefix)
        .init::<B>(&device)
        .load_pretrained(with_suffix(&prefix, ".pth"))
        .expect("initial weights");
    let probe = match &net {
        DeepLab::DeepLabV3(m) => m.backbone.conv1.weight.val(),
        DeepLab::DeepLabV3Plus(m) => m.encoder.conv1.weight.val(),
    };
    assert_eq!(probe.dtype(), tol.dtype);
    let mut model = SegModel { net, loss };
    let mut optim = adam.init::<B, SegModel<B>>();

    for s in 0..steps {
        let images = reference.float::<B, 4>(&format!("step{s}.input"), &device);
        let (shape, targets) = reference.get(&format!("step{s}.target"));
        let targets: Vec<i64> = targets.iter().map(|&v| v as i64).collect();
        let shape: [usize; 3] = shape.clone().try_into().expect("[N, H, W] target");
        let batch = SegBatch {
            fov: Tensor::<B, 3, Int>::ones(shape, &device).bool(),
            targets: Tensor::from_data(TensorData::new(targets, shape), &device),
            images,
            skeletons: None,
            ids: (0..shape[0] as u32).collect(),
        };
        let output = TrainStep::step(&model, batch);
        // Read in full precision (`into_scalar` gives Flex's f32 element type).
        let got: f64 = output
            .item
            .loss
            .clone()
            .into_data()
            .convert::<f64>()
            .to_vec()
            .unwrap()[0];
        // The json has the losses in full precision, the safetensors file in float32.
        let expected = meta["losses"][s].as_f64().expect("losses");
        let rel = (got - expected).abs() / expected.abs();
        println!("step {s}: loss {got:.15} vs the reference {expected:.15} (rel {rel:.1e})");
        assert!(
            rel <= tol.loss,
            "{}: step {s}: loss {got} vs the reference {expected}",
            prefix.display()
        );
        model = optim.step(lr, model, output.grads);
    }

    // The export of the training model carries the updated batch counters.
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("trained.safetensors");
    model.net.save_safetensors(&exported).expect("export");
    let bytes = std::fs::read(&exported).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let counter_key = match &model.net {
        DeepLab::DeepLabV3(_) => "backbone.bn1.num_batches_tracked",
        DeepLab::DeepLabV3Plus(_) => "encoder.bn1.num_batches_tracked",
    };
    let counter = file.tensor(counter_key).unwrap();
    let counter = i64::from_le_bytes(counter.data().try_into().unwrap());
    let expected = reference.get(&format!("final.{counter_key}")).1[0] as i64;
    assert_eq!(counter, expected, "exported num_batches_tracked");

    // `valid()`: the inference model, with the running statistics of the last step.
    let trained = model.valid().net;
    let failures = state_differences(&trained, &reference, tol.state);
    assert!(
        failures.is_empty(),
        "after {steps} steps:\n{}",
        failures.join("\n")
    );

    let eval = trained.forward(reference.float::<B::InnerBackend, 4>("step0.input", &device));
    let got: Vec<f64> = eval.out.into_data().convert::<f64>().to_vec().unwrap();
    let err = tol.state.error(&got, &reference.get("final.eval_out").1);
    println!("final eval output: {} {err:.2e}", tol.state.name());
    assert!(
        err <= tol.state.limit(),
        "final eval output differs: {err:e}"
    );
    if !tol.sharpness {
        return;
    }

    // The comparison is sharp enough to see a 1 % error in one BatchNorm's running variance.
    let mut perturbed = Reference {
        tensors: reference.tensors.clone(),
    };
    let key = perturbed
        .tensors
        .keys()
        .find(|k| {
            k.ends_with("aux_classifier.1.running_var")
                || k.ends_with("decoder.block1.1.running_var")
        })
        .cloned()
        .expect("a head BatchNorm");
    for v in &mut perturbed.tensors.get_mut(&key).unwrap().1 {
        *v *= 1.01;
    }
    let failures = state_differences(&trained, &perturbed, tol.state);
    assert_eq!(failures.len(), 1, "{failures:?}");
}

/// Float32 against the float64 reference, compared tensor by tensor (see [`StateLimit`]): losses
/// within 1e-4 relative, every state_dict entry and the final eval output within 1e-2 (relative
/// L2). Observed on Flex with the committed fixtures: losses ≤ 3.4e-5, states ≤ 2.1e-3, eval
/// outputs ≤ 1.7e-3; element by element the largest difference is 4 % of a tensor's largest
/// value (an element whose float64 gradient is near zero steps by the learning rate either way).
pub const FLOAT32: Tolerance = Tolerance {
    loss: 1e-4,
    state: StateLimit::RelativeL2(1e-2),
    dtype: DType::F32,
    sharpness: false,
};
