//! `berth`: the docker-compatible CLI. It talks to berthd over the Docker
//! Engine API (starting one when none answers); only tools that make no
//! sense over the API run locally on `--root`: `registry serve|gc`,
//! `system check`, `image mount|umount|bundle`.

mod build_cmd;
mod client;
mod container_ops;
mod containers;
mod cp;
mod format;
mod images;
mod objects;
mod progress;
mod runopts;
mod session;
mod stdcopy;
mod system;
mod tmpl;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use berth_image::ImageStore;
use clap::{Parser, Subcommand};

use client::{AutoStart, Client, ClientError};

#[derive(Parser)]
#[command(name = "berth", version, about = "Berth container engine")]
struct Cli {
    /// Daemon socket to connect to (unix:///path); default $BERTH_HOST,
    /// then $DOCKER_HOST (if unix://), then unix:///run/berth/berth.sock.
    #[arg(short = 'H', long)]
    host: Option<String>,
    /// Root of Berth's persistent state ($BERTH_ROOT, default
    /// /var/lib/berth): local tools read it; without -H, another root is
    /// served by its own daemon (/run/berth-<hash>/berth.sock, started when
    /// needed); with -H, the daemon there must keep this root.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Sockets and shim state of a daemon this command starts
    /// ($BERTH_EXEC_ROOT, default: the socket's directory).
    #[arg(long)]
    exec_root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// Container commands, both at the top level and under `container`.
#[derive(Subcommand)]
enum ContainerCmd {
    /// Create and run a new container from an image.
    Run(containers::RunArgs),
    /// Create a new container.
    Create(runopts::CreateArgs),
    /// Start one or more stopped containers.
    Start(containers::StartArgs),
    /// Stop one or more running containers.
    Stop(containers::StopArgs),
    /// Restart one or more containers.
    Restart(containers::StopArgs),
    /// Kill one or more running containers.
    Kill(containers::KillArgs),
    /// Remove one or more containers.
    Rm(containers::RmArgs),
    /// Fetch the logs of a container.
    Logs(containers::LogsArgs),
    /// Execute a command in a running container.
    Exec(containers::ExecArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(containers::AttachArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(containers::Names),
    /// Display the running processes of a container.
    Top(container_ops::TopArgs),
    /// Display a live stream of container(s) resource usage statistics.
    Stats(container_ops::StatsArgs),
    /// Pause all processes within one or more containers.
    Pause(containers::Names),
    /// Unpause all processes within one or more containers.
    Unpause(containers::Names),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp::CpArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff { container: String },
    /// Create a new image from a container's changes.
    Commit(container_ops::CommitArgs),
    /// Export a container's filesystem as a tar archive.
    Export(container_ops::ExportArgs),
    /// Rename a container.
    Rename { container: String, new_name: String },
    /// Update configuration of one or more containers.
    Update(container_ops::UpdateArgs),
    /// List port mappings or a specific mapping for the container.
    Port {
        container: String,
        private_port: Option<String>,
    },
}

// Parsed once per process: the size of a variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum ContainerGroup {
    #[command(flatten)]
    C(ContainerCmd),
    /// List containers.
    #[command(aliases = ["ps", "list"])]
    Ls(containers::PsArgs),
    /// Display detailed information on one or more containers.
    Inspect(objects::InspectArgs),
    /// Remove all stopped containers.
    Prune(container_ops::PruneArgs),
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    #[command(flatten)]
    C(ContainerCmd),
    /// List containers.
    Ps(containers::PsArgs),
    /// Return low-level information on Docker objects.
    Inspect(objects::InspectArgs),
    /// List images.
    Images(images::ImagesArgs),
    /// Download an image from a registry.
    Pull(images::PullArgs),
    /// Upload an image to a registry.
    Push(images::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    Rmi(images::RmiArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default).
    Save(images::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images::ImportArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Log in to a registry (checked by the daemon, stored in ~/.docker/config.json).
    Login(images::LoginArgs),
    /// Log out from a registry (local).
    Logout { server: Option<String> },
    /// Display system-wide information.
    Info {
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Show the Berth version information.
    Version {
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Get real time events from the server.
    Events(system::EventsArgs),
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerGroup),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(objects::VolumeCmd),
    /// Manage networks.
    #[command(subcommand)]
    Network(objects::NetworkCmd),
    /// Manage Berth.
    #[command(subcommand)]
    System(system::SystemCmd),
    /// Build an image from a Dockerfile.
    Build(build_cmd::BuildArgs),
    /// Manage the build cache.
    #[command(subcommand)]
    Builder(build_cmd::BuilderCmd),
    /// Run an OCI registry (serve, gc) on its own --root (local, no daemon).
    #[command(subcommand)]
    Registry(berth_registry::cli::RegistryCmd),
}

#[derive(Subcommand)]
enum ImageCmd {
    /// List images.
    #[command(aliases = ["list"])]
    Ls(images::ImagesArgs),
    /// Download an image from a registry.
    Pull(images::PullArgs),
    /// Upload an image to a registry.
    Push(images::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag { source: String, target: String },
    /// Remove one or more images.
    #[command(alias = "remove")]
    Rm(images::RmiArgs),
    /// Display detailed information on one or more images.
    Inspect(objects::InspectArgs),
    /// Show the history of an image.
    History(images::HistoryArgs),
    /// Remove unused images.
    Prune(images::PruneArgs),
    /// Save one or more images to a tar archive.
    Save(images::SaveArgs),
    /// Load an image from a tar archive or STDIN.
    Load(images::LoadArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(images::ImportArgs),
    /// Mount the image's layers read-only at DIR (local, on --root).
    Mount { name: String, dir: PathBuf },
    /// Unmount DIR, a mount or a bundle's rootfs (local, on --root).
    Umount { dir: PathBuf },
    /// Make an OCI runtime bundle in DIR: rootfs overlay + config.json (local, on --root).
    Bundle { name: String, dir: PathBuf },
}

/// Ends the command with `code`, printing `msg` (if any) to stderr.
#[derive(Debug)]
pub struct Exit {
    pub code: i32,
    pub msg: Option<String>,
}

impl Exit {
    pub fn code(code: i32) -> Exit {
        Exit { code, msg: None }
    }
    pub fn msg(code: i32, msg: impl Into<String>) -> Exit {
        Exit {
            code,
            msg: Some(msg.into()),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.msg {
            Some(m) => write!(f, "{m}"),
            None => write!(f, "exit status {}", self.code),
        }
    }
}

impl std::error::Error for Exit {}

/// An error as docker prints it: the daemon's errors as they are, others
/// after `Error: `.
pub fn error_text(e: &anyhow::Error) -> String {
    if let Some(c) = e.downcast_ref::<ClientError>() {
        return c.to_string();
    }
    if let Some(x) = e.downcast_ref::<Exit>() {
        return x.to_string();
    }
    format!("Error: {e:#}")
}

fn main() {
    // docker's CLI exits 125 on a bad flag or argument; help and version
    // are not errors.
    let cli = Cli::try_parse().unwrap_or_else(|e| {
        let code = if e.use_stderr() { 125 } else { 0 };
        let _ = e.print();
        std::process::exit(code);
    });
    let res = run(cli);
    session::restore_terminal();
    if let Err(e) = res {
        // Our reader went away (`berth export | head`): end quietly, as a
        // process killed by SIGPIPE would.
        if e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(141);
        }
        let code = match e.downcast_ref::<Exit>() {
            Some(x) => {
                if let Some(m) = &x.msg {
                    eprintln!("{m}");
                }
                x.code
            }
            None => {
                eprintln!("{}", error_text(&e));
                1
            }
        };
        std::process::exit(code);
    }
}

fn env_path(flag: Option<PathBuf>, var: &str) -> Option<PathBuf> {
    flag.or_else(|| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
}

const DEFAULT_ROOT: &str = "/var/lib/berth";

fn same_path(a: &Path, b: &Path) -> bool {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    canon(a) == canon(b)
}

fn run(cli: Cli) -> Result<()> {
    let explicit_root = env_path(cli.root, "BERTH_ROOT");
    let root = explicit_root.clone().unwrap_or_else(|| DEFAULT_ROOT.into());
    // Commands that stay local need no daemon.
    match cli.cmd {
        Cmd::Registry(c) => return Ok(berth_registry::cli::run(c)?),
        Cmd::Logout { server } => return images::logout(server.as_deref()),
        Cmd::System(system::SystemCmd::Check { repair }) => {
            return system::check_local(&root, repair);
        }
        Cmd::Image(ImageCmd::Mount { name, dir }) => {
            return image_local(&root, Some(&name), &dir, false);
        }
        Cmd::Image(ImageCmd::Umount { dir }) => return image_local(&root, None, &dir, false),
        Cmd::Image(ImageCmd::Bundle { name, dir }) => {
            return image_local(&root, Some(&name), &dir, true);
        }
        Cmd::Build(a) => {
            forward_host(cli.host.as_deref());
            let store = open_store(&root)?;
            return build_cmd::build(&store, a);
        }
        Cmd::Builder(c) => {
            forward_host(cli.host.as_deref());
            let store = open_store(&root)?;
            return build_cmd::builder(&store, c);
        }
        _ => {}
    }
    let chosen = client::chosen_socket(cli.host.as_deref()).map_err(anyhow::Error::msg)?;
    let socket = match (&chosen, &explicit_root) {
        (Some(s), _) => s.clone(),
        (None, Some(r)) if !same_path(r, Path::new(DEFAULT_ROOT)) => client::socket_for_root(r),
        _ => PathBuf::from(client::DEFAULT_SOCKET),
    };
    let exec_root = env_path(cli.exec_root, "BERTH_EXEC_ROOT").unwrap_or_else(|| {
        socket
            .parent()
            .map_or_else(|| PathBuf::from("/run/berth"), Path::to_path_buf)
    });
    let c = Client::new(
        socket,
        Some(AutoStart {
            root: root.clone(),
            exec_root,
        }),
    )?;
    if let (Some(_), Some(r)) = (&chosen, &explicit_root) {
        check_root(&c, r)?;
    }
    dispatch(&c, cli.cmd)
}

/// With both a socket and `--root`, the daemon there must keep that store:
/// otherwise the command would silently act on another one.
fn check_root(c: &Client, root: &Path) -> Result<()> {
    let info: serde_json::Value = c.get("/info")?;
    let theirs = info["DockerRootDir"].as_str().unwrap_or("");
    if !same_path(Path::new(theirs), root) {
        anyhow::bail!(
            "the daemon on {} keeps its state in {theirs}, not {}: leave out --root, or use -H with the socket of that root's daemon",
            c.socket().display(),
            root.display()
        );
    }
    Ok(())
}

fn dispatch(c: &Client, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::C(x) | Cmd::Container(ContainerGroup::C(x)) => container(c, x),
        Cmd::Ps(a) | Cmd::Container(ContainerGroup::Ls(a)) => containers::ps(c, a),
        Cmd::Container(ContainerGroup::Inspect(a)) => {
            objects::inspect_kind(c, a, Some("container"))
        }
        Cmd::Container(ContainerGroup::Prune(a)) => container_ops::prune(c, a),
        Cmd::Inspect(a) => objects::inspect_kind(c, a, None),
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => images::images(c, a),
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => images::pull(c, a),
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => images::push(c, a),
        Cmd::Tag { source, target } | Cmd::Image(ImageCmd::Tag { source, target }) => {
            images::tag(c, &source, &target)
        }
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => images::rmi(c, a),
        Cmd::Image(ImageCmd::Inspect(a)) => objects::inspect_kind(c, a, Some("image")),
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => images::save(c, a),
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => images::load(c, a),
        Cmd::Import(a) | Cmd::Image(ImageCmd::Import(a)) => images::import(c, a),
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => images::history(c, a),
        Cmd::Image(ImageCmd::Prune(a)) => images::prune(c, a),
        Cmd::Login(a) => images::login(c, a),
        Cmd::Info { format } | Cmd::System(system::SystemCmd::Info { format }) => {
            system::info(c, format)
        }
        Cmd::Version { format } => system::version(c, format),
        Cmd::Events(a) | Cmd::System(system::SystemCmd::Events(a)) => system::events(c, a),
        Cmd::System(system::SystemCmd::Df { verbose, format }) => system::df(c, verbose, format),
        Cmd::System(system::SystemCmd::Prune {
            all,
            force,
            volumes,
        }) => system::prune(c, all, force, volumes),
        Cmd::Volume(v) => objects::volume(c, v),
        Cmd::Network(n) => objects::network(c, n),
        Cmd::Registry(_)
        | Cmd::Logout { .. }
        | Cmd::System(system::SystemCmd::Check { .. })
        | Cmd::Image(ImageCmd::Mount { .. } | ImageCmd::Umount { .. } | ImageCmd::Bundle { .. })
        | Cmd::Build(_)
        | Cmd::Builder(_) => unreachable!("local commands are handled before connecting"),
    }
}

fn container(c: &Client, cmd: ContainerCmd) -> Result<()> {
    match cmd {
        ContainerCmd::Run(a) => containers::run(c, a),
        ContainerCmd::Create(a) => containers::create_cmd(c, a),
        ContainerCmd::Start(a) => containers::start(c, a),
        ContainerCmd::Stop(a) => containers::stop(c, a, "stop"),
        ContainerCmd::Restart(a) => containers::stop(c, a, "restart"),
        ContainerCmd::Kill(a) => containers::kill(c, a),
        ContainerCmd::Rm(a) => containers::rm(c, a),
        ContainerCmd::Logs(a) => containers::logs(c, a),
        ContainerCmd::Exec(a) => containers::exec(c, a),
        ContainerCmd::Attach(a) => containers::attach(c, a),
        ContainerCmd::Wait(a) => containers::wait(c, a),
        ContainerCmd::Top(a) => container_ops::top(c, a),
        ContainerCmd::Stats(a) => container_ops::stats(c, a),
        ContainerCmd::Pause(a) => containers::simple(c, a, "pause"),
        ContainerCmd::Unpause(a) => containers::simple(c, a, "unpause"),
        ContainerCmd::Cp(a) => cp::cp(c, a),
        ContainerCmd::Diff { container } => container_ops::diff(c, &container),
        ContainerCmd::Commit(a) => container_ops::commit(c, a),
        ContainerCmd::Export(a) => container_ops::export(c, a),
        ContainerCmd::Rename {
            container,
            new_name,
        } => container_ops::rename(c, &container, &new_name),
        ContainerCmd::Update(a) => container_ops::update(c, a),
        ContainerCmd::Port {
            container,
            private_port,
        } => container_ops::port(c, &container, private_port.as_deref()),
    }
}

/// `build` finds the daemon through BERTH_HOST; `-H` sets it.
fn forward_host(host: Option<&str>) {
    if let Some(h) = host {
        // SAFETY: still single-threaded; nothing reads the environment
        // concurrently.
        unsafe { std::env::set_var("BERTH_HOST", h) };
    }
}

fn open_store(root: &Path) -> Result<Arc<ImageStore>> {
    let store = Arc::new(
        ImageStore::open(root).with_context(|| format!("opening store {}", root.display()))?,
    );
    store.cleanup().context("cleaning up leftovers")?;
    Ok(store)
}

/// `image mount|umount|bundle`: read-only views of the local store for
/// debugging and for running images with berth-runtime directly.
fn image_local(root: &Path, name: Option<&str>, dir: &Path, bundle: bool) -> Result<()> {
    let store = open_store(root)?;
    let Some(name) = name else {
        return Ok(berth_image::rootfs::unmount_image(&store, dir)?);
    };
    let img = store.resolve(name)?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if bundle {
        berth_image::rootfs::make_bundle(&store, &img, dir)?;
    } else {
        berth_image::rootfs::mount_image(&store, &img, dir)?;
    }
    println!("{}", dir.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_consistent() {
        // clap's own checks over every subcommand (duplicate flags etc.).
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn docker_style_arguments() {
        let p = |a: &[&str]| Cli::try_parse_from(a.iter().copied());
        assert!(p(&["berth", "-H", "unix:///x", "history", "-H", "false", "img"]).is_ok());
        assert!(p(&["berth", "run", "-h", "host", "--rm", "img", "sh", "-c", "x"]).is_ok());
        assert!(p(&["berth", "exec", "-it", "c", "ls", "-l"]).is_ok());
        assert!(p(&["berth", "exec", "c"]).is_err(), "exec needs a command");
        assert!(p(&["berth", "run"]).is_err(), "run needs an image");
        // Options after the image belong to the command.
        let Cmd::C(ContainerCmd::Run(r)) = p(&["berth", "run", "--rm", "img", "-c", "-m", "x"])
            .unwrap()
            .cmd
        else {
            panic!("not run");
        };
        assert_eq!(r.create.args, ["img", "-c", "-m", "x"]);
        assert!(r.create.memory.is_none());
        assert!(p(&["berth", "container", "ls", "-a"]).is_ok());
        assert!(p(&["berth", "container", "ps", "-a"]).is_ok());
        assert!(p(&["berth", "image", "ls", "-q"]).is_ok());
        assert!(p(&["berth", "volume", "ls"]).is_ok());
        assert!(p(&["berth", "network", "ls"]).is_ok());
        assert!(p(&["berth", "system", "df"]).is_ok());
        assert!(p(&["berth", "image", "bundle", "img", "/tmp/b"]).is_ok());
    }
}
