//! The autodiff convolution on `Autodiff<Flex>`: `burn-autodiff`'s own, with this module's
//! forward pass and input and weight gradients.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::{ConvOptions, FloatTensor, ModuleOps};
use burn_flex::FlexTensor;

use super::flex_conv2d;
use super::ops::{input_grad, weight_grad};

type Ad = Autodiff<Flex>;

/// The autodiff convolution, as `burn-autodiff`'s own but with this module's forward pass and
/// input and weight gradients.
pub(super) fn conv2d(
    x: FloatTensor<Ad>,
    weight: FloatTensor<Ad>,
    bias: Option<FloatTensor<Ad>>,
    options: ConvOptions<2>,
) -> FloatTensor<Ad> {
    #[derive(Debug)]
    struct Conv2dNoBias;
    #[derive(Debug)]
    struct Conv2dWithBias;

    impl Backward<Flex, 2> for Conv2dNoBias {
        type State = (NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 2>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, weight, options) = ops.state;
            let x = ckpt.retrieve_node_output::<FlexTensor>(x);
            let weight = ckpt.retrieve_node_output::<FlexTensor>(weight);
            input_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    impl Backward<Flex, 3> for Conv2dWithBias {
        type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

        fn backward(
            self,
            ops: Ops<Self::State, 3>,
            grads: &mut Gradients,
            ckpt: &mut Checkpointer,
        ) {
            let [node_x, node_weight, node_bias] = ops.parents.map(|n| n.map(|n| n.id));
            let grad = grads.consume::<Flex>(&ops.node);
            let (x, weight, bias, options) = ops.state;
            let x = ckpt.retrieve_node_output::<FlexTensor>(x);
            let weight = ckpt.retrieve_node_output::<FlexTensor>(weight);
            if let Some(node) = node_bias {
                let bias = ckpt.retrieve_node_output::<FlexTensor>(bias);
                let g = Flex::conv2d_bias_backward(x.clone(), bias, grad.clone());
                grads.register::<Flex>(node, g);
            }
            input_grads(x, weight, grad, options, [node_x, node_weight], grads);
        }
    }

    // The output does not depend on whether the graph is tracked (the primitives' storage is
    // shared, not copied).
    let y = flex_conv2d(
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

/// Registers the gradients of the input and the weight (for the parents that track them).
fn input_grads(
    x: FlexTensor,
    weight: FlexTensor,
    grad: FlexTensor,
    options: ConvOptions<2>,
    [node_x, node_weight]: [Option<NodeId>; 2],
    grads: &mut Gradients,
) {
    if let Some(node) = node_x {
        let g = input_grad(&x, &weight, &grad, &options).unwrap_or_else(|| {
            Flex::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone())
        });
        grads.register::<Flex>(node, g);
    }
    if let Some(node) = node_weight {
        let g = weight_grad(&x, &grad, &weight, &options)
            .unwrap_or_else(|| Flex::conv2d_weight_backward(x, weight, grad, options));
        grads.register::<Flex>(node, g);
    }
}
