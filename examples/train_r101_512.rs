//! The original experiment DeepLabV3-ResNet101 at 512×512: Adam lr 1e-4, batch 2, 100 epochs,
//! hflip + rotate ±50°. Extra arguments pass through to `retina-seg train`, e.g.
//! `cargo run --release --example train_r101_512 -- --data data/DRIVE_train_val_split`. They start from
//! torchvision's COCO weights, found in (or downloaded into) the torch hub cache; `--weights none`
//! trains from scratch.

fn main() -> std::process::ExitCode {
    retina_seg::cli::train_preset("r101-512")
}
