//! Registry storage. Blobs (layers, configs and manifests alike) live once in the
//! shared [`ContentStore`]; each repository only holds small link files:
//!
//! ```text
//! <root>/content/...                               the content store
//! <root>/repositories/<name>/_blobs/<algo>/<hex>      blob linked to the repo (empty)
//! <root>/repositories/<name>/_manifests/<algo>/<hex>  manifest in the repo (its media type)
//! <root>/repositories/<name>/_tags/<tag>              tag → manifest digest
//! <root>/repositories/<name>/_referrers/<algo>-<subject hex>/<algo>-<hex>  descriptor JSON
//! <root>/uploads/<id>/{data,state.json}              upload sessions
//! <root>/gc.lock                                     shared by writers, exclusive for sweep
//! ```
//!
//! Repository components can never start with `_`, so the `_x` dirs can't clash
//! with nested repository names. Every file is written to a temporary name and
//! renamed into place.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use berth_image::{ContentStore, Digest};

use crate::error::{IoContext, Result};
use crate::route::{RepoName, tag_ok};

#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
    pub content: ContentStore,
    repos: PathBuf,
}

/// Holds `gc.lock` (shared or exclusive) until dropped.
pub struct GcLock(#[allow(dead_code)] File);

impl Store {
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        let repos = root.join("repositories");
        for d in [&repos, &root.join("uploads")] {
            fs::create_dir_all(d).ctx("create", d)?;
        }
        Ok(Store {
            content: ContentStore::open(root.join("content"))?,
            repos,
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    /// Writers that are about to make something referenced hold this shared; the
    /// GC sweep holds it exclusive. flock, so it also works across processes
    /// (`berth registry gc` next to a serving registry).
    pub fn lock(&self, exclusive: bool) -> Result<GcLock> {
        let p = self.root.join("gc.lock");
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .ctx("open", &p)?;
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on an fd we own.
        if unsafe { libc::flock(f.as_raw_fd(), op) } != 0 {
            return Err(io::Error::last_os_error()).ctx("flock", p);
        }
        Ok(GcLock(f))
    }

    fn repo_dir(&self, repo: &RepoName) -> PathBuf {
        self.repos.join(repo.as_str())
    }

    fn link_path(&self, repo: &RepoName, kind: &str, d: &Digest) -> PathBuf {
        self.repo_dir(repo)
            .join(kind)
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    pub fn repo_exists(&self, repo: &RepoName) -> bool {
        let dir = self.repo_dir(repo);
        dir.join("_manifests").is_dir() || dir.join("_blobs").is_dir()
    }

    /// Marks a content blob as just used, so a GC running now leaves it alone for
    /// the grace period even if nothing references it yet.
    pub fn touch(&self, d: &Digest) {
        touch(&self.content.blob_path(d));
    }

    /// Moves a file already verified to hash to `d` into the content store:
    /// fsync, then atomic rename (same filesystem: both live under the root).
    pub fn adopt(&self, src: &Path, d: &Digest) -> Result<()> {
        File::open(src)
            .and_then(|f| f.sync_all())
            .ctx("fsync", src)?;
        let target = self.content.blob_path(d);
        fs::rename(src, &target).ctx("rename", &target)?;
        let dir = target.parent().expect("blob paths have parents");
        File::open(dir).and_then(|f| f.sync_all()).ctx("fsync", dir)
    }

    // --- blobs ---

    pub fn blob_linked(&self, repo: &RepoName, d: &Digest) -> bool {
        self.link_path(repo, "_blobs", d).is_file() && self.content.exists(d)
    }

    pub fn link_blob(&self, repo: &RepoName, d: &Digest) -> Result<()> {
        let p = self.link_path(repo, "_blobs", d);
        if !p.is_file() {
            write_atomic(&p, b"")?;
        }
        Ok(())
    }

    pub fn unlink_blob(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        remove(&self.link_path(repo, "_blobs", d))
    }

    pub fn blob_links(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(repo).join("_blobs"))
    }

    // --- manifests ---

    /// The stored media type when the manifest is in this repository.
    pub fn manifest_type(&self, repo: &RepoName, d: &Digest) -> Result<Option<String>> {
        let p = self.link_path(repo, "_manifests", d);
        match fs::read_to_string(&p) {
            Ok(t) if self.content.exists(d) => Ok(Some(t)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("read", p),
        }
    }

    pub fn link_manifest(&self, repo: &RepoName, d: &Digest, media_type: &str) -> Result<()> {
        write_atomic(
            &self.link_path(repo, "_manifests", d),
            media_type.as_bytes(),
        )
    }

    pub fn unlink_manifest(&self, repo: &RepoName, d: &Digest) -> Result<bool> {
        remove(&self.link_path(repo, "_manifests", d))
    }

    pub fn manifests(&self, repo: &RepoName) -> Result<Vec<Digest>> {
        digests_under(&self.repo_dir(repo).join("_manifests"))
    }

    // --- tags ---

    pub fn resolve_tag(&self, repo: &RepoName, tag: &str) -> Result<Option<Digest>> {
        let p = self.repo_dir(repo).join("_tags").join(tag);
        match fs::read_to_string(&p) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("read", p),
        }
    }

    pub fn set_tag(&self, repo: &RepoName, tag: &str, d: &Digest) -> Result<()> {
        let p = self.repo_dir(repo).join("_tags").join(tag);
        write_atomic(&p, d.to_string().as_bytes())
    }

    pub fn delete_tag(&self, repo: &RepoName, tag: &str) -> Result<bool> {
        remove(&self.repo_dir(repo).join("_tags").join(tag))
    }

    /// Sorted tags, or None when the repository does not exist.
    pub fn tags(&self, repo: &RepoName) -> Result<Option<Vec<String>>> {
        if !self.repo_exists(repo) {
            return Ok(None);
        }
        let dir = self.repo_dir(repo).join("_tags");
        let mut out: Vec<String> = names_in(&dir)?.into_iter().filter(|t| tag_ok(t)).collect();
        out.sort();
        Ok(Some(out))
    }

    // --- referrers ---

    fn referrers_dir(&self, repo: &RepoName, subject: &Digest) -> PathBuf {
        self.repo_dir(repo).join("_referrers").join(format!(
            "{}-{}",
            subject.algorithm().as_str(),
            subject.hex()
        ))
    }

    pub fn add_referrer(
        &self,
        repo: &RepoName,
        subject: &Digest,
        d: &Digest,
        descriptor: &serde_json::Value,
    ) -> Result<()> {
        let p = self.referrers_dir(repo, subject).join(format!(
            "{}-{}",
            d.algorithm().as_str(),
            d.hex()
        ));
        write_atomic(&p, descriptor.to_string().as_bytes())
    }

    pub fn remove_referrer(&self, repo: &RepoName, subject: &Digest, d: &Digest) -> Result<()> {
        let dir = self.referrers_dir(repo, subject);
        remove(&dir.join(format!("{}-{}", d.algorithm().as_str(), d.hex())))?;
        let _ = fs::remove_dir(dir);
        Ok(())
    }

    /// Descriptors of the manifests whose subject is `subject`, sorted by digest.
    pub fn referrers(&self, repo: &RepoName, subject: &Digest) -> Result<Vec<serde_json::Value>> {
        let dir = self.referrers_dir(repo, subject);
        let mut names = names_in(&dir)?;
        names.sort();
        let mut out = Vec::new();
        for n in names {
            let p = dir.join(&n);
            let Ok(text) = fs::read_to_string(&p) else {
                continue;
            };
            // Only manifests still in the repository count.
            let Some(d) = n.replacen('-', ":", 1).parse::<Digest>().ok() else {
                continue;
            };
            if self.manifest_type(repo, &d)?.is_none() {
                continue;
            }
            if let Ok(v) = serde_json::from_str(&text) {
                out.push(v);
            }
        }
        Ok(out)
    }

    // --- repositories ---

    /// All repository names, sorted.
    pub fn repositories(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        walk_repos(&self.repos, "", &mut out)?;
        out.sort();
        Ok(out)
    }
}

fn walk_repos(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    for name in names_in(dir)? {
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let p = dir.join(&name);
        if !p.is_dir() {
            continue;
        }
        if p.join("_manifests").is_dir() || p.join("_blobs").is_dir() {
            out.push(full.clone());
        }
        walk_repos(&p, &full, out)?;
    }
    Ok(())
}

fn names_in(dir: &Path) -> Result<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read dir", dir),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.ctx("read dir", dir)?;
        if let Some(n) = e.file_name().to_str()
            && !n.starts_with(".tmp-")
        {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

fn digests_under(dir: &Path) -> Result<Vec<Digest>> {
    let mut out = Vec::new();
    for algo in ["sha256", "sha512"] {
        for hex in names_in(&dir.join(algo))? {
            if let Ok(d) = format!("{algo}:{hex}").parse() {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn remove(p: &Path) -> Result<bool> {
    match fs::remove_file(p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx("remove", p),
    }
}

pub(crate) fn touch(p: &Path) {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else {
        return;
    };
    // SAFETY: valid C string; a null times pointer means "now".
    unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
}

static TMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `data` to `path` via a temporary file in the same directory, fsynced
/// and renamed into place; the directory is fsynced too.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().expect("store paths have parents");
    fs::create_dir_all(dir).ctx("create", dir)?;
    let tmp = dir.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        TMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let res = (|| {
        let mut f = File::create(&tmp).ctx("create", &tmp)?;
        f.write_all(data).ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, path).ctx("rename", path)?;
        File::open(dir).and_then(|d| d.sync_all()).ctx("fsync", dir)
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_tags_repos() {
        let t = tempfile::tempdir().unwrap();
        let s = Store::open(t.path()).unwrap();
        let a = RepoName::parse("a/b").unwrap();
        let d = s.content.write_all(b"{}", None).unwrap();
        assert!(!s.repo_exists(&a));
        s.link_blob(&a, &d).unwrap();
        assert!(s.blob_linked(&a, &d));
        s.link_manifest(&a, &d, "x/y").unwrap();
        s.set_tag(&a, "v1", &d).unwrap();
        s.set_tag(&a, "v0", &d).unwrap();
        assert_eq!(s.tags(&a).unwrap().unwrap(), vec!["v0", "v1"]);
        assert_eq!(s.resolve_tag(&a, "v1").unwrap(), Some(d.clone()));
        assert_eq!(s.manifest_type(&a, &d).unwrap().as_deref(), Some("x/y"));
        let c = RepoName::parse("a").unwrap();
        s.link_blob(&c, &d).unwrap();
        assert_eq!(s.repositories().unwrap(), vec!["a", "a/b"]);
        assert!(s.unlink_blob(&a, &d).unwrap());
        assert!(!s.blob_linked(&a, &d));
    }
}
