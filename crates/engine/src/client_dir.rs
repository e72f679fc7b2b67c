//! A build context read in place from the client's own directory (Berth's
//! `berthcontextpath` on `POST /build`) instead of a tar of it: `berth
//! build` on the daemon's host then sends no file at all, and a rebuild of
//! an unchanged tree costs a stat per file (see the builder's file hash
//! table) instead of a 32 MB transfer and sync.
//!
//! Only for a root client on the unix socket: the daemon reads as root,
//! so anyone else could make it read what they may not. The path is the
//! client's: it is resolved through `/proc/<client pid>/root` (a client in
//! another mount namespace, or chrooted, names its own files), with
//! `openat2(RESOLVE_IN_ROOT)` so its absolute symlinks stay in the
//! client's root too. The pid is checked against the pidfd taken when the
//! client connected: once the directory is open, the process must still
//! be alive, so the pid was not reused by another process meanwhile.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use berth_image::fswalk;
use nix::fcntl::OFlag;

use crate::error::{EngineError, Result};

/// The client at the other end of the API socket: its credentials when it
/// connected (SO_PEERCRED) and a pidfd for its process (SO_PEERPIDFD, or
/// pidfd_open of the pid on kernels before 6.5).
#[derive(Debug)]
pub struct Peer {
    pub uid: u32,
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
}

/// The client's context directory, open for the length of a build.
#[derive(Debug)]
pub struct ClientDir {
    fd: OwnedFd,
}

impl ClientDir {
    /// Opens `path` as `peer` sees it; refuses any peer but root.
    pub fn open(path: &str, peer: Option<&Peer>) -> Result<ClientDir> {
        let Some(peer) = peer else {
            return Err(EngineError::InvalidArgument(
                "berthcontextpath: only a client on the daemon's unix socket can name its context directory; send the context as a tar".into(),
            ));
        };
        if peer.uid != 0 {
            return Err(EngineError::Forbidden(format!(
                "berthcontextpath: the daemon reads a context directory in place only for root clients (this one is uid {}); send the context as a tar",
                peer.uid
            )));
        }
        if !path.starts_with('/') {
            return Err(EngineError::InvalidArgument(format!(
                "berthcontextpath {path:?}: expected an absolute path"
            )));
        }
        let Some(pidfd) = &peer.pidfd else {
            return Err(EngineError::InvalidArgument(
                "berthcontextpath: the client process cannot be identified (no pidfd); send the context as a tar".into(),
            ));
        };
        let bad = |e: std::io::Error| {
            EngineError::InvalidArgument(format!("berthcontextpath {path:?}: {e}"))
        };
        let root =
            fswalk::open_root(Path::new(&format!("/proc/{}/root", peer.pid))).map_err(bad)?;
        let fd = fswalk::open_in_root(
            root.as_fd(),
            Path::new(path),
            OFlag::O_PATH | OFlag::O_DIRECTORY,
        )
        .map_err(bad)?;
        // SAFETY: pidfd_send_signal with signal 0 only checks that the
        // process exists; the fd is ours.
        let alive = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                pidfd.as_raw_fd(),
                0,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        } == 0;
        if !alive {
            return Err(EngineError::InvalidArgument(
                "berthcontextpath: the client process went away".into(),
            ));
        }
        Ok(ClientDir { fd })
    }

    /// A path naming the open directory for this process and its children
    /// (RUN --mount=type=bind sources are handed to the runtime by path).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}
