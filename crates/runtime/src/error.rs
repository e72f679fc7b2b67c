//! The runtime's one error type.

use std::path::PathBuf;

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container \"{0}\" does not exist")]
    NotFound(String),
    #[error("container with id \"{0}\" already exists")]
    AlreadyExists(String),
    #[error(
        "invalid container id \"{0}\": use 1-1024 characters from [A-Za-z0-9_+.-], not starting with '.'"
    )]
    InvalidId(String),
    #[error("container \"{id}\" is {status}: {action} needs it {wanted}")]
    WrongState {
        id: String,
        status: String,
        action: &'static str,
        wanted: &'static str,
    },
    #[error("{path}: {msg}")]
    Config { path: PathBuf, msg: String },
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup: {0}")]
    Cgroup(#[from] berth_cgroups::CgroupError),
    #[error("container init: {0}")]
    Init(String),
    /// An error relayed from a child process, already fully worded.
    #[error("{0}")]
    Relayed(String),
    #[error("hook {kind}[{index}] {path}: {msg}")]
    Hook {
        kind: &'static str,
        index: usize,
        path: String,
        msg: String,
    },
}

impl RuntimeError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Adds a context string to an `io::Result`.
pub trait IoContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(context(), e))
    }
}

impl<T> IoContext<T> for nix::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| RuntimeError::io(context(), std::io::Error::from(e)))
    }
}
