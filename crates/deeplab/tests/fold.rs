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
