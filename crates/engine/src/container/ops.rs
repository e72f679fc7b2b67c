//! Operations on an existing container that are not its lifecycle: `top`,
//! `pause`/`unpause`, `rename`, `update`. Pause and update go through the
//! OCI runtime's command line (`pause`, `resume`, `update`), so any
//! runc-compatible runtime the daemon is configured with works.

use std::path::Path;
use std::process::Command;

use berth_cgroups::{Cgroup, CgroupManager};
use serde::Deserialize;
use serde_json::{Value, json};

use super::lifecycle::{check_name_in, valid_name};
use super::model::{Container, HostConfig};
use super::no_such;
use crate::Engine;
use crate::error::{EngineError, Result, io_err};

/// `docker top`'s answer.
#[derive(Clone, Debug, Default, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Top {
    pub titles: Vec<String>,
    pub processes: Vec<Vec<String>>,
}

/// `POST /containers/{id}/update`'s body: the resources Berth applies live.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UpdateRequest {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub pids_limit: Option<i64>,
    pub restart_policy: Option<super::model::RestartPolicy>,
}

fn not_running(c: &Container) -> EngineError {
    EngineError::Conflict(format!("Container {} is not running", c.id))
}

/// The container's cgroup: the spec puts every container at `/berth/<id>`.
pub(crate) fn cgroup(id: &str) -> Result<Cgroup> {
    let path = format!("/berth/{id}");
    Cgroup::open(Some(Path::new(&path)), id)
        .map_err(|e| EngineError::Internal(format!("cgroup of container {id}: {e}")))
}

/// Parses `ps` output, keeping the rows whose PID is in `pids`. The last
/// column (the command) may hold spaces; it takes the rest of the line.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(String::from)
        .collect();
    let pid_col = titles.iter().position(|t| t == "PID").ok_or_else(|| {
        EngineError::InvalidArgument("Couldn't find PID field in ps output".into())
    })?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let n = titles.len().max(1);
        let mut row: Vec<String> = fields.iter().take(n - 1).map(|s| s.to_string()).collect();
        row.push(fields.get(n - 1..).unwrap_or(&[]).join(" "));
        processes.push(row);
    }
    Ok(Top { titles, processes })
}

impl Engine {
    /// The OCI runtime's command line with the daemon's state root.
    pub(crate) fn runtime_command(&self) -> Command {
        runtime_command(&self.paths)
    }

