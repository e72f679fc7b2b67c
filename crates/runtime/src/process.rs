//! The container process's own attributes: user, groups, capabilities,
//! rlimits, environment and the final exec.

use std::collections::HashSet;
use std::ffi::CString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use caps::{CapSet, Capability};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, Process};

use crate::error::{IoContext, Result, RuntimeError};

/// Finds the executable for `args[0]` using the container's PATH, as execvp would,
/// so a missing binary is reported at create time with its name.
pub fn resolve_executable(process: &Process) -> Result<PathBuf> {
    let args = process.args().as_deref().unwrap_or_default();
    let arg0 = args
        .first()
        .ok_or_else(|| RuntimeError::InvalidArgument("process.args must not be empty".into()))?;
    if arg0.contains('/') {
        let p = if Path::new(arg0).is_absolute() {
            PathBuf::from(arg0)
        } else {
            process.cwd().join(arg0)
        };
        return check_executable(&p)
            .map(|_| p)
            .map_err(|e| RuntimeError::Init(format!("exec: {arg0:?}: {e}")));
    }
    let path_var = env_value(process, "PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if check_executable(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    Err(RuntimeError::Init(format!(
        "exec: {arg0:?}: executable file not found in $PATH"
    )))
}

fn check_executable(p: &Path) -> std::result::Result<(), String> {
    let meta = std::fs::metadata(p).map_err(|e| e.to_string())?;
    if meta.is_dir() {
        return Err("is a directory".into());
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err("permission denied".into());
    }
    Ok(())
}

fn env_value(process: &Process, key: &str) -> Option<String> {
    process
        .env()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .rev()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('=').map(str::to_string))
}

/// Credentials, capabilities, no_new_privs and seccomp, in the order that
/// works: a filter installed without no_new_privs needs CAP_SYS_ADMIN, so it
/// goes in before the capabilities are dropped; with no_new_privs it goes in
/// last, as close to exec as possible.
pub fn drop_privileges(process: &Process, filter: Option<&crate::seccomp::Program>) -> Result<()> {
    apply_apparmor(process)?;
    let nnp = process.no_new_privileges().unwrap_or(false);
    if let (Some(f), false) = (filter, nnp) {
        crate::seccomp::install(f)?;
    }
    let caps = process.capabilities().as_ref();
    prepare_capabilities(caps)?;
    set_user(process)?;
    apply_capabilities(caps)?;
    nix::unistd::chdir(process.cwd())
        .ctx(|| format!("chdir to cwd {}", process.cwd().display()))?;
    set_no_new_privileges(process)?;
    if let (Some(f), true) = (filter, nnp) {
        crate::seccomp::install(f)?;
    }
    Ok(())
}

/// Asks the kernel to confine the process with its AppArmor profile at
/// exec. A profile that cannot be applied is an error, never skipped: a
/// security setting silently dropped is worse than a container that fails.
fn apply_apparmor(process: &Process) -> Result<()> {
    let Some(profile) = process
        .apparmor_profile()
        .as_deref()
        .filter(|p| !p.is_empty())
    else {
        return Ok(());
    };
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    if !enabled {
        return Err(RuntimeError::InvalidArgument(format!(
            "process.apparmorProfile {profile:?}: AppArmor is not enabled on this host"
        )));
    }
    let attr = if Path::new("/proc/self/attr/apparmor/exec").exists() {
        "/proc/self/attr/apparmor/exec"
    } else {
        "/proc/self/attr/exec"
    };
    std::fs::write(attr, format!("exec {profile}"))
        .ctx(|| format!("set AppArmor profile {profile:?}"))
}

