//! Resize and augmentation as one geometric warp per sample: every output pixel is mapped back to
//! the original image (resize ∘ flips ∘ zoom ∘ rotation, reflect-101 border), the image sampled
//! bilinearly and the masks by nearest neighbour at the same point, so image and masks stay aligned.
//! Photometric jitter and normalisation are folded into per-channel look-up tables.

use serde::{Deserialize, Serialize};

use crate::normalize::Normalization;
use crate::rng::Rng;
use crate::sample::Sample;

/// Random augmentation settings (probabilities and ranges). [`AugmentConfig::recipe`] is the
/// original experiments': horizontal flip p = 0.5, rotation ±50° p = 0.5, reflect border.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AugmentConfig {
    /// Probability of a horizontal flip.
    pub hflip: f64,
    /// Probability of a vertical flip.
    pub vflip: f64,
    /// Probability of a rotation.
    pub rotate: f64,
    /// Rotation angle limit in degrees (uniform in ±limit).
    pub rotate_limit: f64,
    /// Brightness shift range (± on the [0, 1] scale); 0 disables.
    pub brightness: f64,
    /// Contrast factor range (1 ± contrast); 0 disables.
    pub contrast: f64,
    /// Gamma range (exp(± gamma)); 0 disables.
    pub gamma: f64,
    /// Random scale-crop: zoom factor range `[min, max]` with a random centre; `None` disables.
    pub scale_crop: Option<[f64; 2]>,
}

impl AugmentConfig {
    /// The original recipe: hflip p = 0.5, rotate ±50° p = 0.5 with reflect border.
    pub fn recipe() -> Self {
        Self {
            hflip: 0.5,
            vflip: 0.0,
            rotate: 0.5,
            rotate_limit: 50.0,
            brightness: 0.0,
            contrast: 0.0,
            gamma: 0.0,
            scale_crop: None,
        }
    }

    /// No augmentation.
    pub fn none() -> Self {
        Self {
            hflip: 0.0,
            rotate: 0.0,
            ..Self::recipe()
        }
    }

    /// The recipe plus vertical flips, photometric jitter and scale-crop.
    pub fn strong() -> Self {
        Self {
            vflip: 0.5,
            brightness: 0.1,
            contrast: 0.2,
            gamma: 0.2,
            scale_crop: Some([0.8, 1.25]),
            ..Self::recipe()
        }
    }

    /// Draws the parameters for one sample.
    pub fn draw(&self, rng: &mut Rng) -> AugmentParams {
        // Draw every value unconditionally so each parameter's stream does not depend on the others.
        let hflip = rng.chance(self.hflip);
        let vflip = rng.chance(self.vflip);
        let rotate = rng.chance(self.rotate);
        let angle = rng.range(-self.rotate_limit, self.rotate_limit);
        let brightness = rng.range(-self.brightness, self.brightness);
        let contrast = 1.0 + rng.range(-self.contrast, self.contrast);
        let gamma = rng.range(-self.gamma, self.gamma).exp();
        let (zoom, centre) = match self.scale_crop {
            Some([lo, hi]) => {
                let zoom = rng.range(lo.ln(), hi.ln()).exp();
                // Keep the crop window inside the image when zooming in.
                let slack = (1.0 - 1.0 / zoom).max(0.0) / 2.0;
                (
                    zoom,
                    [
                        0.5 + rng.range(-slack, slack),
                        0.5 + rng.range(-slack, slack),
                    ],
                )
            }
            None => (1.0, [0.5, 0.5]),
        };
        AugmentParams {
            hflip,
            vflip,
            angle_deg: if rotate { angle } else { 0.0 },
            zoom,
            centre,
            brightness,
            contrast,
            gamma,
        }
    }
}

/// The augmentation applied to one sample.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentParams {
    /// Mirrored left–right.
    pub hflip: bool,
    /// Mirrored top–bottom.
    pub vflip: bool,
    /// Counter-clockwise rotation about the image centre, degrees.
    pub angle_deg: f64,
    /// Zoom factor (> 1 magnifies).
    pub zoom: f64,
    /// Zoom centre as a fraction of width and height.
    pub centre: [f64; 2],
    /// Brightness offset added.
    pub brightness: f64,
    /// Contrast factor applied.
    pub contrast: f64,
    /// Gamma applied.
    pub gamma: f64,
}

impl AugmentParams {
    /// No augmentation: a plain resize.
    pub fn identity() -> Self {
        Self {
            hflip: false,
            vflip: false,
            angle_deg: 0.0,
            zoom: 1.0,
            centre: [0.5, 0.5],
            brightness: 0.0,
            contrast: 1.0,
            gamma: 1.0,
        }
    }

    fn lut(&self, norm: &Normalization, c: usize) -> [f32; 256] {
        std::array::from_fn(|v| {
            let x = v as f64 / 255.0;
            let x = ((x - 0.5) * self.contrast + 0.5 + self.brightness).clamp(0.0, 1.0);
            let x = x.powf(self.gamma);
            ((x as f32) - norm.mean[c]) / norm.std[c]
        })
    }
}

/// A warped sample: normalised CHW image and 0/1 masks, all `height × width`.
#[derive(Debug, Clone, PartialEq)]
pub struct Warped {
    /// Normalised image, `[3, H, W]` row-major.
    pub image: Vec<f32>,
    /// Vessel mask, `[H, W]`, 1 = vessel.
    pub vessels: Vec<u8>,
    /// Field-of-view mask, `[H, W]`, 1 = inside.
    pub fov: Vec<u8>,
    /// `[height, width]`.
    pub size: [usize; 2],
}

