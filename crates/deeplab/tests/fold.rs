//! BatchNorm folding for inference: every BatchNorm merged into the convolution before it gives the
//! unfolded model's eval outputs, in float32, on a fixture whose BatchNorms have random weights,
//! biases and running statistics (so no fold is an identity). Fixture prefix from
//! `DEEPLAB_PARITY_FIXTURE`, like the parity tests.

mod common;

use burn::backend::Flex;
use common::{rel_err, Fixture};

#[test]
fn folded_model_gives_the_unfolded_eval_outputs() {
    let fx = Fixture::load();
    let device = Default::default();
    let model = fx.model::<Flex>(&device);
    let input = fx.tensor::<Flex, 4>("input", &device);
    let unfolded = model.clone().forward(input.clone());
    let folded = model.fold_batch_norms().forward(input);

    let e_out = rel_err(folded.out.clone(), unfolded.out);
    let e_aux = rel_err(
        folded.aux.clone().expect("aux head"),
        unfolded.aux.expect("aux head"),
    );
    println!("folded vs unfolded rel err: out {e_out:.2e}, aux {e_aux:.2e}");
    assert!(e_out <= 1e-5, "out: {e_out:e}");
    assert!(e_aux <= 1e-5, "aux: {e_aux:e}");
    // And still torchvision's eval output.
    let e_ref = rel_err(folded.out, fx.tensor::<Flex, 4>("eval_out", &device));
    assert!(e_ref <= 1e-4, "vs torchvision: {e_ref:e}");
}
