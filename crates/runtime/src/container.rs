//! Container lifecycle as the runtime's commands see it:
//! create → start → (kill) → delete, plus state and list.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, CgroupManager, Joiner};
use nix::sched::CloneFlags;
use nix::sys::signal::Signal;
use oci_spec::runtime::Spec;

use crate::config::{load_spec, plan_namespaces};
use crate::error::{IoContext, Result, RuntimeError};
use crate::hooks::{self, HookKind};
use crate::init::{self, InitContext};
use crate::state::{CONFIG_FILE, ContainerState, START_SOCKET, StateRoot, Status};
use crate::sync::{ChildReport, SyncChannel};
use crate::sys;

/// Options of `create` (and `run`).
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
}

/// The runtime, rooted at its state directory (`--root`).
pub struct Runtime {
    pub root: StateRoot,
}

/// Cleans up a half-created container unless disarmed.
struct CreateGuard<'a> {
    root: &'a StateRoot,
    id: String,
    child: Option<i32>,
    cgroup: Option<Cgroup>,
    rootfs_in_host_ns: Option<PathBuf>,
    armed: bool,
}

impl Drop for CreateGuard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            // SAFETY: signalling and reaping our own child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy();
        }
        if let Some(rootfs) = &self.rootfs_in_host_ns {
            crate::rootfs::detach_rootfs(rootfs);
        }
        let _ = fs::remove_dir_all(self.root.dir(&self.id));
    }
}

impl Runtime {
    pub fn new(root: impl Into<PathBuf>) -> Runtime {
        Runtime {
            root: StateRoot::new(root),
        }
    }

    /// Creates the container: its process waits for `start` inside its
    /// namespaces, with mounts, cgroup and credentials in place.
    pub fn create(&self, opts: &CreateOptions) -> Result<ContainerState> {
        let bundle =
            fs::canonicalize(&opts.bundle).ctx(|| format!("bundle {}", opts.bundle.display()))?;
        let spec = load_spec(&bundle)?;
        let root_cfg = spec.root().as_ref().expect("validated");
        let rootfs = fs::canonicalize(bundle.join(root_cfg.path()))
            .ctx(|| format!("root.path {}", root_cfg.path().display()))?;
        if !rootfs.is_dir() {
            return Err(RuntimeError::Config {
                path: bundle.join("config.json"),
                msg: format!("root.path: {} is not a directory", rootfs.display()),
            });
        }
        let dir = self.root.reserve(&opts.id)?;
        let mut guard = CreateGuard {
            root: &self.root,
            id: opts.id.clone(),
            child: None,
            cgroup: None,
            rootfs_in_host_ns: None,
            armed: true,
        };
        let linux = spec.linux().as_ref().expect("validated");
        let cgroups_path = linux.cgroups_path().clone();
        let mut state = ContainerState {
            oci_version: spec.version().clone(),
            id: opts.id.clone(),
            status: Status::Creating,
            pid: 0,
            bundle: bundle.clone(),
            annotations: spec.annotations().clone().unwrap_or_default(),
            rootfs: rootfs.clone(),
            created: sys::now_rfc3339(),
            owner: String::new(),
            pid_start_time: 0,
            cgroups_path: cgroups_path.clone(),
            own_pid_ns: false,
            shares_host_mounts: false,
        };
        self.root.save(&state)?;
        let config_copy = serde_json::to_vec(&spec).expect("spec serializes");
        crate::state::write_atomic(&dir.join(CONFIG_FILE), &config_copy)?;

        let cgroup = Cgroup::open(cgroups_path.as_deref(), &opts.id)?;
        let hierarchies = cgroup.hierarchies();
        let ns = plan_namespaces(&spec)?;
        state.own_pid_ns = ns.new_pid_ns;
        // Joining another container's mount namespace counts as having one:
        // nothing of ours is mounted in the caller's.
        state.shares_host_mounts =
            !ns.new_mount_ns && !ns.join.iter().any(|(f, _)| *f == CloneFlags::CLONE_NEWNS);
        let mut ns = ns;
        if state.shares_host_mounts {
            guard.rootfs_in_host_ns = Some(rootfs.clone());
            // We run in a private mount namespace (see sealed_exe); the
            // container inherits the caller's, as the spec says.
            if let Some(fd) = crate::sealed_exe::take_caller_mount_ns() {
                ns.join.push((CloneFlags::CLONE_NEWNS, fd));
            }
        }

        let min_fd = 3 + opts.preserve_fds.max(0);
        let listener = start_listener(&dir, min_fd)?;
        let console_socket = match &opts.console_socket {
            Some(p) => {
                Some(connect_unix(p).ctx(|| format!("connect console socket {}", p.display()))?)
            }
            None => None,
        };
        let (parent_sync, child_sync) = SyncChannel::pair()?;
        let child_sync = child_sync.raise_to(min_fd)?;

        if let Some(fd) = &ns.join_pid {
            nix::sched::setns(fd, CloneFlags::CLONE_NEWPID).ctx(|| "join pid namespace".into())?;
        }
        if ns.new_time_ns {
            nix::sched::unshare(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME))
                .ctx(|| "unshare time namespace".into())?;
            write_time_offsets(&spec)?;
        }

