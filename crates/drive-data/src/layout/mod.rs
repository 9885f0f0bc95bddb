//! The folder layouts of the public retinal vessel datasets, as their downloads unpack, and the
//! pairing of images with their masks by the id in the file names (never by sort order; ids per
//! dataset in [`ids`]).
//!
//! **DRIVE, Kaggle split** (the original tutorial's "DRIVE train/validation split"):
//! ```text
//! <root>/train_images/  train_masks/  valid_images/  valid_masks/  test_images/  [test_masks/]
//!        [train_fov/  valid_fov/  test_fov/]      optional FOV masks, else derived from the images
//! ```
//! **DRIVE**, the original archive (565×584):
//! ```text
//! <root>/training/images/21_training.tif  1st_manual/21_manual1.gif  mask/21_training_mask.gif
//! <root>/test/images/01_test.tif  [1st_manual/01_manual1.gif  2nd_manual/01_manual2.gif  mask/01_test_mask.gif]
//! ```
//! **STARE** (20 labelled images, 700×605; no FOV masks):
//! ```text
//! <root>/stare-images/im0001.ppm.gz  labels-ah/im0001.ah.ppm.gz  [labels-vk/im0001.vk.ppm.gz]
//! ```
//! (also unzipped: `im0001.ppm`, `im0001.ah.ppm`.)
//!
//! **CHASE_DB1** (28 images, 999×960, one folder; no FOV masks):
//! ```text
//! <root>/Image_01L.jpg  Image_01L_1stHO.png  Image_01L_2ndHO.png  Image_01R.jpg  …
//! ```
//! **HRF** (45 images, 3504×2336: 15 healthy `_h`, 15 diabetic retinopathy `_dr`, 15 glaucoma `_g`):
//! ```text
//! <root>/images/01_h.jpg  01_dr.JPG  …  manual1/01_h.tif  mask/01_h_mask.tif
//! ```
//! **FIVES** (800 images, 2048×2048; no FOV masks):
//! ```text
//! <root>/train/Original/1_A.png  train/Ground truth/1_A.png  test/Original/…  test/Ground truth/…
//! ```
//! (`Ground truth`, `GroundTruth`, `ground_truth` are all accepted: the archive is not
//! consistent.)
//!
//! Where a dataset has no FOV masks they are derived from the images ([`crate::fov`]). Which
//! images train, validate and test: [`scheme`].

pub mod ids;
mod listing;
pub mod scheme;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::decode::IMAGE_EXTENSIONS;
use crate::error::{DataError, Result};
pub use ids::numeric_id;
use listing::{find_folder, list, pair, Listing, Naming};
pub use scheme::{default_holdout, Observer, SplitScheme};

/// Folder layout of a dataset: which dataset, as its download unpacks (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// DRIVE as the tutorial's Kaggle split: `train_images/`, `train_masks/`, `valid_images/`, ….
    Kaggle,
    /// DRIVE's original archive: `training/`, `test/` with `images/`, `1st_manual/`, `mask/`.
    Drive,
    /// STARE: `stare-images/`, `labels-ah/`, `labels-vk/`.
    Stare,
    /// CHASE_DB1: `Image_01L.jpg`, `Image_01L_1stHO.png`, … in one folder.
    Chase,
    /// HRF: `images/`, `manual1/`, `mask/`.
    Hrf,
    /// FIVES: `train/` and `test/`, each with `Original/` and `Ground truth/`.
    Fives,
}

impl Layout {
    /// Every layout, in the order of the module docs.
    pub const ALL: [Layout; 6] = [
        Self::Kaggle,
        Self::Drive,
        Self::Stare,
        Self::Chase,
        Self::Hrf,
        Self::Fives,
    ];

