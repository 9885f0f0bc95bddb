//! Skeletons of vessel masks: one-pixel-wide 8-connected skeletons by Guo and Hall's parallel
//! thinning ([`thin`]), and the *tubed* skeleton Skeleton Recall trains on ([`tube`]). The
//! evaluation's topology metrics and the training's Skeleton Recall loss use the same thinning.
//!
//! [`thin`] is algorithm A1 of Z. Guo, R. W. Hall, "Parallel thinning with two-subiteration
//! algorithms", Communications of the ACM 32(3), 1989 — what scikit-image's
//! `skimage.morphology.thin` computes (seg-train's reference check compares them pixel for pixel).
//!
//! Neighbours `x1 … x8` counter-clockwise from east (`x1` E, `x2` NE, `x3` N, `x4` NW, `x5` W,
//! `x6` SW, `x7` S, `x8` SE); outside the image is background. A foreground pixel is deleted in a
//! subiteration when, on the image as the subiteration found it:
//! - **G1** its crossing number `X_H = Σ_{i=1..4} [x_{2i−1} = 0 ∧ (x_{2i} = 1 ∨ x_{2i+1} = 1)]`
//!   is 1 (deleting it keeps its neighbours connected);
//! - **G2** `2 ≤ min(n1, n2) ≤ 3` with `n1 = Σ_k (x_{2k−1} ∨ x_{2k})`, `n2 = Σ_k (x_{2k} ∨
//!   x_{2k+1})` (it is neither an end point nor interior);
//! - **G3** in the first subiteration `(x2 ∨ x3 ∨ ¬x8) ∧ x1 = 0`, in the second `(x6 ∨ x7 ∨ ¬x4)
//!   ∧ x5 = 0` (south-east, then north-west borders).
//!
//! Subiteration pairs repeat until neither deletes a pixel.
//!
//! ```
//! use drive_data::skeleton::{thin, tube};
//!
//! // A bar 3 pixels wide thins to one line; its tube is that line widened by two 4-neighbour
//! // dilations, kept inside the bar.
//! let (w, h) = (12, 7);
//! let bar: Vec<u8> = (0..w * h).map(|i| u8::from((2..5).contains(&(i / w)))).collect();
//! let line = thin(&bar, w, h);
//! assert!(line.iter().filter(|&&p| p != 0).count() < 12);
//! assert!(line.iter().zip(&bar).all(|(&s, &m)| s <= m));
//! let t = tube(&bar, w, h);
//! assert!(t.iter().zip(&bar).all(|(&s, &m)| s <= m));
//! ```

/// Whether a pixel whose neighbours are `bits` (bit `i` = `x_{i+1}`) is deleted in subiteration
/// `second` (false: the first).
fn deletable(bits: u8, second: bool) -> bool {
    let x = |i: usize| bits >> (i - 1) & 1 == 1;
    let at = |i: usize| x((i - 1) % 8 + 1);
    let crossing = (1..=4)
        .filter(|&i| !at(2 * i - 1) && (at(2 * i) || at(2 * i + 1)))
        .count();
    let n1 = (1..=4).filter(|&k| at(2 * k - 1) || at(2 * k)).count();
    let n2 = (1..=4).filter(|&k| at(2 * k) || at(2 * k + 1)).count();
    let g3 = if second {
        !((x(6) || x(7) || !x(4)) && x(5))
    } else {
        !((x(2) || x(3) || !x(8)) && x(1))
    };
    crossing == 1 && (2..=3).contains(&n1.min(n2)) && g3
}

/// The deletion table of both subiterations, indexed by the neighbour bits.
fn tables() -> [[bool; 256]; 2] {
    let mut out = [[false; 256]; 2];
    for (s, table) in out.iter_mut().enumerate() {
        for (bits, entry) in table.iter_mut().enumerate() {
            *entry = deletable(bits as u8, s == 1);
        }
    }
    out
}

