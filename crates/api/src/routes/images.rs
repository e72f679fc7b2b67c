//! /images: list, inspect, pull (`create`), tag, remove.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use berth_distribution::Progress;
use berth_engine::{Engine, Removed};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::http::{Resp, blocking, empty, flag, json, json_lines, query};

pub async fn list(engine: Arc<Engine>) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.images()).await?,
    ))
}

pub async fn inspect(engine: Arc<Engine>, name: String) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.image_inspect(&name)).await?,
    ))
}

pub async fn tag(engine: Arc<Engine>, name: String, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let repo = q.get("repo").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().unwrap_or_default();
    if repo.is_empty() {
        return Err(ApiError::BadRequest(
            "repository name must have at least one component".into(),
        ));
    }
    blocking(move || engine.tag(&name, &repo, &tag)).await?;
    Ok(empty(StatusCode::CREATED))
}

pub async fn remove(engine: Arc<Engine>, name: String, req: Request<Incoming>) -> Result<Resp> {
    let force = flag(&query(&req), "force");
    let removed = blocking(move || engine.remove_image(&name, force)).await?;
    let out: Vec<Value> = removed
        .into_iter()
        .map(|r| match r {
            Removed::Untagged(t) => json!({ "Untagged": t }),
            Removed::Deleted(d) => json!({ "Deleted": d }),
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// Docker's JSON progress messages, one per line, from the puller's events.
/// Byte counts are sent at most every 2% of a layer, so a large layer does
/// not flood the client.
struct JsonProgress {
    tx: mpsc::UnboundedSender<Bytes>,
    sent: Mutex<HashMap<String, (u64, u64)>>,
}

impl JsonProgress {
    fn send(&self, v: Value) {
        let mut line = serde_json::to_vec(&v).expect("json");
        line.push(b'\n');
        let _ = self.tx.send(line.into());
    }
}

impl Progress for JsonProgress {
    fn start(&self, id: &str, total: u64) {
        self.sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.into(), (total, 0));
        self.send(json!({"status": "Pulling fs layer", "progressDetail": {}, "id": id}));
    }
    fn advance(&self, id: &str, done: u64) {
        let total = {
            let mut m = self.sent.lock().unwrap_or_else(|p| p.into_inner());
            let e = m.entry(id.into()).or_insert((0, 0));
            if done < e.1 + e.0 / 50 && done != e.0 {
                return;
            }
            e.1 = done;
            e.0
        };
        self.send(json!({"status": "Downloading", "progressDetail": {"current": done, "total": total}, "id": id}));
    }
    fn finish(&self, id: &str, status: &str) {
        self.send(json!({"status": status, "progressDetail": {}, "id": id}));
    }
    fn message(&self, msg: &str) {
        self.send(json!({ "status": msg }));
    }
}

/// `POST /images/create?fromImage=&tag=`: a pull, streamed as JSON messages;
/// a failure mid-stream is an `errorDetail` message (the status is sent).
pub async fn create(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let Some(from) = q.get("fromImage").cloned().filter(|f| !f.is_empty()) else {
        return Err(ApiError::BadRequest(
            "only pulls (fromImage) are supported".into(),
        ));
    };
    let tag = q.get("tag").cloned().unwrap_or_default();
    let (tx, resp) = json_lines();
    let progress = Arc::new(JsonProgress {
        tx: tx.clone(),
        sent: Mutex::new(HashMap::new()),
    });
    tokio::spawn(async move {
        // The puller itself reports "Pulling from" and "Digest".
        match engine.pull(&from, &tag, progress.clone()).await {
            Ok((reference, _)) => {
                progress.message(&format!("Status: Downloaded newer image for {reference}"));
            }
            Err(e) => {
                let msg = e.to_string();
                progress.send(json!({"errorDetail": {"message": msg}, "error": msg}));
            }
        }
    });
    drop(tx);
    Ok(resp)
}
