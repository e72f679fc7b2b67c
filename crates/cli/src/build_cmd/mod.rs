//! `berth build` and `berth builder prune`: through berthd (`POST /build`,
//! `POST /build/prune`) when one serves this store, else the builder
//! library in-process on the store under `--root`.

mod client;
mod progress;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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
    /// Dockerfile path (from the current directory, else the context), or `-` for stdin.
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
    /// Progress output: plain (the builder's step lines), tty (one line per
    /// finished step, a live view of the running one), auto (tty on a terminal).
    #[arg(long, default_value = "auto", value_parser = ["plain", "tty", "auto"])]
    pub progress: String,
    /// RUN network: default (none but loopback) or host.
    #[arg(long, default_value = "default", value_parser = ["default", "none", "host"])]
    pub network: String,
    /// A secret for RUN --mount=type=secret: id=NAME,src=FILE; repeatable.
    #[arg(long = "secret")]
    pub secrets: Vec<String>,
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
        /// Remove all build cache, not just what no image uses (without a
        /// daemon, all of it goes either way).
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
    let mode = progress::Mode::pick(&a.progress, a.quiet);
    let id = match client::socket(store.root()) {
        Some(_) if !a.secrets.is_empty() => bail!(
            "--secret is not supported through berthd yet (the Docker API's legacy build has no way to pass secrets); build with --root on a store of your own"
        ),
        Some(sock) => build_remote(&sock, &a, mode)?,
        None => build_local(store, &a, mode)?,
    };
    if let Some(p) = &a.iidfile {
        std::fs::write(p, &id).with_context(|| format!("writing {}", p.display()))?;
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(())
}

/// Where the Dockerfile is, relative to the context, or its text when it
/// lies outside (`-f -`, `-f ../x`): docker resolves `-f` from the current
/// directory; a path that only exists inside the context is accepted too.
enum Df {
    InContext(String),
    Text(String),
}

fn dockerfile_for_dir(context: &Path, file: Option<&str>) -> Result<Df> {
    let Some(f) = file else {
        return Ok(Df::InContext("Dockerfile".into()));
    };
    if f == "-" {
        let mut s = String::new();
        std::io::stdin()
            .lock()
            .read_to_string(&mut s)
            .context("reading the Dockerfile from stdin")?;
        return Ok(Df::Text(s));
    }
    let p = if Path::new(f).exists() {
        PathBuf::from(f)
    } else {
        context.join(f)
    };
    let full = p
        .canonicalize()
        .with_context(|| format!("Dockerfile {f:?} not found"))?;
    let ctx = context
        .canonicalize()
        .with_context(|| format!("context {}", context.display()))?;
    match full.strip_prefix(&ctx) {
        Ok(rel) => Ok(Df::InContext(rel.display().to_string())),
        Err(_) => Ok(Df::Text(
            std::fs::read_to_string(&full)
                .with_context(|| format!("reading {}", full.display()))?,
        )),
    }
}

