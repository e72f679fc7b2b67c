//! The `registry` command line, shared by `berth registry ...` and the
//! `berth-registry` binary.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Subcommand, Debug)]
pub enum RegistryCmd {
    /// Serve the OCI distribution API.
    Serve(ServeArgs),
    /// Delete unreferenced blobs and abandoned uploads (safe while serving).
    Gc(GcArgs),
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Listen address (default 127.0.0.1:5001, or the config's).
    #[arg(long)]
    pub addr: Option<String>,
    /// Registry data directory (overrides the config's).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// JSON config file (auth, TLS, GC; see the crate docs).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct GcArgs {
    #[arg(long)]
    pub root: Option<PathBuf>,
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Keep unreferenced blobs younger than this many seconds.
    #[arg(long)]
    pub grace_secs: Option<u64>,
    /// Remove uploads idle for this many seconds.
    #[arg(long)]
    pub upload_max_age_secs: Option<u64>,
}

fn load(config: Option<&PathBuf>, root: Option<PathBuf>) -> Result<(Config, PathBuf)> {
    let cfg = match config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let root = root
        .or_else(|| cfg.root.clone())
        .ok_or_else(|| Error::Config("--root (or \"root\" in the config) is required".into()))?;
    Ok((cfg, root))
}

/// Runs a registry subcommand to completion (`serve` never returns on success).
pub fn run(cmd: RegistryCmd) -> Result<()> {
    match cmd {
        RegistryCmd::Serve(a) => {
            let (mut cfg, root) = load(a.config.as_ref(), a.root)?;
            if let Some(addr) = a.addr {
                cfg.addr = addr;
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::serve(cfg, root))
        }
        RegistryCmd::Gc(a) => {
            let (mut cfg, root) = load(a.config.as_ref(), a.root)?;
            if let Some(g) = a.grace_secs {
                cfg.gc.grace_secs = g;
            }
            if let Some(u) = a.upload_max_age_secs {
                cfg.gc.upload_max_age_secs = u;
            }
            let r = crate::gc(cfg, root)?;
            println!(
                "marked {} blobs; deleted {} blobs ({} bytes), {} stale links, {} abandoned uploads",
                r.marked, r.blobs_deleted, r.bytes_freed, r.links_removed, r.uploads_purged
            );
            Ok(())
        }
    }
}
