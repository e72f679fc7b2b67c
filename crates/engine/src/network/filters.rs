//! Docker's filters for `network ls` and `network prune`.

use serde_json::Value;

use super::Network;
use crate::error::Result;
use crate::prune::PruneFilter;
use crate::util::{filter_values, label_matches};

pub(super) fn network_matches(n: &Network, filters: &Value) -> bool {
    let Some(obj) = filters.as_object() else {
        return true;
    };
    obj.iter().all(|(key, vals)| {
        let vals = filter_values(vals).unwrap_or_default();
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

/// `network prune`'s filters: `until` (a time or a duration before now)
/// and `label`/`label!`, as for containers; any other key is an error.
pub(super) fn prune_filter(filters: &Value) -> Result<PruneFilter> {
    PruneFilter::from_value(filters, &["until", "label", "label!"])
}

pub(super) fn prune_matches(n: &Network, f: &PruneFilter) -> bool {
    f.matches(crate::util::unix_secs(&n.created) as f64, &n.labels)
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
        let p = |s: &str| prune_filter(&f(s)).unwrap();
        assert!(prune_matches(&n, &p(r#"{"label":["team"]}"#)));
        assert!(!prune_matches(&n, &p(r#"{"label!":["team"]}"#)));
    }

    #[test]
    fn prune_until_takes_durations() {
        let f = |s: &str| prune_filter(&serde_json::from_str::<Value>(s).unwrap());
        let mut n = net("front", false);
        // Created a minute ago: younger than 24h, so kept.
        let minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        n.created = crate::util::rfc3339_nano(minute_ago);
        assert!(!prune_matches(&n, &f(r#"{"until":["24h"]}"#).unwrap()));
        assert!(prune_matches(&n, &f(r#"{"until":["10s"]}"#).unwrap()));
        assert!(prune_matches(&n, &f("null").unwrap()));
        let e = f(r#"{"until":["someday"]}"#).unwrap_err();
        assert!(e.to_string().contains("until"), "{e}");
        let e = f(r#"{"driver":["bridge"]}"#).unwrap_err();
        assert!(e.to_string().contains("driver"), "{e}");
    }
}
