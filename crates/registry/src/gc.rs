//! Garbage collection by reference, safe while the registry serves.
//!
//! Mark: every manifest listed in a repository is a root; it marks itself and
//! everything it references (config, layers, child manifests). Sweep, holding
//! `gc.lock` exclusively: mark again what was pushed during the first mark, then
//! delete unmarked blobs whose mtime is older than the grace period. Writers hold the lock shared from "check the blob exists" to
//! "reference written", and touch every blob they reference, so a blob a
//! concurrent push is about to use is either fresh (kept) or already gone (the
//! push fails cleanly with MANIFEST_BLOB_UNKNOWN); nothing referenced is deleted.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use berth_image::Digest;
use serde::Deserialize;

use crate::config::GcConfig;
use crate::error::Result;
use crate::route::RepoName;
use crate::store::Store;
use crate::upload::Uploads;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub marked: usize,
    pub blobs_deleted: usize,
    pub bytes_freed: u64,
    pub links_removed: usize,
    pub uploads_purged: usize,
}

#[derive(Deserialize)]
struct Refs {
    config: Option<Ref>,
    #[serde(default)]
    layers: Vec<Ref>,
    #[serde(default)]
    manifests: Vec<Ref>,
}

#[derive(Deserialize)]
struct Ref {
    digest: String,
}

pub fn collect(store: &Store, uploads: &Uploads, cfg: &GcConfig) -> Result<GcReport> {
    let mut report = GcReport::default();
    let repos: Vec<RepoName> = store
        .repositories()?
        .iter()
        .filter_map(|r| RepoName::parse(r).ok())
        .collect();

    // The slow full mark runs without the lock; a second pass under it picks up
    // manifests pushed meanwhile, so GC is safe even with a zero grace period.
    let mut marked: HashSet<Digest> = HashSet::new();
    let mut seen: HashSet<(RepoName, Digest)> = HashSet::new();
    mark(store, &repos, &mut marked, &mut seen)?;

    let grace = Duration::from_secs(cfg.grace_secs);
    let now = SystemTime::now();
    {
        let _lock = store.lock(true)?;
        let repos: Vec<RepoName> = store
            .repositories()?
            .iter()
            .filter_map(|r| RepoName::parse(r).ok())
            .collect();
        mark(store, &repos, &mut marked, &mut seen)?;
        report.marked = marked.len();
        for d in store.content.list()? {
            if marked.contains(&d) {
                continue;
            }
            // Re-read under the lock: a writer may have just touched it.
            let path = store.content.blob_path(&d);
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if age < grace {
                continue;
            }
            store.content.delete(&d)?;
            report.blobs_deleted += 1;
            report.bytes_freed += meta.len();
        }
        // Links to blobs that are gone would serve 404s for a HEAD that says yes.
        for repo in &repos {
            for d in store.blob_links(repo)? {
                if !store.content.exists(&d) && store.unlink_blob(repo, &d)? {
                    report.links_removed += 1;
                }
            }
        }
    }
    report.uploads_purged = uploads.purge_older_than(cfg.upload_max_age_secs)?;
    Ok(report)
}

/// Marks every manifest listed in `repos` not yet in `seen`, and what it references.
fn mark(
    store: &Store,
    repos: &[RepoName],
    marked: &mut HashSet<Digest>,
    seen: &mut HashSet<(RepoName, Digest)>,
) -> Result<()> {
    for repo in repos {
        for m in store.manifests(repo)? {
            if !seen.insert((repo.clone(), m.clone())) {
                continue;
            }
            marked.insert(m.clone());
            let Ok(bytes) = store.content.read(&m) else {
                continue;
            };
            let Ok(refs) = serde_json::from_slice::<Refs>(&bytes) else {
                continue;
            };
            for r in refs
                .config
                .iter()
                .chain(&refs.layers)
                .chain(&refs.manifests)
            {
                if let Ok(d) = r.digest.parse() {
                    marked.insert(d);
                }
            }
        }
    }
    Ok(())
}
