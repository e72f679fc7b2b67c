//! `berth build` and `berth builder prune`: the builder library run
//! in-process on the store (until berthd exists).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use berth_builder::build::{self, BuildOptions, DockerfileSource};
use berth_image::ImageStore;

#[derive(clap::Args)]
pub struct BuildArgs {
    /// Context directory, or `-` (a tar, or just a Dockerfile, on stdin).
    pub context: String,
    /// Name and optionally tag (name:tag); repeatable.
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// Dockerfile path (relative to the context), or `-` for stdin.
    #[arg(short, long)]
    pub file: Option<String>,
    /// Build-time variable K=V (or K to take it from the environment).
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Build this stage (and what it needs) only.
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long)]
    pub no_cache: bool,
    /// Always pull base images, even when present locally.
    #[arg(long)]
    pub pull: bool,
    /// Image label K=V; repeatable.
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Write the image ID to this file.
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Progress output: plain or tty (both print step lines for now).
    #[arg(long, default_value = "plain", value_parser = ["plain", "tty", "auto"])]
    pub progress: String,
    /// RUN network: default (none but loopback) or host.
    #[arg(long, default_value = "default", value_parser = ["default", "none", "host"])]
    pub network: String,
    /// Print only the image ID.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(clap::Subcommand)]
pub enum BuilderCmd {
    /// Remove the build cache.
    Prune {
        /// Don't ask for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Accepted for docker compatibility (all cache is removed).
        #[arg(short, long)]
        all: bool,
    },
}

fn kv(list: &[String], what: &str, from_env: bool) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for s in list {
        match s.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env && !s.is_empty() => {
                if let Ok(v) = std::env::var(s) {
                    out.insert(s.clone(), v);
                }
            }
            _ => bail!("{what} {s:?}: expected KEY=VALUE"),
        }
    }
    Ok(out)
}

pub fn build(store: &Arc<ImageStore>, a: BuildArgs) -> Result<()> {
    let stdin_ctx = if a.context == "-" {
        Some(build::context::from_reader(
            store.root(),
            std::io::stdin().lock(),
        )?)
    } else {
        None
    };
    let context = match &stdin_ctx {
        Some(c) => c.dir.clone(),
        None => PathBuf::from(&a.context),
    };
    if !context.is_dir() {
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    let mut o = BuildOptions::new(&context);
    o.dockerfile = match (
        a.file.as_deref(),
        stdin_ctx.as_ref().and_then(|c| c.dockerfile.clone()),
    ) {
        (Some("-"), _) if stdin_ctx.is_some() => bail!("-f - and context - cannot both read stdin"),
        (Some("-"), _) => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin().lock(), &mut s)?;
            DockerfileSource::Text(s)
        }
        (_, Some(text)) => DockerfileSource::Text(text),
        (Some(f), None) => DockerfileSource::Path(f.into()),
        (None, None) => DockerfileSource::Path("Dockerfile".into()),
    };
    o.tags = a.tags;
    o.build_args = kv(&a.build_args, "--build-arg", true)?;
    o.labels = kv(&a.labels, "--label", false)?;
    o.target = a.target;
    o.no_cache = a.no_cache;
    o.pull = a.pull;
    o.host_network = a.network == "host";
    let sink: build::Sink = if a.quiet {
        Arc::new(std::sync::Mutex::new(std::io::sink()))
    } else {
        build::stderr_sink()
    };
    let r = build::build(store, &o, sink)?;
    if let Some(p) = &a.iidfile {
        std::fs::write(p, r.image_id.to_string())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    if a.quiet {
        println!("{}", r.image_id);
    }
    Ok(())
}

pub fn builder(store: &ImageStore, c: BuilderCmd) -> Result<()> {
    match c {
        BuilderCmd::Prune { force, all: _ } => {
            if !force {
                eprint!(
                    "WARNING! This will remove all build cache. Are you sure you want to continue? [y/N] "
                );
                let mut line = String::new();
                std::io::stdin().read_line(&mut line)?;
                if !matches!(line.trim(), "y" | "Y" | "yes") {
                    return Ok(());
                }
            }
            let n = berth_builder::build::Cache::open(store.root())?.prune()?;
            // Layers only the cache kept are unreferenced now.
            let gc = store.collect(None)?;
            println!("Deleted build cache objects: {}", n.len());
            println!("Total reclaimed space: {} bytes", gc.bytes);
            Ok(())
        }
    }
}
