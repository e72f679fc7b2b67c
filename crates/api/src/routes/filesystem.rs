//! A container's filesystem: `changes` (diff), `export`, `commit`, and the
//! `archive` endpoints behind `docker cp`.

use std::io::Write;
use std::sync::Arc;

use berth_engine::container::commit::CommitOptions;
use berth_engine::{Config, Engine};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::http::{Resp, blocking, body_json, empty, flag, json, query, streaming};

/// A `Write` that feeds a streamed response body; a gone client turns into
/// a broken pipe, which ends the engine's work.
pub struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))
    }
}

pub async fn changes(engine: Arc<Engine>, id: String) -> Result<Resp> {
    let changes = blocking(move || engine.changes(&id)).await?;
    Ok(json(StatusCode::OK, &changes))
}

pub async fn export(engine: Arc<Engine>, id: String) -> Result<Resp> {
    let e = engine.clone();
    let id2 = id.clone();
    blocking(move || e.inspect(&id2)).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        // Headers are gone already: a failure can only cut the stream short.
        if engine.export(&id, &mut w).is_ok() {
            let _ = w.flush();
        }
    });
    Ok(streaming("application/x-tar", rx))
}

/// Every value of a repeated query parameter (`changes=…&changes=…`).
fn all_values(req: &Request<Incoming>, key: &str) -> Vec<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

pub async fn commit(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let container = q
        .get("container")
        .filter(|c| !c.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("container is required".into()))?;
    // Each `changes` value may hold several instructions, one a line.
    let changes = all_values(&req, "changes")
        .iter()
        .flat_map(|c| c.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut opts = CommitOptions {
        repo: q.get("repo").cloned(),
        tag: q.get("tag").cloned(),
        comment: q.get("comment").cloned(),
        author: q.get("author").cloned(),
        pause: q.get("pause").is_none_or(|_| flag(&q, "pause")),
        changes,
        config: None,
    };
    // The CLI sends `null` when no config is given.
    opts.config = body_json::<Option<Config>>(req).await?;
    let id = blocking(move || engine.commit(&container, opts)).await?;
    Ok(json(StatusCode::CREATED, &json!({ "Id": id })))
}

/// The archive endpoints' `path`, required.
fn archive_path(req: &Request<Incoming>) -> Result<String> {
    query(req)
        .get("path")
        .filter(|p| !p.is_empty())
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("path is required".into()))
}

/// HEAD/GET `/containers/{id}/archive`: the stat header, and for GET the
/// tar stream.
pub async fn archive_get(
    engine: Arc<Engine>,
    id: String,
    req: Request<Incoming>,
    head: bool,
) -> Result<Resp> {
    use base64::Engine as _;
    let path = archive_path(&req)?;
    let (e, id2, p2) = (engine.clone(), id.clone(), path.clone());
    let stat = blocking(move || e.archive_stat(&id2, &p2)).await?;
    let stat = serde_json::to_vec(&stat).map_err(|e| ApiError::Internal(e.to_string()))?;
    let header = base64::engine::general_purpose::STANDARD.encode(stat);
    let mut r = if head {
        empty(StatusCode::OK)
    } else {
        let (tx, rx) = mpsc::channel::<Bytes>(8);
        tokio::task::spawn_blocking(move || {
            let mut w = ChannelWriter::new(tx);
            if engine.archive_get(&id, &path, &mut w).is_ok() {
                let _ = w.flush();
            }
        });
        streaming("application/x-tar", rx)
    };
    r.headers_mut().insert(
        "X-Docker-Container-Path-Stat",
        HeaderValue::from_str(&header).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(r)
}

/// A blocking `Read` over a request body that an async task forwards.
struct BodyReader {
    rx: mpsc::Receiver<std::result::Result<Bytes, String>>,
    cur: Bytes,
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur.split_to(n));
        Ok(n)
    }
}

/// PUT `/containers/{id}/archive`: extracts the body (a tar) into `path`.
pub async fn archive_put(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let path = archive_path(&req)?;
    let q = query(&req);
    let (copy_ids, no_overwrite) = (flag(&q, "copyUIDGID"), flag(&q, "noOverwriteDirNonDir"));
    let (tx, rx) = mpsc::channel(8);
    let mut body = req.into_body();
    tokio::spawn(async move {
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => Ok(d),
                    Err(_) => continue,
                },
                Err(e) => Err(e.to_string()),
            };
            let stop = item.is_err();
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    blocking(move || {
        let mut r = BodyReader {
            rx,
            cur: Bytes::new(),
        };
        let res = engine.archive_put(&id, &path, &mut r, copy_ids, no_overwrite);
        // Drain what the extraction left (tar's zero blocks), so the client
        // is not cut off mid-send.
        let _ = std::io::copy(&mut r, &mut std::io::sink());
        res
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
