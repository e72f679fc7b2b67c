//! A small typed Docker Engine API client: HTTP/1.1 over berthd's unix
//! socket (hyper), JSON via serde, streamed bodies, hijacked connections.
//! The CLI is synchronous; each call runs on a current-thread runtime.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HOST, UPGRADE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::net::UnixStream;

/// The API version the CLI speaks (berthd's current one).
pub const API_VERSION: &str = "1.45";
pub const DEFAULT_SOCKET: &str = "/run/berth/berth.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The daemon answered with an error status; `message` is its text.
    #[error("Error response from daemon: {message}")]
    Api { status: u16, message: String },
    #[error(
        "Cannot connect to the Berth daemon at unix://{}: {source}. Is berthd running?",
        socket.display()
    )]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

pub type ReqBody = BoxBody<Bytes, std::io::Error>;

pub fn empty_body() -> ReqBody {
    Full::new(Bytes::new()).map_err(|e| match e {}).boxed()
}

pub fn json_body(v: &Value) -> ReqBody {
    Full::new(Bytes::from(v.to_string()))
        .map_err(|e| match e {})
        .boxed()
}

/// A body streamed from a reader on a blocking thread (stdin, a tar file).
pub fn reader_body(mut r: impl std::io::Read + Send + 'static) -> ReqBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(8);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|r| (r.map(Frame::data), rx))
    });
    StreamBody::new(stream).boxed()
}

/// The daemon socket asked for: `-H`, then `BERTH_HOST`, then
/// `DOCKER_HOST` (when it is a unix socket); None when nothing names one.
pub fn chosen_socket(host: Option<&str>) -> std::result::Result<Option<PathBuf>, String> {
    let from_env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let chosen = match host {
        Some(h) => Some(h.to_string()),
        None => from_env("BERTH_HOST").or_else(|| {
            from_env("DOCKER_HOST").filter(|h| h.starts_with("unix://") || h.starts_with('/'))
        }),
    };
    match chosen {
        None => Ok(None),
        Some(h) => {
            if let Some(p) = h.strip_prefix("unix://") {
                Ok(Some(PathBuf::from(p)))
            } else if h.starts_with('/') {
                Ok(Some(PathBuf::from(h)))
            } else {
                Err(format!(
                    "invalid host {h:?}: only unix:// sockets are supported"
                ))
            }
        }
    }
}

/// The socket of the daemon for a non-default `--root`, so that
/// `berth --root X …` reaches (or starts) the daemon of that store and
/// never another store's: `/run/berth-<hash of X>/berth.sock`.
pub fn socket_for_root(root: &Path) -> PathBuf {
    let canon = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    // FNV-1a: stable across builds (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in canon.as_os_str().as_encoded_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    PathBuf::from(format!("/run/berth-{:08x}/berth.sock", h as u32))
}

/// How to start a daemon when none answers.
#[derive(Clone, Debug)]
pub struct AutoStart {
    pub root: PathBuf,
    pub exec_root: PathBuf,
}

pub struct Client {
    rt: tokio::runtime::Runtime,
    socket: PathBuf,
}

/// A hijacked connection: the raw socket plus what hyper had read past the
/// response head.
pub struct Hijacked {
    pub stream: std::os::unix::net::UnixStream,
    pub buffered: Bytes,
    /// `application/vnd.docker.raw-stream` (tty) or the multiplexed kind.
    pub raw: bool,
}

impl Client {
    /// Connects (lazily) to `socket`; when `auto` is given and nothing
    /// answers there, starts berthd first.
    pub fn new(socket: PathBuf, auto: Option<AutoStart>) -> Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let c = Client { rt, socket };
        if let Err(e) = c.ping() {
            match (e, auto) {
                (ClientError::Connect { .. }, Some(a)) => c.start_daemon(&a)?,
                (e, _) => return Err(e),
            }
        }
        Ok(c)
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub fn ping(&self) -> Result<()> {
        let resp = self.request(Method::GET, "/_ping", vec![], empty_body())?;
        self.drain(resp)
    }

