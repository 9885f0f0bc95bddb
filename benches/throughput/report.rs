//! One result row per configuration and element type, printed as a table line and saved as JSON.

#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    pub config: String,
    pub dtype: String,
    pub device: String,
    pub train_img_per_s: Option<f64>,
    pub infer_img_per_s: Option<f64>,
    pub first_step_s: Option<f64>,
    pub warmup_s: Option<f64>,
    pub peak_mem_gib: Option<f64>,
    /// `--train-loop`: images/s of the real training loop (second epoch).
    pub loop_img_per_s: Option<f64>,
    pub error: Option<String>,
}

pub fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

pub fn print_row(r: &Row) {
    let ratio = r
        .loop_img_per_s
        .zip(r.train_img_per_s)
        .map(|(l, s)| format!("{l:.2} ({:.2}×)", l / s));
    println!(
        "{:<14} {:<5} {:>10} {:>10} {:>9} {:>9} {:>9} {:>14}  {}",
        r.config,
        r.dtype,
        cell(r.train_img_per_s, 2),
        cell(r.infer_img_per_s, 2),
        cell(r.first_step_s, 1),
        cell(r.warmup_s, 1),
        cell(r.peak_mem_gib, 2),
        ratio.unwrap_or_else(|| "-".into()),
        r.error.as_deref().unwrap_or("")
    );
}

pub fn today() -> String {
    std::process::Command::new("date")
        .arg("+%Y-%m-%d")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
