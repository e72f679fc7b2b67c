//! Hijacked connections (attach, exec start): answer `101 UPGRADED`, then
//! splice the client's connection with the shim's stream socket. On a tty,
//! the detach keys (Docker's `ctrl-p,ctrl-q` unless the client names
//! others) end the session and leave the process running.

use std::os::unix::net::UnixStream;

use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{ApiError, Result};
use crate::http::{Resp, empty};

pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Docker's detach key syntax: comma-separated `ctrl-<x>` or single
/// characters (`ctrl-p,ctrl-q`, `ctrl-x`, `a,b`).
pub fn parse_detach_keys(s: &str) -> Result<Vec<u8>> {
    let bad = || {
        ApiError::BadRequest(format!(
            "Invalid detach keys ({s}) provided: use ctrl-<value> or a single character, separated by commas"
        ))
    };
    s.split(',')
        .map(|k| {
            let k = k.trim();
            if let Some(c) = k.strip_prefix("ctrl-") {
                let mut ch = c.chars();
                match (ch.next(), ch.next()) {
                    (Some(c @ 'a'..='z'), None) => Ok(c as u8 - b'a' + 1),
                    (Some(c @ 'A'..='Z'), None) => Ok(c as u8 - b'A' + 1),
                    (Some(c @ ('@' | '[' | '\\' | ']' | '^' | '_')), None) => Ok(c as u8 - b'@'),
                    _ => Err(bad()),
                }
            } else if k.len() == 1 && k.is_ascii() {
                Ok(k.as_bytes()[0])
            } else {
                Err(bad())
            }
        })
        .collect()
}

/// Copies `from` to `to` until EOF (false) or the `keys` sequence (true,
/// the sequence itself not forwarded). A partial match is held back until
/// the next byte decides it.
async fn copy_escapable(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    keys: &[u8],
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut matched = 0usize;
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            if matched > 0 {
                to.write_all(&keys[..matched]).await?;
            }
            return Ok(false);
        }
        let mut out = Vec::with_capacity(n + matched);
        for &b in &buf[..n] {
            if b == keys[matched] {
                matched += 1;
                if matched == keys.len() {
                    to.write_all(&out).await?;
                    return Ok(true);
                }
                continue;
            }
            // Not the sequence after all: what was held goes through.
            out.extend_from_slice(&keys[..matched]);
            matched = usize::from(b == keys[0]);
            if matched == 0 {
                out.push(b);
            }
        }
        to.write_all(&out).await?;
    }
}

/// Takes over the connection; `stream` is the shim side. `done` runs (on a
/// blocking thread) after the output ended and before the client sees EOF;
/// `detached` runs when the client used the detach keys (tty sessions
/// with `detach_keys` only).
pub fn upgrade<B>(
    req: &mut Request<B>,
    stream: UnixStream,
    tty: bool,
    detach_keys: Option<Vec<u8>>,
    done: impl FnOnce() + Send + 'static,
    detached: impl FnOnce() + Send + 'static,
) -> Result<Resp> {
    if !req.headers().contains_key(UPGRADE) {
        return Err(ApiError::BadRequest(
            "attach needs a connection upgrade".into(),
        ));
    }
    let on_upgrade = hyper::upgrade::on(req);
    stream
        .set_nonblocking(true)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let shim =
        tokio::net::UnixStream::from_std(stream).map_err(|e| ApiError::Internal(e.to_string()))?;
    let keys = detach_keys.filter(|k| tty && !k.is_empty());
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let (mut sr, mut sw) = shim.into_split();
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(up));
        let mut input = tokio::spawn(async move {
            let escaped = match keys {
                Some(k) => copy_escapable(&mut cr, &mut sw, &k).await.unwrap_or(false),
                None => {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                    false
                }
            };
            if !escaped {
                // Client EOF: the process's stdin ends (the shim decides).
                let _ = sw.shutdown().await;
            }
            escaped
        });
        let mut output = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut sr, &mut cw).await;
            cw
        });
        let cw = tokio::select! {
            cw = &mut output => cw,
            escaped = &mut input => {
                if escaped.unwrap_or(false) {
                    // Detached: the process runs on; dropping the output
                    // side closes the client's connection.
                    output.abort();
                    let _ = tokio::task::spawn_blocking(detached).await;
                    return;
                }
                output.await
            }
        };
        let _ = tokio::task::spawn_blocking(done).await;
        if let Ok(mut cw) = cw {
            let _ = cw.shutdown().await;
        }
        input.abort();
    });
    Ok(switching(tty))
}

/// Upgrades the connection only to tell the client that the process never
/// started: as dockerd does for an exec whose command is missing, so the
/// docker CLI prints the reason and then reads the exit code (126/127) from
/// the exec's inspect instead of failing the upgrade.
pub fn upgrade_with_error<B>(req: &mut Request<B>, tty: bool, message: String) -> Resp {
    let on_upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(up);
        let text = format!("{message}\r\n");
        let data = if tty {
            bytes::Bytes::from(text)
        } else {
            crate::http::frame(2, text.as_bytes())
        };
        let _ = io.write_all(&data).await;
        let _ = io.shutdown().await;
    });
    switching(tty)
}

fn switching(tty: bool) -> Resp {
    let mut r = empty(StatusCode::SWITCHING_PROTOCOLS);
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_syntax() {
        assert_eq!(parse_detach_keys(DEFAULT_DETACH_KEYS).unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-x").unwrap(), [24]);
        assert_eq!(parse_detach_keys("ctrl-@,ctrl-_").unwrap(), [0, 31]);
        assert_eq!(parse_detach_keys("a,ctrl-A").unwrap(), [b'a', 1]);
        for bad in ["", "ctrl-", "ctrl-ab", "ab", "ctrl-1"] {
            assert!(parse_detach_keys(bad).is_err(), "{bad}");
        }
    }

    async fn run(input: &[u8], keys: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut from = input;
        let esc = copy_escapable(&mut from, &mut out, keys).await.unwrap();
        (out, esc)
    }

    #[tokio::test]
    async fn escape_sequence_detection() {
        let keys = [16u8, 17];
        assert_eq!(run(b"abc", &keys).await, (b"abc".to_vec(), false));
        assert_eq!(run(b"ab\x10\x11cd", &keys).await, (b"ab".to_vec(), true));
        // A lone first key goes through once the next byte breaks the match.
        assert_eq!(run(b"a\x10b", &keys).await, (b"a\x10b".to_vec(), false));
        assert_eq!(run(b"\x10\x10\x11", &keys).await, (b"\x10".to_vec(), true));
        assert_eq!(run(b"x\x10", &keys).await, (b"x\x10".to_vec(), false));
        assert_eq!(run(b"q\x18z", &[24]).await, (b"q".to_vec(), true));
    }
}