    /// The name used on the command line and in files (`chase`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Kaggle => "kaggle",
            Self::Drive => "drive",
            Self::Stare => "stare",
            Self::Chase => "chase",
            Self::Hrf => "hrf",
            Self::Fives => "fives",
        }
    }

    /// The dataset's published name (`CHASE_DB1`).
    pub fn dataset(self) -> &'static str {
        match self {
            Self::Kaggle => "DRIVE (Kaggle split)",
            Self::Drive => "DRIVE",
            Self::Stare => "STARE",
            Self::Chase => "CHASE_DB1",
            Self::Hrf => "HRF",
            Self::Fives => "FIVES",
        }
    }

    /// Width and height of the dataset's images.
    pub fn native_size(self) -> [u32; 2] {
        match self {
            Self::Kaggle | Self::Drive => [565, 584],
            Self::Stare => [700, 605],
            Self::Chase => [999, 960],
            Self::Hrf => [3504, 2336],
            Self::Fives => [2048, 2048],
        }
    }

    /// The split schemes of this dataset, its default first.
    pub fn schemes(self) -> &'static [SplitScheme] {
        match self {
            Self::Kaggle | Self::Drive | Self::Fives => &[SplitScheme::Folders],
            Self::Stare => &[SplitScheme::StareHalves],
            Self::Chase => &[SplitScheme::ChaseTwentyEight, SplitScheme::ChaseEightTwenty],
            Self::Hrf => &[SplitScheme::HrfFivePerClass],
        }
    }

    /// The dataset's usual split scheme.
    pub fn default_scheme(self) -> SplitScheme {
        self.schemes()[0]
    }

    /// Whether the dataset has a second observer's labels.
    pub fn has_second_observer(self) -> bool {
        matches!(self, Self::Drive | Self::Stare | Self::Chase)
    }

    /// The layout `root` is in, from the folders and files it holds; `None` when none matches.
    pub fn detect(root: &Path) -> Option<Layout> {
        let dir = |name: &str| root.join(name).is_dir();
        if dir("train_images") {
            Some(Self::Kaggle)
        } else if dir("training") {
            Some(Self::Drive)
        } else if dir("stare-images") {
            Some(Self::Stare)
        } else if dir("images") && dir("manual1") {
            Some(Self::Hrf)
        } else if ["train", "test"]
            .iter()
            .any(|s| find_folder(&root.join(s), &["original"]).is_some())
        {
            Some(Self::Fives)
        } else if std::fs::read_dir(root)
            .ok()?
            .filter_map(|e| e.ok())
            .any(|e| is_chase_image(&e.file_name().to_string_lossy()))
        {
            Some(Self::Chase)
        } else {
            None
        }
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let lower = s.to_ascii_lowercase();
        let lower = match lower.as_str() {
            "chase_db1" | "chasedb1" => "chase",
            other => other,
        };
        Self::ALL
            .into_iter()
            .find(|l| l.name() == lower)
            .ok_or_else(|| {
                format!("unknown layout `{s}` (kaggle, drive, stare, chase, hrf or fives)")
            })
    }
}

/// A dataset split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    /// Training images.
    Train,
    /// Validation images.
    Valid,
    /// Test images.
    Test,
}

impl Split {
    /// The three splits, in this order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Valid, Split::Test];
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Train => "train",
            Self::Valid => "valid",
            Self::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "train" | "training" => Ok(Self::Train),
            "valid" | "val" | "validation" => Ok(Self::Valid),
            "test" => Ok(Self::Test),
            other => Err(format!("unknown split `{other}` (train, valid or test)")),
        }
    }
}

/// One image and the files of its masks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The image's id in its dataset (`21` for DRIVE's `21_training.tif`; see [`ids`]).
    pub id: u32,
    /// The fundus image.
    pub image: PathBuf,
    /// Vessel ground truth (the chosen observer's), when the split has it.
    pub vessels: Option<PathBuf>,
    /// FOV mask, when the dataset has one; otherwise derived from the image.
    pub fov: Option<PathBuf>,
}

/// Whether a file name is a CHASE_DB1 image (`Image_01L.jpg`, any case), not a label.
fn is_chase_image(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let Some((stem, ext)) = lower.rsplit_once('.') else {
        return false;
    };
    if !IMAGE_EXTENSIONS.contains(&ext) {
        return false;
    }
    let Some(rest) = stem.strip_prefix("image_") else {
        return false;
    };
    let digits = rest.trim_end_matches(['l', 'r']);
    rest.len() == digits.len() + 1
        && !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
}

/// A dataset folder in one of the layouts, with the split scheme, observer and validation
/// hold-out it is read with.
#[derive(Debug, Clone)]
pub struct DatasetDir {
    /// The dataset folder.
    pub root: PathBuf,
    /// Which layout (dataset) it is in.
    pub layout: Layout,
    /// How many training images form the validation split; `None`: the layout's default
    /// ([`default_holdout`]: DRIVE's [`DEFAULT_HOLDOUT`], 20% elsewhere, none for the Kaggle
    /// split, which has its own folder).
    pub holdout: Option<usize>,
    /// Which images train and which test.
    pub scheme: SplitScheme,
    /// Whose labels are the ground truth.
    pub observer: Observer,
}

