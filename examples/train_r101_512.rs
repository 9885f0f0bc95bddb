//! The original experiment DeepLabV3-ResNet101 at 512×512: Adam lr 1e-4, batch 2, 100 epochs,
//! hflip + rotate ±50°. Extra arguments pass through to `retina-seg train`, e.g.
//! `cargo run --release --example train_r101_512 -- --data data/DRIVE_train_val_split --weights deeplabv3_resnet101_coco-586e9e4e.pth`.

fn main() -> std::process::ExitCode {
    retina_seg::cli::train_preset("r101-512")
}
