//! /containers and /exec.

use std::sync::Arc;

use berth_engine::container::ListOptions;
use berth_engine::{CreateRequest, Engine, ExecConfig, LogOptions, WaitCondition};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::error::{ApiError, Result};
use crate::hijack;
use crate::http::{Resp, blocking, body_json, empty, flag, frame, json, num, query, streaming};

pub async fn list(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let filters = crate::request::filters(&q)?;
    let opts = ListOptions {
        all: flag(&q, "all"),
        filters,
    };
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.list(&opts)).await?,
    ))
}

pub async fn create(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let name = query(&req).get("name").cloned();
    let body: CreateRequest = body_json(req).await?;
    let (id, warnings) = blocking(move || engine.create(name.as_deref(), body)).await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": id, "Warnings": warnings}),
    ))
}

pub async fn inspect(engine: Arc<Engine>, id: String) -> Result<Resp> {
    let c = blocking(move || engine.inspect(&id)).await?;
    let mut v = serde_json::to_value(&c).map_err(|e| ApiError::Internal(e.to_string()))?;
    // Fields docker clients read that Berth has no content for yet.
    v["Mounts"] = berth_engine::container::mounts::inspect_mounts(&c);
    if let Some(o) = v.as_object_mut() {
        o.remove("MountPoints");
    }
    v["ExecIDs"] = Value::Null;
    v["GraphDriver"] = json!({"Name": "overlay2", "Data": null});
    Ok(json(StatusCode::OK, &v))
}

