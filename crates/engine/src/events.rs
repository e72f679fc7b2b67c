//! The daemon's event log (`docker events`): every part of the engine calls
//! [`Engine::emit`]; a bounded in-memory ring answers `since`/`until`, and a
//! broadcast channel feeds the live streams.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::Engine;

/// How many past events `since` can reach back over.
const RING: usize = 1024;

/// Docker's event message (API 1.45), with the legacy `status`/`id`/`from`
/// fields older clients read.
#[derive(Clone, Debug, Serialize)]
pub struct Event {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "Action")]
    pub action: String,
    #[serde(rename = "Actor")]
    pub actor: Actor,
    pub scope: &'static str,
    pub time: i64,
    #[serde(rename = "timeNano")]
    pub time_nano: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Actor {
    #[serde(rename = "ID")]
    pub id: String,
    pub attributes: BTreeMap<String, String>,
}

pub(crate) struct EventLog {
    ring: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
}

impl EventLog {
    pub(crate) fn new() -> EventLog {
        EventLog {
            ring: Mutex::new(VecDeque::with_capacity(RING)),
            live: broadcast::channel(RING).0,
        }
    }
}

/// A subscription: the past events asked for, then the live ones.
pub struct Subscription {
    pub past: Vec<Event>,
    pub live: broadcast::Receiver<Event>,
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

impl Engine {
    /// Records an event. `kind` is Docker's type (`container`, `image`,
    /// `volume`, `network`, …), `id` the actor's ID, `attrs` its attributes
    /// (`name`, `image`, `exitCode`, …).
    pub fn emit(&self, kind: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        let nanos = now_nanos();
        // Older clients read these; Docker sets them for container and image
        // events only.
        let legacy = matches!(kind, "container" | "image");
        let e = Event {
            kind: kind.to_string(),
            action: action.to_string(),
            actor: Actor {
                id: id.to_string(),
                attributes: attrs.clone(),
            },
            scope: "local",
            time: nanos / 1_000_000_000,
            time_nano: nanos,
            status: legacy.then(|| action.to_string()),
            id: legacy.then(|| id.to_string()),
            from: if kind == "container" {
                attrs.get("image").cloned()
            } else {
                None
            },
        };
        let mut ring = self.events.ring.lock().unwrap_or_else(|p| p.into_inner());
        if ring.len() == RING {
            ring.pop_front();
        }
        ring.push_back(e.clone());
        // Under the ring's lock, so a subscriber sees each event exactly once.
        let _ = self.events.live.send(e);
    }

    /// A container event with Docker's attributes: name, image, labels.
    pub fn emit_container(&self, id: &str, action: &str, extra: &[(&str, String)]) {
        let attrs = self.container_attrs(id, extra);
        self.emit("container", action, id, attrs);
    }

    /// A network event (`create`, `destroy`, `connect`, `disconnect`);
    /// `container` names the container connected or disconnected.
    pub(crate) fn emit_network(
        &self,
        id: &str,
        action: &str,
        name: &str,
        driver: &str,
        container: Option<&str>,
    ) {
        let mut attrs: BTreeMap<String, String> =
            [("name".into(), name.into()), ("type".into(), driver.into())].into();
        if let Some(c) = container {
            attrs.insert("container".into(), c.into());
        }
        self.emit("network", action, id, attrs);
    }

    /// Docker's attributes of a container event (taken before a removal).
    pub(crate) fn container_attrs(
        &self,
        id: &str,
        extra: &[(&str, String)],
    ) -> BTreeMap<String, String> {
        let mut attrs = BTreeMap::new();
        if let Some(c) = self.lock().containers.get(id) {
            attrs.extend(c.config.labels.clone().unwrap_or_default());
            attrs.insert("name".into(), c.short_name().to_string());
            attrs.insert(
                "image".into(),
                c.config.image.clone().unwrap_or_else(|| c.image.clone()),
            );
        }
        for (k, v) in extra {
            attrs.insert((*k).to_string(), v.clone());
        }
        attrs
    }

