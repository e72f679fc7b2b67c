//! The crate's one error type. Messages name the object (link, network,
//! address, rule) and the operation that failed.

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// A link, network or address that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Already exists, or in use (address taken, subnet overlaps).
    #[error("{0}")]
    Conflict(String),
    /// Bad subnet, gateway, port spec and the like.
    #[error("{0}")]
    InvalidArgument(String),
    /// A kernel or tool call failed.
    #[error("{context}: {source}")]
    Os {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl NetworkError {
    pub fn os(context: impl Into<String>, source: std::io::Error) -> Self {
        NetworkError::Os {
            context: context.into(),
            source,
        }
    }
}
