//! Containers: records on disk, lookup, listing, and taking over a previous
//! daemon's containers. Lifecycle operations are in [`lifecycle`].

pub mod archive;
pub mod changes;
pub mod commit;
pub mod exec;
pub(crate) mod late_attach;
pub mod lifecycle;
pub mod logs;
pub mod model;
pub mod mounts;
mod netns;
pub mod ops;
pub mod options;
mod restart;
mod seed;
pub mod spec;
pub mod stats;
mod sysinfo;
mod validate;

use std::path::Path;
use std::sync::Arc;

use berth_shim::{ExitStatus, ShimClient};
use serde_json::{Value, json};

use self::model::{Container, Summary};
use crate::error::{EngineError, Result};
use crate::util::{unix_secs, write_replacing};
use crate::{Engine, Table};

pub(crate) const RECORD: &str = "config.v2.json";
/// A started container's record, written without fsync beside the durable
/// one (see [`Engine::persist_started`]); restore prefers it when it parses.
const STARTED: &str = "config.v2.started.json";

pub(crate) fn no_such(id: &str) -> EngineError {
    EngineError::NotFound(format!("No such container: {id}"))
}

impl Table {
    /// Full id, name (with or without the slash), or a unique id prefix.
    pub(crate) fn find(&self, key: &str) -> Result<String> {
        if self.containers.contains_key(key) {
            return Ok(key.to_string());
        }
        let name = format!("/{}", key.trim_start_matches('/'));
        if let Some(c) = self.containers.values().find(|c| c.name == name) {
            return Ok(c.id.clone());
        }
        let hits: Vec<&String> = if key.is_empty() {
            Vec::new()
        } else {
            self.containers
                .keys()
                .filter(|k| k.starts_with(key))
                .collect()
        };
        match hits.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(no_such(key)),
            _ => Err(EngineError::InvalidArgument(format!(
                "multiple IDs found with provided prefix: {key}"
            ))),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Result<&Container> {
        let id = self.find(key)?;
        Ok(&self.containers[&id])
    }
}

/// Which containers `list` returns (`docker ps` filters).
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub all: bool,
    /// Docker's filter JSON: `{"status":["running"],"name":["x"],...}`.
    pub filters: Value,
}

fn matches(c: &Container, filters: &Value) -> bool {
    let Some(obj) = filters.as_object() else {
        return true;
    };
    obj.iter().all(|(key, vals)| {
        let Some(vals) = crate::util::filter_values(vals) else {
            return true;
        };
        vals.iter().any(|v| match key.as_str() {
            "status" => c.state.status == *v,
            "name" => c.short_name().contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v.as_str()),
            "label" => match v.split_once('=') {
                Some((k, val)) => {
                    c.config.labels.as_ref().and_then(|l| l.get(k)) == Some(&val.to_string())
                }
                None => c.config.labels.as_ref().is_some_and(|l| l.contains_key(v)),
            },
            "ancestor" => {
                c.config.image.as_deref() == Some(v.as_str()) || c.image.contains(v.as_str())
            }
            "exited" => c.state.status == "exited" && c.state.exit_code.to_string() == *v,
            // A volume name or a mount destination, as Docker matches it.
            "volume" => c
                .mount_points
                .iter()
                .any(|m| m.name == *v || m.destination == *v || m.source == *v),
            _ => true,
        })
    })
}