    fn run_runtime(&self, args: &[String]) -> Result<()> {
        let mut cmd = self.runtime_command();
        let out = cmd
            .args(args)
            .output()
            .map_err(|e| EngineError::Internal(format!("running the OCI runtime: {e}")))?;
        if out.status.success() {
            return Ok(());
        }
        Err(EngineError::Internal(format!(
            "runtime {}: {}",
            args.first().map_or("", String::as_str),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }

    /// `docker top`: `ps` (with `ps_args`, `-ef` by default) over the
    /// processes of the container's cgroup.
    pub fn top(&self, key: &str, ps_args: Option<&str>) -> Result<Top> {
        let c = self.inspect(key)?;
        if !c.state.running {
            return Err(not_running(&c));
        }
        let pids = cgroup(&c.id)?
            .pids()
            .map_err(|e| EngineError::Internal(format!("listing processes: {e}")))?;
        let args = ps_args.filter(|a| !a.trim().is_empty()).unwrap_or("-ef");
        let out = Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .map_err(|e| EngineError::Internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::InvalidArgument(format!(
                "ps: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// `docker pause`: freezes every process of the container.
    pub fn pause(&self, key: &str) -> Result<()> {
        let c = self.inspect(key)?;
        if !c.state.running {
            return Err(not_running(&c));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        self.run_runtime(&["pause".into(), c.id.clone()])?;
        self.set_paused(&c.id, true)?;
        self.emit_container(&c.id, "pause", &[]);
        Ok(())
    }

    pub fn unpause(&self, key: &str) -> Result<()> {
        let c = self.inspect(key)?;
        if !c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.run_runtime(&["resume".into(), c.id.clone()])?;
        self.set_paused(&c.id, false)?;
        self.emit_container(&c.id, "unpause", &[]);
        Ok(())
    }

    fn set_paused(&self, id: &str, paused: bool) -> Result<()> {
        let mut t = self.lock();
        let c = t.containers.get_mut(id).ok_or_else(|| no_such(id))?;
        c.state.paused = paused;
        if c.state.running {
            c.state.status = if paused { "paused" } else { "running" }.into();
        }
        self.persist(c)
    }

    /// A signal sent to a frozen container is delivered only once it is
    /// thawed, so (as Docker does) kill and stop thaw it after signalling.
    pub(crate) fn thaw_after_signal(&self, id: &str) {
        let paused = self
            .lock()
            .containers
            .get(id)
            .is_some_and(|c| c.state.paused);
        if paused && self.run_runtime(&["resume".into(), id.to_string()]).is_ok() {
            let _ = self.set_paused(id, false);
        }
    }

    /// `docker rename`.
    pub fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if new_name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "Neither old nor new names may be empty".into(),
            ));
        }
        if !valid_name(new_name) {
            return Err(EngineError::InvalidArgument(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let (id, old) = {
            let mut t = self.lock();
            let id = t.find(key)?;
            let old = t.containers[&id].name.clone();
            if old == format!("/{new_name}") {
                return Err(EngineError::InvalidArgument(
                    "Renaming a container with the same name as its current name".into(),
                ));
            }
            check_name_in(&t, new_name)?;
            let c = t.containers.get_mut(&id).expect("found");
            c.name = format!("/{new_name}");
            self.persist(c)?;
            (id, old)
        };
        self.emit_container(&id, "rename", &[("oldName", old)]);
        Ok(())
    }

    /// `docker update`: new limits, applied live to a running container
    /// and persisted (record and bundle) for its next start.
    pub fn update(&self, key: &str, u: UpdateRequest) -> Result<Vec<String>> {
        if u.nano_cpus.is_some_and(|n| n > 0) && u.cpu_quota.is_some_and(|q| q > 0) {
            return Err(EngineError::InvalidArgument(
                "Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set"
                    .into(),
            ));
        }
        // The request's own values first, as dockerd checks an update.
        super::validate::host_config(
            &mut HostConfig {
                memory: u.memory,
                memory_swap: u.memory_swap,
                memory_reservation: u.memory_reservation,
                nano_cpus: u.nano_cpus,
                cpu_quota: u.cpu_quota,
                cpu_period: u.cpu_period,
                cpuset_cpus: u.cpuset_cpus.clone(),
                ..HostConfig::default()
            },
            &super::validate::HostResources::probe(),
            true,
        )?;
        let c = self.inspect(key)?;
        let mut hc = c.host_config.clone();
        if let Some(rp) = &u.restart_policy {
            hc.restart_policy = Some(rp.clone());
            super::restart::validate(&hc)?;
        }
        let mut args: Vec<String> = vec!["update".into()];
        let mut warnings = Vec::new();
        if let Some(m) = u.memory.filter(|m| *m != 0) {
            // Unset swap: unlimited stays unlimited, else twice the memory
            // (as at create), so the v1 memsw limit always covers it.
            let swap = match u.memory_swap.filter(|s| *s != 0) {
                Some(s) => s,
                None if hc.memory_swap == Some(-1) => -1,
                None => super::spec::default_swap(m)?,
            };
            // Without swap accounting the memory limit goes alone, as at
            // create (with dockerd's warning when a swap limit was asked for).
            let swap = if super::sysinfo::Support::detect().swap_limit {
                swap
            } else {
                if u.memory_swap.is_some_and(|s| s > 0) {
                    warnings.push(super::sysinfo::NO_SWAP_LIMIT.to_string());
                }
                -1
            };
            if swap != -1 && swap < m {
                return Err(EngineError::InvalidArgument(
                    "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
                ));
            }
            hc.memory = Some(m);
            hc.memory_swap = Some(swap);
            args.extend([format!("--memory={m}"), format!("--memory-swap={swap}")]);
        } else if let Some(s) = u.memory_swap.filter(|s| *s != 0) {
            hc.memory_swap = Some(s);
            args.push(format!("--memory-swap={s}"));
        }
        if let Some(r) = u.memory_reservation.filter(|r| *r > 0) {
            hc.memory_reservation = Some(r);
            args.push(format!("--memory-reservation={r}"));
        }
        if let Some(n) = u.nano_cpus.filter(|n| *n > 0) {
            hc.nano_cpus = Some(n);
            args.extend([
                "--cpu-period=100000".to_string(),
                format!("--cpu-quota={}", super::spec::nano_cpus_quota(n)?),
            ]);
        }
        if let Some(q) = u.cpu_quota.filter(|q| *q != 0) {
            hc.cpu_quota = Some(q);
            args.push(format!("--cpu-quota={q}"));
        }
        if let Some(p) = u.cpu_period.filter(|p| *p > 0) {
            hc.cpu_period = Some(p);
            args.push(format!("--cpu-period={p}"));
        }
        if let Some(s) = u.cpu_shares.filter(|s| *s > 0) {
            hc.cpu_shares = Some(s);
            args.push(format!("--cpu-shares={s}"));
        }
        if let Some(s) = u.cpuset_cpus.clone().filter(|s| !s.is_empty()) {
            hc.cpuset_cpus = Some(s.clone());
            args.push(format!("--cpuset-cpus={s}"));
        }
        // Any negative limit means unlimited, as dockerd takes it.
        if let Some(p) = u.pids_limit.filter(|p| *p != 0).map(|p| p.max(-1)) {
            hc.pids_limit = Some(p);
            args.push(format!("--pids-limit={p}"));
        }
        // The limits as a whole (conflicts, reservation above the limit)
        // before anything changes.
        let mut resources = json!({});
        super::spec::limits(&hc, &mut resources)?;
        if c.state.running && args.len() > 1 {
            args.push(c.id.clone());
            self.run_runtime(&args).map_err(|e| {
                EngineError::InvalidArgument(format!("Cannot update container {}: {e}", c.id))
            })?;
        }
        // The bundle is reused by the next start: its resources follow.
        let cfg = self.paths.container_dir(&c.id).join("config.json");
        let mut spec: Value =
            serde_json::from_slice(&std::fs::read(&cfg).map_err(|e| io_err("read", &cfg, e))?)?;
        super::spec::limits(&hc, &mut spec["linux"]["resources"])?;
        crate::util::write_atomic(&cfg, &serde_json::to_vec_pretty(&spec)?)?;
        {
            let mut t = self.lock();
            let rec = t.containers.get_mut(&c.id).ok_or_else(|| no_such(key))?;
            rec.host_config = hc;
            self.persist(rec)?;
        }
        self.emit_container(&c.id, "update", &[]);
        Ok(warnings)
    }
}

/// The OCI runtime berthd runs itself (delete of a lost shim's container,
/// `top`'s `ps`): the configured one, else berth-runtime beside the shim.
pub(crate) fn runtime_command(paths: &crate::Paths) -> Command {
    let runtime = paths.runtime.clone().unwrap_or_else(|| {
        paths
            .shim
            .parent()
            .map_or("berth-runtime".into(), |d| d.join("berth-runtime"))
    });
    let mut cmd = Command::new(runtime);
    cmd.arg("--root").arg(paths.runtime_root());
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container_only() {
        let out = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
                   root           1       0  0 05:00 ?        00:00:01 /sbin/init splash\n\
                   root        4242    4200  0 05:01 ?        00:00:00 sleep 1000\n\
                   root        4243    4242  0 05:01 pts/0    00:00:00 sh -c echo hi there\n";
        let top = parse_ps(out, &[4242, 4243]).unwrap();
        assert_eq!(top.titles.len(), 8);
        assert_eq!(top.processes.len(), 2);
        assert_eq!(top.processes[0][1], "4242");
        assert_eq!(top.processes[0][7], "sleep 1000");
        assert_eq!(top.processes[1][7], "sh -c echo hi there");
        assert!(parse_ps("USER COMMAND\nroot x\n", &[1]).is_err());
        assert!(parse_ps(out, &[]).unwrap().processes.is_empty());
    }
}
