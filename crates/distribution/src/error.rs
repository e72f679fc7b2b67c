//! The distribution crate's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error("registry request {method} {url}: {source}")]
    Http {
        method: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("registry answered {status} to {method} {url}: {body}")]
    Status {
        method: String,
        url: String,
        status: u16,
        body: String,
    },
    #[error("authentication with {0} failed: {1}")]
    Auth(String, String),
    /// The registry wants basic auth and the caller sent no credentials
    /// (dockerd's words, with Go's method spelling).
    #[error("{method} \"{url}\": no basic auth credentials")]
    NoCredentials { method: String, url: String },
    /// The registry refused the manifest to who we are (dockerd's words:
    /// a private repository and one that does not exist look alike).
    #[error(
        "pull access denied for {0}, repository does not exist or may require 'docker login': denied: requested access to the resource is denied"
    )]
    PullDenied(String),
    #[error("registry protocol: {0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("task failed: {0}")]
    Task(String),
}

impl Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Status { status: 404, .. })
    }

    /// The registry refused who we are (or that we are nobody).
    pub fn is_unauthorized(&self) -> bool {
        matches!(
            self,
            Error::Status { status: 401, .. }
                | Error::NoCredentials { .. }
                | Error::PullDenied(_)
                | Error::Auth(..)
        )
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
