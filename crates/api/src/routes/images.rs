//! /images: list, inspect, pull and import (`create`), tag, remove, push,
//! save (`get`), load, history; /auth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use berth_distribution::Progress;
use berth_engine::images::AuthConfig;
use berth_engine::{Engine, Removed};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::http::{
    Resp, blocking, body_json, empty, flag, full, json, json_lines, query, spool, streaming,
};

/// `GET /images/json`: `filters` as dockerd's. `all` and `digests` change
/// nothing here: Berth stores no intermediate (parent) images for `all` to
/// reveal, and RepoDigests are always listed (dockerd ignores `digests`,
/// the CLI asks for it only to print them).
pub async fn list(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let filters = query(&req).get("filters").cloned().unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.images_filtered(&filters)).await?,
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
    /// Docker's words for a layer starting and moving: pull or push.
    words: (&'static str, &'static str),
}

const PULL_WORDS: (&str, &str) = ("Pulling fs layer", "Downloading");
const PUSH_WORDS: (&str, &str) = ("Preparing", "Pushing");

impl JsonProgress {
    fn new(words: (&'static str, &'static str)) -> (Arc<JsonProgress>, Resp) {
        let (tx, resp) = json_lines();
        let p = Arc::new(JsonProgress {
            tx,
            sent: Mutex::new(HashMap::new()),
            words,
        });
        (p, resp)
    }

    fn error(&self, msg: &str) {
        self.send(json!({"errorDetail": {"message": msg}, "error": msg}));
    }
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
        self.send(json!({"status": self.words.0, "progressDetail": {}, "id": id}));
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
        self.send(json!({"status": self.words.1, "progressDetail": {"current": done, "total": total}, "id": id}));
    }
    fn finish(&self, id: &str, status: &str) {
        self.send(json!({"status": status, "progressDetail": {}, "id": id}));
    }
    fn message(&self, msg: &str) {
        self.send(json!({ "status": msg }));
    }
}

/// A base64 (URL-safe or standard, padded or not) JSON header; absent,
/// empty or `{}` is the default (anonymous).
fn json_header<T: serde::de::DeserializeOwned + Default>(
    req: &Request<Incoming>,
    name: &str,
) -> Result<T> {
    let Some(h) = req.headers().get(name) else {
        return Ok(T::default());
    };
    let bad =
        |e: &dyn std::fmt::Display| ApiError::BadRequest(format!("invalid {name} header: {e}"));
    let trimmed: Vec<u8> = h
        .as_bytes()
        .iter()
        .copied()
        .filter(|b| *b != b'=')
        .collect();
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&trimmed)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(&trimmed))
        .map_err(|e| bad(&e))?;
    if decoded.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&decoded).map_err(|e| bad(&e))
}

/// `X-Registry-Auth`: the credentials of a pull or push. The daemon has
/// no others: without them the registry sees an anonymous client.
fn registry_auth(req: &Request<Incoming>) -> Result<AuthConfig> {
    json_header(req, "X-Registry-Auth")
}

/// `X-Registry-Config`: a build's credentials, a map from registry (as
/// config.json keys it) to credentials, as docker's CLI and docker-py send it.
pub(crate) fn registry_config(
    req: &Request<Incoming>,
) -> Result<berth_distribution::auth::AuthMap> {
    let m: std::collections::BTreeMap<String, AuthConfig> = json_header(req, "X-Registry-Config")?;
    Ok(AuthConfig::map(m))
}

/// `POST /images/create`: a pull (`fromImage`) or an import (`fromSrc=-`,
/// the tarball in the body), streamed as JSON messages; a failure
/// mid-stream is an `errorDetail` message (the status is already sent).
pub async fn create(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    if let Some(src) = q.get("fromSrc").filter(|f| !f.is_empty()) {
        if src != "-" {
            return Err(ApiError::BadRequest(format!(
                "importing from a URL ({src}) is not supported; send the tarball in the body with fromSrc=-"
            )));
        }
        return import(engine, req).await;
    }
    let Some(from) = q.get("fromImage").cloned().filter(|f| !f.is_empty()) else {
        return Err(ApiError::BadRequest(
            "fromImage or fromSrc is required".into(),
        ));
    };
    let tag = q.get("tag").cloned().unwrap_or_default();
    let platform = q.get("platform").cloned().unwrap_or_default();
    let auth = registry_auth(&req)?;
    // A bad name is a 400 before the stream starts, as dockerd's.
    berth_engine::images::pull_reference(&from, &tag)?;
    let (progress, resp) = JsonProgress::new(PULL_WORDS);
    // What the name meant before, to tell "newer image" from "up to date".
    let name = berth_engine::images::pull_name(&from, &tag);
    let e = engine.clone();
    let before = blocking(move || Ok(e.image_inspect(&name).ok().map(|i| i.id))).await?;
    tokio::spawn(async move {
        // A client that hangs up cancels the pull (as dockerd's request
        // context does): the unpacks stop and the downloads are dropped.
        let cancel = berth_engine::Cancel::new();
        let pull = engine.pull(&from, &tag, &platform, &auth, progress.clone(), &cancel);
        let result = tokio::select! {
            r = pull => r,
            () = progress.tx.closed() => {
                cancel.cancel();
                return;
            }
        };
        // The puller itself reports "Pulling from" and "Digest".
        match result {
            Ok((reference, rec)) => {
                if before.as_deref() == Some(rec.id.to_string().as_str()) {
                    progress.message(&format!("Status: Image is up to date for {reference}"));
                } else {
                    progress.message(&format!("Status: Downloaded newer image for {reference}"));
                }
            }
            Err(e) => progress.error(&e.to_string()),
        }
    });
    Ok(resp)
}

