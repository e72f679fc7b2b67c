//! /volumes.

use std::sync::Arc;

use berth_engine::Engine;
use berth_engine::volume::VolumeCreate;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{Value, json};

use crate::error::Result;
use crate::http::{Resp, blocking, body_json, empty, flag, json, query};

fn filters(req: &Request<Incoming>) -> Result<Value> {
    crate::request::filters(&query(req))
}

pub async fn create(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let body: VolumeCreate = body_json(req).await?;
    let v = blocking(move || engine.volume_create(body)).await?;
    Ok(json(StatusCode::CREATED, &v))
}

pub async fn list(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let f = filters(&req)?;
    let vols = blocking(move || engine.volume_list(&f)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"Volumes": vols, "Warnings": []}),
    ))
}

pub async fn inspect(engine: Arc<Engine>, name: String) -> Result<Resp> {
    let v = blocking(move || engine.volume_inspect(&name)).await?;
    Ok(json(StatusCode::OK, &v))
}

pub async fn remove(engine: Arc<Engine>, name: String, req: Request<Incoming>) -> Result<Resp> {
    let force = flag(&query(&req), "force");
    blocking(move || engine.volume_remove(&name, force)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Before API 1.42 prune removed named volumes too; `all` keeps that
/// behaviour available to old clients.
pub async fn prune(
    engine: Arc<Engine>,
    version: Option<u32>,
    req: Request<Incoming>,
) -> Result<Resp> {
    let mut f = filters(&req)?;
    if version.is_some_and(|v| v < 42) {
        if !f.is_object() {
            f = json!({});
        }
        f["all"] = json!(["true"]);
    }
    let (deleted, reclaimed) = blocking(move || engine.volume_prune(&f)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}
