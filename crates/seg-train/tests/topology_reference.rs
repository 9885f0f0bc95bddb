//! The topology scores against scikit-image on committed mask pairs: skeleton counts (Guo–Hall
//! thinning, `skimage.morphology.thin`) and Betti numbers exact, clDice to 1e-12. The masks and
//! values are made by `tests/fixtures/topology/make_topology_fixtures.py` (versions in
//! `reference.json`).

use std::path::Path;

use seg_train::evaluate::topology::TopologyCounts;
use seg_train::evaluate::vessel_width::WidthClass;

fn read(dir: &Path, name: &str) -> (Vec<u8>, usize, usize) {
    let img = image::open(dir.join(name)).unwrap().to_luma8();
    let (w, h) = img.dimensions();
    let data = img.as_raw().iter().map(|&v| u8::from(v >= 128)).collect();
    (data, w as usize, h as usize)
}

#[test]
fn skeletons_cldice_and_betti_numbers_match_scikit_image() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/topology");
    let text = std::fs::read_to_string(dir.join("reference.json")).unwrap();
    let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
    let pairs = reference["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 4);
    let int = |v: &serde_json::Value| v.as_u64().unwrap();
    for pair in pairs {
        let (truth, w, h) = read(&dir, pair["truth"].as_str().unwrap());
        let (pred, _, _) = read(&dir, pair["pred"].as_str().unwrap());
        let fov = vec![1u8; w * h];
        let classes = vec![WidthClass::Thin; w * h];
        let c = TopologyCounts::of(&pred, &truth, &fov, &classes, w, h);
        let name = &pair["truth"];
        assert_eq!(c.truth_skeleton[0], int(&pair["truth_skeleton"]), "{name}");
        assert_eq!(c.pred_skeleton, int(&pair["pred_skeleton"]), "{name}");
        assert_eq!(
            c.pred_skeleton_in_truth,
            int(&pair["pred_skeleton_in_truth"]),
            "{name}"
        );
        assert_eq!(
            c.truth_skeleton_covered[0],
            int(&pair["truth_skeleton_covered"]),
            "{name}"
        );
        assert_eq!(c.truth_components, int(&pair["betti0_truth"]), "{name}");
        assert_eq!(c.pred_components, int(&pair["betti0_pred"]), "{name}");
        assert_eq!(c.truth_holes, int(&pair["betti1_truth"]), "{name}");
        assert_eq!(c.pred_holes, int(&pair["betti1_pred"]), "{name}");
        let cldice = c.scores().cldice.unwrap();
        let expected = pair["cldice"].as_f64().unwrap();
        assert!(
            (cldice - expected).abs() <= 1e-12,
            "{name}: {cldice} vs {expected}"
        );
    }
}