/// `POST /images/{name}/push?tag=`: progress as JSON messages, ending with
/// the digest line and an `aux` message, as docker's.
pub async fn push(engine: Arc<Engine>, name: String, req: Request<Incoming>) -> Result<Resp> {
    let tag = query(&req).get("tag").cloned().unwrap_or_default();
    let auth = registry_auth(&req)?;
    // A missing image is a 404 before the stream starts.
    let (e, n, t) = (engine.clone(), name.clone(), tag.clone());
    blocking(move || e.push_source(&n, &t).map(|_| ())).await?;
    let (progress, resp) = JsonProgress::new(PUSH_WORDS);
    tokio::spawn(async move {
        match engine.push(&name, &tag, &auth, progress.clone()).await {
            Ok((reference, digest)) => {
                let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
                let size = engine
                    .image_store()
                    .content
                    .size(&digest)
                    .unwrap_or_default();
                progress.send(json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest.to_string(), "Size": size}}));
            }
            Err(e) => progress.error(&e.to_string()),
        }
    });
    Ok(resp)
}

/// A `Write` whose bytes become response chunks (for archives written by
/// blocking code).
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))
    }
}

/// `GET /images/{name}/get` and `GET /images/get?names=…`: a docker-archive
/// tar, streamed as it is written.
pub async fn get(engine: Arc<Engine>, names: Vec<String>) -> Result<Resp> {
    let e = engine.clone();
    let n = names.clone();
    blocking(move || e.check_images(&n)).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx,
            buf: Vec::new(),
        };
        // A failure mid-archive can only cut the stream short; the client
        // sees a truncated tar (docker behaves the same).
        if let Err(err) = engine.save(&names, &mut w) {
            eprintln!("berthd: save {names:?}: {err}");
            return;
        }
        let _ = std::io::Write::flush(&mut w);
    });
    Ok(streaming("application/x-tar", rx))
}

pub fn names_query(req: &Request<Incoming>) -> Vec<String> {
    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "names")
        .map(|(_, v)| v.into_owned())
        .collect()
}

/// A JSON-lines body from messages known up front.
fn lines(msgs: &[Value]) -> Resp {
    let mut body = Vec::new();
    for m in msgs {
        body.extend_from_slice(m.to_string().as_bytes());
        body.push(b'\n');
    }
    let mut r = hyper::Response::new(full(body));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST /images/load`: a docker-archive or OCI-layout tar in the body;
/// answers `{"stream": "Loaded image: …\n"}` messages.
pub async fn load(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let scratch = spool(&engine, req, "load").await?;
    let path = scratch.0.clone();
    let loaded = blocking(move || engine.load(&path)).await;
    drop(scratch);
    let msgs: Vec<Value> = match loaded {
        Ok(l) => l
            .into_iter()
            .map(|line| json!({ "stream": format!("{line}\n") }))
            .collect(),
        // Docker answers 200 with the error in the stream once the body was read.
        Err(e) => {
            let msg = e.to_string();
            vec![json!({"errorDetail": {"message": msg}, "error": msg})]
        }
    };
    Ok(lines(&msgs))
}

async fn import(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let repo = q.get("repo").cloned().unwrap_or_default();
    let tag = q.get("tag").cloned().unwrap_or_default();
    let message = q.get("message").cloned().unwrap_or_default();
    let changes: Vec<String> = form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
        .filter(|(k, _)| k == "changes")
        .map(|(_, v)| v.into_owned())
        .collect();
    // The body is read even when a change is bad (the engine rejects it):
    // an answer before the upload ends breaks clients mid-write.
    let scratch = spool(&engine, req, "import").await?;
    let path = scratch.0.clone();
    let id = blocking(move || engine.import(&path, &repo, &tag, &message, &changes)).await;
    drop(scratch);
    Ok(lines(&[match id {
        Ok(id) => json!({ "status": id }),
        Err(e) => {
            let msg = e.to_string();
            json!({"errorDetail": {"message": msg}, "error": msg})
        }
    }]))
}

pub async fn history(engine: Arc<Engine>, name: String) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.history(&name)).await?,
    ))
}

/// `POST /auth`: checks the credentials against the registry.
pub async fn auth(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let a: AuthConfig = body_json(req).await?;
    engine.auth(&a).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}

/// `GET /images/search`: Berth has no index to search.
pub async fn search() -> Result<Resp> {
    Err(ApiError::NotImplemented(
        "search is not supported by Berth: registries speaking the OCI distribution API have no search endpoint".into(),
    ))
}
