//! Which images train and which test (the split schemes the literature uses), which annotator's
//! labels are the ground truth, and how a validation split is carved from training.
//!
//! | scheme | dataset | training | test |
//! |---|---|---|---|
//! | `folders` | DRIVE, Kaggle split, FIVES | the download's training folder (600 FIVES images) | its test folder (200 FIVES images) |
//! | `10-10` | STARE | the first 10 images by id | the last 10 |
//! | `20-8` | CHASE_DB1 | the first 20 images (patients 1–10) | the last 8 (patients 11–14) |
//! | `8-20` | CHASE_DB1 | the first 8 images (patients 1–4) | the last 20 |
//! | `5-per-class` | HRF | images 01–05 of each group (15) | 06–15 of each group (30) |
//!
//! On a folder holding a different number of images than the download (a subset, a synthetic
//! set) a scheme keeps its proportions: the first half of STARE, the first 20/28 (8/28) of
//! CHASE_DB1 rounded to whole patients, the first third of each HRF group, rounded.
//!
//! Validation: the Kaggle split has its own folder. Everywhere else it is carved from training,
//! the same images on every run: DRIVE's [`DEFAULT_HOLDOUT`](super::DEFAULT_HOLDOUT) training
//! images with the highest ids; in the other datasets 20% of training (at least 1), spread evenly
//! over the ids (`--holdout N` sets the number) — for CHASE_DB1 whole patients, `⌈N/2⌉` of them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{Entry, Layout};

/// How a dataset's images are divided into training and test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SplitScheme {
    /// The download's own split folders (DRIVE, the Kaggle split, FIVES).
    Folders,
    /// STARE: first 10 images train, last 10 test.
    StareHalves,
    /// CHASE_DB1: first 20 images train, last 8 test.
    ChaseTwentyEight,
    /// CHASE_DB1: first 8 images train, last 20 test.
    ChaseEightTwenty,
    /// HRF: the first 5 images of each group (healthy, DR, glaucoma) train, the other 30 test.
    HrfFivePerClass,
}

impl SplitScheme {
    /// Every scheme, in the order of the table in the module docs.
    pub const ALL: [SplitScheme; 5] = [
        Self::Folders,
        Self::StareHalves,
        Self::ChaseTwentyEight,
        Self::ChaseEightTwenty,
        Self::HrfFivePerClass,
    ];

    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Folders => "folders",
            Self::StareHalves => "10-10",
            Self::ChaseTwentyEight => "20-8",
            Self::ChaseEightTwenty => "8-20",
            Self::HrfFivePerClass => "5-per-class",
        }
    }

    /// Whether the scheme divides `layout`'s images.
    pub fn applies_to(self, layout: Layout) -> bool {
        layout.schemes().contains(&self)
    }

    /// Training and test entries (in id order) from all of a dataset's images (in id order).
    pub(crate) fn partition(self, all: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
        let n = all.len();
        let proportion = |num: usize, den: usize| (n * num + den / 2) / den;
        let train_ids: Vec<bool> = match self {
            Self::Folders => vec![true; n],
            Self::StareHalves => first(n, proportion(1, 2)),
            Self::ChaseTwentyEight | Self::ChaseEightTwenty => {
                let share = if self == Self::ChaseTwentyEight {
                    20
                } else {
                    8
                };
                // Whole patients: both eyes of a patient (ids 2n − 1, 2n) on one side.
                let mut k = proportion(share, 28);
                if k > 0 && k < n && all[k].id % 2 == 0 && all[k - 1].id + 1 == all[k].id {
                    k += 1;
                }
                first(n, k)
            }
            Self::HrfFivePerClass => {
                // ids (n − 1)·3 + group: number n of its group is (id − 1) / 3 + 1.
                let groups = super::ids::HRF_GROUPS.len();
                let mut counts = vec![0usize; groups];
                for e in &all {
                    counts[(e.id as usize - 1) % groups] += 1;
                }
                let mut seen = vec![0usize; groups];
                all.iter()
                    .map(|e| {
                        let g = (e.id as usize - 1) % groups;
                        seen[g] += 1;
                        seen[g] <= (counts[g] + 1) / 3
                    })
                    .collect()
            }
        };
        let mut train = Vec::new();
        let mut test = Vec::new();
        for (entry, is_train) in all.into_iter().zip(train_ids) {
            if is_train {
                train.push(entry);
            } else {
                test.push(entry);
            }
        }
        (train, test)
    }
}

fn first(n: usize, k: usize) -> Vec<bool> {
    (0..n).map(|i| i < k).collect()
}

impl fmt::Display for SplitScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SplitScheme {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scheme| scheme.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|s| s.name()).collect();
                format!("unknown split scheme `{s}` ({})", names.join(", "))
            })
    }
}

/// Whose vessel annotations are the ground truth. The first is every dataset's standard; a
/// second exists for STARE (Kouznetsova, `labels-vk/`), CHASE_DB1 (`_2ndHO`) and DRIVE's test
/// images (`2nd_manual/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Observer {
    /// The standard ground truth (STARE `labels-ah/`, CHASE_DB1 `_1stHO`, DRIVE `1st_manual/`).
    First,
    /// The second annotator.
    Second,
}

