//! `retina-seg compare`: runs and evaluations side by side (table with differences, overlaid
//! curves) as text, CSV, PNG and HTML.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use seg_train::report::compare::{load, rows, text_table};
use seg_train::report::compare_page::write_comparison;

use crate::choices::SplitArg;

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Two or more training run folders (their metrics.csv and evaluation-<split>.json), run
    /// metrics.csv files or evaluation JSON files; the first is the baseline of the differences.
    #[arg(required = true, num_args = 2.., value_name = "RUN_OR_EVAL")]
    inputs: Vec<PathBuf>,
    /// The evaluation taken from run folders [default: test when every run folder has
    /// evaluation-test.json, else valid].
    #[arg(long, value_enum)]
    split: Option<SplitArg>,
    /// Output folder: compare.html, compare.csv and the charts.
    #[arg(long, default_value = "comparison")]
    out: PathBuf,
}

pub fn run(args: CompareArgs) -> Result<()> {
    let inputs = load(&args.inputs, args.split.map(Into::into))?;
    print!("{}", text_table(&inputs, &rows(&inputs)));
    let page = write_comparison(&inputs, &args.out)?;
    println!("comparison: {}", page.display());
    Ok(())
}
