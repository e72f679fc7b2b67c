//! Protection against CVE-2019-5736: a process inside a container must never
//! be able to overwrite the runtime binary through /proc/<pid>/exe while the
//! runtime is joining the container (or later, through a descriptor it opened
//! then).
//!
//! Before entering a container the runtime re-executes itself from a path on
//! a read-only bind mount of its own binary, in a private mount namespace:
//! /proc/<pid>/exe then names a read-only mount, so opening it for writing
//! fails with EROFS, and nobody outside that namespace can make it writable.
//! Unlike a sealed memfd copy (runc ≤ 1.1, crun) nothing is copied: the
//! re-exec shares the page cache and costs about one exec. Where mounting is
//! not possible the memfd copy remains as the fallback.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::mount::{MsFlags, mount};

const MEMFD_NAME: &str = "berth-runtime";

/// Whether a process of this container could ptrace a non-dumpable runtime
/// process: CAP_SYS_PTRACE in its bounding set while it stays in the host's
/// user namespace.
pub fn can_ptrace_host(
    spec: &oci_spec::runtime::Spec,
    process: Option<&oci_spec::runtime::Process>,
) -> bool {
    use oci_spec::runtime::{Capability, LinuxNamespaceType};
    let own_userns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if own_userns {
        return false;
    }
    let process = process.or(spec.process().as_ref());
    process
        .and_then(|p| p.capabilities().as_ref())
        .and_then(|c| c.bounding().as_ref())
        .is_some_and(|b| b.contains(&Capability::SysPtrace))
}

/// True when the running image cannot be written through /proc/self/exe.
pub fn is_sealed() -> bool {
    let on_readonly_mount = nix::sys::statvfs::statvfs("/proc/self/exe")
        .map(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
        .unwrap_or(false);
    on_readonly_mount
        || std::fs::read_link("/proc/self/exe")
            .map(|p| {
                p.as_os_str()
                    .as_bytes()
                    .starts_with(format!("/memfd:{MEMFD_NAME}").as_bytes())
            })
            .unwrap_or(false)
}

/// Re-executes the current process from a protected image. Returns only on failure.
pub fn reexec_sealed() -> io::Error {
    let exe = match std::fs::read_link("/proc/self/exe") {
        Ok(p) => p,
        Err(e) => return e,
    };
    let first = match reexec_readonly_bind(&exe) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    match reexec_memfd() {
        Ok(never) => match never {},
        Err(e) => io::Error::new(
            e.kind(),
            format!("read-only bind: {first}; memfd copy: {e}"),
        ),
    }
}

/// Environment variable carrying the descriptor of the caller's mount
/// namespace across the re-exec: containers that share it (no mount namespace
/// of their own) must land in the caller's, not in our private one.
const CALLER_MNTNS_ENV: &str = "_BERTH_CALLER_MNTNS_FD";

fn reexec_readonly_bind(exe: &Path) -> io::Result<std::convert::Infallible> {
    // Inherited across exec on purpose (no O_CLOEXEC).
    let caller_ns = std::fs::File::open("/proc/self/ns/mnt")?;
    let fd = caller_ns.as_raw_fd();
    // SAFETY: clear close-on-exec on a descriptor we own.
    unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    std::mem::forget(caller_ns);
    // SAFETY: single-threaded at this point (nothing has been spawned yet).
    unsafe { std::env::set_var(CALLER_MNTNS_ENV, fd.to_string()) };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    // Nothing of ours may propagate back to the host.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_SLAVE | MsFlags::MS_REC,
        None::<&str>,
    )?;
    mount(Some(exe), exe, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
    mount(
        None::<&str>,
        exe,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )?;
    let path = CString::new(exe.as_os_str().as_bytes())
        .map_err(|_| io::Error::other("NUL in exe path"))?;
    exec_with_args(|argv, envp| {
        // SAFETY: NUL-terminated arrays of valid C strings.
        unsafe { libc::execve(path.as_ptr(), argv, envp) };
    })
}

fn reexec_memfd() -> io::Result<std::convert::Infallible> {
    let name = CString::new(MEMFD_NAME).expect("no NUL");
    // SAFETY: memfd_create with a valid name; we own the returned descriptor.
    let fd =
        unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd was just created.
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut src = std::fs::File::open("/proc/self/exe")?;
    let mut dst = std::fs::File::from(memfd.try_clone()?);
    io::copy(&mut src, &mut dst)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl on our descriptor.
    if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
        return Err(io::Error::last_os_error());
    }
    exec_with_args(|argv, envp| {
        // SAFETY: NUL-terminated arrays of valid C strings; fexecve on a sealed memfd.
        unsafe { libc::fexecve(memfd.as_raw_fd(), argv, envp) };
    })
}

/// Calls `exec` with this process's argv and environment; returns its error.
fn exec_with_args(
    exec: impl FnOnce(*const *const libc::c_char, *const *const libc::c_char),
) -> io::Result<std::convert::Infallible> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).unwrap_or_default()
        })
        .collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    exec(argv.as_ptr(), envp.as_ptr());
    Err(io::Error::last_os_error())
}

/// The caller's mount namespace, when this process re-executed itself into
/// a private one. Taken once; the descriptor is made close-on-exec.
pub fn take_caller_mount_ns() -> Option<OwnedFd> {
    let value = std::env::var(CALLER_MNTNS_ENV).ok()?;
    // SAFETY: single-threaded; the runtime starts no threads.
    unsafe { std::env::remove_var(CALLER_MNTNS_ENV) };
    let fd: i32 = value.parse().ok()?;
    // Only trust it if it really is a mount namespace descriptor.
    let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok()?;
    if !link.as_os_str().as_bytes().starts_with(b"mnt:[") {
        return None;
    }
    // SAFETY: the descriptor was inherited for us and nobody else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let _ = crate::sys::set_cloexec(fd, true);
    Some(owned)
}
