//! The API's error type and the one place errors become status codes.

use berth_engine::{EngineError, ErrorKind};
use hyper::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{0}")]
    BadRequest(String),
    #[error("page not found")]
    NoRoute,
    /// A request body over its endpoint's limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// A feature Berth does not have (501).
    #[error("{0}")]
    NotImplemented(String),
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// Docker's codes: 400 bad parameter, 404 no such thing, 409 conflict,
    /// 500 only for real internal faults.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Engine(e) => match e.kind() {
                ErrorKind::NotFound => StatusCode::NOT_FOUND,
                ErrorKind::Conflict => StatusCode::CONFLICT,
                ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
                ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
                ErrorKind::Forbidden => StatusCode::FORBIDDEN,
                ErrorKind::Upstream | ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        let e = |x: EngineError| ApiError::from(x).status().as_u16();
        assert_eq!(e(EngineError::NotFound("x".into())), 404);
        assert_eq!(e(EngineError::Conflict("x".into())), 409);
        assert_eq!(e(EngineError::InvalidArgument("x".into())), 400);
        assert_eq!(e(EngineError::Unauthorized("x".into())), 401);
        assert_eq!(e(EngineError::Internal("x".into())), 500);
        assert_eq!(e(EngineError::Forbidden("x".into())), 403);
        assert_eq!(ApiError::NoRoute.status().as_u16(), 404);
        assert_eq!(ApiError::TooLarge("x".into()).status().as_u16(), 413);
    }
}
