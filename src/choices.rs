//! The CLI's fixed choices as clap value enums (listed in `--help`, typos rejected with a
//! suggestion), mapped onto the library types.

use std::ffi::OsStr;

use std::sync::LazyLock;

use clap::builder::{PossibleValue, TypedValueParser};
use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::ValueEnum;
use deeplab::{DeepLabConfig, DeepLabV3Config, DeepLabV3PlusConfig};
use drive_data::{AugmentConfig, Layout, NormalizationPreset, Observer, Split, SplitScheme};
use seg_train::device::DEVICE_NAMES;
use seg_train::model::loss::TopologyLoss;
use seg_train::predict::ProbDepth;
use seg_train::train::config::Preset;
use seg_train::train::schedule::ScheduleKind;
use seg_train::DeviceChoice;

/// `--preset`: the names and help of [`Preset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresetArg(pub Preset);

impl ValueEnum for PresetArg {
    fn value_variants<'a>() -> &'a [Self] {
        static VARIANTS: LazyLock<Vec<PresetArg>> =
            LazyLock::new(|| Preset::ALL.map(PresetArg).to_vec());
        &VARIANTS
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.0.name()).help(self.0.description()))
    }
}

impl From<PresetArg> for Preset {
    fn from(p: PresetArg) -> Self {
        p.0
    }
}

/// `--arch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ArchArg {
    /// torchvision's DeepLabV3 (output stride 8, FCN aux head).
    #[value(name = "deeplabv3")]
    DeepLabV3,
    /// segmentation_models_pytorch's DeepLabV3+ (output stride 16 or 8, decoder at 1/4).
    #[value(name = "deeplabv3plus")]
    DeepLabV3Plus,
}

/// `--backbone`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackboneArg {
    /// ResNet-50.
    R50,
    /// ResNet-101.
    R101,
}

/// `--output-stride`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputStrideArg {
    /// Backbone features at 1/8 of the input (DeepLabV3's; DeepLabV3+ optionally).
    #[value(name = "8")]
    Eight,
    /// Backbone features at 1/16 (DeepLabV3+'s default).
    #[value(name = "16")]
    Sixteen,
}

impl OutputStrideArg {
    pub fn value(self) -> usize {
        match self {
            Self::Eight => 8,
            Self::Sixteen => 16,
        }
    }
}

/// The 2-class model of `--arch`, `--backbone` and `--output-stride` (default: the
/// architecture's own stride, 8 for DeepLabV3, 16 for DeepLabV3+).
pub fn model_config(
    arch: ArchArg,
    backbone: BackboneArg,
    output_stride: Option<OutputStrideArg>,
) -> anyhow::Result<DeepLabConfig> {
    Ok(match (arch, output_stride) {
        (ArchArg::DeepLabV3, None | Some(OutputStrideArg::Eight)) => match backbone {
            BackboneArg::R50 => DeepLabV3Config::deeplabv3_resnet50(2),
            BackboneArg::R101 => DeepLabV3Config::deeplabv3_resnet101(2),
        }
        .into(),
        (ArchArg::DeepLabV3, Some(_)) => anyhow::bail!(
            "--output-stride 16 is for --arch deeplabv3plus: torchvision's DeepLabV3 has output \
             stride 8"
        ),
        (ArchArg::DeepLabV3Plus, stride) => {
            let config = match backbone {
                BackboneArg::R50 => DeepLabV3PlusConfig::deeplabv3plus_resnet50(2),
                BackboneArg::R101 => DeepLabV3PlusConfig::deeplabv3plus_resnet101(2),
            };
            let stride = stride.map_or(16, OutputStrideArg::value);
            config.with_output_stride(stride)?.into()
        }
    })
}

/// The `--arch` / `--backbone` of a model configuration (`None` for other backbones).
pub fn arch_of(config: &DeepLabConfig) -> (ArchArg, Option<BackboneArg>) {
    let arch = match config {
        DeepLabConfig::DeepLabV3(_) => ArchArg::DeepLabV3,
        DeepLabConfig::DeepLabV3Plus(_) => ArchArg::DeepLabV3Plus,
    };
    let backbone = match config.resnet_depth() {
        Some(50) => Some(BackboneArg::R50),
        Some(101) => Some(BackboneArg::R101),
        _ => None,
    };
    (arch, backbone)
}

