//! exec: extra processes in a running container, through its shim.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_shim::{Request, ShimClient};
use serde_json::Value;

use super::lifecycle::shim_stream;
use super::model::{ExecConfig, ExecInspect};
use crate::Engine;
use crate::error::{EngineError, Result, io_err};
use crate::util::random_id;

#[derive(Clone, Debug)]
pub struct Exec {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
}

fn no_such_exec(id: &str) -> EngineError {
    EngineError::NotFound(format!("No such exec instance: {id}"))
}

impl Engine {
    pub fn exec_create(&self, key: &str, config: ExecConfig) -> Result<String> {
        if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
            return Err(EngineError::InvalidArgument(
                "No exec command specified".into(),
            ));
        }
        let mut t = self.lock();
        let c = t.get(key)?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is paused, unpause the container before exec",
                c.id
            )));
        }
        let id = random_id();
        let cmd = config.cmd.clone().unwrap_or_default().join(" ");
        let container_id = c.id.clone();
        let exec = Exec {
            id: id.clone(),
            container_id: c.id.clone(),
            config,
            started: false,
            running: false,
            exit_code: None,
            pid: 0,
        };
        t.execs.insert(id.clone(), exec);
        drop(t);
        self.emit_container(
            &container_id,
            &format!("exec_create: {cmd}"),
            &[("execID", id.clone())],
        );
        Ok(id)
    }

    /// The OCI process for an exec: the container's, with the exec's
    /// command, environment, directory and user.
    fn exec_process(&self, e: &Exec) -> Result<Value> {
        let c = self.inspect(&e.container_id)?;
        let dir = self.paths.container_dir(&c.id);
        let p = dir.join("config.json");
        let spec: Value =
            serde_json::from_slice(&std::fs::read(&p).map_err(|err| io_err("read", &p, err))?)?;
        let mut process = spec["process"].clone();
        process["args"] = serde_json::json!(e.config.cmd.clone().unwrap_or_default());
        let mut env: Vec<String> =
            serde_json::from_value(process["env"].clone()).unwrap_or_default();
        for v in e.config.env.iter().flatten() {
            let k = v.split('=').next().unwrap_or("");
            env.retain(|x| x.split('=').next() != Some(k));
            env.push(v.clone());
        }
        process["env"] = serde_json::json!(env);
        process["terminal"] = Value::Bool(e.config.tty);
        if let Some(w) = e.config.working_dir.as_ref().filter(|w| !w.is_empty()) {
            process["cwd"] = Value::String(w.clone());
        }
        if let Some(u) = e.config.user.as_ref().filter(|u| !u.is_empty()) {
            let (uid, gid) = super::options::resolve_user(u, &dir.join("rootfs"))?;
            process["user"] = serde_json::json!({"uid": uid, "gid": gid});
        }
        Ok(process)
    }

    /// Starts an exec. Detached: returns None at once. Attached: the stream
    /// socket (frames unless tty); call [`Engine::exec_stream_ended`] after.
    pub fn exec_start(
        self: &Arc<Self>,
        id: &str,
        detach: bool,
    ) -> Result<Option<(UnixStream, bool)>> {
        let e = {
            let mut t = self.lock();
            let e = t.execs.get_mut(id).ok_or_else(|| no_such_exec(id))?;
            if e.started {
                return Err(EngineError::Conflict(format!(
                    "Error: Exec command {id} has already run"
                )));
            }
            e.started = true;
            e.running = true;
            e.clone()
        };
        let result = (|| -> Result<(Option<(UnixStream, bool)>, i32)> {
            let process = self.exec_process(&e)?;
            let sock = self.paths.shim_socket(&e.container_id);
            if detach {
                let pid = ShimClient::connect(&sock)?.exec(&e.id, process, e.config.tty, false)?;
                Ok((None, pid))
            } else {
                let s = shim_stream(
                    &sock,
                    &Request::Exec {
                        id: e.id.clone(),
                        process,
                        tty: e.config.tty,
                        stdin: e.config.attach_stdin,
                        attach: true,
                    },
                )?;
                Ok((Some((s, e.config.tty)), 0))
            }
        })();
        match result {
            Ok((stream, pid)) => {
                if let Some(x) = self.lock().execs.get_mut(id) {
                    x.pid = pid;
                }
                let cmd = e.config.cmd.clone().unwrap_or_default().join(" ");
                self.emit_container(
                    &e.container_id,
                    &format!("exec_start: {cmd}"),
                    &[("execID", e.id.clone())],
                );
                self.watch_exec(e.id.clone(), e.container_id.clone());
                Ok(stream)
            }
            Err(err) => {
                // The process never ran: 127 when the command does not
                // exist, 126 otherwise, as a shell and dockerd report it.
                let msg = err.to_string();
                let missing = ["not found", "No such file", "no such file"]
                    .iter()
                    .any(|m| msg.contains(m));
                if let Some(x) = self.lock().execs.get_mut(id) {
                    x.running = false;
                    x.exit_code = Some(if missing { 127 } else { 126 });
                }
                self.changed.notify_all();
                Err(EngineError::InvalidArgument(format!(
                    "OCI runtime exec failed: {msg}"
                )))
            }
        }
    }

    fn watch_exec(self: &Arc<Self>, id: String, container: String) {
        let engine = self.clone();
        std::thread::spawn(move || {
            let sock = engine.paths.shim_socket(&container);
            let code = ShimClient::connect(&sock)
                .and_then(|mut s| s.wait(Some(&id)))
                .map(|st| st.exit_code)
                .unwrap_or(126);
            if let Some(x) = engine.lock().execs.get_mut(&id) {
                x.running = false;
                x.exit_code = Some(code);
            }
            engine.emit_container(
                &container,
                "exec_die",
                &[("execID", id.clone()), ("exitCode", code.to_string())],
            );
            engine.changed.notify_all();
        });
    }

    /// After an attached exec's output ended: waits (briefly) for its exit
    /// to be recorded, so a client inspecting next sees the exit code.
    pub fn exec_stream_ended(&self, id: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        let mut t = self.lock();
        while t.execs.get(id).is_some_and(|e| e.running) && Instant::now() < end {
            t = self
                .changed
                .wait_timeout(t, Duration::from_millis(200))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn exec_inspect(&self, id: &str) -> Result<ExecInspect> {
        let t = self.lock();
        let e = t.execs.get(id).ok_or_else(|| no_such_exec(id))?;
        Ok(ExecInspect {
            id: e.id.clone(),
            running: e.running,
            exit_code: e.exit_code,
            open_stdin: e.config.attach_stdin,
            open_stdout: e.config.attach_stdout,
            open_stderr: e.config.attach_stderr,
            container_id: e.container_id.clone(),
            pid: e.pid,
            detach_keys: e.config.detach_keys.clone().unwrap_or_default(),
            process_config: serde_json::json!({
                "tty": e.config.tty,
                "entrypoint": e.config.cmd.as_ref().and_then(|c| c.first()),
                "arguments": e.config.cmd.as_ref().map(|c| c[1..].to_vec()),
                "privileged": e.config.privileged,
                "user": e.config.user,
            }),
        })
    }
}
