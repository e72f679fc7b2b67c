//! Just enough HTTP/1.1 over berthd's unix socket for `POST /build` and
//! `POST /build/prune`: a request with a body, and a response whose body is
//! read as it arrives (chunked or not), so progress shows live.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::BorrowedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The daemon socket to use, if any: `BERTH_HOST` or `DOCKER_HOST`
/// (`unix://…`) when set; else the default socket, but only for the default
/// `--root` (another root means "work on that store here").
pub fn socket(root: &Path) -> Option<PathBuf> {
    for var in ["BERTH_HOST", "DOCKER_HOST"] {
        if let Ok(h) = std::env::var(var)
            && let Some(p) = h.strip_prefix("unix://")
        {
            return Some(PathBuf::from(p));
        }
    }
    let default = Path::new("/run/berth/berth.sock");
    (root == Path::new("/var/lib/berth") && UnixStream::connect(default).is_ok())
        .then(|| default.to_path_buf())
}

pub struct Response {
    pub status: u16,
    body: Box<dyn BufRead>,
}

impl Response {
    /// Calls `f` with each body line (without the newline).
    pub fn lines(mut self, mut f: impl FnMut(&str) -> Result<()>) -> Result<()> {
        let mut line = String::new();
        while self
            .body
            .read_line(&mut line)
            .context("reading from berthd")?
            > 0
        {
            f(line.trim_end_matches(['\r', '\n']))?;
            line.clear();
        }
        Ok(())
    }

    pub fn text(mut self) -> Result<String> {
        let mut s = String::new();
        self.body
            .read_to_string(&mut s)
            .context("reading from berthd")?;
        Ok(s)
    }
}

/// `query` is already encoded (`a=1&b=2`). `dir` goes ahead of the
/// request as the connection's passed fd (see [`pass_fd`]).
pub fn post(
    sock: &Path,
    path: &str,
    query: &str,
    ctype: &str,
    body: &[u8],
    dir: Option<BorrowedFd<'_>>,
) -> Result<Response> {
    post_with(sock, path, query, &[("Content-Type", ctype)], body, dir)
}

/// [`post`] with any headers (values already valid header text).
pub fn post_with(
    sock: &Path,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    dir: Option<BorrowedFd<'_>>,
) -> Result<Response> {
    let mut s = UnixStream::connect(sock)
        .with_context(|| format!("cannot connect to berthd at {}", sock.display()))?;
    if let Some(fd) = dir {
        pass_fd(&s, fd).context("passing the context directory to berthd")?;
    }
    let q = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    let mut head = format!("POST /v1.45{path}{q} HTTP/1.1\r\nHost: berth\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    write!(
        s,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(body).context("sending the request to berthd")?;
    let mut r = BufReader::new(s);
    let mut status_line = String::new();
    r.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("bad response from berthd: {status_line:?}"))?;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("transfer-encoding")
            && v.trim().eq_ignore_ascii_case("chunked")
        {
            chunked = true;
        }
    }
    let body: Box<dyn BufRead> = if chunked {
        Box::new(BufReader::new(Chunked { inner: r, left: 0 }))
    } else {
        Box::new(r)
    };
    Ok(Response { status, body })
}

/// Berth's preamble: one byte 0x00 (which no HTTP client sends first)
/// carrying `fd` as SCM_RIGHTS. berthd takes it as the directory a
/// `berthcontextpath` build reads; anything that only relays bytes (a
/// proxy) drops the fd, and the daemon then refuses the path.
fn pass_fd(s: &UnixStream, fd: BorrowedFd<'_>) -> std::io::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    use std::os::fd::AsRawFd;
    let fds = [fd.as_raw_fd()];
    let n = sendmsg::<UnixAddr>(
        s.as_raw_fd(),
        &[std::io::IoSlice::new(&[0])],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    if n != 1 {
        return Err(std::io::ErrorKind::WriteZero.into());
    }
    Ok(())
}

/// Decodes `Transfer-Encoding: chunked`.
struct Chunked<R> {
    inner: R,
    left: usize,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut line = String::new();
            self.inner.read_line(&mut line)?;
            if line == "\r\n" {
                line.clear();
                self.inner.read_line(&mut line)?;
            }
            let size = line.trim().split(';').next().unwrap_or("");
            if size.is_empty() {
                return Ok(0);
            }
            self.left = usize::from_str_radix(size, 16).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size")
            })?;
            if self.left == 0 {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..n])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }
}

/// The daemon's `{"message": …}` error body, or the raw text.
pub fn error_message(status: u16, body: &str) -> anyhow::Error {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(String::from))
        .unwrap_or_else(|| body.trim().to_string());
    anyhow::anyhow!("berthd ({status}): {msg}")
}

/// The response, or the daemon's error as an error.
pub fn check(r: Response) -> Result<Response> {
    if r.status >= 400 {
        let status = r.status;
        bail!(error_message(status, &r.text()?));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_decoding() {
        let raw = b"5\r\nhello\r\n7\r\n world\n\r\n0\r\n\r\n";
        let mut c = Chunked {
            inner: &raw[..],
            left: 0,
        };
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world\n");
    }
}
