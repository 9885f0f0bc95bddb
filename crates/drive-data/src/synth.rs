//! Synthetic DRIVE-like retinas with exact ground truth, for tests, demos and benchmarks (DRIVE
//! itself cannot be downloaded here).
//!
//! A circular field of view on black; a fundus-coloured background with illumination fall-off, an
//! optic disc and a darker macula, plus noise; vessel trees growing from the optic disc with widths
//! tapering from ≈8 px to 1 px (at 565 px image width) and branching; the vessel fraction of the FOV
//! is drawn in `vessel_fraction` (DRIVE's range is ≈8–14%). Deterministic for a seed.

use image::{GrayImage, RgbImage};

use crate::rng::Rng;
use crate::sample::Sample;

/// Generator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Range the vessel fraction of the FOV is drawn from.
    pub vessel_fraction: [f64; 2],
}

impl Default for SynthConfig {
    /// DRIVE's size, 565 × 584.
    fn default() -> Self {
        Self {
            width: 565,
            height: 584,
            vessel_fraction: [0.09, 0.13],
        }
    }
}

/// One synthetic retina: 8-bit RGB image, 0/1 vessel mask (inside the FOV only), 0/1 FOV mask.
#[derive(Debug, Clone)]
pub struct SynthRetina {
    /// The fundus image.
    pub image: RgbImage,
    /// Ground-truth vessels (255 = vessel).
    pub vessels: GrayImage,
    /// Field-of-view mask (255 = inside).
    pub fov: GrayImage,
}

impl SynthRetina {
    /// An in-memory [`Sample`] with this retina's exact ground truth (FOV known, not derived),
    /// for training or testing without writing files.
    ///
    /// ```
    /// use drive_data::synth::generate;
    /// use drive_data::SynthConfig;
    ///
    /// let config = SynthConfig { width: 96, height: 100, ..SynthConfig::default() };
    /// let sample = generate(&config, 7).into_sample(7);
    /// assert_eq!(sample.size(), [96, 100]);
    /// assert!(sample.vessels.is_some() && !sample.fov_derived);
    /// ```
    pub fn into_sample(self, id: u32) -> Sample {
        Sample {
            id,
            image_path: format!("synthetic-{id}").into(),
            image: self.image,
            vessels: Some(self.vessels),
            fov: self.fov,
            fov_derived: false,
        }
    }

    /// Vessel pixels / FOV pixels.
    pub fn vessel_fraction(&self) -> f64 {
        let vessels: u64 = self.vessels.iter().map(|&v| v as u64).sum();
        let fov: u64 = self.fov.iter().map(|&v| v as u64).sum();
        vessels as f64 / fov.max(1) as f64
    }
}

/// A vessel segment still to grow.
#[derive(Debug, Clone, Copy)]
struct Tip {
    x: f64,
    y: f64,
    heading: f64,
    width: f64,
    curvature: f64,
    /// Steps left before the segment stops on its own.
    budget: usize,
    /// Arcade steering: follow a circle around `centre` of `radius`, turning `sense` (±1).
    steer: Option<([f64; 2], f64, f64)>,
}

struct Canvas {
    w: usize,
    h: usize,
    fov_centre: [f64; 2],
    fov_radius: f64,
    vessels: Vec<u8>,
    /// Vessel darkening in [0, 1] (max over overlapping vessels).
    shade: Vec<f32>,
    /// Centre-line points usable as branch origins: (x, y, heading, width).
    trunk_points: Vec<(f64, f64, f64, f64)>,
    scale: f64,
}

impl Canvas {
    fn inside_fov(&self, x: f64, y: f64, margin: f64) -> bool {
        let (dx, dy) = (x - self.fov_centre[0], y - self.fov_centre[1]);
        dx * dx + dy * dy < (self.fov_radius - margin).powi(2)
    }

    /// Marks a disc of diameter `width` around (x, y) (pixel-centre coordinates).
    fn stamp(&mut self, x: f64, y: f64, width: f64) {
        let r = width / 2.0;
        let reach = r + 2.0;
        let strength = (0.3 + 0.4 * (width / (8.0 * self.scale)).min(1.0)) as f32;
        let (x0, x1) = (
            (x - reach).floor().max(0.0) as usize,
            ((x + reach).ceil() as usize).min(self.w - 1),
        );
        let (y0, y1) = (
            (y - reach).floor().max(0.0) as usize,
            ((y + reach).ceil() as usize).min(self.h - 1),
        );
        for py in y0..=y1 {
            for px in x0..=x1 {
                let (dx, dy) = (px as f64 + 0.5 - x, py as f64 + 0.5 - y);
                let d = (dx * dx + dy * dy).sqrt();
                let i = py * self.w + px;
                if d <= r.max(0.6) {
                    self.vessels[i] = 1;
                }
                let profile = (-(d / (r + 0.6)).powi(2) * 1.5).exp() as f32;
                self.shade[i] = self.shade[i].max(strength * profile);
            }
        }
    }