impl fmt::Display for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::First => "first",
            Self::Second => "second",
        })
    }
}

/// Default share of the training images carved for validation outside DRIVE (at least one).
pub const VALIDATION_SHARE: f64 = 0.2;

/// How many of `n` training images are held out for validation by default.
pub fn default_holdout(layout: Layout, n: usize) -> usize {
    match layout {
        Layout::Drive => super::DEFAULT_HOLDOUT,
        Layout::Kaggle => 0,
        _ if n < 2 => 0,
        _ => ((n as f64 * VALIDATION_SHARE).round() as usize).max(1),
    }
}

/// Splits training entries (id order) into (training, validation): DRIVE's `k` highest ids, or
/// `k` evenly spread ones (the middle of each of `k` equal runs).
/// CHASE_DB1 carves whole patients (both eyes, ids 2n − 1 and 2n): `⌈k/2⌉` of them, spread
/// evenly, so no patient is on both sides.
pub(crate) fn carve(layout: Layout, mut train: Vec<Entry>, k: usize) -> (Vec<Entry>, Vec<Entry>) {
    let n = train.len();
    if layout == Layout::Drive || k == 0 {
        let valid = train.split_off(n - k.min(n));
        return (train, valid);
    }
    // The unit carved: a patient for CHASE_DB1, else the image.
    let unit = |e: &Entry| {
        if layout == Layout::Chase {
            e.id.div_ceil(2)
        } else {
            e.id
        }
    };
    let mut units: Vec<u32> = train.iter().map(unit).collect();
    units.dedup();
    let u = units.len();
    let want = if layout == Layout::Chase {
        k.div_ceil(2)
    } else {
        k
    };
    // At least one unit stays for training.
    let want = want.min(u.saturating_sub(1)).max(1);
    let picked: Vec<u32> = (0..want)
        .map(|i| units[(2 * i + 1) * u / (2 * want)])
        .collect();
    train.into_iter().partition(|e| !picked.contains(&unit(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entries(ids: &[u32]) -> Vec<Entry> {
        ids.iter()
            .map(|&id| Entry {
                id,
                image: PathBuf::from(format!("{id}.png")),
                vessels: None,
                fov: None,
            })
            .collect()
    }

    fn ids(entries: &[Entry]) -> Vec<u32> {
        entries.iter().map(|e| e.id).collect()
    }

    #[test]
    fn official_sets_split_as_published() {
        // STARE's 20 labelled images.
        let stare = [
            1, 2, 3, 4, 5, 44, 77, 81, 82, 139, 162, 163, 235, 236, 239, 240, 255, 291, 319, 324,
        ];
        let (train, test) = SplitScheme::StareHalves.partition(entries(&stare));
        assert_eq!(ids(&train), stare[..10]);
        assert_eq!(ids(&test), stare[10..]);
        let chase: Vec<u32> = (1..=28).collect();
        let (train, test) = SplitScheme::ChaseTwentyEight.partition(entries(&chase));
        assert_eq!((train.len(), test.len()), (20, 8));
        let (train, test) = SplitScheme::ChaseEightTwenty.partition(entries(&chase));
        assert_eq!((train.len(), test.len()), (8, 20));
        let hrf: Vec<u32> = (1..=45).collect();
        let (train, test) = SplitScheme::HrfFivePerClass.partition(entries(&hrf));
        // Images 01–05 of each group: ids 1..=15.
        assert_eq!(ids(&train), (1..=15).collect::<Vec<_>>());
        assert_eq!(test.len(), 30);
    }

    #[test]
    fn chase_keeps_both_eyes_of_a_patient_together() {
        // 10 images (5 patients): 20/28 of 10 rounds to 7, which would split patient 4.
        let (train, _) =
            SplitScheme::ChaseTwentyEight.partition(entries(&(1..=10).collect::<Vec<_>>()));
        assert_eq!(ids(&train), (1..=8).collect::<Vec<_>>());
    }

    #[test]
    fn validation_is_spread_evenly_or_drive_s_highest_ids() {
        let (train, valid) = carve(Layout::Stare, entries(&(1..=10).collect::<Vec<_>>()), 2);
        assert_eq!(ids(&valid), [3, 8]);
        assert_eq!(train.len(), 8);
        // CHASE_DB1: 4 images are 2 whole patients (of 10), both eyes each.
        let (train, valid) = carve(Layout::Chase, entries(&(1..=20).collect::<Vec<_>>()), 4);
        assert_eq!(ids(&valid), [5, 6, 15, 16]);
        assert_eq!(train.len(), 16);
        let (_, valid) = carve(Layout::Chase, entries(&(1..=20).collect::<Vec<_>>()), 1);
        assert_eq!(ids(&valid), [11, 12]);
        let (_, valid) = carve(Layout::Drive, entries(&(21..=40).collect::<Vec<_>>()), 4);
        assert_eq!(ids(&valid), [37, 38, 39, 40]);
        assert_eq!(default_holdout(Layout::Hrf, 15), 3);
        assert_eq!(default_holdout(Layout::Chase, 3), 1);
        assert_eq!(default_holdout(Layout::Stare, 1), 0);
    }
}
