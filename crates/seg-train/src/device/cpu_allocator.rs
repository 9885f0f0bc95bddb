//! glibc's `malloc` set up for tensor work on the CPU.
//!
//! A training step on the CPU allocates and frees hundreds of activation and gradient buffers
//! of a few hundred KB to a few tens of MB. With glibc's defaults each of those above 128 KB
//! (the threshold grows only as blocks are freed) is a fresh `mmap`, and the free memory at the
//! top of the heap goes back to the system as soon as it exceeds 128 KB: the next step
//! touches new pages again, one page fault (and a page cleared by the kernel) every 4 KB.
//! [`tune`] makes `malloc` keep what it frees for reuse instead:
//!
//! | `mallopt` parameter | default | here |
//! |---|---|---|
//! | `M_MMAP_THRESHOLD` (blocks from `mmap`) | 128 KB, dynamic | [`MMAP_THRESHOLD`] (32 MiB, glibc's largest) |
//! | `M_MMAP_MAX` (blocks from `mmap` at once) | 65536 | [`MMAP_MAX`] (0: larger blocks from the heap too) |
//! | `M_TRIM_THRESHOLD` (free heap kept) | 128 KB, dynamic | [`TRIM_THRESHOLD`] (1 GiB) |
//! | `M_TOP_PAD` (extra heap per growth) | 128 KB | [`TOP_PAD`] (64 MiB, address space only) |
//!
//! The activations and gradients of the stem and layer1 at 512×512, batch 2, are 32 MiB
//! each, which no threshold keeps off `mmap`: without `M_MMAP_MAX` = 0 a DeepLabV3+ training step
//! there faulted tens of thousands of pages in again (measured on a 2-core Intel Xeon: 0.65 → 0.69
//! images/s with it, DeepLabV3 0.20 → 0.22, the same peak resident set).
//!
//! (Threads other than the main one allocate from glibc's per-thread arenas, whose heaps hold
//! at most 64 MiB: larger blocks there still come from `mmap`.)
//!
//! The peak resident memory of a step stays the same (the buffers are the same; they are reused
//! rather than returned and faulted in again), while memory freed after the peak is kept by the
//! process until [`release`] hands it back (`malloc_trim` also returns the free pages inside the
//! heap, not only at its top). [`dispatch`](super::dispatch::dispatch) does both
//! around every job it runs on the CPU, so `retina-seg train`, `predict` and `evaluate` and the
//! library's jobs run this way; a program calling the models directly calls [`tune`] itself.
//!
//! Settings made in the environment win: when `MALLOC_MMAP_THRESHOLD_`, `MALLOC_MMAP_MAX_`,
//! `MALLOC_TRIM_THRESHOLD_` or `MALLOC_TOP_PAD_` is set, or `GLIBC_TUNABLES` sets one of these
//! parameters (`glibc.malloc.mmap_threshold`, `mmap_max`, `trim_threshold`, `top_pad`),
//! [`tune`] changes nothing (set, e.g., `MALLOC_TRIM_THRESHOLD_=131072` to keep glibc's own behaviour).
//! Elsewhere than glibc (macOS, Windows, musl) there is nothing to tune.

/// Blocks of at least this size would come from `mmap` (and go back to the system when freed);
/// with [`MMAP_MAX`] at 0 none does but where a thread's arena cannot hold it.
pub const MMAP_THRESHOLD: usize = 32 << 20;
/// At most this many blocks are served by `mmap` at once: none, every block from the heap (see
/// the [module docs](self) for threads other than the main one).
pub const MMAP_MAX: usize = 0;
/// Free memory at the top of the heap beyond this goes back to the system.
pub const TRIM_THRESHOLD: usize = 1 << 30;
/// Extra address space requested each time the heap grows.
pub const TOP_PAD: usize = 64 << 20;

/// The environment variables through which glibc reads the settings [`tune`] makes.
const MALLOC_VARIABLES: [&str; 4] = [
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_MMAP_MAX_",
    "MALLOC_TRIM_THRESHOLD_",
    "MALLOC_TOP_PAD_",
];
/// The same settings' names in `GLIBC_TUNABLES`.
const MALLOC_TUNABLES: [&str; 4] = [
    "glibc.malloc.mmap_threshold",
    "glibc.malloc.mmap_max",
    "glibc.malloc.trim_threshold",
    "glibc.malloc.top_pad",
];

