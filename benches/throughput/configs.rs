//! The benchmarked configurations: `<arch>-<imgsz>[-b<batch>]`.

use deeplab::{DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig, ResNetConfig};

#[derive(Debug, Clone)]
pub struct Config {
    pub name: String,
    pub model: DeepLabConfig,
    pub imgsz: usize,
    pub batch: usize,
}

pub fn parse_config(spec: &str) -> Result<Config, String> {
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
