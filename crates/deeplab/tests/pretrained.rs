//! Named weights through the torch hub cache, against a test HTTP server on 127.0.0.1 (never the
//! internet): a download is verified, cached and loads into the model; a second fetch downloads
//! nothing; corrupted or cut-off downloads and an unreachable server leave no file behind and
//! say what to do; a file already in the cache needs no network. Built without the `download`
//! feature (`cargo test -p deeplab`), the download tests are reported as ignored, with the
//! command that runs them, and a missing file is an error saying where to put it.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use burn::backend::Flex;
use deeplab::pretrained::{Hub, HubError};
use sha2::{Digest, Sha256};

/// What the server does with a request for a known file.
#[derive(Clone, Copy)]
enum Serve {
    Whole,
    /// One byte of the body changed.
    Corrupted,
    /// Announces the whole length, sends half, closes.
    CutOff,
}

/// A minimal HTTP/1.1 server for one file name; counts the requests it answers.
struct Server {
    base_url: String,
    requests: Arc<AtomicUsize>,
}

fn serve(name: String, body: Vec<u8>, mode: Serve) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}/models/", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            count.fetch_add(1, Ordering::SeqCst);
            let _ = answer(stream, &name, &body, mode);
        }
    });
    Server { base_url, requests }
}

fn answer(mut stream: TcpStream, name: &str, body: &[u8], mode: Serve) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte)? == 1 {
        request.push(byte[0]);
    }
    let request = String::from_utf8_lossy(&request);
    if !request.starts_with(&format!("GET /models/{name} ")) {
        return stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
    let mut payload = body.to_vec();
    if let Serve::Corrupted = mode {
        let middle = payload.len() / 2;
        payload[middle] ^= 0xff;
    }
    let header = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n",
        payload.len()
    );
    stream.write_all(header.as_bytes())?;
    match mode {
        Serve::CutOff => stream.write_all(&payload[..payload.len() / 2])?,
        _ => stream.write_all(&payload)?,
    }
    stream.flush()
}

/// The tiny fixture under a torchvision-style name carrying its SHA-256 prefix.
fn fixture() -> (String, Vec<u8>) {
    let bytes = std::fs::read(common::fixtures_dir().join("tiny_deeplabv3.pth")).unwrap();
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    (format!("tiny_deeplabv3-{}.pth", &hex[..8]), bytes)
}

