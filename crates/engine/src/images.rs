//! Image operations: list, inspect, pull, tag, remove.

use std::collections::BTreeMap;
use std::sync::Arc;

use berth_distribution::auth::{AuthMap, Credentials, IDENTITY_TOKEN_USER};
use berth_distribution::{ClientOptions, Progress, PullOptions, RegistryClient};
use berth_image::lease::LeaseKind;
use berth_image::store::familiar;
use berth_image::{ImageRecord, Reference};
use serde::Serialize;
use serde_json::{Value, json};

use crate::Engine;
use crate::error::{EngineError, Result};
use crate::image_filter::ImageFilter;
use crate::util::{parse_rfc3339, unix_secs};

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

/// When an image was made, in unix seconds (0 when unknown).
fn created_secs(rec: &ImageRecord) -> f64 {
    rec.created
        .as_deref()
        .and_then(parse_rfc3339)
        .unwrap_or(0.0)
}

fn names(rec: &ImageRecord) -> (Vec<String>, Vec<String>) {
    (
        rec.repo_tags.iter().map(|t| familiar(t)).collect(),
        rec.repo_digests.iter().map(|t| familiar(t)).collect(),
    )
}

impl Engine {
    /// Every image, newest first.
    pub fn images(&self) -> Result<Vec<ImageSummary>> {
        self.list_images(&ImageFilter::default())
    }

    /// `GET /images/json?filters=`: the images (and, with a `reference`
    /// filter, the names) the filters keep, newest first.
    pub fn images_filtered(&self, filters: &str) -> Result<Vec<ImageSummary>> {
        let f = ImageFilter::parse(filters, |name| Ok(created_secs(&self.resolve_image(name)?)))?;
        self.list_images(&f)
    }

    fn list_images(&self, f: &ImageFilter) -> Result<Vec<ImageSummary>> {
        let mut out = Vec::new();
        for rec in self.images.list()? {
            let labels: BTreeMap<String, String> = self
                .image_config(&rec)
                .ok()
                .and_then(|c| serde_json::from_value(c["config"]["Labels"].clone()).ok())
                .unwrap_or_default();
            if !f.admits(created_secs(&rec), &labels) {
                continue;
            }
            let familiar_all = |v: &[String]| -> Vec<String> {
                f.names(v).into_iter().map(|t| familiar(t)).collect()
            };
            let (repo_tags, repo_digests) = (
                familiar_all(&rec.repo_tags),
                familiar_all(&rec.repo_digests),
            );
            if !f.lists(repo_tags.len(), repo_digests.len()) {
                continue;
            }
            out.push(ImageSummary {
                id: rec.id.to_string(),
                parent_id: String::new(),
                repo_tags,
                repo_digests,
                created: rec.created.as_deref().map_or(0, unix_secs),
                size: rec.size,
                shared_size: -1,
                labels,
                containers: -1,
            });
        }
        out.sort_by_key(|i| std::cmp::Reverse(i.created));
        Ok(out)
    }

    /// The raw image config blob (keeps every field docker clients expect).
    pub(crate) fn image_config(&self, rec: &ImageRecord) -> Result<Value> {
        Ok(serde_json::from_slice(&self.images.content.read(&rec.id)?)?)
    }

