//! `POST /build` (legacy builder protocol: the context as a tar body, the
//! progress as a stream of JSON messages) and `POST /build/prune`.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};

use berth_engine::build::{BuildContext, ClientDir, Peer};
use berth_engine::prune::PruneFilter;
use berth_engine::{BuildPruneOptions, BuildRequest, Engine};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::http::{self, Resp, blocking, json, json_lines, num, query, spool};

/// Every value of every query key (`t` repeats).
fn query_all(req: &Request<Incoming>) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        m.entry(k.into_owned()).or_default().push(v.into_owned());
    }
    m
}

fn last<'a>(q: &'a BTreeMap<String, Vec<String>>, k: &str) -> Option<&'a str> {
    q.get(k).and_then(|v| v.last()).map(String::as_str)
}

fn flag(q: &BTreeMap<String, Vec<String>>, k: &str) -> bool {
    last(q, k).is_some_and(|v| matches!(v, "1" | "true" | "True" | "TRUE"))
}

/// `buildargs` / `labels`: a JSON object of strings. A null build-arg value
/// means "unset" (the client resolves values from its own environment).
fn json_map(q: &BTreeMap<String, Vec<String>>, k: &str) -> Result<BTreeMap<String, String>> {
    let Some(s) = last(q, k).filter(|s| !s.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let v: BTreeMap<String, Option<String>> = serde_json::from_str(s).map_err(|e| {
        ApiError::BadRequest(format!("{k}: expected a JSON object of strings: {e}"))
    })?;
    Ok(v.into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect())
}

pub(crate) fn request(q: &BTreeMap<String, Vec<String>>) -> Result<BuildRequest> {
    if let Some(r) = last(q, "remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::BadRequest(format!(
            "remote {r:?}: remote build contexts are not supported; send the context as the request body"
        )));
    }
    let r = BuildRequest {
        dockerfile: last(q, "dockerfile").map(String::from),
        tags: q
            .get("t")
            .map(|v| v.iter().filter(|t| !t.is_empty()).cloned().collect())
            .unwrap_or_default(),
        build_args: json_map(q, "buildargs")?,
        labels: json_map(q, "labels")?,
        target: last(q, "target").map(String::from),
        no_cache: flag(q, "nocache"),
        pull: flag(q, "pull"),
        network: last(q, "networkmode").unwrap_or_default().to_string(),
        platform: last(q, "platform").map(String::from),
        // Berth's own: berth build names its context directory.
        context_key: last(q, "berthcontext")
            .filter(|k| !k.is_empty())
            .map(String::from),
        // From the X-Registry-Config header (see `build`).
        registry_auth: Default::default(),
        cancel: Default::default(),
    };
    r.check_tags()?;
    Ok(r)
}

/// Turns progress text into `{"stream": ...}` messages, one per line, so the
/// client prints the step's output as it comes.
struct StreamWriter {
    tx: mpsc::UnboundedSender<Bytes>,
    buf: Vec<u8>,
    quiet: bool,
}

fn message(v: &Value) -> Bytes {
    let mut line = serde_json::to_vec(v).expect("json");
    line.push(b'\n');
    line.into()
}

impl Write for StreamWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.quiet {
            return Ok(data.len());
        }
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=i).collect();
            let s = String::from_utf8_lossy(&line);
            let _ = self.tx.send(message(&json!({ "stream": s })));
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn build(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query_all(&req);
    let mut breq = request(&q)?;
    breq.registry_auth = super::images::registry_config(&req)?;
    let quiet = flag(&q, "q");
    let peer = req.extensions().get::<Arc<Peer>>().cloned();
    // The context (a tar of any size) goes to a file in the store, read
    // from there as a stream.
    let spooled = spool(&engine, req, "build").await?;
    let body = std::fs::File::open(&spooled.0)
        .map_err(|e| ApiError::Internal(format!("open {}: {e}", spooled.0.display())))?;
    // Berth's own `berthcontextpath`: the context is the directory whose
    // fd the client passed with the connection, read in place (see
    // berth_engine::build::ClientDir); the value only names it in logs.
    // The body is then the Dockerfile when it lies outside it. Refused
    // (403 for non-root, 400 without an fd) before anything streams, so
    // `berth build` falls back to sending a tar.
    let dir = match last(&q, "berthcontextpath").filter(|p| !p.is_empty()) {
        Some(_) => {
            let dir = blocking(move || ClientDir::open(peer.as_deref())).await?;
            Some((dir, dockerfile_text(&body)?))
        }
        None => None,
    };
    let (tx, resp) = json_lines();
    // A client that hangs up cancels the build: RUN's container is
    // killed, no further step starts. The watcher ends with the build
    // (its sender would otherwise hold the response open).
    let cancel = breq.cancel.clone();
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let watch = tx.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = watch.closed() => cancel.cancel(),
            _ = finished => {}
        }
    });
    let sink = Arc::new(Mutex::new(StreamWriter {
        tx: tx.clone(),
        buf: Vec::new(),
        quiet,
    }));
    let tags = breq.tags.clone();
    // A plain thread, not the blocking pool: the builder may start its own
    // tokio runtime (pulling a base image) and forks for each RUN.
    std::thread::spawn(move || {
        let _done = done;
        let _spooled = spooled;
        let send = |v: Value| {
            let _ = tx.send(message(&v));
        };
        let context = match dir {
            Some((dir, dockerfile)) => BuildContext::Dir { dir, dockerfile },
            None => BuildContext::Body(body),
        };
        match engine.build(context, breq, sink) {
            Ok(r) => {
                let id = r.image_id.to_string();
                send(json!({"aux": {"ID": id}}));
                if quiet {
                    send(json!({ "stream": format!("{id}\n") }));
                } else {
                    // What scripts written for the legacy builder look for.
                    let short = r.image_id.hex().chars().take(12).collect::<String>();
                    send(json!({ "stream": format!("Successfully built {short}\n") }));
                    for t in tags {
                        send(json!({ "stream": format!("Successfully tagged {t}\n") }));
                    }
                }
            }
            Err(e) => {
                let msg = e.to_string();
                send(json!({"errorDetail": {"message": msg}, "error": msg}));
            }
        }
    });
    Ok(resp)
}

