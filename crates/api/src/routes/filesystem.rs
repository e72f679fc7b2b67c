//! A container's filesystem: `changes` (diff), `export`, `commit`, and the
//! `archive` endpoints behind `docker cp`.

use std::io::Write;
use std::sync::Arc;

use berth_engine::container::commit::CommitOptions;
use berth_engine::{Config, Engine};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::http::{Resp, blocking, body_json, flag, json, query, streaming};

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
