//! The autodiff convolution on `Autodiff<Wgpu>` with the weight gradient as one matrix product
//! per kernel tap: burn-cubecl 0.21 computes it as a direct convolution whose kernel is the
//! output gradient — a new shader for every layer's output size, compiled on first use for as
//! long as 24 s (the 7×7 stem of a 289×297 input) on Mesa's lavapipe, ten minutes for a small
//! model's first backward pass at those sizes. Per tap, `∂W[:, :, a, b] = ∂Y · X_tapᵀ` over the
//! shifted, strided input: the same sums, from operations whose shaders do not depend on the
//! image size. The forward pass, the input gradient and the weight gradient of grouped
//! (depthwise) convolutions stay burn-cubecl's. Chosen by type: `Autodiff<Wgpu>` with its default element types.

use std::any::Any;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn::tensor::{Slice, TensorPrimitive};

use super::ConvInputs as Inputs;

/// Burn's wgpu backend with its default element types.
type Wgpu = burn::backend::Wgpu;
type Ad = Autodiff<Wgpu>;
type Primitive = FloatTensor<Wgpu>;

fn tensor(p: Primitive) -> Tensor<Wgpu, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `conv2d(x, weight, bias, options)` through this module when `B` is `Autodiff<Wgpu>`; `Err`
/// gives the inputs back untouched for any other backend.
#[allow(clippy::result_large_err)]
pub(crate) fn try_conv2d<B: Backend>(
    inputs: Inputs<B>,
    options: &ConvOptions<2>,
) -> Result<Tensor<B, 4>, Inputs<B>> {
    let mut inputs = Some(inputs);
    let any = &mut inputs as &mut dyn Any;
    let Some(slot) = any.downcast_mut::<Option<Inputs<Ad>>>() else {
        return Err(inputs.expect("inputs not taken"));
    };
    let (x, weight, bias) = slot.take().expect("inputs present");
    let y = conv2d(
        x.into_primitive().tensor(),
        weight.into_primitive().tensor(),
        bias.map(|b| b.into_primitive().tensor()),
        options.clone(),
    );
    let y: Box<dyn Any> = Box::new(Tensor::<Ad, 4>::from_primitive(TensorPrimitive::Float(y)));
    Ok(*y.downcast::<Tensor<B, 4>>().expect("B is Autodiff<Wgpu>"))
}

