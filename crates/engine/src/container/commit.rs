//! `docker commit`: a new image whose top layer is the container's changes
//! (the overlay upper dir, whiteouts as OCI `.wh.` entries; mount points
//! left out), with the container's config, `--change` instructions applied,
//! and a history entry.

use std::path::Path;

use berth_image::Reference;
use serde_json::{Value, json};

use super::model::Config;
use crate::Engine;
use crate::change::apply_change;
use crate::error::{EngineError, Result};
use crate::util::{now_rfc3339, random_id};

/// `POST /commit`'s options.
#[derive(Clone, Debug, Default)]
pub struct CommitOptions {
    pub repo: Option<String>,
    pub tag: Option<String>,
    pub comment: Option<String>,
    pub author: Option<String>,
    /// Freeze the container while its changes are read (Docker's default).
    pub pause: bool,
    /// Dockerfile instructions: `CMD ["sh"]`, `ENV A=1`, …
    pub changes: Vec<String>,
    /// The request body: config fields that override the container's.
    pub config: Option<Config>,
}

/// The container's settings that make up an image config (Docker keeps
/// the container's Cmd, Entrypoint, Env, … in the committed image).
fn overlay_config(cfg: &mut Value, c: &Config) {
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            cfg[k] = v;
        }
    };
    set("Cmd", c.cmd.as_ref().map(|v| json!(v)));
    set("Entrypoint", c.entrypoint.as_ref().map(|v| json!(v)));
    set("Env", c.env.as_ref().map(|v| json!(v)));
    set(
        "WorkingDir",
        c.working_dir
            .as_ref()
            .filter(|w| !w.is_empty())
            .map(|v| json!(v)),
    );
    set("User", c.user.as_ref().map(|v| json!(v)));
    set(
        "Labels",
        c.labels
            .as_ref()
            .filter(|l| !l.is_empty())
            .map(|v| json!(v)),
    );
    set("StopSignal", c.stop_signal.as_ref().map(|v| json!(v)));
    set(
        "ExposedPorts",
        c.exposed_ports
            .as_ref()
            .filter(|p| !p.is_empty())
            .map(|v| json!(v)),
    );
    set(
        "Volumes",
        c.volumes
            .as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| json!(v)),
    );
}

impl Engine {
    /// `docker commit`; returns the new image's ID.
    pub fn commit(&self, key: &str, opts: CommitOptions) -> Result<String> {
        let c = self.inspect(key)?;
        let name = match opts.repo.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(repo) => {
                let tag = opts
                    .tag
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .unwrap_or("latest");
                let r: Reference = format!("{repo}:{tag}")
                    .parse()
                    .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))?;
                Some(r.tagged().ok_or_else(|| {
                    EngineError::InvalidArgument(format!("invalid reference {repo}:{tag}"))
                })?)
            }
        };
        let mut img = self.image_config(&self.resolve_image(&c.image)?)?;
        if !img["config"].is_object() {
            img["config"] = json!({});
        }
        overlay_config(&mut img["config"], &c.config);
        if let Some(body) = &opts.config {
            overlay_config(&mut img["config"], body);
        }
        for ch in &opts.changes {
            apply_change(&mut img["config"], ch)?;
        }
        let pause = opts.pause && c.state.running && !c.state.paused;
        if pause {
            self.pause(&c.id)?;
        }
        let layer = self.commit_layer(&c);
        if pause {
            let _ = self.unpause(&c.id);
        }
        let (layer, base) = layer?;
        let created = now_rfc3339();
        img["created"] = json!(created);
        if let Some(a) = opts.author.as_ref().filter(|a| !a.is_empty()) {
            img["author"] = json!(a);
        }
        let mut diff_ids = img["rootfs"]["diff_ids"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        diff_ids.push(json!(layer.diff_id.to_string()));
        img["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
        let mut created_by = vec![c.path.clone()];
        created_by.extend(c.args.iter().cloned());
        let mut h = json!({"created": created, "created_by": created_by.join(" ")});
        if let Some(a) = opts.author.as_ref().filter(|a| !a.is_empty()) {
            h["author"] = json!(a);
        }
        if let Some(m) = opts.comment.as_ref().filter(|m| !m.is_empty()) {
            h["comment"] = json!(m);
            // Docker's image config carries it too (`image inspect`).
            img["comment"] = json!(m);
        }
        let mut history = img["history"].as_array().cloned().unwrap_or_default();
        history.push(h);
        img["history"] = json!(history);
        let mut layers = base;
        layers.push(layer);
        let rec = berth_image::changeset::write_image(&self.images, &img, &layers)?;
        let id = rec.id.to_string();
        self.images.put(rec, name.as_deref())?;
        self.emit_container(
            &c.id,
            "commit",
            &[("comment", opts.comment.unwrap_or_default())],
        );
        Ok(id)
    }

    /// The container's changes as a stored layer on top of its image's.
    fn commit_layer(
        &self,
        c: &super::model::Container,
    ) -> Result<(berth_image::LayerRecord, Vec<berth_image::LayerRecord>)> {
        let base = self.resolve_image(&c.image)?.layers;
        let dir = self.paths.container_dir(&c.id);
        let upper = dir.join("upper");
        let tgz = dir.join(format!("commit-{}.tar.gz", &random_id()[..12]));
        let skip = self.excluded_paths(c);
        let excluded = |p: &Path| super::changes::excluded(&format!("/{}", p.display()), &skip);
        let res = (|| {
            let (blob, size, diff_id) =
                berth_image::changeset::write_tar_excluding(&upper, &tgz, None, &excluded)?;
            berth_image::changeset::store_layer(
                &self.images,
                &tgz,
                blob,
                size,
                diff_id,
                base.last().map(|l| &l.chain_id),
            )
        })();
        let _ = std::fs::remove_file(&tgz);
        Ok((res?, base))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_settings_make_the_image_config() {
        let mut cfg = json!({"Cmd": ["sh"], "Env": ["PATH=/bin"], "ExposedPorts": {"80/tcp": {}}});
        let c = Config {
            cmd: Some(vec!["top".into()]),
            working_dir: Some(String::new()),
            exposed_ports: Some([("9000/tcp".to_string(), json!({}))].into()),
            volumes: Some([("/data".to_string(), json!({}))].into()),
            ..Config::default()
        };
        overlay_config(&mut cfg, &c);
        assert_eq!(cfg["Cmd"], json!(["top"]));
        // Unset or empty fields keep the image's.
        assert_eq!(cfg["Env"], json!(["PATH=/bin"]));
        assert!(cfg.get("WorkingDir").is_none());
        assert_eq!(cfg["ExposedPorts"], json!({"9000/tcp": {}}));
        assert_eq!(cfg["Volumes"], json!({"/data": {}}));
    }
}
