//! `berth`: the docker-compatible CLI. Until berthd exists the image commands
//! run in-process on the store under `--root`.

mod archive;
mod build_cmd;
mod format;
mod login;
mod progress;
mod system;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use berth_distribution::{ClientOptions, PullOptions, PushOptions, RegistryClient};
use berth_image::formats::Platform;
use berth_image::{ImageStore, Reference, Removed};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth container engine")]
struct Cli {
    /// Root of Berth's persistent state.
    #[arg(long, global = true, default_value = "/var/lib/berth")]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// Upload an image to a registry.
    Push(PushArgs),
    /// List images.
    Images(ImagesArgs),
    /// Create a tag TARGET that refers to SOURCE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Show the history of an image.
    History(system::HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(archive::SaveArgs),
    /// Load images from a tar archive or STDIN.
    Load(archive::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(archive::ImportArgs),
    /// Log in to a registry.
    Login(login::LoginArgs),
    /// Log out from a registry.
    Logout { server: Option<String> },
    /// Manage Berth.
    #[command(subcommand)]
    System(system::SystemCmd),
    /// Run an OCI registry (serve, gc) on its own --root.
    #[command(subcommand)]
    Registry(berth_registry::cli::RegistryCmd),
    /// Build an image from a Dockerfile.
    Build(build_cmd::BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(build_cmd::BuilderCmd),
}

#[derive(clap::Args)]
struct PullArgs {
    name: String,
    /// os/arch[/variant] to select from a multi-platform image.
    #[arg(long)]
    platform: Option<String>,
    /// Use plain HTTP (automatic for localhost).
    #[arg(long)]
    insecure: bool,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct PushArgs {
    name: String,
    #[arg(long)]
    insecure: bool,
    /// Upload blobs in chunks of this many bytes instead of one request.
    #[arg(long)]
    chunk_size: Option<usize>,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
struct ImagesArgs {
    #[arg(short, long)]
    quiet: bool,
    #[arg(long)]
    digests: bool,
}

#[derive(clap::Args)]
struct RmiArgs {
    #[arg(required = true)]
    names: Vec<String>,
    #[arg(short, long)]
    force: bool,
}

#[derive(Subcommand)]
enum ImageCmd {
    Pull(PullArgs),
    Push(PushArgs),
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Display detailed information on one or more images (JSON).
    Inspect {
        #[arg(required = true)]
        names: Vec<String>,
    },
    Tag {
        source: String,
        target: String,
    },
    #[command(alias = "remove")]
    Rm(RmiArgs),
    /// Mount the image's layers read-only at DIR.
    Mount {
        name: String,
        dir: PathBuf,
    },
    /// Unmount DIR (a mount or a bundle's rootfs).
    Umount {
        dir: PathBuf,
    },
    /// Make an OCI runtime bundle in DIR (rootfs overlay + config.json).
    Bundle {
        name: String,
        dir: PathBuf,
    },
    History(system::HistoryArgs),
    /// Remove unused images.
    Prune(system::PruneArgs),
    Save(archive::SaveArgs),
    Load(archive::LoadArgs),
    Import(archive::ImportArgs),
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("Error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Login(a) => return login::login(a),
        Cmd::Logout { server } => return login::logout(server),
        Cmd::Registry(c) => return Ok(berth_registry::cli::run(c)?),
        _ => {}
    }
    let store = Arc::new(
        ImageStore::open(&cli.root)
            .with_context(|| format!("opening store {}", cli.root.display()))?,
    );
    // Commands that write to the store first clear what killed commands
    // left behind; `system check` must see the store as it is.
    if !matches!(cli.cmd, Cmd::System(_)) {
        store.cleanup().context("cleaning up leftovers")?;
    }
    match cli.cmd {
        Cmd::Login(_) | Cmd::Logout { .. } | Cmd::Registry(_) => unreachable!("handled above"),
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => system::history(&store, a),
        Cmd::Image(ImageCmd::Prune(a)) => system::prune(&store, a),
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => archive::save(&store, a),
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => archive::load(&store, a),
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => archive::import(&store, a),
        Cmd::System(c) => system::run(&store, c),
        Cmd::Build(a) => build_cmd::build(&store, a),
        Cmd::Builder(c) => build_cmd::builder(&store, c),
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => pull(store, a),
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => push(store, a),
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => {
            let mut imgs = store.list()?;
            imgs.sort_by(|a, b| b.created.cmp(&a.created));
            print!("{}", format::images_table(&imgs, a.quiet, a.digests));
            Ok(())
        }
        Cmd::Tag { source, target } | Cmd::Image(ImageCmd::Tag { source, target }) => {
            Ok(store.tag(&source, &target)?)
        }
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => rmi(&store, a),
        Cmd::Image(ImageCmd::Inspect { names }) => {
            let mut out = Vec::new();
            for n in names {
                let img = store.resolve(&n)?;
                out.push(format::inspect(&store, &img)?);
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(())
        }
        Cmd::Image(ImageCmd::Mount { name, dir }) => {
            let img = store.resolve(&name)?;
            ensure_dir(&dir)?;
            berth_image::rootfs::mount_image(&store, &img, &dir)?;
            println!("{}", dir.display());
            Ok(())
        }
        Cmd::Image(ImageCmd::Umount { dir }) => {
            Ok(berth_image::rootfs::unmount_image(&store, &dir)?)
        }
        Cmd::Image(ImageCmd::Bundle { name, dir }) => {
            let img = store.resolve(&name)?;
            ensure_dir(&dir)?;
            berth_image::rootfs::make_bundle(&store, &img, &dir)?;
            println!("{}", dir.display());
            Ok(())
        }
    }
}

fn ensure_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn pull(store: Arc<ImageStore>, a: PullArgs) -> Result<()> {
    let reference: Reference = a.name.parse()?;
    let mut opts = PullOptions::default();
    if let Some(p) = &a.platform {
        opts.platform = p.parse::<Platform>()?;
    }
    let client = Arc::new(RegistryClient::new(
        &reference.domain,
        ClientOptions {
            insecure: a.insecure,
            credentials: None,
        },
    )?);
    let progress: Arc<dyn berth_distribution::Progress> = progress::make(a.quiet).into();
    let rec = runtime()?.block_on(berth_distribution::pull(
        store, client, &reference, &opts, progress,
    ))?;
    if a.quiet {
        println!("{reference}");
    } else {
        eprintln!(
            "Status: Downloaded image for {reference} ({})",
            rec.id.short()
        );
        println!("{reference}");
    }
    Ok(())
}

fn push(store: Arc<ImageStore>, a: PushArgs) -> Result<()> {
    let reference: Reference = a.name.parse()?;
    if reference.digest.is_some() {
        bail!("push takes a tag, not a digest");
    }
    let rec = store.resolve(&a.name)?;
    let client = Arc::new(RegistryClient::new(
        &reference.domain,
        ClientOptions {
            insecure: a.insecure,
            credentials: None,
        },
    )?);
    let opts = PushOptions {
        chunk_size: a.chunk_size,
        ..PushOptions::default()
    };
    let progress: Arc<dyn berth_distribution::Progress> = progress::make(a.quiet).into();
    let digest = runtime()?.block_on(berth_distribution::push(
        store, client, &rec, &reference, &opts, progress,
    ))?;
    if a.quiet {
        println!("{digest}");
    }
    Ok(())
}

fn rmi(store: &ImageStore, a: RmiArgs) -> Result<()> {
    let mut failed = false;
    for n in a.names {
        match store.remove(&n, a.force) {
            Ok(actions) => {
                for act in actions {
                    match act {
                        Removed::Untagged(t) => println!("Untagged: {t}"),
                        Removed::Deleted(d) => println!("Deleted: {d}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if failed {
        bail!("some images could not be removed");
    }
    Ok(())
}
