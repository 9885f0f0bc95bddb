//! `--device` values: [`DeviceChoice`], its names, parsing and typo suggestions.

use std::fmt;
use std::str::FromStr;

/// What `--device` asks for: one of [`DEVICE_NAMES`], `cuda` and `wgpu` with an optional `:N`
/// device index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA GPU 0, else wgpu on a hardware GPU, else the CPU.
    #[default]
    Auto,
    /// The CPU (Flex backend).
    Cpu,
    /// CUDA GPU N (`cuda` is `cuda:0`).
    Cuda(usize),
    /// `None`: wgpu's default adapter (software adapters included); `Some(n)`: the n-th discrete
    /// GPU.
    Wgpu(Option<usize>),
}

/// A device name of `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceName {
    /// As written.
    pub name: &'static str,
    /// Takes a `:N` device index.
    pub indexed: bool,
    /// What it selects.
    pub help: &'static str,
}

/// Every device name. A tie in [`DeviceChoice::suggest`] goes to an indexed name.
pub const DEVICE_NAMES: [DeviceName; 4] = [
    DeviceName {
        name: "auto",
        indexed: false,
        help: "CUDA, else wgpu on a real GPU, else the CPU",
    },
    DeviceName {
        name: "cpu",
        indexed: false,
        help: "the CPU (Flex backend)",
    },
    DeviceName {
        name: "cuda",
        indexed: true,
        help: "NVIDIA GPU 0; cuda:N for GPU N",
    },
    DeviceName {
        name: "wgpu",
        indexed: true,
        help: "the default Vulkan/Metal/DX12 adapter; wgpu:N for the N-th discrete GPU",
    },
];

/// How device names are written: `auto | cpu | cuda[:N] | wgpu[:N]`.
pub fn device_grammar() -> String {
    let written = DEVICE_NAMES.map(|d| match d.indexed {
        true => format!("{}[:N]", d.name),
        false => d.name.to_string(),
    });
    written.join(" | ")
}

/// The names with (`true`) or without an index.
fn names(indexed: bool) -> Vec<&'static str> {
    let matching = DEVICE_NAMES.iter().filter(|d| d.indexed == indexed);
    matching.map(|d| d.name).collect()
}

impl FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, index) = match s.split_once(':') {
            Some((name, index)) => match index.parse::<usize>() {
                Ok(i) if !index.starts_with('+') => (name, Some(i)),
                _ => return Err(unknown(s)),
            },
            None => (s, None),
        };
        match (name, index) {
            ("auto", None) => Ok(Self::Auto),
            ("cpu", None) => Ok(Self::Cpu),
            ("cuda", i) => Ok(Self::Cuda(i.unwrap_or(0))),
            ("wgpu", i) => Ok(Self::Wgpu(i)),
            _ => Err(unknown(s)),
        }
    }
}

fn unknown(s: &str) -> String {
    let hint = DeviceChoice::suggest(s).map_or(String::new(), |t| format!("; did you mean `{t}`?"));
    format!("unknown device `{s}` (one of {}){hint}", device_grammar())
}

impl DeviceChoice {
    /// The valid device name closest to `text` (within two edits of its name part), keeping a
    /// valid index where the suggested name takes one; `None` when nothing is close. Every
    /// suggestion parses.
    pub fn suggest(text: &str) -> Option<String> {
        let (stem, index) = match text.split_once(':') {
            Some((stem, index)) => (stem, Some(index)),
            None => (text, None),
        };
        let number = index
            .filter(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|i| i.parse::<usize>().ok());
        let (indexed, plain) = (names(true), names(false));
        let all = [indexed.clone(), plain.clone()].concat();
        let suggestion = match number {
            // `cpu:1`: the name is right, the index is not for it.
            Some(_) if plain.contains(&stem) => stem.to_string(),
            Some(n) => match closest(stem, &indexed) {
                Some(name) => format!("{name}:{n}"),
                None => closest(stem, &all)?.to_string(),
            },
            None => closest(stem, &all)?.to_string(),
        };
        (suggestion != text).then_some(suggestion)
    }
}

/// The candidate within edit distance 2 of `input`, the nearest first (ties: the earlier).
fn closest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(input, c), *c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for j in 0..=b.len() {
        d[0][j] = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
            Self::Wgpu(None) => f.write_str("wgpu"),
            Self::Wgpu(Some(i)) => write!(f, "wgpu:{i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_strings_parse() {
        assert_eq!("cpu".parse(), Ok(DeviceChoice::Cpu));
        assert_eq!("auto".parse(), Ok(DeviceChoice::Auto));
        assert_eq!("cuda".parse(), Ok(DeviceChoice::Cuda(0)));
        assert_eq!("cuda:3".parse(), Ok(DeviceChoice::Cuda(3)));
        assert_eq!("wgpu".parse(), Ok(DeviceChoice::Wgpu(None)));
        assert_eq!("wgpu:1".parse(), Ok(DeviceChoice::Wgpu(Some(1))));
        for bad in [
            "tpu", "cuda:x", "cuda:", "cuda:-1", "cuda:+1", "gpu", "gpu:1", "cpu:0", "auto:1",
            "CUDA", "cuda:1:2", "",
        ] {
            assert!(bad.parse::<DeviceChoice>().is_err(), "`{bad}` parsed");
        }
        assert_eq!(DeviceChoice::Cuda(2).to_string(), "cuda:2");
        assert_eq!(DeviceChoice::Wgpu(Some(1)).to_string(), "wgpu:1");
    }

    #[test]
    fn suggestions_parse() {
        for (typed, expected) in [
            ("cdua", Some("cuda")),
            ("gpu", Some("wgpu")),
            ("gpu:1", Some("wgpu:1")),
            ("cpu:1", Some("cpu")),
            ("auto:0", Some("auto")),
            ("cuda:x", Some("cuda")),
            ("cdua:2", Some("cuda:2")),
            ("wgpu:", Some("wgpu")),
            ("tensorcore", None),
            ("tensorcore:1", None),
        ] {
            let suggested = DeviceChoice::suggest(typed);
            assert_eq!(suggested.as_deref(), expected, "for `{typed}`");
            if let Some(s) = suggested {
                assert!(s.parse::<DeviceChoice>().is_ok(), "`{s}` (for `{typed}`)");
            }
        }
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("cdua", "cuda"), 1);
    }
}