        let seccomp = match spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) {
            Some(cfg) => Some(crate::seccomp::prepare(
                cfg,
                Some(&self.root.seccomp_cache()),
            )?),
            None => None,
        };
        let idmapped_rootfs = ns.new_user_ns
            && !state.shares_host_mounts
            && crate::idmap::rootfs_needs_idmap(&spec, &rootfs);
        // The cgroup exists before the clone, so that the child is born in
        // its cgroup2 part and joins the v1 hierarchies itself: both skip
        // the global cgroup lock, whose first writer after a quiet spell
        // waits 10-15 ms for an RCU grace period (berth_cgroups::join).
        cgroup.create()?;
        guard.cgroup = Some(cgroup.clone());
        let joiner = Joiner::open(&cgroup)?;
        let (pid, parent_adds) = sys::clone_joining(ns.clone_flags.bits(), &joiner)
            .ctx(|| "clone container process".into())?;
        if pid == 0 {
            drop(parent_sync);
            init::run(InitContext {
                id: &opts.id,
                spec: &spec,
                rootfs,
                bundle,
                sync: child_sync,
                start_listener: listener,
                console_socket,
                join_namespaces: ns.join,
                new_cgroup_ns: ns.new_cgroup_ns,
                new_user_ns: ns.new_user_ns,
                own_mount_ns: !state.shares_host_mounts,
                cgroup_hierarchies: hierarchies,
                cgroup_join: &joiner,
                no_pivot: opts.no_pivot,
                no_new_keyring: opts.no_new_keyring,
                preserve_fds: opts.preserve_fds,
                seccomp,
                idmapped_rootfs,
                runtime_hooks: hooks::has_hooks(
                    &spec,
                    &[HookKind::Prestart, HookKind::CreateRuntime],
                ),
            });
        }
        drop(child_sync);
        drop(listener);
        drop(console_socket);
        guard.child = Some(pid);

        if ns.new_user_ns {
            write_id_maps(pid, &spec)?;
        }
        if idmapped_rootfs {
            let tree = crate::idmap::idmapped_tree(&rootfs, pid).ctx(|| {
                format!(
                    "idmapped mount of {} (its owner is outside the uid mapping)",
                    rootfs.display()
                )
            })?;
            parent_sync.send_fd(&tree)?;
        }
        drop(joiner);
        // Phase 1: the child mounts while we set up its cgroup's limits.
        // Should it fail meanwhile, its report waits for us in the socket.
        let _ = parent_sync.send_go("");
        if parent_adds {
            cgroup.add_process(pid)?;
        }
        match cgroup.apply(&effective_resources(linux)) {
            Ok(()) => {}
            // Settings that are safe to skip (device rules on cgroup v2
            // without eBPF, kernelTCP) are reported, not fatal: runc and crun
            // behave the same, and engines always send some of them. A limit
            // the host cannot honour (a controller or file missing) fails.
            Err(e) if e.is_unsupported() => eprintln!("berth-runtime: warning: {e}"),
            Err(e) => return Err(e.into()),
        }
        state.pid = pid;
        state.pid_start_time = sys::process_start_time(pid).unwrap_or(0);
        // Hooks see the container as created (what runc and crun pass too).
        state.status = Status::Created;
        let hook_state = state.to_oci_json().to_string();
        // Phase 2. A failed send means the child already gave up: its
        // message is read below.
        let _ = parent_sync.send_go(&hook_state);
        loop {
            match parent_sync.wait_child()? {
                ChildReport::Ready => break,
                ChildReport::NeedHooks => {
                    hooks::run(&spec, HookKind::Prestart, &hook_state)?;
                    hooks::run(&spec, HookKind::CreateRuntime, &hook_state)?;
                    parent_sync.send_go("")?;
                }
                ChildReport::Failed(msg) => return Err(RuntimeError::Relayed(msg)),
                ChildReport::Vanished => {
                    return Err(RuntimeError::Init(
                        "container process exited during setup".into(),
                    ));
                }
            }
        }
        self.root.save(&state)?;
        if let Some(pf) = &opts.pid_file {
            crate::state::write_atomic(pf, pid.to_string().as_bytes())?;
        }
        guard.armed = false;
        Ok(state)
    }

    /// Lets a created container exec its process.
    pub fn start(&self, id: &str) -> Result<()> {
        let state = self.root.load(id)?;
        if state.status != Status::Created {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: state.status.to_string(),
                action: "start",
                wanted: "created",
            });
        }
        let sock = self.root.dir(id).join(START_SOCKET);
        let mut conn = connect_unix(&sock).ctx(|| format!("connect {}", sock.display()))?;
        let _ = fs::remove_file(&sock);
        conn.write_all(b"s").ctx(|| "signal start".into())?;
        // EOF when the exec succeeded (close-on-exec), else the reason.
        let mut reply = String::new();
        let _ = conn.read_to_string(&mut reply);
        if !reply.is_empty() {
            return Err(RuntimeError::Relayed(reply));
        }
        // poststart failures are warnings: the process runs already.
        let spec = self.saved_spec(id)?;
        if hooks::has_hooks(&spec, &[HookKind::Poststart]) {
            let mut running = state;
            running.status = Status::Running;
            hooks::run_warn(
                &spec,
                HookKind::Poststart,
                &running.to_oci_json().to_string(),
            );
        }
        Ok(())
    }

    /// The config as it was at create (the bundle may have changed since).
    pub fn saved_spec(&self, id: &str) -> Result<Spec> {
        let path = self.root.dir(id).join(CONFIG_FILE);
        let data = fs::read(&path).ctx(|| format!("read {}", path.display()))?;
        serde_json::from_slice(&data).map_err(|e| RuntimeError::Config {
            path,
            msg: format!("corrupt saved config: {e}"),
        })
    }

    pub fn state(&self, id: &str) -> Result<ContainerState> {
        self.root.load(id)
    }

    pub fn list(&self) -> Result<Vec<ContainerState>> {
        let mut out = Vec::new();
        for id in self.root.ids()? {
            match self.root.load(&id) {
                Ok(s) => out.push(s),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let state = self.root.load(id)?;
        if !matches!(
            state.status,
            Status::Created | Status::Running | Status::Paused
        ) {
            return Err(RuntimeError::WrongState {
                id: id.into(),
                status: state.status.to_string(),
                action: "kill",
                wanted: "created, running or paused",
            });
        }
        if all {
            let cg = Cgroup::open(state.cgroups_path.as_deref(), id)?;
            for pid in cg.pids()? {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal);
            }
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), signal)
            .ctx(|| format!("kill {} with {signal}", state.pid))
    }

    /// Removes a stopped (or, with `force`, any) container: its processes,
    /// cgroup and state.
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let state = match self.root.load(id) {
            Ok(s) => s,
            // Engines clean up with `delete --force` whether or not the
            // container still exists; runc succeeds there too.
            Err(RuntimeError::NotFound(_)) if force && !self.root.dir(id).exists() => return Ok(()),
            // A directory without state is a create that died half way.
            Err(RuntimeError::NotFound(_)) if self.root.dir(id).is_dir() && force => {
                return fs::remove_dir_all(self.root.dir(id))
                    .ctx(|| format!("remove state of {id}"));
            }
            Err(e) => return Err(e),
        };
        match state.status {
            Status::Stopped | Status::Creating => {}
            // A created container has not run anything yet: deleting it is safe (runc does too).
            Status::Created => {}
            _ if force => {}
            s => {
                return Err(RuntimeError::WrongState {
                    id: id.into(),
                    status: s.to_string(),
                    action: "delete",
                    wanted: "stopped (or use --force)",
                });
            }
        }
        let cg = Cgroup::open(state.cgroups_path.as_deref(), id)?;
        if state.status == Status::Paused {
            // Frozen processes cannot die: SIGKILL stays pending until thawed.
            let _ = cg.freeze(berth_cgroups::FreezerState::Thawed);
        }
        if state.status != Status::Stopped && state.pid > 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(state.pid), Signal::SIGKILL);
            wait_gone(state.pid, state.pid_start_time, Duration::from_secs(10));
        }
        // Processes left in the cgroup (no pid namespace, or stragglers).
        for pid in cg.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        cg.destroy()?;
        if state.shares_host_mounts {
            crate::rootfs::detach_rootfs(&state.rootfs);
        }
        let spec = self.saved_spec(id).ok();
        fs::remove_dir_all(self.root.dir(id)).ctx(|| format!("remove state of {id}"))?;
        // poststop failures are warnings: the container is gone either way.
        if let Some(spec) = spec.filter(|s| hooks::has_hooks(s, &[HookKind::Poststop])) {
            let mut stopped = state;
            stopped.status = Status::Stopped;
            hooks::run_warn(
                &spec,
                HookKind::Poststop,
                &stopped.to_oci_json().to_string(),
            );
        }
        Ok(())
    }

    /// `run`: create, start, wait for the init to exit, delete. Returns the
    /// exit code (128+signal for a killed init).
    pub fn run(&self, opts: &CreateOptions, detach: bool, keep: bool) -> Result<i32> {
        // Orphans of a container without its own pid namespace come to us.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let forwarded = forwarded_signals();
        let state = self.create(opts)?;
        if detach {
            self.start(&opts.id)?;
            return Ok(0);
        }
        // Block before the start, so no signal is lost between start and wait.
        forwarded.thread_block().ctx(|| "block signals".into())?;
        if let Err(e) = self.start(&opts.id) {
            let _ = self.delete(&opts.id, true);
            return Err(e);
        }
        let code = wait_forwarding(state.pid, &forwarded);
        if keep {
            // Still end every process of the container: it lives as long as its init.
            let cg = Cgroup::open(state.cgroups_path.as_deref(), &opts.id)?;
            for pid in cg.pids().unwrap_or_default() {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
            }
        } else {
            self.delete(&opts.id, true)?;
        }
        Ok(code)
    }
}