/// What [`tune`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllocatorTuning {
    /// `malloc` now keeps freed blocks for reuse (the table in the [module docs](self)).
    Tuned,
    /// The environment variable named sets `malloc`'s parameters: left as they are.
    LeftToEnvironment(&'static str),
    /// glibc refused a setting (the parameter named): left as it is.
    Refused(&'static str),
    /// Not glibc: nothing to tune.
    Unsupported,
}

/// Sets glibc's `malloc` up to reuse the buffers tensor work frees (see the [module
/// docs](self)); changes nothing when the environment sets `malloc`'s parameters or the C
/// library is not glibc. Safe to call more than once and from any thread.
///
/// ```
/// use seg_train::device::cpu_allocator::{environment_setting, tune, AllocatorTuning};
///
/// let tuning = tune();
/// match environment_setting(|name| std::env::var(name).ok()) {
///     Some(variable) => assert_eq!(tuning, AllocatorTuning::LeftToEnvironment(variable)),
///     None if cfg!(all(target_os = "linux", target_env = "gnu")) => {
///         assert_eq!(tuning, AllocatorTuning::Tuned)
///     }
///     None => assert_eq!(tuning, AllocatorTuning::Unsupported),
/// }
/// ```
pub fn tune() -> AllocatorTuning {
    if let Some(variable) = environment_setting(|name| std::env::var(name).ok()) {
        return AllocatorTuning::LeftToEnvironment(variable);
    }
    glibc::tune()
}

/// Hands the free memory `malloc` keeps back to the system (`malloc_trim(0)`), as after a job;
/// nothing elsewhere than glibc.
pub fn release() {
    glibc::release();
}

/// The first environment variable (`var` reads one) through which glibc takes `malloc`
/// settings, if any is set.
pub fn environment_setting(var: impl Fn(&str) -> Option<String>) -> Option<&'static str> {
    if let Some(name) = MALLOC_VARIABLES
        .into_iter()
        .find(|name| var(name).is_some())
    {
        return Some(name);
    }
    var("GLIBC_TUNABLES")
        .is_some_and(|tunables| MALLOC_TUNABLES.iter().any(|t| tunables.contains(t)))
        .then_some("GLIBC_TUNABLES")
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use super::{AllocatorTuning, MMAP_MAX, MMAP_THRESHOLD, TOP_PAD, TRIM_THRESHOLD};

    pub fn tune() -> AllocatorTuning {
        let settings = [
            (libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
            (libc::M_MMAP_MAX, MMAP_MAX, "M_MMAP_MAX"),
            (libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD, "M_TRIM_THRESHOLD"),
            (libc::M_TOP_PAD, TOP_PAD, "M_TOP_PAD"),
        ];
        for (parameter, value, name) in settings {
            let value = libc::c_int::try_from(value).expect("the settings fit a C int");
            // SAFETY: mallopt takes malloc's own lock; any value is checked by glibc, which
            // returns 0 for one it refuses.
            if unsafe { libc::mallopt(parameter, value) } != 1 {
                return AllocatorTuning::Refused(name);
            }
        }
        AllocatorTuning::Tuned
    }

    pub fn release() {
        // SAFETY: malloc_trim takes malloc's own locks and only returns free pages.
        unsafe { libc::malloc_trim(0) };
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
mod glibc {
    use super::AllocatorTuning;

    pub fn tune() -> AllocatorTuning {
        AllocatorTuning::Unsupported
    }

    pub fn release() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn malloc_settings_in_the_environment_win() {
        assert_eq!(environment_setting(env(&[("PATH", "/bin")])), None);
        assert_eq!(
            environment_setting(env(&[("MALLOC_TRIM_THRESHOLD_", "131072")])),
            Some("MALLOC_TRIM_THRESHOLD_")
        );
        assert_eq!(
            environment_setting(env(&[
                ("MALLOC_TOP_PAD_", "0"),
                ("MALLOC_MMAP_THRESHOLD_", "1")
            ])),
            Some("MALLOC_MMAP_THRESHOLD_")
        );
        assert_eq!(
            environment_setting(env(&[("MALLOC_MMAP_MAX_", "0")])),
            Some("MALLOC_MMAP_MAX_")
        );
        assert_eq!(
            environment_setting(env(&[("GLIBC_TUNABLES", "glibc.malloc.mmap_max=8")])),
            Some("GLIBC_TUNABLES")
        );
        assert_eq!(
            environment_setting(env(&[(
                "GLIBC_TUNABLES",
                "glibc.cpu.hwcaps=-AVX512F:glibc.malloc.top_pad=0"
            )])),
            Some("GLIBC_TUNABLES")
        );
        // Other settings leave these parameters to `tune`.
        assert_eq!(
            environment_setting(env(&[
                (
                    "GLIBC_TUNABLES",
                    "glibc.cpu.hwcaps=-AVX512F:glibc.malloc.arena_max=2"
                ),
                ("MALLOC_ARENA_MAX", "2"),
            ])),
            None
        );
    }
}
