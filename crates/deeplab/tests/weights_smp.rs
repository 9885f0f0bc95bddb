//! segmentation_models_pytorch DeepLabV3+ weights: a safetensors export carries exactly SMP's keys,
//! shapes and values and loads back; a checkpoint with another class count keeps a fresh
//! `segmentation_head`; an ImageNet ResNet fills the encoder only; a checkpoint whose ASPP is
//! separable does not load into a plain model, and the error says why.

mod common;

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use burn_store::pytorch::PytorchReader;
use burn_store::ModuleSnapshot;
use common::Fixture;
use deeplab::weights::CheckpointKind;
use deeplab::{DeepLabV3Plus, DeepLabV3PlusConfig, ResNetConfig, WeightsError};

type B = Flex;

fn fixture(name: &str) -> (DeepLabV3PlusConfig, PathBuf) {
    let fx = Fixture::load_from(common::fixtures_dir().join(name));
    let config = match fx.config {
        deeplab::DeepLabConfig::DeepLabV3Plus(c) => c,
        other => panic!("{name} is a {} fixture", other.arch_name()),
    };
    (config, common::with_suffix(&fx.prefix, ".pth"))
}

fn load(config: &DeepLabV3PlusConfig, path: &Path) -> Result<DeepLabV3Plus<B>, WeightsError> {
    config
        .init::<B>(&Default::default())
        .load_smp(path)
        .map(|(m, _)| m)
}

/// Every tensor: Burn path → values.
fn values(model: &impl ModuleSnapshot<B>) -> Vec<(String, Vec<f32>)> {
    model
        .collect(None, None, true)
        .into_iter()
        .map(|s| {
            let values = s.to_data().unwrap().convert::<f32>().to_vec().unwrap();
            (s.full_path(), values)
        })
        .collect()
}

#[test]
fn safetensors_export_has_smp_keys_and_loads_back() {
    for name in ["tiny_deeplabv3plus", "tiny_deeplabv3plus_os8_plain"] {
        let (config, pth) = fixture(name);
        let model = load(&config, &pth).unwrap();
        // A fixed place under target/, so the export can also be loaded into SMP by hand.
        let exported = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.safetensors"));
        model.save_smp_safetensors(&exported).unwrap();

        let original = PytorchReader::new(&pth).unwrap();
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
        assert_eq!(
            written, expected,
            "{name}: SMP's state_dict keys and shapes"
        );
        for (key, snapshot) in original.tensors() {
            let view = file.tensor(key).unwrap();
            if key.ends_with("num_batches_tracked") {
                let want: Vec<i64> = snapshot.to_data().unwrap().to_vec().unwrap();
                let got = i64::from_le_bytes(view.data().try_into().unwrap());
                assert_eq!(got, want[0], "{name}: {key}");
                continue;
            }
            let want: Vec<f32> = snapshot
                .to_data()
                .unwrap()
                .convert::<f32>()
                .to_vec()
                .unwrap();
            let got: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            assert_eq!(got, want, "{name}: {key}");
        }
        let (reloaded, report) = config
            .init::<B>(&Default::default())
            .load_smp(&exported)
            .unwrap();
        assert_eq!(report.kind, CheckpointKind::DeepLabV3Plus);
        assert!(
            report.fresh.is_empty() && report.skipped.is_empty(),
            "{report}"
        );
        assert_eq!(values(&reloaded), values(&model), "{name}");
    }
}

#[test]
fn other_class_count_keeps_a_fresh_head() {
    let (config, pth) = fixture("tiny_deeplabv3plus");
    let mut five = config.clone();
    five.num_classes = 5;
    let (model, report) = five.init::<B>(&Default::default()).load_smp(&pth).unwrap();
    assert_eq!(model.num_classes(), 5);
    assert_eq!(
        report.fresh,
        ["segmentation_head.bias", "segmentation_head.weight"],
        "{report}"
    );
    assert_eq!(report.skipped.len(), 2, "{report}");
}

#[test]
fn an_imagenet_resnet_fills_the_encoder_only() {
    let dir = tempfile::tempdir().unwrap();
    let (config, pth) = fixture("tiny_deeplabv3plus");
    // The fixture's encoder as a torchvision ResNet classifier state_dict (with an `fc`).
    let model = load(&config, &pth).unwrap();
    let classifier = ResNetConfig::new(config.encoder.blocks)
        .with_base_width(config.encoder.base_width)
        .with_output_stride(32)
        .unwrap()
        .with_num_classes(Some(10));
    let mut resnet = classifier.init::<B>(&Default::default());
    resnet.layer1 = model.encoder.layer1.clone();
    resnet.conv1 = model.encoder.conv1.clone();
    let path = dir.path().join("resnet.safetensors");
    resnet_export(&resnet, &path);
    let (loaded, report) = config
        .init::<B>(&Default::default())
        .load_smp(&path)
        .unwrap();
    assert_eq!(report.kind, CheckpointKind::ResNetBackbone);
    assert!(
        report.fresh.iter().all(|p| !p.starts_with("encoder.")),
        "{report}"
    );
    assert!(
        report.fresh.iter().any(|p| p.starts_with("decoder.")),
        "{report}"
    );
    assert!(
        report.skipped.iter().all(|(k, _)| k.starts_with("fc.")),
        "{report}"
    );
    let conv1 = |m: &DeepLabV3Plus<B>| values(&m.encoder.conv1)[0].1.clone();
    assert_eq!(conv1(&loaded), conv1(&model));
}

/// A ResNet's tensors under torchvision's keys, as safetensors.
fn resnet_export(resnet: &deeplab::ResNet<B>, path: &Path) {
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = resnet
        .collect(None, None, true)
        .into_iter()
        .filter(|s| !s.full_path().ends_with("num_batches_tracked"))
        .map(|s| {
            let key = deeplab::weights::resnet_path_to_torch(&s.full_path()).unwrap();
            let data = s.to_data().unwrap().convert::<f32>();
            let mut shape = data.shape.to_vec();
            let values: Vec<f32> = if key == "fc.weight" {
                // Burn keeps Linear weights as [in, out], PyTorch as [out, in].
                let (r, c) = (shape[0], shape[1]);
                let v: Vec<f32> = data.to_vec().unwrap();
                shape.reverse();
                (0..r * c).map(|k| v[(k % r) * c + k / r]).collect()
            } else {
                data.to_vec().unwrap()
            };
            (
                key,
                shape,
                values.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
        .iter()
        .map(|(k, shape, bytes)| {
            let view =
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes);
            (k.clone(), view.unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn a_separable_checkpoint_does_not_load_into_a_plain_aspp() {
    let (config, pth) = fixture("tiny_deeplabv3plus");
    assert!(config.aspp_separable);
    let plain = config.with_aspp_separable(false);
    let err = load(&plain, &pth).unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, WeightsError::UnexpectedKey { .. }) && message.contains("separable"),
        "{message}"
    );
    assert!(message.contains(&pth.display().to_string()), "{message}");
}
