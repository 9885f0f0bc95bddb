//! BatchNorm folding for inference: every BatchNorm merged into the convolution before it gives the
//! unfolded model's eval outputs, in float32, on fixtures whose BatchNorms have random weights,
//! biases and running statistics (so no fold is an identity) — DeepLabV3 and DeepLabV3+ (whose
//! separable convolutions fold into their pointwise part). On Flex the folded model also runs the
//! fused epilogue (bias, residual addition and ReLU applied in the convolution's pass), so this is
//! the fused model against the unfused one. Fixture prefix from
//! `DEEPLAB_PARITY_FIXTURE`, like the parity tests.

mod common;

use burn::backend::Flex;
use common::{rel_err, Fixture};

#[test]
fn folded_model_gives_the_unfolded_eval_outputs() {
    let device = Default::default();
    for fx in Fixture::all() {
        let name = fx.name();
        let model = fx.model::<Flex>(&device);
        let input = fx.tensor::<Flex, 4>("input", &device);
        let unfolded = model.clone().forward(input.clone());
        let folded = model.fold_batch_norms().forward(input);

        let e_out = rel_err(folded.out.clone(), unfolded.out);
        println!("{name}: folded vs unfolded rel err: out {e_out:.2e}");
        assert!(e_out <= 1e-5, "{name}: out: {e_out:e}");
        assert_eq!(folded.aux.is_some(), unfolded.aux.is_some());
        if let (Some(a), Some(b)) = (folded.aux, unfolded.aux) {
            let e_aux = rel_err(a, b);
            println!("{name}: folded vs unfolded rel err: aux {e_aux:.2e}");
            assert!(e_aux <= 1e-5, "{name}: aux: {e_aux:e}");
        }
        // And still the reference's eval output.
        let e_ref = rel_err(folded.out, fx.tensor::<Flex, 4>("eval_out", &device));
        assert!(e_ref <= 1e-4, "{name}: vs the reference: {e_ref:e}");
    }
}

/// Folding a folded model changes nothing (each BatchNorm folds once), and a folded model is not
/// exported: its convolutions carry the BatchNorm transform while the BatchNorm tensors are still
/// there, which PyTorch would apply a second time.
#[test]
fn folding_twice_is_folding_once_and_folded_models_do_not_export() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    for fx in Fixture::all() {
        let name = fx.name();
        let input = fx.tensor::<Flex, 4>("input", &device);
        let model = fx.model::<Flex>(&device);
        assert!(!model.is_folded(), "{name}");
        let once = model.clone().fold_batch_norms();
        assert!(once.is_folded(), "{name}");
        let twice = once.clone().fold_batch_norms();
        let e = rel_err(twice.forward(input.clone()).out, once.forward(input).out);
        assert_eq!(e, 0.0, "{name}: folding again changed the outputs by {e:e}");

        let path = dir.path().join(format!("{name}.safetensors"));
        let err = twice.save_safetensors(&path).unwrap_err();
        assert!(
            matches!(err, deeplab::WeightsError::Folded { .. }),
            "{name}: {err}"
        );
        assert!(err.to_string().contains("before folding"), "{err}");
        assert!(!path.exists(), "{name}: nothing written");
        model
            .save_safetensors(&path)
            .expect("the unfolded model exports");
    }
}
