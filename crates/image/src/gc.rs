//! Garbage collection by references: a blob or layer dir survives while an
//! image record or a live lease names it. Also `image prune` and disk usage.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::digest::Digest;
use crate::error::Result;
use crate::store::{ImageStore, Removed, familiar};

#[derive(Debug, Default, PartialEq)]
pub struct GcStats {
    pub blobs: usize,
    pub layers: usize,
    /// Unpacked layer bytes plus blob bytes deleted.
    pub bytes: u64,
}

#[derive(Debug, Default)]
pub struct PruneReport {
    pub removed: Vec<Removed>,
    pub gc: GcStats,
}

/// Per-image sizes with shared layers counted once, as `docker system df -v`.
#[derive(Debug)]
pub struct ImageUsage {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    /// All layers of the image (what `images` shows).
    pub size: u64,
    /// Bytes in layers that some other image also uses.
    pub shared: u64,
    pub unique: u64,
    pub in_use: bool,
}

#[derive(Debug)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Every referenced layer once.
    pub layers_size: u64,
    /// Layers no in-use image needs (what pruning all unused images frees).
    pub reclaimable: u64,
    /// Real disk use (allocated blocks, hard links once) of the layer dirs
    /// and of the content store.
    pub layers_disk: u64,
    pub content_disk: u64,
}

/// Live references: everything image records and live leases name.
pub(crate) fn live_refs(store: &ImageStore) -> Result<(BTreeSet<Digest>, BTreeSet<Digest>)> {
    let mut blobs = BTreeSet::new();
    let mut layers = BTreeSet::new();
    for rec in store.load()?.images.values() {
        blobs.extend(rec.blobs().cloned());
        layers.extend(rec.layers.iter().map(|l| l.chain_id.clone()));
    }
    for l in store.leases.live()? {
        blobs.extend(l.blobs);
        layers.extend(l.chain_ids);
    }
    Ok((blobs, layers))
}

impl ImageStore {
    /// Deletes unreferenced blobs and layer dirs: only among `candidates`
    /// (blobs, layers) when given, else everything in the store. Holds the GC
    /// lock throughout, so a lease taken meanwhile waits and then sees the
    /// result.
    pub fn collect(&self, candidates: Option<(&[Digest], &[Digest])>) -> Result<GcStats> {
        let _lock = self.leases.lock()?;
        let (live_blobs, live_layers) = live_refs(self)?;
        let (blobs, layers) = match candidates {
            Some((b, l)) => (b.to_vec(), l.to_vec()),
            None => (self.content.list()?, self.layers.list()?),
        };
        let mut stats = GcStats::default();
        let mut seen = HashSet::new();
        for c in layers {
            if live_layers.contains(&c) || !seen.insert(c.clone()) || !self.layers.dir(&c).exists()
            {
                continue;
            }
            stats.bytes += self.layers.meta(&c).map_or(0, |m| m.size);
            self.layers.remove(&c)?;
            stats.layers += 1;
        }
        for b in blobs {
            if live_blobs.contains(&b) || !seen.insert(b.clone()) {
                continue;
            }
            if let Ok(size) = self.content.size(&b) {
                self.content.delete(&b)?;
                stats.bytes += size;
                stats.blobs += 1;
            }
        }
        Ok(stats)
    }

    /// `image prune`: removes dangling images (no tag), or with `all` every
    /// image no live lease uses, then collects all unreferenced data.
    pub fn prune(&self, all: bool) -> Result<PruneReport> {
        let in_use: BTreeSet<Digest> = self
            .leases
            .live()?
            .into_iter()
            .filter_map(|l| l.image)
            .collect();
        let removed = self.update(|db| {
            let doomed: Vec<String> = db
                .images
                .iter()
                .filter(|(_, r)| !in_use.contains(&r.id) && (all || r.repo_tags.is_empty()))
                .map(|(k, _)| k.clone())
                .collect();
            let mut out = Vec::new();
            for k in doomed {
                let rec = db.images.remove(&k).expect("listed above");
                out.extend(rec.repo_tags.iter().map(|t| Removed::Untagged(familiar(t))));
                out.push(Removed::Deleted(rec.id));
            }
            Ok(out)
        })?;
        let gc = self.collect(None)?;
        Ok(PruneReport { removed, gc })
    }

    pub fn disk_usage(&self) -> Result<DiskUsage> {
        let recs = self.list()?;
        let in_use: BTreeSet<Digest> = self
            .leases
            .live()?
            .into_iter()
            .filter_map(|l| l.image)
            .collect();
        let mut users: BTreeMap<&Digest, usize> = BTreeMap::new();
        let mut layer_size: BTreeMap<&Digest, u64> = BTreeMap::new();
        for r in &recs {
            let chains: BTreeSet<&Digest> = r.layers.iter().map(|l| &l.chain_id).collect();
            for c in chains {
                *users.entry(c).or_default() += 1;
                layer_size
                    .entry(c)
                    .or_insert_with(|| self.layers.meta(c).map_or(0, |m| m.size));
            }
        }
        let mut needed: BTreeSet<&Digest> = BTreeSet::new();
        let images = recs
            .iter()
            .map(|r| {
                let chains: BTreeSet<&Digest> = r.layers.iter().map(|l| &l.chain_id).collect();
                let (mut shared, mut unique) = (0, 0);
                for c in &chains {
                    let s = layer_size[c];
                    if users[c] > 1 {
                        shared += s
                    } else {
                        unique += s
                    }
                }
                let used = in_use.contains(&r.id);
                if used {
                    needed.extend(chains.iter().copied());
                }
                ImageUsage {
                    id: r.id.clone(),
                    repo_tags: r.repo_tags.clone(),
                    size: shared + unique,
                    shared,
                    unique,
                    in_use: used,
                }
            })
            .collect();
        let layers_size: u64 = layer_size.values().sum();
        let kept: u64 = needed.iter().map(|c| layer_size[c]).sum();
        Ok(DiskUsage {
            images,
            layers_size,
            reclaimable: layers_size - kept,
            layers_disk: du(self.layers.root()),
            content_disk: du(&self.content_root()),
        })
    }
}

/// Allocated bytes under `dir`, each inode once (hard links inside layers).
pub fn du(dir: &Path) -> u64 {
    fn walk(p: &Path, seen: &mut HashSet<(u64, u64)>, total: &mut u64) {
        let Ok(rd) = fs::read_dir(p) else { return };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if seen.insert((m.dev(), m.ino())) {
                *total += m.blocks() * 512;
            }
            if m.is_dir() {
                walk(&e.path(), seen, total);
            }
        }
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    walk(dir, &mut seen, &mut total);
    total
}
