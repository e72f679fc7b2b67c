//! berth-api: the Docker Engine API over a unix socket. Handlers only
//! translate HTTP to berth-engine calls and back; errors become status codes
//! in [`error::ApiError::status`].

// /info is one large json! literal.
#![recursion_limit = "256"]

pub mod error;
mod hijack;
mod http;
pub mod request;
mod routes;

use std::convert::Infallible;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use berth_engine::Engine;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::UnixListener;

pub use error::ApiError;
use error::Result;
use http::Resp;

pub const API_VERSION: &str = "1.45";
pub const MIN_API_VERSION: &str = "1.24";
const API_MINOR: u32 = 45;
const MIN_API_MINOR: u32 = 24;

/// How long a connection may take to send a request's headers (and, when it
/// is idle, to start the next one) before it is closed: dockerd's
/// `ReadHeaderTimeout`. Bounds what slow or silent clients hold.
/// `BERTH_HEADER_READ_TIMEOUT_SECS` overrides it (tests).
fn header_read_timeout() -> std::time::Duration {
    const DOCKERD_READ_HEADER_TIMEOUT_SECS: u64 = 300;
    let secs = std::env::var("BERTH_HEADER_READ_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&s: &u64| s > 0)
        .unwrap_or(DOCKERD_READ_HEADER_TIMEOUT_SECS);
    std::time::Duration::from_secs(secs)
}

/// Serves connections from `listener` until the process ends.
pub async fn serve(engine: Arc<Engine>, listener: UnixListener) -> std::io::Result<()> {
    let header_timeout = header_read_timeout();
    loop {
        let (stream, _) = listener.accept().await?;
        let engine = engine.clone();
        tokio::spawn(async move {
            // Before any HTTP: the directory fd `berth build` may pass. A
            // client that sends nothing at all is dropped after the header
            // timeout, as one that sends its headers too slowly is by hyper.
            let Ok(Ok(context)) = tokio::time::timeout(header_timeout, passed_dir(&stream)).await
            else {
                return;
            };
            let peer = stream.peer_cred().ok().map(|c| {
                Arc::new(berth_engine::build::Peer {
                    uid: c.uid(),
                    context,
                })
            });
            let svc = service_fn(move |mut req: Request<Incoming>| {
                let engine = engine.clone();
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                async move { Ok::<_, Infallible>(handle(engine, req).await) }
            });
            let _ = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades()
                .await;
        });
    }
}

/// The fd a client passed ahead of its HTTP request, for `POST /build`'s
/// `berthcontextpath` (see berth_engine::build::ClientDir): a first byte
/// 0x00 (no HTTP client sends it) carrying one fd as SCM_RIGHTS. Any other
/// first byte is left unread for hyper. Several fds: the first is kept.
async fn passed_dir(stream: &tokio::net::UnixStream) -> std::io::Result<Option<OwnedFd>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recv, recvmsg};
    use std::os::fd::{AsRawFd, FromRawFd};
    let fd = stream.as_raw_fd();
    loop {
        stream.readable().await?;
        let r = stream.try_io(tokio::io::Interest::READABLE, || {
            let mut b = [0u8; 1];
            let n = recv(fd, &mut b, MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT)?;
            if n == 0 || b[0] != 0 {
                return Ok(None);
            }
            let mut iov = [std::io::IoSliceMut::new(&mut b)];
            let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 4]);
            let msg = recvmsg::<()>(
                fd,
                &mut iov,
                Some(&mut cmsg),
                MsgFlags::MSG_CMSG_CLOEXEC | MsgFlags::MSG_DONTWAIT,
            )?;
            let mut fds = Vec::new();
            for c in msg.cmsgs()? {
                if let ControlMessageOwned::ScmRights(v) = c {
                    // SAFETY: fds the kernel just installed for us.
                    fds.extend(v.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
            Ok(fds.into_iter().next())
        });
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            r => return r,
        }
    }
}

async fn handle(engine: Arc<Engine>, req: Request<Incoming>) -> Resp {
    match route(engine, req).await {
        Ok(r) => r,
        Err(e) => http::error_response(&e),
    }
}