/// The skeleton of a `width`×`height` mask (row-major, foreground ≠ 0) as 0/1.
pub fn thin(mask: &[u8], width: usize, height: usize) -> Vec<u8> {
    assert_eq!(mask.len(), width * height, "mask size");
    let tables = tables();
    let mut image: Vec<u8> = mask.iter().map(|&v| u8::from(v != 0)).collect();
    let at = |image: &[u8], x: i64, y: i64| -> u8 {
        if x < 0 || y < 0 || x >= width as i64 || y >= height as i64 {
            0
        } else {
            image[y as usize * width + x as usize]
        }
    };
    // (dx, dy) of x1 … x8.
    const NEIGHBOURS: [(i64, i64); 8] = [
        (1, 0),
        (1, -1),
        (0, -1),
        (-1, -1),
        (-1, 0),
        (-1, 1),
        (0, 1),
        (1, 1),
    ];
    // Only pixels on a border can be deleted: candidates are re-collected each subiteration.
    let mut candidates: Vec<usize> = (0..image.len()).filter(|&i| image[i] != 0).collect();
    let mut deleted = Vec::new();
    loop {
        let mut any = false;
        for table in &tables {
            deleted.clear();
            for &i in &candidates {
                if image[i] == 0 {
                    continue;
                }
                let (x, y) = ((i % width) as i64, (i / width) as i64);
                let bits = NEIGHBOURS
                    .iter()
                    .enumerate()
                    .fold(0u8, |b, (k, &(dx, dy))| b | at(&image, x + dx, y + dy) << k);
                if table[bits as usize] {
                    deleted.push(i);
                }
            }
            for &i in &deleted {
                image[i] = 0;
            }
            any |= !deleted.is_empty();
        }
        if !any {
            return image;
        }
        candidates.retain(|&i| image[i] != 0);
    }
}

/// One dilation of a 0/1 mask by the plus-shaped 3×3 footprint (4-neighbours).
fn dilate_plus(mask: &[u8], width: usize, height: usize) -> Vec<u8> {
    let mut out = mask.to_vec();
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if mask[i] != 0 {
                continue;
            }
            let set = (x > 0 && mask[i - 1] != 0)
                || (x + 1 < width && mask[i + 1] != 0)
                || (y > 0 && mask[i - width] != 0)
                || (y + 1 < height && mask[i + width] != 0);
            out[i] = u8::from(set);
        }
    }
    out
}

