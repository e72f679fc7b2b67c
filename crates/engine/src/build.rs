//! Builds (`POST /build`, `POST /build/prune`): the context arrives as a tar
//! (plain or gzip) or as a bare Dockerfile; berth-builder does the work on
//! the engine's image store.

use std::collections::{BTreeMap, BTreeSet};

use berth_builder::build::{self, BuildOptions, DockerfileSource};
use berth_image::Digest;
use berth_image::formats::Platform;

pub use crate::client_dir::{ClientDir, Peer, REFUSED as CONTEXT_REFUSED};
pub use berth_builder::build::{BuildResult, Sink};

use crate::Engine;
use crate::error::{EngineError, Result};

/// What a client asked to build (the context comes separately).
#[derive(Clone, Debug, Default)]
pub struct BuildRequest {
    /// Dockerfile path inside the context (default `Dockerfile`).
    pub dockerfile: Option<String>,
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    /// `default`, `bridge`, `none` or `host` (empty = default).
    pub network: String,
    /// `os/arch[/variant]` (default: the host's).
    pub platform: Option<String>,
    /// Names the client's context (hex): kept and synced between builds.
    pub context_key: Option<String>,
    /// Credentials for base images, by registry (`X-Registry-Config`):
    /// the only ones a build uses.
    pub registry_auth: berth_distribution::auth::AuthMap,
    /// Set when the client goes away: the build stops (see
    /// `berth_builder::build::BuildOptions::cancel`).
    pub cancel: berth_image::Cancel,
}

impl BuildRequest {
    /// `-t` names, checked before anything is built (dockerd's
    /// sanitizeRepoAndTags): a name the reference grammar refuses or one
    /// with a digest is a bad request.
    pub fn check_tags(&self) -> Result<()> {
        for t in &self.tags {
            let r: berth_image::Reference = t
                .parse()
                .map_err(|e: berth_image::Error| EngineError::InvalidArgument(e.to_string()))?;
            if r.digest.is_some() {
                return Err(EngineError::InvalidArgument(
                    "build tag cannot contain a digest".into(),
                ));
            }
        }
        Ok(())
    }
}

/// The kept context of clients that send no `berthcontext` key.
const ANONYMOUS_CONTEXT: &str = "0";

/// Where a build's context comes from.
pub enum BuildContext {
    /// The request body, spooled to a file: a tar (plain or gzip), or a
    /// bare Dockerfile. Read as a stream, never whole.
    Body(std::fs::File),
    /// The client's own directory, read in place; `dockerfile` is the
    /// Dockerfile's text when it lies outside that directory.
    Dir {
        dir: ClientDir,
        dockerfile: Option<String>,
    },
}

/// What `builder prune` removed.
/// What `POST /build/prune` asks for (see [`Engine::build_prune`]).
#[derive(Clone, Debug, Default)]
pub struct BuildPruneOptions {
    pub all: bool,
    /// `until` only: the cache records no labels.
    pub filter: crate::prune::PruneFilter,
    /// Bytes the cache may keep; 0: no limit.
    pub keep_storage: u64,
}

#[derive(Debug, Default)]
pub struct BuildPrune {
    pub deleted: Vec<String>,
    pub reclaimed: u64,
}

