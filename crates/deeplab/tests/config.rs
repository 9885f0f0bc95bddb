//! The configurations carry the whole architecture: `DeepLabV3PlusConfig::new` is SMP's
//! `DeepLabV3Plus` (output stride 16, the encoder dilated uniformly, as SMP's `make_dilated`), so
//! building the encoder from its own configuration gives SMP's encoder; configurations written
//! before the dilation schedule was recorded read as what built them.

use burn::backend::Flex;
use deeplab::{DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, Dilation, ResNetConfig};

fn tiny() -> ResNetConfig {
    ResNetConfig::new([1, 1, 2, 2]).with_base_width(4)
}

#[test]
fn deeplabv3plus_new_is_smps_default() {
    let config = DeepLabV3PlusConfig::new(tiny(), 2);
    assert_eq!(config.output_stride(), 16);
    assert_eq!(config.encoder.dilation, Dilation::Uniform);
    // The encoder alone, built from its own configuration: SMP's schedule, every convolution of
    // the dilated layer4 at rate 2 (torchvision's would keep rate 1 in its first block).
    let encoder = config.encoder.init::<Flex>(&Default::default());
    let rates: Vec<[usize; 2]> = encoder.layer4.iter().map(|b| b.conv2.dilation).collect();
    assert_eq!(rates, [[2, 2], [2, 2]]);
    let torchvision = tiny()
        .with_output_stride(16)
        .unwrap()
        .init::<Flex>(&Default::default());
    let rates: Vec<[usize; 2]> = torchvision
        .layer4
        .iter()
        .map(|b| b.conv2.dilation)
        .collect();
    assert_eq!(rates, [[1, 1], [2, 2]]);
    // Output stride 8: layer3 at 2 and layer4 at 4, uniformly.
    let os8 = config.with_output_stride(8).unwrap();
    let encoder = os8.encoder.init::<Flex>(&Default::default());
    assert_eq!(encoder.layer3[0].conv2.dilation, [2, 2]);
    assert_eq!(encoder.layer4[0].conv2.dilation, [4, 4]);
}

#[test]
fn configurations_without_a_dilation_read_as_what_built_them() {
    let plus: DeepLabConfig = DeepLabV3PlusConfig::new(tiny(), 2).into();
    let mut json = serde_json::to_value(&plus).unwrap();
    assert_eq!(json["encoder"]["dilation"], "uniform");
    json["encoder"].as_object_mut().unwrap().remove("dilation");
    let read: DeepLabConfig = serde_json::from_value(json).unwrap();
    assert_eq!(
        read, plus,
        "a DeepLabV3+ encoder was always dilated uniformly"
    );

    let v3: DeepLabConfig = DeepLabV3Config::new(tiny(), 2).into();
    let mut json = serde_json::to_value(&v3).unwrap();
    json["backbone"].as_object_mut().unwrap().remove("dilation");
    let read: DeepLabConfig = serde_json::from_value(json).unwrap();
    assert_eq!(read, v3, "torchvision's schedule");
}
