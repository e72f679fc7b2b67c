//! Content store: blobs by digest under `<root>/content/blobs/<algo>/<hex>`.
//!
//! Shaped like containerd's `content.Store`: readers by digest, and a [`Writer`]
//! that hashes while it writes and commits (atomic rename) only if the digest
//! and size match. Partial writes live in `<root>/content/ingest/<algo>-<hex>/`
//! and are resumed by the next writer of the same digest; an exclusive `flock`
//! on the ingest dir serialises concurrent writers of one blob.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{Error, IoContext, Result};

#[derive(Clone, Debug)]
pub struct ContentStore {
    root: PathBuf,
}

impl ContentStore {
    /// Opens (creating if needed) the store rooted at `root` (normally `<berth root>/content`).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for d in ["blobs/sha256", "blobs/sha512", "ingest"] {
            let p = root.join(d);
            fs::create_dir_all(&p).ctx("create", &p)?;
        }
        Ok(ContentStore { root })
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root
            .join("blobs")
            .join(d.algorithm().as_str())
            .join(d.hex())
    }

    fn ingest_dir(&self, d: &Digest) -> PathBuf {
        self.root
            .join("ingest")
            .join(format!("{}-{}", d.algorithm().as_str(), d.hex()))
    }

    pub fn exists(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn size(&self, d: &Digest) -> Result<u64> {
        let p = self.blob_path(d);
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(d.to_string())),
            Err(e) => Err(e).ctx("stat", p),
        }
    }

    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let p = self.blob_path(d);
        match File::open(&p) {
            Ok(f) => Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(d.to_string())),
            Err(e) => Err(e).ctx("open", p),
        }
    }

    /// Reads a (small) blob whole, re-verifying it: metadata blobs are parsed and
    /// trusted, so a corrupt one must not slip through.
    pub fn read(&self, d: &Digest) -> Result<Vec<u8>> {
        let mut buf = Vec::new();
        self.open_blob(d)?
            .read_to_end(&mut buf)
            .ctx("read", self.blob_path(d))?;
        let mut h = Hasher::new(d.algorithm());
        h.update(&buf);
        let actual = h.finish();
        if &actual != d {
            return Err(Error::DigestMismatch {
                expected: d.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(buf)
    }

    /// Writes `data` as a blob; verifies it against `expected` when given.
    pub fn write_all(&self, data: &[u8], expected: Option<&Digest>) -> Result<Digest> {
        let digest = match expected {
            Some(d) => d.clone(),
            None => Digest::sha256_of(data),
        };
        if self.exists(&digest) {
            return Ok(digest);
        }
        let mut w = self.writer(&digest)?;
        w.truncate()?;
        w.write_all(data).ctx("write", &w.data_path)?;
        w.commit(Some(data.len() as u64))
    }

    /// Opens a writer for the blob `expected`, resuming any partial data left by an
    /// earlier writer (see [`Writer::offset`]). Blocks while another writer of the
    /// same blob is active.
    pub fn writer(&self, expected: &Digest) -> Result<Writer> {
        let dir = self.ingest_dir(expected);
        let lock = loop {
            fs::create_dir_all(&dir).ctx("create", &dir)?;
            let lock_path = dir.join("lock");
            let lock = match OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
            {
                Ok(f) => f,
                // The previous holder committed and removed the dir between our
                // create_dir_all and open: start over.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).ctx("open", lock_path),
            };
            // SAFETY: flock on an fd we own.
            if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(io::Error::last_os_error()).ctx("flock", lock_path);
            }
            // The holder before us may have committed and unlinked the lock file:
            // then our lock protects nothing and we must retry on a fresh one.
            let held = lock.metadata().ctx("stat", &lock_path)?;
            match fs::metadata(&lock_path) {
                Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => break lock,
                _ => continue,
            }
        };
        let data_path = dir.join("data");
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&data_path)
            .ctx("open", &data_path)?;
        // Resume: re-hash what an earlier (killed or failed) writer left behind.
        let mut hasher = Hasher::new(expected.algorithm());
        let mut offset = 0u64;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = file.read(&mut buf).ctx("read", &data_path)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            offset += n as u64;
        }
        Ok(Writer {
            file,
            hasher,
            offset,
            data_path,
            dir,
            target: self.blob_path(expected),
            expected: expected.clone(),
            _lock: lock,
        })
    }

    /// Ingest dirs: (dir, blob digest, partial bytes, held by a live writer).
    pub fn ingest_entries(&self) -> Result<Vec<IngestEntry>> {
        let root = self.root.join("ingest");
        let mut out = Vec::new();
        for e in fs::read_dir(&root).ctx("read dir", &root)? {
            let dir = e.ctx("read dir", &root)?.path();
            let name = dir.file_name().unwrap_or_default().to_string_lossy();
            let digest = name.replacen('-', ":", 1).parse::<Digest>().ok();
            let partial = fs::metadata(dir.join("data")).map_or(0, |m| m.len());
            let busy = match File::open(dir.join("lock")) {
                // SAFETY: non-blocking flock probe on an fd we own.
                Ok(f) => {
                    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
                    r != 0
                }
                Err(_) => false,
            };
            out.push(IngestEntry {
                dir,
                digest,
                partial,
                busy,
            });
        }
        Ok(out)
    }

    /// Removes unlocked ingest dirs whose blob is already committed (a writer
    /// killed between rename and cleanup) or whose name is not a digest.
    pub fn clean_committed_ingest(&self) -> Result<usize> {
        let mut n = 0;
        for e in self.ingest_entries()? {
            if !e.busy && e.digest.as_ref().is_none_or(|d| self.exists(d)) {
                fs::remove_dir_all(&e.dir).ctx("remove", &e.dir)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Removes partial downloads no writer holds and whose data was last
    /// written `grace` or longer ago (a failed pull's, which the next pull
    /// would resume; past the grace nobody is retrying it), with the
    /// leftovers [`ContentStore::clean_committed_ingest`] removes. Each dir
    /// goes while its lock is held, so a writer that comes meanwhile starts
    /// afresh (see [`ContentStore::writer`]). Returns (dirs, partial bytes).
    pub fn clean_stale_ingest(&self, grace: std::time::Duration) -> Result<(usize, u64)> {
        let now = std::time::SystemTime::now();
        let (mut n, mut bytes) = (0, 0);
        for e in self.ingest_entries()? {
            let committed = e.digest.as_ref().is_none_or(|d| self.exists(d));
            let age = fs::metadata(e.dir.join("data"))
                .or_else(|_| fs::metadata(&e.dir))
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .unwrap_or_default();
            if e.busy || (!committed && age < grace) {
                continue;
            }
            let lock = File::open(e.dir.join("lock")).ok();
            // SAFETY: non-blocking flock on an fd we own.
            if let Some(f) = &lock
                && unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0
            {
                continue;
            }
            match fs::remove_dir_all(&e.dir) {
                Ok(()) => {
                    n += 1;
                    bytes += e.partial;
                }
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) => return Err(err).ctx("remove", &e.dir),
            }
        }
        Ok((n, bytes))
    }

    /// Copies a blob from `src` (verified against `digest` and `size`),
    /// resuming nothing: used by load, where the source is local.
    pub fn ingest_reader(&self, digest: &Digest, size: u64, mut src: impl Read) -> Result<()> {
        if self.exists(digest) {
            return Ok(());
        }
        let mut w = self.writer(digest)?;
        w.truncate()?;
        io::copy(&mut src, &mut w).ctx("write", &w.data_path)?;
        w.commit(Some(size)).map(drop)
    }

    /// Takes the file at `path` as the blob `digest` by rename (a builder's
    /// layer tar: no second 32 MB copy and hash). The caller vouches for
    /// the digest (it hashed what it wrote) and has synced the file; the
    /// size is checked. Across filesystems it is copied and verified.
    pub fn adopt_file(&self, path: &Path, digest: &Digest, size: u64) -> Result<()> {
        if self.exists(digest) {
            return Ok(());
        }
        let len = fs::metadata(path).ctx("stat", path)?.len();
        if len != size {
            return Err(Error::SizeMismatch {
                digest: digest.to_string(),
                expected: size,
                actual: len,
            });
        }
        let target = self.blob_path(digest);
        match fs::rename(path, &target) {
            Ok(()) => sync_dir(target.parent().unwrap_or(&self.root)),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                self.ingest_reader(digest, size, File::open(path).ctx("open", path)?)
            }
            Err(e) => Err(e).ctx("rename", target),
        }
    }

    pub fn delete(&self, d: &Digest) -> Result<()> {
        let p = self.blob_path(d);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).ctx("remove", p),
        }
    }

    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for algo in [Algorithm::Sha256, Algorithm::Sha512] {
            let dir = self.root.join("blobs").join(algo.as_str());
            for e in fs::read_dir(&dir).ctx("read dir", &dir)? {
                let e = e.ctx("read dir", &dir)?;
                let name = format!("{}:{}", algo.as_str(), e.file_name().to_string_lossy());
                if let Ok(d) = name.parse() {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[derive(Debug)]
pub struct IngestEntry {
    pub dir: PathBuf,
    pub digest: Option<Digest>,
    pub partial: u64,
    /// A live writer holds its lock.
    pub busy: bool,
}

/// An in-progress blob. Dropping it without [`Writer::commit`] keeps the partial
/// data for a later resume; [`Writer::discard`] throws it away.
pub struct Writer {
    file: File,
    hasher: Hasher,
    offset: u64,
    data_path: PathBuf,
    dir: PathBuf,
    target: PathBuf,
    expected: Digest,
    _lock: File,
}

impl Writer {
    /// Bytes already written (resumed from an earlier writer, plus this one's).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn expected(&self) -> &Digest {
        &self.expected
    }

    /// Path of the partial data, to re-read the resumed prefix.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// The digest of everything written so far.
    pub fn digest_so_far(&self) -> Digest {
        self.hasher.clone().finish()
    }

    /// Forgets partial data (e.g. when the source cannot serve a byte range).
    pub fn truncate(&mut self) -> Result<()> {
        self.file.set_len(0).ctx("truncate", &self.data_path)?;
        self.file
            .seek(SeekFrom::Start(0))
            .ctx("seek", &self.data_path)?;
        self.hasher = Hasher::new(self.expected.algorithm());
        self.offset = 0;
        Ok(())
    }

    /// Verifies digest (and size, when known) and renames the blob into place.
    /// On mismatch the partial data is deleted: it can never become valid.
    pub fn commit(self, expected_size: Option<u64>) -> Result<Digest> {
        let actual = self.hasher.clone().finish();
        let mismatch = if actual != self.expected {
            Some(Error::DigestMismatch {
                expected: self.expected.to_string(),
                actual: actual.to_string(),
            })
        } else {
            match expected_size {
                Some(size) if size != self.offset => Some(Error::SizeMismatch {
                    digest: self.expected.to_string(),
                    expected: size,
                    actual: self.offset,
                }),
                _ => None,
            }
        };
        if let Some(err) = mismatch {
            self.discard();
            return Err(err);
        }
        self.file.sync_all().ctx("fsync", &self.data_path)?;
        fs::rename(&self.data_path, &self.target).ctx("rename", &self.target)?;
        if let Some(parent) = self.target.parent() {
            sync_dir(parent)?;
        }
        // Still holding the lock: waiters re-check the lock file's identity.
        let _ = fs::remove_file(self.dir.join("lock"));
        let _ = fs::remove_dir(&self.dir);
        Ok(self.expected)
    }

    pub fn discard(self) {
        let _ = fs::remove_file(&self.data_path);
        let _ = fs::remove_file(self.dir.join("lock"));
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.offset += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|f| f.sync_all()).ctx("fsync", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_partial_downloads_go_unless_a_writer_holds_them() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let partial = |data: &[u8]| {
            let d = Digest::sha256_of(data);
            let mut w = cs.writer(&d).unwrap();
            w.write_all(&data[..3]).unwrap();
            w
        };
        let held = partial(b"held by a live writer");
        drop(partial(b"abandoned"));
        assert_eq!(cs.ingest_entries().unwrap().len(), 2);
        // Within the grace: both stay.
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(cs.clean_stale_ingest(hour).unwrap(), (0, 0));
        // Past it: the abandoned one goes, the held one stays.
        assert_eq!(
            cs.clean_stale_ingest(std::time::Duration::ZERO).unwrap(),
            (1, 3)
        );
        let left = cs.ingest_entries().unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].digest.as_ref(), Some(held.expected()));
        held.discard();
    }

    #[test]
    fn write_read_verify() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let d = cs.write_all(b"hello", None).unwrap();
        assert!(cs.exists(&d));
        assert_eq!(cs.read(&d).unwrap(), b"hello");
        assert_eq!(cs.size(&d).unwrap(), 5);
        assert_eq!(cs.list().unwrap(), vec![d.clone()]);
        cs.delete(&d).unwrap();
        assert!(cs.read(&d).unwrap_err().is_not_found());
    }

    #[test]
    fn wrong_digest_is_not_committed() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let want = Digest::sha256_of(b"good");
        let mut w = cs.writer(&want).unwrap();
        w.write_all(b"evil").unwrap();
        let err = w.commit(None).unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!cs.exists(&want));
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
        // Right digest, wrong declared size.
        let mut w = cs.writer(&want).unwrap();
        w.write_all(b"good").unwrap();
        assert!(matches!(
            w.commit(Some(3)).unwrap_err(),
            Error::SizeMismatch { .. }
        ));
    }

    #[test]
    fn resume_partial() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let data = vec![7u8; 100_000];
        let d = Digest::sha256_of(&data);
        {
            let mut w = cs.writer(&d).unwrap();
            w.write_all(&data[..40_000]).unwrap();
            // dropped: partial data stays
        }
        let mut w = cs.writer(&d).unwrap();
        assert_eq!(w.offset(), 40_000);
        w.write_all(&data[40_000..]).unwrap();
        assert_eq!(w.commit(Some(100_000)).unwrap(), d);
        assert_eq!(cs.read(&d).unwrap(), data);
    }

    #[test]
    fn concurrent_writers_same_blob() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path()).unwrap();
        let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::sha256_of(&data);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    let mut w = cs.writer(&d).unwrap();
                    // A resumed writer may already hold everything.
                    if w.offset() > 0 {
                        w.truncate().unwrap();
                    }
                    for chunk in data.chunks(4096) {
                        w.write_all(chunk).unwrap();
                    }
                    w.commit(Some(data.len() as u64)).unwrap();
                });
            }
        });
        assert_eq!(cs.read(&d).unwrap(), data);
        assert_eq!(fs::read_dir(t.path().join("ingest")).unwrap().count(), 0);
    }
}
