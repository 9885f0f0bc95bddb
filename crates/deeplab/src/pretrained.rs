//! torchvision's pretrained weights by name, shared with PyTorch's cache.
//!
//! [`Pretrained`] names the checkpoints the original experiments start from: COCO DeepLabV3 for
//! ResNet-50/101 and the ImageNet ResNets torchvision's DeepLabV3 builders use as backbones.
//! [`Hub::fetch`] finds a file where `torch.hub` keeps it — `$TORCH_HOME/hub/checkpoints`, else
//! `$XDG_CACHE_HOME/torch/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints` — so a PyTorch
//! user who has it downloads nothing; otherwise (with the `download` feature) it downloads it
//! there, as torch.hub does:
//!
//! * streamed to `<name>.<pid>.partial` beside the final file and renamed only once complete and
//!   verified, so an interrupted download never leaves a file that looks complete (and a failed
//!   one leaves nothing);
//! * verified against the SHA-256 prefix in the file name (torchvision's convention: the hex digits
//!   after the last `-`, e.g. `cd0a2569` in `deeplabv3_resnet50_coco-cd0a2569.pth`);
//! * with a progress bar (size and rate) on a terminal, plain lines otherwise;
//! * from `https://download.pytorch.org/models/`, or the base URL in `RETINA_SEG_WEIGHTS_URL`
//!   (mirrors, air-gapped sites);
//! * with connect and read timeouts: offline, it fails within seconds with an error naming the
//!   URL, the exact file to put in the cache and the alternatives (a mirror, a copy elsewhere).
//!
//! ```no_run
//! use burn::backend::Flex;
//! use deeplab::pretrained::{Hub, Pretrained};
//! use deeplab::DeepLabV3Config;
//!
//! let path = Hub::from_env()?.fetch(Pretrained::CocoResNet50.file_name())?;
//! let model = DeepLabV3Config::deeplabv3_resnet50(2).init::<Flex>(&Default::default());
//! let (model, report) = model.load_torchvision(&path)?; // fresh 2-class final convs
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;
#[cfg(feature = "download")]
use std::{
    io::{Read, Write},
    time::Instant,
};

/// The checkpoints torchvision publishes for DeepLabV3 and its backbones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pretrained {
    /// `deeplabv3_resnet50(weights="COCO_WITH_VOC_LABELS_V1")`: 21 classes, aux head.
    CocoResNet50,
    /// `deeplabv3_resnet101(weights="COCO_WITH_VOC_LABELS_V1")`.
    CocoResNet101,
    /// `resnet50(weights="IMAGENET1K_V1")`, the backbone torchvision's deeplabv3_resnet50 uses.
    ImageNetResNet50,
    /// `resnet101(weights="IMAGENET1K_V1")`.
    ImageNetResNet101,
}

impl Pretrained {
    /// Every named weight file.
    pub const ALL: [Pretrained; 4] = [
        Self::CocoResNet50,
        Self::CocoResNet101,
        Self::ImageNetResNet50,
        Self::ImageNetResNet101,
    ];

    /// torchvision's file name (the download URL's last segment and the cache file).
    pub fn file_name(self) -> &'static str {
        match self {
            Self::CocoResNet50 => "deeplabv3_resnet50_coco-cd0a2569.pth",
            Self::CocoResNet101 => "deeplabv3_resnet101_coco-586e9e4e.pth",
            Self::ImageNetResNet50 => "resnet50-0676ba61.pth",
            Self::ImageNetResNet101 => "resnet101-63fe2227.pth",
        }
    }

    /// The COCO DeepLabV3 checkpoint for a ResNet depth (50 or 101).
    pub fn coco(depth: usize) -> Option<Self> {
        match depth {
            50 => Some(Self::CocoResNet50),
            101 => Some(Self::CocoResNet101),
            _ => None,
        }
    }

    /// The ImageNet backbone for a ResNet depth (50 or 101).
    pub fn imagenet(depth: usize) -> Option<Self> {
        match depth {
            50 => Some(Self::ImageNetResNet50),
            101 => Some(Self::ImageNetResNet101),
            _ => None,
        }
    }
}

/// torchvision's download location.
pub const TORCHVISION_URL: &str = "https://download.pytorch.org/models/";

