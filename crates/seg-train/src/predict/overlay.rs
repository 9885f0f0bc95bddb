//! Prediction overlays on the fundus image: true positives green, false positives red, missed
//! vessels blue (with ground truth), or predicted vessels green (without); outside the FOV the
//! fundus as is.

use image::{GrayImage, RgbImage};

/// Prediction over the fundus: true positives green, false positives red, missed vessels blue
/// (with ground truth); without ground truth the prediction in green. Outside the FOV the
/// fundus is shown as is.
pub fn overlay(
    fundus: &RgbImage,
    prediction: &GrayImage,
    truth: Option<&GrayImage>,
    fov: Option<&GrayImage>,
) -> RgbImage {
    let mut out = fundus.clone();
    for (x, y, p) in out.enumerate_pixels_mut() {
        if fov.is_some_and(|f| f.get_pixel(x, y).0[0] == 0) {
            continue;
        }
        let pred = prediction.get_pixel(x, y).0[0] != 0;
        let colour = match (pred, truth.map(|t| t.get_pixel(x, y).0[0] != 0)) {
            (true, Some(true)) | (true, None) => Some([0u8, 230, 0]),
            (true, Some(false)) => Some([255, 40, 40]),
            (false, Some(true)) => Some([40, 120, 255]),
            _ => None,
        };
        if let Some(c) = colour {
            for k in 0..3 {
                p.0[k] = ((p.0[k] as u16 * 2 + c[k] as u16 * 3) / 5) as u8;
            }
        }
    }
    out
}
