//! /networks: list, inspect, create, remove, prune, connect, disconnect.

use std::sync::Arc;

use berth_engine::network::NetworkCreate;
use berth_engine::{EndpointSettings, Engine};
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{ApiError, Result};
use crate::http::{Resp, blocking, body_json, empty, json, query};

fn filters(req: &Request<Incoming>) -> Result<Value> {
    crate::request::filters(&query(req))
}

pub async fn list(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let f = filters(&req)?;
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.network_list(&f)).await?,
    ))
}

pub async fn inspect(engine: Arc<Engine>, id: String) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.network_inspect(&id)).await?,
    ))
}

pub async fn create(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let body: NetworkCreate = body_json(req).await?;
    let id = blocking(move || engine.network_create(body)).await?;
    Ok(json(StatusCode::CREATED, &json!({"Id": id, "Warning": ""})))
}

pub async fn remove(engine: Arc<Engine>, id: String) -> Result<Resp> {
    blocking(move || engine.network_remove(&id)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn prune(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let f = filters(&req)?;
    let removed = blocking(move || engine.network_prune(&f)).await?;
    Ok(json(StatusCode::OK, &json!({"NetworksDeleted": removed})))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<EndpointSettings>,
    force: bool,
}

pub async fn connect(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let b: ConnectBody = body_json(req).await?;
    if b.container.is_empty() {
        return Err(ApiError::BadRequest("Container is required".into()));
    }
    blocking(move || {
        engine.network_connect(&id, &b.container, b.endpoint_config.unwrap_or_default())
    })
    .await?;
    Ok(empty(StatusCode::OK))
}

pub async fn disconnect(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let b: ConnectBody = body_json(req).await?;
    if b.container.is_empty() {
        return Err(ApiError::BadRequest("Container is required".into()));
    }
    blocking(move || engine.network_disconnect(&id, &b.container, b.force)).await?;
    Ok(empty(StatusCode::OK))
}
