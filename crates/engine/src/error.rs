//! The engine's one error type, classified so the API maps it to a status
//! code in one place (as moby's errdefs does).

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidArgument(String),
    /// A registry refused the credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Not allowed whatever the state (removing a predefined network).
    #[error("{0}")]
    Forbidden(String),
    /// The registry or another upstream refused or failed.
    #[error("{0}")]
    Upstream(String),
    #[error("{0}")]
    Internal(String),
}

/// What kind of failure, independent of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Forbidden,
    Upstream,
    Internal,
}

impl EngineError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            EngineError::NotFound(_) => ErrorKind::NotFound,
            EngineError::Conflict(_) => ErrorKind::Conflict,
            EngineError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            EngineError::Unauthorized(_) => ErrorKind::Unauthorized,
            EngineError::Forbidden(_) => ErrorKind::Forbidden,
            EngineError::Upstream(_) => ErrorKind::Upstream,
            EngineError::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<berth_image::Error> for EngineError {
    fn from(e: berth_image::Error) -> Self {
        classify_image_error(&e.to_string(), e)
    }
}

impl From<berth_distribution::Error> for EngineError {
    fn from(e: berth_distribution::Error) -> Self {
        let msg = e.to_string();
        if e.is_unauthorized() {
            EngineError::Unauthorized(msg)
        } else if msg.contains("not found")
            || msg.contains("MANIFEST_UNKNOWN")
            || msg.contains("NAME_UNKNOWN")
        {
            EngineError::NotFound(msg)
        } else {
            EngineError::Upstream(msg)
        }
    }
}

fn classify_image_error(msg: &str, e: berth_image::Error) -> EngineError {
    use berth_image::Error as E;
    match e {
        E::NotFound(_) => EngineError::NotFound(msg.to_string()),
        E::Conflict(..) | E::InUse(_) => EngineError::Conflict(msg.to_string()),
        E::InvalidReference(..)
        | E::InvalidPlatform(_)
        | E::InvalidDigest(_)
        | E::InvalidArchive(_)
        | E::TooLarge { .. } => EngineError::InvalidArgument(msg.to_string()),
        _ => EngineError::Internal(msg.to_string()),
    }
}

impl From<berth_builder::Error> for EngineError {
    fn from(e: berth_builder::Error) -> Self {
        use berth_builder::Error as E;
        match e {
            E::Image(e) => e.into(),
            E::Distribution(e) => e.into(),
            E::Parse { .. } | E::Invalid(_) | E::Unsupported(_) | E::StepFailed { .. } => {
                EngineError::InvalidArgument(e.to_string())
            }
            E::Io { .. } | E::Runtime(_) => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<berth_shim::ShimError> for EngineError {
    fn from(e: berth_shim::ShimError) -> Self {
        EngineError::Internal(format!("shim: {e}"))
    }
}

impl From<serde_json::Error> for EngineError {
    fn from(e: serde_json::Error) -> Self {
        EngineError::InvalidArgument(e.to_string())
    }
}

/// An I/O failure on a path: always internal.
pub fn io_err(op: &str, path: &std::path::Path, e: std::io::Error) -> EngineError {
    EngineError::Internal(format!("{op} {}: {e}", path.display()))
}
