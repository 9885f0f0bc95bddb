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
}
