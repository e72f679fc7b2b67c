//! berth-engine: the daemon's logic — images, containers, exec, logs — as
//! typed operations. It knows nothing of HTTP; the API crate translates.
//! Containers run under berth-shim, so the engine can die and come back
//! (see [`Engine::open`]) without touching them.

pub mod build;
mod change;
mod client_dir;
pub mod container;
pub mod error;
pub mod events;
mod image_filter;
pub mod images;
pub mod network;
pub mod prune;
mod store_perms;
mod util;
pub mod volume;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use berth_image::ImageStore;

/// Set by the API when a client goes away; long work (pulls, builds) stops.
pub use berth_image::Cancel;
pub use build::{BuildPrune, BuildPruneOptions, BuildRequest, BuildResult, Sink};
pub use container::exec::Exec;
pub use container::model::*;
pub use error::{EngineError, ErrorKind, Result};
pub use events::{Event, EventFilter, Subscription};
pub use images::{ImageInspect, ImageSummary, Removed};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Clone, Debug)]
pub struct Paths {
    /// Images, layers, container records and logs (`/var/lib/berth`).
    pub root: PathBuf,
    /// Shim and runtime state (`/run/berth`).
    pub exec_root: PathBuf,
    pub shim: PathBuf,
    /// OCI runtime; the shim's default (berth-runtime beside it) when unset.
    pub runtime: Option<PathBuf>,
}

/// Daemon settings beside its paths: berthd's flags (and, later, what
/// daemon.json says).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// http or https per registry, for pull, push, build and login alike.
    pub registry: berth_distribution::RegistryPolicy,
}

impl Paths {
    pub fn containers(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers().join(id)
    }
    pub fn state_dir(&self, id: &str) -> PathBuf {
        self.exec_root.join("containers").join(id)
    }
    pub fn shim_socket(&self, id: &str) -> PathBuf {
        self.state_dir(id).join("shim.sock")
    }
    pub fn runtime_root(&self) -> PathBuf {
        self.exec_root.join("runtime")
    }
}

#[derive(Default)]
pub(crate) struct Table {
    pub containers: BTreeMap<String, Container>,
    pub execs: HashMap<String, Exec>,
    /// Volumes a create in progress mounts, before its container is in
    /// `containers`: they count as in use.
    pub volume_holds: BTreeMap<String, usize>,
    /// Exit codes of the last removed containers: a wait whose thread did
    /// not run between the exit and the removal (a `--rm` container is
    /// removed right after its exit) still answers with the exit code.
    pub removed_exits: std::collections::VecDeque<(String, i32)>,
    /// Attaches to stopped containers, waiting for their next start.
    pub late_attaches: HashMap<String, Vec<container::late_attach::LateAttach>>,
}

impl Table {
    /// How many removed containers' exit codes are kept.
    const REMOVED_EXITS: usize = 256;

    pub fn note_removed(&mut self, id: &str, exit_code: i32) {
        if self.removed_exits.len() == Self::REMOVED_EXITS {
            self.removed_exits.pop_front();
        }
        self.removed_exits.push_back((id.to_string(), exit_code));
    }

    pub fn removed_exit(&self, id: &str) -> Option<i32> {
        self.removed_exits
            .iter()
            .rev()
            .find(|(i, _)| i == id)
            .map(|(_, code)| *code)
    }
}

pub struct Engine {
    pub paths: Paths,
    pub(crate) options: Options,
    pub(crate) images: Arc<ImageStore>,
    pub(crate) table: Mutex<Table>,
    /// Signalled on every container state change (exit, removal).
    pub(crate) changed: Condvar,
    pub(crate) events: events::EventLog,
    pub(crate) nets: Mutex<network::NetTable>,
    /// Packet rules, published ports, DNS (lock after `nets`, never before).
    pub(crate) packet: Mutex<network::packet::PacketState>,
}

impl Engine {
    /// Opens the stores and takes over the containers a previous daemon left:
    /// live shims are watched again, exits that happened meanwhile recorded.
    pub fn open(paths: Paths) -> Result<Arc<Engine>> {
        Engine::open_with(paths, Options::default())
    }

    /// [`Engine::open`] with daemon settings.
    pub fn open_with(paths: Paths, options: Options) -> Result<Arc<Engine>> {
        for d in [paths.containers(), paths.exec_root.join("containers")] {
            std::fs::create_dir_all(&d).map_err(|e| error::io_err("create", &d, e))?;
        }
        // Each container's dir (record, upper/work, log) in a block group of
        // its own choosing, away from the inodes its predecessors just freed
        // (see berth_image::layers::spread_subdirs).
        berth_image::layers::spread_subdirs(&paths.containers());
        let images = Arc::new(ImageStore::open(&paths.root)?);
        images.cleanup()?;
        store_perms::secure(&paths)?;
        // Step containers and mounts of builds a previous daemon was running.
        if let Err(e) = berth_builder::build::cleanup_stale(&paths.root) {
            eprintln!("berthd: cleaning up interrupted builds: {e}");
        }
        let packet = network::packet::PacketState::new(&paths);
        let engine = Arc::new(Engine {
            paths,
            options,
            images,
            table: Mutex::new(Table::default()),
            changed: Condvar::new(),
            events: events::EventLog::new(),
            nets: Mutex::new(network::NetTable::default()),
            packet: Mutex::new(packet),
        });
        engine.sweep_trash();
        engine.volumes_cleanup()?;
        engine.networks_open()?;
        engine.restore()?;
        engine.networks_reconcile()?;
        engine.packet_restore()?;
        Ok(engine)
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn image_store(&self) -> &Arc<ImageStore> {
        &self.images
    }

    /// `/info`'s figures.
    pub fn info(&self) -> Result<Info> {
        let t = self.lock();
        let running = t.containers.values().filter(|c| c.state.running).count();
        Ok(Info {
            containers: t.containers.len(),
            running,
            stopped: t.containers.len() - running,
            images: self.images.list()?.len(),
            root: self.paths.root.clone(),
            cgroup_version: if cgroup_v2() { "2" } else { "1" },
            runtime: self.paths.runtime.clone(),
            warnings: self.packet().fallback.iter().cloned().collect(),
        })
    }
}

pub struct Info {
    /// `/info`'s Warnings (e.g. nftables unavailable).
    pub warnings: Vec<String>,
    pub containers: usize,
    pub running: usize,
    pub stopped: usize,
    pub images: usize,
    pub root: PathBuf,
    pub cgroup_version: &'static str,
    pub runtime: Option<PathBuf>,
}

/// cgroup v2 when /sys/fs/cgroup is the unified hierarchy.
pub fn cgroup_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}