    /// An image by name or ID. A name the reference grammar refuses (and
    /// no ID) is a bad request, as dockerd's GetImage answers.
    pub(crate) fn resolve_image(&self, name: &str) -> Result<ImageRecord> {
        self.images.resolve(name).map_err(|e| match e {
            berth_image::Error::NotFound(_) | berth_image::Error::InvalidReference(..) => {
                let id = name
                    .strip_prefix("sha256:")
                    .is_some_and(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()));
                match name.parse::<Reference>() {
                    Err(e) if !id => EngineError::InvalidArgument(e.to_string()),
                    _ => EngineError::NotFound(format!("No such image: {name}")),
                }
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
        platform: &str,
        auth: &AuthConfig,
        progress: Arc<dyn Progress>,
        cancel: &berth_image::Cancel,
    ) -> Result<(Reference, ImageRecord)> {
        let reference = pull_reference(from_image, tag)?;
        let client = RegistryClient::new(&reference.domain, self.client_options(auth))?;
        let mut opts = PullOptions {
            cancel: cancel.clone(),
            ..Default::default()
        };
        if !platform.is_empty() {
            opts.platform = platform
                .parse()
                .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))?;
        }
        let rec = berth_distribution::pull(
            self.images.clone(),
            Arc::new(client),
            &reference,
            &opts,
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
        let mut res = self.images.remove(name, force);
        if matches!(res, Err(berth_image::Error::InUse(_))) && self.wait_for_teardowns(&rec.id) {
            res = self.images.remove(name, force);
        }
        let removed = res.map_err(|e| match e {
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

/// How long `rmi` waits for removed containers' background teardown.
const TEARDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

impl Engine {
    /// Waits until no removed container holds `image` any more: `rm` and
    /// `run --rm` answer before their background teardown releases the
    /// rootfs lease, and an `rmi` right after them must not fail "in use"
    /// (dockerd's does not). True when no removed container holds it (any
    /// more): worth asking the store again; false when a live container or
    /// a mount uses it, or the teardown outlasted the wait.
    fn wait_for_teardowns(&self, image: &berth_image::Digest) -> bool {
        let containers = self.paths.containers();
        let containers = containers.canonicalize().unwrap_or(containers);
        let removed_users = || -> Option<Vec<String>> {
            let leases = self.images.leases.live().ok()?;
            let t = self.lock();
            let mut torn = Vec::new();
            for l in leases.iter().filter(|l| l.image.as_ref() == Some(image)) {
                let id = l
                    .target
                    .as_deref()
                    .filter(|p| l.kind == LeaseKind::Container && p.parent() == Some(&containers))
                    .and_then(|p| p.file_name()?.to_str());
                match id {
                    Some(id) if !t.containers.contains_key(id) => torn.push(l.id.clone()),
                    // A live container's or a mount's: waiting is no use.
                    _ => return None,
                }
            }
            Some(torn)
        };
        // (The teardown may also have ended since the store said "in use".)
        let end = std::time::Instant::now() + TEARDOWN_WAIT;
        loop {
            match removed_users() {
                Some(v) if v.is_empty() => return true,
                Some(_) if std::time::Instant::now() < end => {
                    std::thread::sleep(std::time::Duration::from_millis(10))
                }
                _ => return false,
            }
        }
    }
}

/// The name `docker pull` means by `fromImage` and `tag` (a tag, or a
/// digest in either).
pub fn pull_name(from_image: &str, tag: &str) -> String {
    if tag.is_empty() || from_image.contains('@') {
        from_image.to_string()
    } else if tag.starts_with("sha256:") {
        format!("{from_image}@{tag}")
    } else {
        format!("{from_image}:{tag}")
    }
}

/// What a pull of `from_image` with `tag` fetches; a name the reference
/// grammar refuses is a bad request (checked before a pull's stream starts).
pub fn pull_reference(from_image: &str, tag: &str) -> Result<Reference> {
    pull_name(from_image, tag)
        .parse()
        .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))
}

/// `GET /images/{name}/history` entries.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct HistoryItem {
    pub id: String,
    pub created: i64,
    pub created_by: String,
    pub tags: Vec<String>,
    pub size: u64,
    pub comment: String,
}

/// A registry login, as `X-Registry-Auth`, `X-Registry-Config` (a map of
/// them) and `POST /auth` carry it.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    pub username: String,
    pub password: String,
    /// base64 of `username:password`, as config.json stores it.
    pub auth: String,
    pub serveraddress: String,
    #[serde(rename = "identitytoken")]
    pub identity_token: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("username", &self.username)
            .field("serveraddress", &self.serveraddress)
            .finish_non_exhaustive()
    }
}

impl AuthConfig {
    /// What the client sent, if anything: an identity token (exchanged at
    /// the token endpoint), a username and password, or `auth`.
    pub fn credentials(&self) -> Option<Credentials> {
        if !self.identity_token.is_empty() {
            return Some(Credentials {
                username: IDENTITY_TOKEN_USER.into(),
                password: self.identity_token.clone(),
            });
        }
        if !self.username.is_empty() {
            return Some(Credentials {
                username: self.username.clone(),
                password: self.password.clone(),
            });
        }
        (!self.auth.is_empty())
            .then(|| berth_distribution::auth::decode_auth(&self.auth))
            .flatten()
    }

    /// A build's `X-Registry-Config` as credentials by registry.
    pub fn map(configs: BTreeMap<String, AuthConfig>) -> AuthMap {
        let mut m = AuthMap::default();
        for (registry, a) in configs {
            if let Some(c) = a.credentials() {
                m.insert(registry, c);
            }
        }
        m
    }
}

impl Engine {
    /// How to reach a registry for a client: the daemon's policy and only
    /// the credentials that client sent.
    fn client_options(&self, auth: &AuthConfig) -> ClientOptions {
        ClientOptions {
            policy: self.options.registry.clone(),
            credentials: auth.credentials(),
        }
    }

    pub(crate) fn registry_policy(&self) -> &berth_distribution::RegistryPolicy {
        &self.options.registry
    }
}

fn parse_reference(name: &str) -> Result<Reference> {
    name.parse()
        .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))
}

/// `repo` with `tag` appended (unless empty), as a parsed reference.
fn tagged(repo: &str, tag: &str) -> Result<Reference> {
    if tag.is_empty() {
        parse_reference(repo)
    } else {
        parse_reference(&format!("{repo}:{tag}"))
    }
}