/// Reflect-101 of a continuous pixel index into `[0, n − 1]` (`…cb|abcd|cb…`).
#[inline(always)]
fn reflect101(i: f32, n: usize) -> f32 {
    let last = (n - 1) as f32;
    if (0.0..=last).contains(&i) {
        return i; // the common case: no division
    }
    if n <= 1 {
        return 0.0;
    }
    let period = 2.0 * last;
    let m = i.rem_euclid(period);
    if m > last {
        period - m
    } else {
        m
    }
}

/// Resizes `sample` to `size = [height, width]` and applies `params` (see the module docs).
pub fn warp(
    sample: &Sample,
    size: [usize; 2],
    params: &AugmentParams,
    norm: &Normalization,
) -> Warped {
    let [h, w] = size;
    warp_window(sample, size, [0, 0, w, h], params, norm)
}

/// The window `[x, y, width, height]` of what [`warp`] gives at `size`, computing only the
/// window's pixels (a random crop of the augmented image without building the whole image).
pub fn warp_window(
    sample: &Sample,
    size: [usize; 2],
    window: [usize; 4],
    params: &AugmentParams,
    norm: &Normalization,
) -> Warped {
    let [h, w] = size;
    let [wx, wy, ww, wh] = window;
    assert!(
        wx + ww <= w && wy + wh <= h,
        "window {window:?} outside the {w}×{h} image"
    );
    let (w0, h0) = (
        sample.image.width() as usize,
        sample.image.height() as usize,
    );
    let luts = [0, 1, 2].map(|c| params.lut(norm, c));

    // Output pixel index → resized-space pixel index: the inverse of
    // flip, then zoom about `centre`, then rotate about the image centre.
    let (cx, cy) = (w as f64 / 2.0, h as f64 / 2.0);
    let (sin, cos) = params.angle_deg.to_radians().sin_cos();
    let (zx, zy) = (params.centre[0] * w as f64, params.centre[1] * h as f64);
    // Map in continuous coordinates (pixel centres at +0.5), expressed as an affine map on indices.
    let map = |ox: f64, oy: f64| -> (f64, f64) {
        let (u, v) = (ox + 0.5 - cx, oy + 0.5 - cy);
        // Inverse rotation (image rotated counter-clockwise on screen, y pointing down).
        let (u, v) = (cos * u - sin * v, sin * u + cos * v);
        let (x, y) = (u + cx, v + cy);
        let (x, y) = (zx + (x - cx) / params.zoom, zy + (y - cy) / params.zoom);
        let x = if params.hflip { w as f64 - x } else { x };
        let y = if params.vflip { h as f64 - y } else { y };
        (x - 0.5, y - 0.5)
    };
    let (bx, by) = map(0.0, 0.0);
    let (ax, ay) = {
        let (x, y) = map(1.0, 0.0);
        (x - bx, y - by)
    };
    let (cxs, cys) = {
        let (x, y) = map(0.0, 1.0);
        (x - bx, y - by)
    };
    // Resized-space index → original index (half-pixel-centre resize).
    let (sx, sy) = ((w0 as f64 / w as f64) as f32, (h0 as f64 / h as f64) as f32);
    let (ox0, oy0) = (0.5 * sx - 0.5, 0.5 * sy - 0.5);

    let img = sample.image.as_raw().as_slice();
    let vessels = sample.vessels.as_ref().map(|m| m.as_raw().as_slice());
    let fov = sample.fov.as_raw().as_slice();
    let plane = wh * ww;
    let mut out_img = vec![0f32; 3 * plane];
    let mut out_vessels = vec![0u8; plane];
    let mut out_fov = vec![0u8; plane];
    let (max_x, max_y) = ((w0 - 1) as f32, (h0 - 1) as f32);
    let (ax64, ay64) = (ax, ay);
    let (ax, ay) = (ax as f32, ay as f32);
    {
        let (r, rest) = out_img.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for oy in wy..wy + wh {
            // Row start in f64 (no drift), steps in f32.
            let (rx0, ry0) = (
                (bx + cxs * oy as f64 + ax64 * wx as f64) as f32,
                (by + cys * oy as f64 + ay64 * wx as f64) as f32,
            );
            let row = (oy - wy) * ww;
            for ox in 0..ww {
                let rx = reflect101(rx0 + ax * ox as f32, w);
                let ry = reflect101(ry0 + ay * ox as f32, h);
                let fx = (rx * sx + ox0).clamp(0.0, max_x);
                let fy = (ry * sy + oy0).clamp(0.0, max_y);
                let (x0, y0) = (fx as usize, fy as usize);
                let x1 = if x0 + 1 < w0 { x0 + 1 } else { x0 };
                let y1 = if y0 + 1 < h0 { y0 + 1 } else { y0 };
                let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
                let (i00, i01, i10, i11) = (
                    3 * (y0 * w0 + x0),
                    3 * (y0 * w0 + x1),
                    3 * (y1 * w0 + x0),
                    3 * (y1 * w0 + x1),
                );
                let o = row + ox;
                let sample_channel = |c: usize| {
                    let lut = &luts[c];
                    let top = lut[img[i00 + c] as usize]
                        + (lut[img[i01 + c] as usize] - lut[img[i00 + c] as usize]) * tx;
                    let bottom = lut[img[i10 + c] as usize]
                        + (lut[img[i11 + c] as usize] - lut[img[i10 + c] as usize]) * tx;
                    top + (bottom - top) * ty
                };
                r[o] = sample_channel(0);
                g[o] = sample_channel(1);
                b[o] = sample_channel(2);
                let nearest = (fy + 0.5) as usize * w0 + (fx + 0.5) as usize;
                out_fov[o] = fov[nearest];
                if let Some(v) = vessels {
                    out_vessels[o] = v[nearest];
                }
            }
        }
    }
    Warped {
        image: out_img,
        vessels: out_vessels,
        fov: out_fov,
        size: [wh, ww],
    }
}