/// `--prob-depth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProbDepthArg {
    /// 8-bit probability maps (256 levels).
    #[value(name = "8")]
    Eight,
    /// 16-bit probability maps (65 536 levels).
    #[value(name = "16")]
    Sixteen,
}

impl From<ProbDepthArg> for ProbDepth {
    fn from(d: ProbDepthArg) -> Self {
        match d {
            ProbDepthArg::Eight => ProbDepth::Eight,
            ProbDepthArg::Sixteen => ProbDepth::Sixteen,
        }
    }
}

/// `--loss`: the topology-aware term beside cross-entropy (and Dice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossArg {
    /// Cross-entropy (+ aux) + Dice, no topology term.
    Dice,
    /// The Dice term becomes (1 − α)·Dice + α·soft-clDice (Shit et al. 2021; α 0.5, 3
    /// soft-skeleton iterations; needs --dice-weight > 0).
    Cldice,
    /// Adds the Skeleton Recall loss (Kirchhoff et al. 2024): recall of the labels' tubed
    /// skeletons, weight 1.
    SkeletonRecall,
}

impl From<LossArg> for TopologyLoss {
    fn from(l: LossArg) -> Self {
        match l {
            LossArg::Dice => TopologyLoss::None,
            LossArg::Cldice => TopologyLoss::ClDice,
            LossArg::SkeletonRecall => TopologyLoss::SkeletonRecall,
        }
    }
}

/// `--augment`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AugmentArg {
    /// Horizontal flip and rotation ±50° (the original recipe).
    Recipe,
    /// The recipe plus vertical flips, photometric jitter and scale-crop.
    Strong,
    /// No augmentation.
    None,
}

impl From<AugmentArg> for AugmentConfig {
    fn from(a: AugmentArg) -> Self {
        match a {
            AugmentArg::Recipe => AugmentConfig::recipe(),
            AugmentArg::Strong => AugmentConfig::strong(),
            AugmentArg::None => AugmentConfig::none(),
        }
    }
}

/// `--normalization`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NormalizationArg {
    /// The original tutorial's DRIVE statistics.
    Drive,
    /// ImageNet statistics (what torchvision's pretrained weights expect).
    Imagenet,
    /// Computed from the training images (training only).
    Computed,
}

impl From<NormalizationArg> for NormalizationPreset {
    fn from(n: NormalizationArg) -> Self {
        match n {
            NormalizationArg::Drive => NormalizationPreset::Drive,
            NormalizationArg::Imagenet => NormalizationPreset::Imagenet,
            NormalizationArg::Computed => NormalizationPreset::Computed,
        }
    }
}

/// `--scheduler`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchedulerArg {
    /// A constant learning rate.
    Constant,
    /// ×0.1 at epochs 25 and 50 (the original tutorial's).
    Multistep,
    /// DeepLab's poly decay, power 0.9.
    Poly,
}

impl From<SchedulerArg> for ScheduleKind {
    fn from(s: SchedulerArg) -> Self {
        match s {
            SchedulerArg::Constant => ScheduleKind::Constant,
            SchedulerArg::Multistep => ScheduleKind::tutorial_multistep(),
            SchedulerArg::Poly => ScheduleKind::poly(),
        }
    }
}

/// `--layout` of a written dataset, `--dataset` of a read one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutArg {
    /// DRIVE as Kaggle's "DRIVE train/validation split": train_images/, train_masks/, … (PNG).
    Kaggle,
    /// DRIVE's original archive: training/, test/ (TIFF images, GIF masks).
    Drive,
    /// STARE: stare-images/im0001.ppm.gz, labels-ah/, labels-vk/.
    Stare,
    /// CHASE_DB1: Image_01L.jpg, Image_01L_1stHO.png, Image_01L_2ndHO.png in one folder.
    Chase,
    /// HRF: images/01_h.jpg, manual1/01_h.tif, mask/01_h_mask.tif.
    Hrf,
    /// FIVES: train/Original/1_A.png, train/Ground truth/1_A.png, test/….
    Fives,
}

