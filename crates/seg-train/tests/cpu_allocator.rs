//! `device::cpu_allocator::tune` on glibc, read off malloc's own counters: a block of a few MB,
//! which glibc's defaults serve by `mmap`, comes from the heap once tuned, and so does one
//! above the largest `mmap` threshold. A file of its own:
//! the counters are the process's, and no other test runs beside this one here.
#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::hint::black_box;

use seg_train::device::cpu_allocator::{environment_setting, release, tune, AllocatorTuning};

/// Blocks `malloc` currently serves by `mmap`.
fn mapped_blocks() -> usize {
    // SAFETY: mallinfo2 only reads malloc's statistics.
    unsafe { libc::mallinfo2() }.hblks
}

/// Whether a block of `bytes` is served by `mmap`.
fn mapped(bytes: usize) -> bool {
    let before = mapped_blocks();
    let block = black_box(vec![1u8; bytes]);
    let during = mapped_blocks();
    drop(block);
    during > before
}

#[test]
fn tuned_malloc_serves_blocks_of_megabytes_from_the_heap() {
    if let Some(variable) = environment_setting(|name| std::env::var(name).ok()) {
        assert_eq!(tune(), AllocatorTuning::LeftToEnvironment(variable));
        return;
    }
    // glibc's default threshold (128 KB, raised to the size of each mmapped block freed).
    assert!(mapped(4 << 20), "glibc's defaults serve 4 MiB by mmap");
    assert_eq!(tune(), AllocatorTuning::Tuned);
    assert!(!mapped(8 << 20), "tuned: 8 MiB comes from the heap");
    assert!(!mapped(31 << 20), "tuned: 31 MiB comes from the heap");
    // Above the largest threshold (32 MiB), within the 64 MiB heaps of the arena of a thread
    // other than the main one (as this test's), beyond which glibc falls back to mmap.
    assert!(!mapped(40 << 20), "tuned: 40 MiB comes from the heap too");
    release();
    assert!(!mapped(8 << 20), "release keeps the settings");
    assert!(!mapped(40 << 20), "release keeps the settings");
}
