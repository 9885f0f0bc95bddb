//! `retina-seg export`: a trained model in the reference library's own format, for PyTorch.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use burn::backend::Flex;
use clap::{Args, ValueEnum};
use deeplab::DeepLabConfig;
use drive_data::Normalization;
use seg_train::model::checkpoint;
use seg_train::model::pytorch::{write_smp_pretrained, SMP_CONFIG, SMP_WEIGHTS};

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Our checkpoint: a checkpoint folder, or a `train --out` folder (then best-iou).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Where to write: a `.safetensors` file, or a folder for `--format smp-pretrained`.
    #[arg(long)]
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value_t = ExportFormat::Auto)]
    format: ExportFormat,
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// torchvision's keys for DeepLabV3, segmentation_models_pytorch's for DeepLabV3+
    /// (safetensors).
    Auto,
    /// A DeepLabV3 state_dict with torchvision's keys (safetensors).
    Torchvision,
    /// A DeepLabV3+ state_dict with segmentation_models_pytorch's keys (safetensors).
    Smp,
    /// A folder as SMP's `model.save_pretrained(DIR)` writes it (config.json,
    /// model.safetensors), for `segmentation_models_pytorch.from_pretrained(DIR)`; DeepLabV3+
    /// with a ResNet-50/101 encoder.
    SmpPretrained,
}

/// The Python that rebuilds `config` and loads the export (`state_dict` path or SMP folder).
fn loading_snippet(config: &DeepLabConfig, format: ExportFormat, out: &Path) -> String {
    let path = out.display();
    if format == ExportFormat::SmpPretrained {
        return format!(
            "import segmentation_models_pytorch as smp\nmodel = smp.from_pretrained(\"{path}\")"
        );
    }
    let load =
        format!("model.load_state_dict(safetensors.torch.load_file(\"{path}\"), strict=True)");
    let builder = match (config, config.resnet_depth()) {
        (DeepLabConfig::DeepLabV3(c), Some(depth)) => format!(
            "import torchvision, safetensors.torch\nmodel = torchvision.models.segmentation.\
             deeplabv3_resnet{depth}(weights=None, weights_backbone=None, num_classes={}, \
             aux_loss={})",
            c.num_classes,
            if c.aux_classifier { "True" } else { "False" }
        ),
        (DeepLabConfig::DeepLabV3Plus(c), Some(depth)) => format!(
            "import segmentation_models_pytorch as smp, safetensors.torch\nmodel = \
             smp.DeepLabV3Plus(encoder_name=\"resnet{depth}\", encoder_weights=None, \
             encoder_output_stride={}, decoder_aspp_separable={}, classes={})",
            c.output_stride(),
            if c.aspp_separable { "True" } else { "False" },
            c.num_classes
        ),
        _ => format!(
            "# {} with a custom ResNet ({:?} blocks, width {}): build the same architecture \
             with the reference library's classes, then",
            config.describe(),
            config.backbone().blocks,
            config.backbone().base_width
        ),
    };
    format!("{builder}\n{load}")
}

pub fn run(args: ExportArgs) -> Result<()> {
    let dir = checkpoint::find(&args.checkpoint)?;
    let device = Default::default();
    let (model, meta) = checkpoint::load_model::<Flex>(&dir, &device)?;
    let config = &meta.model;
    let plus = matches!(config, DeepLabConfig::DeepLabV3Plus(_));
    match (args.format, plus) {
        (ExportFormat::Torchvision, true) => bail!(
            "{} is segmentation_models_pytorch's architecture: export it with --format smp (or \
             smp-pretrained)",
            config.describe()
        ),
        (ExportFormat::Smp | ExportFormat::SmpPretrained, false) => bail!(
            "{} is torchvision's architecture: export it with --format torchvision",
            config.describe()
        ),
        _ => {}
    }
    if args.format == ExportFormat::SmpPretrained {
        if args.out.is_file() {
            bail!(
                "--out {} is a file: SMP's format is a folder ({SMP_CONFIG}, {SMP_WEIGHTS})",
                args.out.display()
            );
        }
        write_smp_pretrained(&model, config, &args.out)?;
    } else {
        if args.out.extension().is_none_or(|e| e != "safetensors") {
            bail!(
                "--out {} must name a .safetensors file (or use --format smp-pretrained for a \
                 folder)",
                args.out.display()
            );
        }
        if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        model.save_safetensors(&args.out)?;
    }
    let Normalization { mean, std } = meta.normalization;
    println!(
        "exported {} (epoch {}) from {} to {}",
        config.describe(),
        meta.epoch,
        dir.display(),
        args.out.display()
    );
    println!(
        "inputs: RGB scaled to [0, 1], normalised with mean {mean:?} and std {std:?}; trained at \
         {}×{}{}",
        meta.imgsz,
        meta.imgsz,
        meta.tiling.map_or(String::new(), |t| format!(
            " (predict by {}-px sliding windows)",
            t.tile
        ))
    );
    println!(
        "load it in PyTorch:\n{}",
        loading_snippet(config, args.format, &args.out)
    );
    Ok(())
}
