//! Thin and thick vessels: the ground truth split by vessel width, so a score can say where a
//! model loses (DeepLab's output stride blurs the thin capillaries first).
//!
//! A vessel pixel is **thick** when it lies within distance `r − 1` of a vessel pixel whose
//! Euclidean distance to the nearest background pixel is `r ≥ 2` — where a disc at least 3 px
//! across fits inside the vessel; every other vessel pixel is **thin** (vessels ≤ 2 px wide).
//! A background pixel belongs to the class of its nearest vessel pixel, so false positives are
//! charged to the vessels they sit beside; F1 and sensitivity follow per class.

use serde::{Deserialize, Serialize};

use crate::metrics::{Confusion, MetricSummary};

/// Width class of each pixel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WidthClass {
    /// Vessel pixels of vessels ≤ 2 px wide, and the background nearest to them.
    Thin,
    /// Vessel pixels of vessels ≥ 3 px wide, and the background nearest to them.
    Thick,
    /// Background of an image without vessels.
    Unassigned,
}

/// Scores of the thin and the thick vessels of one region.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WidthScores {
    /// Vessels at most 2 px wide (see the module docs).
    pub thin: ClassScores,
    /// Wider vessels.
    pub thick: ClassScores,
}

/// One width class's confusion matrix and metrics (F1 and sensitivity are the figures to read;
/// specificity and accuracy depend on how much background the class was given).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassScores {
    /// Pixel counts of the class (background pixels go with their nearest vessel pixel).
    pub confusion: Confusion,
    /// Metrics of `confusion`.
    #[serde(flatten)]
    pub metrics: MetricSummary,
}

impl ClassScores {
    /// The scores of `confusion`.
    pub fn new(confusion: Confusion) -> Self {
        Self {
            confusion,
            metrics: confusion.summary(),
        }
    }
}

impl WidthScores {
    /// Scores from `[thin, thick]` confusion matrices.
    pub fn new([thin, thick]: [Confusion; 2]) -> Self {
        Self {
            thin: ClassScores::new(thin),
            thick: ClassScores::new(thick),
        }
    }
}

/// The width class of every pixel of a `width`×`height` ground truth (row-major, vessel ≠ 0).
pub fn width_classes(truth: &[u8], width: usize, height: usize) -> Vec<WidthClass> {
    assert_eq!(truth.len(), width * height, "ground truth size");
    let vessel: Vec<bool> = truth.iter().map(|&t| t != 0).collect();
    let background: Vec<bool> = vessel.iter().map(|&v| !v).collect();
    // Distance of each vessel pixel to the background; outside the image is not background.
    let to_background = nearest_sites(&background, width, height);
    let mut thick = vec![false; truth.len()];
    for (i, site) in to_background.iter().enumerate() {
        let Some((d2, _)) = site.filter(|&(d2, _)| vessel[i] && d2 >= 4) else {
            continue;
        };
        let reach = (d2 as f64).sqrt() - 1.0;
        let r = reach.floor() as i64;
        let (cx, cy) = ((i % width) as i64, (i / width) as i64);
        for y in (cy - r).max(0)..=(cy + r).min(height as i64 - 1) {
            for x in (cx - r).max(0)..=(cx + r).min(width as i64 - 1) {
                let (dx, dy) = ((x - cx) as f64, (y - cy) as f64);
                if dx * dx + dy * dy <= reach * reach + 1e-9 {
                    thick[y as usize * width + x as usize] = true;
                }
            }
        }
    }
    if !vessel.contains(&false) {
        // No background at all: every vessel is as wide as the image.
        return vec![WidthClass::Thick; truth.len()];
    }
    let class_of = |i: usize| {
        if thick[i] {
            WidthClass::Thick
        } else {
            WidthClass::Thin
        }
    };
    let to_vessel = nearest_sites(&vessel, width, height);
    (0..truth.len())
        .map(|i| match (vessel[i], to_vessel[i]) {
            (true, _) => class_of(i),
            (false, Some((_, site))) => class_of(site),
            (false, None) => WidthClass::Unassigned,
        })
        .collect()
}

