//! Driving a runc-compatible OCI runtime binary, and wiring the stdio of the
//! processes it starts to pipes or a pty the shim holds.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};

use crate::error::{IoContext, Result, ShimError};

/// The runtime gets this long to create a container or exec a process.
const RUNTIME_TIMEOUT: Duration = Duration::from_secs(60);

pub struct OciRuntime {
    pub path: PathBuf,
    pub root: Option<PathBuf>,
}

/// The shim's ends of a process's stdio.
#[derive(Default)]
pub struct ProcIo {
    /// Write end of the stdin pipe, or the pty master.
    pub stdin: Option<OwnedFd>,
    /// Read ends: stdout and stderr pipes; for a tty only stdout (the master).
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master, kept for resize.
    pub pty: Option<OwnedFd>,
}

impl OciRuntime {
    /// `explicit`, else berth-runtime next to this executable, else on PATH.
    pub fn locate(explicit: Option<&Path>, root: Option<PathBuf>) -> Result<OciRuntime> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let sibling = std::env::current_exe()
                    .ok()
                    .and_then(|e| e.parent().map(|d| d.join("berth-runtime")))
                    .filter(|p| p.is_file());
                let on_path = || {
                    std::env::var_os("PATH").and_then(|p| {
                        std::env::split_paths(&p)
                            .map(|d| d.join("berth-runtime"))
                            .find(|p| p.is_file())
                    })
                };
                sibling.or_else(on_path).ok_or_else(|| {
                    ShimError::Usage("berth-runtime not found next to the shim or on PATH".into())
                })?
            }
        };
        Ok(OciRuntime { path, root })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.path);
        if let Some(r) = &self.root {
            c.arg("--root").arg(r);
        }
        c
    }

    /// Runs a short runtime command (start, kill, delete) to completion.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<()> {
        let action = args
            .first()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .unwrap_or_default();
        let out = self
            .command()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .ctx(|| format!("run {}", self.path.display()))?;
        if out.status.success() {
            return Ok(());
        }
        Err(ShimError::Runtime {
            action,
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Runs `create` or `exec -d` with `args` (which name the pid file) and
    /// returns the shim's ends of the new process's stdio. With `console`, the
    /// runtime sends the pty master to that socket path.
    pub fn spawn_process<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        want_stdin: bool,
        console: Option<&Path>,
        err_file: &Path,
    ) -> Result<ProcIo> {
        let action = args[0].as_ref().to_string_lossy().into_owned();
        let mut cmd = self.command();
        let mut io = ProcIo::default();
        let listener = match console {
            Some(sock) => {
                let _ = std::fs::remove_file(sock);
                let l = crate::sockpath::bind(sock).ctx(|| format!("bind {}", sock.display()))?;
                l.set_nonblocking(true).ctx(|| "console socket".into())?;
                cmd.arg(&args[0]).arg("--console-socket").arg(sock);
                cmd.args(&args[1..]);
                // The runtime's own messages go to a file: with a pty they
                // would otherwise be lost.
                let err =
                    File::create(err_file).ctx(|| format!("create {}", err_file.display()))?;
                cmd.stdin(Stdio::null())
                    .stdout(err.try_clone().ctx(|| "dup".into())?)
                    .stderr(err);
                Some(l)
            }
            None => {
                cmd.args(args);
                if want_stdin {
                    let (r, w) = pipe()?;
                    cmd.stdin(Stdio::from(r));
                    io.stdin = Some(w);
                } else {
                    cmd.stdin(Stdio::null());
                }
                let (r, w) = pipe()?;
                cmd.stdout(Stdio::from(w));
                io.stdout = Some(r);
                let (r, w) = pipe()?;
                cmd.stderr(Stdio::from(w));
                io.stderr = Some(r);
                None
            }
        };
        let mut child = cmd.spawn().ctx(|| format!("run {}", self.path.display()))?;
        // Our copies of the process's ends must go, or EOF never comes.
        drop(cmd);
        let deadline = Instant::now() + RUNTIME_TIMEOUT;
        let mut master = None;
        // Sleep until the runtime exits or the console socket is ready,
        // instead of polling: create is on every container's critical path.
        let pidfd = pidfd_open(child.id() as i32);
        let status = loop {
            if let (Some(l), None) = (&listener, &master) {
                match l.accept() {
                    Ok((conn, _)) => master = Some(receive_fd(conn.as_raw_fd())?),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e).ctx(|| "accept console socket".into()),
                }
            }
            if let Some(st) = child.try_wait().ctx(|| "wait runtime".into())? {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ShimError::Runtime {
                    action,
                    message: "timed out".into(),
                });
            }
            let waiting_for_master = listener.is_some() && master.is_none();
            match &pidfd {
                Some(fd) => {
                    let mut fds = vec![libc::pollfd {
                        fd: fd.as_raw_fd(),
                        events: libc::POLLIN,
                        revents: 0,
                    }];
                    if let (Some(l), true) = (&listener, waiting_for_master) {
                        fds.push(libc::pollfd {
                            fd: l.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        });
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    // SAFETY: fds is a valid pollfd array of its length.
                    unsafe {
                        libc::poll(
                            fds.as_mut_ptr(),
                            fds.len() as libc::nfds_t,
                            left.as_millis().min(i32::MAX as u128) as i32 + 1,
                        )
                    };
                }
                None => std::thread::sleep(Duration::from_millis(2)),
            }
        };
        if let Some(l) = &listener
            && master.is_none()
            && let Ok((conn, _)) = l.accept()
        {
            master = receive_fd(conn.as_raw_fd()).ok();
        }
        if let Some(sock) = console {
            let _ = std::fs::remove_file(sock);
        }
        if !status.success() {
            let mut msg = String::new();
            match console {
                Some(_) => {
                    let _ = File::open(err_file).and_then(|mut f| f.read_to_string(&mut msg));
                }
                None => {
                    if let Some(fd) = &io.stderr {
                        set_nonblocking(fd.as_raw_fd());
                        let _ = File::from(fd.try_clone().ctx(|| "dup".into())?)
                            .read_to_string(&mut msg);
                    }
                }
            }
            let _ = std::fs::remove_file(err_file);
            return Err(ShimError::Runtime {
                action,
                message: format!("{status}: {}", msg.trim()),
            });
        }
        let _ = std::fs::remove_file(err_file);
        if console.is_some() {
            let m = master.ok_or_else(|| ShimError::Runtime {
                action,
                message: "no pty master on the console socket".into(),
            })?;
            io.stdin = Some(m.try_clone().ctx(|| "dup pty".into())?);
            io.stdout = Some(m.try_clone().ctx(|| "dup pty".into())?);
            io.pty = Some(m);
        }
        for fd in [&io.stdin, &io.stdout, &io.stderr].into_iter().flatten() {
            set_nonblocking(fd.as_raw_fd());
        }
        Ok(io)
    }
}