/// Splits `/v1.45/containers/json` into the version and the rest.
fn split_version(path: &str) -> Result<(Option<u32>, String)> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((None, path.to_string()));
    };
    let (ver, tail) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    // dockerd's router takes any `v<digits>.<digits>` prefix as a version
    // (so `/v9.99/` is "too new", not an unknown path).
    fn number(s: &str) -> Option<u32> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    }
    let Some((major, minor)) = ver
        .split_once('.')
        .and_then(|(a, b)| Some((number(a)?, number(b)?)))
    else {
        return Ok((None, path.to_string()));
    };
    if (major, minor) < (1, MIN_API_MINOR) {
        return Err(ApiError::BadRequest(format!(
            "client version {ver} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    if (major, minor) > (1, API_MINOR) {
        return Err(ApiError::BadRequest(format!(
            "client version {ver} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    Ok((Some(minor), tail.to_string()))
}

fn decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

async fn route(engine: Arc<Engine>, req: Request<Incoming>) -> Result<Resp> {
    let (version, path) = split_version(req.uri().path())?;
    let path = decode(&path);
    let m = req.method().clone();
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    use routes::volumes as v;
    use routes::{
        build as b, container_ops as o, containers as c, filesystem as f, images as i, system as s,
    };
    match (&m, segs.as_slice()) {
        (&Method::GET | &Method::HEAD, ["_ping"]) => Ok(s::ping(&m)),
        (&Method::GET, ["version"]) => s::version().await,
        (&Method::GET, ["info"]) => s::info(engine).await,
        (&Method::POST, ["build"]) => b::build(engine, req).await,
        (&Method::POST, ["build", "prune"]) => b::prune(engine, req).await,
        (&Method::GET, ["images", "json"]) => i::list(engine, req).await,
        (&Method::GET, ["images", "search"]) => i::search().await,
        (&Method::GET, ["images", "get"]) => {
            let names = i::names_query(&req);
            i::get(engine, names).await
        }
        (&Method::POST, ["images", "load"]) => i::load(engine, req).await,
        (&Method::POST, ["auth"]) => i::auth(engine, req).await,
        (&Method::GET, ["images", name @ .., "get"]) if !name.is_empty() => {
            i::get(engine, vec![name.join("/")]).await
        }
        (&Method::GET, ["images", name @ .., "history"]) if !name.is_empty() => {
            i::history(engine, name.join("/")).await
        }
        (&Method::POST, ["images", name @ .., "push"]) if !name.is_empty() => {
            i::push(engine, name.join("/"), req).await
        }
        (&Method::POST, ["images", "create"]) => i::create(engine, req).await,
        (&Method::GET, ["images", name @ .., "json"]) if !name.is_empty() => {
            i::inspect(engine, name.join("/")).await
        }
        (&Method::POST, ["images", name @ .., "tag"]) if !name.is_empty() => {
            i::tag(engine, name.join("/"), req).await
        }
        (&Method::DELETE, ["images", name @ ..]) if !name.is_empty() => {
            i::remove(engine, name.join("/"), req).await
        }
        (&Method::GET, ["containers", "json"]) => c::list(engine, req).await,
        (&Method::POST, ["containers", "create"]) => c::create(engine, req).await,
        (&Method::GET, ["containers", id, "json"]) => c::inspect(engine, id.to_string()).await,
        (&Method::GET, ["containers", id, "logs"]) => c::logs(engine, id.to_string(), req).await,
        (&Method::GET, ["containers", id, "top"]) => o::top(engine, id.to_string(), req).await,
        (&Method::GET, ["containers", id, "stats"]) => o::stats(engine, id.to_string(), req).await,
        (&Method::GET, ["events"]) => o::events(engine, req).await,
        (&Method::GET, ["containers", id, "changes"]) => f::changes(engine, id.to_string()).await,
        (&Method::GET, ["containers", id, "export"]) => f::export(engine, id.to_string()).await,
        (&Method::POST, ["commit"]) => f::commit(engine, req).await,
        (&Method::POST, ["containers", "prune"]) => o::container_prune(engine, req).await,
        (&Method::POST, ["images", "prune"]) => o::image_prune(engine, req).await,
        (&Method::GET, ["system", "df"]) => o::system_df(engine).await,
        (&Method::GET, ["containers", id, "archive"]) => {
            f::archive_get(engine, id.to_string(), req, false).await
        }
        (&Method::HEAD, ["containers", id, "archive"]) => {
            f::archive_get(engine, id.to_string(), req, true).await
        }
        (&Method::PUT, ["containers", id, "archive"]) => {
            f::archive_put(engine, id.to_string(), req).await
        }
        (&Method::POST, ["containers", id, op]) => {
            let id = id.to_string();
            match *op {
                "start" => c::start(engine, id).await,
                "stop" => c::stop(engine, id, req, false).await,
                "restart" => c::stop(engine, id, req, true).await,
                "kill" => c::kill(engine, id, req).await,
                "wait" => c::wait(engine, id, req).await,
                "attach" => c::attach(engine, id, req).await,
                "resize" => c::resize(engine, id, None, req).await,
                "exec" => c::exec_create(engine, id, req).await,
                "pause" => o::pause(engine, id, true).await,
                "unpause" => o::pause(engine, id, false).await,
                "rename" => o::rename(engine, id, req).await,
                "update" => o::update(engine, id, req).await,
                _ => Err(ApiError::NoRoute),
            }
        }
        (&Method::DELETE, ["containers", id]) => c::remove(engine, id.to_string(), req).await,
        (&Method::POST, ["exec", id, "start"]) => c::exec_start(engine, id.to_string(), req).await,
        (&Method::POST, ["exec", id, "resize"]) => {
            c::exec_resize(engine, id.to_string(), req).await
        }
        (&Method::GET, ["exec", id, "json"]) => c::exec_inspect(engine, id.to_string()).await,
        (&Method::GET, ["volumes"]) => v::list(engine, req).await,
        (&Method::POST, ["volumes", "create"]) => v::create(engine, req).await,
        (&Method::POST, ["volumes", "prune"]) => v::prune(engine, version, req).await,
        (&Method::GET, ["volumes", name]) => v::inspect(engine, name.to_string()).await,
        (&Method::DELETE, ["volumes", name]) => v::remove(engine, name.to_string(), req).await,
        (_, ["networks", ..]) => networks(engine, &m, &segs, req).await,
        _ => Err(ApiError::NoRoute),
    }
}

async fn networks(
    engine: Arc<Engine>,
    m: &Method,
    segs: &[&str],
    req: Request<Incoming>,
) -> Result<Resp> {
    use routes::networks as n;
    match (m, segs) {
        (&Method::GET, ["networks"]) => n::list(engine, req).await,
        (&Method::POST, ["networks", "create"]) => n::create(engine, req).await,
        (&Method::POST, ["networks", "prune"]) => n::prune(engine, req).await,
        (&Method::GET, ["networks", id]) => n::inspect(engine, id.to_string()).await,
        (&Method::DELETE, ["networks", id]) => n::remove(engine, id.to_string()).await,
        (&Method::POST, ["networks", id, "connect"]) => {
            n::connect(engine, id.to_string(), req).await
        }
        (&Method::POST, ["networks", id, "disconnect"]) => {
            n::disconnect(engine, id.to_string(), req).await
        }
        _ => Err(ApiError::NoRoute),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            split_version("/v1.45/info").unwrap(),
            (Some(45), "/info".into())
        );
        assert_eq!(split_version("/info").unwrap(), (None, "/info".into()));
        assert_eq!(split_version("/_ping").unwrap(), (None, "/_ping".into()));
        assert_eq!(
            split_version("/volumes").unwrap(),
            (None, "/volumes".into())
        );
        assert_eq!(
            split_version("/v1.12/info").unwrap_err().status().as_u16(),
            400
        );
        assert_eq!(
            split_version("/v1.99/info").unwrap_err().status().as_u16(),
            400
        );
        for (path, word) in [
            (
                "/v9.99/info",
                "9.99 is too new. Maximum supported API version is 1.45",
            ),
            ("/v2.0/info", "2.0 is too new"),
            (
                "/v1.0/info",
                "1.0 is too old. Minimum supported API version is 1.24",
            ),
            ("/v0.99/_ping", "0.99 is too old"),
        ] {
            let e = split_version(path).unwrap_err();
            assert_eq!(e.status().as_u16(), 400, "{path}");
            assert!(e.to_string().contains(word), "{path}: {e}");
        }
        // Not a version: left to the router (404).
        assert_eq!(split_version("/v1x/info").unwrap().0, None);
        assert_eq!(split_version("/v1./info").unwrap().0, None);
        assert_eq!(decode("localhost%3A5000/busybox"), "localhost:5000/busybox");
    }
}
