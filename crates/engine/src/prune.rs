//! Space: `container prune`, `image prune`, and `system df` (which
//! `docker system prune` and `system df` build on).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::Value;

use crate::error::{EngineError, Result};
use crate::images::{ImageSummary, Removed};
use crate::util::{bool_filter, filter_entries, filters_json, label_matches, parse_rfc3339};
use crate::volume::Volume;
use crate::{Engine, Summary};

/// How long a partial download waits for a pull to resume it before
/// `image prune` removes it.
pub const PARTIAL_DOWNLOAD_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Docker's prune filters: `until` (a time or a Go duration before now)
/// and `label` / `label!` (`key` or `key=value`).
#[derive(Clone, Debug, Default)]
pub struct PruneFilter {
    /// Only things created before this unix time.
    until: Option<f64>,
    labels: Vec<String>,
    not_labels: Vec<String>,
    /// Images only: `dangling=false` means every unused image.
    dangling: Option<bool>,
}

/// A Go duration (`90s`, `10m`, `1h30m`, `1.5h`) in seconds (the
/// builder's parser, which HEALTHCHECK uses).
pub fn go_duration(s: &str) -> Option<f64> {
    berth_builder::dockerfile::expand::parse_duration(s.trim()).map(|d| d.as_secs_f64())
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An `until` filter value: unix seconds, an RFC 3339 time, or a Go
/// duration before now.
pub(crate) fn until_time(u: &str) -> Result<f64> {
    u.parse::<f64>()
        .ok()
        .or_else(|| parse_rfc3339(u))
        .or_else(|| go_duration(u).map(|d| now() - d))
        .ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "invalid filter 'until={u}': not a time or duration"
            ))
        })
}

impl PruneFilter {
    /// From the `filters` JSON; `allowed` lists the keys the endpoint takes.
    pub fn parse(filters: &str, allowed: &[&str]) -> Result<PruneFilter> {
        Self::from_value(&filters_json(filters)?, allowed)
    }

    /// From `filters` already parsed as JSON (null: no filter).
    pub fn from_value(v: &Value, allowed: &[&str]) -> Result<PruneFilter> {
        let mut f = PruneFilter::default();
        for (k, vals) in filter_entries(v, allowed)? {
            match k.as_str() {
                "until" => {
                    for u in &vals {
                        f.until = Some(until_time(u)?);
                    }
                }
                "label" => f.labels.extend(vals),
                "label!" => f.not_labels.extend(vals),
                "dangling" => f.dangling = Some(bool_filter("dangling", &vals)?),
                _ => {}
            }
        }
        Ok(f)
    }

    /// No filter given (everything matches).
    pub fn is_empty(&self) -> bool {
        self.until.is_none()
            && self.labels.is_empty()
            && self.not_labels.is_empty()
            && self.dangling.is_none()
    }

    pub(crate) fn matches(&self, created: f64, labels: &BTreeMap<String, String>) -> bool {
        self.until.is_none_or(|u| created < u)
            && self.labels.iter().all(|l| label_matches(labels, l))
            && !self.not_labels.iter().any(|l| label_matches(labels, l))
    }
}

/// `GET /system/df`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct SystemDf {
    pub layers_size: u64,
    pub images: Vec<ImageSummary>,
    pub containers: Vec<ContainerDf>,
    pub volumes: Vec<Volume>,
    pub build_cache: Vec<BuildCacheDf>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerDf {
    #[serde(flatten)]
    pub summary: Summary,
    pub size_rw: u64,
    pub size_root_fs: u64,
}

/// A build cache record in Docker's shape.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BuildCacheDf {
    #[serde(rename = "ID")]
    pub id: String,
    #[serde(rename = "Type")]
    pub kind: &'static str,
    pub description: String,
    pub in_use: bool,
    pub shared: bool,
    pub size: u64,
    pub created_at: String,
    pub last_used_at: String,
    pub usage_count: u64,
}

impl Engine {
    /// `POST /containers/prune`: every container that is not running (and
    /// matches); returns their ids and the bytes their writable layers held.
    pub fn container_prune(&self, filters: &str) -> Result<(Vec<String>, u64)> {
        let f = PruneFilter::parse(filters, &["until", "label", "label!"])?;
        let doomed: Vec<(String, std::path::PathBuf)> = {
            let t = self.lock();
            t.containers
                .values()
                .filter(|c| !c.state.running && c.state.status != "removing")
                .filter(|c| {
                    f.matches(
                        parse_rfc3339(&c.created).unwrap_or(0.0),
                        &c.config.labels.clone().unwrap_or_default(),
                    )
                })
                .map(|c| (c.id.clone(), self.paths.container_dir(&c.id).join("upper")))
                .collect()
        };
        let (mut deleted, mut reclaimed) = (Vec::new(), 0);
        for (id, upper) in doomed {
            let size = crate::volume::dir_size(&upper);
            // A container started meanwhile is kept (remove refuses it).
            if self.remove(&id, false).is_ok() {
                reclaimed += size;
                deleted.push(id);
            }
        }
        let attrs = [("reclaimed".to_string(), reclaimed.to_string())].into();
        self.emit("container", "prune", "", attrs);
        Ok((deleted, reclaimed))
    }

