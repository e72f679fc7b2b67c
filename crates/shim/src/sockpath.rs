//! Unix socket paths longer than sun_path (108 bytes) — state dirs named by
//! 64-hex container ids under a deep --exec-root get there — are reached
//! through the parent directory's /proc/self/fd link, which is short.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Room left in sun_path after the terminating NUL, with a margin.
const SHORT_ENOUGH: usize = 100;

fn via_dir_fd(path: &Path) -> io::Result<(Option<File>, PathBuf)> {
    if path.as_os_str().as_bytes().len() < SHORT_ENOUGH {
        return Ok((None, path.to_path_buf()));
    }
    let dir = File::open(path.parent().unwrap_or(Path::new("/")))?;
    let short = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()))
        .join(path.file_name().unwrap_or_default());
    Ok((Some(dir), short))
}

pub fn bind(path: &Path) -> io::Result<UnixListener> {
    let (_dir, p) = via_dir_fd(path)?;
    UnixListener::bind(p)
}

pub fn connect(path: &Path) -> io::Result<UnixStream> {
    let (_dir, p) = via_dir_fd(path)?;
    UnixStream::connect(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_bind_and_connect() {
        let d = tempfile::tempdir().unwrap();
        let deep = d.path().join("x".repeat(60)).join("y".repeat(60));
        std::fs::create_dir_all(&deep).unwrap();
        let sock = deep.join("shim.sock");
        assert!(sock.as_os_str().len() > 108);
        let l = bind(&sock).unwrap();
        assert!(sock.exists());
        let _c = connect(&sock).unwrap();
        let _ = l.accept().unwrap();
    }
}
