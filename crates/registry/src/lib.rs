//! `berth registry serve`: an OCI distribution-spec v1.1 registry on Berth's
//! content store. One copy of each blob however many repositories link it;
//! uploads streamed with bounded memory; GC that runs while serving; none,
//! htpasswd or token auth; optional TLS.

pub mod auth;
pub mod cli;
pub mod config;
pub mod error;
pub mod gc;
mod handlers;
pub mod manifest;
pub mod route;
pub mod server;
pub mod store;
pub mod upload;

use std::path::PathBuf;

pub use config::Config;
pub use error::{Error, Result};
pub use gc::GcReport;
pub use server::{App, Server};

/// Binds and serves forever.
pub async fn serve(cfg: Config, root: PathBuf) -> Result<()> {
    let server = Server::bind(cfg, root).await?;
    eprintln!("berth registry listening on {}", server.local_addr());
    server.run().await
}

/// One offline (or concurrent: it coordinates through `gc.lock`) GC pass.
pub fn gc(cfg: Config, root: PathBuf) -> Result<GcReport> {
    App::open(cfg, root)?.gc()
}
