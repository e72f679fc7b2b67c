//! The container side of create: runs in the cloned child, builds the
//! container's view, reports ready, waits for `start`, and execs the process.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use berth_cgroups::{Hierarchy, Joiner};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Process, Spec};

use crate::error::{IoContext, Result, RuntimeError};
use crate::hooks::{self, HookKind};
use crate::process::{self, ExecArgs};
use crate::rootfs::{self, RootfsPlan};
use crate::sync::SyncChannel;
use crate::sys;

/// What the child inherits from `create`.
pub struct InitContext<'a> {
    pub id: &'a str,
    pub spec: &'a Spec,
    pub rootfs: PathBuf,
    pub bundle: PathBuf,
    pub sync: SyncChannel,
    /// `start` connects here; the accept is the signal to exec.
    pub start_listener: UnixListener,
    /// Connected to `--console-socket` when the process wants a terminal.
    pub console_socket: Option<UnixStream>,
    /// Namespaces to join, in the order to join them.
    pub join_namespaces: Vec<(CloneFlags, OwnedFd)>,
    pub new_cgroup_ns: bool,
    pub new_user_ns: bool,
    pub own_mount_ns: bool,
    pub cgroup_hierarchies: Vec<Hierarchy>,
    /// Joins the v1 hierarchies at phase 2 (the parent does not).
    pub cgroup_join: &'a Joiner,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: i32,
    /// Compiled before the clone, so errors reach the caller directly.
    pub seccomp: Option<crate::seccomp::Program>,
    /// The parent has prestart/createRuntime hooks to run before pivot_root.
    pub runtime_hooks: bool,
    /// The parent sends an idmapped copy of the rootfs to attach.
    pub idmapped_rootfs: bool,
}

/// Entry point of the child. Never returns: it execs or exits.
pub fn run(ctx: InitContext) -> ! {
    let err = match init(&ctx) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    // The parent turns this into the error `create` prints.
    let _ = ctx.sync.send_error(&err.to_string());
    // SAFETY: exiting the forked child without running the parent's destructors.
    unsafe { libc::_exit(1) }
}

fn init(ctx: &InitContext) -> Result<Infallible> {
    // Phase 1 (id maps written): everything that does not need the cgroup,
    // while the parent writes the cgroup's limits.
    let rootfs_tree = if ctx.idmapped_rootfs {
        Some(ctx.sync.recv_fd()?)
    } else {
        None
    };
    ctx.sync.wait_go()?;
    for (kind, fd) in &ctx.join_namespaces {
        nix::sched::setns(fd, *kind).ctx(|| format!("join namespace {kind:?}"))?;
    }
    if ctx.new_user_ns
        || ctx
            .join_namespaces
            .iter()
            .any(|(k, _)| *k == CloneFlags::CLONE_NEWUSER)
    {
        become_namespace_root()?;
    }
    if !ctx.no_new_keyring {
        join_session_keyring(ctx.id);
    }
    let spec = ctx.spec;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| RuntimeError::InvalidArgument("config has no process".into()))?;
    if let Some(h) = spec.hostname() {
        nix::unistd::sethostname(h).ctx(|| format!("sethostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname() {
        set_domainname(d)?;
    }
    write_sysctls(spec)?;
    process::set_oom_score_adj(process)?;

    let plan = RootfsPlan {
        spec,
        rootfs: &ctx.rootfs,
        bundle: &ctx.bundle,
        in_user_ns: ctx.new_user_ns,
        own_cgroup_ns: ctx.new_cgroup_ns,
        cgroup_hierarchies: &ctx.cgroup_hierarchies,
        no_pivot: ctx.no_pivot,
        own_mount_ns: ctx.own_mount_ns,
        rootfs_tree: rootfs_tree.as_ref(),
    };
    rootfs::prepare_root(&plan)?;
    // Mounts up to the first cgroup mount; that one needs the cgroup (namespace).
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    let split = mounts
        .iter()
        .position(|m| matches!(m.typ().as_deref(), Some("cgroup" | "cgroup2")))
        .unwrap_or(mounts.len());
    rootfs::mount_range(&plan, &mounts[..split])?;

    // Phase 2: the cgroup's limits are set; we join it (its cgroup2 part
    // we were born in, or the parent added us).
    let state_json = ctx.sync.wait_go()?;
    ctx.cgroup_join.join_self()?;
    if ctx.new_cgroup_ns {
        // Now that we are in the container's cgroup, it becomes the namespace's root.
        nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP)
            .ctx(|| "unshare cgroup namespace".into())?;
    }
    rootfs::mount_range(&plan, &mounts[split..])?;
    rootfs::setup_dev(&plan)?;
    if ctx.runtime_hooks {
        ctx.sync.send_need_hooks()?;
        ctx.sync.wait_go()?;
    }
    hooks::run(spec, HookKind::CreateContainer, &state_json)?;
    rootfs::enter_root(&plan)?;
    let terminal = process.terminal().unwrap_or(false);
    let pty_slave = if terminal {
        let sock = ctx.console_socket.as_ref().ok_or_else(|| {
            RuntimeError::InvalidArgument(
                "process.terminal is true but no --console-socket was given".into(),
            )
        })?;
        Some(setup_console(sock, process)?)
    } else {
        None
    };
    rootfs::finish(&plan)?;

    // SAFETY: plain syscall; fails harmlessly if already a group leader.
    unsafe { libc::setsid() };
    if let Some(slave) = pty_slave {
        attach_terminal(slave)?;
    }
    process::set_rlimits(process)?;
    // chdir as root first (the cwd may need privileges to reach), again after setuid.
    let _ = nix::unistd::chdir(process.cwd());
    let exe = process::resolve_executable(process)?;
    process::drop_privileges(process, ctx.seccomp.as_ref())?;
    let exec = ExecArgs::new(&exe, process)?;
    sys::cloexec_from(3 + ctx.preserve_fds).ctx(|| "mark descriptors close-on-exec".into())?;

    ctx.sync.send_ready()?;
    // Block until `start` connects (or `delete` kills us).
    let (mut conn, _) = ctx
        .start_listener
        .accept()
        .ctx(|| "wait for start".into())?;
    let _ = sys::set_cloexec(conn.as_raw_fd(), true);
    let mut byte = [0u8; 1];
    let _ = conn.read(&mut byte);
    if let Err(e) = hooks::run(spec, HookKind::StartContainer, &state_json) {
        let _ = write!(conn, "{e}");
        // SAFETY: exit the child without unwinding.
        unsafe { libc::_exit(1) }
    }
    let err = exec.exec();
    let _ = write!(conn, "exec {}: {err}", exe.display());
    // SAFETY: exit the child without unwinding.
    unsafe { libc::_exit(127) }
}