/// Default number of DRIVE training images held out for validation (4 of 20).
pub const DEFAULT_HOLDOUT: usize = 4;

impl DatasetDir {
    /// Opens `root`, detecting its layout ([`Layout::detect`]), with the layout's default split
    /// scheme, the first observer and the default hold-out.
    pub fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        Self::check_root(&root)?;
        let layout =
            Layout::detect(&root).ok_or(DataError::UnknownLayout { root: root.clone() })?;
        Ok(Self::new(root, layout))
    }

    /// Opens `root` as `layout`, without detecting (its folders are checked when listed).
    pub fn open_as(root: impl AsRef<Path>, layout: Layout) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        Self::check_root(&root)?;
        Ok(Self::new(root, layout))
    }

    fn check_root(root: &Path) -> Result<()> {
        if root.is_dir() {
            Ok(())
        } else {
            Err(DataError::MissingFolder {
                path: root.to_path_buf(),
                what: "dataset root".into(),
            })
        }
    }

    fn new(root: PathBuf, layout: Layout) -> Self {
        Self {
            root,
            layout,
            holdout: None,
            scheme: layout.default_scheme(),
            observer: Observer::First,
        }
    }

    /// Sets how many training images form the validation split (not for the Kaggle split,
    /// whose validation images are a folder of their own).
    pub fn with_holdout(mut self, holdout: usize) -> Self {
        self.holdout = Some(holdout);
        self
    }

    /// Sets the split scheme; one of another dataset is an error listing this one's.
    pub fn with_scheme(mut self, scheme: SplitScheme) -> Result<Self> {
        if !scheme.applies_to(self.layout) {
            let names: Vec<&str> = self.layout.schemes().iter().map(|s| s.name()).collect();
            return Err(DataError::Setting {
                root: self.root,
                reason: format!(
                    "split scheme {scheme} is not one of {}'s ({})",
                    self.layout.dataset(),
                    names.join(", ")
                ),
            });
        }
        self.scheme = scheme;
        Ok(self)
    }

    /// Sets whose labels are the ground truth; the second observer of a dataset that has none
    /// is an error.
    pub fn with_observer(mut self, observer: Observer) -> Result<Self> {
        if observer == Observer::Second && !self.layout.has_second_observer() {
            return Err(DataError::Setting {
                root: self.root,
                reason: format!(
                    "{} has one observer's labels; a second exists for DRIVE (test images), \
                     STARE and CHASE_DB1",
                    self.layout.dataset()
                ),
            });
        }
        self.observer = observer;
        Ok(self)
    }

    /// One line on what is read: dataset, layout, split scheme, observer.
    pub fn describe(&self) -> String {
        let observer = match (self.layout, self.observer) {
            (Layout::Stare, Observer::First) => "labels-ah (first observer)",
            (Layout::Stare, Observer::Second) => "labels-vk (second observer)",
            (Layout::Chase, Observer::First) => "_1stHO (first observer)",
            (Layout::Chase, Observer::Second) => "_2ndHO (second observer)",
            (Layout::Drive, Observer::First) => "1st_manual (first observer)",
            (Layout::Drive, Observer::Second) => "2nd_manual (second observer)",
            _ => "the dataset's labels",
        };
        format!(
            "{} ({} layout), split scheme {}, ground truth {observer}",
            self.layout.dataset(),
            self.layout,
            self.scheme
        )
    }

    /// Whether the split has images: its folder exists, or (one-folder datasets) the split
    /// scheme gives it images.
    pub fn has_split(&self, split: Split) -> bool {
        match self.layout {
            Layout::Kaggle => self.root.join(format!("{split}_images")).is_dir(),
            Layout::Drive => self
                .root
                .join(if split == Split::Test {
                    "test"
                } else {
                    "training"
                })
                .join("images")
                .is_dir(),
            Layout::Fives => {
                let dir = self.root.join(if split == Split::Test {
                    "test"
                } else {
                    "train"
                });
                find_folder(&dir, &["original"]).is_some()
            }
            Layout::Stare | Layout::Chase | Layout::Hrf => {
                // An unreadable folder "has" the split: listing it reports why.
                split != Split::Test || self.entries(Split::Test).map_or(true, |e| !e.is_empty())
            }
        }
    }

    /// The split's images paired with their masks by id, in id order.
    pub fn entries(&self, split: Split) -> Result<Vec<Entry>> {
        let train = match (self.layout, split) {
            (Layout::Kaggle, _) => return self.kaggle(split),
            (Layout::Drive | Layout::Fives, Split::Test) => return self.test_folder(),
            (Layout::Drive | Layout::Fives, _) => self.training_folder()?,
            (_, _) => {
                let (train, test) = self.scheme.partition(self.one_folder()?);
                if split == Split::Test {
                    return Ok(test);
                }
                train
            }
        };
        let n = train.len();
        let k = self
            .holdout
            .unwrap_or_else(|| default_holdout(self.layout, n));
        if k >= n {
            return Err(DataError::Invalid {
                path: self.root.clone(),
                reason: format!(
                    "{n} training images cannot give {k} held-out validation images and a \
                     training set; lower the hold-out"
                ),
            });
        }
        let (train, valid) = scheme::carve(self.layout, train, k);
        Ok(if split == Split::Valid { valid } else { train })
    }

    fn kaggle(&self, split: Split) -> Result<Vec<Entry>> {
        let folder = |kind: &str| self.root.join(format!("{split}_{kind}"));
        let images = list(&folder("images"), &drive_naming(&format!("{split} images")))?;
        let vessels = folder("masks");
        let vessels = (split != Split::Test || vessels.is_dir())
            .then(|| list(&vessels, &drive_naming(&format!("{split} vessel masks"))))
            .transpose()?;
        let fov = optional(&folder("fov"), &drive_naming(&format!("{split} FOV masks")))?;
        pair(images, vessels, fov)
    }

    fn training_folder(&self) -> Result<Vec<Entry>> {
        match self.layout {
            Layout::Drive => self.drive_folder("training", true),
            _ => self.fives_folder("train", true),
        }
    }

    fn test_folder(&self) -> Result<Vec<Entry>> {
        match self.layout {
            Layout::Drive => self.drive_folder("test", false),
            _ => self.fives_folder("test", false),
        }
    }

    fn drive_folder(&self, part: &str, labelled: bool) -> Result<Vec<Entry>> {
        let dir = self.root.join(part);
        let images = list(
            &dir.join("images"),
            &drive_naming(&format!("{part} images")),
        )?;
        let second = self.observer == Observer::Second;
        if second && labelled {
            return Err(DataError::Setting {
                root: self.root.clone(),
                reason: "DRIVE's second observer annotated the test images only \
                         (test/2nd_manual/): train with the first observer's labels"
                    .into(),
            });
        }
        let vessels = dir.join(if second { "2nd_manual" } else { "1st_manual" });
        let vessels = (labelled || second || vessels.is_dir())
            .then(|| list(&vessels, &drive_naming(&format!("{part} vessel masks"))))
            .transpose()?;
        let fov = optional(
            &dir.join("mask"),
            &drive_naming(&format!("{part} FOV masks")),
        )?;
        pair(images, vessels, fov)
    }

    fn fives_folder(&self, part: &str, labelled: bool) -> Result<Vec<Entry>> {
        let dir = self.root.join(part);
        let expected = "FIVES names look like `1_A.png`";
        let images = find_folder(&dir, &["original"]).ok_or_else(|| DataError::MissingFolder {
            path: dir.join("Original"),
            what: format!("FIVES {part} images"),
        })?;
        let images = list(
            &images,
            &numbered(&format!("FIVES {part} images"), expected),
        )?;
        let labels = find_folder(&dir, &["groundtruth"]);
        let vessels = match labels {
            Some(folder) => Some(list(
                &folder,
                &numbered(&format!("FIVES {part} labels"), expected),
            )?),
            None if labelled => {
                return Err(DataError::MissingFolder {
                    path: dir.join("Ground truth"),
                    what: format!("FIVES {part} labels (`Ground truth` or `GroundTruth`)"),
                })
            }
            None => None,
        };
        pair(images, vessels, None)
    }

    /// STARE, CHASE_DB1, HRF: every image of the dataset (the scheme splits them).
    fn one_folder(&self) -> Result<Vec<Entry>> {
        match self.layout {
            Layout::Stare => self.stare(),
            Layout::Chase => self.chase(),
            _ => self.hrf(),
        }
    }

    fn stare(&self) -> Result<Vec<Entry>> {
        let expected = "STARE names look like `im0001.ppm.gz` and `im0001.ah.ppm.gz`";
        let images = list(
            &self.root.join("stare-images"),
            &numbered("STARE images", expected),
        )?;
        let (folder, own, other) = match self.observer {
            Observer::First => ("labels-ah", ".ah.", ".vk."),
            Observer::Second => ("labels-vk", ".vk.", ".ah."),
        };
        let folder = self.root.join(folder);
        // The other observer's labels in this folder: refused before anything is paired.
        let others = |name: &str| {
            let name = name.to_ascii_lowercase();
            name.contains(other) && !name.contains(own)
        };
        let stray = std::fs::read_dir(&folder)
            .map_err(|e| DataError::io(&folder, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.file_name().is_some_and(|n| others(&n.to_string_lossy())))
            .min();
        if let Some(path) = stray {
            return Err(self.mixed(&folder, &path));
        }
        let labels = list(&folder, &numbered("STARE labels", expected))?;
        pair(images, Some(labels), None)
    }

    fn chase(&self) -> Result<Vec<Entry>> {
        let expected = "CHASE_DB1 names look like `Image_01L.jpg` and `Image_01L_1stHO.png`";
        let id = |p: &Path| Layout::Chase.id_of(p);
        let images = list(
            &self.root,
            &Naming {
                what: "CHASE_DB1 images",
                select: &is_chase_image,
                id: &id,
                expected,
            },
        )?;
        let labels = |suffix: &'static str| {
            let select = move |name: &str| {
                name.rsplit_once('.')
                    .is_some_and(|(stem, _)| stem.to_ascii_lowercase().ends_with(suffix))
            };
            list(
                &self.root,
                &Naming {
                    what: "CHASE_DB1 labels",
                    select: &select,
                    id: &id,
                    expected,
                },
            )
        };
        let (own, other) = match self.observer {
            Observer::First => ("_1stho", "_2ndho"),
            Observer::Second => ("_2ndho", "_1stho"),
        };
        let labels_own = labels(own)?;
        let labels_other = labels(other)?;
        // An image labelled by the other observer only: the folder mixes the two.
        if let Some(path) = images
            .files
            .keys()
            .find(|id| !labels_own.files.contains_key(id))
            .and_then(|id| labels_other.files.get(id))
        {
            return Err(self.mixed(&self.root, path));
        }
        pair(images, Some(labels_own), None)
    }

    fn hrf(&self) -> Result<Vec<Entry>> {
        let expected = "HRF names look like `01_h.jpg`, `01_dr.JPG`, `01_g.jpg` \
                        (manual1/01_h.tif, mask/01_h_mask.tif)";
        let id = |p: &Path| Layout::Hrf.id_of(p);
        let naming = |what| Naming {
            what,
            select: &|_| true,
            id: &id,
            expected,
        };
        let images = list(&self.root.join("images"), &naming("HRF images"))?;
        let vessels = list(&self.root.join("manual1"), &naming("HRF labels"))?;
        let fov = optional(&self.root.join("mask"), &naming("HRF FOV masks"))?;
        pair(images, Some(vessels), fov)
    }

    fn mixed(&self, folder: &Path, path: &Path) -> DataError {
        let (found, expected) = match self.observer {
            Observer::First => ("second", "first"),
            Observer::Second => ("first", "second"),
        };
        DataError::MixedObservers {
            folder: folder.to_path_buf(),
            path: path.to_path_buf(),
            found,
            expected,
        }
    }
}

