//! Weight import/export: safetensors round trip, class-count mismatch, backbone-only checkpoints,
//! and every kind of wrong checkpoint giving a clear error (never a panic, never a half-loaded model).

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn_store::pytorch::PytorchReader;
use burn_store::ModuleSnapshot;
use common::Fixture;
use deeplab::weights::CheckpointKind;
use deeplab::{DeepLabV3, DeepLabV3Config, ResNetConfig, WeightsError};

type B = Flex;

fn tiny_pth() -> PathBuf {
    common::fixtures_dir().join("tiny_deeplabv3.pth")
}

/// The committed tiny fixture's config.
fn tiny_config() -> DeepLabV3Config {
    Fixture::load_from(common::fixtures_dir().join("tiny_deeplabv3")).deeplabv3_config()
}

/// Every tensor of a model: Burn path → values.
fn values(model: &impl ModuleSnapshot<B>) -> Vec<(String, Vec<f32>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|s| {
            (
                s.full_path(),
                s.to_data().unwrap().convert::<f32>().to_vec().unwrap(),
            )
        })
        .collect()
}

fn value_of(model: &impl ModuleSnapshot<B>, path: &str) -> Vec<f32> {
    values(model)
        .into_iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("no `{path}`"))
        .1
}

/// Writes `tensors` (key → f32 data + shape) as safetensors.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) {
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()).collect())
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((k, shape, _), b)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b);
            (k.clone(), view.unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

/// The tiny fixture's float tensors (torchvision keys), without `num_batches_tracked`.
fn tiny_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let reader = PytorchReader::new(tiny_pth()).unwrap();
    let mut out: Vec<_> = reader
        .tensors()
        .iter()
        .filter(|(k, _)| !k.ends_with("num_batches_tracked"))
        .map(|(k, s)| {
            let data = s.to_data().unwrap();
            (
                k.clone(),
                data.shape.to_vec(),
                data.convert::<f32>().to_vec().unwrap(),
            )
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn load(config: &DeepLabV3Config, path: &Path) -> Result<DeepLabV3<B>, WeightsError> {
    config
        .init::<B>(&Default::default())
        .load_torchvision(path)
        .map(|(m, _)| m)
}

#[test]
fn safetensors_export_round_trips_with_torchvision_keys() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let model = load(&config, &tiny_pth()).unwrap();
    let exported = dir.path().join("tiny.safetensors");
    model.save_torchvision_safetensors(&exported).unwrap();

    // Exactly the state_dict's keys and shapes (num_batches_tracked included), so PyTorch's
    // strict `load_state_dict` accepts it.
    let original = PytorchReader::new(tiny_pth()).unwrap();
    let bytes = std::fs::read(&exported).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut written: Vec<(String, Vec<usize>)> = file
        .tensors()
        .into_iter()
        .map(|(k, v)| (k, v.shape().to_vec()))
        .collect();
    let mut expected: Vec<(String, Vec<usize>)> = original
        .tensors()
        .iter()
        .map(|(k, s)| (k.clone(), s.shape.to_vec()))
        .collect();
    written.sort();
    expected.sort();
    assert_eq!(written, expected);
    // The torchvision values themselves, not just the names.
    for (key, _, data) in tiny_tensors() {
        let view = file.tensor(&key).unwrap();
        let got: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(got, data, "{key}");
    }
    // BatchNorm batch counters round-trip (the fixture's are 7, not the fresh model's 0).
    let mut counters = 0;
    for (key, snapshot) in original.tensors() {
        if !key.ends_with("num_batches_tracked") {
            continue;
        }
        let expected: Vec<i64> = snapshot.to_data().unwrap().to_vec().unwrap();
        let view = file.tensor(key).unwrap();
        assert_eq!(view.dtype(), safetensors::Dtype::I64, "{key}");
        let got = i64::from_le_bytes(view.data().try_into().unwrap());
        assert_eq!((got, expected[0] != 0), (expected[0], true), "{key}");
        counters += 1;
    }
    assert!(counters > 0, "the fixture has BatchNorm counters");

    let (reloaded, report) = config
        .init::<B>(&Default::default())
        .load_torchvision(&exported)
        .unwrap();
    assert!(report.fresh.is_empty(), "{report}");
    assert_eq!(values(&reloaded), values(&model));
}

#[test]
fn other_class_count_keeps_fresh_final_convs() {
    let mut config = tiny_config();
    config.num_classes = 3;
    let fresh = config.init::<B>(&Default::default());
    let init_final = value_of(&fresh, "classifier.final_conv.weight");
    let (model, report) = fresh.load_torchvision(tiny_pth()).unwrap();
    let skipped: Vec<&str> = report
        .skipped
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !k.ends_with("num_batches_tracked"))
        .collect();
    assert_eq!(
        skipped,
        [
            "aux_classifier.4.bias",
            "aux_classifier.4.weight",
            "classifier.4.bias",
            "classifier.4.weight"
        ]
    );
    assert_eq!(report.fresh.len(), 4, "{report}");
    assert_eq!(value_of(&model, "classifier.final_conv.weight"), init_final);
    assert_eq!(model.num_classes(), 3);
    let reference = tiny_tensors();
    let conv1 = &reference
        .iter()
        .find(|t| t.0 == "backbone.conv1.weight")
        .unwrap()
        .2;
    assert_eq!(&value_of(&model, "backbone.conv1.weight"), conv1);
    let text = report.to_string();
    assert!(
        text.contains("2 classes in the checkpoint, 3 in the model"),
        "{text}"
    );
}

#[test]
fn imagenet_resnet_checkpoint_loads_backbone_only() {
    // An ImageNet-style state_dict: the fixture's backbone without `backbone.`, plus `fc`.
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let mut tensors: Vec<_> = tiny_tensors()
        .into_iter()
        .filter_map(|(k, s, v)| Some((k.strip_prefix("backbone.")?.to_string(), s, v)))
        .collect();
    let width = config.backbone.layer4_channels();
    tensors.push((
        "fc.weight".into(),
        vec![10, width],
        (0..10 * width).map(|i| i as f32).collect(),
    ));
    tensors.push(("fc.bias".into(), vec![10], vec![0.5; 10]));
    let path = dir.path().join("resnet.safetensors");
    write_safetensors(&path, &tensors);

    let fresh = config.init::<B>(&Default::default());
    let head_before = value_of(&fresh, "classifier.conv.weight");
    let (model, report) = fresh.load_torchvision(&path).unwrap();
    assert_eq!(report.kind, CheckpointKind::ResNetBackbone);
    assert!(report.skipped.iter().any(|(k, _)| k == "fc.weight"));
    assert!(
        report.fresh.iter().all(|p| !p.starts_with("backbone.")),
        "{report}"
    );
    assert!(report.fresh.contains(&"classifier.conv.weight".to_string()));
    assert_eq!(value_of(&model, "classifier.conv.weight"), head_before);
    let conv1 = &tensors.iter().find(|t| t.0 == "conv1.weight").unwrap().2;
    assert_eq!(&value_of(&model, "backbone.conv1.weight"), conv1);

    // The same file into a ResNet classifier with `fc`: PyTorch's [out, in] becomes Burn's [in, out].
    let resnet = config
        .backbone
        .clone()
        .with_num_classes(Some(10))
        .init::<B>(&Default::default());
    let (resnet, report) = resnet.load_torchvision(&path).unwrap();
    assert!(report.fresh.is_empty(), "{report}");
    let fc = resnet.fc.as_ref().unwrap().weight.val();
    assert_eq!(fc.dims(), [width, 10]);
    let fc: Vec<f32> = fc.into_data().to_vec().unwrap();
    // Burn fc[i][o] = torch fc[o][i] = o·width + i.
    assert_eq!(fc[3 * 10 + 7], (7 * width + 3) as f32);
}

#[test]
fn model_without_aux_head_skips_aux_keys() {
    let config = tiny_config().with_aux_classifier(false);
    let (model, report) = config
        .init::<B>(&Default::default())
        .load_torchvision(tiny_pth())
        .unwrap();
    assert!(model.aux_classifier.is_none());
    assert!(report
        .skipped
        .iter()
        .any(|(k, why)| k == "aux_classifier.0.weight" && why.contains("no aux")));
}

#[test]
fn checkpoint_with_more_blocks_names_the_first_extra_key() {
    let mut smaller = tiny_config();
    smaller.backbone.blocks = [2, 2, 1, 2];
    match load(&smaller, &tiny_pth()) {
        Err(WeightsError::UnexpectedKey { key, path, .. }) => {
            assert!(key.starts_with("backbone.layer3.1."), "{key}");
            assert_eq!(path, tiny_pth());
        }
        other => panic!("expected UnexpectedKey, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn checkpoint_with_fewer_blocks_names_the_first_missing_key() {
    let mut bigger = tiny_config();
    bigger.backbone.blocks = [2, 2, 3, 2];
    let err = load(&bigger, &tiny_pth()).expect_err("must fail");
    match &err {
        WeightsError::MissingKey { key, count, .. } => {
            assert!(key.starts_with("backbone.layer3.2."), "{key}");
            assert!(*count > 1);
        }
        other => panic!("expected MissingKey, got {other}"),
    }
    assert!(err.to_string().contains("tiny_deeplabv3.pth"), "{err}");
}

#[test]
fn checkpoint_of_other_width_is_a_shape_error() {
    let mut wider = tiny_config();
    wider.backbone.base_width = 16;
    match load(&wider, &tiny_pth()) {
        Err(WeightsError::ShapeMismatch {
            key,
            expected,
            found,
            ..
        }) => {
            assert_eq!(key, "aux_classifier.0.weight");
            assert_ne!(expected, found);
        }
        other => panic!("expected ShapeMismatch, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn unreadable_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = tiny_config();
    let bytes = std::fs::read(tiny_pth()).unwrap();

    let empty = dir.path().join("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.path().join("notes.pth");
    std::fs::write(&text, b"this is not a checkpoint\n").unwrap();
    let png = dir.path().join("image.png");
    std::fs::write(&png, b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let bad_safetensors = dir.path().join("bad.safetensors");
    std::fs::write(&bad_safetensors, &bytes[..100]).unwrap();
    for path in [&empty, &text, &png, &bad_safetensors] {
        match load(&config, path) {
            Err(e @ WeightsError::NotACheckpoint { .. }) => {
                assert!(e.to_string().contains(&path.display().to_string()), "{e}")
            }
            other => panic!(
                "{}: expected NotACheckpoint, got {:?}",
                path.display(),
                other.map(|_| ())
            ),
        }
    }
    match load(&config, &dir.path().join("absent.pth")) {
        Err(WeightsError::Io { .. }) => {}
        other => panic!("expected Io, got {:?}", other.map(|_| ())),
    }
    // Truncated at several points: always an error, never a panic.
    for cut in [
        bytes.len() / 10,
        bytes.len() / 2,
        bytes.len() - 200,
        bytes.len() - 10,
    ] {
        let truncated = dir.path().join(format!("cut{cut}.pth"));
        std::fs::write(&truncated, &bytes[..cut]).unwrap();
        let result = std::panic::catch_unwind(|| load(&config, &truncated).map(|_| ()));
        match result {
            Ok(Err(e)) => assert!(e.to_string().contains("cut"), "{e}"),
            Ok(Ok(())) => panic!("truncated at {cut} loaded"),
            Err(_) => panic!("truncated at {cut} panicked"),
        }
    }
}

#[test]
fn foreign_state_dict_is_an_unknown_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unet.safetensors");
    write_safetensors(
        &path,
        &[("encoder.0.weight".into(), vec![2, 2], vec![0.0; 4])],
    );
    match load(&tiny_config(), &path) {
        Err(WeightsError::UnknownLayout { first_key, .. }) => {
            assert_eq!(first_key, "encoder.0.weight")
        }
        other => panic!("expected UnknownLayout, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn resnet_config_presets_match_torchvision() {
    // torchvision's resnet50()/resnet101(): [3, 4, 6, 3] / [3, 4, 23, 3] blocks, no dilation,
    // a 1000-class fc.
    for (config, blocks) in [
        (ResNetConfig::resnet50(), [3, 4, 6, 3]),
        (ResNetConfig::resnet101(), [3, 4, 23, 3]),
    ] {
        assert_eq!(config.blocks, blocks);
        assert_eq!(config.replace_stride_with_dilation, [false, false, false]);
        assert_eq!(config.output_stride(), 32);
        assert_eq!(config.num_classes, Some(1000));
    }
    // The segmentation backbones: torchvision's replace_stride_with_dilation, no fc.
    for (stride, dilate) in [
        (8, [false, true, true]),
        (16, [false, false, true]),
        (32, [false, false, false]),
    ] {
        let backbone = ResNetConfig::resnet101_dilated(stride).unwrap();
        assert_eq!(backbone.blocks, [3, 4, 23, 3]);
        assert_eq!(backbone.replace_stride_with_dilation, dilate);
        assert_eq!(backbone.output_stride(), stride);
        assert_eq!(backbone.num_classes, None);
    }
    assert_eq!(
        DeepLabV3Config::deeplabv3_resnet50(2).backbone,
        ResNetConfig::resnet50_dilated(8).unwrap()
    );
    for bad in [0, 4, 12, 64] {
        let err = ResNetConfig::resnet50_dilated(bad).unwrap_err();
        assert!(err.to_string().contains("8, 16 or 32"), "{err}");
        assert!(ResNetConfig::resnet50().with_output_stride(bad).is_err());
    }
}
