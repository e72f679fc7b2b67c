//! The image crate's one error type. Variants are classes (not found, invalid,
//! hostile...) so the engine can map them to HTTP status codes in one place.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid reference {0:?}: {1}")]
    InvalidReference(String, &'static str),
    #[error("invalid platform {0:?}")]
    InvalidPlatform(String),
    #[error("unsupported media type {0}")]
    UnsupportedMediaType(String),
    #[error("refusing foreign (non-distributable) layer {0}")]
    ForeignLayer(String),
    #[error("no manifest for platform {0} in index")]
    NoMatchingPlatform(String),
    #[error("hostile layer entry {path:?}: {reason}")]
    Hostile { path: String, reason: String },
    #[error("layer has {got} diff ids but manifest has {want} layers")]
    LayerCountMismatch { want: usize, got: usize },
    #[error("image {0} is referenced by {1} tags; use force to remove them all")]
    Conflict(String, usize),
    #[error("conflict: image {0} is in use (mounted or by a container); use force")]
    InUse(String),
    /// An entry would make the extracted tree larger than allowed (its
    /// apparent size: a sparse file counts with its holes).
    #[error(
        "layer entry {path:?} would expand the layer to {total} bytes, over the limit of {limit} bytes"
    )]
    TooLarge {
        path: String,
        total: u64,
        limit: u64,
    },
    /// The work's client went away (see [`crate::Cancel`]).
    #[error("cancelled: the client went away")]
    Cancelled,
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("json in {what}: {source}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Stream(#[from] io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches the operation and path to an io::Error; most failures in a store are
/// only diagnosable with the path in hand.
pub(crate) trait IoContext<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, op: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| Error::Io {
            op,
            path: path.into(),
            source,
        })
    }
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        match self {
            Error::NotFound(_) => true,
            Error::Io { source, .. } => source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}