/// Percent-encoding for query values (RFC 3986 unreserved kept).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sends the context to berthd (`POST /build`, as `docker build` does) and
/// renders the streamed progress; returns the image ID.
fn build_remote(sock: &Path, a: &BuildArgs, mode: progress::Mode) -> Result<String> {
    const EXTRA_DF: &str = ".berth-dockerfile";
    let q = query(a)?;
    // The daemon has no credentials of its own: base images are pulled
    // with the ones the client sends.
    let auth = crate::images::registry_config(&crate::images::stored_credentials()?);
    if a.context == "-" {
        if a.file.as_deref() == Some("-") {
            bail!("-f - and context - cannot both read stdin");
        }
        let mut data = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut data)
            .context("reading the context from stdin")?;
        return send(
            sock,
            q,
            a.file.clone(),
            "application/x-tar",
            &data,
            &auth,
            mode,
        );
    }
    let context = Path::new(&a.context);
    if !context.is_dir() {
        bail!("unable to prepare context: path {:?} not found", a.context);
    }
    let df = dockerfile_for_dir(context, a.file.as_deref())?;
    let abs = context
        .canonicalize()
        .with_context(|| format!("context {}", context.display()))?;
    // On the daemon's host berthd reads the directory in place (Berth's
    // `berthcontextpath`): the directory goes as an fd passed over the
    // socket, for a root client only. Anyone else, a connection through a
    // proxy (no fd arrives) or a daemon that does not know the fd
    // preamble gets refused before the build starts, and the context goes
    // as a tar, as docker sends it. The body is the Dockerfile's text when
    // it lies outside the context.
    let (body, dockerfile) = match &df {
        Df::InContext(rel) => (Vec::new(), Some(rel.clone())),
        Df::Text(text) => (text.clone().into_bytes(), None),
    };
    let dir = open_dir(context)?;
    let mut pq = q.clone();
    pq.push(("berthcontextpath".into(), abs.display().to_string()));
    let resp = post_build(
        sock,
        pq,
        dockerfile,
        "text/plain",
        &body,
        &auth,
        Some(dir.as_fd()),
    )?;
    if !matches!(resp.status, 400 | 403) {
        return stream_build(client::check(resp)?, mode);
    }
    let status = resp.status;
    let text = resp.text()?;
    if !in_place_refused(&text) {
        bail!(client::error_message(status, &text));
    }
    let (body, dockerfile) = match df {
        Df::InContext(rel) => (
            build::context::tar_dir(context, &[rel.as_str()], &[])?,
            Some(rel),
        ),
        Df::Text(text) => (
            build::context::tar_dir(context, &[], &[(EXTRA_DF, text.as_bytes())])?,
            Some(EXTRA_DF.to_string()),
        ),
    };
    let mut q = q;
    // berthd keeps this directory's context between builds and only
    // rewrites what changed (the key names the directory, not its content).
    let key = berth_image::Digest::sha256_of(abs.as_os_str().as_encoded_bytes());
    q.push(("berthcontext".into(), key.hex().to_string()));
    send(sock, q, dockerfile, "application/x-tar", &body, &auth, mode)
}

/// The context directory, open for passing to berthd.
fn open_dir(context: &Path) -> Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(context)
        .with_context(|| format!("opening the context {}", context.display()))
}

/// Did berthd refuse to read the context in place (a 400/403 body)? Its
/// refusals begin with "berthcontextpath refused: " (berth-engine's
/// `CONTEXT_REFUSED`); a body that is no Docker API error at all comes
/// from a daemon that took the fd preamble for a broken request. Any
/// other error is a real one: sending a tar would fail the same way.
fn in_place_refused(body: &str) -> bool {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => match v["message"].as_str() {
            Some(m) => m.starts_with("berthcontextpath refused: "),
            None => true,
        },
        Err(_) => true,
    }
}

/// The query every `POST /build` of these arguments carries.
fn query(a: &BuildArgs) -> Result<Vec<(String, String)>> {
    let mut q: Vec<(String, String)> = Vec::new();
    for t in &a.tags {
        q.push(("t".into(), t.clone()));
    }
    let args = kv(&a.build_args, "--build-arg", true)?;
    if !args.is_empty() {
        q.push(("buildargs".into(), serde_json::to_string(&args)?));
    }
    let labels = kv(&a.labels, "--label", false)?;
    if !labels.is_empty() {
        q.push(("labels".into(), serde_json::to_string(&labels)?));
    }
    if let Some(t) = &a.target {
        q.push(("target".into(), t.clone()));
    }
    for (on, k) in [(a.no_cache, "nocache"), (a.pull, "pull"), (a.quiet, "q")] {
        if on {
            q.push((k.into(), "1".into()));
        }
    }
    q.push(("networkmode".into(), a.network.clone()));
    Ok(q)
}

fn post_build(
    sock: &Path,
    mut q: Vec<(String, String)>,
    dockerfile: Option<String>,
    ctype: &str,
    body: &[u8],
    registry_config: &str,
    dir: Option<std::os::fd::BorrowedFd<'_>>,
) -> Result<client::Response> {
    if let Some(d) = dockerfile {
        q.push(("dockerfile".into(), d));
    }
    let query: Vec<String> = q.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let headers = [
        ("Content-Type", ctype),
        ("X-Registry-Config", registry_config),
    ];
    client::post_with(sock, "/build", &query.join("&"), &headers, body, dir)
}

fn send(
    sock: &Path,
    q: Vec<(String, String)>,
    dockerfile: Option<String>,
    ctype: &str,
    body: &[u8],
    registry_config: &str,
    mode: progress::Mode,
) -> Result<String> {
    stream_build(
        client::check(post_build(
            sock,
            q,
            dockerfile,
            ctype,
            body,
            registry_config,
            None,
        )?)?,
        mode,
    )
}

