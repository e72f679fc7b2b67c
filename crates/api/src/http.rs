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
/// puller's or builder's callbacks cannot await a bounded channel). When
/// the client goes away (hyper drops the body) the sender closes at once,
/// even while nothing is being sent: `tx.closed()` / `tx.is_closed()` is
/// how the work learns nobody waits for it any more.
pub fn json_lines() -> (mpsc::UnboundedSender<Bytes>, Resp) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let (out_tx, out_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                b = rx.recv() => {
                    let Some(b) = b else { break };
                    if out_tx.send(b).await.is_err() {
                        break;
                    }
                }
                () = out_tx.closed() => break,
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

/// The most a JSON request body may hold (container create/update, exec,
/// network, volume, commit, auth). dockerd reads JSON bodies whole with no
/// cap; a real `docker run` config with hundreds of env vars and labels is
/// a few KiB, so 4 MiB refuses only abuse (a 600 MB body took berthd to
/// 1.45 GB of RSS).
pub const MAX_JSON_BODY: u64 = 4 << 20;

fn too_large(limit: u64) -> ApiError {
    ApiError::TooLarge(format!(
        "request body too large: the limit for this endpoint is {} MiB",
        limit >> 20
    ))
}

/// Reads a body of at most `limit` bytes: a larger declared
/// `Content-Length` is refused before anything is read, and a body that
/// grows past the limit is refused as soon as it does (the rest is never
/// read; hyper then closes the connection).
pub async fn read_limited(
    headers: &hyper::HeaderMap,
    mut body: Incoming,
    limit: u64,
) -> Result<Bytes> {
    let declared = headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?;
        if let Some(d) = frame.data_ref() {
            if (buf.len() + d.len()) as u64 > limit {
                return Err(too_large(limit));
            }
            buf.extend_from_slice(d);
        }
    }
    Ok(buf.freeze())
}

pub async fn body_json<T: serde::de::DeserializeOwned + Default>(
    req: Request<Incoming>,
) -> Result<T> {
    let (parts, body) = req.into_parts();
    let bytes = read_limited(&parts.headers, body, MAX_JSON_BODY).await?;
    crate::request::json_body(&bytes)
}

/// The request body streamed into a scratch file in the store, never
/// whole in memory (archives are read by seeking, build contexts as a
/// stream); removed when the guard drops.
pub struct Scratch(pub std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

pub async fn spool(
    engine: &berth_engine::Engine,
    req: Request<Incoming>,
    what: &str,
) -> Result<Scratch> {
    use tokio::io::AsyncWriteExt;
    let path = engine.scratch_path(what);
    if let Some(d) = path.parent() {
        tokio::fs::create_dir_all(d)
            .await
            .map_err(|e| ApiError::Internal(format!("create {}: {e}", d.display())))?;
    }
    let scratch = Scratch(path.clone());
    let mut f = tokio::fs::File::create(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("create {}: {e}", path.display())))?;
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::BadRequest(format!("reading body: {e}")))?;
        if let Some(d) = frame.data_ref() {
            f.write_all(d)
                .await
                .map_err(|e| ApiError::Internal(format!("write {}: {e}", path.display())))?;
        }
    }
    f.flush()
        .await
        .map_err(|e| ApiError::Internal(format!("write {}: {e}", path.display())))?;
    Ok(scratch)
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
