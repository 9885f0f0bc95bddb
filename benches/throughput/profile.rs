//! `--profile`: the time of each stage, through the model's own stage methods.

use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use deeplab::{DeepLab, DeepLabConfig, ResNet};
use seg_train::model::loss::LossConfig;
use seg_train::model::SegModel;
use seg_train::train::optim::AdamConfig;

use crate::configs::Config;
use crate::{batch, Settings};

/// Milliseconds per call of `f`, averaged over `iters` calls after one untimed call, with the
/// device synchronised before and after.
pub fn time_ms<B: Backend, T>(device: &B::Device, iters: usize, mut f: impl FnMut() -> T) -> f64 {
    drop(f());
    let _ = B::sync(device);
    let t = Instant::now();
    for _ in 0..iters {
        drop(f());
    }
    let _ = B::sync(device);
    t.elapsed().as_secs_f64() * 1e3 / iters.max(1) as f64
}

/// Per-stage times (ms) of one configuration: inference forward stage by stage, then the
/// training step's forward + loss, backward and optimizer step.
pub fn profile_config<B: AutodiffBackend>(
    cfg: &Config,
    settings: &Settings,
    device: &B::Device,
) -> Vec<(String, f64)> {
    let iters = settings.iters.max(1);
    B::seed(device, 0);
    let model = SegModel::<B> {
        net: cfg.model.init::<B>(device),
        loss: LossConfig::default(),
    };
    let data = batch::<B>(cfg, device);
    let mut stages: Vec<(String, f64)> = Vec::new();

    // Inference, stage by stage (each stage's input computed once beforehand), as `predict` runs
    // it: BatchNorm folded.
    let unfolded = model.valid().net;
    let net = unfolded.clone().fold_batch_norms();
    let inner = device.clone();
    let time = |f: &mut dyn FnMut() -> Tensor<B::InnerBackend, 4>| {
        time_ms::<B::InnerBackend, _>(&inner, iters, f)
    };
    let images = data.images.clone().inner();
    let [_, _, h, w] = images.dims();
    let bb = match &net {
        DeepLab::DeepLabV3(m) => &m.backbone,
        DeepLab::DeepLabV3Plus(m) => &m.encoder,
    };
    let stem = |x: Tensor<B::InnerBackend, 4>| bb.stem(x);
    let run = ResNet::forward_layer;
    let x0 = stem(images.clone());
    stages.push((
        "infer: stem (conv1, bn1, maxpool)".into(),
        time(&mut || stem(images.clone())),
    ));
    stages.push((
        "infer: stem conv1 + bn1 + relu (7×7, stride 2)".into(),
        time(&mut || bb.stem_conv(images.clone())),
    ));
    let conv1 = bb.stem_conv(images.clone());
    stages.push((
        "infer: stem maxpool (3×3, stride 2)".into(),
        time(&mut || bb.stem_pool(conv1.clone())),
    ));
    let mut x = x0;
    let (mut layer1, mut layer3) = (None, None);
    for (name, layer) in ["layer1", "layer2", "layer3", "layer4"]
        .into_iter()
        .zip(bb.layers())
    {
        let input = x.clone();
        let label = format!("infer: {name} ({} blocks)", layer.len());
        stages.push((label, time(&mut || run(layer, input.clone()))));
        x = run(layer, x);
        match name {
            "layer1" => layer1 = Some(x.clone()),
            "layer3" => layer3 = Some(x.clone()),
            _ => {}
        }
    }
    let layer4 = x;
    let (aspp, rates) = match (&net, &cfg.model) {
        (DeepLab::DeepLabV3(m), DeepLabConfig::DeepLabV3(c)) => {
            (&m.classifier.aspp, &c.atrous_rates)
        }
        (DeepLab::DeepLabV3Plus(m), DeepLabConfig::DeepLabV3Plus(c)) => {
            (&m.decoder.aspp, &c.atrous_rates)
        }
        _ => unreachable!("the model is built from its config"),
    };
    for (i, branch) in aspp.convs.iter().enumerate() {
        let rate = if i == 0 {
            "1×1".to_string()
        } else {
            format!("3×3 rate {}", rates[i - 1])
        };
        stages.push((
            format!("infer: ASPP branch {i} ({rate})"),
            time(&mut || match i {
                0 => branch.forward_relu(layer4.clone()),
                _ => branch.forward_relu_atrous(layer4.clone()),
            }),
        ));
    }
    stages.push((
        "infer: ASPP total".into(),
        time(&mut || aspp.forward(layer4.clone())),
    ));
    match &net {
        DeepLab::DeepLabV3(net) => {
            stages.push((
                "infer: DeepLab head (ASPP + 3×3 + 1×1)".into(),
                time(&mut || net.classifier.forward(layer4.clone())),
            ));
            if let (Some(aux), Some(l3)) = (&net.aux_classifier, &layer3) {
                stages.push((
                    "infer: FCN aux head".into(),
                    time(&mut || aux.forward(l3.clone())),
                ));
            }
            let logits = net.classifier.forward(layer4.clone());
            stages.push((
                "infer: upsample ×8 (matmul bilinear)".into(),
                time(&mut || net.upsample(logits.clone(), [h, w])),
            ));
        }
        DeepLab::DeepLabV3Plus(net) => {
            let l1 = layer1.expect("layer1 ran");
            stages.push((
                "infer: DeepLabV3+ decoder (ASPP, separable 3×3, ×4, low-level fusion)".into(),
                time(&mut || net.decoder.forward(l1.clone(), layer4.clone())),
            ));
            let decoded = net.decoder.forward(l1.clone(), layer4.clone());
            let logits = net.classify(decoded);
            stages.push((
                "infer: upsample ×4 (matmul bilinear, corners aligned)".into(),
                time(&mut || net.upsample(logits.clone(), [h, w])),
            ));
        }
    }
    stages.push((
        "infer: whole forward, BatchNorm not folded".into(),
        time(&mut || unfolded.forward(images.clone()).out),
    ));
    stages.push((
        "infer: whole forward, BatchNorm folded".into(),
        time(&mut || net.forward(images.clone()).out),
    ));

    // Training step, split.
    let mut optim = AdamConfig::default().init::<B, SegModel<B>>();
    let mut model = model;
    let (mut fwd, mut bwd, mut opt) = (0.0, 0.0, 0.0);
    for i in 0..=iters {
        let _ = B::sync(device);
        let t = Instant::now();
        let loss = model.forward_loss(data.clone()).loss;
        let _ = B::sync(device);
        let t1 = Instant::now();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let _ = B::sync(device);
        let t2 = Instant::now();
        model = optim.step(1e-4, model, grads);
        let _ = B::sync(device);
        if i > 0 {
            fwd += (t1 - t).as_secs_f64();
            bwd += (t2 - t1).as_secs_f64();
            opt += t2.elapsed().as_secs_f64();
        }
    }
    let per = |v: f64| v * 1e3 / iters as f64;
    stages.push(("train: forward + loss".into(), per(fwd)));
    stages.push(("train: backward".into(), per(bwd)));
    stages.push(("train: Adam step".into(), per(opt)));
    stages
}
