//! `retina-seg`: retinal vessel segmentation with DeepLabV3 on Burn.

fn main() -> std::process::ExitCode {
    retina_seg::cli::main(std::env::args_os())
}
