//! Loading a state_dict into a model: every key is routed (loaded, skipped with a reason, or an
//! error), the whole checkpoint is validated against the model, and only then applied, so an error
//! never leaves a half-loaded model.

use std::collections::BTreeSet;
use std::path::Path;

use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::DType;
use burn_store::{ModuleSnapshot, TensorSnapshot};

use super::keys::{
    is_batch_counter, is_buffer, is_linear_weight, resnet_key_to_burn, resnet_path_to_torch,
    torch_shape, KeyMap,
};
use super::read::{detect_kind, read_checkpoint};
use super::{model_tensors, CheckpointKind, LoadReport, WeightsError};

/// What happens to one checkpoint key.
enum Route {
    Load(String),
    Skip(String),
    Unexpected,
}

/// The model a checkpoint is loaded into.
pub(super) enum Target {
    DeepLab { map: KeyMap, has_aux: bool },
    DeepLabPlus { map: KeyMap },
    ResNet { has_fc: bool },
}

impl Target {
    fn route(&self, kind: CheckpointKind, key: &str) -> Route {
        let load = |path: Option<String>| path.map_or(Route::Unexpected, Route::Load);
        match (self, kind) {
            (Self::DeepLabPlus { map }, CheckpointKind::DeepLabV3Plus) => load(map.to_burn(key)),
            (Self::DeepLabPlus { .. }, CheckpointKind::ResNetBackbone)
                if key.starts_with("fc.") =>
            {
                Route::Skip("ImageNet classifier layer, not part of DeepLabV3+".into())
            }
            (Self::DeepLabPlus { map }, CheckpointKind::ResNetBackbone) => {
                load(map.to_burn(&format!("encoder.{key}")))
            }
            (Self::DeepLabPlus { map }, CheckpointKind::DeepLabV3) => {
                match key.strip_prefix("backbone.") {
                    Some(rest) => load(map.to_burn(&format!("encoder.{rest}"))),
                    None => Route::Skip("DeepLabV3 head, not part of DeepLabV3+".into()),
                }
            }
            (Self::DeepLab { map, .. }, CheckpointKind::DeepLabV3Plus) => {
                match key.strip_prefix("encoder.") {
                    Some(rest) => load(map.to_burn(&format!("backbone.{rest}"))),
                    None => Route::Skip("DeepLabV3+ decoder, not part of DeepLabV3".into()),
                }
            }
            (Self::ResNet { .. }, CheckpointKind::DeepLabV3Plus) => {
                match key.strip_prefix("encoder.") {
                    Some(rest) => load(resnet_key_to_burn(rest)),
                    None => Route::Skip("DeepLabV3+ decoder, not part of a ResNet".into()),
                }
            }
            (Self::DeepLab { has_aux: false, .. }, CheckpointKind::DeepLabV3)
                if key.starts_with("aux_classifier.") =>
            {
                Route::Skip("the model has no aux classifier".into())
            }
            (Self::DeepLab { map, .. }, CheckpointKind::DeepLabV3) => load(map.to_burn(key)),
            (Self::DeepLab { .. }, CheckpointKind::ResNetBackbone) if key.starts_with("fc.") => {
                Route::Skip("ImageNet classifier layer, not part of DeepLabV3".into())
            }
            (Self::DeepLab { map, .. }, CheckpointKind::ResNetBackbone) => {
                load(map.to_burn(&format!("backbone.{key}")))
            }
            (Self::ResNet { .. }, CheckpointKind::DeepLabV3) => match key.strip_prefix("backbone.")
            {
                Some(rest) => load(resnet_key_to_burn(rest)),
                None => Route::Skip("DeepLabV3 head, not part of a ResNet".into()),
            },
            (Self::ResNet { has_fc: false }, CheckpointKind::ResNetBackbone)
                if key.starts_with("fc.") =>
            {
                Route::Skip("the model has no fc layer".into())
            }
            (Self::ResNet { .. }, CheckpointKind::ResNetBackbone) => load(resnet_key_to_burn(key)),
        }
    }

    /// Whether the checkpoint must provide this model tensor. BatchNorm batch counters are
    /// optional (older checkpoints lack them, as PyTorch allows); they then stay at 0.
    fn required(&self, kind: CheckpointKind, path: &str) -> bool {
        if is_batch_counter(path) {
            return false;
        }
        match (self, kind) {
            (Self::DeepLab { .. }, CheckpointKind::DeepLabV3) => true,
            (Self::DeepLabPlus { .. }, CheckpointKind::DeepLabV3Plus) => true,
            (Self::DeepLab { .. } | Self::DeepLabPlus { .. }, _) => {
                path.starts_with("backbone.") || path.starts_with("encoder.")
            }
            (Self::ResNet { .. }, CheckpointKind::ResNetBackbone) => true,
            (Self::ResNet { .. }, _) => !path.starts_with("fc."),
        }
    }

    fn to_torch(&self, path: &str) -> Option<String> {
        match self {
            Self::DeepLab { map, .. } | Self::DeepLabPlus { map } => map.to_torch(path),
            Self::ResNet { .. } => resnet_path_to_torch(path),
        }
    }
}

/// A class-count layer: the final 1×1 convs of the heads, or a classifier's `fc`.
fn is_class_layer(path: &str) -> bool {
    path.contains("final_conv.")
        || path.starts_with("segmentation_head.")
        || path == "fc.weight"
        || path == "fc.bias"
}

