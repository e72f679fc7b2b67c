//! Listener, optional TLS, the hyper connection loop and the online GC task.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::auth::Auth;
use crate::config::{Config, TlsConfig};
use crate::error::{Error, IoContext, Result};
use crate::gc;
use crate::handlers;
use crate::store::Store;
use crate::upload::Uploads;

/// Everything a request handler needs.
pub struct App {
    pub store: Store,
    pub uploads: Uploads,
    pub auth: Auth,
    pub cfg: Config,
    pub tls: bool,
}

impl App {
    pub fn open(cfg: Config, root: PathBuf) -> Result<App> {
        let store = Store::open(&root)?;
        Ok(App {
            uploads: Uploads::new(store.uploads_dir()),
            auth: Auth::new(cfg.auth.clone())?,
            tls: cfg.tls.is_some(),
            store,
            cfg,
        })
    }

    /// One GC pass (blocking; call from a blocking context).
    pub fn gc(&self) -> Result<gc::GcReport> {
        gc::collect(&self.store, &self.uploads, &self.cfg.gc)
    }
}

pub struct Server {
    pub app: Arc<App>,
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
}

impl Server {
    /// Opens the store and binds `cfg.addr` (port 0 picks one; see [`Server::local_addr`]).
    pub async fn bind(cfg: Config, root: PathBuf) -> Result<Server> {
        let tls = cfg.tls.as_ref().map(acceptor).transpose()?;
        let listener = TcpListener::bind(&cfg.addr).await.ctx("bind", &cfg.addr)?;
        let app = Arc::new(App::open(cfg, root)?);
        Ok(Server { app, listener, tls })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("bound listener")
    }

    /// Serves until the task is dropped.
    pub async fn run(self) -> Result<()> {
        let interval = self.app.cfg.gc.interval_secs;
        if interval > 0 {
            let app = self.app.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(interval));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let app = app.clone();
                    match tokio::task::spawn_blocking(move || app.gc()).await {
                        Ok(Ok(r)) => eprintln!("registry gc: {r:?}"),
                        Ok(Err(e)) => eprintln!("registry gc failed: {e}"),
                        Err(e) => eprintln!("registry gc panicked: {e}"),
                    }
                }
            });
        }
        loop {
            let (stream, _) = match self.listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    eprintln!("registry accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = self.app.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let app = app.clone();
                    async move { Ok::<_, Infallible>(handlers::handle(app, req).await) }
                });
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(60));
                // Connection errors (client went away) are the client's business.
                let _ = match tls {
                    Some(acc) => match acc.accept(stream).await {
                        Ok(s) => builder.serve_connection(TokioIo::new(s), svc).await,
                        Err(_) => return,
                    },
                    None => builder.serve_connection(TokioIo::new(stream), svc).await,
                };
            });
        }
    }
}

fn acceptor(t: &TlsConfig) -> Result<TlsAcceptor> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, e: &dyn std::fmt::Display| Error::Config(format!("tls {what}: {e}"));
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert)
        .map_err(|e| bad("cert", &e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("cert", &e))?;
    let key = PrivateKeyDer::from_pem_file(&t.key).map_err(|e| bad("key", &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("versions", &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad("cert/key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(cfg)))
}
