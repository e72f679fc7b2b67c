//! The local image store: content, layers and image records.
//!
//! Records live in `<root>/images.json`, rewritten whole under an flock by
//! write-temp + fsync + rename, so a crash leaves the old or the new file,
//! never a torn one. Image ID = config digest, as in docker.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::content::{ContentStore, sync_dir};
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::layers::LayerStore;
use crate::lease::{Lease, LeaseGuard, Leases};
use crate::reference::Reference;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerRecord {
    pub blob: Digest,
    pub media_type: String,
    pub blob_size: u64,
    pub diff_id: Digest,
    pub chain_id: Digest,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ImageRecord {
    /// Config digest.
    pub id: Digest,
    /// The platform manifest (kept in the content store).
    pub manifest: Digest,
    pub manifest_media_type: String,
    /// The index the manifest was chosen from, if any (kept too, for push).
    #[serde(default)]
    pub index: Option<Digest>,
    /// Full names: `localhost:5000/busybox:latest`.
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// `localhost:5000/busybox@sha256:…`, what the registry called it.
    #[serde(default)]
    pub repo_digests: Vec<String>,
    pub layers: Vec<LayerRecord>,
    pub created: Option<String>,
    pub platform: String,
    /// Unpacked size of all layers.
    pub size: u64,
}

impl ImageRecord {
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        [&self.id, &self.manifest]
            .into_iter()
            .chain(self.index.iter())
            .chain(self.layers.iter().map(|l| &l.blob))
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct Db {
    pub(crate) images: BTreeMap<String, ImageRecord>,
}

#[derive(Debug, PartialEq)]
pub enum Removed {
    Untagged(String),
    Deleted(Digest),
}

#[derive(Clone, Debug)]
pub struct ImageStore {
    root: PathBuf,
    pub content: ContentStore,
    pub layers: LayerStore,
    pub leases: Leases,
}

/// Display form of a stored full name (`docker.io/library/x:t` → `x:t`).
pub fn familiar(full: &str) -> String {
    full.parse::<Reference>()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| full.to_string())
}

impl ImageStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).ctx("create", &root)?;
        Ok(ImageStore {
            content: ContentStore::open(root.join("content"))?,
            layers: LayerStore::open(root.join("layers"))?,
            leases: Leases::open(&root)?,
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn content_root(&self) -> PathBuf {
        self.root.join("content")
    }

    fn db_path(&self) -> PathBuf {
        self.root.join("images.json")
    }

    /// Removes what interrupted commands left behind: unpack dirs and
    /// leases of dead processes, ingest dirs of already committed blobs.
    /// Partial downloads stay (the next pull resumes them). Run at the start
    /// of commands that write to the store.
    pub fn cleanup(&self) -> Result<()> {
        self.layers.clean_dead_tmp()?;
        self.content.clean_committed_ingest()?;
        self.leases.clean_dead()?;
        Ok(())
    }

    /// Takes a process lease on `lease`'s references (see [`crate::lease`]);
    /// the lease ends when the guard drops or the process dies.
    pub fn lease_process(&self, lease: &Lease) -> Result<LeaseGuard> {
        self.leases.put(lease)?;
        Ok(LeaseGuard::new(self.leases.clone(), lease.id.clone()))
    }

    pub(crate) fn load(&self) -> Result<Db> {
        let p = self.db_path();
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Json {
                what: p.display().to_string(),
                source: e,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Db::default()),
            Err(e) => Err(e).ctx("read", p),
        }
    }

    /// Read-modify-write of the records under an exclusive lock.
    pub(crate) fn update<T>(&self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        let lock_path = self.root.join("images.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .ctx("open", &lock_path)?;
        // SAFETY: flock on an fd we own; released when `lock` drops.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx("flock", lock_path);
        }
        let mut db = self.load()?;
        let out = f(&mut db)?;
        let p = self.db_path();
        let tmp = self.root.join("images.json.tmp");
        let data = serde_json::to_vec_pretty(&db).expect("records serialise");
        {
            let mut f = File::create(&tmp).ctx("create", &tmp)?;
            std::io::Write::write_all(&mut f, &data).ctx("write", &tmp)?;
            f.sync_all().ctx("fsync", &tmp)?;
        }
        fs::rename(&tmp, &p).ctx("rename", &p)?;
        sync_dir(&self.root)?;
        drop(lock);
        Ok(out)
    }

    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        Ok(self.load()?.images.into_values().collect())
    }

    /// Adds or merges an image record and points `tag` (full name) at it,
    /// moving the tag off any image that had it.
    pub fn put(&self, mut rec: ImageRecord, tag: Option<&str>) -> Result<()> {
        self.update(|db| {
            if let Some(t) = tag {
                for other in db.images.values_mut() {
                    other.repo_tags.retain(|x| x != t);
                }
                rec.repo_tags.push(t.to_string());
            }
            let key = rec.id.to_string();
            if let Some(old) = db.images.remove(&key) {
                for t in old.repo_tags {
                    if !rec.repo_tags.contains(&t) {
                        rec.repo_tags.push(t);
                    }
                }
                for d in old.repo_digests {
                    if !rec.repo_digests.contains(&d) {
                        rec.repo_digests.push(d);
                    }
                }
            }
            rec.repo_tags.sort();
            rec.repo_digests.sort();
            rec.repo_digests.dedup();
            db.images.insert(key, rec);
            Ok(())
        })
    }

    /// Finds an image by name[:tag], name@digest, full or short ID.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let db = self.load()?;
        find(&db, name)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("image {name}")))
    }

    pub fn tag(&self, source: &str, target: &str) -> Result<()> {
        let target: Reference = target.parse()?;
        let full = target.tagged().ok_or(Error::InvalidReference(
            target.to_string(),
            "a tag, not a digest",
        ))?;
        let rec = self.resolve(source)?;
        self.put(rec, Some(&full))
    }

    /// `rmi`: untag by name, delete the image when no tag is left (or by ID,
    /// which needs `force` while several tags point at it). An image a live
    /// lease uses (mounted, a container's) is only deleted with `force`, and
    /// even then its layers stay until the lease ends. Blobs and layer dirs go
    /// through the collector, which keeps whatever is still referenced.
    pub fn remove(&self, name: &str, force: bool) -> Result<Vec<Removed>> {
        let mut out = Vec::new();
        let in_use: BTreeSet<Digest> = self
            .leases
            .live()?
            .into_iter()
            .filter_map(|l| l.image)
            .collect();
        let deleted = self.update(|db| {
            let rec = find(db, name)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("image {name}")))?;
            let by_name = name
                .parse::<Reference>()
                .ok()
                .and_then(|r| r.tagged())
                .filter(|t| rec.repo_tags.contains(t));
            let key = rec.id.to_string();
            if let Some(t) = by_name {
                if rec.repo_tags.len() == 1 && in_use.contains(&rec.id) && !force {
                    return Err(Error::InUse(name.to_string()));
                }
                let r = db.images.get_mut(&key).expect("found above");
                r.repo_tags.retain(|x| x != &t);
                out.push(Removed::Untagged(familiar(&t)));
                if !r.repo_tags.is_empty() {
                    return Ok(None);
                }
            } else if rec.repo_tags.len() > 1 && !force {
                return Err(Error::Conflict(name.to_string(), rec.repo_tags.len()));
            } else if in_use.contains(&rec.id) && !force {
                return Err(Error::InUse(name.to_string()));
            } else {
                out.extend(rec.repo_tags.iter().map(|t| Removed::Untagged(familiar(t))));
            }
            let rec = db.images.remove(&key).expect("found above");
            let blobs: Vec<Digest> = rec.blobs().cloned().collect();
            let layers: Vec<Digest> = rec.layers.iter().map(|l| l.chain_id.clone()).collect();
            Ok(Some((rec.id, blobs, layers)))
        })?;
        // Deleting after the record is gone: a crash here leaves garbage, never
        // a record pointing at missing data.
        if let Some((id, blobs, layers)) = deleted {
            self.collect(Some((&blobs, &layers)))?;
            out.push(Removed::Deleted(id));
        }
        Ok(out)
    }

    /// Unpacked layer dirs of an image, lowest first.
    pub fn layer_dirs(&self, rec: &ImageRecord) -> Result<Vec<PathBuf>> {
        rec.layers
            .iter()
            .map(|l| {
                if self.layers.exists(&l.chain_id) {
                    Ok(self.layers.diff_dir(&l.chain_id))
                } else {
                    Err(Error::NotFound(format!("layer {}", l.chain_id)))
                }
            })
            .collect()
    }
}

fn find<'a>(db: &'a Db, name: &str) -> Option<&'a ImageRecord> {
    if let Ok(r) = name.parse::<Reference>() {
        if let Some(d) = &r.digest {
            let want = format!("{}@{d}", r.repository());
            if let Some(rec) = db.images.values().find(|i| i.repo_digests.contains(&want)) {
                return Some(rec);
            }
        } else if let Some(t) = r.tagged()
            && let Some(rec) = db.images.values().find(|i| i.repo_tags.contains(&t))
        {
            return Some(rec);
        }
    }
    // Image ID, full (`sha256:…`) or a unique prefix of the hex.
    let hex = name.strip_prefix("sha256:").unwrap_or(name);
    if hex.len() < 4 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut it = db.images.values().filter(|i| i.id.hex().starts_with(hex));
    match (it.next(), it.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}