    /// Past events at or after `since` (unix nanoseconds) and a receiver
    /// for everything emitted from now on.
    pub fn subscribe(&self, since: Option<i64>) -> Subscription {
        let ring = self.events.ring.lock().unwrap_or_else(|p| p.into_inner());
        let live = self.events.live.subscribe();
        let past = match since {
            Some(s) => ring.iter().filter(|e| e.time_nano >= s).cloned().collect(),
            None => Vec::new(),
        };
        Subscription { past, live }
    }
}

/// Docker's event filters: `type`, `event`, `container`, `image`, `label`,
/// `volume`, `network`. Values of one key are alternatives; keys combine.
#[derive(Clone, Debug, Default)]
pub struct EventFilter {
    by: BTreeMap<String, Vec<String>>,
}

impl EventFilter {
    /// From the `filters` query parameter (`{"type":{"container":true}}` or
    /// the older `{"type":["container"]}`).
    pub fn parse(json: &str) -> crate::Result<EventFilter> {
        if json.trim().is_empty() {
            return Ok(EventFilter::default());
        }
        let v: Value = serde_json::from_str(json)
            .map_err(|e| crate::EngineError::InvalidArgument(format!("invalid filters: {e}")))?;
        let mut by = BTreeMap::new();
        for (k, vals) in v.as_object().into_iter().flatten() {
            let vals: Vec<String> = match vals {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                _ => continue,
            };
            match k.as_str() {
                "type" | "event" | "container" | "image" | "label" | "volume" | "network"
                | "scope" | "daemon" | "plugin" | "node" | "service" | "secret" | "config" => {}
                other => {
                    return Err(crate::EngineError::InvalidArgument(format!(
                        "invalid filter '{other}'"
                    )));
                }
            }
            by.insert(k.clone(), vals);
        }
        Ok(EventFilter { by })
    }

    pub fn matches(&self, e: &Event) -> bool {
        let name = e.actor.attributes.get("name");
        let of_kind = |kind: &str, v: &str| {
            e.kind == kind && (e.actor.id.starts_with(v) || name.is_some_and(|n| n == v))
        };
        self.by.iter().all(|(k, vals)| {
            vals.iter().any(|v| match k.as_str() {
                "type" => e.kind == *v,
                // `exec_start: sh` style actions match their prefix.
                "event" => e.action == *v || e.action.split(':').next() == Some(v.as_str()),
                "container" => of_kind("container", v),
                "volume" => of_kind("volume", v),
                "network" => of_kind("network", v),
                "image" => {
                    e.actor.attributes.get("image").is_some_and(|i| i == v)
                        || (e.kind == "image" && (e.actor.id == *v || name == Some(v)))
                }
                "label" => match v.split_once('=') {
                    Some((lk, lv)) => e.actor.attributes.get(lk).is_some_and(|x| x == lv),
                    None => e.actor.attributes.contains_key(v),
                },
                "scope" => v == "local",
                _ => false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        Event {
            kind: kind.into(),
            action: action.into(),
            actor: Actor {
                id: id.into(),
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
            scope: "local",
            time: 0,
            time_nano: 0,
            status: None,
            id: None,
            from: None,
        }
    }

    #[test]
    fn filters() {
        let start = ev(
            "container",
            "start",
            "abcdef",
            &[("name", "web"), ("image", "busybox"), ("tier", "front")],
        );
        let exec = ev("container", "exec_start: sh -c true", "abcdef", &[]);
        let pull = ev("image", "pull", "busybox:latest", &[("name", "busybox")]);
        let f = |s: &str| EventFilter::parse(s).unwrap();
        assert!(f("").matches(&start));
        assert!(f(r#"{"type":{"container":true}}"#).matches(&start));
        assert!(!f(r#"{"type":["container"]}"#).matches(&pull));
        assert!(f(r#"{"event":["start","stop"]}"#).matches(&start));
        assert!(f(r#"{"event":["exec_start"]}"#).matches(&exec));
        assert!(!f(r#"{"event":["die"]}"#).matches(&start));
        assert!(f(r#"{"container":["web"]}"#).matches(&start));
        assert!(f(r#"{"container":["abc"]}"#).matches(&start));
        assert!(!f(r#"{"container":["db"]}"#).matches(&start));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&start));
        assert!(f(r#"{"image":["busybox"]}"#).matches(&pull));
        assert!(f(r#"{"label":["tier=front"]}"#).matches(&start));
        assert!(f(r#"{"label":["tier"]}"#).matches(&start));
        assert!(!f(r#"{"label":["tier=back"]}"#).matches(&start));
        assert!(!f(r#"{"type":["container"],"event":["die"]}"#).matches(&start));
        assert!(EventFilter::parse(r#"{"bogus":["x"]}"#).is_err());
        assert!(EventFilter::parse("{not json").is_err());
    }
}
