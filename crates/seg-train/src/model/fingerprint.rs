//! A model's fingerprint: the SHA-256 of its weight files, which a prediction run records beside
//! its outputs so that a rerun can tell outputs of this model from another's.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::TrainError;

/// The SHA-256 (hex) of the files' contents, in order (each preceded by its length, so that
/// moving bytes from one file to the next changes it).
pub fn fingerprint(files: &[&Path]) -> Result<String, TrainError> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    for path in files {
        let fail = |e: std::io::Error| TrainError::Checkpoint {
            path: path.to_path_buf(),
            reason: format!("cannot read to fingerprint it: {e}"),
        };
        let mut file = std::fs::File::open(path).map_err(fail)?;
        let len = file.metadata().map_err(fail)?.len();
        hasher.update(len.to_le_bytes());
        loop {
            let n = file.read(&mut buffer).map_err(fail)?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_follow_content_and_order() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"weights").unwrap();
        std::fs::write(&b, b"config").unwrap();
        let ab = fingerprint(&[&a, &b]).unwrap();
        assert_eq!(ab.len(), 64);
        assert_eq!(ab, fingerprint(&[&a, &b]).unwrap());
        assert_ne!(ab, fingerprint(&[&b, &a]).unwrap());
        // SHA-256 of (7u64 LE, "weights") — computed independently with Python's hashlib:
        // hashlib.sha256((7).to_bytes(8, "little") + b"weights").hexdigest()
        assert_eq!(
            fingerprint(&[&a]).unwrap(),
            "ccc7f15751ea4bed2b282e429183645e01c0b882204dc935aab1aec2aaa5e94b"
        );
        std::fs::write(&a, b"weightz").unwrap();
        assert_ne!(ab, fingerprint(&[&a, &b]).unwrap());
    }
}
