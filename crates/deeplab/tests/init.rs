//! A fresh `deeplabv3_resnet50(2)` is initialised like torchvision's: the backbone's convs
//! Kaiming-normal (fan-out), the ASPP/head/aux-head convs PyTorch's default uniform, BatchNorm
//! γ = 1 / β = 0 and running statistics 0 / 1. Reference statistics come from torchvision itself
//! (`tests/fixtures/init_stats_deeplabv3_resnet50.json`, written by `make_fixtures.py`).

mod common;

use std::collections::BTreeMap;

use burn::backend::Flex;
use burn::prelude::*;
use burn_store::ModuleSnapshot;
use deeplab::weights::KeyMap;
use deeplab::DeepLabV3Config;

/// `{key: [numel, mean, std, max_abs]}`.
fn reference() -> BTreeMap<String, [f64; 4]> {
    let path = common::fixtures_dir().join("init_stats_deeplabv3_resnet50.json");
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

#[test]
fn fresh_deeplabv3_resnet50_is_initialised_like_torchvision() {
    let reference = reference();
    let device = Default::default();
    Flex::seed(&device, 3);
    let model = DeepLabV3Config::deeplabv3_resnet50(2).init::<Flex>(&device);
    let map = KeyMap::for_model(&model);
    let mut seen = 0;
    let mut failures = Vec::new();
    for snapshot in model.collect(None, None, true) {
        let path = snapshot.full_path();
        let key = map
            .to_torch(&path)
            .expect("every tensor has a torchvision key");
        let Some(&[numel, ref_mean, ref_std, ref_max]) = reference.get(&key) else {
            if key.ends_with("num_batches_tracked") {
                continue; // an integer buffer: not in the float statistics
            }
            panic!("`{key}` is not in torchvision's state_dict");
        };
        seen += 1;
        let values: Vec<f64> = snapshot
            .to_data()
            .unwrap()
            .convert::<f64>()
            .to_vec()
            .unwrap();
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
        "every float tensor of torchvision's model"
    );
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