/// `[thin, thick]` confusion matrices of a binary prediction, inside `mask` when given.
pub fn width_confusions(
    pred: &[u8],
    truth: &[u8],
    mask: Option<&[u8]>,
    classes: &[WidthClass],
) -> [Confusion; 2] {
    let mut out = [Confusion::default(); 2];
    for (i, class) in classes.iter().enumerate() {
        let k = match class {
            WidthClass::Thin => 0,
            WidthClass::Thick => 1,
            WidthClass::Unassigned => continue,
        };
        if mask.is_some_and(|m| m[i] == 0) {
            continue;
        }
        out[k] += Confusion::from_pixels(&pred[i..=i], &truth[i..=i], None);
    }
    out
}

/// For every pixel the squared Euclidean distance to the nearest `site` pixel and that pixel's
/// index (`None` without sites): the exact separable feature transform (per column, then the
/// lower envelope of parabolas per row, after Felzenszwalb and Huttenlocher).
fn nearest_sites(site: &[bool], width: usize, height: usize) -> Vec<Option<(u64, usize)>> {
    // Per column: the nearest site row above or below.
    let mut column: Vec<Option<usize>> = vec![None; site.len()];
    for x in 0..width {
        let mut last = None;
        for y in 0..height {
            if site[y * width + x] {
                last = Some(y);
            }
            column[y * width + x] = last;
        }
        let mut next = None;
        for y in (0..height).rev() {
            if site[y * width + x] {
                next = Some(y);
            }
            let i = y * width + x;
            column[i] = match (column[i], next) {
                (Some(a), Some(b)) => Some(if y - a <= b - y { a } else { b }),
                (a, b) => a.or(b),
            };
        }
    }
    let mut out = vec![None; site.len()];
    let mut hull: Vec<usize> = Vec::with_capacity(width); // columns of the envelope's parabolas
    let mut starts: Vec<f64> = Vec::with_capacity(width); // where each takes over
    for y in 0..height {
        let g = |q: usize| {
            column[y * width + q].map(|r| {
                let d = r.abs_diff(y) as f64;
                d * d
            })
        };
        hull.clear();
        starts.clear();
        for q in 0..width {
            let Some(gq) = g(q) else { continue };
            while let Some(&v) = hull.last() {
                let gv = g(v).expect("on the hull");
                let s = ((gq + (q * q) as f64) - (gv + (v * v) as f64)) / (2.0 * (q - v) as f64);
                if s <= *starts.last().expect("one start per column") {
                    hull.pop();
                    starts.pop();
                } else {
                    starts.push(s);
                    hull.push(q);
                    break;
                }
            }
            if hull.is_empty() {
                hull.push(q);
                starts.push(f64::NEG_INFINITY);
            }
        }
        if hull.is_empty() {
            continue;
        }
        let mut k = 0;
        for x in 0..width {
            while k + 1 < hull.len() && starts[k + 1] < x as f64 {
                k += 1;
            }
            let q = hull[k];
            let row = column[y * width + q].expect("on the hull");
            let (dx, dy) = (x.abs_diff(q) as u64, row.abs_diff(y) as u64);
            out[y * width + x] = Some((dx * dx + dy * dy, row * width + q));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The brute-force nearest site of every pixel.
    fn brute(site: &[bool], w: usize) -> Vec<Option<u64>> {
        (0..site.len())
            .map(|i| {
                (0..site.len())
                    .filter(|&j| site[j])
                    .map(|j| {
                        let dx = (i % w).abs_diff(j % w) as u64;
                        let dy = (i / w).abs_diff(j / w) as u64;
                        dx * dx + dy * dy
                    })
                    .min()
            })
            .collect()
    }

    #[test]
    fn the_feature_transform_matches_brute_force() {
        let (w, h) = (23, 17);
        let mut state = 12345u64;
        for density in [1u64, 5, 30, 90] {
            let site: Vec<bool> = (0..w * h)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (state >> 33) % 100 < density
                })
                .collect();
            let fast = nearest_sites(&site, w, h);
            let want = brute(&site, w);
            for (i, (f, b)) in fast.iter().zip(&want).enumerate() {
                assert_eq!(f.map(|f| f.0), *b, "pixel {i} at density {density}");
                if let Some((d2, j)) = f {
                    assert!(site[*j]);
                    let dx = (i % w).abs_diff(j % w) as u64;
                    let dy = (i / w).abs_diff(j / w) as u64;
                    assert_eq!(dx * dx + dy * dy, *d2, "the named site is at that distance");
                }
            }
        }
        assert!(nearest_sites(&[false; 6], 3, 2).iter().all(Option::is_none));
    }

    /// A 40×40 ground truth of full-height vertical vessels: 1 px wide at x = 5, 2 px at
    /// x = 10–11, 4 px at x = 20–23.
    fn three_vessels() -> Vec<u8> {
        (0..40 * 40)
            .map(|i| u8::from(matches!(i % 40, 5 | 10 | 11 | 20..=23)))
            .collect()
    }

    #[test]
    fn thin_and_thick_vessels_and_their_background_by_hand() {
        let truth = three_vessels();
        let classes = width_classes(&truth, 40, 40);
        for y in 0..40 {
            for x in 0..40 {
                // Background columns go with the nearest vessel: up to x = 15 the thin ones
                // (15 is 4 from x = 11, 5 from x = 20), from 16 on the thick one.
                let want = if x <= 15 {
                    WidthClass::Thin
                } else {
                    WidthClass::Thick
                };
                assert_eq!(classes[y * 40 + x], want, "({x}, {y})");
            }
        }
        // Predicted: the 1 px vessel, none of the 2 px one, the whole 4 px one, and false
        // columns at x = 7 (beside the thin vessels) and x = 30 (beside the thick one).
        let pred: Vec<u8> = (0..40 * 40)
            .map(|i| u8::from(matches!(i % 40, 5 | 7 | 20..=23 | 30)))
            .collect();
        let [thin, thick] = width_confusions(&pred, &truth, None, &classes);
        // Thin: TP 40 (x=5), FN 80 (x=10,11), FP 40 (x=7), TN 12 columns (0–4, 6, 8, 9, 12–15).
        assert_eq!(thin, Confusion::new(40, 40, 80, 12 * 40));
        // Thick: TP 160, FP 40 (x=30), FN 0, TN 19 columns (16–19, 24–39 but 30).
        assert_eq!(thick, Confusion::new(160, 40, 0, 19 * 40));
        let s = WidthScores::new([thin, thick]);
        assert!((s.thin.metrics.f1.unwrap() - 0.4).abs() < 1e-12);
        assert!((s.thin.metrics.sensitivity.unwrap() - 1.0 / 3.0).abs() < 1e-12);
        assert!((s.thick.metrics.f1.unwrap() - 320.0 / 360.0).abs() < 1e-12);
        assert_eq!(s.thick.metrics.sensitivity, Some(1.0));
        // Inside a mask of the top half only, every count halves.
        let mask: Vec<u8> = (0..40 * 40).map(|i| u8::from(i < 20 * 40)).collect();
        let [thin_half, thick_half] = width_confusions(&pred, &truth, Some(&mask), &classes);
        assert_eq!(thin_half, Confusion::new(20, 20, 40, 12 * 20));
        assert_eq!(thick_half, Confusion::new(80, 20, 0, 19 * 20));
    }

    #[test]
    fn a_three_pixel_vessel_is_thick_and_a_diagonal_two_pixel_one_is_thin() {
        // Rows 3–5 of a 12×9 image: a horizontal vessel 3 px wide.
        let band: Vec<u8> = (0..12 * 9)
            .map(|i| u8::from((3..=5).contains(&(i / 12))))
            .collect();
        let classes = width_classes(&band, 12, 9);
        assert!((0..12 * 9)
            .filter(|&i| band[i] != 0)
            .all(|i| classes[i] == WidthClass::Thick));
        // A diagonal staircase two pixels wide: (i, i) and (i + 1, i).
        let mut stairs = vec![0u8; 12 * 12];
        for i in 0..11 {
            stairs[i * 12 + i] = 1;
            stairs[i * 12 + i + 1] = 1;
        }
        let classes = width_classes(&stairs, 12, 12);
        assert!(classes.iter().all(|&c| c == WidthClass::Thin));
        // No vessels: nothing is assigned; no background: everything is thick.
        assert!(width_classes(&[0; 6], 3, 2)
            .iter()
            .all(|&c| c == WidthClass::Unassigned));
        assert!(width_classes(&[1; 6], 3, 2)
            .iter()
            .all(|&c| c == WidthClass::Thick));
    }
}