    /// Grows a tree from `tip`, branching along the way.
    fn grow(&mut self, tip: Tip, rng: &mut Rng, branch_every: f64) {
        let mut stack = vec![tip];
        let min_width = 0.9 * self.scale;
        while let Some(mut t) = stack.pop() {
            let mut since_branch = 0.0;
            while t.budget > 0 && t.width >= min_width && self.inside_fov(t.x, t.y, 2.0) {
                t.budget -= 1;
                self.stamp(t.x, t.y, t.width);
                if t.width > 2.0 * self.scale {
                    self.trunk_points.push((t.x, t.y, t.heading, t.width));
                }
                let step = 0.5 * t.width.clamp(1.0, 2.0);
                if let Some((centre, radius, sense)) = t.steer {
                    // Tangent of the circle around the macula, corrected towards its radius.
                    let (dx, dy) = (t.x - centre[0], t.y - centre[1]);
                    let dist = (dx * dx + dy * dy).sqrt().max(1.0);
                    let tangent = dy.atan2(dx) + sense * std::f64::consts::FRAC_PI_2;
                    let desired =
                        tangent + sense * 0.8 * ((dist - radius) / radius).clamp(-0.6, 0.6);
                    let diff = (desired - t.heading + std::f64::consts::PI)
                        .rem_euclid(std::f64::consts::TAU)
                        - std::f64::consts::PI;
                    t.heading += 0.04 * diff * step;
                }
                t.heading += t.curvature * step + 0.03 * rng.normal() * step.sqrt();
                t.curvature += 0.0008 * rng.normal() / self.scale;
                t.curvature *= 0.995;
                t.x += step * t.heading.cos();
                t.y += step * t.heading.sin();
                t.width *= 1.0 - step / (420.0 * self.scale);
                since_branch += step;
                let interval = branch_every * self.scale * (0.6 + 0.8 * rng.uniform());
                if since_branch > interval && t.width > 1.6 * self.scale {
                    since_branch = 0.0;
                    let side = if rng.chance(0.5) { 1.0 } else { -1.0 };
                    let child_width = t.width * rng.range(0.55, 0.8);
                    t.width *= 0.92;
                    stack.push(Tip {
                        x: t.x,
                        y: t.y,
                        heading: t.heading + side * rng.range(30.0, 75.0).to_radians(),
                        width: child_width,
                        curvature: -side * rng.range(0.0, 0.004) / self.scale,
                        budget: (rng.range(60.0, 260.0) * self.scale) as usize,
                        steer: None,
                    });
                }
            }
        }
    }

    fn fraction(&self, fov: &[u8]) -> f64 {
        let v: usize = self
            .vessels
            .iter()
            .zip(fov)
            .filter(|(&v, &f)| v == 1 && f == 1)
            .count();
        let f: usize = fov.iter().map(|&f| f as usize).sum();
        v as f64 / f.max(1) as f64
    }
}

/// Smooth bump in [0, 1]: 1 at the centre, fading out at `radius`.
fn bump(dx: f64, dy: f64, radius: f64) -> f64 {
    (-(dx * dx + dy * dy) / (radius * radius)).exp()
}

