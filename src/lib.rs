//! The `retina-seg` command line (also used by the examples): see [`cli::main`].

mod choices;
pub mod cli;
mod data_cmd;
mod evaluate_cmd;
mod predict_cmd;
mod train_cmd;