pub async fn start(engine: Arc<Engine>, id: String) -> Result<Resp> {
    blocking(move || engine.start(&id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn stop(
    engine: Arc<Engine>,
    id: String,
    req: Request<Incoming>,
    restart: bool,
) -> Result<Resp> {
    let q = query(&req);
    let t = num(&q, "t")?;
    let signal = q.get("signal").cloned();
    blocking(move || {
        engine.stop(&id, t, signal.as_deref())?;
        if restart {
            engine.start(&id)?;
        }
        Ok(())
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn kill(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let signal = query(&req).get("signal").cloned();
    blocking(move || engine.kill(&id, signal.as_deref())).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Headers as soon as the wait is registered, the status when it holds.
pub async fn wait(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let cond: WaitCondition = query(&req)
        .get("condition")
        .map_or("", String::as_str)
        .parse()
        .map_err(ApiError::from)?;
    let e = engine.clone();
    let mut ticket = blocking(move || e.wait_ticket(&id, cond)).await?;
    let (tx, rx) = mpsc::channel(1);
    // No thread waits: the container's events wake the check, and a client
    // that goes away ends the task at once.
    let mut events = engine.subscribe(None).live;
    tokio::spawn(async move {
        loop {
            if let Some(code) = engine.wait_poll(&mut ticket) {
                let body = json!({"StatusCode": code, "Error": null}).to_string();
                let _ = tx.send(Bytes::from(body)).await;
                return;
            }
            tokio::select! {
                e = events.recv() => match e {
                    Ok(e) if e.actor.id != ticket.id() => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
                _ = tx.closed() => return,
                // A safety net for changes that emit no event.
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            }
        }
    });
    Ok(streaming("application/json", rx))
}

pub async fn attach(engine: Arc<Engine>, id: String, mut req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let (stdin, stdout, stderr) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    let keys = q
        .get("detachKeys")
        .filter(|k| !k.is_empty())
        .map_or(hijack::DEFAULT_DETACH_KEYS, String::as_str);
    let keys = hijack::parse_detach_keys(keys)?;
    let (e, id2) = (engine.clone(), id.clone());
    let (stream, tty) = blocking(move || engine.attach(&id, stdin, stdout, stderr)).await?;
    hijack::upgrade(
        &mut req,
        stream,
        tty,
        Some(keys),
        || {},
        move || e.emit_container(&id2, "detach", &[]),
    )
}

pub async fn resize(
    engine: Arc<Engine>,
    id: String,
    exec: Option<String>,
    req: Request<Incoming>,
) -> Result<Resp> {
    let q = query(&req);
    let w = num(&q, "w")?.unwrap_or(80).clamp(0, u16::MAX as i64) as u16;
    let h = num(&q, "h")?.unwrap_or(24).clamp(0, u16::MAX as i64) as u16;
    blocking(move || engine.resize(&id, exec.as_deref(), w, h)).await?;
    Ok(empty(StatusCode::OK))
}

pub async fn remove(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let (force, volumes) = (flag(&q, "force"), flag(&q, "v"));
    blocking(move || engine.remove_with(&id, force, volumes)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn logs(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let time = |k: &str| -> Result<Option<f64>> {
        match q.get(k).filter(|v| !v.is_empty() && *v != "0") {
            None => Ok(None),
            Some(v) => v
                .parse::<f64>()
                .map(Some)
                .map_err(|_| ApiError::BadRequest(format!("invalid value for {k}: {v}"))),
        }
    };
    let opts = LogOptions {
        stdout: flag(&q, "stdout"),
        stderr: flag(&q, "stderr"),
        timestamps: flag(&q, "timestamps"),
        follow: flag(&q, "follow"),
        tail: q.get("tail").and_then(|t| t.parse().ok()),
        since: time("since")?,
        until: time("until")?,
    };
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::BadRequest(
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    let e = engine.clone();
    let id2 = id.clone();
    let tty = blocking(move || e.inspect(&id2)).await?.tty();
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::task::spawn_blocking(move || {
        let _ = engine.logs(&id, &opts, &mut |stream, data| {
            if stream == 0 {
                return !tx.is_closed();
            }
            let chunk = if tty {
                Bytes::copy_from_slice(data)
            } else {
                frame(stream, data)
            };
            tx.blocking_send(chunk).is_ok()
        });
    });
    let ct = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    Ok(streaming(ct, rx))
}

pub async fn exec_create(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let cfg: ExecConfig = body_json(req).await?;
    if let Some(k) = cfg.detach_keys.as_deref().filter(|k| !k.is_empty()) {
        hijack::parse_detach_keys(k)?;
    }
    let exec_id = blocking(move || engine.exec_create(&id, cfg)).await?;
    Ok(json(StatusCode::CREATED, &json!({ "Id": exec_id })))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStart {
    detach: bool,
}

pub async fn exec_start(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    // The body must be read before the upgrade takes the connection; keep
    // the headers (and the upgrade handle) in a rebuilt request.
    let (parts, body) = req.into_parts();
    let bytes = crate::http::read_limited(&parts.headers, body, crate::http::MAX_JSON_BODY).await?;
    let start: ExecStart = if bytes.is_empty() {
        ExecStart::default()
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON: {e}")))?
    };
    let mut req = Request::from_parts(parts, ());
    let e = engine.clone();
    let id2 = id.clone();
    let detach = start.detach;
    let started = blocking(move || {
        let x = e.exec_inspect(&id2)?;
        let tty = x.process_config["tty"].as_bool().unwrap_or(false);
        Ok((e.exec_start(&id2, detach), x.detach_keys, tty))
    })
    .await?;
    let (stream, keys) = match started {
        (Ok(s), keys, _) => (s, keys),
        // The process could not be started (no such command, not
        // executable): the exec has its exit code; an attached client
        // learns why on the stream, as from dockerd.
        (Err(err), _, tty)
            if !detach
                && req.headers().contains_key(hyper::header::UPGRADE)
                && matches!(err.kind(), berth_engine::ErrorKind::InvalidArgument) =>
        {
            return Ok(hijack::upgrade_with_error(&mut req, tty, err.to_string()));
        }
        (Err(err), _, _) => return Err(err.into()),
    };
    let keys = if keys.is_empty() {
        hijack::DEFAULT_DETACH_KEYS
    } else {
        &keys
    };
    let keys = hijack::parse_detach_keys(keys)?;
    match stream {
        None => Ok(empty(StatusCode::OK)),
        Some((s, tty)) => {
            let (e, id2) = (engine.clone(), id.clone());
            hijack::upgrade(
                &mut req,
                s,
                tty,
                Some(keys),
                move || engine.exec_stream_ended(&id),
                move || {
                    if let Ok(x) = e.exec_inspect(&id2) {
                        e.emit_container(&x.container_id, "exec_detach", &[("execID", id2)]);
                    }
                },
            )
        }
    }
}

pub async fn exec_resize(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let e = engine.clone();
    let id2 = id.clone();
    let container = blocking(move || e.exec_inspect(&id2)).await?.container_id;
    resize(engine, container, Some(id), req).await
}

pub async fn exec_inspect(engine: Arc<Engine>, id: String) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.exec_inspect(&id)).await?,
    ))
}
