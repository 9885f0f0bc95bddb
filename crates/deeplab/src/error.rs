//! Configuration errors.

/// A model configuration that cannot be built; the message says what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// An output stride the architecture does not support.
    #[error("{model} supports output stride {allowed}, not {got}")]
    OutputStride {
        /// The architecture.
        model: &'static str,
        /// The requested output stride.
        got: usize,
        /// The supported ones.
        allowed: &'static str,
    },
}
