//! The module-path tables, torchvision / segmentation_models_pytorch ↔ Burn, read in both
//! directions by [`super::keys`]: `RESNET_RULES` (the backbone, under `backbone.` in
//! torchvision's DeepLabV3 and `encoder.` in SMP's DeepLabV3+), `DEEPLAB_RULES` (torchvision's
//! heads) and the SMP decoder tables. Rule segments in braces are placeholders:
//!
//! | placeholder | matches |
//! |---|---|
//! | `{layer}` | `layer1` … `layer4` |
//! | `{block}` | a block index |
//! | `{part}` | a Bottleneck's `conv1`…`conv3`, `bn1`…`bn3` |
//! | `{branch}` | an ASPP branch index below the pooling branch's |
//! | `{atrous}` | an atrous ASPP branch index (from 1, below the pooling branch's) |
//! | `{pool}` | the ASPP pooling branch's index (number of atrous rates + 1) |

/// A ResNet module path, torchvision ↔ Burn (relative to the ResNet).
pub(super) const RESNET_RULES: &[(&str, &str)] = &[
    (
        "{layer}.{block}.downsample.0",
        "{layer}.{block}.downsample.conv",
    ),
    (
        "{layer}.{block}.downsample.1",
        "{layer}.{block}.downsample.bn",
    ),
    ("{layer}.{block}.{part}", "{layer}.{block}.{part}"),
    ("conv1", "conv1"),
    ("bn1", "bn1"),
    ("fc", "fc"),
];

/// DeepLabV3's head module paths, torchvision ↔ Burn (the backbone uses [`RESNET_RULES`] under
/// `backbone.`).
pub(super) const DEEPLAB_RULES: &[(&str, &str)] = &[
    (
        "classifier.0.convs.{branch}.0",
        "classifier.aspp.convs.{branch}.conv",
    ),
    (
        "classifier.0.convs.{branch}.1",
        "classifier.aspp.convs.{branch}.bn",
    ),
    (
        "classifier.0.convs.{pool}.1",
        "classifier.aspp.pooling.conv",
    ),
    ("classifier.0.convs.{pool}.2", "classifier.aspp.pooling.bn"),
    ("classifier.0.project.0", "classifier.aspp.project.conv"),
    ("classifier.0.project.1", "classifier.aspp.project.bn"),
    ("classifier.1", "classifier.conv"),
    ("classifier.2", "classifier.bn"),
    ("classifier.4", "classifier.final_conv"),
    ("aux_classifier.0", "aux_classifier.conv"),
    ("aux_classifier.1", "aux_classifier.bn"),
    ("aux_classifier.4", "aux_classifier.final_conv"),
];

/// SMP's DeepLabV3+ decoder and head, the parts that do not depend on the ASPP branches' kind.
pub(super) const SMP_RULES: &[(&str, &str)] = &[
    ("decoder.aspp.0.convs.{pool}.1", "decoder.aspp.pooling.conv"),
    ("decoder.aspp.0.convs.{pool}.2", "decoder.aspp.pooling.bn"),
    ("decoder.aspp.0.project.0", "decoder.aspp.project.conv"),
    ("decoder.aspp.0.project.1", "decoder.aspp.project.bn"),
    ("decoder.aspp.1.0", "decoder.aspp_conv.depthwise"),
    ("decoder.aspp.1.1", "decoder.aspp_conv.conv"),
    ("decoder.aspp.2", "decoder.aspp_conv.bn"),
    ("decoder.block1.0", "decoder.block1.conv"),
    ("decoder.block1.1", "decoder.block1.bn"),
    ("decoder.block2.0.0", "decoder.block2.depthwise"),
    ("decoder.block2.0.1", "decoder.block2.conv"),
    ("decoder.block2.1", "decoder.block2.bn"),
    ("segmentation_head.0", "segmentation_head"),
];

/// SMP's ASPP branches with `decoder_aspp_separable=True`: the 1×1 branch is plain, the atrous
/// ones are `Sequential(SeparableConv2d(depthwise, pointwise), BN, ReLU)`.
pub(super) const SMP_SEPARABLE_ASPP_RULES: &[(&str, &str)] = &[
    ("decoder.aspp.0.convs.0.0", "decoder.aspp.convs.0.conv"),
    ("decoder.aspp.0.convs.0.1", "decoder.aspp.convs.0.bn"),
    (
        "decoder.aspp.0.convs.{atrous}.0.0",
        "decoder.aspp.convs.{atrous}.depthwise",
    ),
    (
        "decoder.aspp.0.convs.{atrous}.0.1",
        "decoder.aspp.convs.{atrous}.conv",
    ),
    (
        "decoder.aspp.0.convs.{atrous}.1",
        "decoder.aspp.convs.{atrous}.bn",
    ),
];

/// SMP's ASPP branches with `decoder_aspp_separable=False`: `Sequential(conv, BN, ReLU)`.
pub(super) const SMP_PLAIN_ASPP_RULES: &[(&str, &str)] = &[
    (
        "decoder.aspp.0.convs.{branch}.0",
        "decoder.aspp.convs.{branch}.conv",
    ),
    (
        "decoder.aspp.0.convs.{branch}.1",
        "decoder.aspp.convs.{branch}.bn",
    ),
];
