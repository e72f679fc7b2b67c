//! Container state on disk: `<root>/<id>/state.json`, written atomically.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, RuntimeError};
use crate::sys;

pub const STATE_FILE: &str = "state.json";
pub const CONFIG_FILE: &str = "config.json";
pub const START_SOCKET: &str = "start.sock";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// What the runtime remembers about a container. The first fields are the OCI
/// state; the rest are ours (runc adds the same extras: rootfs, created, owner).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(default)]
    pub pid: i32,
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub owner: String,
    /// Start time of `pid` (clock ticks since boot) to detect pid reuse.
    #[serde(default)]
    pub pid_start_time: u64,
    #[serde(default)]
    pub cgroups_path: Option<PathBuf>,
    /// Whether the container has its own PID namespace (if not, `kill --all`
    /// and `delete` must find its processes through the cgroup).
    #[serde(default)]
    pub own_pid_ns: bool,
    /// No mount namespace of its own: its mounts live in the caller's
    /// namespace under the rootfs and `delete` must detach them.
    #[serde(default)]
    pub shares_host_mounts: bool,
}

impl ContainerState {
    /// The OCI state JSON (`runc state` prints the same fields).
    pub fn to_oci_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "pid": if self.status == Status::Stopped { 0 } else { self.pid },
            "status": self.status,
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
            "owner": self.owner,
        });
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::json!(self.annotations);
        }
        v
    }
}

/// The directory holding every container's state (`--root`).
#[derive(Debug, Clone)]
pub struct StateRoot {
    pub path: PathBuf,
}

impl StateRoot {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateRoot { path: path.into() }
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.path.join(id)
    }

    /// Compiled seccomp filters (see `seccomp::prepare`); ids never start
    /// with a dot, so this cannot be a container's directory.
    pub fn seccomp_cache(&self) -> PathBuf {
        self.path.join(".seccomp-cache")
    }

    /// Reserves `id` by creating its directory; fails if it exists.
    pub fn reserve(&self, id: &str) -> Result<PathBuf> {
        validate_id(id)?;
        fs::create_dir_all(&self.path)
            .ctx(|| format!("create state root {}", self.path.display()))?;
        let dir = self.dir(id);
        match fs::create_dir(&dir) {
            Ok(()) => Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(RuntimeError::AlreadyExists(id.to_string()))
            }
            Err(e) => Err(RuntimeError::io(format!("create {}", dir.display()), e)),
        }
    }

    pub fn load(&self, id: &str) -> Result<ContainerState> {
        validate_id(id)?;
        let file = self.dir(id).join(STATE_FILE);
        let data = match fs::read(&file) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(RuntimeError::NotFound(id.to_string()));
            }
            Err(e) => return Err(RuntimeError::io(format!("read {}", file.display()), e)),
        };
        let mut state: ContainerState =
            serde_json::from_slice(&data).map_err(|e| RuntimeError::Config {
                path: file.clone(),
                msg: format!("corrupt state: {e}"),
            })?;
        state.status = self.live_status(&state);
        Ok(state)
    }

    pub fn save(&self, state: &ContainerState) -> Result<()> {
        let bytes = serde_json::to_vec(state).expect("state serializes");
        write_atomic(&self.dir(&state.id).join(STATE_FILE), &bytes)
    }

    /// Ids of every container under the root, sorted.
    pub fn ids(&self) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let rd = match fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
            Err(e) => return Err(RuntimeError::io(format!("read {}", self.path.display()), e)),
        };
        for entry in rd.flatten() {
            if let (true, Some(name)) = (
                entry.path().join(STATE_FILE).exists(),
                entry.file_name().to_str(),
            ) {
                ids.push(name.to_string());
            }
        }
        ids.sort();
        Ok(ids)
    }

    /// The status as the processes show it now, not as last written.
    fn live_status(&self, state: &ContainerState) -> Status {
        if state.status == Status::Creating || state.pid <= 0 {
            return state.status;
        }
        let alive = match sys::parse_stat_of(state.pid) {
            Some((st, start)) => start == state.pid_start_time && st != 'Z' && st != 'X',
            None => false,
        };
        if !alive {
            return Status::Stopped;
        }
        if self.dir(&state.id).join(START_SOCKET).exists() {
            return Status::Created;
        }
        if state.status == Status::Paused {
            return Status::Paused;
        }
        Status::Running
    }
}

/// Container ids end up in paths: keep them to a safe alphabet.
pub fn validate_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+.-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(RuntimeError::InvalidId(id.to_string()))
    }
}

/// Writes a file so that readers see either the old or the new content, and
/// so does a boot after a power cut: the data is fsynced before the rename,
/// the directory after it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(bytes)
        .ctx(|| format!("write {}", tmp.display()))?;
    f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, path).ctx(|| format!("rename {} into place", path.display()))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(|| format!("fsync {}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_validated() {
        assert!(validate_id("abc-1_2.3+x").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    fn sample(id: &str, pid: i32, start: u64) -> ContainerState {
        ContainerState {
            oci_version: "1.2.0".into(),
            id: id.into(),
            status: Status::Created,
            pid,
            bundle: "/b".into(),
            annotations: HashMap::new(),
            rootfs: "/b/rootfs".into(),
            created: sys::now_rfc3339(),
            owner: String::new(),
            pid_start_time: start,
            cgroups_path: None,
            own_pid_ns: true,
            shares_host_mounts: false,
        }
    }

    #[test]
    fn reserve_save_load_and_live_status() {
        let d = tempfile::tempdir().unwrap();
        let root = StateRoot::new(d.path());
        root.reserve("c1").unwrap();
        assert!(matches!(
            root.reserve("c1"),
            Err(RuntimeError::AlreadyExists(_))
        ));
        // A live process (ourselves) with the exec fifo present: created.
        let me = std::process::id() as i32;
        let start = sys::process_start_time(me).unwrap();
        root.save(&sample("c1", me, start)).unwrap();
        fs::write(root.dir("c1").join(START_SOCKET), b"").unwrap();
        assert_eq!(root.load("c1").unwrap().status, Status::Created);
        fs::remove_file(root.dir("c1").join(START_SOCKET)).unwrap();
        assert_eq!(root.load("c1").unwrap().status, Status::Running);
        // Same pid but another start time: the pid was reused, the container is gone.
        root.save(&sample("c1", me, start + 1)).unwrap();
        assert_eq!(root.load("c1").unwrap().status, Status::Stopped);
        assert_eq!(root.ids().unwrap(), vec!["c1".to_string()]);
        assert!(matches!(root.load("nope"), Err(RuntimeError::NotFound(_))));
    }
}
