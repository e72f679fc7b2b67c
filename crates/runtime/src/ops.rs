//! Operations on a live container's cgroup: ps, pause/resume, update, stats.

use berth_cgroups::{Cgroup, CgroupManager, FreezerState, Stats};
use oci_spec::runtime::LinuxResources;

use crate::container::Runtime;
use crate::error::{Result, RuntimeError};
use crate::state::Status;

impl Runtime {
    fn live_cgroup(
        &self,
        id: &str,
        action: &'static str,
    ) -> Result<(crate::ContainerState, Cgroup)> {
        let state = self.root.load(id)?;
        if state.status == Status::Stopped {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: state.status.to_string(),
                action,
                wanted: "not stopped",
            });
        }
        let cg = Cgroup::open(state.cgroups_path.as_deref(), id)?;
        Ok((state, cg))
    }

    /// Host pids of every process in the container.
    pub fn pids(&self, id: &str) -> Result<Vec<i32>> {
        let (_, cg) = self.live_cgroup(id, "ps")?;
        let mut pids = cg.pids()?;
        pids.sort_unstable();
        Ok(pids)
    }

    pub fn pause(&self, id: &str) -> Result<()> {
        let (mut state, cg) = self.live_cgroup(id, "pause")?;
        if state.status != Status::Running {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: state.status.to_string(),
                action: "pause",
                wanted: "running",
            });
        }
        cg.freeze(FreezerState::Frozen)?;
        state.status = Status::Paused;
        self.root.save(&state)
    }

    pub fn resume(&self, id: &str) -> Result<()> {
        let (mut state, cg) = self.live_cgroup(id, "resume")?;
        if state.status != Status::Paused {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: state.status.to_string(),
                action: "resume",
                wanted: "paused",
            });
        }
        cg.freeze(FreezerState::Thawed)?;
        state.status = Status::Running;
        self.root.save(&state)
    }

    /// Changes the resources of a running container; only the given settings change.
    pub fn update(&self, id: &str, resources: &LinuxResources) -> Result<()> {
        let (_, cg) = self.live_cgroup(id, "update")?;
        match cg.apply(resources) {
            Err(e) if e.is_unsupported() => {
                eprintln!("berth-runtime: warning: {e}");
                Ok(())
            }
            other => other.map_err(Into::into),
        }
    }

    pub fn stats(&self, id: &str) -> Result<Stats> {
        let (_, cg) = self.live_cgroup(id, "events")?;
        Ok(cg.stats()?)
    }
}

/// The `events --stats` JSON, shaped like runc's.
pub fn stats_event(id: &str, s: &Stats) -> serde_json::Value {
    serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": {"usage": {"total": s.cpu_usage_ns, "kernel": s.cpu_system_ns, "user": s.cpu_user_ns}},
            "memory": {
                "usage": {"usage": s.memory_usage, "limit": s.memory_limit.unwrap_or(u64::MAX), "max": s.memory_max_usage.unwrap_or(0)},
                "oom_kill": s.oom_kills
            },
            "pids": {"current": s.pids_current, "limit": s.pids_limit.unwrap_or(0)}
        }
    })
}
