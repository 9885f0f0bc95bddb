//! Where each image of a synthetic set is written: the names, folders and formats each
//! dataset's download uses (see [`crate::layout`]).

use std::path::{Path, PathBuf};

use crate::layout::ids::HRF_GROUPS;
use crate::layout::{Layout, Split};

/// STARE's 20 labelled images, by id (`im0001` … `im0324`); a larger synthetic set continues at
/// 400.
pub const STARE_IDS: [u32; 20] = [
    1, 2, 3, 4, 5, 44, 77, 81, 82, 139, 162, 163, 235, 236, 239, 240, 255, 291, 319, 324,
];

/// FIVES's four groups (AMD, diabetic retinopathy, glaucoma, normal); in a synthetic set the
/// groups take turns by id.
pub const FIVES_GROUPS: [&str; 4] = ["A", "D", "G", "N"];

/// The files of one image of a synthetic set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthFiles {
    /// The fundus image.
    pub image: PathBuf,
    /// The first observer's vessel labels.
    pub vessels: PathBuf,
    /// The second observer's, where the dataset has them (STARE, CHASE_DB1, DRIVE's test
    /// images).
    pub second: Option<PathBuf>,
    /// The FOV mask, where the dataset ships one (DRIVE, HRF).
    pub fov: Option<PathBuf>,
}

/// The files of image `id` of `split` in a set written under `out` in `layout`. STARE, CHASE_DB1
/// and HRF keep every image in one place (the split scheme divides them when reading): `split`
/// does not change their names.
pub fn file_paths(out: &Path, layout: Layout, split: Split, id: u32) -> SynthFiles {
    let kind = if split == Split::Test {
        "test"
    } else {
        "training"
    };
    let base = format!("{id:02}_{kind}");
    let manual = format!("{id:02}_manual1");
    match layout {
        Layout::Drive => {
            let dir = out.join(kind);
            SynthFiles {
                image: dir.join("images").join(format!("{base}.tif")),
                vessels: dir.join("1st_manual").join(format!("{manual}.gif")),
                second: (split == Split::Test)
                    .then(|| dir.join("2nd_manual").join(format!("{id:02}_manual2.gif"))),
                fov: Some(dir.join("mask").join(format!("{base}_mask.gif"))),
            }
        }
        // The Kaggle split has no FOV masks: they are derived from the images when loading.
        Layout::Kaggle => SynthFiles {
            image: out
                .join(format!("{split}_images"))
                .join(format!("{base}.png")),
            vessels: out
                .join(format!("{split}_masks"))
                .join(format!("{manual}.png")),
            second: None,
            fov: None,
        },
        Layout::Stare => SynthFiles {
            image: out.join("stare-images").join(format!("im{id:04}.ppm.gz")),
            vessels: out.join("labels-ah").join(format!("im{id:04}.ah.ppm.gz")),
            second: Some(out.join("labels-vk").join(format!("im{id:04}.vk.ppm.gz"))),
            fov: None,
        },
        Layout::Chase => {
            let stem = format!(
                "Image_{:02}{}",
                id.div_ceil(2),
                if id % 2 == 1 { "L" } else { "R" }
            );
            SynthFiles {
                image: out.join(format!("{stem}.jpg")),
                vessels: out.join(format!("{stem}_1stHO.png")),
                second: Some(out.join(format!("{stem}_2ndHO.png"))),
                fov: None,
            }
        }
        Layout::Hrf => {
            let group = HRF_GROUPS[(id as usize - 1) % 3];
            let stem = format!("{:02}_{group}", (id - 1) / 3 + 1);
            // As in the download: `01_dr.JPG` beside `01_h.jpg`.
            let ext = if group == "dr" { "JPG" } else { "jpg" };
            SynthFiles {
                image: out.join("images").join(format!("{stem}.{ext}")),
                vessels: out.join("manual1").join(format!("{stem}.tif")),
                second: None,
                fov: Some(out.join("mask").join(format!("{stem}_mask.tif"))),
            }
        }
        Layout::Fives => {
            let part = out.join(if split == Split::Test {
                "test"
            } else {
                "train"
            });
            let name = format!("{id}_{}.png", FIVES_GROUPS[(id as usize - 1) % 4]);
            SynthFiles {
                image: part.join("Original").join(&name),
                vessels: part.join("Ground truth").join(&name),
                second: None,
                fov: None,
            }
        }
    }
}
