//! Orchestration: parse, pick the stages the target needs, build them in
//! order, write the image (config, manifest, record, tags).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Instant;

use berth_image::formats::Platform;
use berth_image::lease::Lease;
use berth_image::{ImageRecord, ImageStore, Reference};
use serde_json::json;

use super::steps::{Ctx, StageState};
use super::{BuildOptions, BuildResult, DockerfileSource, Sink, config};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{self, Dockerfile, Kind, expand};
use crate::error::{Error, IoContext, Result};

/// Most a Dockerfile or .dockerignore may hold.
const CONTEXT_FILE_MAX: u64 = 16 << 20;

/// `rel` in the context, resolved inside it (a `Dockerfile -> /etc/shadow`
/// link in a sent context reads the context's, never the daemon host's),
/// a regular file only; None when missing.
fn read_in_context(context: &Path, rel: &Path) -> Result<Option<String>> {
    match berth_image::fswalk::read_file_in_root(context, rel, CONTEXT_FILE_MAX) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Invalid(format!(
            "{} in the build context: {e}",
            rel.display()
        ))),
    }
}

/// Builds the image described by `opts`, writing progress to `out`.
pub fn build(store: &Arc<ImageStore>, opts: &BuildOptions, out: Sink) -> Result<BuildResult> {
    let t0 = Instant::now();
    let (name, text) = match &opts.dockerfile {
        DockerfileSource::Text(t) => ("Dockerfile".to_string(), t.clone()),
        DockerfileSource::Path(p) => {
            let text = if p.is_absolute() {
                // A path the caller chose on the daemon's host (not `POST
                // /build`, whose Dockerfile is always in the context).
                fs::read_to_string(p).ctx("read Dockerfile", p)?
            } else {
                read_in_context(&opts.context, p)?.ok_or_else(|| {
                    Error::Invalid(format!("Dockerfile {p:?} is not in the build context"))
                })?
            };
            (p.display().to_string(), text)
        }
    };
    let ignore =
        read_in_context(&opts.context, Path::new(".dockerignore"))?.map(|t| Ignore::parse(&t));
    let mut ctx = Ctx::new(store.clone(), opts, out, ignore)?;
    // A build killed earlier may have left its step mounts and containers.
    if let Err(e) = super::cleanup_stale(store.root()) {
        ctx.line(&format!("warning: cleaning up after an earlier build: {e}"));
    }
    ctx.vertex(&format!("[internal] load build definition from {name}"));
    let df = dockerfile::parse(&name, &text)?;
    ctx.done(t0);

    // Meta args: usable in FROM lines; BuildKit's automatic platform args
    // first (a stage sees them after a bare `ARG NAME`).
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let host = Platform::host();
    let target_platform = match &opts.platform {
        Some(p) => p
            .parse::<Platform>()
            .map_err(|_| Error::Invalid(format!("--platform {p}: expected os/arch[/variant]")))?,
        None => host.clone(),
    };
    for (prefix, p) in [("BUILD", &host), ("TARGET", &target_platform)] {
        meta.insert(format!("{prefix}PLATFORM"), p.to_string());
        meta.insert(format!("{prefix}OS"), p.os.clone());
        meta.insert(format!("{prefix}ARCH"), p.architecture.clone());
        meta.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    for a in &df.meta_args {
        let v = match (opts.build_args.get(&a.name), &a.default) {
            (Some(v), _) => Some(v.clone()),
            (None, Some(d)) => Some(
                expand::expand(d, df.escape, &|n| meta.get(n).cloned())
                    .map_err(|e| Error::Invalid(format!("ARG {}: {e}", a.name)))?,
            ),
            (None, None) => None,
        };
        if let Some(v) = v {
            meta.insert(a.name.clone(), v);
        }
    }
    let target = match &opts.target {
        None => df.stages.len() - 1,
        Some(t) => stage_index(&df, &t.to_ascii_lowercase(), df.stages.len())
            .ok_or_else(|| Error::Invalid(format!("target stage {t:?} could not be found")))?,
    };
    let needed = needed_stages(&df, target, &meta);
    // One lease per stage (each stage's thread adds its layers to its own);
    // the guards keep every stage's layers until the image is written.
    let mut leases = BTreeMap::new();
    let mut _guards = Vec::new();
    for &i in &needed {
        let l = Lease::for_process(&format!("build{i}"));
        _guards.push(store.lease_process(&l)?);
        leases.insert(i, l);
    }
    let mut states = build_stages(&ctx, &df, &needed, &meta, leases)?;
    let mut fin = states[target].take().expect("target built");
    let t1 = Instant::now();
    ctx.vertex("exporting to image");
    for (k, v) in &opts.labels {
        config::set_map_entry(&mut fin.image, "Labels", k, json!(v));
    }
    let rec = write_image(store, &mut fin)?;
    ctx.line(&format!("writing image {} done", rec.id));
    for t in &opts.tags {
        let r: Reference = t.parse()?;
        let full = r
            .tagged()
            .ok_or_else(|| Error::Invalid(format!("-t {t}: expected name[:tag]")))?;
        store.put(rec.clone(), Some(&full))?;
        ctx.line(&format!("naming to {full} done"));
    }
    if opts.tags.is_empty() {
        store.put(rec.clone(), None)?;
    }
    ctx.done(t1);
    Ok(BuildResult {
        image_id: rec.id,
        cached_steps: ctx.counters.cached.load(Ordering::Relaxed),
        executed_steps: ctx.counters.executed.load(Ordering::Relaxed),
    })
}

/// A stage by name, or by index (`COPY --from=0`).
pub(super) fn stage_index(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    df.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(name))
        .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
}

