//! The model as training and prediction share it: the network with its training loss
//! ([`SegModel`], [`loss`]), the checkpoints it is stored in ([`checkpoint`]), the reference
//! libraries' files it is read from and written to ([`pytorch`]: torchvision and SMP
//! state_dicts, SMP's `save_pretrained` folder), its fingerprint ([`fingerprint`]) and the
//! sliding window a checkpoint records ([`tiling`]). Uses [`crate::metrics`] and [`crate::error`];
//! prediction, evaluation and training build on it.

pub mod checkpoint;
pub mod fingerprint;
pub mod loss;
pub mod pytorch;
pub mod seg_model;
pub mod tiling;
pub mod topology_loss;

pub use seg_model::{confusion_counts, SegModel, SegOutput};
pub use tiling::{crop_tiling, Tiling, Window};