/// Errors of finding or downloading weights; each says what to do instead.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error(
        "cannot download {url}: {reason}. Without network access, put the file at {cache_path} \
         (PyTorch's torch.hub cache, shared with it), set RETINA_SEG_WEIGHTS_URL to a mirror, or \
         load a copy of the file from another path"
    )]
    /// The download failed.
    Download {
        /// The address downloaded from.
        url: String,
        /// Where the file is expected in the cache.
        cache_path: PathBuf,
        /// What went wrong, as reported by the decoder, the writer or the network.
        reason: String,
    },
    #[error(
        "{url} gave a file whose SHA-256 starts with {found}, not {expected} as its name says; \
         nothing was kept. The download was corrupted or the mirror serves another file"
    )]
    /// The downloaded file's SHA-256 does not match the one in its name.
    HashMismatch {
        /// The address downloaded from.
        url: String,
        /// What was expected.
        expected: String,
        /// What the file holds.
        found: String,
    },
    #[error(
        "{cache_path} is not in the cache and this build cannot download (built without the \
         `download` feature): put the file there, or load a copy of it from another path"
    )]
    /// The file is not cached and this build cannot download it.
    NoDownload {
        /// Where the file is expected in the cache.
        cache_path: PathBuf,
    },
    #[error("cannot write {path}: {source}")]
    /// The cache could not be written.
    Io {
        /// The file or folder at fault.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    #[error("no home folder to find the torch hub cache: set TORCH_HOME")]
    /// No cache folder could be determined.
    NoCacheDir,
}

/// Where weights are looked up and downloaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct Hub {
    /// The checkpoint cache (torch.hub's `hub/checkpoints`).
    pub cache_dir: PathBuf,
    /// The base URL file names are appended to.
    pub base_url: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for data while the download runs.
    pub read_timeout: Duration,
}

/// torch.hub's checkpoint cache from the environment: `$TORCH_HOME/hub/checkpoints`, else
/// `$XDG_CACHE_HOME/torch/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints`.
pub fn torch_hub_checkpoints() -> Result<PathBuf, HubError> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let torch_home = var("TORCH_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|c| c.join("torch")))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("torch")))
        .or_else(|| var("USERPROFILE").map(|h| h.join(".cache").join("torch")))
        .ok_or(HubError::NoCacheDir)?;
    Ok(torch_home.join("hub").join("checkpoints"))
}

/// The SHA-256 prefix a torchvision file name carries (`cd0a2569` in
/// `deeplabv3_resnet50_coco-cd0a2569.pth`), if it has one.
pub fn hash_prefix(file_name: &str) -> Option<&str> {
    let stem = file_name.split('.').next()?;
    let (_, prefix) = stem.rsplit_once('-')?;
    (prefix.len() >= 8 && prefix.chars().all(|c| c.is_ascii_hexdigit())).then_some(prefix)
}