/// In a new user namespace we still carry the host's ids, which the
/// namespace does not map: become its root, so that files we create are
/// owned by the container's root rather than failing with EOVERFLOW.
fn become_namespace_root() -> Result<()> {
    // SAFETY: plain syscalls; all capabilities in the namespace are kept
    // because the ids become 0.
    unsafe {
        if libc::setresgid(0, 0, 0) != 0 {
            return Err(RuntimeError::io(
                "setgid 0 in the user namespace (is gid 0 mapped?)",
                std::io::Error::last_os_error(),
            ));
        }
        if libc::setresuid(0, 0, 0) != 0 {
            return Err(RuntimeError::io(
                "setuid 0 in the user namespace (is uid 0 mapped?)",
                std::io::Error::last_os_error(),
            ));
        }
        libc::setgroups(0, std::ptr::null());
    }
    Ok(())
}

fn set_domainname(d: &str) -> Result<()> {
    // SAFETY: pointer and length of a live str.
    if unsafe { libc::setdomainname(d.as_ptr().cast(), d.len()) } != 0 {
        return Err(RuntimeError::io(
            format!("setdomainname {d:?}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Writes linux.sysctl. The kernel scopes net.* and ipc sysctls by the writer's
/// namespaces, which are the container's by now.
fn write_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctls) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctls {
        if key.is_empty() || key.contains("..") || key.starts_with('/') {
            return Err(RuntimeError::InvalidArgument(format!(
                "linux.sysctl: bad key {key:?}"
            )));
        }
        let path = Path::new("/proc/sys").join(key.replace('.', "/"));
        std::fs::write(&path, value).ctx(|| format!("sysctl {key}={value}"))?;
    }
    Ok(())
}

/// A fresh session keyring per container, so containers don't share keys.
fn join_session_keyring(id: &str) {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    let name = std::ffi::CString::new(format!("_ses.{id}")).unwrap_or_default();
    // SAFETY: keyctl with a valid C string; failure (e.g. EPERM in a user
    // namespace, ENOSYS) leaves the inherited keyring, as runc tolerates.
    unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
}

/// Opens a pty from the container's devpts, sends the master to the console
/// socket (SCM_RIGHTS, as runc does) and binds the slave on /dev/console.
fn setup_console(sock: &UnixStream, process: &Process) -> Result<OwnedFd> {
    let (slave, slave_path) = open_pty_to_socket(sock, process)?;
    let console = Path::new("/dev/console");
    if std::fs::symlink_metadata(console).is_err() {
        std::fs::File::create(console).ctx(|| "create /dev/console".into())?;
    }
    nix::mount::mount(
        Some(slave_path.as_str()),
        console,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .ctx(|| "bind /dev/console".into())?;
    Ok(slave)
}

/// A new pty in the current mount namespace's devpts: the master goes to the
/// console socket, the slave (and its path) back to the caller.
pub(crate) fn open_pty_to_socket(
    sock: &UnixStream,
    process: &Process,
) -> Result<(OwnedFd, String)> {
    use nix::fcntl::OFlag;
    use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .ctx(|| "open /dev/ptmx".into())?;
    grantpt(&master).ctx(|| "grantpt".into())?;
    unlockpt(&master).ctx(|| "unlockpt".into())?;
    let slave_path = ptsname_r(&master).ctx(|| "ptsname".into())?;
    let slave = nix::fcntl::open(
        slave_path.as_str(),
        OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ctx(|| format!("open {slave_path}"))?;
    if let Some(size) = process.console_size() {
        let ws = libc::winsize {
            ws_row: size.height() as u16,
            ws_col: size.width() as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ with a valid winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    send_fd(sock, master.as_raw_fd(), &slave_path)?;
    Ok((slave, slave_path))
}

fn send_fd(sock: &UnixStream, fd: RawFd, name: &str) -> Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
    let iov = [std::io::IoSlice::new(name.as_bytes())];
    let fds = [fd];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .ctx(|| "send pty master to console socket".into())?;
    Ok(())
}

pub(crate) fn attach_terminal(slave: OwnedFd) -> Result<()> {
    let fd = slave.as_raw_fd();
    // SAFETY: TIOCSCTTY and dup2 on descriptors we own.
    unsafe {
        if libc::ioctl(fd, libc::TIOCSCTTY, 0) != 0 {
            return Err(RuntimeError::io(
                "set controlling terminal",
                std::io::Error::last_os_error(),
            ));
        }
        for target in 0..3 {
            if libc::dup2(fd, target) < 0 {
                return Err(RuntimeError::io(
                    "dup2 pty to stdio",
                    std::io::Error::last_os_error(),
                ));
            }
        }
    }
    drop(slave);
    Ok(())
}
