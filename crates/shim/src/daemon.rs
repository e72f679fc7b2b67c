//! Detaching from the starter: the daemon runs `berth-shim`, which forks
//! twice (setsid between) so the shim is nobody's child but init's (or an
//! outer subreaper's) and outlives the daemon. The first process waits on a
//! pipe for the shim's report (created, or why not) and prints it.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result, ShimError};
use crate::options::Options;

/// What the starter learns (and prints as one JSON line on stdout).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Started {
    pub pid: i32,
    pub socket: PathBuf,
    /// The container init's pid.
    pub container_pid: i32,
}

#[derive(Serialize, Deserialize)]
struct Report {
    #[serde(flatten)]
    started: Option<Started>,
    error: Option<String>,
}

pub enum Role {
    /// The original process: call `wait_started`, print, exit.
    Starter(File),
    /// The detached shim: report through this once created.
    Shim(Reporter),
}

pub struct Reporter(File);

impl Reporter {
    pub fn started(mut self, s: Started) {
        let r = Report {
            started: Some(s),
            error: None,
        };
        let _ = self
            .0
            .write_all(&serde_json::to_vec(&r).unwrap_or_default());
    }
    pub fn failed(mut self, msg: &str) {
        let r = Report {
            started: None,
            error: Some(msg.into()),
        };
        let _ = self
            .0
            .write_all(&serde_json::to_vec(&r).unwrap_or_default());
    }
}

/// Forks the detached shim. Must be called while single-threaded.
pub fn detach() -> Result<Role> {
    let (r, w) = crate::runtime::pipe()?;
    // SAFETY: the process is single-threaded here (the binary calls this first).
    match unsafe { libc::fork() } {
        -1 => Err(std::io::Error::last_os_error()).ctx(|| "fork".into()),
        0 => {
            drop(r);
            // SAFETY: plain syscalls in the child.
            unsafe {
                libc::setsid();
                match libc::fork() {
                    -1 => libc::_exit(1),
                    0 => {}
                    _ => libc::_exit(0),
                }
            }
            let _ = std::env::set_current_dir("/");
            redirect_stdio()?;
            Ok(Role::Shim(Reporter(File::from(w))))
        }
        child => {
            drop(w);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            Ok(Role::Starter(File::from(r)))
        }
    }
}

/// The shim never writes to its starter's terminal or pipes: holding them
/// open would keep a daemon's `output()` from ever finishing.
fn redirect_stdio() -> Result<()> {
    let null: OwnedFd = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .ctx(|| "open /dev/null".into())?
        .into();
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors.
        unsafe { libc::dup2(null.as_raw_fd(), fd) };
    }
    Ok(())
}

/// Reads the shim's report; an error if it failed or died without one.
pub fn wait_started(mut pipe: File) -> Result<Started> {
    let mut s = String::new();
    pipe.read_to_string(&mut s)
        .ctx(|| "read shim report".into())?;
    if s.is_empty() {
        return Err(ShimError::Protocol("shim exited without a report".into()));
    }
    let r: Report = serde_json::from_str(&s)?;
    match (r.started, r.error) {
        (_, Some(e)) => Err(ShimError::Refused(e)),
        (Some(st), None) => Ok(st),
        (None, None) => Err(ShimError::Protocol("empty shim report".into())),
    }
}

/// Starts a shim the way a daemon does and returns once the container is
/// created (or with the runtime's error).
pub fn launch(shim_exe: &Path, opts: &Options) -> Result<Started> {
    launch_with(shim_exe, opts.to_args())
}

pub fn launch_with<S: AsRef<OsStr>>(
    shim_exe: &Path,
    args: impl IntoIterator<Item = S>,
) -> Result<Started> {
    let out = Command::new(shim_exe)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .ctx(|| format!("run {}", shim_exe.display()))?;
    if !out.status.success() {
        return Err(ShimError::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}