/// A pipe whose ends are close-on-exec (the ends handed to a process are
/// dup'ed onto its 0-2 by Command, which clears the flag there).
pub fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ctx(|| "pipe".into())
}

pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; failure leaves it blocking.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Receives one descriptor sent with SCM_RIGHTS (the runtime's pty master).
fn receive_fd(sock: RawFd) -> Result<OwnedFd> {
    // The accepted socket inherits nothing from the listener's O_NONBLOCK on
    // Linux, so this blocks until the runtime has sent.
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(sock, &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)
        .ctx(|| "receive pty master".into())?;
    for c in msg.cmsgs().ctx(|| "pty master message".into())? {
        if let ControlMessageOwned::ScmRights(fds) = c
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(ShimError::Protocol(
        "console socket message carried no descriptor".into(),
    ))
}

/// Sets a pty's window size.
pub fn resize(pty: RawFd, width: u16, height: u16) -> Result<()> {
    let ws = libc::winsize {
        ws_row: height,
        ws_col: width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize we own.
    if unsafe { libc::ioctl(pty, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error()).ctx(|| "resize pty".into());
    }
    Ok(())
}

/// A pidfd for `pid` (readable once it exits); None on kernels before 5.3.
fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: plain syscall; a returned descriptor is owned below.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: fd is a new descriptor nobody else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}
