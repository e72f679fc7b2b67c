//! Orchestration: parse, pick the stages the target needs, build them in
//! order, write the image (config, manifest, record, tags).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use berth_image::lease::Lease;
use berth_image::{ImageRecord, ImageStore, Reference};
use serde_json::json;

use super::steps::{Ctx, StageState};
use super::{BuildOptions, BuildResult, DockerfileSource, Sink, config};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{self, Dockerfile, Kind, expand};
use crate::error::{Error, IoContext, Result};

/// Builds the image described by `opts`, writing progress to `out`.
pub fn build(store: &Arc<ImageStore>, opts: &BuildOptions, out: Sink) -> Result<BuildResult> {
    let t0 = Instant::now();
    let (name, text) = match &opts.dockerfile {
        DockerfileSource::Text(t) => ("Dockerfile".to_string(), t.clone()),
        DockerfileSource::Path(p) => {
            let full = if p.is_absolute() {
                p.clone()
            } else {
                opts.context.join(p)
            };
            let text = fs::read_to_string(&full).ctx("read Dockerfile", &full)?;
            (p.display().to_string(), text)
        }
    };
    let ctx_ignore = opts.context.join(".dockerignore");
    let ignore = fs::read_to_string(&ctx_ignore)
        .ok()
        .map(|t| Ignore::parse(&t));
    let mut ctx = Ctx::new(store.clone(), opts, out, ignore)?;
    // A build killed earlier may have left its step mounts and containers.
    if let Err(e) = super::cleanup_stale(store.root()) {
        ctx.line(&format!("warning: cleaning up after an earlier build: {e}"));
    }
    ctx.vertex(&format!("[internal] load build definition from {name}"));
    let df = dockerfile::parse(&name, &text)?;
    ctx.done(t0);

    // Meta args: usable in FROM lines.
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
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
    let mut lease = Lease::for_process("build");
    let _guard = store.lease_process(&lease)?;
    let mut states: Vec<Option<StageState>> = vec![None; df.stages.len()];
    for i in 0..=target {
        if !needed.contains(&i) {
            continue;
        }
        let st = ctx.build_stage(&df, i, &meta, &states, &mut lease)?;
        states[i] = Some(st);
    }
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
        cached_steps: ctx.cached,
        executed_steps: ctx.executed,
    })
}

/// A stage by name, or by index (`COPY --from=0`).
pub(super) fn stage_index(df: &Dockerfile, name: &str, before: usize) -> Option<usize> {
    df.stages[..before]
        .iter()
        .position(|s| s.name.as_deref() == Some(name))
        .or_else(|| name.parse::<usize>().ok().filter(|&i| i < before))
}

/// The stages the target depends on (FROM <stage>, COPY --from=<stage>).
fn needed_stages(
    df: &Dockerfile,
    target: usize,
    meta: &BTreeMap<String, String>,
) -> BTreeSet<usize> {
    let mut need = BTreeSet::new();
    let mut todo = vec![target];
    let x = |s: &str| expand::expand(s, df.escape, &|n| meta.get(n).cloned()).unwrap_or_default();
    while let Some(i) = todo.pop() {
        if !need.insert(i) {
            continue;
        }
        let s = &df.stages[i];
        if let Some(j) = stage_index(df, &x(&s.base).to_ascii_lowercase(), i) {
            todo.push(j);
        }
        for ins in &s.instructions {
            if let Kind::Copy(c) = &ins.kind
                && let Some(f) = &c.from
                && let Some(j) = stage_index(df, &x(f).to_ascii_lowercase(), i)
            {
                todo.push(j);
            }
        }
    }
    need
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