/// With `berthcontextpath` the body is only the Dockerfile, when it lies
/// outside the context directory (empty otherwise).
fn dockerfile_text(body: &std::fs::File) -> Result<Option<String>> {
    use std::io::Read;
    const MAX: u64 = 16 << 20;
    let mut text = Vec::new();
    body.take(MAX + 1)
        .read_to_end(&mut text)
        .map_err(|e| ApiError::Internal(format!("read the Dockerfile: {e}")))?;
    if text.len() as u64 > MAX {
        return Err(ApiError::TooLarge(format!(
            "the Dockerfile is larger than {} MiB",
            MAX >> 20
        )));
    }
    Ok((!text.is_empty()).then(|| String::from_utf8_lossy(&text).into_owned()))
}

/// `POST /build/prune`: `all`, `filters` (`until`; the cache records
/// nothing else a filter could test) and `keep-storage`; the newer space
/// options are refused rather than ignored.
pub async fn prune(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let opts = prune_options(&query(&req))?;
    let p = blocking(move || engine.build_prune(&opts)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"CachesDeleted": p.deleted, "SpaceReclaimed": p.reclaimed}),
    ))
}

fn prune_options(q: &HashMap<String, String>) -> Result<BuildPruneOptions> {
    for k in ["reserved-space", "max-used-space", "min-free-space"] {
        if num(q, k)?.is_some_and(|v| v != 0) {
            return Err(ApiError::BadRequest(format!(
                "{k} is not supported by this daemon's build cache (use keep-storage)"
            )));
        }
    }
    let keep_storage = match num(q, "keep-storage")? {
        Some(v) => u64::try_from(v)
            .map_err(|_| ApiError::BadRequest(format!("invalid value for keep-storage: {v}")))?,
        None => 0,
    };
    let filter = PruneFilter::parse(q.get("filters").map_or("", String::as_str), &["until"])?;
    Ok(BuildPruneOptions {
        all: http::flag(q, "all"),
        filter,
        keep_storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<String>> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        m
    }

    #[test]
    fn prune_query() {
        let h = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let o = prune_options(&h(&[
            ("all", "1"),
            ("keep-storage", "1000"),
            ("filters", r#"{"until":{"24h":true}}"#),
        ]))
        .unwrap();
        assert!(o.all && o.keep_storage == 1000 && !o.filter.is_empty());
        let o = prune_options(&h(&[])).unwrap();
        assert!(!o.all && o.keep_storage == 0 && o.filter.is_empty());
        // Never silently ignored: a filter the cache cannot test, a space
        // option it does not implement, a negative size.
        for bad in [
            ("filters", r#"{"label":["a"]}"#),
            ("filters", r#"{"until":["soon"]}"#),
            ("max-used-space", "10"),
            ("keep-storage", "-1"),
        ] {
            let e = prune_options(&h(&[bad]));
            assert!(e.is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn build_query() {
        let r = request(&q(&[
            ("t", "a:1"),
            ("t", "b"),
            ("buildargs", r#"{"X":"1","Y":null}"#),
            ("labels", r#"{"l":"v"}"#),
            ("nocache", "1"),
            ("target", "t1"),
            ("networkmode", "host"),
        ]))
        .unwrap();
        assert_eq!(r.tags, ["a:1", "b"]);
        assert_eq!(r.build_args.len(), 1);
        assert_eq!(r.build_args["X"], "1");
        assert_eq!(r.labels["l"], "v");
        assert!(r.no_cache && !r.pull);
        assert_eq!(r.target.as_deref(), Some("t1"));
        assert_eq!(r.network, "host");
    }

    #[test]
    fn bad_build_query() {
        let e = request(&q(&[("buildargs", "[1]")])).unwrap_err();
        assert!(e.to_string().contains("buildargs"), "{e}");
        assert_eq!(e.status().as_u16(), 400);
        let e = request(&q(&[("remote", "https://x/y.git")])).unwrap_err();
        assert!(e.to_string().contains("remote"), "{e}");
        // -t names are refused before anything builds.
        for (t, word) in [
            ("ok:../bad:latest", "invalid reference format"),
            ("Upper", "must be lowercase"),
            (
                "a@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                "cannot contain a digest",
            ),
        ] {
            let e = request(&q(&[("t", "good:1"), ("t", t)])).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{t}");
            assert!(e.to_string().contains(word), "{t}: {e}");
        }
    }
}
