//! A fresh `deeplabv3_resnet50(2)` is initialised like torchvision's: the backbone's convs
//! Kaiming-normal (fan-out), the ASPP/head/aux-head convs PyTorch's default uniform, BatchNorm
//! γ = 1 / β = 0 and running statistics 0 / 1; and a fresh DeepLabV3+ ResNet-50 like
//! segmentation_models_pytorch's (the encoder as torchvision's ResNet, every decoder and head conv,
//! depthwise ones included, PyTorch's default). Reference statistics come from the libraries
//! themselves (`tests/fixtures/init_stats_deeplabv3_resnet50.json` from `make_fixtures.py`,
//! `init_stats_deeplabv3plus_resnet50.json` from `make_smp_fixtures.py`).

mod common;

use std::collections::BTreeMap;

use burn::backend::Flex;
use burn::prelude::*;
use burn_store::ModuleSnapshot;
use deeplab::weights::KeyMap;
use deeplab::{DeepLabV3Config, DeepLabV3PlusConfig};

/// `{key: [numel, mean, std, max_abs]}` of `file`.
fn reference(file: &str) -> BTreeMap<String, [f64; 4]> {
    let path = common::fixtures_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("init statistics json")
}

fn stats(values: &[f64]) -> (f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
    let max_abs = values.iter().fold(0f64, |m, v| m.max(v.abs()));
    (mean, var.sqrt(), max_abs)
}

/// Compares every float tensor of a fresh model (`tensors`: reference key → values) with the
/// reference statistics; returns the failures.
fn compare(
    reference: &BTreeMap<String, [f64; 4]>,
    tensors: impl IntoIterator<Item = (String, Vec<f64>)>,
) -> Vec<String> {
    let mut seen = 0;
    let mut failures = Vec::new();
    for (key, values) in tensors {
        let Some(&[numel, ref_mean, ref_std, ref_max]) = reference.get(&key) else {
            if key.ends_with("num_batches_tracked") {
                continue; // an integer buffer: not in the float statistics
            }
            panic!("`{key}` is not in the reference's state_dict");
        };
        seen += 1;
        assert_eq!(values.len(), numel as usize, "{key}");
        let (mean, std, max_abs) = stats(&values);
        if ref_std == 0.0 {
            // BatchNorm γ/β and running statistics: constants.
            if values.iter().any(|&v| v != ref_mean) {
                failures.push(format!(
                    "{key}: expected all {ref_mean}, mean {mean} std {std}"
                ));
            }
        } else if numel >= 4096.0 {
            let std_err = (std - ref_std).abs() / ref_std;
            let (ratio, ref_ratio) = (max_abs / std, ref_max / ref_std);
            let shape_err = (ratio - ref_ratio).abs() / ref_ratio;
            // max/std tells the families apart: √3 = 1.73 for a uniform, 3.3–5.7 for a normal of
            // these sizes. A normal's sample maximum is noisy: torchvision's own ratios range from
            // 3.6 to 5.5 across its backbone convs, e.g. 4.32 for `layer1.0.conv1` (4096 values)
            // where a second draw gives 3.35. So a normal reference allows 25 %, a uniform 15 %.
            let shape_tol = if ref_ratio < 2.5 { 0.15 } else { 0.25 };
            if std_err > 0.05 || shape_err > shape_tol {
                failures.push(format!(
                    "{key}: std {std:.3e} vs {ref_std:.3e} ({:.1}%), max/std {ratio:.2} vs {ref_ratio:.2}",
                    100.0 * std_err,
                ));
            }
        }
    }
    assert_eq!(
        seen,
        reference.len(),
        "every float tensor of the reference model"
    );
    failures
}

/// Reference key → values of every tensor of `model`.
fn tensors<M: ModuleSnapshot<Flex>>(
    model: &M,
    to_torch: impl Fn(&str) -> Option<String>,
) -> Vec<(String, Vec<f64>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|snapshot| {
            let path = snapshot.full_path();
            let key = to_torch(&path).expect("every tensor has a reference key");
            let values = snapshot
                .to_data()
                .unwrap()
                .convert::<f64>()
                .to_vec()
                .unwrap();
            (key, values)
        })
        .collect()
}

/// Flex's random generator is process-global: the two tests run one at a time, so that each
/// draws its model alone (from its own seed) and sees the same values on every run.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn fresh_deeplabv3_resnet50_is_initialised_like_torchvision() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reference = reference("init_stats_deeplabv3_resnet50.json");
    let device = Default::default();
    Flex::seed(&device, 3);
    let model = DeepLabV3Config::deeplabv3_resnet50(2).init::<Flex>(&device);
    let map = KeyMap::for_model(&model);
    let failures = compare(&reference, tensors(&model, |p| map.to_torch(p)));
    assert!(
        failures.is_empty(),
        "initialisation differs:\n{}",
        failures.join("\n")
    );
    // The 1×1 classifiers (always fresh when fine-tuning to 2 classes): weight and bias inside
    // PyTorch's default U(±1/√fan_in), fan_in = 256 for both heads.
    let bound = 1.0 / 256f64.sqrt();
    for tensor in [
        model.classifier.final_conv.weight.val(),
        model
            .aux_classifier
            .as_ref()
            .unwrap()
            .final_conv
            .weight
            .val(),
    ] {
        let max: f64 = tensor.abs().max().into_scalar().elem();
        assert!(
            max <= bound && max > 0.5 * bound,
            "classifier weight max {max}"
        );
    }
    for bias in [
        model.classifier.final_conv.bias.as_ref().unwrap().val(),
        model
            .aux_classifier
            .as_ref()
            .unwrap()
            .final_conv
            .bias
            .as_ref()
            .unwrap()
            .val(),
    ] {
        let values: Vec<f32> = bias.into_data().to_vec().unwrap();
        assert!(
            values.iter().all(|v| (v.abs() as f64) <= bound) && values.iter().any(|&v| v != 0.0),
            "classifier bias {values:?} outside ±{bound}"
        );
    }
}

#[test]
fn fresh_deeplabv3plus_resnet50_is_initialised_like_smp() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let reference = reference("init_stats_deeplabv3plus_resnet50.json");
    let device = Default::default();
    Flex::seed(&device, 4);
    let model = DeepLabV3PlusConfig::deeplabv3plus_resnet50(2).init::<Flex>(&device);
    let map = KeyMap::for_plus(&model);
    let failures = compare(&reference, tensors(&model, |p| map.to_torch(p)));
    assert!(
        failures.is_empty(),
        "initialisation differs:\n{}",
        failures.join("\n")
    );
    // The 1×1 classifier (fewer than 4096 values, so not in the statistics above): PyTorch's
    // default U(±1/√256) for weight and bias.
    let bound = 1.0 / 256f64.sqrt();
    let head = &model.segmentation_head;
    let weight = head.weight.val().into_data().to_vec::<f32>().unwrap();
    let bias = head
        .bias
        .as_ref()
        .unwrap()
        .val()
        .into_data()
        .to_vec::<f32>()
        .unwrap();
    assert!(weight.iter().all(|v| (v.abs() as f64) <= bound));
    assert!(weight.iter().any(|v| (v.abs() as f64) > 0.5 * bound));
    assert!(bias.iter().all(|v| (v.abs() as f64) <= bound), "{bias:?}");
    assert!(bias.iter().any(|&v| v != 0.0), "{bias:?}");
}
