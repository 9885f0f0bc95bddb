//! The fused training BatchNorm against the tensor-operation one.

use burn::tensor::Distribution;

use super::*;
use crate::batch_norm::BatchNorm2dConfig;

/// Largest difference relative to `max(1, max |expected|)`.
fn relative_error<const D: usize>(got: Tensor<Flex, D>, expected: Tensor<Flex, D>) -> f64 {
    let scale = expected
        .clone()
        .abs()
        .max()
        .into_scalar()
        .elem::<f64>()
        .max(1.0);
    (got - expected).abs().max().into_scalar().elem::<f64>() / scale
}

/// The operation's output, batch statistics and gradients (input, γ, β and residual of
/// `Σ y·r`) equal the tensor operations' (`BatchNorm2d::normalise_batch`, the addition and
/// ReLU, differentiated by Burn's autodiff) — plain, with ReLU, and with a residual and ReLU —
/// in f64 to 1e-12 and f32 to 1e-5, on shapes with one sample, with 1×1 maps, and with
/// channel counts that are not a multiple of the thread count; the activation is offset and
/// scaled so that a one-pass variance would lose digits.
#[test]
fn equals_the_tensor_operation_batch_norm() {
    use burn::tensor::activation::relu;
    let device = Default::default();
    for (shape, dtype, tolerance) in [
        ([3, 5, 4, 3], DType::F64, 1e-12),
        ([1, 7, 6, 5], DType::F64, 1e-12),
        ([4, 3, 1, 1], DType::F64, 1e-12),
        ([2, 2, 4, 4], DType::F64, 1e-12),
        ([2, 6, 9, 8], DType::F32, 1e-5),
        ([1, 3, 3, 2], DType::F32, 1e-5),
    ] {
        let c = shape[1];
        let random = |shape: [usize; 4]| {
            Tensor::<Flex, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
        };
        let x = random(shape).mul_scalar(3.0).add_scalar(40.0).cast(dtype);
        let r = random(shape).cast(dtype);
        let residual = random(shape).cast(dtype);
        let gamma =
            Tensor::<Flex, 1>::random([c], Distribution::Normal(1.0, 0.5), &device).cast(dtype);
        let beta =
            Tensor::<Flex, 1>::random([c], Distribution::Normal(0.0, 1.0), &device).cast(dtype);
        let bn = BatchNorm2dConfig::new(c).init::<Ad>(&device);
        for (relu_after, with_residual) in [(false, false), (true, false), (true, true)] {
            let run = |fused: bool| {
                let x = Tensor::<Ad, 4>::from_inner(x.clone()).require_grad();
                let gamma = Tensor::<Ad, 1>::from_inner(gamma.clone()).require_grad();
                let beta = Tensor::<Ad, 1>::from_inner(beta.clone()).require_grad();
                let res = Tensor::<Ad, 4>::from_inner(residual.clone()).require_grad();
                let res = with_residual.then_some(res);
                let (y, mean, var) = if fused {
                    let inputs = (x.clone(), gamma.clone(), beta.clone(), res.clone());
                    match try_train(inputs, relu_after, bn.epsilon) {
                        Ok(outputs) => outputs,
                        Err(_) => panic!("Autodiff<Flex> takes the fused BatchNorm"),
                    }
                } else {
                    let (y, mean, var) =
                        bn.normalise_batch((x.clone(), gamma.clone(), beta.clone()));
                    let y = match res.clone() {
                        Some(res) => y + res,
                        None => y,
                    };
                    (if relu_after { relu(y) } else { y }, mean, var)
                };
                let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();
                let x_grad = x.grad(&grads).expect("input gradient");
                let res_grad = res.map(|res| res.grad(&grads).expect("residual gradient"));
                let gamma_grad = gamma.grad(&grads).expect("γ gradient");
                let beta_grad = beta.grad(&grads).expect("β gradient");
                let stats = [mean.inner(), var.inner(), gamma_grad, beta_grad];
                (y.inner(), stats, x_grad, res_grad)
            };
            let (y, stats, x_grad, res_grad) = run(true);
            let (y_ref, stats_ref, x_grad_ref, res_grad_ref) = run(false);
            let what = format!("{shape:?} {dtype:?} relu {relu_after} residual {with_residual}");
            assert_eq!(y.dtype(), dtype);
            let error = relative_error(y, y_ref);
            assert!(error <= tolerance, "{what} output: {error:e}");
            let error = relative_error(x_grad, x_grad_ref);
            assert!(error <= tolerance, "{what} input gradient: {error:e}");
            assert_eq!(res_grad.is_some(), with_residual);
            if let (Some(got), Some(expected)) = (res_grad, res_grad_ref) {
                let error = relative_error(got, expected);
                assert!(error <= tolerance, "{what} residual gradient: {error:e}");
            }
            for (name, (got, expected)) in ["mean", "variance", "∂γ", "∂β"]
                .iter()
                .zip(stats.into_iter().zip(stats_ref))
            {
                let error = relative_error(got, expected);
                assert!(error <= tolerance, "{what} {name}: {error:e}");
            }
        }
    }
}

/// Other backends get their inputs back.
#[test]
fn other_backends_are_left_to_tensor_operations() {
    let device = Default::default();
    let x = Tensor::<Flex, 4>::zeros([2, 3, 2, 2], &device);
    let gamma = Tensor::<Flex, 1>::ones([3], &device);
    assert!(try_train((x, gamma.clone(), gamma, None), true, 1e-5).is_err());
}
