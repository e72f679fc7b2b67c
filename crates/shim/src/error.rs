//! The shim's one error type.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The OCI runtime failed; `message` is what it printed.
    #[error("runtime {action} failed: {message}")]
    Runtime { action: String, message: String },
    #[error("usage: {0}")]
    Usage(String),
    /// A malformed request or response on the control socket.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The shim refused a request (wrong state, unknown exec id ...).
    #[error("{0}")]
    Refused(String),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
}

pub type Result<T> = std::result::Result<T, ShimError>;

/// Attaches what was being done to an io::Error.
pub(crate) trait IoContext<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| ShimError::Io {
            context: what(),
            source,
        })
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| ShimError::Io {
            context: what(),
            source: io::Error::from(e),
        })
    }
}