/// Validates the checkpoint against `model`, reads every tensor, and only then applies them.
pub(super) fn load_state_dict<B: Backend, M: ModuleSnapshot<B>>(
    model: M,
    path: &Path,
    target: Target,
) -> Result<(M, LoadReport), WeightsError> {
    let err_path = || path.to_path_buf();
    let tensors = read_checkpoint(path)?;
    let kind = detect_kind(path, &tensors)?;
    let expected = model_tensors(&model);

    let mut skipped = Vec::new();
    let mut fresh_heads = BTreeSet::new();
    let mut plan: Vec<(String, String)> = Vec::new(); // (checkpoint key, burn path)
    for (key, snapshot) in &tensors {
        let burn_path = match target.route(kind, key) {
            Route::Load(p) if expected.contains_key(&p) => p,
            Route::Load(_) | Route::Unexpected => {
                return Err(WeightsError::UnexpectedKey {
                    path: err_path(),
                    key: key.clone(),
                    hint: unexpected_hint(key),
                })
            }
            Route::Skip(reason) => {
                skipped.push((key.clone(), reason));
                continue;
            }
        };
        let model_shape = torch_shape(&burn_path, &expected[&burn_path].0);
        let found = snapshot.shape.to_vec();
        if found != model_shape {
            let differs_in_classes_only = found.len() == model_shape.len()
                && found.iter().zip(&model_shape).skip(1).all(|(a, b)| a == b);
            if is_class_layer(&burn_path) && differs_in_classes_only {
                skipped.push((
                    key.clone(),
                    format!(
                        "{} classes in the checkpoint, {} in the model: fresh init kept",
                        found[0], model_shape[0]
                    ),
                ));
                fresh_heads.insert(burn_path);
                continue;
            }
            return Err(WeightsError::ShapeMismatch {
                path: err_path(),
                key: key.clone(),
                expected: model_shape,
                found,
            });
        }
        plan.push((key.clone(), burn_path));
    }

    let covered: BTreeSet<&str> = plan.iter().map(|(_, p)| p.as_str()).collect();
    let uncovered: Vec<&String> = expected
        .keys()
        .filter(|p| !covered.contains(p.as_str()) && !fresh_heads.contains(*p))
        .collect();
    let missing: Vec<&&String> = uncovered
        .iter()
        .filter(|p| target.required(kind, p))
        .collect();
    if let Some(first) = missing.first() {
        return Err(WeightsError::MissingKey {
            path: err_path(),
            key: target.to_torch(first).unwrap_or_else(|| first.to_string()),
            count: missing.len(),
        });
    }

    // Read every tensor before applying any, so a corrupt file cannot half-load the model.
    let mut snapshots = Vec::with_capacity(plan.len());
    for (key, burn_path) in &plan {
        let bad = |reason: String| WeightsError::BadTensor {
            path: err_path(),
            key: key.clone(),
            reason,
        };
        let data = tensors[key].to_data().map_err(|e| bad(format!("{e:?}")))?;
        let (shape, dtype) = &expected[burn_path];
        let data = if is_batch_counter(burn_path) {
            // A 0-d int64 in PyTorch, a `[1]` float here.
            let count = data
                .convert::<f64>()
                .to_vec::<f64>()
                .map_err(|e| bad(format!("{e:?}")))?;
            TensorData::new(count, [1])
        } else {
            data
        };
        let data = data.convert_dtype(*dtype);
        let data = if is_linear_weight(burn_path) {
            transpose_2d(data, *dtype).map_err(bad)?
        } else {
            data
        };
        debug_assert_eq!(data.shape.to_vec(), *shape);
        let stack = burn_path.split('.').map(String::from).collect();
        snapshots.push(TensorSnapshot::from_data(
            data,
            stack,
            vec![],
            ParamId::new(),
        ));
    }
    let mut model = model;
    let result = model.apply(snapshots, None, None, true);
    if let Some(error) = result.errors.first() {
        // Unreachable after the checks above unless burn-store's applier changes behaviour.
        return Err(WeightsError::BadTensor {
            path: err_path(),
            key: format!("{error:?}"),
            reason: "rejected by burn-store".into(),
        });
    }
    let report = LoadReport {
        path: err_path(),
        kind,
        loaded: plan.into_iter().map(|(k, _)| k).collect(),
        skipped,
        fresh: uncovered
            .into_iter()
            .cloned()
            .chain(fresh_heads)
            .filter(|p| !is_buffer(p))
            .collect(),
    };
    Ok((model, report))
}

/// `[r, c]` → `[c, r]`, in `dtype`.
pub(super) fn transpose_2d(data: TensorData, dtype: DType) -> Result<TensorData, String> {
    let [r, c]: [usize; 2] = data
        .shape
        .to_vec()
        .try_into()
        .map_err(|_| "expected a 2-d tensor".to_string())?;
    let values: Vec<f32> = data
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("{e:?}"))?;
    let mut out = vec![0f32; r * c];
    for i in 0..r {
        for j in 0..c {
            out[j * r + i] = values[i * c + j];
        }
    }
    Ok(TensorData::new(out, [c, r]).convert_dtype(dtype))
}

/// A hint for a checkpoint key with no place in the model.
fn unexpected_hint(key: &str) -> String {
    if key.starts_with("decoder.aspp.0.convs.") {
        "the ASPP branches differ: an SMP checkpoint with `decoder_aspp_separable=True` has \
         `convs.N.0.0/0.1` (depthwise, pointwise), one with False `convs.N.0`; build the model \
         with the matching `aspp_separable`"
            .into()
    } else if key.contains("layer") {
        "the checkpoint's backbone has more blocks than the model: e.g. a ResNet-101 checkpoint \
         for a ResNet-50 model"
            .into()
    } else {
        "the checkpoint is not a torchvision DeepLabV3/ResNet or an SMP DeepLabV3+ of this \
         configuration"
            .into()
    }
}
