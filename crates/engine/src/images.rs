//! Image operations: list, inspect, pull, tag, remove.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_distribution::{ClientOptions, Progress, PullOptions, RegistryClient};
use berth_image::store::familiar;
use berth_image::{ImageRecord, Reference};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{EngineError, Result};
use crate::util::unix_secs;

/// `GET /images/json` entries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageSummary {
    pub id: String,
    pub parent_id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub created: i64,
    pub size: u64,
    pub shared_size: i64,
    pub labels: BTreeMap<String, String>,
    pub containers: i64,
}

/// `GET /images/{name}/json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageInspect {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub parent: String,
    pub comment: String,
    pub created: String,
    pub docker_version: String,
    pub author: String,
    pub config: Value,
    pub architecture: String,
    pub os: String,
    pub size: u64,
    pub graph_driver: Value,
    #[serde(rename = "RootFS")]
    pub root_fs: Value,
    pub metadata: Value,
}

#[derive(Debug, Serialize)]
pub enum Removed {
    Untagged(String),
    Deleted(String),
}

fn names(rec: &ImageRecord) -> (Vec<String>, Vec<String>) {
    (
        rec.repo_tags.iter().map(|t| familiar(t)).collect(),
        rec.repo_digests.iter().map(|t| familiar(t)).collect(),
    )
}

impl Engine {
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        let mut out: Vec<ImageSummary> = self
            .images
            .list()?
            .into_iter()
            .map(|rec| {
                let (repo_tags, repo_digests) = names(&rec);
                let labels = self
                    .image_config(&rec)
                    .ok()
                    .and_then(|c| serde_json::from_value(c["config"]["Labels"].clone()).ok())
                    .unwrap_or_default();
                ImageSummary {
                    id: rec.id.to_string(),
                    parent_id: String::new(),
                    repo_tags,
                    repo_digests,
                    created: rec.created.as_deref().map_or(0, unix_secs),
                    size: rec.size,
                    shared_size: -1,
                    labels,
                    containers: -1,
                }
            })
            .collect();
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    }

    /// The raw image config blob (keeps every field docker clients expect).
    pub(crate) fn image_config(&self, rec: &ImageRecord) -> Result<Value> {
        Ok(serde_json::from_slice(&self.images.content.read(&rec.id)?)?)
    }

    pub(crate) fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        self.images.resolve(name).map_err(|e| match e {
            berth_image::Error::NotFound(_) | berth_image::Error::InvalidReference(..) => {
                EngineError::NotFound(format!("No such image: {name}"))
            }
            e => e.into(),
        })
    }

    pub fn image_inspect(&self, name: &str) -> Result<ImageInspect> {
        let rec = self.resolve_image(name)?;
        let cfg = self.image_config(&rec)?;
        let (repo_tags, repo_digests) = names(&rec);
        let layers = self.images.layer_dirs(&rec).unwrap_or_default();
        let lower: Vec<String> = layers
            .iter()
            .rev()
            .map(|p| p.display().to_string())
            .collect();
        Ok(ImageInspect {
            id: rec.id.to_string(),
            repo_tags,
            repo_digests,
            parent: String::new(),
            comment: cfg["comment"].as_str().unwrap_or_default().to_string(),
            created: rec.created.clone().unwrap_or_default(),
            docker_version: String::new(),
            author: cfg["author"].as_str().unwrap_or_default().to_string(),
            config: cfg["config"].clone(),
            architecture: cfg["architecture"].as_str().unwrap_or_default().to_string(),
            os: cfg["os"].as_str().unwrap_or_default().to_string(),
            size: rec.size,
            graph_driver: json!({"Name": "overlay2", "Data": {"LowerDir": lower.join(":")}}),
            root_fs: json!({"Type": "layers", "Layers": cfg["rootfs"]["diff_ids"]}),
            metadata: json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
        })
    }

    /// `docker pull`: `from_image` with `tag` (or a tag/digest inside it).
    /// Returns the resolved reference and the image.
    pub async fn pull(
        &self,
        from_image: &str,
        tag: &str,
        progress: Arc<dyn Progress>,
    ) -> Result<(Reference, ImageRecord)> {
        let name = if tag.is_empty() || from_image.contains('@') {
            from_image.to_string()
        } else if tag.starts_with("sha256:") {
            format!("{from_image}@{tag}")
        } else {
            format!("{from_image}:{tag}")
        };
        let reference: Reference = name
            .parse()
            .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))?;
        let client = RegistryClient::new(
            &reference.domain,
            ClientOptions {
                insecure: false,
                credentials: None,
            },
        )?;
        let rec = berth_distribution::pull(
            self.images.clone(),
            Arc::new(client),
            &reference,
            &PullOptions::default(),
            progress,
        )
        .await?;
        self.emit_image("pull", &reference.to_string(), &reference.to_string());
        Ok((reference, rec))
    }

    /// `docker tag source repo:tag`.
    pub fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<()> {
        let rec = self.resolve_image(source)?;
        let target = if tag.is_empty() {
            repo.to_string()
        } else {
            format!("{repo}:{tag}")
        };
        self.images.tag(source, &target).map_err(|e| match e {
            berth_image::Error::InvalidReference(..) => EngineError::InvalidArgument(e.to_string()),
            e => e.into(),
        })?;
        self.emit_image("tag", &rec.id.to_string(), &target);
        Ok(())
    }

    /// An image event; `name` is the reference it concerns.
    pub(crate) fn emit_image(&self, action: &str, id: &str, name: &str) {
        let attrs = [("name".to_string(), name.to_string())].into();
        self.emit("image", action, id, attrs);
    }

    /// `docker rmi`. A container's image is in use (a lease) and needs force.
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let rec = self.resolve_image(name)?;
        if !force {
            let t = self.lock();
            if let Some(c) = t
                .containers
                .values()
                .find(|c| c.image == rec.id.to_string())
            {
                return Err(EngineError::Conflict(format!(
                    "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                    &c.id[..12],
                    rec.id.short()
                )));
            }
        }
        let removed = self.images.remove(name, force).map_err(|e| match e {
            berth_image::Error::NotFound(_) => {
                EngineError::NotFound(format!("No such image: {name}"))
            }
            e => e.into(),
        })?;
        let id = rec.id.to_string();
        Ok(removed
            .into_iter()
            .map(|r| match r {
                berth_image::Removed::Untagged(t) => {
                    self.emit_image("untag", &id, &t);
                    Removed::Untagged(t)
                }
                berth_image::Removed::Deleted(d) => {
                    self.emit_image("delete", &d.to_string(), name);
                    Removed::Deleted(d.to_string())
                }
            })
            .collect())
    }
}
