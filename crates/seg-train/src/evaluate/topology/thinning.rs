//! One-pixel-wide 8-connected skeletons by Guo and Hall's parallel thinning (algorithm A1 of
//! Z. Guo, R. W. Hall, "Parallel thinning with two-subiteration algorithms", Communications of
//! the ACM 32(3), 1989) — what scikit-image's `skimage.morphology.thin` computes; the project's
//! reference script checks that they agree pixel for pixel.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::topology::mask;

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
    fn a_ring_keeps_its_hole_and_a_filled_disc_shrinks_to_a_point_or_short_line() {
        let (w, h) = (21, 21);
        let ring: Vec<u8> = (0..w * h)
            .map(|i| {
                let (dx, dy) = ((i % w) as f64 - 10.0, (i / w) as f64 - 10.0);
                let r = (dx * dx + dy * dy).sqrt();
                u8::from((5.0..=8.0).contains(&r))
            })
            .collect();
        let s = thin(&ring, w, h);
        assert!(one_pixel_wide(&s, w, h));
        // Still a closed curve around the centre: the centre's background does not reach the
        // border through the skeleton.
        assert_eq!(s[10 * w + 10], 0);
        assert_eq!(super::super::components::holes(&s, w, h), 1);
        assert_eq!(super::super::components::components(&s, w, h), 1);
        let disc: Vec<u8> = ring
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let (dx, dy) = ((i % w) as f64 - 10.0, (i / w) as f64 - 10.0);
                u8::from(dx * dx + dy * dy <= 64.0)
            })
            .collect();
        let s = thin(&disc, w, h);
        assert!((1..=3).contains(&count(&s)), "{}", count(&s));
    }
}
