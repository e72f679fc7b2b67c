//! One supervised process (the container's init or an exec'd process): its
//! stdio ends, its attached clients and waiters, and how it ended.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use crate::logfile::rfc3339_nano;
use crate::protocol::ExitStatus;
use crate::runtime::ProcIo;

pub(crate) struct Proc {
    /// None for the container's init.
    pub exec_id: Option<String>,
    pub pid: i32,
    pub tty: bool,
    pub stdin: Option<OwnedFd>,
    /// Bytes from clients not yet accepted by the process's stdin.
    pub stdin_buf: Vec<u8>,
    /// Close stdin once `stdin_buf` is written.
    pub stdin_close: bool,
    /// Output read ends: stdout (or the pty master), stderr.
    pub out: [Option<OwnedFd>; 2],
    pub pty: Option<OwnedFd>,
    pub started: bool,
    /// Set when reaped; the exit is final once the output is drained too.
    pub reaped: Option<(i32, SystemTime, Instant)>,
    pub done: Option<(ExitStatus, Instant)>,
    /// Connection slots streaming this process's output.
    pub attached: Vec<usize>,
    pub waiters: Vec<usize>,
    pub oom: Option<OomCounter>,
}

impl Proc {
    pub fn new(exec_id: Option<String>, pid: i32, tty: bool, io: ProcIo) -> Proc {
        Proc {
            exec_id,
            pid,
            tty,
            stdin: io.stdin,
            stdin_buf: Vec::new(),
            stdin_close: false,
            out: [io.stdout, io.stderr],
            pty: io.pty,
            started: false,
            reaped: None,
            done: None,
            attached: Vec::new(),
            waiters: Vec::new(),
            oom: None,
        }
    }

    pub fn status(&self) -> &'static str {
        if self.reaped.is_some() {
            "stopped"
        } else if self.started {
            "running"
        } else {
            "created"
        }
    }

    pub fn alive(&self) -> bool {
        self.reaped.is_none()
    }

    /// The final status, once reaped; `oom` is read at that moment.
    pub fn finish(&mut self) -> ExitStatus {
        let (code, at, _) = self.reaped.expect("finish after reap");
        let st = ExitStatus {
            exit_code: code,
            exited_at: rfc3339_nano(at),
            oom_killed: self.oom.as_ref().is_some_and(OomCounter::fired),
        };
        self.out = [None, None];
        self.stdin = None;
        self.pty = None;
        self.stdin_buf = Vec::new();
        self.done = Some((st.clone(), Instant::now()));
        st
    }
}

/// `waitpid` status to Docker's exit code (128 + signal when killed).
pub(crate) fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// The container cgroup's OOM-kill counter, read when the container starts
/// and again at its exit: a rise means the kernel OOM-killed in it.
pub(crate) struct OomCounter {
    file: PathBuf,
    base: u64,
}

impl OomCounter {
    /// Finds the memory cgroup of `pid` (v1 `memory.oom_control` or v2
    /// `memory.events`, both carry `oom_kill N`).
    pub fn watch(pid: i32) -> Option<OomCounter> {
        let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        let mut candidates = Vec::new();
        for line in text.lines() {
            let mut f = line.splitn(3, ':');
            let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
            let path = path.trim_start_matches('/');
            if ctrls.split(',').any(|c| c == "memory") {
                candidates.push(
                    Path::new("/sys/fs/cgroup/memory")
                        .join(path)
                        .join("memory.oom_control"),
                );
            } else if ctrls.is_empty() {
                candidates.push(Path::new("/sys/fs/cgroup").join(path).join("memory.events"));
                candidates.push(
                    Path::new("/sys/fs/cgroup/unified")
                        .join(path)
                        .join("memory.events"),
                );
            }
        }
        candidates.into_iter().find_map(|file| {
            let base = read_oom_kill(&file)?;
            Some(OomCounter { file, base })
        })
    }

    pub fn fired(&self) -> bool {
        read_oom_kill(&self.file).is_some_and(|n| n > self.base)
    }
}

fn read_oom_kill(file: &Path) -> Option<u64> {
    let text = fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
}