impl Engine {
    /// `docker push repo:tag`: the local image of that name to its registry.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        auth: &AuthConfig,
        progress: Arc<dyn Progress>,
    ) -> Result<(Reference, berth_image::Digest)> {
        let (reference, rec) = self.push_source(repo, tag)?;
        let client = RegistryClient::new(&reference.domain, self.client_options(auth))?;
        let digest = berth_distribution::push(
            self.images.clone(),
            Arc::new(client),
            &rec,
            &reference,
            &berth_distribution::PushOptions::default(),
            progress,
        )
        .await?;
        Ok((reference, digest))
    }

    /// What `push repo:tag` would send: a tag (not a digest) that exists
    /// here. Checked before a push streams anything.
    pub fn push_source(&self, repo: &str, tag: &str) -> Result<(Reference, ImageRecord)> {
        let reference = tagged(repo, tag)?;
        if reference.digest.is_some() {
            return Err(EngineError::InvalidArgument(format!(
                "push takes a tag, not a digest: {reference}"
            )));
        }
        let rec = self.images.resolve(&reference.to_string()).map_err(|_| {
            EngineError::NotFound(format!(
                "An image does not exist locally with the tag: {}",
                reference.familiar_repository()
            ))
        })?;
        Ok((reference, rec))
    }

    /// `POST /auth`: the credentials work against the registry's API.
    pub async fn auth(&self, auth: &AuthConfig) -> Result<()> {
        let server = auth
            .serveraddress
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let server = match server {
            "" | "index.docker.io/v1" | "index.docker.io" => "registry-1.docker.io",
            s => s,
        };
        let client = RegistryClient::new(server, self.client_options(auth))?;
        client.ping().await.map_err(|e| {
            if e.is_unauthorized() {
                EngineError::Unauthorized(format!(
                    "Get \"{}/v2/\": unauthorized: incorrect username or password",
                    client.base_url().trim_end_matches('/')
                ))
            } else {
                EngineError::Upstream(e.to_string())
            }
        })
    }

    /// The names for `save`, each checked first so a bad one is a 404
    /// before any byte of the archive goes out.
    pub fn check_images(&self, names: &[String]) -> Result<()> {
        for n in names {
            self.resolve_image(n)?;
        }
        Ok(())
    }

    /// `docker save`: a docker-archive of `names` to `out`.
    pub fn save(&self, names: &[String], out: impl std::io::Write) -> Result<()> {
        if names.is_empty() {
            return Err(EngineError::InvalidArgument(
                "no images named to save".into(),
            ));
        }
        self.check_images(names)?;
        berth_image::save::save(
            &self.images,
            names,
            berth_image::save::ArchiveFormat::DockerArchive,
            out,
        )?;
        Ok(())
    }

    /// A scratch file in the store (same filesystem as its blobs), removed
    /// by the caller; `load`/`import` bodies are spooled here since the
    /// archive is read by seeking.
    pub fn scratch_path(&self, what: &str) -> std::path::PathBuf {
        self.images.layers.scratch_path(what)
    }

    /// `docker load` from a tar at `path`: "Loaded image: …" lines.
    pub fn load(&self, path: &std::path::Path) -> Result<Vec<String>> {
        let loaded = self.images.load_archive(path)?;
        let mut out = Vec::new();
        for l in loaded {
            if l.tags.is_empty() {
                out.push(format!("Loaded image ID: {}", l.id));
            }
            for t in &l.tags {
                out.push(format!("Loaded image: {}", familiar(t)));
            }
        }
        Ok(out)
    }

    /// `docker import`: the rootfs tarball at `path` as a one-layer image,
    /// tagged `repo:tag` if given, its config edited by Dockerfile
    /// `changes` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, WORKDIR,
    /// VOLUME, STOPSIGNAL). Returns the image ID.
    pub fn import(
        &self,
        path: &std::path::Path,
        repo: &str,
        tag: &str,
        message: &str,
        changes: &[String],
    ) -> Result<String> {
        // The store keys tags by their full name (docker.io/library/...).
        let name = if repo.is_empty() {
            None
        } else {
            tagged(repo, tag)?.tagged()
        };
        let mut config = json!({});
        for c in changes {
            crate::change::apply_change(&mut config, c)?;
        }
        let comment = if message.is_empty() {
            "Imported from -".to_string()
        } else {
            message.to_string()
        };
        let l = self
            .images
            .import(path, name.as_deref(), &comment, config)?;
        Ok(l.id.to_string())
    }

    /// `docker history`, newest first; the top entry carries the ID and tags.
    pub fn history(&self, name: &str) -> Result<Vec<HistoryItem>> {
        let rec = self.resolve_image(name)?;
        let entries = berth_image::history::history(&self.images, &rec)?;
        Ok(entries
            .into_iter()
            .enumerate()
            .map(|(i, e)| HistoryItem {
                id: e
                    .id
                    .map_or_else(|| "<missing>".to_string(), |d| d.to_string()),
                created: e.created.as_deref().map_or(0, unix_secs),
                created_by: e.created_by,
                tags: if i == 0 {
                    rec.repo_tags.iter().map(|t| familiar(t)).collect()
                } else {
                    Vec::new()
                },
                size: e.size,
                comment: e.comment,
            })
            .collect())
    }
}