/// The config's resources plus the device rules every container needs: the
/// default nodes and `linux.devices` are usable even under a deny-all rule
/// (runc adds the same rules).
fn effective_resources(linux: &oci_spec::runtime::Linux) -> oci_spec::runtime::LinuxResources {
    use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};
    let mut res = linux.resources().clone().unwrap_or_default();
    let Some(rules) = res.devices().clone() else {
        return res;
    };
    let rule =
        |typ: &str, major: Option<i64>, minor: Option<i64>, access: &str| -> LinuxDeviceCgroup {
            serde_json::from_value(serde_json::json!({
                "allow": true, "type": typ, "major": major, "minor": minor, "access": access
            }))
            .expect("valid device rule")
        };
    let mut all = rules;
    all.push(rule("c", None, None, "m"));
    all.push(rule("b", None, None, "m"));
    for (major, minor) in [
        (1, 3),
        (1, 5),
        (1, 7),
        (1, 8),
        (1, 9),
        (5, 0),
        (5, 1),
        (5, 2),
    ] {
        all.push(rule("c", Some(major), Some(minor), "rwm"));
    }
    all.push(rule("c", Some(136), None, "rwm"));
    for d in linux.devices().as_deref().unwrap_or_default() {
        let typ = match d.typ() {
            LinuxDeviceType::B => "b",
            LinuxDeviceType::P => continue,
            _ => "c",
        };
        all.push(rule(typ, Some(d.major()), Some(d.minor()), "rwm"));
    }
    res.set_devices(Some(all));
    res
}