impl Engine {
    /// Runs a build; progress lines go to `out`. A tar context is synced
    /// into the client's kept dir (or a scratch dir removed afterwards); a
    /// client dir is read where it is.
    pub fn build(
        &self,
        context: BuildContext,
        req: BuildRequest,
        out: Sink,
    ) -> Result<BuildResult> {
        let host_network = match req.network.as_str() {
            // No bridge yet: the default is a private network namespace
            // with loopback only, which is also what `none` means.
            "" | "default" | "bridge" | "none" => false,
            "host" => true,
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "networkmode {other:?}: only default, none and host are supported for builds"
                )));
            }
        };
        // Another platform is accepted: its base images are pulled, and the
        // builder refuses RUN in its stages (no emulation).
        let platform = req.platform.filter(|p| !p.is_empty());
        if let Some(p) = &platform {
            p.parse::<Platform>()?;
        }
        // A client that names its context (berth build does) gets it kept
        // between builds and synced; otherwise a scratch dir per build.
        let (kept, scratch, client);
        let (dir, text) = match context {
            BuildContext::Dir { dir, dockerfile } => {
                client = dir;
                (client.path(), dockerfile)
            }
            BuildContext::Body(mut body) => {
                // Clients that name no context (docker build) share one
                // kept slot: each sync leaves it exactly the tar (contents
                // compared where size and mtime agree), so rebuilding the
                // same tree rewrites and rehashes nothing. A build while
                // another holds the slot, or a bare Dockerfile, gets a
                // scratch dir.
                use std::io::Seek;
                use std::os::unix::fs::FileExt;
                let key = req.context_key.as_deref().unwrap_or(ANONYMOUS_CONTEXT);
                let mut head = [0u8; 512];
                let n = body
                    .read_at(&mut head, 0)
                    .map_err(|e| EngineError::Internal(format!("read the build context: {e}")))?;
                kept = if build::context::is_tar(&head[..n]) || req.context_key.is_some() {
                    build::context::kept(self.images.root(), key, &mut body)?
                } else {
                    None
                };
                match &kept {
                    Some(k) => (k.dir.clone(), k.dockerfile.clone()),
                    None => {
                        body.rewind().map_err(|e| {
                            EngineError::Internal(format!("read the build context: {e}"))
                        })?;
                        scratch = build::context::from_reader(self.images.root(), body)?;
                        (scratch.dir.clone(), scratch.dockerfile.clone())
                    }
                }
            }
        };
        let mut o = BuildOptions::new(&dir);
        o.dockerfile = match (text, req.dockerfile) {
            // The body was a Dockerfile, not a tar (`docker build - < Dockerfile`
            // with an old client).
            (Some(text), _) => DockerfileSource::Text(text),
            (None, Some(f)) if !f.is_empty() => {
                let p = std::path::Path::new(&f);
                if p.is_absolute() || p.components().any(|c| c.as_os_str() == "..") {
                    return Err(EngineError::InvalidArgument(format!(
                        "dockerfile {f:?}: must be a path inside the build context"
                    )));
                }
                DockerfileSource::Path(p.into())
            }
            (None, _) => DockerfileSource::Path("Dockerfile".into()),
        };
        if let DockerfileSource::Path(p) = &o.dockerfile
            && !dir.join(p).is_file()
        {
            return Err(EngineError::InvalidArgument(format!(
                "Cannot locate specified Dockerfile: {}",
                p.display()
            )));
        }
        o.tags = req.tags;
        o.build_args = req.build_args;
        o.labels = req.labels;
        o.target = req.target.filter(|t| !t.is_empty());
        o.no_cache = req.no_cache;
        o.pull = req.pull;
        o.host_network = host_network;
        o.platform = platform;
        o.registry = self.registry_policy().clone();
        o.registry_auth = req.registry_auth;
        o.cancel = req.cancel;
        Ok(build::build(&self.images, &o, out)?)
    }

    /// `POST /build/prune`: drops cache entries, then collects the layers
    /// only they kept. As with Docker, without `all` only entries no image
    /// uses go (an entry whose layer is in some image's chain stays);
    /// `until` keeps newer entries; `keep_storage` stops once the cache's
    /// layers fit in that many bytes, oldest entries going first.
    pub fn build_prune(&self, opts: &BuildPruneOptions) -> Result<BuildPrune> {
        let cache = build::Cache::open(self.images.root())?;
        let used: BTreeSet<Digest> = if opts.all {
            BTreeSet::new()
        } else {
            self.images
                .list()?
                .iter()
                .flat_map(|r| r.layers.iter().map(|l| l.chain_id.clone()))
                .collect()
        };
        let size = |e: &build::Entry| {
            e.layer
                .as_ref()
                .and_then(|l| self.images.layers.meta(&l.chain_id).ok())
                .map_or(0, |m| m.size)
        };
        let mut entries = cache.entries()?;
        let mut total: u64 = entries.iter().map(|(_, e)| size(e)).sum();
        entries.sort_by_key(|(_, e)| e.created);
        let mut deleted = Vec::new();
        for (key, e) in entries {
            if opts.keep_storage > 0 && total <= opts.keep_storage {
                break;
            }
            let in_use = e.layer.as_ref().is_some_and(|l| used.contains(&l.chain_id));
            if in_use || !opts.filter.matches(e.created as f64, &BTreeMap::new()) {
                continue;
            }
            cache.remove(&key)?;
            total = total.saturating_sub(size(&e));
            deleted.push(key);
        }
        // Kept build contexts are cache too, but carry no time or size the
        // filters could weigh: they go only with an unfiltered prune.
        let kept = self.images.root().join("builder").join("contexts");
        if opts.filter.is_empty() && opts.keep_storage == 0 && kept.exists() {
            std::fs::remove_dir_all(&kept).map_err(|e| crate::error::io_err("remove", &kept, e))?;
        }
        let gc = self.images.collect(None)?;
        Ok(BuildPrune {
            deleted,
            reclaimed: gc.bytes,
        })
    }
}
