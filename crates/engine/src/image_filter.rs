//! `GET /images/json`'s filters as dockerd applies them: `dangling`,
//! `label` (all must match), `before`/`since` (another image's creation
//! time), `until` and `reference` (globs over the familiar names; only the
//! names that match are listed). Any other key is refused.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::prune::until_time;
use crate::util::{bool_filter, filter_entries, filters_json, label_matches};
use berth_builder::dockerfile::glob;
use berth_image::Reference;

const KEYS: &[&str] = &["dangling", "label", "before", "since", "until", "reference"];

#[derive(Debug, Default)]
pub struct ImageFilter {
    dangling: Option<bool>,
    labels: Vec<String>,
    /// Only images created strictly before / after these unix times.
    before: Option<f64>,
    since: Option<f64>,
    until: Option<f64>,
    references: Vec<String>,
}

impl ImageFilter {
    /// From the `filters` JSON; `created_of` gives the creation time of the
    /// image `before`/`since` name.
    pub fn parse(filters: &str, created_of: impl Fn(&str) -> Result<f64>) -> Result<ImageFilter> {
        let mut f = ImageFilter::default();
        for (k, vals) in filter_entries(&filters_json(filters)?, KEYS)? {
            // As dockerd's WalkValues: the last value of a time filter wins.
            match k.as_str() {
                "dangling" => f.dangling = Some(bool_filter("dangling", &vals)?),
                "label" => f.labels.extend(vals),
                "reference" => f.references.extend(vals),
                "before" => {
                    for v in &vals {
                        f.before = Some(created_of(v)?);
                    }
                }
                "since" => {
                    for v in &vals {
                        f.since = Some(created_of(v)?);
                    }
                }
                "until" => {
                    for v in &vals {
                        f.until = Some(until_time(v)?);
                    }
                }
                _ => unreachable!("checked against KEYS"),
            }
        }
        Ok(f)
    }

    /// Whether an image created at `created` with `labels` passes the time
    /// and label filters.
    pub(crate) fn admits(&self, created: f64, labels: &BTreeMap<String, String>) -> bool {
        self.before.is_none_or(|t| created < t)
            && self.since.is_none_or(|t| created > t)
            && self.until.is_none_or(|t| created < t)
            && self.labels.iter().all(|l| label_matches(labels, l))
    }

    /// The image's names (full `domain/path:tag` or `…@digest`) that the
    /// `reference` patterns keep: all of them without patterns.
    pub(crate) fn names<'a>(&self, names: &'a [String]) -> Vec<&'a String> {
        names
            .iter()
            .filter(|n| self.references.is_empty() || self.references.iter().any(|p| matches(p, n)))
            .collect()
    }

    /// Whether an image whose kept names are `tags` and `digests` is
    /// listed: dockerd drops unnamed images when a reference pattern is
    /// given, `dangling=true` keeps only untagged ones and `dangling=false`
    /// only those with some name.
    pub(crate) fn lists(&self, tags: usize, digests: usize) -> bool {
        let unnamed = tags == 0 && digests == 0;
        if unnamed && !self.references.is_empty() {
            return false;
        }
        match self.dangling {
            Some(true) => tags == 0,
            Some(false) => !unnamed,
            None => true,
        }
    }
}

/// distribution/reference's FamiliarMatch: the pattern against the
/// familiar string (`busybox:latest`), else against the familiar name
/// (`busybox`).
fn matches(pattern: &str, full: &str) -> bool {
    let Ok(r) = full.parse::<Reference>() else {
        return glob::matches(pattern, full);
    };
    glob::matches(pattern, &r.to_string()) || glob::matches(pattern, &r.familiar_repository())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EngineError;

    fn parse(s: &str) -> Result<ImageFilter> {
        ImageFilter::parse(s, |name| match name {
            "old" => Ok(100.0),
            _ => Err(EngineError::NotFound(format!("No such image: {name}"))),
        })
    }

    #[test]
    fn keys_and_values_are_checked() {
        let e = parse(r#"{"nosuch":["x"]}"#).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'nosuch'");
        assert!(matches!(e, EngineError::InvalidArgument(_)));
        let e = parse(r#"{"dangling":["maybe"]}"#).unwrap_err();
        assert_eq!(e.to_string(), "invalid filter 'dangling=maybe'");
        assert!(matches!(
            parse(r#"{"before":["gone"]}"#).unwrap_err(),
            EngineError::NotFound(_)
        ));
        assert!(parse(r#"{"until":["someday"]}"#).is_err());
        assert!(parse("[").is_err());
        assert!(parse("").is_ok() && parse("{}").is_ok());
    }

    #[test]
    fn times_and_labels() {
        let labels: BTreeMap<String, String> = [("team".to_string(), "a".to_string())].into();
        let f = parse(r#"{"before":{"old":true}}"#).unwrap();
        assert!(f.admits(99.0, &labels) && !f.admits(100.0, &labels));
        let f = parse(r#"{"since":["old"]}"#).unwrap();
        assert!(f.admits(101.0, &labels) && !f.admits(100.0, &labels));
        let f = parse(r#"{"until":["150"]}"#).unwrap();
        assert!(f.admits(149.0, &labels) && !f.admits(151.0, &labels));
        let f = parse(r#"{"label":["team","team=a"]}"#).unwrap();
        assert!(f.admits(1.0, &labels));
        let f = parse(r#"{"label":["team","team=b"]}"#).unwrap();
        assert!(!f.admits(1.0, &labels));
        assert!(!f.admits(1.0, &BTreeMap::new()));
    }

    #[test]
    fn references_glob_familiar_names() {
        let names = [
            "docker.io/library/busybox:latest".to_string(),
            "docker.io/library/busybox:1.36".to_string(),
            "localhost:5000/busybox:latest".to_string(),
            "localhost:5000/tools/busybox@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".to_string(),
            "docker.io/library/debian:bookworm".to_string(),
        ];
        let kept = |pats: &[&str]| {
            let f = parse(&serde_json::json!({ "reference": pats }).to_string()).unwrap();
            f.names(&names).len()
        };
        assert_eq!(kept(&["busybox"]), 2);
        assert_eq!(kept(&["busybox:*"]), 2);
        assert_eq!(kept(&["busybox:1.*"]), 1);
        assert_eq!(kept(&["*/busybox"]), 1);
        assert_eq!(kept(&["*/*/busybox"]), 1);
        assert_eq!(kept(&["*busy*"]), 2);
        assert_eq!(kept(&["debian", "busybox:latest"]), 2);
        assert_eq!(kept(&["nothing"]), 0);
        assert_eq!(kept(&[]), 5);
    }

    #[test]
    fn dangling_and_unnamed_images() {
        let f = parse(r#"{"dangling":["true"]}"#).unwrap();
        assert!(f.lists(0, 0) && f.lists(0, 1) && !f.lists(1, 0));
        let f = parse(r#"{"dangling":["false"]}"#).unwrap();
        assert!(!f.lists(0, 0) && f.lists(1, 0) && f.lists(0, 1));
        let f = parse(r#"{"reference":["x"]}"#).unwrap();
        assert!(!f.lists(0, 0) && f.lists(1, 0));
        assert!(parse("").unwrap().lists(0, 0));
    }
}
