//! torchvision key ↔ Burn path, from one table read in both directions.
//!
//! Paths are split into a module part and a leaf (`weight`, `bias`, `running_mean`, …). The module
//! part maps by [`RESNET_RULES`] / [`DEEPLAB_RULES`]; BatchNorm leaves translate `weight`/`bias`
//! (torch) ↔ `gamma`/`beta` (Burn). Rule segments in braces are placeholders:
//!
//! | placeholder | matches |
//! |---|---|
//! | `{layer}` | `layer1` … `layer4` |
//! | `{block}` | a block index |
//! | `{part}` | a Bottleneck's `conv1`…`conv3`, `bn1`…`bn3` |
//! | `{branch}` | an ASPP branch index below the pooling branch's |
//! | `{pool}` | the ASPP pooling branch's index (number of atrous rates + 1) |

use burn::prelude::*;

use crate::DeepLabV3;

/// A ResNet module path, torchvision ↔ Burn (relative to the ResNet).
const RESNET_RULES: &[(&str, &str)] = &[
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
const DEEPLAB_RULES: &[(&str, &str)] = &[
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

/// Which way a path is translated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    ToBurn,
    ToTorch,
}

/// Matches `path` (module segments) against `pattern`, returning the placeholder bindings.
fn bind<'a>(pattern: &'a str, path: &[&'a str], pool: usize) -> Option<Vec<(&'a str, &'a str)>> {
    let pattern: Vec<&str> = pattern.split('.').collect();
    if pattern.len() != path.len() {
        return None;
    }
    let mut bound = Vec::new();
    for (p, s) in pattern.iter().zip(path) {
        let Some(name) = p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
            if p != s {
                return None;
            }
            continue;
        };
        let index = s.parse::<usize>().ok().filter(|_| !s.starts_with('+'));
        let ok = match name {
            "layer" => matches!(*s, "layer1" | "layer2" | "layer3" | "layer4"),
            "block" => index.is_some(),
            "part" => matches!(*s, "conv1" | "bn1" | "conv2" | "bn2" | "conv3" | "bn3"),
            "branch" => index.is_some_and(|i| i < pool),
            "pool" => index == Some(pool),
            other => unreachable!("unknown placeholder {{{other}}}"),
        };
        if !ok {
            return None;
        }
        bound.push((name, *s));
    }
    Some(bound)
}

/// Writes `pattern` with its placeholders replaced.
fn fill(pattern: &str, bound: &[(&str, &str)], pool: usize) -> Vec<String> {
    pattern
        .split('.')
        .map(
            |p| match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some("pool") => pool.to_string(),
                Some(name) => bound
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
                None => p.to_string(),
            },
        )
        .collect()
}

/// Translates module segments by the first matching rule.
fn translate(
    rules: &[(&str, &str)],
    module: &[&str],
    direction: Direction,
    pool: usize,
) -> Option<Vec<String>> {
    rules.iter().find_map(|(torch, burn)| {
        let (from, to) = match direction {
            Direction::ToBurn => (torch, burn),
            Direction::ToTorch => (burn, torch),
        };
        bind(from, module, pool).map(|bound| fill(to, &bound, pool))
    })
}

/// Translates a whole path (module + leaf): `layout = Some(pooling index)` for the DeepLabV3
/// layout (backbone under `backbone.`), `None` for a bare ResNet.
fn translate_path(path: &str, direction: Direction, layout: Option<usize>) -> Option<String> {
    let segs: Vec<&str> = path.split('.').collect();
    let (leaf, module) = segs.split_last()?;
    let mut out = match (layout, module) {
        (Some(pool), ["backbone", rest @ ..]) => {
            let mut out = vec!["backbone".to_string()];
            out.extend(translate(RESNET_RULES, rest, direction, pool)?);
            out
        }
        (Some(pool), _) => translate(DEEPLAB_RULES, module, direction, pool)?,
        (None, _) => translate(RESNET_RULES, module, direction, 0)?,
    };
    // The Burn side names its BatchNorms `bn*`.
    let is_bn = match direction {
        Direction::ToBurn => out.last().is_some_and(|m| m.starts_with("bn")),
        Direction::ToTorch => module.last().is_some_and(|m| m.starts_with("bn")),
    };
    let leaf = match (is_bn, direction, *leaf) {
        (true, Direction::ToBurn, "weight") => "gamma",
        (true, Direction::ToBurn, "bias") => "beta",
        (true, Direction::ToTorch, "gamma") => "weight",
        (true, Direction::ToTorch, "beta") => "bias",
        (_, _, other) => other,
    };
    out.push(leaf.to_string());
    Some(out.join("."))
}

