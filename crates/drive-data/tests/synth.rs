//! The synthetic retina generator: DRIVE-like geometry and statistics, exact and deterministic.

use drive_data::synth::generate;
use drive_data::SynthConfig;

/// Per vessel pixel, the shorter of its horizontal and vertical run lengths: a width estimate.
fn local_widths(mask: &image::GrayImage) -> Vec<u32> {
    let (w, h) = mask.dimensions();
    let on = |x: i64, y: i64| {
        x >= 0
            && y >= 0
            && x < w as i64
            && y < h as i64
            && mask.get_pixel(x as u32, y as u32).0[0] == 1
    };
    let run = |x: i64, y: i64, dx: i64, dy: i64| {
        let mut n = 0;
        while on(x + dx * (n + 1), y + dy * (n + 1)) {
            n += 1;
        }
        n
    };
    let mut out = Vec::new();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            if on(x, y) {
                let horizontal = 1 + run(x, y, 1, 0) + run(x, y, -1, 0);
                let vertical = 1 + run(x, y, 0, 1) + run(x, y, 0, -1);
                out.push(horizontal.min(vertical) as u32);
            }
        }
    }
    out
}

#[test]
fn drive_like_vessel_fraction_and_widths() {
    let config = SynthConfig::default();
    for seed in 0..4 {
        let retina = generate(&config, seed);
        assert_eq!(retina.image.dimensions(), (565, 584));
        let fraction = retina.vessel_fraction();
        assert!(
            (0.08..=0.14).contains(&fraction),
            "seed {seed}: vessel fraction {fraction}"
        );
        let widths = local_widths(&retina.vessels);
        let mut sorted = widths.clone();
        sorted.sort_unstable();
        let pct = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
        // Where vessels converge on the optic disc they merge into wider blobs: use a percentile.
        let widest = pct(0.98);
        assert!(
            (6..=14).contains(&widest),
            "seed {seed}: widest vessel {widest} px"
        );
        let thin = widths.iter().filter(|&&w| w <= 2).count() as f64 / widths.len() as f64;
        assert!(
            thin > 0.2,
            "seed {seed}: only {thin} of vessel pixels are 1–2 px wide"
        );
    }
}

#[test]
fn vessels_lie_inside_a_circular_fov_on_black() {
    let retina = generate(&SynthConfig::default(), 9);
    for ((v, f), p) in retina
        .vessels
        .iter()
        .zip(retina.fov.iter())
        .zip(retina.image.pixels())
    {
        assert!(*v <= *f, "vessel outside the FOV");
        let brightest = *p.0.iter().max().unwrap();
        if *f == 0 {
            assert!(brightest < 15, "background not black: {brightest}");
        }
    }
    let area: f64 = retina.fov.iter().map(|&f| f as f64).sum();
    let radius = (area / std::f64::consts::PI).sqrt();
    assert!(
        (260.0..=280.0).contains(&radius),
        "FOV radius {radius} (DRIVE ≈ 270)"
    );
    // Fundus colour: red over green over blue inside the FOV.
    let mut mean = [0f64; 3];
    for (p, f) in retina.image.pixels().zip(retina.fov.iter()) {
        if *f == 1 {
            for c in 0..3 {
                mean[c] += p.0[c] as f64 / area;
            }
        }
    }
    assert!(mean[0] > mean[1] && mean[1] > mean[2], "{mean:?}");
}

#[test]
fn vessels_are_darker_than_their_surroundings() {
    let retina = generate(&SynthConfig::default(), 2);
    let (mut on, mut n_on, mut off, mut n_off) = (0.0, 0.0, 0.0, 0.0);
    for ((v, f), p) in retina
        .vessels
        .iter()
        .zip(retina.fov.iter())
        .zip(retina.image.pixels())
    {
        if *f == 1 {
            if *v == 1 {
                on += p.0[1] as f64;
                n_on += 1.0;
            } else {
                off += p.0[1] as f64;
                n_off += 1.0;
            }
        }
    }
    assert!(
        on / n_on < 0.85 * off / n_off,
        "green: vessels {} vs background {}",
        on / n_on,
        off / n_off
    );
}

#[test]
fn same_seed_same_retina() {
    let config = SynthConfig {
        width: 120,
        height: 130,
        ..SynthConfig::default()
    };
    let (a, b, c) = (
        generate(&config, 4),
        generate(&config, 4),
        generate(&config, 5),
    );
    assert_eq!(a.image, b.image);
    assert_eq!(a.vessels, b.vessels);
    assert_ne!(a.vessels, c.vessels);
}