/// Renders a build's streamed progress; returns the image ID.
fn stream_build(resp: client::Response, mode: progress::Mode) -> Result<String> {
    let mut out = progress::Renderer::new(mode, std::io::stderr());
    let mut id = None;
    let mut error = None;
    resp.lines(|l| {
        if l.is_empty() {
            return Ok(());
        }
        let v: serde_json::Value =
            serde_json::from_str(l).with_context(|| format!("bad message from berthd: {l}"))?;
        if let Some(s) = v["stream"].as_str() {
            out.write_all(s.as_bytes())?;
        }
        if let Some(i) = v["aux"]["ID"].as_str() {
            id = Some(i.to_string());
        }
        if let Some(e) = v["error"].as_str() {
            error = Some(e.to_string());
        }
        Ok(())
    })?;
    out.finish();
    if let Some(e) = error {
        bail!(e);
    }
    id.context("berthd ended the build without an image ID")
}

/// No daemon: the builder runs here, on the store under `--root`.
fn build_local(store: &Arc<ImageStore>, a: &BuildArgs, mode: progress::Mode) -> Result<String> {
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
        (_, Some(text)) => DockerfileSource::Text(text),
        (f, None) if stdin_ctx.is_some() => {
            DockerfileSource::Path(f.unwrap_or("Dockerfile").into())
        }
        (f, None) => match dockerfile_for_dir(&context, f)? {
            Df::InContext(rel) => DockerfileSource::Path(rel.into()),
            Df::Text(t) => DockerfileSource::Text(t),
        },
    };
    o.tags = a.tags.clone();
    o.build_args = kv(&a.build_args, "--build-arg", true)?;
    o.labels = kv(&a.labels, "--label", false)?;
    o.target = a.target.clone();
    o.no_cache = a.no_cache;
    o.pull = a.pull;
    o.host_network = a.network == "host";
    o.registry_auth = crate::images::stored_credentials()?;
    for s in &a.secrets {
        let mut id = None;
        let mut src = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                _ => bail!("--secret {s:?}: expected id=NAME,src=FILE"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("--secret {s:?}: expected id=NAME,src=FILE");
        };
        o.secrets.insert(id, src);
    }
    let out = Arc::new(Mutex::new(progress::Renderer::new(mode, std::io::stderr())));
    let sink: build::Sink = out.clone();
    let r = build::build(store, &o, sink);
    out.lock().unwrap_or_else(|e| e.into_inner()).finish();
    Ok(r?.image_id.to_string())
}

pub fn builder(store: &ImageStore, c: BuilderCmd) -> Result<()> {
    match c {
        BuilderCmd::Prune { force, all } => {
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
            let (deleted, bytes) = match client::socket(store.root()) {
                Some(sock) => {
                    let r = client::check(client::post(
                        &sock,
                        if all {
                            "/build/prune?all=1"
                        } else {
                            "/build/prune"
                        },
                        "",
                        "application/json",
                        b"",
                        None,
                    )?)?;
                    let v: serde_json::Value = serde_json::from_str(&r.text()?)
                        .context("bad answer from berthd to /build/prune")?;
                    (
                        v["CachesDeleted"].as_array().map_or(0, Vec::len),
                        v["SpaceReclaimed"].as_u64().unwrap_or(0),
                    )
                }
                None => {
                    let n = berth_builder::build::Cache::open(store.root())?.prune()?;
                    // Layers only the cache kept are unreferenced now.
                    (n.len(), store.collect(None)?.bytes)
                }
            };
            println!("Deleted build cache objects: {deleted}");
            println!("Total reclaimed space: {bytes} bytes");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_place_refused;

    /// Only a refusal of the in-place context, or an answer from a daemon
    /// that took the fd preamble for a broken request, makes `berth build`
    /// send a tar: a real bad request is not sent twice.
    #[test]
    fn falls_back_only_on_a_refused_directory() {
        assert!(in_place_refused(
            r#"{"message":"berthcontextpath refused: no directory fd came with this connection"}"#
        ));
        // hyper's and Go's answers to a request starting with 0x00.
        assert!(in_place_refused(""));
        assert!(in_place_refused("400 Bad Request"));
        assert!(!in_place_refused(
            r#"{"message":"buildargs: expected a JSON object of strings"}"#
        ));
        assert!(!in_place_refused(
            r#"{"message":"dockerfile \"../x\": must be a path inside the build context"}"#
        ));
    }
}
