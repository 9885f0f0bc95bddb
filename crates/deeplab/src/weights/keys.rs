//! torchvision / segmentation_models_pytorch key ↔ Burn path, from tables read in both directions.
//!
//! Paths are split into a module part and a leaf (`weight`, `bias`, `running_mean`, …). The module
//! part maps by the tables in `key_rules.rs`; BatchNorm leaves translate `weight`/`bias`
//! (torch) ↔ `gamma`/`beta` (Burn).

use burn::prelude::*;

use super::key_rules::{
    DEEPLAB_RULES, RESNET_RULES, SMP_PLAIN_ASPP_RULES, SMP_RULES, SMP_SEPARABLE_ASPP_RULES,
};

use crate::{DeepLabV3, DeepLabV3Plus};

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
            "atrous" => index.is_some_and(|i| (1..pool).contains(&i)),
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
    rules: &[&[(&str, &str)]],
    module: &[&str],
    direction: Direction,
    pool: usize,
) -> Option<Vec<String>> {
    rules
        .iter()
        .flat_map(|r| r.iter())
        .find_map(|(torch, burn)| {
            let (from, to) = match direction {
                Direction::ToBurn => (torch, burn),
                Direction::ToTorch => (burn, torch),
            };
            bind(from, module, pool).map(|bound| fill(to, &bound, pool))
        })
}

/// The key layout of a checkpoint: a torchvision DeepLabV3, an SMP DeepLabV3+, or a bare ResNet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// The ASPP pooling branch's index.
    DeepLabV3 {
        pool: usize,
    },
    /// The ASPP pooling branch's index and whether the atrous branches are separable.
    DeepLabV3Plus {
        pool: usize,
        separable: bool,
    },
    ResNet,
}

