//! Full-size checkpoints: every torchvision key of `deeplabv3_resnet50/101` (21 classes, aux) and
//! ImageNet `resnet50/101`, and every segmentation_models_pytorch key of
//! `DeepLabV3Plus(encoder_name="resnet50"/"resnet101")`, maps to exactly one Burn tensor of the
//! same shape and back, and the learnable parameter counts equal the references'. Keys come from
//! `tests/fixtures/torchvision_keys.txt` and `smp_keys.txt`, written by the libraries themselves
//! (`make_fixtures.py`, `make_smp_fixtures.py`).

mod common;

use std::collections::BTreeMap;

use burn::backend::Flex;
use burn_store::ModuleSnapshot;
use deeplab::weights::{learnable_params, resnet_key_to_burn, KeyMap};
use deeplab::{DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};

/// `model → [(key, shape)]` of torchvision's checkpoints.
fn torchvision_keys() -> BTreeMap<String, Vec<(String, Vec<usize>)>> {
    key_list("torchvision_keys.txt")
}

/// `model → [(key, shape)]` of a key list file, BatchNorm `num_batches_tracked` counters included.
fn key_list(file: &str) -> BTreeMap<String, Vec<(String, Vec<usize>)>> {
    let path = common::fixtures_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out: BTreeMap<String, Vec<(String, Vec<usize>)>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "bad line: {line}");
        let shape: Vec<usize> = serde_json::from_str(cols[2]).expect("shape list");
        out.entry(cols[0].to_string())
            .or_default()
            .push((cols[1].to_string(), shape));
    }
    out
}

/// Checks the bijection between a checkpoint's keys and a model's tensors.
fn check_bijection(
    name: &str,
    torch: &[(String, Vec<usize>)],
    model: Vec<(String, Option<String>, Vec<usize>)>,
    to_burn: impl Fn(&str) -> Option<String>,
) {
    let model: BTreeMap<String, (Option<String>, Vec<usize>)> = model
        .into_iter()
        .map(|(path, key, shape)| (path, (key, shape)))
        .collect();
    let mut hit: BTreeMap<String, String> = BTreeMap::new();
    for (key, shape) in torch {
        let path = to_burn(key).unwrap_or_else(|| panic!("{name}: `{key}` has no Burn path"));
        let (back, model_shape) = model
            .get(&path)
            .unwrap_or_else(|| panic!("{name}: `{key}` → `{path}`, which the model lacks"));
        assert_eq!(model_shape, shape, "{name}: shape of `{key}` (`{path}`)");
        assert_eq!(
            back.as_deref(),
            Some(key.as_str()),
            "{name}: `{path}` maps back"
        );
        if let Some(other) = hit.insert(path.clone(), key.clone()) {
            panic!("{name}: `{key}` and `{other}` both map to `{path}`");
        }
    }
    let unmapped: Vec<&String> = model.keys().filter(|p| !hit.contains_key(*p)).collect();
    assert!(
        unmapped.is_empty(),
        "{name}: Burn tensors without a key: {unmapped:?}"
    );
}

#[test]
fn deeplabv3_checkpoints_map_one_to_one() {
    let keys = torchvision_keys();
    let device = Default::default();
    for (name, config, params) in [
        (
            "deeplabv3_resnet50",
            DeepLabV3Config::deeplabv3_resnet50(21),
            42_004_074,
        ),
        (
            "deeplabv3_resnet101",
            DeepLabV3Config::deeplabv3_resnet101(21),
            60_996_202,
        ),
    ] {
        let model = config.init::<Flex>(&device);
        let map = KeyMap::for_model(&model);
        check_bijection(name, &keys[name], model.torchvision_keys(), |k| {
            map.to_burn(k)
        });
        assert_eq!(
            learnable_params(&model),
            params,
            "{name} learnable parameters"
        );
    }
}

/// SMP's defaults: output stride 16, separable ASPP, `classes=1`. The learnable parameter count
/// is read off the key list (every tensor but the BatchNorm running statistics and counters).
#[test]
fn smp_deeplabv3plus_checkpoints_map_one_to_one() {
    let keys = key_list("smp_keys.txt");
    let device = Default::default();
    for (name, config) in [
        (
            "deeplabv3plus_resnet50",
            DeepLabV3PlusConfig::deeplabv3plus_resnet50(1),
        ),
        (
            "deeplabv3plus_resnet101",
            DeepLabV3PlusConfig::deeplabv3plus_resnet101(1),
        ),
    ] {
        let model = config.init::<Flex>(&device);
        let map = KeyMap::for_plus(&model);
        check_bijection(name, &keys[name], model.smp_keys(), |k| map.to_burn(k));
        let reference: usize = keys[name]
            .iter()
            .filter(|(k, _)| {
                !(k.ends_with(".running_mean")
                    || k.ends_with(".running_var")
                    || k.ends_with(".num_batches_tracked"))
            })
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum();
        assert_eq!(
            learnable_params(&model),
            reference,
            "{name} learnable parameters"
        );
    }
}

#[test]
fn imagenet_resnet_checkpoints_map_one_to_one() {
    let keys = torchvision_keys();
    let device = Default::default();
    for (name, config, params) in [
        ("resnet50", ResNetConfig::resnet50(), 25_557_032),
        ("resnet101", ResNetConfig::resnet101(), 44_549_160),
    ] {
        let model = config.init::<Flex>(&device);
        check_bijection(
            name,
            &keys[name],
            model.torchvision_keys(),
            resnet_key_to_burn,
        );
        assert_eq!(
            learnable_params(&model),
            params,
            "{name} learnable parameters"
        );
    }
}

#[test]
fn deeplab_backbone_has_no_classifier_tensors() {
    // The segmentation backbone is the ImageNet trunk without `fc`: same tensors otherwise.
    let device = Default::default();
    let deeplab = DeepLabV3Config::deeplabv3_resnet50(2).init::<Flex>(&device);
    let trunk: Vec<String> = deeplab
        .backbone
        .collect(None, None, true)
        .iter()
        .map(|s| s.full_path())
        .collect();
    let classifier = ResNetConfig::resnet50().init::<Flex>(&device);
    let with_fc: Vec<String> = classifier
        .collect(None, None, true)
        .iter()
        .map(|s| s.full_path())
        .filter(|p| !p.starts_with("fc."))
        .collect();
    assert_eq!(trunk, with_fc);
}
