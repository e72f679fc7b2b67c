//! Container operations beyond the lifecycle: top, pause/unpause, rename,
//! update — and `/events`.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use berth_engine::container::ops::UpdateRequest;
use berth_engine::{Engine, EventFilter};
use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;
use tokio::sync::{broadcast, mpsc};

use crate::error::{ApiError, Result};
use crate::http::{Resp, blocking, body_json, empty, flag, json, query, streaming};

pub async fn top(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let args = query(&req).get("ps_args").cloned();
    let top = blocking(move || engine.top(&id, args.as_deref())).await?;
    Ok(json(StatusCode::OK, &top))
}

pub async fn pause(engine: Arc<Engine>, id: String, pause: bool) -> Result<Resp> {
    blocking(move || {
        if pause {
            engine.pause(&id)
        } else {
            engine.unpause(&id)
        }
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn rename(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let name = query(&req).get("name").cloned().unwrap_or_default();
    blocking(move || engine.rename(&id, &name)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub async fn update(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let body: UpdateRequest = body_json(req).await?;
    let warnings = blocking(move || engine.update(&id, body)).await?;
    Ok(json(StatusCode::OK, &json!({ "Warnings": warnings })))
}

/// `GET /containers/{id}/stats`: one JSON document, or with `stream`
/// (the default) one a second until the container stops or the client
/// goes away.
pub async fn stats(engine: Arc<Engine>, id: String, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let stream = q.get("stream").is_none_or(|_| flag(&q, "stream"));
    let one_shot = flag(&q, "one-shot");
    if one_shot && stream {
        return Err(ApiError::BadRequest(
            "cannot have stream=true and one-shot=true".into(),
        ));
    }
    // Unknown containers are a 404 before any body goes out.
    let e = engine.clone();
    let id2 = id.clone();
    blocking(move || e.inspect(&id2)).await?;
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let _ = engine.stats(&id, stream, one_shot, &mut |v| {
            let mut line = serde_json::to_vec(v).expect("stats serialise");
            line.push(b'\n');
            tx.blocking_send(Bytes::from(line)).is_ok()
        });
    });
    Ok(streaming("application/json", rx))
}

/// `since`/`until`: unix seconds with an optional fraction
/// (`1700000000.123456789`), as the docker CLI sends them; returns
/// nanoseconds.
fn unix_nanos(k: &str, v: &str) -> Result<i64> {
    let bad = || ApiError::BadRequest(format!("invalid value for {k}: {v}"));
    let (secs, frac) = v.split_once('.').unwrap_or((v, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 9 {
        return Err(bad());
    }
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    // Seconds past ±292 years do not fit in nanoseconds.
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac))
        .ok_or_else(bad)
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// `GET /events`: the buffered events since `since`, then live ones until
/// `until` (or until the client goes away), one JSON object per line.
pub async fn events(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let q = query(&req);
    let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
    let since = get("since").map(|v| unix_nanos("since", v)).transpose()?;
    let until = get("until").map(|v| unix_nanos("until", v)).transpose()?;
    let filter = EventFilter::parse(q.get("filters").map_or("", String::as_str))?;
    // With only `until`, Docker answers from the whole buffer.
    let sub = engine.subscribe(since.or(until.map(|_| 0)));
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let line = |e: &berth_engine::Event| {
        let mut v = serde_json::to_vec(e).expect("event serialises");
        v.push(b'\n');
        Bytes::from(v)
    };
    tokio::spawn(async move {
        let mut live = sub.live;
        for e in &sub.past {
            if until.is_some_and(|u| e.time_nano > u) || !filter.matches(e) {
                continue;
            }
            if tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let left = u.saturating_sub(now_nanos()).max(0) as u64;
            tokio::time::Instant::now() + Duration::from_nanos(left)
        });
        if deadline.is_some_and(|d| d <= tokio::time::Instant::now()) {
            return;
        }
        loop {
            let next = async {
                match deadline {
                    Some(d) => tokio::time::timeout_at(d, live.recv()).await.ok(),
                    None => Some(live.recv().await),
                }
            };
            let e = tokio::select! {
                e = next => e,
                // The client went away: stop, freeing the subscription.
                _ = tx.closed() => return,
            };
            match e {
                None => return,
                Some(Ok(e)) => {
                    if until.is_some_and(|u| e.time_nano > u) {
                        return;
                    }
                    if filter.matches(&e) && tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Some(Err(broadcast::error::RecvError::Lagged(_))) => continue,
                Some(Err(broadcast::error::RecvError::Closed)) => return,
            }
        }
    });
    Ok(streaming("application/json", rx))
}

fn filters_param(req: &Request<Incoming>) -> String {
    query(req).get("filters").cloned().unwrap_or_default()
}

pub async fn container_prune(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let filters = filters_param(&req);
    let (deleted, reclaimed) = blocking(move || engine.container_prune(&filters)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

pub async fn image_prune(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let filters = filters_param(&req);
    let (deleted, reclaimed) = blocking(move || engine.image_prune(&filters)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"ImagesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

pub async fn system_df(engine: Arc<Engine>) -> Result<Resp> {
    Ok(json(
        StatusCode::OK,
        &blocking(move || engine.system_df()).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_times() {
        assert_eq!(unix_nanos("since", "12").unwrap(), 12_000_000_000);
        assert_eq!(unix_nanos("since", "12.5").unwrap(), 12_500_000_000);
        assert_eq!(unix_nanos("since", "12.000000001").unwrap(), 12_000_000_001);
        assert!(unix_nanos("since", "yesterday").is_err());
        assert!(unix_nanos("since", "1.x").is_err());
        // Too far out for nanoseconds: a 400 naming the parameter, not a
        // multiplication overflow.
        let e = unix_nanos("until", "9223372036854775807").unwrap_err();
        assert!(
            matches!(&e, ApiError::BadRequest(m) if m.contains("until")),
            "{e:?}"
        );
        assert!(unix_nanos("since", "-9300000000.5").is_err());
        assert!(unix_nanos("since", "9223372036.999999999").is_err());
    }
}
