//! The sliding window a checkpoint records and prediction uses: [`Tiling`] (tile size and
//! overlap) and the [`Window`]s it lays over an image.

use serde::{Deserialize, Serialize};

/// Sliding-window settings: windows of `tile × tile` original pixels (clamped to the image), each
/// resized to the model's input size, overlapping by `overlap` (fraction of the tile) and blended
/// with weights that fall off linearly towards window edges. A tile at least as large as the
/// image is a single window: exactly the untiled prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tiling {
    /// Window side in original pixels.
    pub tile: usize,
    /// Overlap of neighbouring windows, a fraction of the tile.
    pub overlap: f64,
}

/// One sliding window, in original pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Left edge.
    pub x: usize,
    /// Top edge.
    pub y: usize,
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
}

impl Tiling {
    /// One window over the whole image, whatever its size: the untiled prediction.
    pub const WHOLE: Tiling = Tiling {
        tile: usize::MAX,
        overlap: 0.0,
    };

    /// The windows over an image of `[width, height]`, row by row; one window when the tile is
    /// at least as large as the image.
    pub fn windows(&self, [width, height]: [usize; 2]) -> Vec<Window> {
        let (tw, th) = (self.tile.min(width), self.tile.min(height));
        let xs = window_starts(width, tw, self.overlap);
        window_starts(height, th, self.overlap)
            .into_iter()
            .flat_map(|y| {
                xs.iter().map(move |&x| Window {
                    x,
                    y,
                    width: tw,
                    height: th,
                })
            })
            .collect()
    }
}

/// Window starts along one axis of length `len`.
fn window_starts(len: usize, tile: usize, overlap: f64) -> Vec<usize> {
    if tile >= len {
        return vec![0];
    }
    let stride = ((tile as f64 * (1.0 - overlap)).round() as usize).max(1);
    let mut starts: Vec<usize> = (0..)
        .map(|k| k * stride)
        .take_while(|&s| s + tile < len)
        .collect();
    starts.push(len - tile);
    starts.dedup();
    starts
}

/// The sliding window used after training on `crop`-pixel crops: tiles of the crop size, so the
/// model sees every window at the scale it was trained at, overlapping by a quarter.
pub fn crop_tiling(crop: usize) -> Tiling {
    Tiling {
        tile: crop,
        overlap: 0.25,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_axis() {
        assert_eq!(window_starts(100, 200, 0.25), vec![0]);
        assert_eq!(window_starts(100, 100, 0.25), vec![0]);
        assert_eq!(window_starts(100, 40, 0.5), vec![0, 20, 40, 60]);
        assert_eq!(window_starts(100, 40, 0.0), vec![0, 40, 60]);
        for starts in [window_starts(565, 256, 0.3), window_starts(1000, 333, 0.1)] {
            assert_eq!(starts[0], 0);
        }
        assert_eq!(*window_starts(565, 256, 0.3).last().unwrap(), 565 - 256);
    }
}