impl Hub {
    /// torch.hub's cache and torchvision's URL, or `RETINA_SEG_WEIGHTS_URL`; 10 s to connect,
    /// 30 s without data at most.
    pub fn from_env() -> Result<Self, HubError> {
        let base_url = std::env::var("RETINA_SEG_WEIGHTS_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| TORCHVISION_URL.to_string());
        Ok(Self {
            cache_dir: torch_hub_checkpoints()?,
            base_url,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
        })
    }

    /// The URL of `file_name`.
    pub fn url(&self, file_name: &str) -> String {
        format!("{}/{file_name}", self.base_url.trim_end_matches('/'))
    }

    /// The cache path of `file_name`.
    pub fn cache_path(&self, file_name: &str) -> PathBuf {
        self.cache_dir.join(file_name)
    }

    /// The cached file, downloading (and verifying) it first if it is not there yet.
    pub fn fetch(&self, file_name: &str) -> Result<PathBuf, HubError> {
        let path = self.cache_path(file_name);
        if path.is_file() {
            return Ok(path);
        }
        self.download(file_name, &path)?;
        Ok(path)
    }

    #[cfg(not(feature = "download"))]
    fn download(&self, _file_name: &str, path: &Path) -> Result<(), HubError> {
        Err(HubError::NoDownload {
            cache_path: path.to_path_buf(),
        })
    }

    #[cfg(feature = "download")]
    fn download(&self, file_name: &str, path: &Path) -> Result<(), HubError> {
        use sha2::{Digest, Sha256};

        let url = self.url(file_name);
        let failed = |reason: String| HubError::Download {
            url: url.clone(),
            cache_path: path.to_path_buf(),
            reason,
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(self.connect_timeout))
            .timeout_per_read(Some(self.read_timeout))
            .build()
            .into();
        let response = agent.get(&url).call().map_err(|e| failed(e.to_string()))?;
        let total = response.body().content_length();
        let mut body = response.into_body().into_reader();

        std::fs::create_dir_all(&self.cache_dir).map_err(|source| HubError::Io {
            path: self.cache_dir.clone(),
            source,
        })?;
        let partial = self
            .cache_dir
            .join(format!("{file_name}.{}.partial", std::process::id()));
        let io = |source| HubError::Io {
            path: partial.clone(),
            source,
        };
        // Whatever goes wrong from here on, the partial file goes.
        let remove_partial = |e: HubError| {
            let _ = std::fs::remove_file(&partial);
            e
        };
        let mut file = std::fs::File::create(&partial).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut progress = Progress::new(file_name, total);
        let mut buffer = vec![0u8; 1 << 16];
        loop {
            let n = match body.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return Err(remove_partial(failed(format!("interrupted: {e}")))),
            };
            hasher.update(&buffer[..n]);
            file.write_all(&buffer[..n])
                .map_err(|e| remove_partial(io(e)))?;
            progress.advance(n as u64);
        }
        file.sync_all().map_err(|e| remove_partial(io(e)))?;
        drop(file);
        progress.finish();
        if let Some(expected) = hash_prefix(file_name) {
            let digest = hasher.finalize();
            let found: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            if !found.starts_with(&expected.to_ascii_lowercase()) {
                return Err(remove_partial(HubError::HashMismatch {
                    url,
                    expected: expected.to_string(),
                    found: found[..expected.len()].to_string(),
                }));
            }
        }
        std::fs::rename(&partial, path).map_err(|source| {
            remove_partial(HubError::Io {
                path: path.to_path_buf(),
                source,
            })
        })
    }
}

/// Download progress as `log` records (target `deeplab::pretrained`, level info): one line when
/// the download starts, one every 10 % (every 50 MB when the size is unknown), one at the end.
/// The program decides what to show (the `retina-seg` command line prints them).
#[cfg(feature = "download")]
struct Progress {
    name: String,
    total: Option<u64>,
    done: u64,
    start: Instant,
    last_report: u64,
}

#[cfg(feature = "download")]
impl Progress {
    fn new(name: &str, total: Option<u64>) -> Self {
        let size = total.map_or("unknown size".into(), |t| format!("{:.1} MB", mb(t)));
        log::info!("downloading {name} ({size})");
        Self {
            name: name.to_string(),
            total,
            done: 0,
            start: Instant::now(),
            last_report: 0,
        }
    }

    fn rate(&self) -> f64 {
        mb(self.done) / self.start.elapsed().as_secs_f64().max(1e-3)
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        let step = self.total.map_or(50 << 20, |t| (t / 10).max(1));
        if self.done - self.last_report >= step {
            self.last_report = self.done;
            let pct = self.total.map_or(String::new(), |t| {
                format!(" ({:.0} %)", 100.0 * self.done as f64 / t as f64)
            });
            log::info!(
                "  {}: {:.1} MB{pct}, {:.1} MB/s",
                self.name,
                mb(self.done),
                self.rate()
            );
        }
    }

    fn finish(&self) {
        log::info!(
            "downloaded {} ({:.1} MB in {:.1} s)",
            self.name,
            mb(self.done),
            self.start.elapsed().as_secs_f64()
        );
    }
}

#[cfg(feature = "download")]
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_their_hash_prefix() {
        assert_eq!(
            hash_prefix("deeplabv3_resnet50_coco-cd0a2569.pth"),
            Some("cd0a2569")
        );
        assert_eq!(hash_prefix("resnet101-63fe2227.pth"), Some("63fe2227"));
        assert_eq!(hash_prefix("model.pth"), None);
        assert_eq!(hash_prefix("my-model.pth"), None);
        for p in Pretrained::ALL {
            assert!(hash_prefix(p.file_name()).is_some(), "{p:?}");
        }
        let hub = Hub {
            cache_dir: PathBuf::from("/c"),
            base_url: "http://mirror/models/".into(),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(1),
        };
        assert_eq!(hub.url("a.pth"), "http://mirror/models/a.pth");
        assert_eq!(Pretrained::coco(101), Some(Pretrained::CocoResNet101));
        assert_eq!(Pretrained::imagenet(18), None);
    }
}
