//! Docker's filters for `network ls` and `network prune`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Network;

fn filter_values(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Value::Object(o) => o.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

fn label_matches(labels: &BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

pub(super) fn network_matches(n: &Network, filters: &Value) -> bool {
    let Some(obj) = filters.as_object() else {
        return true;
    };
    obj.iter().all(|(key, vals)| {
        let vals = filter_values(vals);
        vals.is_empty()
            || vals.iter().any(|v| match key.as_str() {
                "name" => n.name.contains(v.as_str()),
                "id" => n.id.starts_with(v.as_str()),
                "driver" => n.driver == *v,
                "label" => label_matches(&n.labels, v),
                "type" => match v.as_str() {
                    "builtin" => n.predefined,
                    "custom" => !n.predefined,
                    _ => false,
                },
                "scope" => v == "local",
                _ => true,
            })
    })
}

pub(super) fn prune_matches(n: &Network, filters: &Value) -> bool {
    let Some(obj) = filters.as_object() else {
        return true;
    };
    obj.iter().all(|(key, vals)| {
        let vals = filter_values(vals);
        match key.as_str() {
            "label" => vals.iter().all(|v| label_matches(&n.labels, v)),
            "label!" => !vals.iter().any(|v| label_matches(&n.labels, v)),
            "until" => vals.iter().all(|v| {
                let until = v
                    .parse::<f64>()
                    .ok()
                    .or_else(|| crate::util::parse_rfc3339(v));
                until.is_none_or(|u| (crate::util::unix_secs(&n.created) as f64) < u)
            }),
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::tests::net;

    #[test]
    fn list_filters() {
        let f = |s: &str| serde_json::from_str::<Value>(s).unwrap();
        let n = net("front", false);
        assert!(network_matches(&n, &Value::Null));
        assert!(network_matches(&n, &f(r#"{"name":["ron"]}"#)));
        assert!(!network_matches(&n, &f(r#"{"name":{"back":true}}"#)));
        assert!(network_matches(
            &n,
            &f(r#"{"type":["custom"],"driver":["bridge"]}"#)
        ));
        assert!(!network_matches(
            &net("bridge", true),
            &f(r#"{"type":["custom"]}"#)
        ));
        assert!(network_matches(&n, &f(r#"{"label":["team=a"]}"#)));
        assert!(!network_matches(&n, &f(r#"{"label":["team=b"]}"#)));
        assert!(prune_matches(&n, &f(r#"{"label":["team"]}"#)));
        assert!(!prune_matches(&n, &f(r#"{"label!":["team"]}"#)));
    }
}
