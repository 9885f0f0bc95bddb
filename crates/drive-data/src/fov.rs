//! Field-of-view masks. DRIVE ships one per image; when a dataset has none, it is derived from the
//! image: a pixel is inside when its brightest channel exceeds [`FOV_THRESHOLD`] (fundus photos
//! have a near-black surround), then holes not connected to the image border are filled (dark
//! vessels or lesions inside the FOV stay inside).

use image::{GrayImage, RgbImage};

/// Brightest-channel level (of 255) above which a pixel counts as inside the field of view.
pub const FOV_THRESHOLD: u8 = 20;

/// Derives a 0/1 FOV mask from a fundus image (see the module docs).
pub fn derive_fov(image: &RgbImage) -> GrayImage {
    let (w, h) = image.dimensions();
    let inside: Vec<bool> = image
        .pixels()
        .map(|p| p.0.iter().copied().max().unwrap_or(0) > FOV_THRESHOLD)
        .collect();
    // Flood-fill the outside from the border through dark pixels; everything unreached is FOV.
    let (w, h) = (w as usize, h as usize);
    let mut outside = vec![false; w * h];
    let mut stack: Vec<usize> = Vec::new();
    for x in 0..w {
        stack.push(x);
        stack.push((h - 1) * w + x);
    }
    for y in 0..h {
        stack.push(y * w);
        stack.push(y * w + w - 1);
    }
    while let Some(i) = stack.pop() {
        if outside[i] || inside[i] {
            continue;
        }
        outside[i] = true;
        let (x, y) = (i % w, i / w);
        if x > 0 {
            stack.push(i - 1);
        }
        if x + 1 < w {
            stack.push(i + 1);
        }
        if y > 0 {
            stack.push(i - w);
        }
        if y + 1 < h {
            stack.push(i + w);
        }
    }
    let data = outside.iter().map(|&o| u8::from(!o)).collect();
    GrayImage::from_raw(w as u32, h as u32, data).expect("buffer size matches")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_fov_is_the_bright_disc_with_holes_filled() {
        let mut img = RgbImage::new(40, 30);
        for (x, y, p) in img.enumerate_pixels_mut() {
            let (dx, dy) = (x as f64 - 20.0, y as f64 - 15.0);
            if dx * dx + dy * dy < 100.0 {
                // A dark "vessel" pixel in the middle must stay inside.
                p.0 = if (x, y) == (20, 15) {
                    [5, 5, 5]
                } else {
                    [180, 90, 40]
                };
            }
        }
        let fov = derive_fov(&img);
        assert_eq!(fov.get_pixel(20, 15).0[0], 1);
        assert_eq!(fov.get_pixel(22, 15).0[0], 1);
        assert_eq!(fov.get_pixel(0, 0).0[0], 0);
        assert_eq!(fov.get_pixel(35, 15).0[0], 0);
        let area: u32 = fov.iter().map(|&v| v as u32).sum();
        assert!((290..=320).contains(&area), "{area}"); // π·10² ≈ 314
    }
}
