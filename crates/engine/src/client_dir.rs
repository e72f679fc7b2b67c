//! A build context read in place from the client's own directory (Berth's
//! `berthcontextpath` on `POST /build`) instead of a tar of it: `berth
//! build` on the daemon's host then sends no file at all, and a rebuild of
//! an unchanged tree costs a stat per file (see the builder's file hash
//! table) instead of a 32 MB transfer and sync.
//!
//! The client opens the directory itself and passes the open fd over the
//! unix connection (SCM_RIGHTS, before its HTTP request; see berth-api's
//! `serve`), so the daemon never resolves a client's path: no
//! `/proc/<pid>/root`, no pid that could be reused, and a client in
//! another mount namespace or chroot names its own files. A proxy in front
//! of the socket (socat, ssh forwarding, docker-socket-proxy) forwards
//! bytes, not fds: through it there is no directory to read, so the
//! proxy's own credentials (often root) grant nothing.
//!
//! Only for a root client: the daemon reads as root beneath the fd, so a
//! user's fd would let it read files below that the user may not.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

use crate::error::{EngineError, Result};

/// How every refusal of an in-place context begins: `berth build` falls
/// back to sending a tar on exactly these (and on nothing else, so a real
/// bad request is not sent twice).
pub const REFUSED: &str = "berthcontextpath refused: ";

/// The client at the other end of the API socket: its uid when it
/// connected (SO_PEERCRED) and the directory fd it passed, if any.
#[derive(Debug)]
pub struct Peer {
    pub uid: u32,
    pub context: Option<OwnedFd>,
}

/// The client's context directory, open for the length of a build.
#[derive(Debug)]
pub struct ClientDir {
    fd: OwnedFd,
}

impl ClientDir {
    /// The directory `peer` passed with its connection; refuses any peer
    /// but root, and a connection that brought no directory.
    pub fn open(peer: Option<&Peer>) -> Result<ClientDir> {
        let Some(peer) = peer else {
            return Err(EngineError::InvalidArgument(format!(
                "{REFUSED}only a client on the daemon's unix socket can pass its context directory; send the context as a tar"
            )));
        };
        if peer.uid != 0 {
            return Err(EngineError::Forbidden(format!(
                "{REFUSED}the daemon reads a context directory in place only for root clients (this one is uid {}); send the context as a tar",
                peer.uid
            )));
        }
        let Some(fd) = &peer.context else {
            return Err(EngineError::InvalidArgument(format!(
                "{REFUSED}no directory fd came with this connection (the client passes it over the unix socket; a proxy in between does not forward it); send the context as a tar"
            )));
        };
        let bad = |e: std::io::Error| {
            EngineError::InvalidArgument(format!("{REFUSED}the passed context directory: {e}"))
        };
        let st = nix::sys::stat::fstat(fd).map_err(|e| bad(e.into()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return Err(bad(std::io::Error::from_raw_os_error(libc::ENOTDIR)));
        }
        // A connection may carry several builds: each holds its own fd.
        let fd = fd.try_clone().map_err(bad)?;
        Ok(ClientDir { fd })
    }

    /// A path naming the open directory for this process and its children
    /// (the builder opens the context by path).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }
}