/// Translates a whole path (module + leaf) in `layout`.
fn translate_path(path: &str, direction: Direction, layout: Layout) -> Option<String> {
    let segs: Vec<&str> = path.split('.').collect();
    let (leaf, module) = segs.split_last()?;
    let backbone = |name: &str, rest: &[&str], pool| {
        let mut out = vec![name.to_string()];
        out.extend(translate(&[RESNET_RULES], rest, direction, pool)?);
        Some(out)
    };
    let mut out = match (layout, module) {
        (Layout::DeepLabV3 { pool }, ["backbone", rest @ ..]) => backbone("backbone", rest, pool)?,
        (Layout::DeepLabV3 { pool }, _) => translate(&[DEEPLAB_RULES], module, direction, pool)?,
        (Layout::DeepLabV3Plus { pool, .. }, ["encoder", rest @ ..]) => {
            backbone("encoder", rest, pool)?
        }
        (Layout::DeepLabV3Plus { pool, separable }, _) => {
            let aspp = match separable {
                true => SMP_SEPARABLE_ASPP_RULES,
                false => SMP_PLAIN_ASPP_RULES,
            };
            translate(&[aspp, SMP_RULES], module, direction, pool)?
        }
        (Layout::ResNet, _) => translate(&[RESNET_RULES], module, direction, 0)?,
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

/// Maps between a reference library's keys (torchvision's DeepLabV3, SMP's DeepLabV3+) and Burn
/// paths for one model layout.
#[derive(Debug, Clone, Copy)]
pub struct KeyMap {
    layout: Layout,
}

impl KeyMap {
    /// The key map for a torchvision DeepLabV3 `model`.
    pub fn for_model<B: Backend>(model: &DeepLabV3<B>) -> Self {
        Self {
            layout: Layout::DeepLabV3 {
                pool: model.classifier.aspp.convs.len(),
            },
        }
    }

    /// The key map for an SMP DeepLabV3+ `model`.
    pub fn for_plus<B: Backend>(model: &DeepLabV3Plus<B>) -> Self {
        let aspp = &model.decoder.aspp;
        Self {
            layout: Layout::DeepLabV3Plus {
                pool: aspp.convs.len(),
                separable: aspp.convs.iter().any(|c| c.depthwise.is_some()),
            },
        }
    }

    /// Where the backbone lives in this layout (`backbone` or `encoder`).
    pub fn backbone_prefix(&self) -> &'static str {
        match self.layout {
            Layout::DeepLabV3Plus { .. } => "encoder",
            _ => "backbone",
        }
    }

    /// Reference key → Burn path (`None` for keys outside the layout).
    pub fn to_burn(&self, key: &str) -> Option<String> {
        translate_path(key, Direction::ToBurn, self.layout)
    }

    /// Burn path → reference key; the inverse of [`KeyMap::to_burn`].
    pub fn to_torch(&self, path: &str) -> Option<String> {
        translate_path(path, Direction::ToTorch, self.layout)
    }
}

/// torchvision ResNet key (`conv1.weight`, `layer1.0.downsample.1.bias`, `fc.weight`, …) → Burn
/// path in [`ResNet`](crate::ResNet).
pub fn resnet_key_to_burn(key: &str) -> Option<String> {
    translate_path(key, Direction::ToBurn, Layout::ResNet)
}

/// Burn path in [`ResNet`](crate::ResNet) → torchvision ResNet key; inverse of [`resnet_key_to_burn`].
pub fn resnet_path_to_torch(path: &str) -> Option<String> {
    translate_path(path, Direction::ToTorch, Layout::ResNet)
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
        let map = KeyMap {
            layout: Layout::DeepLabV3 { pool: 4 },
        };
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

    #[test]
    fn smp_rules_translate_both_ways() {
        let separable = KeyMap {
            layout: Layout::DeepLabV3Plus {
                pool: 4,
                separable: true,
            },
        };
        let plain = KeyMap {
            layout: Layout::DeepLabV3Plus {
                pool: 4,
                separable: false,
            },
        };
        let both = [
            (
                "encoder.layer4.0.downsample.1.running_var",
                "encoder.layer4.0.downsample.bn.running_var",
            ),
            ("encoder.conv1.weight", "encoder.conv1.weight"),
            (
                "decoder.aspp.0.convs.0.0.weight",
                "decoder.aspp.convs.0.conv.weight",
            ),
            (
                "decoder.aspp.0.convs.0.1.bias",
                "decoder.aspp.convs.0.bn.beta",
            ),
            (
                "decoder.aspp.0.convs.4.1.weight",
                "decoder.aspp.pooling.conv.weight",
            ),
            (
                "decoder.aspp.0.convs.4.2.num_batches_tracked",
                "decoder.aspp.pooling.bn.num_batches_tracked",
            ),
            (
                "decoder.aspp.0.project.1.weight",
                "decoder.aspp.project.bn.gamma",
            ),
            (
                "decoder.aspp.1.0.weight",
                "decoder.aspp_conv.depthwise.weight",
            ),
            ("decoder.aspp.1.1.weight", "decoder.aspp_conv.conv.weight"),
            (
                "decoder.aspp.2.running_mean",
                "decoder.aspp_conv.bn.running_mean",
            ),
            ("decoder.block1.0.weight", "decoder.block1.conv.weight"),
            (
                "decoder.block2.0.0.weight",
                "decoder.block2.depthwise.weight",
            ),
            ("decoder.block2.0.1.weight", "decoder.block2.conv.weight"),
            ("decoder.block2.1.bias", "decoder.block2.bn.beta"),
            ("segmentation_head.0.bias", "segmentation_head.bias"),
        ];
        for map in [separable, plain] {
            for (torch, burn) in both {
                assert_eq!(map.to_burn(torch).as_deref(), Some(burn), "{torch}");
                assert_eq!(map.to_torch(burn).as_deref(), Some(torch), "{burn}");
            }
            assert_eq!(map.backbone_prefix(), "encoder");
            assert_eq!(map.to_burn("backbone.conv1.weight"), None);
            assert_eq!(map.to_burn("decoder.aspp.0.convs.5.0.weight"), None);
        }
        for (torch, burn) in [
            (
                "decoder.aspp.0.convs.2.0.0.weight",
                "decoder.aspp.convs.2.depthwise.weight",
            ),
            (
                "decoder.aspp.0.convs.2.0.1.weight",
                "decoder.aspp.convs.2.conv.weight",
            ),
            (
                "decoder.aspp.0.convs.3.1.weight",
                "decoder.aspp.convs.3.bn.gamma",
            ),
        ] {
            assert_eq!(separable.to_burn(torch).as_deref(), Some(burn), "{torch}");
            assert_eq!(separable.to_torch(burn).as_deref(), Some(torch), "{burn}");
        }
        assert_eq!(separable.to_burn("decoder.aspp.0.convs.2.0.weight"), None);
        for (torch, burn) in [
            (
                "decoder.aspp.0.convs.2.0.weight",
                "decoder.aspp.convs.2.conv.weight",
            ),
            (
                "decoder.aspp.0.convs.3.1.weight",
                "decoder.aspp.convs.3.bn.gamma",
            ),
        ] {
            assert_eq!(plain.to_burn(torch).as_deref(), Some(burn), "{torch}");
            assert_eq!(plain.to_torch(burn).as_deref(), Some(torch), "{burn}");
        }
        assert_eq!(plain.to_burn("decoder.aspp.0.convs.2.0.0.weight"), None);
    }
}
