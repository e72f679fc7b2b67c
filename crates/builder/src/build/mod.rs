//! The build engine: stages in dependency order (only those the target
//! needs), metadata steps edit the image config (history `empty_layer`),
//! RUN and COPY/ADD produce layers from the overlay upper dir, and every
//! layer-making step goes through the cache first.

mod adopt;
mod cache;
mod cleanup;
pub mod config;
pub mod context;
pub mod copy;
mod copy_step;
mod dest;
mod engine;
mod fetch;
mod filehash;
mod mounts;
/// Moved to berth-image (the engine's `commit` makes layers the same way).
pub use berth_image::changeset as layer;
pub mod run;
mod steps;

pub use cache::{Cache, Entry};
pub use cleanup::{Cleaned, cleanup_stale};
pub use engine::{build, stderr_sink};
pub use run::Sink;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where the Dockerfile comes from.
#[derive(Clone, Debug)]
pub enum DockerfileSource {
    /// A path (relative paths are relative to the context).
    Path(PathBuf),
    /// Text (`-f -` or a Dockerfile on stdin).
    Text(String),
}

#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub context: PathBuf,
    pub dockerfile: DockerfileSource,
    /// Full or familiar names; normalised by the store's reference parser.
    pub tags: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub pull: bool,
    pub labels: BTreeMap<String, String>,
    /// `--network host` for every RUN (default: a private network namespace).
    pub host_network: bool,
    /// Clamp for layer mtimes and the config's dates (reproducible builds).
    pub source_date_epoch: Option<i64>,
    /// http or https per registry for base-image pulls: the same policy
    /// as the daemon's (or the CLI's) pulls.
    pub registry: berth_distribution::RegistryPolicy,
    /// Credentials for base-image pulls, by registry: what the client sent
    /// (`X-Registry-Config`), or the CLI's own config for a local build.
    pub registry_auth: berth_distribution::auth::AuthMap,
    /// `--secret id=…,src=…`: files RUN --mount=type=secret can see; never
    /// stored in a layer, only their ids reach the cache key.
    pub secrets: BTreeMap<String, PathBuf>,
    /// `--platform`: the target platform (default: this machine's). Base
    /// images are pulled for it; RUN works only in host-platform stages.
    pub platform: Option<String>,
    /// Set when nobody waits for the build any more (its client went
    /// away): no further step starts, a running RUN is killed, and the
    /// build fails with `Cancelled`, its mounts and containers gone.
    pub cancel: berth_image::Cancel,
}

impl BuildOptions {
    pub fn new(context: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            context: context.into(),
            dockerfile: DockerfileSource::Path("Dockerfile".into()),
            tags: Vec::new(),
            build_args: BTreeMap::new(),
            target: None,
            no_cache: false,
            pull: false,
            labels: BTreeMap::new(),
            host_network: false,
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH")
                .ok()
                .and_then(|s| s.parse().ok()),
            registry: Default::default(),
            registry_auth: Default::default(),
            secrets: BTreeMap::new(),
            platform: None,
            cancel: berth_image::Cancel::default(),
        }
    }
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct BuildResult {
    pub image_id: berth_image::Digest,
    /// Steps answered from the cache, and steps executed.
    pub cached_steps: usize,
    pub executed_steps: usize,
}
