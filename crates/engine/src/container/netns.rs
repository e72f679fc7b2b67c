//! Until Berth has networks, a container's own network namespace holds only
//! loopback; the runtime leaves it down, so the engine brings it up (what
//! docker's "none" network does).

use std::fs::File;
use std::os::fd::AsRawFd;

use crate::error::{EngineError, Result};

/// Brings `lo` up in the network namespace of `pid`. Runs on a throwaway
/// thread: setns(CLONE_NEWNET) changes only the calling thread.
pub fn loopback_up(pid: i32) -> Result<()> {
    let ns = File::open(format!("/proc/{pid}/ns/net"))
        .map_err(|e| EngineError::Internal(format!("open netns of {pid}: {e}")))?;
    std::thread::spawn(move || -> std::io::Result<()> {
        // SAFETY: plain syscalls on descriptors we own; the ifreq is zeroed
        // and its name NUL-terminated.
        unsafe {
            if libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if sock < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo\0".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            let mut r = libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req);
            if r == 0 {
                req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
                r = libc::ioctl(sock, libc::SIOCSIFFLAGS, &req);
            }
            let err = std::io::Error::last_os_error();
            libc::close(sock);
            if r != 0 {
                return Err(err);
            }
        }
        Ok(())
    })
    .join()
    .map_err(|_| EngineError::Internal("loopback thread panicked".into()))?
    .map_err(|e| EngineError::Internal(format!("bring up lo in {pid}'s namespace: {e}")))
}