pub fn set_rlimits(process: &Process) -> Result<()> {
    for r in process.rlimits().as_deref().unwrap_or_default() {
        let resource = rlimit_resource(&r.typ().to_string()).ok_or_else(|| {
            RuntimeError::InvalidArgument(format!("process.rlimits: unknown type {}", r.typ()))
        })?;
        let lim = libc::rlimit {
            rlim_cur: r.soft(),
            rlim_max: r.hard(),
        };
        // SAFETY: plain syscall with a valid struct.
        if unsafe { libc::setrlimit(resource, &lim) } != 0 {
            return Err(RuntimeError::io(
                format!("setrlimit {} soft={} hard={}", r.typ(), r.soft(), r.hard()),
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// Converts an OCI capability set to the `caps` crate's, skipping names this
/// build does not know (newer kernels) rather than failing the container.
fn to_caps(set: &Option<Capabilities>) -> HashSet<Capability> {
    set.as_ref()
        .map(|s| {
            s.iter()
                .filter_map(|c| format!("CAP_{c}").parse::<Capability>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Before changing uid: drop from the bounding set everything not listed, and
/// keep the permitted set across setuid.
pub fn prepare_capabilities(caps_cfg: Option<&LinuxCapabilities>) -> Result<()> {
    if let Some(c) = caps_cfg {
        let bounding = to_caps(c.bounding());
        for cap in caps::all() {
            if !bounding.contains(&cap)
                && caps::has_cap(None, CapSet::Bounding, cap).unwrap_or(false)
            {
                caps::drop(None, CapSet::Bounding, cap)
                    .map_err(|e| RuntimeError::Init(format!("drop bounding {cap}: {e}")))?;
            }
        }
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } != 0 {
        return Err(RuntimeError::io(
            "prctl(PR_SET_KEEPCAPS)",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// After changing uid: set the effective, permitted and inheritable sets in
/// one capset(2) (so no intermediate state violates the kernel's subset rules),
/// then raise the ambient set.
pub fn apply_capabilities(caps_cfg: Option<&LinuxCapabilities>) -> Result<()> {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    let Some(c) = caps_cfg else {
        return Ok(());
    };
    let mask = |set: &HashSet<Capability>| -> u64 {
        set.iter().fold(0u64, |m, cap| m | (1u64 << cap.index()))
    };
    let permitted = to_caps(c.permitted());
    let inheritable = to_caps(c.inheritable());
    let (e, p, i) = (
        mask(&to_caps(c.effective())),
        mask(&permitted),
        mask(&inheritable),
    );
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: header and two data structs as capset(2) v3 expects.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) } != 0 {
        return Err(RuntimeError::io(
            "capset (effective must be a subset of permitted)",
            std::io::Error::last_os_error(),
        ));
    }
    caps::clear(None, CapSet::Ambient).ok();
    for cap in to_caps(c.ambient()) {
        // The kernel only allows ambient caps that are permitted and inheritable;
        // others are skipped, as runc does.
        if permitted.contains(&cap) && inheritable.contains(&cap) {
            caps::raise(None, CapSet::Ambient, cap)
                .map_err(|e| RuntimeError::Init(format!("raise ambient {cap}: {e}")))?;
        }
    }
    Ok(())
}

pub fn set_user(process: &Process) -> Result<()> {
    let user = process.user();
    let groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    // SAFETY: pointer and length of a live Vec.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        let e = std::io::Error::last_os_error();
        // In a user namespace with setgroups denied, an empty list is fine to skip.
        if !(groups.is_empty() && e.raw_os_error() == Some(libc::EPERM)) {
            return Err(RuntimeError::io(format!("setgroups {groups:?}"), e));
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    // SAFETY: plain syscalls.
    if unsafe { libc::setresgid(gid, gid, gid) } != 0 {
        return Err(RuntimeError::io(
            format!("setgid {gid}"),
            std::io::Error::last_os_error(),
        ));
    }
    if unsafe { libc::setresuid(uid, uid, uid) } != 0 {
        return Err(RuntimeError::io(
            format!("setuid {uid}"),
            std::io::Error::last_os_error(),
        ));
    }
    if let Some(mask) = user.umask() {
        // SAFETY: plain syscall.
        unsafe { libc::umask(mask as libc::mode_t) };
    }
    Ok(())
}

pub fn set_no_new_privileges(process: &Process) -> Result<()> {
    if process.no_new_privileges().unwrap_or(false) {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(RuntimeError::io(
                "prctl(PR_SET_NO_NEW_PRIVS)",
                std::io::Error::last_os_error(),
            ));
        }
    }
    Ok(())
}

pub fn set_oom_score_adj(process: &Process) -> Result<()> {
    if let Some(adj) = process.oom_score_adj() {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .ctx(|| format!("write oom_score_adj {adj}"))?;
    }
    Ok(())
}

/// The prepared arguments of execve, built before the point of no return so
/// that nothing can fail between the start signal and the exec but exec itself.
pub struct ExecArgs {
    pub path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

impl ExecArgs {
    pub fn new(path: &Path, process: &Process) -> Result<ExecArgs> {
        let c = |s: &str, what: &str| {
            CString::new(s).map_err(|_| {
                RuntimeError::InvalidArgument(format!("process.{what} contains a NUL byte"))
            })
        };
        let argv = process
            .args()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| c(a, "args"))
            .collect::<Result<Vec<_>>>()?;
        let envp = process
            .env()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|e| c(e, "env"))
            .collect::<Result<Vec<_>>>()?;
        Ok(ExecArgs {
            path: c(&path.to_string_lossy(), "args[0]")?,
            argv,
            envp,
        })
    }

    /// Replaces the process image; returns only on failure.
    pub fn exec(&self) -> std::io::Error {
        let mut argv: Vec<*const libc::c_char> = self.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = self.envp.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        reset_signals();
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(self.path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
        std::io::Error::last_os_error()
    }
}

/// execve keeps ignored signals ignored and the blocked mask blocked, so a
/// runtime started from a shell's background job (SIGINT and SIGQUIT
/// ignored) or by a caller that blocks signals would pass that on to the
/// container's processes, which then could not be interrupted. Like runc and
/// crun, the process starts with every disposition at its default and
/// nothing blocked.
fn reset_signals() {
    // The kernel's struct sigaction (x86_64 and aarch64 layout): glibc's
    // signal() refuses 32 and 33, which it keeps for itself, but a caller
    // may still have left them ignored.
    #[repr(C)]
    struct KernelSigaction {
        handler: usize,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let default = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: plain syscalls on this thread's own state, right before exec;
    // `default` outlives each call and its size is the kernel's sigset size.
    unsafe {
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &default as *const KernelSigaction,
                    std::ptr::null_mut::<KernelSigaction>(),
                    8usize,
                );
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::pthread_sigmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_json(v: serde_json::Value) -> Process {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn resolves_through_container_path() {
        let d = tempfile::tempdir().unwrap();
        let bin = d.path().join("tool");
        std::fs::write(&bin, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let p = process_json(serde_json::json!({
            "args": ["tool", "x"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": [format!("PATH=/nonexistent:{}", d.path().display())]
        }));
        assert_eq!(resolve_executable(&p).unwrap(), bin);
        let p = process_json(serde_json::json!({
            "args": ["no-such-tool"], "cwd": "/", "user": {"uid": 0, "gid": 0},
            "env": [format!("PATH={}", d.path().display())]
        }));
        let e = resolve_executable(&p).unwrap_err().to_string();
        assert!(e.contains("no-such-tool") && e.contains("not found"), "{e}");
    }

    #[test]
    fn rlimit_names_map() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }
}