    /// `POST /images/prune`: dangling images (no tag), or with
    /// `dangling=false` every image no container uses.
    pub fn image_prune(&self, filters: &str) -> Result<(Vec<Removed>, u64)> {
        let f = PruneFilter::parse(filters, &["until", "label", "label!", "dangling"])?;
        let all = f.dangling == Some(false);
        let used: BTreeSet<String> = self
            .lock()
            .containers
            .values()
            .map(|c| c.image.clone())
            .collect();
        let before = self.images.disk_usage()?;
        let mut removed = Vec::new();
        for img in self.images()? {
            if used.contains(&img.id) || (!all && !img.repo_tags.is_empty()) {
                continue;
            }
            if !f.matches(img.created as f64, &img.labels) {
                continue;
            }
            // Gone already (an earlier removal took a shared record).
            if let Ok(r) = self.remove_image(&img.id, true) {
                removed.extend(r);
            }
        }
        self.collect_orphans()?;
        let after = self.images.disk_usage()?;
        let reclaimed = (before.layers_disk + before.content_disk)
            .saturating_sub(after.layers_disk + after.content_disk);
        let attrs = [("reclaimed".to_string(), reclaimed.to_string())].into();
        self.emit("image", "prune", "", attrs);
        Ok((removed, reclaimed))
    }

    /// What failed or interrupted pulls leave: blobs and layer dirs that no
    /// image, live lease (a running pull, a container) or build cache entry
    /// names, and partial downloads nobody resumed within
    /// [`PARTIAL_DOWNLOAD_GRACE`].
    fn collect_orphans(&self) -> Result<()> {
        let cache = berth_builder::build::Cache::open(self.images.root())?.entries()?;
        let cached: BTreeSet<&berth_image::Digest> = cache
            .iter()
            .filter_map(|(_, e)| e.layer.as_ref())
            .flat_map(|l| [&l.blob, &l.chain_id])
            .collect();
        let blobs: Vec<_> = self
            .images
            .content
            .list()?
            .into_iter()
            .filter(|d| !cached.contains(d))
            .collect();
        let layers: Vec<_> = self
            .images
            .layers
            .list()?
            .into_iter()
            .filter(|d| !cached.contains(d))
            .collect();
        self.images.collect(Some((&blobs, &layers)))?;
        self.images
            .content
            .clean_stale_ingest(PARTIAL_DOWNLOAD_GRACE)?;
        Ok(())
    }

    /// `GET /system/df`: images (with how many containers use each),
    /// containers with their writable-layer sizes, volumes with usage, and
    /// the build cache.
    pub fn system_df(&self) -> Result<SystemDf> {
        let du = self.images.disk_usage()?;
        let shared: BTreeMap<String, u64> = du
            .images
            .iter()
            .map(|i| (i.id.to_string(), i.shared))
            .collect();
        let mut users: BTreeMap<String, i64> = BTreeMap::new();
        for c in self.lock().containers.values() {
            *users.entry(c.image.clone()).or_default() += 1;
        }
        let images = self
            .images()?
            .into_iter()
            .map(|mut i| {
                i.containers = users.get(&i.id).copied().unwrap_or(0);
                i.shared_size = shared.get(&i.id).copied().unwrap_or(0) as i64;
                i
            })
            .collect();
        let image_size: BTreeMap<String, u64> = self
            .images
            .list()?
            .into_iter()
            .map(|r| (r.id.to_string(), r.size))
            .collect();
        let containers = self
            .list(&crate::container::ListOptions {
                all: true,
                filters: Value::Null,
            })?
            .into_iter()
            .map(|s| {
                let size_rw =
                    crate::volume::dir_size(&self.paths.container_dir(&s.id).join("upper"));
                let base = image_size.get(&s.image_id).copied().unwrap_or(0);
                ContainerDf {
                    summary: s,
                    size_rw,
                    size_root_fs: size_rw + base,
                }
            })
            .collect();
        let mut volumes = self.volume_list(&Value::Null)?;
        for v in &mut volumes {
            v.usage_data = self.volume_usage(&v.name).ok();
        }
        Ok(SystemDf {
            layers_size: du.layers_size,
            images,
            containers,
            volumes,
            build_cache: self.build_cache_df()?,
        })
    }

    fn build_cache_df(&self) -> Result<Vec<BuildCacheDf>> {
        let cache = berth_builder::build::Cache::open(self.images.root())?;
        Ok(cache
            .entries()?
            .into_iter()
            .map(|(key, e)| {
                let size = e
                    .layer
                    .as_ref()
                    .and_then(|l| self.images.layers.meta(&l.chain_id).ok())
                    .map_or(0, |m| m.size);
                let created = berth_image::history::rfc3339(e.created as i64, None);
                BuildCacheDf {
                    id: key,
                    kind: "regular",
                    description: String::new(),
                    in_use: false,
                    shared: false,
                    size,
                    created_at: created.clone(),
                    last_used_at: created,
                    usage_count: 1,
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_filters() {
        assert_eq!(go_duration("90s"), Some(90.0));
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("1.5h"), Some(5400.0));
        assert_eq!(go_duration("10x"), None);
        let f = PruneFilter::parse(
            r#"{"until":["100"],"label":["a=1"],"label!":["b"]}"#,
            &["until", "label", "label!"],
        )
        .unwrap();
        let l = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(f.matches(50.0, &l(&[("a", "1")])));
        assert!(!f.matches(150.0, &l(&[("a", "1")])));
        assert!(!f.matches(50.0, &l(&[("a", "2")])));
        assert!(!f.matches(50.0, &l(&[("a", "1"), ("b", "x")])));
        let f = PruneFilter::parse(r#"{"until":{"10m":true}}"#, &["until"]).unwrap();
        assert!(f.matches(now() - 3600.0, &BTreeMap::new()));
        assert!(!f.matches(now(), &BTreeMap::new()));
        assert!(PruneFilter::parse(r#"{"until":["soon"]}"#, &["until"]).is_err());
        assert!(PruneFilter::parse(r#"{"name":["x"]}"#, &["until"]).is_err());
        let f = PruneFilter::parse(r#"{"dangling":["false"]}"#, &["dangling"]).unwrap();
        assert_eq!(f.dangling, Some(false));
    }
}