/// Generates one retina (see the module docs).
pub fn generate(config: &SynthConfig, seed: u64) -> SynthRetina {
    let mut rng = Rng::new(seed ^ 0xD1B5_4A32_D192_ED03);
    let (w, h) = (config.width as usize, config.height as usize);
    let scale = w.min(h) as f64 / 565.0;
    let fov_radius = 0.478 * w.min(h) as f64;
    let fov_centre = [
        w as f64 / 2.0 + rng.range(-3.0, 3.0) * scale,
        h as f64 / 2.0 + rng.range(-3.0, 3.0) * scale,
    ];
    let side = if rng.chance(0.5) { 1.0 } else { -1.0 }; // left or right eye
    let disc = [
        fov_centre[0] + side * fov_radius * rng.range(0.5, 0.6),
        fov_centre[1] + fov_radius * rng.range(-0.06, 0.06),
    ];
    let disc_radius = fov_radius * rng.range(0.12, 0.15);
    let macula = [
        fov_centre[0] - side * fov_radius * rng.range(0.0, 0.1),
        fov_centre[1] + fov_radius * rng.range(-0.05, 0.05),
    ];
    let macula_radius = fov_radius * rng.range(0.13, 0.18);
    let target = rng.range(config.vessel_fraction[0], config.vessel_fraction[1]);

    let fov: Vec<u8> = (0..w * h)
        .map(|i| {
            let (dx, dy) = (
                (i % w) as f64 + 0.5 - fov_centre[0],
                (i / w) as f64 + 0.5 - fov_centre[1],
            );
            u8::from(dx * dx + dy * dy < fov_radius * fov_radius)
        })
        .collect();

    let mut canvas = Canvas {
        w,
        h,
        fov_centre,
        fov_radius,
        vessels: vec![0; w * h],
        shade: vec![0.0; w * h],
        trunk_points: Vec::new(),
        scale,
    };
    // Four main trunks: temporal arcades around the macula, and nasal vessels away from it.
    let toward_macula = (macula[1] - disc[1]).atan2(macula[0] - disc[0]);
    let arcade_radius = ((macula[0] - disc[0]).powi(2) + (macula[1] - disc[1]).powi(2)).sqrt();
    for (offset, sense, width, arcade) in [
        (-1.0, -1.0, 8.0, true),
        (1.0, 1.0, 7.5, true),
        (-2.3, 0.0, 6.0, false),
        (2.3, 0.0, 5.5, false),
    ] {
        let heading = toward_macula + offset * rng.range(0.85, 1.1);
        canvas.grow(
            Tip {
                x: disc[0] + disc_radius * 0.2 * heading.cos(),
                y: disc[1] + disc_radius * 0.2 * heading.sin(),
                heading,
                width: width * scale * rng.range(0.9, 1.05),
                curvature: if arcade {
                    0.0
                } else {
                    rng.range(-0.002, 0.002) / scale
                },
                budget: (1100.0 * scale) as usize,
                steer: arcade.then_some((macula, arcade_radius * rng.range(0.85, 1.0), -sense)),
            },
            &mut rng,
            40.0,
        );
    }
    // More branches from existing vessels until the vessel fraction reaches its target.
    let mut attempts = 0;
    while canvas.fraction(&fov) < target && attempts < 400 && !canvas.trunk_points.is_empty() {
        attempts += 1;
        let k = (rng.uniform() * canvas.trunk_points.len() as f64) as usize;
        let (x, y, heading, width) = canvas.trunk_points[k.min(canvas.trunk_points.len() - 1)];
        let turn = if rng.chance(0.5) { 1.0 } else { -1.0 };
        canvas.grow(
            Tip {
                x,
                y,
                heading: heading + turn * rng.range(35.0, 80.0).to_radians(),
                width: (width * rng.range(0.35, 0.6)).max(1.0 * scale),
                curvature: -turn * rng.range(0.0, 0.006) / scale,
                budget: (rng.range(40.0, 200.0) * scale) as usize,
                steer: None,
            },
            &mut rng,
            60.0,
        );
    }

    // Background: fundus colour, illumination fall-off, optic disc, macula, smooth blotches, noise.
    let tone = [
        rng.range(0.74, 0.86),
        rng.range(0.33, 0.42),
        rng.range(0.12, 0.2),
    ];
    let blotches: Vec<([f64; 2], f64, f64)> = (0..4)
        .map(|_| {
            let a = rng.range(0.0, std::f64::consts::TAU);
            let r = fov_radius * rng.uniform().sqrt();
            (
                [fov_centre[0] + r * a.cos(), fov_centre[1] + r * a.sin()],
                fov_radius * rng.range(0.2, 0.5),
                rng.range(-0.08, 0.08),
            )
        })
        .collect();
    let mut image = RgbImage::new(config.width, config.height);
    let mut vessels = GrayImage::new(config.width, config.height);
    for (i, (pixel, vessel)) in image.pixels_mut().zip(vessels.iter_mut()).enumerate() {
        let (x, y) = ((i % w) as f64 + 0.5, (i / w) as f64 + 0.5);
        let noise = [rng.normal(), rng.normal(), rng.normal()];
        if fov[i] == 0 {
            pixel.0 = noise.map(|n| (4.0 + 1.5 * n).clamp(0.0, 255.0) as u8);
            continue;
        }
        *vessel = canvas.vessels[i];
        let r2 = ((x - fov_centre[0]).powi(2) + (y - fov_centre[1]).powi(2)) / fov_radius.powi(2);
        let mut light = 1.0 - 0.45 * r2;
        for (c, radius, amp) in &blotches {
            light += amp * bump(x - c[0], y - c[1], *radius);
        }
        let d = ((x - disc[0]).powi(2) + (y - disc[1]).powi(2)).sqrt() / disc_radius;
        let disc_glow =
            (1.0 - ((d - 0.7) / 0.5).clamp(0.0, 1.0)) * (1.0 - 0.2 * (-d * d * 8.0).exp());
        let macula_dim = 1.0 - 0.3 * bump(x - macula[0], y - macula[1], macula_radius);
        let shade = canvas.shade[i] as f64;
        let absorb = [0.45, 0.7, 0.55];
        let disc_colour = [1.0, 0.92, 0.65];
        let value: [f64; 3] = std::array::from_fn(|c| {
            let base = tone[c] * light * macula_dim;
            let base = base + (disc_colour[c] - base) * disc_glow * 0.8;
            base * (1.0 - shade * absorb[c]) + 0.012 * noise[c]
        });
        pixel.0 = value.map(|v| (v * 255.0).round().clamp(0.0, 255.0) as u8);
    }
    let fov = GrayImage::from_raw(config.width, config.height, fov).expect("size");
    SynthRetina {
        image,
        vessels,
        fov,
    }
}