impl Engine {
    pub(crate) fn persist(&self, c: &Container) -> Result<()> {
        let p = self.paths.container_dir(&c.id).join(RECORD);
        // fsync costs 5-25 ms each on a busy disk, and a container's record is
        // rewritten on every state change. A `--rm` container does not outlive
        // a reboot, so its record is never fsynced (a power cut can leave it
        // empty or old: restore then skips it and reports it). Every other
        // record is durable, since a lost one would orphan the container's
        // mounts, lease and volumes.
        let durable = !c.host_config.auto_remove.unwrap_or(false);
        if durable {
            // Supersedes a start's unsynced record: removed first, so the
            // directory fsync below makes the removal durable with the write.
            let started = p.with_file_name(STARTED);
            match std::fs::remove_file(&started) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(crate::error::io_err("remove", &started, e)),
            }
        }
        write_replacing(
            &p,
            &serde_json::to_vec(c).expect("container serialises"),
            durable,
        )
    }

    /// The record after a start. After a power cut no container runs, so
    /// what a start changed matters then only to a restart policy (a boot
    /// restarts only containers that have started): other containers write
    /// it beside the durable record, without the two fsyncs (4-10 ms of
    /// every `run -d` on a busy disk). Not over it: a record replaced
    /// without fsync can be empty after a power cut (ext4 without a
    /// journal), and would orphan the container; a bad `STARTED` file is
    /// ignored by restore, which then has the create's record.
    pub(crate) fn persist_started(&self, c: &Container) -> Result<()> {
        let policy = c
            .host_config
            .restart_policy
            .as_ref()
            .map(|p| p.name.as_str());
        if c.host_config.auto_remove.unwrap_or(false) || !matches!(policy, None | Some("" | "no")) {
            return self.persist(c);
        }
        let p = self.paths.container_dir(&c.id).join(STARTED);
        write_replacing(
            &p,
            &serde_json::to_vec(c).expect("container serialises"),
            false,
        )
    }

    pub fn inspect(&self, key: &str) -> Result<Container> {
        Ok(self.lock().get(key)?.clone())
    }

    pub fn list(&self, opts: &ListOptions) -> Result<Vec<Summary>> {
        let t = self.lock();
        let mut out: Vec<Summary> = t
            .containers
            .values()
            .filter(|c| opts.all || c.state.running)
            .filter(|c| matches(c, &opts.filters))
            .map(|c| {
                let mut command = vec![c.path.clone()];
                command.extend(c.args.iter().cloned());
                Summary {
                    id: c.id.clone(),
                    names: vec![c.name.clone()],
                    image: c.config.image.clone().unwrap_or_else(|| c.image.clone()),
                    image_id: c.image.clone(),
                    command: command.join(" "),
                    created: unix_secs(&c.created),
                    ports: crate::network::packet::summary_ports(&c.network_settings.ports),
                    labels: c.config.labels.clone().unwrap_or_default(),
                    state: c.state.status.clone(),
                    status: c.status_text(),
                    host_config: json!({"NetworkMode": c.host_config.network_mode.clone().unwrap_or_default()}),
                    network_settings: json!({"Networks": c.network_settings.networks}),
                    mounts: mounts::inspect_mounts(c)
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect();
        out.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Reads every container record and reconnects to the shims that hold
    /// them; a shim that vanished left its exit in `exit.json`.
    pub(crate) fn restore(self: &Arc<Self>) -> Result<()> {
        let dir = self.paths.containers();
        let entries = std::fs::read_dir(&dir).map_err(|e| crate::error::io_err("read", &dir, e))?;
        let mut watch = Vec::new();
        let mut remove = Vec::new();
        for e in entries.flatten() {
            // A start's record, if it survived whole, is the newer one
            // (every durable write removes it first).
            let started = std::fs::read(e.path().join(STARTED))
                .ok()
                .filter(|d| serde_json::from_slice::<Container>(d).is_ok());
            let name = e.file_name();
            let is_id = name.len() == 64
                && name
                    .as_encoded_bytes()
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
            if !is_id || !e.file_type().is_ok_and(|t| t.is_dir()) {
                eprintln!("berthd: {} is no container, left alone", e.path().display());
                continue;
            }
            let record = e.path().join(RECORD);
            // A record torn by a power cut (a `--rm` container's is never
            // fsynced) or a create cut short: nothing can bring the container
            // back, so what it holds (shim, runtime state, mount, lease,
            // files) is torn down like a removed container's.
            let parsed = match started.or_else(|| std::fs::read(&record).ok()) {
                Some(data) => serde_json::from_slice::<Container>(&data).map_err(|e| e.to_string()),
                None => Err("missing".into()),
            };
            let mut c = match parsed {
                Ok(c) if e.file_name().to_str() == Some(c.id.as_str()) => c,
                Ok(c) => {
                    self.discard_unreadable(&e.path(), &format!("it names container {}", c.id));
                    continue;
                }
                Err(err) => {
                    self.discard_unreadable(&e.path(), &err);
                    continue;
                }
            };
            // A removal the previous daemon died in is finished now, or the
            // container stayed "being removed" for good.
            let removing = c.state.status == "removing";
            if c.shim {
                match ShimClient::connect(&self.paths.shim_socket(&c.id))
                    .and_then(|mut s| s.state())
                {
                    Ok(st) if st.status == "created" => c.state.status = "created".into(),
                    Ok(st) => {
                        c.state.running = st.status == "running";
                        // The shim knows nothing of the freezer: a paused
                        // container is paused still (its record says so).
                        c.state.paused &= c.state.running;
                        c.state.status = match (c.state.running, c.state.paused) {
                            (false, _) => "exited",
                            (true, true) => "paused",
                            (true, false) => "running",
                        }
                        .into();
                        watch.push(c.id.clone());
                    }
                    Err(_) => {
                        let exit = read_exit(&self.paths.state_dir(&c.id).join("exit.json"));
                        self.cleanup_lost_shim(&c.id);
                        // Exited while the daemon was down: its veth went
                        // with its namespace, its addresses come back here.
                        self.network_detach_all(&mut c);
                        apply_exit(&mut c, exit);
                        if c.host_config.auto_remove.unwrap_or(false) {
                            remove.push(c.id.clone());
                        }
                    }
                }
            }
            if removing && !remove.contains(&c.id) {
                remove.push(c.id.clone());
            }
            let _ = self.persist(&c);
            self.lock().containers.insert(c.id.clone(), c);
        }
        for id in watch {
            self.watch(id);
        }
        for id in remove {
            let _ = self.remove_with(&id, true, true);
        }
        self.restart_on_boot();
        Ok(())
    }

    /// When a shim is gone (killed, host trouble), the runtime may still
    /// hold state for the container: remove it so the id can start again.
    pub(crate) fn cleanup_lost_shim(&self, id: &str) {
        cleanup_lost_shim(&self.paths, id);
    }
}

/// [`Engine::cleanup_lost_shim`] for code that holds only the paths.
pub(crate) fn cleanup_lost_shim(paths: &crate::Paths, id: &str) {
    let _ = ops::runtime_command(paths)
        .args(["delete", "--force", id])
        .output();
    let _ = std::fs::remove_dir_all(paths.state_dir(id));
}

pub(crate) fn read_exit(p: &Path) -> Option<ExitStatus> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Records an exit (or, with None, that the exit could not be learned).
pub(crate) fn apply_exit(c: &mut Container, exit: Option<ExitStatus>) {
    let s = &mut c.state;
    match exit {
        Some(e) => {
            s.exit_code = e.exit_code;
            s.oom_killed = e.oom_killed;
            s.finished_at = e.exited_at;
        }
        None => {
            s.exit_code = 255;
            s.error = "container's shim exited without recording an exit status".into();
            s.finished_at = crate::util::now_rfc3339();
        }
    }
    s.running = false;
    s.paused = false;
    s.pid = 0;
    if s.status != "removing" {
        s.status = "exited".into();
    }
    c.shim = false;
    c.exits += 1;
}
