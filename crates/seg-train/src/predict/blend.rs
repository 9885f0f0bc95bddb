//! The sliding-window blend: [`Blend`] adds each window's vessel probability to the image's,
//! weighted by a ramp that falls towards the window's edges, and [`crop`] cuts a window out of a
//! sample.

use drive_data::Sample;

use crate::model::{Tiling, Window};

/// The windows of `samples` in order, each with the index of its sample: what goes through the
/// model, a batch at a time, when several images are predicted by sliding windows.
pub fn windows_of<S: std::borrow::Borrow<Sample>>(
    samples: &[S],
    tiling: Tiling,
) -> Vec<(usize, Window)> {
    samples
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            let [width, height] = s.borrow().size().map(|v| v as usize);
            tiling
                .windows([width, height])
                .into_iter()
                .map(move |w| (i, w))
        })
        .collect()
}

/// The vessel probability of one image being assembled from its windows' (see [`Tiling`]). A
/// tiling of one window (a tile at least as large as the image) gives that window's probability
/// unchanged: exactly the untiled prediction.
#[derive(Debug, Clone)]
pub struct Blend {
    size: [usize; 2],
    ramp: usize,
    single: bool,
    sum: Vec<f32>,
    weight: Vec<f32>,
}

impl Blend {
    /// An empty blend for an image of `[width, height]`.
    pub fn new([width, height]: [u32; 2], tiling: Tiling) -> Self {
        let size = [width as usize, height as usize];
        let pixels = size[0] * size[1];
        Self {
            size,
            ramp: (tiling.tile as f64 * tiling.overlap / 2.0).round() as usize,
            single: tiling.windows(size).len() == 1,
            sum: vec![0.0; pixels],
            weight: vec![0.0; pixels],
        }
    }

    /// The image's `[width, height]`.
    pub fn size(&self) -> [usize; 2] {
        self.size
    }

    /// Adds `prob`, the probability of `window` (row-major at the window's size).
    pub fn add(&mut self, window: Window, prob: &[f32]) {
        let (tw, th) = (window.width, window.height);
        assert_eq!(prob.len(), tw * th, "one probability per window pixel");
        if self.single {
            self.sum.copy_from_slice(prob);
            self.weight.fill(1.0);
            return;
        }
        let w0 = self.size[0];
        for j in 0..th {
            let wy = ramp(j, th, self.ramp);
            for i in 0..tw {
                let wgt = wy * ramp(i, tw, self.ramp);
                let o = (window.y + j) * w0 + window.x + i;
                self.sum[o] += prob[j * tw + i] * wgt;
                self.weight[o] += wgt;
            }
        }
    }

    /// The blended probability, row-major at the image's size.
    pub fn finish(self) -> Vec<f32> {
        if self.single {
            return self.sum;
        }
        self.sum
            .iter()
            .zip(&self.weight)
            .map(|(s, w)| s / w)
            .collect()
    }
}

/// Blending weight of position `i` in a window of length `n`: 1 in the middle, falling linearly
/// to a small floor at the edges over `ramp` pixels.
fn ramp(i: usize, n: usize, ramp: usize) -> f32 {
    if ramp == 0 {
        return 1.0;
    }
    let d = i.min(n - 1 - i) as f32 + 0.5;
    (d / ramp as f32).clamp(0.05, 1.0)
}

/// `sample` cropped to `window` (image, vessel mask if any, FOV).
pub fn crop(sample: &Sample, window: Window) -> Sample {
    let Window {
        x,
        y,
        width,
        height,
    } = window;
    let cut = |img: &image::GrayImage| {
        image::imageops::crop_imm(img, x as u32, y as u32, width as u32, height as u32).to_image()
    };
    Sample {
        id: sample.id,
        image_path: sample.image_path.clone(),
        image: image::imageops::crop_imm(
            &sample.image,
            x as u32,
            y as u32,
            width as u32,
            height as u32,
        )
        .to_image(),
        vessels: sample.vessels.as_ref().map(cut),
        fov: cut(&sample.fov),
        fov_derived: sample.fov_derived,
    }
}
