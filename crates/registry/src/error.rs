//! The registry's one error type, and the one place where errors become HTTP
//! responses: each variant is an OCI distribution-spec error code with its status.

use std::io;
use std::path::PathBuf;

use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload invalid: {0}")]
    BlobUploadInvalid(String),
    #[error("blob upload unknown to registry: {0}")]
    BlobUploadUnknown(String),
    #[error("requested range not satisfiable: {0}")]
    RangeInvalid(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest too large: {0} bytes")]
    ManifestTooLarge(u64),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("provided length did not match content length: {0}")]
    SizeInvalid(String),
    #[error("authentication required")]
    Unauthorized {
        /// The `WWW-Authenticate` challenge to send.
        challenge: String,
    },
    #[error("requested access to the resource is denied")]
    Denied,
    #[error("the operation is unsupported: {0}")]
    Unsupported(String),
    #[error("not found")]
    RouteNotFound,
    #[error("invalid config: {0}")]
    Config(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("request body: {0}")]
    Body(String),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Stream(#[from] io::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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
    /// The spec's error code and the HTTP status it goes with.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        use Error::*;
        match self {
            BlobUnknown(_) => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            BlobUploadInvalid(_) => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            BlobUploadUnknown(_) => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            RangeInvalid(_) => ("BLOB_UPLOAD_INVALID", StatusCode::RANGE_NOT_SATISFIABLE),
            DigestInvalid(_) => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            ManifestInvalid(_) => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            ManifestTooLarge(_) => ("MANIFEST_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
            ManifestUnknown(_) => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            NameInvalid(_) => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            NameUnknown(_) => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            SizeInvalid(_) => ("SIZE_INVALID", StatusCode::BAD_REQUEST),
            Unauthorized { .. } => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            Denied => ("DENIED", StatusCode::FORBIDDEN),
            Unsupported(_) => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            RouteNotFound => ("NOT_FOUND", StatusCode::NOT_FOUND),
            Body(_) => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            Image(e) => match e {
                berth_image::Error::DigestMismatch { .. }
                | berth_image::Error::InvalidDigest(_) => {
                    ("DIGEST_INVALID", StatusCode::BAD_REQUEST)
                }
                berth_image::Error::SizeMismatch { .. } => {
                    ("SIZE_INVALID", StatusCode::BAD_REQUEST)
                }
                e if e.is_not_found() => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
                _ => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
            },
            Config(_) | Io { .. } | Stream(_) => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The `{"errors":[...]}` body of the spec.
    pub fn body(&self) -> String {
        let (code, _) = self.code_and_status();
        let detail = match self {
            Error::Unauthorized { .. } | Error::Denied => serde_json::Value::Null,
            other => serde_json::Value::String(other.to_string()),
        };
        serde_json::json!({
            "errors": [{"code": code, "message": self.message(), "detail": detail}]
        })
        .to_string()
    }

    fn message(&self) -> String {
        match self {
            Error::Io { .. } | Error::Stream(_) | Error::Config(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}
