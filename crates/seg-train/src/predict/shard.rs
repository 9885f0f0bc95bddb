//! Splitting a prediction run over array tasks: shard `K` of `N` takes the inputs whose relative
//! path hashes to `K` modulo `N` — the same partition on every machine, whatever the order in
//! which a folder is listed and wherever the folder is mounted, and never more than one shard
//! per input.
//!
//! ```
//! use seg_train::predict::shard::Shard;
//! let shard: Shard = "2/3".parse()?;
//! let mine: Vec<&str> = ["a/01.png", "a/02.png", "b/03.png", "04.png"]
//!     .into_iter()
//!     .filter(|p| shard.owns(p))
//!     .collect();
//! // Exactly one of the three shards owns each path.
//! for path in ["a/01.png", "a/02.png", "b/03.png", "04.png"] {
//!     let owners = (1..=3).filter(|k| Shard::new(*k, 3).unwrap().owns(path)).count();
//!     assert_eq!(owners, 1);
//! }
//! # let _ = mine;
//! # Ok::<(), seg_train::predict::shard::ShardError>(())
//! ```

use std::fmt;
use std::str::FromStr;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: usize,
    count: usize,
}

/// A shard that cannot be used; the message says what to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    /// Not `K/N` with `1 ≤ K ≤ N`.
    #[error("shard `{0}` is not K/N with 1 ≤ K ≤ N (e.g. 2/8), nor `auto`")]
    Syntax(String),
    /// `--shard auto` outside an array task.
    #[error(
        "--shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a SLURM array job, \
         sbatch --array) or JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) with the shard \
         count in --shard-count or RETINA_SEG_SHARD_COUNT; none is set: give --shard K/N"
    )]
    NoArrayTask,
    /// An environment variable that is not a number, or out of range.
    #[error("{name}={value}: {reason}")]
    Environment {
        /// The variable.
        name: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl Shard {
    /// The whole input as one shard.
    pub const ALL: Shard = Shard { index: 1, count: 1 };

    /// Shard `index` of `count` (`1 ≤ index ≤ count`).
    pub fn new(index: usize, count: usize) -> Result<Self, ShardError> {
        if count == 0 || index == 0 || index > count {
            return Err(ShardError::Syntax(format!("{index}/{count}")));
        }
        Ok(Self { index, count })
    }

    /// The shard of this array task, from the scheduler's environment (`var` reads a variable).
    /// SLURM: with `count` (the `--shard-count` flag), task `SLURM_ARRAY_TASK_ID` (0 … N−1) is
    /// shard `ID + 1` of `count` — so one task can be resubmitted alone (`--array=3`); without,
    /// `SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT` (`--array=0-7`
    /// and `--array=1-8` both give shards 1…8; arrays with a step are refused). Kubernetes:
    /// `JOB_COMPLETION_INDEX` of `count` or `RETINA_SEG_SHARD_COUNT`.
    pub fn from_env(
        var: impl Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Self, ShardError> {
        let number = |name: &'static str| -> Result<Option<usize>, ShardError> {
            var(name)
                .map(|value| {
                    value
                        .trim()
                        .parse::<usize>()
                        .map_err(|_| ShardError::Environment {
                            name,
                            value: value.clone(),
                            reason: "not a non-negative whole number".into(),
                        })
                })
                .transpose()
        };
        let slurm_id = number("SLURM_ARRAY_TASK_ID")?;
        if let (Some(id), Some(count)) = (slurm_id, count) {
            return Self::new(id + 1, count).map_err(|_| ShardError::Environment {
                name: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                reason: format!(
                    "with --shard-count {count} the array task ids are 0 to {}",
                    count.saturating_sub(1)
                ),
            });
        }
        if let (Some(id), Some(tasks)) = (slurm_id, number("SLURM_ARRAY_TASK_COUNT")?) {
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let out_of_range = |reason: String| ShardError::Environment {
                name: "SLURM_ARRAY_TASK_ID",
                value: id.to_string(),
                reason,
            };
            let offset = id
                .checked_sub(min)
                .ok_or_else(|| out_of_range(format!("below SLURM_ARRAY_TASK_MIN={min}")))?;
            if offset >= tasks {
                return Err(out_of_range(format!(
                    "the array is not contiguous from {min} with {tasks} tasks (use \
                     --array=0-{} without a step)",
                    tasks.saturating_sub(1)
                )));
            }
            return Self::new(offset + 1, tasks);
        }
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let count = match count {
                Some(n) => n,
                None => number("RETINA_SEG_SHARD_COUNT")?.ok_or(ShardError::NoArrayTask)?,
            };
            return Self::new(index + 1, count).map_err(|_| ShardError::Environment {
                name: "JOB_COMPLETION_INDEX",
                value: index.to_string(),
                reason: format!("not below the shard count {count}"),
            });
        }
        Err(ShardError::NoArrayTask)
    }

    /// `K` (1-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// `N`.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Whether this shard takes the input at `relative_path` (relative to the input root,
    /// `/`-separated; a `\` counts as `/`).
    pub fn owns(&self, relative_path: &str) -> bool {
        self.count == 1 || path_hash(relative_path) % self.count as u64 == (self.index - 1) as u64
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(s: &str) -> Result<Self, ShardError> {
        let syntax = || ShardError::Syntax(s.to_string());
        let (k, n) = s.split_once('/').ok_or_else(syntax)?;
        let parse = |t: &str| t.trim().parse::<usize>().map_err(|_| syntax());
        Self::new(parse(k)?, parse(n)?).map_err(|_| syntax())
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a (64 bit) of the path with `\` read as `/`: fixed by its definition, so the partition
/// is the same with every build, platform and Rust version.
fn path_hash(path: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.bytes().map(|b| if b == b'\\' { b'/' } else { b }) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn paths(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("site-{}/{:05}_left.jpeg", i % 7, i))
            .collect()
    }

    #[test]
    fn shards_partition_the_inputs_for_1_2_3_7() {
        let all = paths(500);
        for n in [1, 2, 3, 7] {
            let shards: Vec<Shard> = (1..=n).map(|k| Shard::new(k, n).unwrap()).collect();
            let mut sizes = vec![0usize; n];
            for p in &all {
                let owners: Vec<usize> = (0..n).filter(|&k| shards[k].owns(p)).collect();
                assert_eq!(owners.len(), 1, "{p} in {n} shards: owners {owners:?}");
                sizes[owners[0]] += 1;
            }
            // Balanced to within a few percent of 500/n for a hash.
            for (k, &size) in sizes.iter().enumerate() {
                let ideal = 500.0 / n as f64;
                assert!(
                    (size as f64 - ideal).abs() <= 0.35 * ideal,
                    "{n} shards: shard {} has {size} of 500",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn the_assignment_ignores_listing_order_and_root() {
        let all = paths(200);
        let assign = |list: &[String]| -> HashMap<String, usize> {
            list.iter()
                .map(|p| {
                    let k = (1..=3)
                        .find(|&k| Shard::new(k, 3).unwrap().owns(p))
                        .unwrap();
                    (p.clone(), k)
                })
                .collect()
        };
        let forward = assign(&all);
        let mut shuffled = all.clone();
        shuffled.reverse();
        shuffled.rotate_left(37);
        assert_eq!(assign(&shuffled), forward);
        // The same relative paths under another mount point (only the relative path is hashed)
        // and written with Windows separators.
        for (p, k) in &forward {
            let windows = p.replace('/', "\\");
            assert!(Shard::new(*k, 3).unwrap().owns(&windows), "{windows}");
        }
        // Fixed values: FNV-1a of "a" is af63dc4c8601ec8c.
        assert_eq!(path_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn k_of_n_parses_and_rejects() {
        assert_eq!("2/8".parse::<Shard>(), Ok(Shard::new(2, 8).unwrap()));
        assert_eq!("1/1".parse::<Shard>(), Ok(Shard::ALL));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::new(3, 7).unwrap().to_string(), "3/7");
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn auto_reads_slurm_and_kubernetes() {
        let slurm = |id, min| {
            env(&[
                ("SLURM_ARRAY_TASK_ID", id),
                ("SLURM_ARRAY_TASK_COUNT", "3"),
                ("SLURM_ARRAY_TASK_MIN", min),
            ])
        };
        assert_eq!(Shard::from_env(slurm("0", "0"), None), Shard::new(1, 3));
        assert_eq!(Shard::from_env(slurm("2", "0"), None), Shard::new(3, 3));
        assert_eq!(Shard::from_env(slurm("3", "1"), None), Shard::new(3, 3));
        let stepped = Shard::from_env(slurm("4", "0"), None).unwrap_err();
        assert!(stepped.to_string().contains("not contiguous"), "{stepped}");
        let below = Shard::from_env(slurm("0", "1"), None).unwrap_err();
        assert!(
            below.to_string().contains("SLURM_ARRAY_TASK_MIN"),
            "{below}"
        );
        // With the count given, the task id is the shard: a task resubmitted alone
        // (`--array=1`: count 1, min 1) keeps its shard.
        let alone = env(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
        ]);
        assert_eq!(Shard::from_env(&alone, Some(3)), Shard::new(2, 3));
        // Without it, a lone task is the whole input: why the recipe passes --shard-count.
        assert_eq!(Shard::from_env(&alone, None), Ok(Shard::ALL));
        assert!(Shard::from_env(&alone, Some(1)).is_err());

        let k8s = env(&[("JOB_COMPLETION_INDEX", "4")]);
        assert_eq!(Shard::from_env(&k8s, Some(5)), Shard::new(5, 5));
        assert!(Shard::from_env(&k8s, Some(4)).is_err());
        assert_eq!(Shard::from_env(&k8s, None), Err(ShardError::NoArrayTask));
        let k8s_count = env(&[
            ("JOB_COMPLETION_INDEX", "0"),
            ("RETINA_SEG_SHARD_COUNT", "2"),
        ]);
        assert_eq!(Shard::from_env(k8s_count, None), Shard::new(1, 2));

        let none = Shard::from_env(env(&[]), Some(3)).unwrap_err();
        assert_eq!(none, ShardError::NoArrayTask);
        assert!(none.to_string().contains("--shard K/N"));
        let garbage = Shard::from_env(env(&[("JOB_COMPLETION_INDEX", "x")]), Some(2));
        assert!(matches!(garbage, Err(ShardError::Environment { .. })));
    }
}