fn hub(cache: &Path, base_url: &str) -> Hub {
    Hub {
        cache_dir: cache.join("hub/checkpoints"),
        base_url: base_url.into(),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A port nobody listens on.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/models/")
}

/// What `deeplab` logged (target `deeplab::*`) since the test binary started.
fn captured_log() -> Vec<String> {
    struct Capture;
    static LINES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.target().starts_with("deeplab")
        }
        fn log(&self, record: &log::Record) {
            if self.enabled(record.metadata()) {
                let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
                lines.push(record.args().to_string());
            }
        }
        fn flush(&self) {}
    }
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&Capture).expect("the test binary's only logger");
        log::set_max_level(log::LevelFilter::Info);
    });
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Needs the `download` feature; without it, it is reported as ignored.
#[test]
#[cfg_attr(
    not(feature = "download"),
    ignore = "needs the `download` feature: cargo test -p deeplab --features download"
)]
fn downloads_verifies_caches_and_loads() {
    captured_log();
    let (name, bytes) = fixture();
    let server = serve(name.clone(), bytes.clone(), Serve::Whole);
    let cache = tempfile::tempdir().unwrap();
    // From the environment, as a user runs it: TORCH_HOME and the mirror variable.
    std::env::set_var("TORCH_HOME", cache.path());
    std::env::set_var("RETINA_SEG_WEIGHTS_URL", &server.base_url);
    let hub = Hub::from_env().unwrap();
    std::env::remove_var("RETINA_SEG_WEIGHTS_URL");
    std::env::remove_var("TORCH_HOME");
    assert_eq!(hub.cache_dir, cache.path().join("hub/checkpoints"));

    let path = hub.fetch(&name).unwrap();
    assert_eq!(path, cache.path().join("hub/checkpoints").join(&name));
    // The progress went to the `log` facade (the program decides what to show), not to stderr.
    let logged = captured_log();
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with(&format!("downloading {name}"))),
        "{logged:?}"
    );
    assert!(
        logged
            .iter()
            .any(|l| l.starts_with(&format!("downloaded {name}"))),
        "{logged:?}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert_eq!(
        files_in(&hub.cache_dir),
        [name.clone()],
        "no partial file left"
    );
    let fixture = common::Fixture::load_from(common::fixtures_dir().join("tiny_deeplabv3"));
    let model = fixture.deeplabv3_config().init::<Flex>(&Default::default());
    let (_, report) = model.load_torchvision(&path).unwrap();
    assert!(report.fresh.is_empty(), "{report}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);

    // Cached: the second fetch downloads nothing.
    assert_eq!(hub.fetch(&name).unwrap(), path);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

/// Needs the `download` feature; without it, it is reported as ignored.
#[test]
#[cfg_attr(
    not(feature = "download"),
    ignore = "needs the `download` feature: cargo test -p deeplab --features download"
)]
fn corrupted_download_is_rejected_and_removed() {
    let (name, bytes) = fixture();
    let server = serve(name.clone(), bytes, Serve::Corrupted);
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(cache.path(), &server.base_url);
    let err = hub.fetch(&name).unwrap_err();
    assert!(matches!(err, HubError::HashMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains(&name[15..23]),
        "names the expected prefix: {err}"
    );
    assert_eq!(
        files_in(&hub.cache_dir),
        Vec::<String>::new(),
        "nothing kept"
    );
}

/// Needs the `download` feature; without it, it is reported as ignored.
#[test]
#[cfg_attr(
    not(feature = "download"),
    ignore = "needs the `download` feature: cargo test -p deeplab --features download"
)]
fn cut_off_download_leaves_no_complete_looking_file() {
    let (name, bytes) = fixture();
    let server = serve(name.clone(), bytes, Serve::CutOff);
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(cache.path(), &server.base_url);
    let err = hub.fetch(&name).unwrap_err();
    assert!(matches!(err, HubError::Download { .. }), "{err}");
    assert!(!hub.cache_path(&name).exists());
    assert_eq!(files_in(&hub.cache_dir), Vec::<String>::new());
}

/// Needs the `download` feature; without it, it is reported as ignored.
#[test]
#[cfg_attr(
    not(feature = "download"),
    ignore = "needs the `download` feature: cargo test -p deeplab --features download"
)]
fn unreachable_server_fails_fast_saying_what_to_do() {
    let (name, _) = fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(cache.path(), &closed_port_url());
    let start = Instant::now();
    let err = hub.fetch(&name).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
    let message = err.to_string();
    for part in [
        hub.url(&name),
        hub.cache_path(&name).display().to_string(),
        "from another path".to_string(),
        "RETINA_SEG_WEIGHTS_URL".to_string(),
    ] {
        assert!(message.contains(&part), "`{part}` in: {message}");
    }
}

#[test]
fn a_cached_file_needs_no_network() {
    let (name, bytes) = fixture();
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(cache.path(), &closed_port_url());
    std::fs::create_dir_all(&hub.cache_dir).unwrap();
    std::fs::write(hub.cache_path(&name), &bytes).unwrap();
    assert_eq!(hub.fetch(&name).unwrap(), hub.cache_path(&name));
}

/// Without the `download` feature a file missing from the cache is an error naming where to put
/// it, and nothing is fetched.
#[test]
#[cfg(not(feature = "download"))]
fn without_download_a_missing_file_says_where_to_put_it() {
    let (name, bytes) = fixture();
    let server = serve(name.clone(), bytes, Serve::Whole);
    let cache = tempfile::tempdir().unwrap();
    let hub = hub(cache.path(), &server.base_url);
    let err = hub.fetch(&name).unwrap_err();
    assert!(matches!(err, HubError::NoDownload { .. }), "{err}");
    let message = err.to_string();
    assert!(
        message.contains(&hub.cache_path(&name).display().to_string()),
        "{message}"
    );
    assert_eq!(server.requests.load(Ordering::SeqCst), 0);
}
