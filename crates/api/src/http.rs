//! Small HTTP helpers: bodies, queries, JSON answers, hijacking.

use std::collections::HashMap;
use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};

pub type Body = BoxBody<Bytes, Infallible>;
pub type Resp = Response<Body>;

pub fn full(data: impl Into<Bytes>) -> Body {
    Full::new(data.into()).boxed()
}

pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
    r
}

pub fn json<T: Serialize>(status: StatusCode, v: &T) -> Resp {
    let mut r = Response::new(full(serde_json::to_vec(v).expect("serialisable")));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// A response whose body is whatever arrives on the channel; the headers go
/// out at once (clients such as `docker run` wait for them).
pub fn streaming(content_type: &'static str, rx: mpsc::Receiver<Bytes>) -> Resp {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A streamed `application/json` response fed from synchronous code (a
/// puller's or builder's callbacks cannot await a bounded channel).
pub fn json_lines() -> (mpsc::UnboundedSender<Bytes>, Resp) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if out_tx.send(b).await.is_err() {
                break;
            }
        }
    });
    (tx, streaming("application/json", out_rx))
}

pub fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    crate::request::query_pairs(req.uri().query().unwrap_or(""))
}

/// Docker's booleans in queries: `1`, `true`, `True`.
pub fn flag(q: &HashMap<String, String>, k: &str) -> bool {
    q.get(k)
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "TRUE"))
}

pub fn num(q: &HashMap<String, String>, k: &str) -> Result<Option<i64>> {
    match q.get(k).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid value for {k}: {v}"))),
    }
}

pub async fn body_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T> {
    let bytes = req
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?
        .to_bytes();
    crate::request::json_body(&bytes)
}

/// Runs blocking engine work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> berth_engine::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(ApiError::from)
}

/// Docker's error body.
pub fn error_response(e: &ApiError) -> Resp {
    json(e.status(), &serde_json::json!({ "message": e.to_string() }))
}

/// The multiplexed-stream frame header.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(8 + data.len());
    v.push(stream);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v.into()
}
