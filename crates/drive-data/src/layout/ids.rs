//! Image ids from file names, per dataset. An id identifies an image within its dataset (within
//! one split folder for FIVES, whose train and test folders both count from 1); its masks, and
//! the prediction files `predict` writes for it (`<stem>_prob.png`, …), carry the same id.
//!
//! | layout | image | id |
//! |---|---|---|
//! | DRIVE, Kaggle | `21_training.tif` | 21 (the first number) |
//! | STARE | `im0044.ppm.gz` | 44 |
//! | CHASE_DB1 | `Image_07L.jpg`, `Image_07R.jpg` | 13, 14 (2·n − 1 for the left eye, 2·n for the right) |
//! | HRF | `03_h.jpg`, `03_dr.JPG`, `03_g.jpg` | 7, 8, 9 ((n − 1)·3 + 1, 2, 3 for healthy, diabetic retinopathy, glaucoma) |
//! | FIVES | `12_D.png` | 12 |

use std::path::Path;

use super::Layout;

/// The numeric id of a file: the first run of digits in its stem (`01_test` → 1).
pub fn numeric_id(path: &Path) -> Option<u32> {
    let stem = path.file_stem()?.to_string_lossy();
    first_number(&stem).map(|(n, _)| n)
}

/// The first run of digits of `text` and what follows it.
fn first_number(text: &str) -> Option<(u32, &str)> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    Some((rest[..end].parse().ok()?, &rest[end..]))
}

/// HRF's three groups of 15 images, in id order: healthy, diabetic retinopathy, glaucoma.
pub const HRF_GROUPS: [&str; 3] = ["h", "dr", "g"];

impl Layout {
    /// The id of an image, mask or prediction file of this dataset (see the module docs), or
    /// `None` when the name does not follow the dataset's naming.
    pub fn id_of(self, path: &Path) -> Option<u32> {
        let stem = path.file_stem()?.to_string_lossy();
        let (n, rest) = first_number(&stem)?;
        match self {
            Self::Kaggle | Self::Drive | Self::Stare | Self::Fives => Some(n),
            Self::Chase => {
                let eye = match rest.chars().next()?.to_ascii_uppercase() {
                    'L' => 1,
                    'R' => 0,
                    _ => return None,
                };
                (n >= 1)
                    .then(|| n.checked_mul(2).map(|m| m - eye))
                    .flatten()
            }
            Self::Hrf => {
                let group = rest.strip_prefix('_')?;
                let group = group.split(['_', '.']).next()?.to_ascii_lowercase();
                let k = HRF_GROUPS.iter().position(|g| *g == group)? as u32;
                (n >= 1)
                    .then(|| (n - 1).checked_mul(3)?.checked_add(k + 1))
                    .flatten()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_come_from_the_first_number() {
        assert_eq!(numeric_id(Path::new("a/21_training.tif")), Some(21));
        assert_eq!(numeric_id(Path::new("01_test_mask.gif")), Some(1));
        assert_eq!(numeric_id(Path::new("img-007.png")), Some(7));
        assert_eq!(numeric_id(Path::new("manual.gif")), None);
    }

    #[test]
    fn each_dataset_numbers_its_images_as_documented() {
        let id = |layout: Layout, name: &str| layout.id_of(Path::new(name));
        assert_eq!(id(Layout::Stare, "im0044.ppm.gz"), Some(44));
        assert_eq!(id(Layout::Stare, "im0044.ah.ppm"), Some(44));
        assert_eq!(id(Layout::Chase, "Image_07L.jpg"), Some(13));
        assert_eq!(id(Layout::Chase, "Image_07R_2ndHO.png"), Some(14));
        assert_eq!(id(Layout::Chase, "Image_07R_prob.png"), Some(14));
        assert_eq!(id(Layout::Chase, "Image_07.jpg"), None);
        assert_eq!(id(Layout::Hrf, "03_h.jpg"), Some(7));
        assert_eq!(id(Layout::Hrf, "03_dr.JPG"), Some(8));
        assert_eq!(id(Layout::Hrf, "03_g_mask.tif"), Some(9));
        assert_eq!(id(Layout::Hrf, "03_G_prob.png"), Some(9));
        assert_eq!(id(Layout::Hrf, "03_x.jpg"), None);
        assert_eq!(id(Layout::Hrf, "00_h.jpg"), None);
        assert_eq!(id(Layout::Chase, "Image_00L.jpg"), None);
        assert_eq!(id(Layout::Chase, "Image_4000000000L.jpg"), None);
        assert_eq!(id(Layout::Hrf, "4000000000_g.jpg"), None);
        assert_eq!(id(Layout::Fives, "12_D.png"), Some(12));
        assert_eq!(id(Layout::Drive, "21_manual1.gif"), Some(21));
    }
}