/// The tubed skeleton of a `width`×`height` vessel mask (row-major, foreground ≠ 0) as 0/1: its
/// [`thin`] skeleton dilated twice by the plus-shaped 3×3 footprint and kept inside the mask —
/// the target of the Skeleton Recall loss (Kirchhoff et al., ECCV 2024, whose reference dilates
/// scikit-image's `skeletonize` the same way; the thinning here is Guo–Hall's).
pub fn tube(mask: &[u8], width: usize, height: usize) -> Vec<u8> {
    let skeleton = thin(mask, width, height);
    let once = dilate_plus(&skeleton, width, height);
    let twice = dilate_plus(&once, width, height);
    twice
        .iter()
        .zip(mask)
        .map(|(&t, &m)| u8::from(t != 0 && m != 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `#` (set) and `.` as a row-major 0/1 mask with its width and height.
    fn mask(rows: &[&str]) -> (Vec<u8>, usize, usize) {
        let w = rows[0].len();
        let data = rows
            .iter()
            .flat_map(|r| r.bytes().map(|b| u8::from(b == b'#')))
            .collect();
        (data, w, rows.len())
    }

    fn count(v: &[u8]) -> usize {
        v.iter().filter(|&&p| p != 0).count()
    }

    /// Whether every skeleton pixel has at most 2 neighbours along a line, i.e. no 2×2 block.
    fn one_pixel_wide(s: &[u8], w: usize, h: usize) -> bool {
        (0..h - 1).all(|y| {
            (0..w - 1).all(|x| {
                let i = y * w + x;
                s[i] + s[i + 1] + s[i + w] + s[i + w + 1] < 4
            })
        })
    }

    #[test]
    fn lines_of_width_one_to_five_become_one_line_of_their_length() {
        // A horizontal bar of width k and length 20 thins to a line; its length loses at most
        // the corners (a 1-pixel line is already thin and stays whole).
        for k in 1..=5usize {
            let (w, h) = (24, k + 4);
            let mut m = vec![0u8; w * h];
            for y in 2..2 + k {
                for x in 2..22 {
                    m[y * w + x] = 1;
                }
            }
            let s = thin(&m, w, h);
            assert!(one_pixel_wide(&s, w, h), "width {k}");
            let n = count(&s);
            let rows: Vec<usize> = (0..h)
                .filter(|&y| (0..w).any(|x| s[y * w + x] != 0))
                .collect();
            if k == 1 {
                assert_eq!(n, 20);
            } else {
                // One row (or two for even widths' ends), 20 − (k − 1) … 20 pixels long.
                assert!((20 - k..=20).contains(&n), "width {k}: {n} pixels");
                assert!(rows.len() <= 2, "width {k}: rows {rows:?}");
            }
        }
    }

    #[test]
    fn a_thin_t_junction_stays_and_a_staircase_becomes_a_diagonal() {
        // Already one pixel wide and 8-connected: nothing is deleted.
        let (m, w, h) = mask(&[
            ".........",
            ".#######.",
            "....#....",
            "....#....",
            "....#....",
            ".........",
        ]);
        assert_eq!(thin(&m, w, h), m);
        let (m, w, h) = mask(&[
            "#.....", //
            "##....", ".##...", "..##..", "...##.", "....##",
        ]);
        // A 4-connected staircase. The first subiteration deletes each step's upper pixel
        // ((1,1), (2,2), …: east neighbour empty so G3 holds, X_H = 1, n1 = n2 = 3); the lower
        // ones then form an 8-connected diagonal whose ends have min(n1, n2) = 1 and stay.
        let s = thin(&m, w, h);
        let (expected, _, _) = mask(&[
            "#.....", //
            "#.....", ".#....", "..#...", "...#..", "....##",
        ]);
        assert_eq!(s, expected);
    }

    #[test]
    fn a_tube_is_the_skeleton_widened_by_two_plus_dilations_inside_the_mask() {
        // A 1-pixel line inside a 7-pixel-wide bar: rows 2 (top) … 8; the skeleton is row 5,
        // columns 5 … 14 (the bar's ends are eaten). Two 4-neighbour dilations reach rows 3 … 7
        // beside it and two columns beyond its ends on its own row, one on the rows next to it.
        let (w, h) = (20, 11);
        let bar: Vec<u8> = (0..w * h)
            .map(|i| u8::from((2..=8).contains(&(i / w)) && (2..=17).contains(&(i % w))))
            .collect();
        let skeleton = thin(&bar, w, h);
        let on: Vec<(usize, usize)> = (0..w * h)
            .filter(|&i| skeleton[i] != 0)
            .map(|i| (i % w, i / w))
            .collect();
        assert!(on.iter().all(|&(_, y)| y == 5), "{on:?}");
        let (x0, x1) = (on[0].0, on[on.len() - 1].0);
        let t = tube(&bar, w, h);
        for y in 0..h {
            for x in 0..w {
                let dy = y.abs_diff(5);
                let dx = if x < x0 { x0 - x } else { x.saturating_sub(x1) };
                let expected = bar[y * w + x] != 0 && dx + dy <= 2;
                assert_eq!(t[y * w + x] != 0, expected, "({x}, {y})");
            }
        }
        // Outside the mask nothing is set, even where the dilation reaches: a 1-pixel line's
        // tube is the line itself.
        let (line, w, h) = mask(&["......", ".####.", "......"]);
        assert_eq!(tube(&line, w, h), line);
        assert_eq!(tube(&[0u8; 12], 4, 3), vec![0u8; 12]);
    }
}