    /// berthd next to this binary, detached in its own session, logging to
    /// `<exec-root>/berthd.log`; returns once `/_ping` answers.
    fn start_daemon(&self, a: &AutoStart) -> Result<()> {
        let berthd = std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.join("berthd")))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("berthd"));
        std::fs::create_dir_all(&a.exec_root)?;
        let log_path = a.exec_root.join("berthd.log");
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&log_path)?;
        let mut cmd = Command::new(&berthd);
        cmd.arg("--host")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--root")
            .arg(&a.root)
            .arg("--exec-root")
            .arg(&a.exec_root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: setsid and signal are async-signal-safe. The daemon must
        // not die with this terminal's session or get its signals, nor
        // inherit ignored SIGINT/SIGQUIT (a background shell job has them)
        // and pass that on to every container.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::setsid();
                for sig in [libc::SIGINT, libc::SIGQUIT, libc::SIGHUP, libc::SIGPIPE] {
                    libc::signal(sig, libc::SIG_DFL);
                }
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .map_err(|e| ClientError::Protocol(format!("starting {}: {e}", berthd.display())))?;
        eprintln!(
            "Started berthd (pid {}, log {})",
            child.id(),
            log_path.display()
        );
        let end = Instant::now() + Duration::from_secs(30);
        let mut ours = Some(child);
        loop {
            if self.ping().is_ok() {
                // Reap it in the background should it ever exit while we run.
                if let Some(mut child) = ours {
                    std::thread::spawn(move || child.wait());
                }
                return Ok(());
            }
            if let Some(Ok(Some(st))) = ours.as_mut().map(|c| c.try_wait()) {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = tail.lines().rev().take(5).collect();
                // Another client started a daemon on this store a moment
                // before us: ours stepped back, so wait for that one.
                if tail.iter().any(|l| l.contains("is using the store at")) {
                    ours = None;
                    continue;
                }
                return Err(ClientError::Protocol(format!(
                    "berthd exited ({st}) before answering; {}:\n{}",
                    log_path.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )));
            }
            if Instant::now() > end {
                return Err(ClientError::Protocol(format!(
                    "berthd did not answer on {} within 30s; see {}",
                    self.socket.display(),
                    log_path.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    fn uri(path: &str) -> String {
        if path == "/_ping" {
            path.to_string()
        } else {
            format!("/v{API_VERSION}{path}")
        }
    }

    async fn send(
        socket: &Path,
        req: Request<ReqBody>,
        upgrade: bool,
    ) -> Result<Response<Incoming>> {
        let stream = UnixStream::connect(socket)
            .await
            .map_err(|source| ClientError::Connect {
                socket: socket.to_path_buf(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| ClientError::Protocol(format!("handshake: {e}")))?;
        if upgrade {
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
            });
        } else {
            tokio::spawn(async move {
                let _ = conn.await;
            });
        }
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Protocol(format!("request: {e}")))
    }

    fn build(
        method: Method,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: ReqBody,
    ) -> Result<Request<ReqBody>> {
        let mut b = Request::builder()
            .method(method)
            .uri(Self::uri(path))
            .header(HOST, "berth");
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(body)
            .map_err(|e| ClientError::Protocol(format!("building request {path}: {e}")))
    }

    /// Sends a request; an error status becomes [`ClientError::Api`].
    pub fn request(
        &self,
        method: Method,
        path: &str,
        headers: Vec<(&'static str, String)>,
        body: ReqBody,
    ) -> Result<Response<Incoming>> {
        let req = Self::build(method, path, headers, body)?;
        let resp = self.rt.block_on(Self::send(&self.socket, req, false))?;
        self.check(resp)
    }

    fn check(&self, resp: Response<Incoming>) -> Result<Response<Incoming>> {
        if resp.status().is_success() || resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(resp);
        }
        let status = resp.status().as_u16();
        let body = self.bytes(resp)?;
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(String::from))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        Err(ClientError::Api { status, message })
    }

    pub fn bytes(&self, resp: Response<Incoming>) -> Result<Bytes> {
        self.rt.block_on(async {
            Ok(resp
                .into_body()
                .collect()
                .await
                .map_err(|e| ClientError::Protocol(format!("reading response: {e}")))?
                .to_bytes())
        })
    }

    fn drain(&self, resp: Response<Incoming>) -> Result<()> {
        self.bytes(resp).map(|_| ())
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.get_with(Method::GET, path)
    }

    /// A body-less request whose JSON answer is decoded (`DELETE /images`).
    pub fn get_with<T: DeserializeOwned>(&self, method: Method, path: &str) -> Result<T> {
        let resp = self.request(method, path, vec![], empty_body())?;
        self.decode(resp)
    }

    pub fn post<T: DeserializeOwned>(&self, path: &str, body: Option<&Value>) -> Result<T> {
        let (headers, body) = match body {
            Some(v) => (
                vec![(CONTENT_TYPE.as_str(), "application/json".to_string())],
                json_body(v),
            ),
            None => (vec![], empty_body()),
        };
        let resp = self.request(Method::POST, path, headers, body)?;
        self.decode(resp)
    }

    /// A request whose answer carries no content the caller needs.
    pub fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<()> {
        let (headers, body) = match body {
            Some(v) => (
                vec![(CONTENT_TYPE.as_str(), "application/json".to_string())],
                json_body(v),
            ),
            None => (vec![], empty_body()),
        };
        let resp = self.request(method, path, headers, body)?;
        self.drain(resp)
    }

    fn decode<T: DeserializeOwned>(&self, resp: Response<Incoming>) -> Result<T> {
        let body = self.bytes(resp)?;
        let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &body
        };
        serde_json::from_slice(body)
            .map_err(|e| ClientError::Protocol(format!("decoding the daemon's answer: {e}")))
    }

    /// Calls `f` with each body chunk as it arrives; `f` returning false
    /// stops reading.
    pub fn each_chunk(
        &self,
        resp: Response<Incoming>,
        mut f: impl FnMut(&[u8]) -> std::io::Result<bool>,
    ) -> Result<()> {
        self.rt.block_on(async {
            let mut body = resp.into_body();
            while let Some(frame) = body.frame().await {
                let frame =
                    frame.map_err(|e| ClientError::Protocol(format!("reading stream: {e}")))?;
                if let Some(d) = frame.data_ref()
                    && !f(d)?
                {
                    break;
                }
            }
            Ok(())
        })
    }

    /// Upgrades the connection (attach, exec start) and hands back the raw
    /// socket, made blocking again, for the caller's own threads.
    pub fn hijack(&self, path: &str, body: Option<&Value>) -> Result<Hijacked> {
        let mut headers = vec![
            (CONNECTION.as_str(), "Upgrade".to_string()),
            (UPGRADE.as_str(), "tcp".to_string()),
        ];
        let body = match body {
            Some(v) => {
                headers.push((CONTENT_TYPE.as_str(), "application/json".to_string()));
                json_body(v)
            }
            None => empty_body(),
        };
        let req = Self::build(Method::POST, path, headers, body)?;
        self.rt.block_on(async {
            let resp = Self::send(&self.socket, req, true).await?;
            if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
                let resp = if resp.status().is_success() {
                    return Err(ClientError::Protocol(format!(
                        "the daemon did not upgrade the connection for {path} ({})",
                        resp.status()
                    )));
                } else {
                    resp
                };
                let status = resp.status().as_u16();
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let message = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(String::from))
                    .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
                return Err(ClientError::Api { status, message });
            }
            let raw = resp
                .headers()
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == b"application/vnd.docker.raw-stream");
            let up = hyper::upgrade::on(resp)
                .await
                .map_err(|e| ClientError::Protocol(format!("upgrade: {e}")))?;
            let parts = up
                .downcast::<TokioIo<UnixStream>>()
                .map_err(|_| ClientError::Protocol("upgrade: unexpected transport".into()))?;
            let stream = parts.io.into_inner().into_std()?;
            stream.set_nonblocking(false)?;
            Ok(Hijacked {
                stream,
                buffered: parts.read_buf,
                raw,
            })
        })
    }
}