/// The autodiff convolution: burn-autodiff's own, with [`weight_grad`] for the weight.
fn conv2d(
    x: FloatTensor<Ad>,
    weight: FloatTensor<Ad>,
    bias: Option<FloatTensor<Ad>>,
    options: ConvOptions<2>,
) -> FloatTensor<Ad> {
    #[derive(Debug)]
    struct Conv2dNoBias;
    #[derive(Debug)]
    struct Conv2dWithBias;

    impl Backward<Wgpu, 2> for Conv2dNoBias {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Wgpu>(&ops.node);
            let (x, weight, options) = ops.state;
            let x = ckpt.retrieve_node_output::<Primitive>(x);
            let weight = ckpt.retrieve_node_output::<Primitive>(weight);
            register_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    impl Backward<Wgpu, 3> for Conv2dWithBias {
        type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Wgpu>(&ops.node);
            let (x, weight, bias, options) = ops.state;
            let x = ckpt.retrieve_node_output::<Primitive>(x);
            let weight = ckpt.retrieve_node_output::<Primitive>(weight);
            if let Some(node) = node_bias {
                let bias = ckpt.retrieve_node_output::<Primitive>(bias);
                let g =
                    <Wgpu as ModuleOps<Wgpu>>::conv2d_bias_backward(x.clone(), bias, grad.clone());
                grads.register::<Wgpu>(node, g);
            }
            register_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    let y = <Wgpu as ModuleOps<Wgpu>>::conv2d(
        x.primitive.clone(),
        weight.primitive.clone(),
        bias.as_ref().map(|b| b.primitive.clone()),
        options.clone(),
    );
    match bias {
        None => match Conv2dNoBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options);
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
        Some(bias) => match Conv2dWithBias
            .prepare::<NoCheckpointing>([x.node.clone(), weight.node.clone(), bias.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let state = (
                    prep.checkpoint(&x),
                    prep.checkpoint(&weight),
                    prep.checkpoint(&bias),
                    options,
                );
                prep.finish(state, y)
            }
            OpsKind::UnTracked(prep) => prep.finish(y),
        },
    }
}

/// Registers the gradients of the input (burn-cubecl's) and the weight (per tap).
fn register_grads(
    x: Primitive,
    weight: Primitive,
    grad: Primitive,
    options: ConvOptions<2>,
    [node_x, node_weight]: [Option<NodeId>; 2],
    grads: &mut Gradients,
) {
    if let Some(node) = node_x {
        let g = <Wgpu as ModuleOps<Wgpu>>::conv2d_x_backward(
            x.clone(),
            weight.clone(),
            grad.clone(),
            options.clone(),
        );
        grads.register::<Wgpu>(node, g);
    }
    if let Some(node) = node_weight {
        let dims = tensor(weight.clone()).dims();
        let g = weight_grad(tensor(x.clone()), tensor(grad.clone()), dims, &options)
            .map(|g| g.into_primitive().tensor())
            .unwrap_or_else(|| {
                <Wgpu as ModuleOps<Wgpu>>::conv2d_weight_backward(x, weight, grad, options)
            });
        grads.register::<Wgpu>(node, g);
    }
}

/// `∂L/∂W` of `[o, c/groups, kh, kw]` from the input `x` and the output gradient `dy`, tap by
/// tap; `None` for grouped convolutions.
///
/// Every matrix product reads contiguous rows: a stride-1 tap is a window of the flattened,
/// padded input against the output gradient widened to the padded width with zero columns, a
/// strided tap a copy made by the stepped slice; one product per sample and tap (`[o, ·] ×
/// [·, c]`), summed. burn-cubecl 0.21's fused matrix product gave wrong sums on Mesa's lavapipe
/// when its operand was a strided tap seen through a transpose and a reshape (a 7×7 stride-2
/// stem on a 57×71 input: the taps of rows 3–6 about 0.4 % off), and its batched product is
/// wrong for some shapes (see `wgpu_pointwise`).
pub(crate) fn weight_grad<B: Backend>(
    x: Tensor<B, 4>,
    dy: Tensor<B, 4>,
    [o, cg, kh, kw]: [usize; 4],
    options: &ConvOptions<2>,
) -> Option<Tensor<B, 4>> {
    let [n, c, h, w] = x.dims();
    let [_, _, ho, wo] = dy.dims();
    // Grouped and depthwise convolutions keep burn-cubecl's weight gradient: the per-channel
    // sums of a depthwise one, written with element-wise products and reductions, returned wrong
    // values for one of two identical branches on Mesa's lavapipe (`tiny_deeplabv3plus`).
    if options.groups != 1 {
        return None;
    }
    let [ph, pw] = options.padding;
    let [sh, sw] = options.stride;
    let [dh, dw] = options.dilation;
    let device = x.device();
    let (hp, wp) = (h + 2 * ph, w + 2 * pw);
    let x = if ph > 0 || pw > 0 {
        Tensor::zeros([n, c, hp, wp], &device).slice_assign([0..n, 0..c, ph..ph + h, pw..pw + w], x)
    } else {
        x
    };
    // Per tap: sample i's `[o, c]` block, summed over samples.
    let per_sample_sum = |blocks: &mut dyn FnMut(usize) -> Tensor<B, 2>| {
        (1..n).fold(blocks(0), |sum, i| sum + blocks(i))
    };
    let mut taps = Vec::with_capacity(kh * kw);
    if [sh, sw] == [1, 1] {
        // Output (r, q) of tap (a, b) reads the flattened input at (r + a·dh)·wp + q + b·dw:
        // with the gradient widened to wp columns (zeros beyond wo), tap (a, b) is the product
        // with the window of ho·wp flattened pixels from a·dh·wp + b·dw.
        let len = ho * wp;
        let tail = (kw - 1) * dw;
        let flat = Tensor::zeros([n, c, hp * wp + tail], &device)
            .slice_assign([0..n, 0..c, 0..hp * wp], x.reshape([n, c, hp * wp]));
        let wide = if wp > wo {
            Tensor::zeros([n, o, ho, wp], &device).slice_assign([0..n, 0..o, 0..ho, 0..wo], dy)
        } else {
            dy
        }
        .reshape([n, o, len]);
        let rows: Vec<Tensor<B, 2>> = (0..n)
            .map(|i| wide.clone().narrow(0, i, 1).reshape([o, len]))
            .collect();
        for a in 0..kh {
            for b in 0..kw {
                let start = a * dh * wp + b * dw;
                let window = flat.clone().slice([0..n, 0..c, start..start + len]);
                taps.push(per_sample_sum(&mut |i| {
                    let cols = window.clone().narrow(0, i, 1).reshape([c, len]);
                    rows[i].clone().matmul(cols.transpose())
                }));
            }
        }
    } else {
        let len = ho * wo;
        let rows: Vec<Tensor<B, 2>> = (0..n)
            .map(|i| dy.clone().narrow(0, i, 1).reshape([o, len]))
            .collect();
        let span = |start: usize, step: usize, count: usize| {
            Slice::new(
                start as isize,
                Some((start + step * (count - 1) + 1) as isize),
                step as isize,
            )
        };
        for a in 0..kh {
            for b in 0..kw {
                // A fresh `[n, c, ho, wo]` tensor (burn-cubecl's stepped slice copies).
                let tap = x.clone().slice([
                    Slice::from(0..n),
                    Slice::from(0..c),
                    span(a * dh, sh, ho),
                    span(b * dw, sw, wo),
                ]);
                taps.push(per_sample_sum(&mut |i| {
                    let cols = tap.clone().narrow(0, i, 1).reshape([c, len]);
                    rows[i].clone().matmul(cols.transpose())
                }));
            }
        }
    }
    // [o, cg] per tap → [o, cg, kh·kw] (contiguous) → [o, cg, kh, kw].
    Some(Tensor::stack::<3>(taps, 2).reshape([o, cg, kh, kw]))
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::module::conv2d;
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    /// Input and weight shapes and options: the stem (7×7, stride 2) at sizes whose taps went
    /// wrong in a fused product, 3×3 convolutions plain, strided and dilated (rates of the
    /// ASPP), uneven padding and stride, a strided 1×1 (a bottleneck's downsample), batches of
    /// one to three.
    fn cases() -> Vec<([usize; 4], [usize; 4], ConvOptions<2>)> {
        vec![
            (
                [2, 3, 57, 71],
                [4, 3, 7, 7],
                ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
            ),
            (
                [2, 3, 17, 19],
                [4, 3, 7, 7],
                ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
            ),
            (
                [1, 3, 64, 80],
                [8, 3, 7, 7],
                ConvOptions::new([2, 2], [3, 3], [1, 1], 1),
            ),
            (
                [3, 8, 15, 18],
                [8, 8, 3, 3],
                ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
            ),
            (
                [2, 8, 29, 36],
                [16, 8, 3, 3],
                ConvOptions::new([2, 2], [1, 1], [1, 1], 1),
            ),
            (
                [2, 6, 9, 11],
                [5, 6, 3, 3],
                ConvOptions::new([1, 1], [4, 4], [4, 4], 1),
            ),
            (
                [2, 16, 37, 38],
                [8, 16, 3, 3],
                ConvOptions::new([1, 1], [12, 12], [12, 12], 1),
            ),
            (
                [2, 5, 13, 10],
                [3, 5, 3, 5],
                ConvOptions::new([1, 2], [2, 1], [2, 1], 1),
            ),
            (
                [1, 4, 8, 8],
                [3, 4, 1, 1],
                ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
            ),
            (
                [2, 16, 15, 18],
                [32, 16, 1, 1],
                ConvOptions::new([2, 2], [0, 0], [1, 1], 1),
            ),
        ]
    }

    /// Random input and output gradient for a case, and Burn's weight gradient on Flex.
    fn reference(
        xs: [usize; 4],
        ws: [usize; 4],
        options: &ConvOptions<2>,
    ) -> (Tensor<Flex, 4>, Tensor<Flex, 4>, Tensor<Flex, 4>) {
        let device = Default::default();
        let x = Tensor::<Autodiff<Flex>, 4>::random(xs, Distribution::Normal(0.0, 1.0), &device);
        let weight =
            Tensor::<Autodiff<Flex>, 4>::random(ws, Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
        let y = conv2d(x.clone(), weight.clone(), None, options.clone());
        let dy = Tensor::<Flex, 4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
        let grads = (y * Tensor::from_inner(dy.clone())).sum().backward();
        let reference = weight.grad(&grads).expect("weight gradient");
        (x.inner(), dy, reference)
    }

    /// Largest difference relative to the largest magnitude of the reference.
    fn max_rel(ours: TensorData, reference: TensorData) -> f32 {
        let ours: Vec<f32> = ours.to_vec().expect("f32 gradient");
        let reference: Vec<f32> = reference.to_vec().expect("f32 gradient");
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        let diff = ours
            .iter()
            .zip(&reference)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        diff / scale
    }

    /// The per-tap weight gradient equals Burn's on Flex.
    #[test]
    fn tap_weight_gradient_matches_burn() {
        for (xs, ws, options) in cases() {
            let (x, dy, reference) = reference(xs, ws, &options);
            let ours = weight_grad(x, dy, ws, &options).expect("ungrouped");
            let e = max_rel(ours.to_data(), reference.to_data());
            assert!(e <= 1e-5, "{xs:?} {ws:?}: {e:e}");
        }
    }

    /// The same on wgpu (Mesa's lavapipe in `.ci/run`): the products burn-cubecl runs there
    /// give Flex's sums.
    #[test]
    #[ignore = "needs a Vulkan/Metal/DX12 driver; .ci/run runs it on lavapipe"]
    fn tap_weight_gradient_on_wgpu_matches_flex() {
        let device = burn::backend::wgpu::WgpuDevice::DefaultDevice;
        for (xs, ws, options) in cases() {
            let (x, dy, reference) = reference(xs, ws, &options);
            let x = Tensor::<Wgpu, 4>::from_data(x.to_data(), &device);
            let dy = Tensor::<Wgpu, 4>::from_data(dy.to_data(), &device);
            let ours = weight_grad(x, dy, ws, &options).expect("ungrouped");
            let e = max_rel(ours.to_data(), reference.to_data());
            assert!(e <= 1e-5, "{xs:?} {ws:?}: {e:e}");
        }
    }

    /// Grouped convolutions are left to Burn.
    #[test]
    fn grouped_convolutions_are_left_to_burn() {
        let device = Default::default();
        let x = Tensor::<Flex, 4>::zeros([1, 4, 8, 8], &device);
        let dy = Tensor::<Flex, 4>::zeros([1, 4, 8, 8], &device);
        let options = ConvOptions::new([1, 1], [1, 1], [1, 1], 4);
        assert!(weight_grad(x, dy, [4, 1, 3, 3], &options).is_none());
    }
}