/// Maps between torchvision keys and Burn paths for one DeepLabV3 layout.
#[derive(Debug, Clone, Copy)]
pub struct KeyMap {
    /// torchvision's index of the ASPP pooling branch in `classifier.0.convs` (= number of atrous
    /// rates + 1).
    pooling_index: usize,
}

impl KeyMap {
    /// The key map for `model`'s layout.
    pub fn for_model<B: Backend>(model: &DeepLabV3<B>) -> Self {
        Self {
            pooling_index: model.classifier.aspp.convs.len(),
        }
    }

    /// torchvision DeepLabV3 key → Burn path (`None` for keys outside the DeepLabV3 layout).
    pub fn to_burn(&self, key: &str) -> Option<String> {
        translate_path(key, Direction::ToBurn, Some(self.pooling_index))
    }

    /// Burn path → torchvision DeepLabV3 key; the inverse of [`KeyMap::to_burn`].
    pub fn to_torch(&self, path: &str) -> Option<String> {
        translate_path(path, Direction::ToTorch, Some(self.pooling_index))
    }
}

/// torchvision ResNet key (`conv1.weight`, `layer1.0.downsample.1.bias`, `fc.weight`, …) → Burn
/// path in [`ResNet`](crate::ResNet).
pub fn resnet_key_to_burn(key: &str) -> Option<String> {
    translate_path(key, Direction::ToBurn, None)
}

/// Burn path in [`ResNet`](crate::ResNet) → torchvision ResNet key; inverse of [`resnet_key_to_burn`].
pub fn resnet_path_to_torch(path: &str) -> Option<String> {
    translate_path(path, Direction::ToTorch, None)
}

/// True for BatchNorm buffers (running statistics and the batch counter), which are state, not
/// learnable parameters.
pub fn is_buffer(path: &str) -> bool {
    path.ends_with(".running_mean") || path.ends_with(".running_var") || is_batch_counter(path)
}

/// True for a BatchNorm's `num_batches_tracked` (a 0-d int64 in PyTorch, `[1]` float in Burn).
pub fn is_batch_counter(path: &str) -> bool {
    path.ends_with(".num_batches_tracked")
}

/// Burn stores `Linear` weights as `[in, out]`, PyTorch as `[out, in]`.
pub(crate) fn is_linear_weight(path: &str) -> bool {
    path == "fc.weight" || path.ends_with(".fc.weight")
}

/// The PyTorch shape of a Burn tensor.
pub(crate) fn torch_shape(path: &str, shape: &[usize]) -> Vec<usize> {
    if is_batch_counter(path) {
        return vec![];
    }
    let mut shape = shape.to_vec();
    if is_linear_weight(path) {
        shape.reverse();
    }
    shape
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_translate_both_ways() {
        let map = KeyMap { pooling_index: 4 };
        for (torch, burn) in [
            (
                "backbone.layer2.0.downsample.1.weight",
                "backbone.layer2.0.downsample.bn.gamma",
            ),
            (
                "backbone.layer4.2.bn3.running_var",
                "backbone.layer4.2.bn3.running_var",
            ),
            (
                "backbone.bn1.num_batches_tracked",
                "backbone.bn1.num_batches_tracked",
            ),
            (
                "classifier.0.convs.3.1.bias",
                "classifier.aspp.convs.3.bn.beta",
            ),
            (
                "classifier.0.convs.4.1.weight",
                "classifier.aspp.pooling.conv.weight",
            ),
            (
                "classifier.0.convs.4.2.weight",
                "classifier.aspp.pooling.bn.gamma",
            ),
            ("classifier.4.bias", "classifier.final_conv.bias"),
            (
                "aux_classifier.1.running_mean",
                "aux_classifier.bn.running_mean",
            ),
        ] {
            assert_eq!(map.to_burn(torch).as_deref(), Some(burn), "{torch}");
            assert_eq!(map.to_torch(burn).as_deref(), Some(torch), "{burn}");
        }
        for unknown in [
            "classifier.0.convs.5.0.weight",
            "classifier.3.weight",
            "backbone.layer5.0.conv1.weight",
            "backbone.fc2.weight",
        ] {
            assert_eq!(map.to_burn(unknown), None, "{unknown}");
        }
        assert_eq!(map.to_torch("classifier.aspp.convs.4.conv.weight"), None);
        assert_eq!(
            resnet_key_to_burn("layer1.0.downsample.0.weight").as_deref(),
            Some("layer1.0.downsample.conv.weight")
        );
        assert_eq!(resnet_path_to_torch("fc.bias").as_deref(), Some("fc.bias"));
    }
}
