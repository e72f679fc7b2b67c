//! The parent/child handshake during create, over a SOCK_SEQPACKET pair so
//! each message arrives whole.
//!
//! parent → child: `G<state json>` (cgroup joined, id maps written: go on)
//! child → parent: `H` (mounts done, before pivot_root: run the runtime's
//! hooks), answered by another `G`
//! child → parent: `R` (ready: waiting for start) or `E<message>` (failed)

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};

use crate::error::{IoContext, Result, RuntimeError};

pub struct SyncChannel {
    fd: OwnedFd,
}

/// Outcome of the child's setup as the parent sees it.
pub enum ChildReport {
    Ready,
    /// Run prestart and createRuntime hooks, then send go.
    NeedHooks,
    Failed(String),
    /// The child went away without a word (killed, crashed).
    Vanished,
}

impl SyncChannel {
    pub fn pair() -> Result<(SyncChannel, SyncChannel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .ctx(|| "socketpair".into())?;
        Ok((SyncChannel { fd: a }, SyncChannel { fd: b }))
    }

    /// Moves the descriptor to `min` or above (keeps preserved fds free).
    pub fn raise_to(self, min: i32) -> Result<SyncChannel> {
        Ok(SyncChannel {
            fd: crate::sys::dup_above(self.fd, min).ctx(|| "move sync socket".into())?,
        })
    }

    fn send(&self, msg: &[u8]) -> Result<()> {
        // SAFETY: writing a live buffer to a socket we own.
        let n = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            return Err(RuntimeError::io(
                "sync send",
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    fn recv(&self) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a live buffer.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(RuntimeError::io("sync receive", e));
            }
            buf.truncate(n as usize);
            return Ok(buf);
        }
    }

    pub fn send_go(&self, payload: &str) -> Result<()> {
        let mut m = Vec::with_capacity(payload.len() + 1);
        m.push(b'G');
        m.extend_from_slice(payload.as_bytes());
        self.send(&m)
    }

    /// Waits for go; returns its payload.
    pub fn wait_go(&self) -> Result<String> {
        let m = self.recv()?;
        match m.first() {
            Some(b'G') => Ok(String::from_utf8_lossy(&m[1..]).into_owned()),
            _ => Err(RuntimeError::Init("parent went away during create".into())),
        }
    }

    /// Passes a descriptor to the other side (SCM_RIGHTS).
    pub fn send_fd(&self, fd: &OwnedFd) -> Result<()> {
        use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
        let iov = [std::io::IoSlice::new(b"F")];
        let fds = [fd.as_raw_fd()];
        sendmsg::<()>(
            self.fd.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .ctx(|| "send descriptor to the container process".into())?;
        Ok(())
    }

    /// Receives a descriptor sent with [`SyncChannel::send_fd`].
    pub fn recv_fd(&self) -> Result<OwnedFd> {
        use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
        use std::os::fd::FromRawFd;
        let mut buf = [0u8; 1];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            self.fd.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .ctx(|| "receive descriptor".into())?;
        for c in msg.cmsgs().ctx(|| "read control message".into())? {
            if let ControlMessageOwned::ScmRights(fds) = c
                && let Some(fd) = fds.first()
            {
                // SAFETY: the kernel just installed this descriptor for us.
                return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
            }
        }
        Err(RuntimeError::Init("parent went away during create".into()))
    }

    pub fn send_need_hooks(&self) -> Result<()> {
        self.send(b"H")
    }

    pub fn send_ready(&self) -> Result<()> {
        self.send(b"R")
    }

    pub fn send_error(&self, msg: &str) -> Result<()> {
        let mut m = Vec::with_capacity(msg.len() + 1);
        m.push(b'E');
        m.extend_from_slice(&msg.as_bytes()[..msg.len().min(60 * 1024)]);
        self.send(&m)
    }

    pub fn wait_child(&self) -> Result<ChildReport> {
        let m = self.recv()?;
        Ok(match m.first() {
            Some(b'R') => ChildReport::Ready,
            Some(b'H') => ChildReport::NeedHooks,
            Some(b'E') => ChildReport::Failed(String::from_utf8_lossy(&m[1..]).into_owned()),
            _ => ChildReport::Vanished,
        })
    }
}
