//! The image config as JSON, edited in place so fields Berth doesn't model
//! (from the base image) survive.

use serde_json::{Value, json};

/// The `config` object (created if missing).
pub fn cfg(image: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !image.get("config").is_some_and(Value::is_object) {
        image["config"] = json!({});
    }
    image["config"].as_object_mut().expect("object")
}

pub fn get_str(image: &Value, key: &str) -> String {
    image["config"][key]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

pub fn get_list(image: &Value, key: &str) -> Option<Vec<String>> {
    image["config"][key].as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect()
    })
}

pub fn env(image: &Value) -> Vec<(String, String)> {
    get_list(image, "Env")
        .unwrap_or_default()
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect()
}

pub fn set_env(image: &mut Value, key: &str, value: &str) {
    let mut e = env(image);
    match e.iter_mut().find(|(k, _)| k == key) {
        Some(kv) => kv.1 = value.to_string(),
        None => e.push((key.to_string(), value.to_string())),
    }
    cfg(image).insert(
        "Env".into(),
        json!(
            e.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        ),
    );
}

pub fn set_map_entry(image: &mut Value, field: &str, key: &str, value: Value) {
    let c = cfg(image);
    if !c.get(field).is_some_and(Value::is_object) {
        c.insert(field.into(), json!({}));
    }
    c[field]
        .as_object_mut()
        .expect("object")
        .insert(key.into(), value);
}

pub fn shell(image: &Value) -> Vec<String> {
    get_list(image, "Shell").unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
}

/// The part of the state a step's outcome depends on (not history/dates).
pub fn identity(image: &Value) -> String {
    json!({"config": image["config"], "diff_ids": image["rootfs"]["diff_ids"]}).to_string()
}

pub fn scratch(platform: &berth_image::formats::Platform) -> Value {
    let mut v = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    });
    if let Some(var) = &platform.variant {
        v["variant"] = json!(var);
    }
    v
}

/// A top-level string field of the image config (`architecture`, `os`).
pub fn get_top(image: &Value, key: &str) -> String {
    image[key].as_str().unwrap_or_default().to_string()
}
