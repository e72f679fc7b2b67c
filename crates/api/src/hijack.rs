//! Hijacked connections (attach, exec start): answer `101 UPGRADED`, then
//! splice the client's connection with the shim's stream socket.

use std::os::unix::net::UnixStream;

use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue, UPGRADE};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use crate::error::{ApiError, Result};
use crate::http::{Resp, empty};

/// Takes over the connection; `stream` is the shim side. `done` runs (on a
/// blocking thread) after the output ended and before the client sees EOF.
pub fn upgrade<B>(
    req: &mut Request<B>,
    stream: UnixStream,
    tty: bool,
    done: impl FnOnce() + Send + 'static,
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
    tokio::spawn(async move {
        let Ok(up) = on_upgrade.await else {
            return;
        };
        let (mut sr, mut sw) = shim.into_split();
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(up));
        let input = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut cr, &mut sw).await;
            // Client EOF: the process's stdin ends (shim closes it).
            let _ = sw.shutdown().await;
        });
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = tokio::task::spawn_blocking(done).await;
        let _ = cw.shutdown().await;
        input.abort();
    });
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
    Ok(r)
}