/// `?a=b&c=d` from pairs, skipping empty values; percent-encoded.
pub fn query(pairs: &[(&str, String)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (k, v) in pairs {
        if !v.is_empty() {
            s.append_pair(k, v);
            any = true;
        }
    }
    if any {
        format!("?{}", s.finish())
    } else {
        String::new()
    }
}

/// A path segment (image names hold `/` and `:`), percent-encoded.
pub fn seg(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace("%2F", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            chosen_socket(Some("unix:///tmp/x.sock")).unwrap(),
            Some(PathBuf::from("/tmp/x.sock"))
        );
        assert_eq!(
            chosen_socket(Some("/tmp/y.sock")).unwrap(),
            Some(PathBuf::from("/tmp/y.sock"))
        );
        assert!(
            chosen_socket(Some("tcp://1.2.3.4:2375"))
                .unwrap_err()
                .contains("only unix://")
        );
        let a = socket_for_root(Path::new("/nonexistent/a"));
        assert_eq!(a, socket_for_root(Path::new("/nonexistent/a")));
        assert_ne!(a, socket_for_root(Path::new("/nonexistent/b")));
        assert!(a.starts_with("/run") && a.ends_with("berth.sock"), "{a:?}");
    }

    #[test]
    fn queries() {
        assert_eq!(query(&[("a", "".into())]), "");
        assert_eq!(
            query(&[
                ("fromImage", "localhost:5000/busybox".into()),
                ("tag", "1 2".into())
            ]),
            "?fromImage=localhost%3A5000%2Fbusybox&tag=1+2"
        );
        assert_eq!(seg("localhost:5000/busybox"), "localhost%3A5000/busybox");
    }
}
