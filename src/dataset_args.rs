//! The flags that say how a dataset folder is read (`--dataset`, `--split-scheme`, `--observer`,
//! `--holdout`), shared by `check-data`, `train` and `evaluate`.

use std::path::Path;

use anyhow::Result;
use clap::Args;
use drive_data::{DatasetDir, Layout, Sample};

use crate::choices::{LayoutArg, ObserverArg, SchemeArg};
use crate::ranges::whole;

#[derive(Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Which dataset the folder holds, in its download's layout [default: detected from the
    /// folder's contents].
    #[arg(long, value_enum)]
    pub dataset: Option<LayoutArg>,
    /// Which images train and which test [default: the dataset's usual one: folders for DRIVE
    /// and FIVES, 10-10 for STARE, 20-8 for CHASE_DB1, 5-per-class for HRF].
    #[arg(long, value_enum)]
    pub split_scheme: Option<SchemeArg>,
    /// Whose vessel labels are the ground truth.
    #[arg(long, value_enum, default_value_t = ObserverArg::First)]
    pub observer: ObserverArg,
    /// Training images held out for validation [default: DRIVE 4 (the highest ids); STARE,
    /// CHASE_DB1, HRF, FIVES 20% of training, spread over the ids; the Kaggle split has its own
    /// folder; 0 to 10000].
    #[arg(long, value_parser = whole::<usize>(0, 10_000))]
    pub holdout: Option<usize>,
}

impl DatasetArgs {
    /// Opens `root` as these flags say.
    pub fn open(&self, root: &Path) -> Result<DatasetDir> {
        let mut dir = match self.dataset {
            Some(layout) => DatasetDir::open_as(root, Layout::from(layout))?,
            None => DatasetDir::open(root)?,
        };
        if let Some(scheme) = self.split_scheme {
            dir = dir.with_scheme(scheme.into())?;
        }
        dir = dir.with_observer(self.observer.into())?;
        if let Some(holdout) = self.holdout {
            dir = dir.with_holdout(holdout);
        }
        Ok(dir)
    }
}

/// Where the samples' FOV masks came from, in words ("from files", "derived from the images",
/// "derived for 3 of 20").
pub fn fov_source<'a>(samples: impl IntoIterator<Item = &'a Sample>) -> String {
    let (mut derived, mut total) = (0, 0);
    for s in samples {
        total += 1;
        derived += usize::from(s.fov_derived);
    }
    match derived {
        0 => "from files".into(),
        d if d == total => "derived from the images".into(),
        d => format!("derived for {d} of {total}"),
    }
}