impl From<LayoutArg> for Layout {
    fn from(l: LayoutArg) -> Self {
        match l {
            LayoutArg::Kaggle => Layout::Kaggle,
            LayoutArg::Drive => Layout::Drive,
            LayoutArg::Stare => Layout::Stare,
            LayoutArg::Chase => Layout::Chase,
            LayoutArg::Hrf => Layout::Hrf,
            LayoutArg::Fives => Layout::Fives,
        }
    }
}

/// `--split-scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// The download's own split folders (DRIVE, Kaggle split, FIVES 600/200).
    Folders,
    /// STARE: first 10 images train, last 10 test.
    #[value(name = "10-10")]
    StareHalves,
    /// CHASE_DB1: first 20 images train, last 8 test.
    #[value(name = "20-8")]
    ChaseTwentyEight,
    /// CHASE_DB1: first 8 images train, last 20 test.
    #[value(name = "8-20")]
    ChaseEightTwenty,
    /// HRF: images 01–05 of each group train, 06–15 test.
    #[value(name = "5-per-class")]
    HrfFivePerClass,
}

impl From<SchemeArg> for SplitScheme {
    fn from(s: SchemeArg) -> Self {
        match s {
            SchemeArg::Folders => SplitScheme::Folders,
            SchemeArg::StareHalves => SplitScheme::StareHalves,
            SchemeArg::ChaseTwentyEight => SplitScheme::ChaseTwentyEight,
            SchemeArg::ChaseEightTwenty => SplitScheme::ChaseEightTwenty,
            SchemeArg::HrfFivePerClass => SplitScheme::HrfFivePerClass,
        }
    }
}

/// `--observer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObserverArg {
    /// The standard ground truth (STARE labels-ah, CHASE_DB1 _1stHO, DRIVE 1st_manual).
    First,
    /// The second annotator (STARE labels-vk, CHASE_DB1 _2ndHO, DRIVE test 2nd_manual).
    Second,
}

impl From<ObserverArg> for Observer {
    fn from(o: ObserverArg) -> Self {
        match o {
            ObserverArg::First => Observer::First,
            ObserverArg::Second => Observer::Second,
        }
    }
}

/// `--split`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SplitArg {
    Train,
    Valid,
    Test,
}

impl From<SplitArg> for Split {
    fn from(s: SplitArg) -> Self {
        match s {
            SplitArg::Train => Split::Train,
            SplitArg::Valid => Split::Valid,
            SplitArg::Test => Split::Test,
        }
    }
}

/// Parses `--device` into a [`DeviceChoice`] (names [`seg_train::device::DEVICE_NAMES`]); `--help` lists the
/// values and an unknown value is rejected with the closest valid one suggested.
#[derive(Debug, Clone, Copy)]
pub struct DeviceParser;

impl TypedValueParser for DeviceParser {
    type Value = DeviceChoice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> Result<DeviceChoice, clap::Error> {
        let text = value.to_string_lossy();
        text.parse::<DeviceChoice>().map_err(|_| {
            let mut err = clap::Error::new(ErrorKind::InvalidValue).with_cmd(cmd);
            let name = arg.map_or("--device".to_string(), |a| a.to_string());
            err.insert(ContextKind::InvalidArg, ContextValue::String(name));
            err.insert(
                ContextKind::InvalidValue,
                ContextValue::String(text.to_string()),
            );
            let valid = DEVICE_NAMES.iter().flat_map(|d| {
                let indexed = d.indexed.then(|| format!("{}:N", d.name));
                std::iter::once(d.name.to_string()).chain(indexed)
            });
            err.insert(
                ContextKind::ValidValue,
                ContextValue::Strings(valid.collect()),
            );
            if let Some(suggestion) = DeviceChoice::suggest(&text) {
                err.insert(
                    ContextKind::SuggestedValue,
                    ContextValue::String(suggestion),
                );
            }
            err
        })
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        let values = DEVICE_NAMES.map(|d| PossibleValue::new(d.name).help(d.help));
        Some(Box::new(values.into_iter()))
    }
}