pub(crate) fn forwarded_signals() -> nix::sys::signal::SigSet {
    let mut set = nix::sys::signal::SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGCONT,
    ] {
        set.add(s);
    }
    set
}

/// Waits for `pid` (our child) to exit, reaping other orphans and passing
/// every other signal on to it.
pub(crate) fn wait_forwarding(pid: i32, set: &nix::sys::signal::SigSet) -> i32 {
    loop {
        // Reap whatever has exited.
        loop {
            let mut status = 0;
            // SAFETY: waitpid on any child without blocking.
            let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if r <= 0 {
                break;
            }
            if r == pid {
                return exit_code(status);
            }
        }
        match set.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => continue,
            Ok(sig) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        }
    }
}

pub fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Polls until `pid` with the given start time is gone or a zombie.
fn wait_gone(pid: i32, start_time: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        match sys::parse_stat_of(pid) {
            Some((st, start)) if start == start_time && st != 'Z' && st != 'X' => {}
            _ => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Binds the start socket in the state directory. Long state paths exceed
/// sun_path's 108 bytes, so the bind goes through the directory's /proc link.
fn start_listener(dir: &Path, min_fd: i32) -> Result<UnixListener> {
    let path = dir.join(START_SOCKET);
    let listener = bind_unix(&path).ctx(|| format!("bind {}", path.display()))?;
    let fd = sys::dup_above(listener.into(), min_fd).ctx(|| "move start socket".into())?;
    Ok(UnixListener::from(fd))
}

fn short_path(path: &Path) -> std::io::Result<(Option<fs::File>, PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    if path.as_os_str().as_bytes().len() < 100 {
        return Ok((None, path.to_path_buf()));
    }
    let parent = path.parent().unwrap_or(Path::new("/"));
    let dir = fs::File::open(parent)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(path.file_name().unwrap_or_default());
    Ok((Some(dir), short))
}

fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    let (_dir, p) = short_path(path)?;
    UnixListener::bind(p)
}

fn connect_unix(path: &Path) -> std::io::Result<UnixStream> {
    let (_dir, p) = short_path(path)?;
    UnixStream::connect(p)
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec.linux().as_ref().expect("validated");
    let fmt = |maps: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| {
        maps.as_deref()
            .unwrap_or_default()
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
            .collect::<String>()
    };
    let gid = fmt(linux.gid_mappings());
    let uid = fmt(linux.uid_mappings());
    fs::write(format!("/proc/{pid}/gid_map"), &gid).ctx(|| format!("write gid_map {gid:?}"))?;
    fs::write(format!("/proc/{pid}/uid_map"), &uid).ctx(|| format!("write uid_map {uid:?}"))
}

fn write_time_offsets(spec: &Spec) -> Result<()> {
    let offsets: HashMap<String, oci_spec::runtime::LinuxTimeOffset> = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    for (clock, off) in offsets {
        let line = format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        );
        fs::write("/proc/self/timens_offsets", &line).ctx(|| format!("time offset {line:?}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(9), 137);
    }
}
