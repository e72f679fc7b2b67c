//! The control requests: state, start, kill, wait, attach, resize, exec,
//! delete, shutdown (see crate::protocol for the wire format).

use std::fs;
use std::os::fd::AsRawFd;

use serde_json::{Value, json};

use super::{Mode, Shim, read_pid, write_atomic};
use crate::error::{IoContext, Result, ShimError};
use crate::process::Proc;
use crate::protocol::Request;

impl Shim {
    fn find(&self, exec_id: Option<&str>) -> Result<usize> {
        self.procs
            .iter()
            .position(|p| p.exec_id.as_deref() == exec_id)
            .ok_or_else(|| ShimError::Refused(format!("no such exec: {}", exec_id.unwrap_or(""))))
    }

    pub(super) fn delete_container(&mut self) {
        let force = self.procs[0].alive();
        let id = self.opts.id.clone();
        let r = if force {
            self.runtime.run(&["delete", "--force", &id])
        } else {
            self.runtime.run(&["delete", &id])
        };
        // A runtime that already forgot the container counts as deleted.
        if r.is_ok() || !self.runtime_knows(&id) {
            self.deleted = true;
        }
    }

    fn runtime_knows(&self, id: &str) -> bool {
        self.runtime.run(&["state", id]).is_ok()
    }

    pub(super) fn handle(&mut self, c: usize, req: Request) -> Result<Option<Value>> {
        let ok = |v: Value| {
            let mut v = v;
            v["ok"] = Value::Bool(true);
            Ok(Some(v))
        };
        match req {
            Request::State => {
                let p = &self.procs[0];
                let exit = p.done.as_ref().map(|(st, _)| st.clone());
                ok(
                    json!({"id": self.opts.id, "pid": p.pid, "status": p.status(),
                    "exit": exit, "deleted": self.deleted, "tty": p.tty}),
                )
            }
            Request::Start => {
                let p = &self.procs[0];
                if p.started || !p.alive() {
                    return Err(ShimError::Refused(format!("container is {}", p.status())));
                }
                self.runtime.run(&["start", &self.opts.id])?;
                self.procs[0].started = true;
                ok(json!({}))
            }
            Request::Kill {
                signal,
                all,
                exec_id,
            } => {
                let i = self.find(exec_id.as_deref())?;
                if !self.procs[i].alive() {
                    return Err(ShimError::Refused("process is not running".into()));
                }
                if i == 0 {
                    let sig = signal.to_string();
                    let id = self.opts.id.clone();
                    let mut args = vec!["kill"];
                    if all {
                        args.push("--all");
                    }
                    args.extend([id.as_str(), sig.as_str()]);
                    self.runtime.run(&args)?;
                } else {
                    // Unreaped, so the pid cannot have been reused.
                    // SAFETY: kill with plain integers.
                    if unsafe { libc::kill(self.procs[i].pid, signal) } != 0 {
                        return Err(std::io::Error::last_os_error()).ctx(|| "kill".into());
                    }
                }
                ok(json!({}))
            }
            Request::Wait { exec_id } => {
                let i = self.find(exec_id.as_deref())?;
                if let Some((st, _)) = &self.procs[i].done {
                    if i == 0 {
                        self.collected = true;
                    }
                    return ok(serde_json::to_value(st)?);
                }
                self.procs[i].waiters.push(c);
                if let Some(conn) = self.conns[c].as_mut() {
                    conn.mode = Mode::Waiting;
                }
                Ok(None)
            }
            Request::Attach {
                stdin,
                stdout,
                stderr,
                exec_id,
            } => {
                let i = self.find(exec_id.as_deref())?;
                self.attach(c, i, stdin, stdout, stderr)
            }
            Request::Resize {
                width,
                height,
                exec_id,
            } => {
                let i = self.find(exec_id.as_deref())?;
                let pty = self.procs[i]
                    .pty
                    .as_ref()
                    .ok_or_else(|| ShimError::Refused("process has no terminal".into()))?;
                crate::runtime::resize(pty.as_raw_fd(), width, height)?;
                ok(json!({}))
            }
            Request::Exec {
                id,
                process,
                tty,
                stdin,
                attach,
            } => {
                let pid = self.exec(&id, process, tty, stdin)?;
                if attach {
                    let i = self.procs.len() - 1;
                    return self.attach(c, i, stdin, true, true).map(|v| {
                        v.map(|mut v| {
                            v["pid"] = pid.into();
                            v
                        })
                    });
                }
                ok(json!({"pid": pid}))
            }
            Request::Delete => {
                let p = &self.procs[0];
                if p.started && p.alive() {
                    return Err(ShimError::Refused("container is running".into()));
                }
                self.delete_container();
                if !self.deleted {
                    return Err(ShimError::Refused("runtime delete failed".into()));
                }
                self.collected = true;
                ok(json!({}))
            }
            Request::Shutdown => {
                if self.procs[0].alive() && self.procs[0].started {
                    return Err(ShimError::Refused("container is running".into()));
                }
                if !self.deleted {
                    self.delete_container();
                }
                self.exiting = true;
                ok(json!({}))
            }
        }
    }

    fn attach(
        &mut self,
        c: usize,
        i: usize,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<Option<Value>> {
        if self.procs[i].done.is_some() {
            return Err(ShimError::Refused("process has exited".into()));
        }
        self.procs[i].attached.push(c);
        let tty = self.procs[i].tty;
        if let Some(conn) = self.conns[c].as_mut() {
            conn.mode = Mode::Stream {
                proc: i,
                stdin,
                stdout,
                stderr,
            };
        }
        Ok(Some(json!({"ok": true, "tty": tty})))
    }

    fn exec(&mut self, id: &str, mut process: Value, tty: bool, stdin: bool) -> Result<i32> {
        if id.is_empty() || id.contains('/') || self.find(Some(id)).is_ok() {
            return Err(ShimError::Refused(format!(
                "bad or duplicate exec id {id:?}"
            )));
        }
        let init = &self.procs[0];
        if !init.started || !init.alive() {
            return Err(ShimError::Refused(format!(
                "container is {}",
                init.status()
            )));
        }
        if !process.is_object() {
            return Err(ShimError::Refused(
                "process must be an OCI process object".into(),
            ));
        }
        process["terminal"] = tty.into();
        let dir = &self.opts.state_dir;
        let spec = dir.join(format!("exec-{id}.json"));
        let pid_file = dir.join(format!("exec-{id}.pid"));
        write_atomic(&spec, &serde_json::to_vec(&process)?)?;
        let console = tty.then(|| dir.join("exec-console.sock"));
        let args = [
            "exec".as_ref(),
            "--process".as_ref(),
            spec.as_os_str(),
            "--detach".as_ref(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            self.opts.id.as_ref(),
        ];
        let r = self
            .runtime
            .spawn_process(&args, stdin, console.as_deref(), &dir.join("exec.err"))
            .and_then(|io| Ok((io, read_pid(&pid_file)?)));
        let _ = fs::remove_file(&spec);
        let _ = fs::remove_file(&pid_file);
        let (io, pid) = r?;
        let mut p = Proc::new(Some(id.into()), pid, tty, io);
        p.started = true;
        self.procs.push(p);
        // It may have exited already: reaped on the next SIGCHLD wakeup.
        Ok(pid)
    }
}
