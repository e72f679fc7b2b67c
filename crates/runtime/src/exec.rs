//! `exec`: a new process inside a running container, in all of its
//! namespaces and its cgroup, with the process settings of the config or of
//! a `process.json`.

use std::fs;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use berth_cgroups::{Cgroup, CgroupManager, Joiner};
use nix::sched::CloneFlags;
use oci_spec::runtime::Process;

use crate::container::Runtime;
use crate::error::{IoContext, Result, RuntimeError};
use crate::process::{self, ExecArgs};
use crate::state::Status;
use crate::sync::{ChildReport, SyncChannel};
use crate::sys;

/// What `exec` runs and how.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    pub id: String,
    pub process: Process,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: i32,
    /// The container's seccomp filter, applied to exec'd processes too.
    pub seccomp: Option<oci_spec::runtime::LinuxSeccomp>,
}

/// The namespaces of a container's init, in join order (user first).
const NAMESPACES: &[(&str, CloneFlags)] = &[
    ("user", CloneFlags::CLONE_NEWUSER),
    ("mnt", CloneFlags::CLONE_NEWNS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
];

fn same_namespace(pid: i32, name: &str) -> bool {
    let theirs = fs::read_link(format!("/proc/{pid}/ns/{name}"));
    let ours = fs::read_link(format!("/proc/self/ns/{name}"));
    matches!((theirs, ours), (Ok(a), Ok(b)) if a == b)
}

impl Runtime {
    /// Runs a process in the container. Returns its exit code, or 0 once it
    /// started when detached.
    pub fn exec(&self, opts: &ExecOptions) -> Result<i32> {
        let state = self.root.load(&opts.id)?;
        if !matches!(state.status, Status::Created | Status::Running) {
            return Err(RuntimeError::WrongState {
                id: opts.id.clone(),
                status: state.status.to_string(),
                action: "exec",
                wanted: "created or running",
            });
        }
        let pid = state.pid;
        let mut join: Vec<(CloneFlags, OwnedFd)> = Vec::new();
        for (name, flag) in NAMESPACES {
            if same_namespace(pid, name) {
                continue;
            }
            let path = format!("/proc/{pid}/ns/{name}");
            let fd: OwnedFd = fs::File::open(&path).ctx(|| format!("open {path}"))?.into();
            join.push((*flag, fd));
        }
        let cgroup = Cgroup::open(state.cgroups_path.as_deref(), &opts.id)?;
        let console = match &opts.console_socket {
            Some(p) => Some(
                UnixStream::connect(p).ctx(|| format!("connect console socket {}", p.display()))?,
            ),
            None => None,
        };
        if !same_namespace(pid, "pid") {
            let path = format!("/proc/{pid}/ns/pid");
            let fd = fs::File::open(&path).ctx(|| format!("open {path}"))?;
            // Affects our children only: the exec'd process is born inside.
            nix::sched::setns(fd, CloneFlags::CLONE_NEWPID).ctx(|| "join pid namespace".into())?;
        }
        let seccomp = match &opts.seccomp {
            Some(cfg) => Some(crate::seccomp::prepare(
                cfg,
                Some(&self.root.seccomp_cache()),
            )?),
            None => None,
        };
        let (parent_sync, child_sync) = SyncChannel::pair()?;
        let child_sync = child_sync.raise_to(3 + opts.preserve_fds.max(0))?;
        let forwarded = crate::container::forwarded_signals();
        // Born in the cgroup2 part, joins v1 itself: no wait for the global
        // cgroup lock (berth_cgroups::join).
        let joiner = Joiner::open(&cgroup)?;
        let (child, parent_adds) =
            sys::clone_joining(0, &joiner).ctx(|| "fork exec process".into())?;
        if child == 0 {
            drop(parent_sync);
            let err = match exec_child(
                opts,
                seccomp.as_ref(),
                &join,
                console.as_ref(),
                &child_sync,
                &joiner,
            ) {
                Ok(never) => match never {},
                Err(e) => e,
            };
            let _ = child_sync.send_error(&err.to_string());
            // SAFETY: leave the forked child without running destructors.
            unsafe { libc::_exit(127) }
        }
        drop(child_sync);
        drop(console);
        let kill_child = || {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(child, libc::SIGKILL);
                libc::waitpid(child, std::ptr::null_mut(), 0);
            }
        };
        drop(joiner);
        if parent_adds && let Err(e) = cgroup.add_process(child) {
            kill_child();
            return Err(e.into());
        }
        parent_sync.send_go("")?;
        // EOF (close-on-exec) means the exec happened; a message is the failure.
        match parent_sync.wait_child() {
            Ok(ChildReport::Vanished) => {}
            Ok(ChildReport::Failed(msg)) => {
                kill_child();
                return Err(RuntimeError::Relayed(msg));
            }
            Ok(_) => {}
            Err(e) => {
                kill_child();
                return Err(e);
            }
        }
        if let Some(pf) = &opts.pid_file {
            crate::state::write_atomic(pf, child.to_string().as_bytes())?;
        }
        if opts.detach {
            return Ok(0);
        }
        forwarded.thread_block().ctx(|| "block signals".into())?;
        Ok(crate::container::wait_forwarding(child, &forwarded))
    }
}

fn exec_child(
    opts: &ExecOptions,
    seccomp: Option<&crate::seccomp::Program>,
    join: &[(CloneFlags, OwnedFd)],
    console: Option<&UnixStream>,
    sync: &SyncChannel,
    cgroup: &Joiner,
) -> Result<std::convert::Infallible> {
    sync.wait_go()?;
    cgroup.join_self()?;
    for (flag, fd) in join {
        nix::sched::setns(fd, *flag).ctx(|| format!("join namespace {flag:?}"))?;
    }
    let process = &opts.process;
    // SAFETY: plain syscall.
    unsafe { libc::setsid() };
    // Without a console socket a terminal process uses the caller's own terminal.
    if let (true, Some(sock)) = (process.terminal().unwrap_or(false), console) {
        let (slave, _) = crate::init::open_pty_to_socket(sock, process)?;
        crate::init::attach_terminal(slave)?;
    }
    process::set_rlimits(process)?;
    let _ = nix::unistd::chdir(process.cwd());
    let exe = process::resolve_executable(process)?;
    process::drop_privileges(process, seccomp)?;
    let exec = ExecArgs::new(&exe, process)?;
    sys::cloexec_from(3 + opts.preserve_fds).ctx(|| "mark descriptors close-on-exec".into())?;
    let err = exec.exec();
    Err(RuntimeError::Init(format!("exec {}: {err}", exe.display())))
}

/// Reads a `process.json` for `exec --process`.
pub fn load_process(path: &std::path::Path) -> Result<Process> {
    let mut text = String::new();
    if path == std::path::Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .ctx(|| "read process from stdin".into())?;
    } else {
        text = fs::read_to_string(path).ctx(|| format!("read {}", path.display()))?;
    }
    serde_json::from_str(&text).map_err(|e| RuntimeError::Config {
        path: path.to_path_buf(),
        msg: format!("line {} column {}: {e}", e.line(), e.column()),
    })
}