/// DRIVE's naming (both layouts): the first number is the id.
fn drive_naming(what: &str) -> Naming<'_> {
    numbered(what, "DRIVE names look like `21_training.tif`")
}

/// Every image file of the folder, the first number its id.
fn numbered<'a>(what: &'a str, expected: &'a str) -> Naming<'a> {
    Naming {
        what,
        select: &|_| true,
        id: &numeric_id,
        expected,
    }
}

/// A folder listed when it exists.
fn optional(dir: &Path, naming: &Naming) -> Result<Option<Listing>> {
    dir.is_dir().then(|| list(dir, naming)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chase_images_are_told_from_labels() {
        assert!(is_chase_image("Image_01L.jpg"));
        assert!(is_chase_image("image_14r.JPG"));
        assert!(!is_chase_image("Image_01L_1stHO.png"));
        assert!(!is_chase_image("Image_01.jpg"));
        assert!(!is_chase_image("Image_01L.txt"));
    }

    #[test]
    fn layouts_parse_by_name() {
        for layout in Layout::ALL {
            assert_eq!(layout.name().parse::<Layout>(), Ok(layout));
        }
        assert_eq!("CHASE_DB1".parse::<Layout>(), Ok(Layout::Chase));
        assert!("messidor".parse::<Layout>().is_err());
    }
}
