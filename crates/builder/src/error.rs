use std::path::PathBuf;

/// Everything the builder can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Dockerfile (or .dockerignore) syntax error, with its position.
    #[error("{file}:{line}:{col}: {msg}")]
    Parse {
        file: String,
        line: usize,
        col: usize,
        msg: String,
    },
    /// A well-formed instruction the build cannot carry out (bad value,
    /// unknown stage, a file the context lacks…).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} is not supported yet")]
    Unsupported(String),
    #[error("step `{step}` failed: exit code {code}")]
    StepFailed { step: String, code: i32 },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Distribution(#[from] berth_distribution::Error),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::RuntimeError),
}

pub type Result<T> = std::result::Result<T, Error>;

#[allow(dead_code)] // used by the build engine
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}
