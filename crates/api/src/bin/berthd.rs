//! berthd: the Berth daemon, serving the Docker Engine API on a unix socket.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use berth_engine::{Engine, Options, Paths};
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "berthd",
    about = "Berth daemon: the Docker Engine API over a unix socket"
)]
struct Args {
    /// Where to listen.
    #[arg(long, short = 'H', default_value = "unix:///run/berth/berth.sock")]
    host: String,
    /// Images, layers, containers and logs.
    #[arg(long, default_value = "/var/lib/berth")]
    root: PathBuf,
    /// Sockets and shim/runtime state.
    #[arg(long, default_value = "/run/berth")]
    exec_root: PathBuf,
    /// Group that may use the socket (mode 0660); without it, 0600.
    #[arg(long, short = 'G')]
    group: Option<String>,
    /// OCI runtime for containers (default: berth-runtime beside berth-shim).
    #[arg(long)]
    runtime: Option<PathBuf>,
    /// berth-shim binary (default: beside berthd, else on PATH).
    #[arg(long)]
    shim: Option<PathBuf>,
    /// A registry (host[:port]) or a CIDR of registries reached over plain
    /// HTTP; repeatable. Loopback registries always are; nothing else is.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<berth_distribution::InsecureRegistry>,
    /// Bytes one image layer may expand to when pulled, loaded or
    /// imported: the sum of its files' apparent sizes, holes of sparse
    /// files included (default 256 GiB).
    #[arg(long, value_name = "BYTES")]
    max_layer_size: Option<u64>,
}

fn beside_me(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn group_id(name: &str) -> anyhow::Result<u32> {
    if let Ok(n) = name.parse() {
        return Ok(n);
    }
    let groups = std::fs::read_to_string("/etc/group").context("read /etc/group")?;
    groups
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 2 && f[0] == name)
                .then(|| f[2].parse().ok())
                .flatten()
        })
        .with_context(|| format!("no group {name} in /etc/group"))
}

/// Binds the socket, replacing a stale one (no daemon answering on it);
/// `gid` is the `-G` group's.
fn bind(path: &Path, gid: Option<u32>) -> anyhow::Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    }
    if path.exists() {
        if berth_shim::sockpath::connect(path).is_ok() {
            bail!("another daemon is listening on {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("remove stale {}", path.display()))?;
    }
    let std_listener =
        berth_shim::sockpath::bind(path).with_context(|| format!("bind {}", path.display()))?;
    std_listener.set_nonblocking(true).context("socket")?;
    let l = tokio::net::UnixListener::from_std(std_listener).context("socket")?;
    let mode = match gid {
        Some(gid) => {
            let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())?;
            // SAFETY: chown on a NUL-terminated path we own.
            if unsafe { libc::chown(c.as_ptr(), 0, gid) } != 0 {
                return Err(std::io::Error::last_os_error()).context("chown socket");
            }
            // The group must reach the socket: its dir (the exec root, 0700
            // by default) becomes traversable, not listable.
            if let Some(dir) = path.parent() {
                let m = std::fs::metadata(dir)
                    .with_context(|| format!("stat {}", dir.display()))?
                    .permissions()
                    .mode();
                if m & 0o011 != 0o011 {
                    std::fs::set_permissions(
                        dir,
                        std::fs::Permissions::from_mode(m & 0o7777 | 0o011),
                    )
                    .with_context(|| format!("chmod {}", dir.display()))?;
                }
            }
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .context("chmod socket")?;
    Ok(l)
}

/// One daemon per store: a second berthd on the same root would take over
/// the first one's shims, rewrite its records and IPAM, and sweep what it
/// is still using. Taken before anything in the root is touched; the file
/// names the holder so the error can say who it is.
fn lock_root(root: &Path) -> anyhow::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    std::fs::create_dir_all(root).with_context(|| format!("create {}", root.display()))?;
    let path = root.join("berthd.lock");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("open {}", path.display()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = f.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another berthd".to_string()
            } else {
                format!("another berthd (pid {holder})")
            };
            bail!(
                "{who} is using the store at {}; stop it first or give this one its own --root",
                root.display()
            );
        }
        return Err(err).with_context(|| format!("lock {}", path.display()));
    }
    f.set_len(0)
        .and_then(|()| f.rewind())
        .and_then(|()| write!(f, "{}", std::process::id()))
        .with_context(|| format!("write {}", path.display()))?;
    Ok(f)
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let Some(sock) = a.host.strip_prefix("unix://") else {
        bail!("only unix:// hosts are supported: {}", a.host);
    };
    // Flags are checked before anything exists: a bad -G must not leave a
    // store, a bridge, an nftables table or a socket behind.
    let gid = a
        .group
        .as_deref()
        .map(|g| group_id(g).with_context(|| format!("-G {g}")))
        .transpose()?;
    let paths = Paths {
        root: a.root,
        exec_root: a.exec_root,
        shim: a.shim.unwrap_or_else(|| beside_me("berth-shim")),
        runtime: a.runtime,
    };
    // Held for the life of the process (the kernel drops it when we die,
    // kill -9 included).
    let _root_lock = lock_root(&paths.root)?;
    let options = Options {
        registry: berth_distribution::RegistryPolicy::with_insecure(a.insecure_registries),
    };
    let engine = Engine::open_with(paths, options).context("open the engine")?;
    if let Some(n) = a.max_layer_size {
        engine.image_store().layers.set_max_size(n);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = bind(Path::new(sock), gid)?;
        eprintln!(
            "berthd {} listening on unix://{sock}",
            berth_engine::VERSION
        );
        berth_api::serve(engine, listener).await?;
        Ok(())
    })
}