/// The stages stage `i` uses directly (FROM <stage>, COPY --from=<stage>,
/// RUN --mount=from=<stage>).
fn direct_deps(df: &Dockerfile, i: usize, meta: &BTreeMap<String, String>) -> Vec<usize> {
    let x = |s: &str| expand::expand(s, df.escape, &|n| meta.get(n).cloned()).unwrap_or_default();
    let s = &df.stages[i];
    let mut deps: Vec<usize> = stage_index(df, &x(&s.base).to_ascii_lowercase(), i)
        .into_iter()
        .collect();
    for ins in &s.instructions {
        let froms: Vec<&String> = match &ins.kind {
            Kind::Copy(c) => c.from.iter().collect(),
            Kind::Run(r) => r.mounts.iter().filter_map(|m| m.from.as_ref()).collect(),
            _ => Vec::new(),
        };
        deps.extend(
            froms
                .into_iter()
                .filter_map(|f| stage_index(df, &x(f).to_ascii_lowercase(), i)),
        );
    }
    deps
}

/// The stages the target depends on, itself included.
fn needed_stages(
    df: &Dockerfile,
    target: usize,
    meta: &BTreeMap<String, String>,
) -> BTreeSet<usize> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if need.insert(i) {
            todo.extend(direct_deps(df, i, meta));
        }
    }
    need
}

/// Builds the needed stages, each as soon as the stages it uses are done,
/// so independent stages run in parallel (each on its own thread). After a
/// failure no new stage starts; the running ones finish, the first error
/// is returned.
fn build_stages(
    ctx: &Ctx,
    df: &Dockerfile,
    needed: &BTreeSet<usize>,
    meta: &BTreeMap<String, String>,
    mut leases: BTreeMap<usize, Lease>,
) -> Result<Vec<Option<StageState>>> {
    let deps: BTreeMap<usize, Vec<usize>> = needed
        .iter()
        .map(|&i| (i, direct_deps(df, i, meta)))
        .collect();
    let mut states: Vec<Option<StageState>> = vec![None; df.stages.len()];
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut started = BTreeSet::new();
        let mut running = 0;
        let mut failed: Option<Error> = None;
        loop {
            if failed.is_none() {
                for &i in needed {
                    if started.contains(&i) || !deps[&i].iter().all(|&d| states[d].is_some()) {
                        continue;
                    }
                    started.insert(i);
                    running += 1;
                    let mut c = ctx.fork();
                    let done = states.clone();
                    let mut lease = leases.remove(&i).expect("a lease per stage");
                    let tx = tx.clone();
                    s.spawn(move || {
                        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                            c.build_stage(df, i, meta, &done, &mut lease)
                        }))
                        .unwrap_or_else(|_| Err(Error::Invalid(format!("stage {i} panicked"))));
                        let _ = tx.send((i, r));
                    });
                }
            }
            if running == 0 {
                break;
            }
            let (i, r) = rx.recv().expect("stage threads report before ending");
            running -= 1;
            match r {
                Ok(st) => states[i] = Some(st),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    Ok(states)
}

pub(super) fn rfc3339(secs: i64) -> String {
    berth_image::history::rfc3339(secs, None)
}

fn write_image(store: &ImageStore, st: &mut StageState) -> Result<ImageRecord> {
    st.image["created"] = json!(st.created.clone());
    Ok(berth_image::changeset::write_image(
        store, &st.image, &st.layers,
    )?)
}

/// A sink that writes to a file descriptor's duplicate (the CLI's stderr,
/// unaffected while a RUN has the real fd 2).
pub fn stderr_sink() -> Sink {
    // SAFETY: dup of fd 2; the new fd is owned by the File.
    let fd = unsafe { libc::dup(2) };
    let f: Box<dyn Write + Send> = if fd >= 0 {
        Box::new(unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) })
    } else {
        Box::new(std::io::sink())
    };
    Arc::new(Mutex::new(f))
}
