//! Betti numbers of a binary mask: β0, its 8-connected foreground components, and β1, its holes
//! (4-connected background components that do not reach the image border — the dual
//! connectivity, so that a diagonal step of the foreground closes a curve).

/// The components of the pixels for which `inside` holds (8-connected when `eight`, else
/// 4-connected) in a `width`×`height` grid: for each, whether it touches the border.
fn label(inside: impl Fn(usize) -> bool, width: usize, height: usize, eight: bool) -> Vec<bool> {
    let mut seen = vec![false; width * height];
    let mut touches_border = Vec::new();
    let mut stack = Vec::new();
    for start in 0..width * height {
        if seen[start] || !inside(start) {
            continue;
        }
        seen[start] = true;
        stack.push(start);
        let mut border = false;
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % width) as i64, (i / width) as i64);
            border |= x == 0 || y == 0 || x + 1 == width as i64 || y + 1 == height as i64;
            for dy in -1i64..=1 {
                for dx in -1i64..=1 {
                    if (dx == 0 && dy == 0) || (!eight && dx != 0 && dy != 0) {
                        continue;
                    }
                    let (nx, ny) = (x + dx, y + dy);
                    if nx < 0 || ny < 0 || nx >= width as i64 || ny >= height as i64 {
                        continue;
                    }
                    let j = ny as usize * width + nx as usize;
                    if !seen[j] && inside(j) {
                        seen[j] = true;
                        stack.push(j);
                    }
                }
            }
        }
        touches_border.push(border);
    }
    touches_border
}

/// β0: the number of 8-connected foreground (≠ 0) components.
pub fn components(mask: &[u8], width: usize, height: usize) -> usize {
    assert_eq!(mask.len(), width * height, "mask size");
    label(|i| mask[i] != 0, width, height, true).len()
}

/// β1: the number of holes — 4-connected background components not touching the border.
pub fn holes(mask: &[u8], width: usize, height: usize) -> usize {
    assert_eq!(mask.len(), width * height, "mask size");
    label(|i| mask[i] == 0, width, height, false)
        .iter()
        .filter(|&&border| !border)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evaluate::topology::mask;

    #[test]
    fn shapes_with_known_counts() {
        // Two separate blobs, one touching the other only diagonally (one 8-component).
        let (m, w, h) = mask(&[
            "##....", //
            "##....", "..#...", ".....#",
        ]);
        assert_eq!(components(&m, w, h), 2);
        assert_eq!(holes(&m, w, h), 0);
        // A ring (one hole) and a figure eight (two holes) side by side.
        let (m, w, h) = mask(&[
            "..........",
            ".###.###..",
            ".#.#.#.#..",
            ".###.###..",
            ".....#.#..",
            ".....###..",
            "..........",
        ]);
        assert_eq!(components(&m, w, h), 2);
        assert_eq!(holes(&m, w, h), 3);
        // A diagonal ring: 8-connected foreground closes it, so its inside is a hole.
        let (m, w, h) = mask(&[
            ".....", //
            "..#..", ".#.#.", "..#..", ".....",
        ]);
        assert_eq!(components(&m, w, h), 1);
        assert_eq!(holes(&m, w, h), 1);
        // A U open to the border is no hole; empty masks have nothing.
        let (m, w, h) = mask(&[
            "#.#", //
            "#.#", "###",
        ]);
        assert_eq!((components(&m, w, h), holes(&m, w, h)), (1, 0));
        assert_eq!((components(&[0; 6], 3, 2), holes(&[0; 6], 3, 2)), (0, 0));
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
        let s = drive_data::skeleton::thin(&ring, w, h);
        // One pixel wide: no 2×2 block.
        assert!((0..h - 1).all(|y| (0..w - 1).all(|x| {
            let i = y * w + x;
            s[i] + s[i + 1] + s[i + w] + s[i + w + 1] < 4
        })));
        // Still a closed curve around the centre: the centre's background does not reach the
        // border through the skeleton.
        assert_eq!(s[10 * w + 10], 0);
        assert_eq!(holes(&s, w, h), 1);
        assert_eq!(components(&s, w, h), 1);
        let disc: Vec<u8> = ring
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let (dx, dy) = ((i % w) as f64 - 10.0, (i / w) as f64 - 10.0);
                u8::from(dx * dx + dy * dy <= 64.0)
            })
            .collect();
        let s = drive_data::skeleton::thin(&disc, w, h);
        assert!(
            (1..=3).contains(&s.iter().filter(|&&p| p != 0).count()),
            "{}",
            s.iter().filter(|&&p| p != 0).count()
        );
    }
}
