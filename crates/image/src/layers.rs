//! Unpacked layers, one directory per chain ID: `<root>/layers/<hex>/diff`.
//!
//! [`LayerStore::ingest`] is the single streaming pass of a pull: the compressed
//! bytes go through the content-store [`Writer`] (hashing, kept for push) while
//! they are decompressed, hashed again (diff ID) and unpacked. Only when both
//! digests match is the blob committed and the layer dir renamed into place;
//! otherwise the half-unpacked dir is deleted and nothing is kept.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::cancel::Cancel;
use crate::content::Writer;
use crate::digest::{Digest, Hasher};
use crate::error::{Error, IoContext, Result};
use crate::formats::{Compression, Descriptor};
use crate::unpack;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LayerMeta {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub parent: Option<Digest>,
    /// Bytes of file content in the diff.
    pub size: u64,
}

#[derive(Clone, Debug)]
pub struct LayerStore {
    root: PathBuf,
    /// What one layer may expand to (see [`unpack::DEFAULT_MAX_SIZE`]);
    /// shared by clones, set once by the daemon's configuration.
    max_size: Arc<AtomicU64>,
}

/// What the streaming source reported, to tell network failures (worth a
/// resume) from bad content (worth nothing).
struct Tee<'a, R> {
    prefix: Option<io::Take<File>>,
    source: R,
    writer: &'a mut Writer,
    source_failed: bool,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(p) = &mut self.prefix {
            let n = p.read(buf)?;
            if n > 0 {
                return Ok(n); // already hashed by the resumed writer
            }
            self.prefix = None;
        }
        let n = self
            .source
            .read(buf)
            .inspect_err(|_| self.source_failed = true)?;
        io::Write::write_all(self.writer, &buf[..n])?;
        Ok(n)
    }
}

/// Marks `dir` so that ext2/3/4 place each new subdirectory (and the files
/// under it) in a block group of its own choosing instead of next to `dir`
/// (`FS_TOPDIR_FL`, what `chattr +T` sets: the Orlov allocator then treats
/// the subdirectories as unrelated top-level trees).
///
/// Why: on ext4 without a journal, inode allocation skips inodes freed in the
/// last 1–6 minutes by probing each one (`recently_deleted`), and it always
/// starts at the group's first inode. A layer unpacked right after another
/// was removed (`rmi` then `pull`, builds replacing their layers) lands in the
/// same group and pays that probe for every file: measured here, a debian
/// pull (≈ 5 000 files) took 5.9–7.3 s after an `rmi` and 1.1–1.5 s with the
/// flag, under the same load. Spreading independent layers across groups is
/// also what the allocator does for top-level dirs anyway.
///
/// Best effort: other filesystems refuse or ignore the flag, which only
/// loses the optimisation.
pub fn spread_subdirs(dir: &Path) {
    use std::os::fd::AsRawFd;
    /// linux/fs.h; not exported by the libc crate.
    const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;
    let Ok(f) = File::open(dir) else { return };
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS/SETFLAGS read and write one int through the
    // pointer (the kernel uses int despite the ioctl number's `long`).
    unsafe {
        if libc::ioctl(f.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0
            || flags & FS_TOPDIR_FL != 0
        {
            return;
        }
        flags |= FS_TOPDIR_FL;
        libc::ioctl(f.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags);
    }
}

impl LayerStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).ctx("create", &tmp)?;
        spread_subdirs(&tmp);
        Ok(LayerStore {
            root,
            max_size: Arc::new(AtomicU64::new(unpack::DEFAULT_MAX_SIZE)),
        })
    }

    /// Caps what a layer may expand to (the sum of its files' apparent
    /// sizes); a layer past it is refused, naming the entry.
    pub fn set_max_size(&self, bytes: u64) {
        self.max_size.store(bytes, Ordering::Relaxed);
    }

    pub fn max_size(&self) -> u64 {
        self.max_size.load(Ordering::Relaxed)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, chain: &Digest) -> PathBuf {
        self.root.join(chain.hex())
    }

    pub fn diff_dir(&self, chain: &Digest) -> PathBuf {
        self.dir(chain).join("diff")
    }

    /// A layer exists once its dir (with meta.json, written before the rename) is in place.
    pub fn exists(&self, chain: &Digest) -> bool {
        self.dir(chain).join("meta.json").is_file()
    }

    pub fn meta(&self, chain: &Digest) -> Result<LayerMeta> {
        let p = self.dir(chain).join("meta.json");
        let b = fs::read(&p).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(format!("layer {chain}")),
            _ => Error::Io {
                op: "read",
                path: p.clone(),
                source: e,
            },
        })?;
        serde_json::from_slice(&b).map_err(|e| Error::Json {
            what: p.display().to_string(),
            source: e,
        })
    }

    pub fn list(&self) -> Result<Vec<Digest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.root).ctx("read dir", &self.root)? {
            let e = e.ctx("read dir", &self.root)?;
            if let Ok(d) = format!("sha256:{}", e.file_name().to_string_lossy()).parse() {
                out.push(d);
            }
        }
        Ok(out)
    }

    /// Removes a layer: renamed aside first so a crash never leaves a
    /// half-deleted dir under a valid name.
    pub fn remove(&self, chain: &Digest) -> Result<()> {
        let dir = self.dir(chain);
        if !dir.exists() {
            return Ok(());
        }
        let tmp = self.tmp_path(chain);
        fs::rename(&dir, &tmp).ctx("rename", &dir)?;
        fs::remove_dir_all(&tmp).ctx("remove", &tmp)
    }

    /// Entries of `<layers>/tmp` (interrupted unpacks and removals) with
    /// whether their process is still running. Names are `<chain16>-<pid>-<nanos>`.
    pub fn tmp_entries(&self) -> Result<Vec<(PathBuf, bool)>> {
        let tmp = self.root.join("tmp");
        let mut out = Vec::new();
        for e in fs::read_dir(&tmp).ctx("read dir", &tmp)? {
            let p = e.ctx("read dir", &tmp)?.path();
            let pid = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.split('-').nth(1))
                .and_then(|n| n.parse::<u32>().ok());
            out.push((p, pid.is_some_and(crate::lease::pid_alive)));
        }
        Ok(out)
    }

    /// Removes the temp dirs of processes that are gone.
    pub fn clean_dead_tmp(&self) -> Result<usize> {
        let mut n = 0;
        for (p, alive) in self.tmp_entries()? {
            if !alive {
                if p.is_dir() {
                    fs::remove_dir_all(&p).ctx("remove", &p)?;
                } else {
                    fs::remove_file(&p).ctx("remove", &p)?;
                }
                n += 1;
            }
        }
        Ok(n)
    }

    fn tmp_path(&self, chain: &Digest) -> PathBuf {
        self.scratch_path(&chain.hex()[..16])
    }

    /// A fresh path in the store's temp dir, named so that it is cleaned up
    /// if this process dies (`what` must not contain '-').
    pub fn scratch_path(&self, what: &str) -> PathBuf {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        self.root
            .join("tmp")
            .join(format!("{what}-{}-{nanos}", std::process::id()))
    }

    /// Streams one layer blob into the store (see the module doc). `writer` is
    /// the content-store writer for `desc.digest`; if it resumed partial data,
    /// `source` must yield the bytes from `writer.offset()` on. Once `cancel`
    /// is set the unpack stops, leaving no layer dir and (as after a
    /// network failure) the partial blob for a later resume.
    #[allow(clippy::too_many_arguments)]
    pub fn ingest(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        chain_id: &Digest,
        parent: Option<&Digest>,
        mut writer: Writer,
        source: impl Read + Send,
        cancel: Option<&Cancel>,
    ) -> Result<LayerMeta> {
        let compression = Compression::of_layer(&desc.media_type)?;
        let tmp = self.tmp_path(chain_id);
        let diff = tmp.join("diff");
        fs::create_dir_all(&diff).ctx("create", &diff)?;
        let prefix = if writer.offset() > 0 {
            Some(
                File::open(writer.data_path())
                    .ctx("open", writer.data_path())?
                    .take(writer.offset()),
            )
        } else {
            None
        };
        let mut tee = Tee {
            prefix,
            source,
            writer: &mut writer,
            source_failed: false,
        };
        let opts = unpack::UnpackOptions {
            max_size: self.max_size(),
            cancel: cancel.cloned(),
            ..Default::default()
        };
        let mut result = unpack_stream(&mut tee, compression, &diff, opts);
        let cancelled = cancel.is_some_and(Cancel::is_cancelled);
        if result.is_err() && !tee.source_failed && !cancelled {
            // Bad content: if the blob is also not the one we asked for, that
            // is the real story (a corrupt or malicious registry), so say so.
            let drained = io::copy(&mut tee, &mut io::sink());
            if drained.is_ok() && tee.writer.digest_so_far() != desc.digest {
                result = Err(Error::DigestMismatch {
                    expected: desc.digest.to_string(),
                    actual: tee.writer.digest_so_far().to_string(),
                });
            }
        }
        let source_failed = tee.source_failed || cancelled;
        let cleanup = |tmp: &Path| {
            let _ = fs::remove_dir_all(tmp);
        };
        let (stats, actual_diff) = match result {
            Ok(v) => v,
            Err(e) => {
                cleanup(&tmp);
                // Network trouble: keep the partial blob for a ranged resume.
                if !source_failed {
                    writer.discard();
                }
                // Whatever the stopped unpack then saw (a cut stream), the
                // cause is the cancel.
                return Err(if cancelled { Error::Cancelled } else { e });
            }
        };
        let blob = writer.digest_so_far();
        if blob != desc.digest {
            cleanup(&tmp);
            writer.discard();
            return Err(Error::DigestMismatch {
                expected: desc.digest.to_string(),
                actual: blob.to_string(),
            });
        }
        if &actual_diff != diff_id {
            cleanup(&tmp);
            writer.discard();
            return Err(Error::DigestMismatch {
                expected: format!("diff id {diff_id}"),
                actual: actual_diff.to_string(),
            });
        }
        if let Err(e) = writer.commit(Some(desc.size)) {
            cleanup(&tmp);
            return Err(e);
        }
        let meta = LayerMeta {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: stats.bytes,
        };
        let mp = tmp.join("meta.json");
        fs::write(
            &mp,
            serde_json::to_vec_pretty(&meta).expect("meta serialises"),
        )
        .ctx("write", &mp)?;
        // Power-loss safety: the layer's files must be on disk before its dir
        // gets a valid name. One syncfs is far cheaper than an fsync per file.
        if let Err(e) = syncfs(&tmp) {
            cleanup(&tmp);
            return Err(e);
        }
        let dst = self.dir(chain_id);
        if let Err(e) = fs::rename(&tmp, &dst) {
            cleanup(&tmp);
            // Someone else unpacked the same layer concurrently: theirs is as good.
            if !self.exists(chain_id) {
                return Err(e).ctx("rename", dst);
            }
        }
        crate::content::sync_dir(&self.root)?;
        Ok(meta)
    }
}

impl LayerStore {
    /// Takes a directory that is already a layer diff in this store's form
    /// (overlay whiteouts and opaque markers, as an overlay upper dir is) as
    /// the layer `meta.chain_id`, by rename: a builder's step needs no
    /// second unpack of the tar it just made from that dir. The caller
    /// vouches that `meta.diff_id` is the digest of that tar. Fails (nothing
    /// moved) when `diff` is on another filesystem.
    pub fn adopt_dir(&self, diff: &Path, meta: &LayerMeta) -> Result<()> {
        if self.exists(&meta.chain_id) {
            return Ok(());
        }
        let tmp = self.tmp_path(&meta.chain_id);
        fs::create_dir_all(&tmp).ctx("create", &tmp)?;
        let cleanup = |tmp: &Path| {
            let _ = fs::remove_dir_all(tmp);
        };
        if let Err(e) = fs::rename(diff, tmp.join("diff")) {
            cleanup(&tmp);
            return Err(e).ctx("rename", diff);
        }
        let mp = tmp.join("meta.json");
        let res = fs::write(
            &mp,
            serde_json::to_vec_pretty(meta).expect("meta serialises"),
        )
        .ctx("write", &mp)
        .and_then(|_| syncfs(&tmp));
        if let Err(e) = res {
            cleanup(&tmp);
            return Err(e);
        }
        let dst = self.dir(&meta.chain_id);
        if let Err(e) = fs::rename(&tmp, &dst) {
            cleanup(&tmp);
            // Someone else stored the same layer meanwhile: theirs is as good.
            if !self.exists(&meta.chain_id) {
                return Err(e).ctx("rename", dst);
            }
        }
        crate::content::sync_dir(&self.root)
    }
}

fn syncfs(dir: &Path) -> Result<()> {
    let f = File::open(dir).ctx("open", dir)?;
    // SAFETY: syncfs on an fd we own.
    if unsafe { libc::syncfs(std::os::unix::io::AsRawFd::as_raw_fd(&f)) } != 0 {
        return Err(io::Error::last_os_error()).ctx("syncfs", dir);
    }
    Ok(())
}

/// Decompress + unpack, returning the unpack stats and the diff ID. Reads the
/// raw source to its end so the blob hash covers every byte.
fn unpack_stream<R: Read + Send>(
    raw: &mut R,
    compression: Compression,
    target: &Path,
    opts: unpack::UnpackOptions,
) -> Result<(unpack::UnpackStats, Digest)> {
    // Two stages on two threads: this one creates the files (kernel time
    // dominates), the other one downloads, hashes the blob, decompresses and
    // hashes the diff. On a pull of debian they cost about the same, so the
    // wall time nearly halves when a second core is free.
    let (tx, rx) = std::sync::mpsc::sync_channel::<io::Result<Vec<u8>>>(16);
    // Consumed chunks go back to the decompressor: fresh 256 KiB buffers are
    // mmap'ed and faulted in one page at a time, reused ones are warm.
    let (free_tx, free_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(18);
    std::thread::scope(|scope| {
        let producer = std::thread::Builder::new()
            .name("layer-inflate".into())
            .spawn_scoped(scope, move || inflate(raw, compression, &tx, &free_rx))
            .map_err(|e| Error::Io {
                op: "spawn",
                path: target.to_path_buf(),
                source: e,
            })?;
        let mut reader = BufReader::with_capacity(256 * 1024, ChunkReader::new(rx, free_tx));
        let unpacked = unpack::unpack_with(&mut reader, target, opts).and_then(|stats| {
            // Trailing zero blocks after the end-of-archive marker belong to the diff.
            io::copy(&mut reader, &mut io::sink())?;
            Ok(stats)
        });
        // A producer still sending finds the channel closed and stops.
        drop(reader);
        let inflated = producer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("layer decompressor panicked").into()));
        match (unpacked, inflated) {
            (Ok(stats), Ok(Some(diff_id))) => Ok((stats, diff_id)),
            // The producer's own failure is the cause of whatever the
            // unpacker then saw (a truncated stream).
            (_, Err(e)) => Err(e),
            (Err(e), _) => Err(e),
            (Ok(_), Ok(None)) => Err(Error::InvalidArchive(
                "layer stream ended before the decompressor finished".into(),
            )),
        }
    })
}

/// Decompresses `raw` into `tx` in chunks, hashing what it sends. Returns
/// the diff ID, or None when the receiver hung up first (its error wins).
fn inflate<R: Read>(
    raw: &mut R,
    compression: Compression,
    tx: &std::sync::mpsc::SyncSender<io::Result<Vec<u8>>>,
    free: &std::sync::mpsc::Receiver<Vec<u8>>,
) -> Result<Option<Digest>> {
    const CHUNK: usize = 256 * 1024;
    let mut raw = BufReader::with_capacity(CHUNK, raw);
    let mut hasher = Hasher::new(crate::digest::Algorithm::Sha256);
    {
        let mut decoder: Box<dyn Read + '_> = match compression {
            Compression::None => Box::new(&mut raw),
            Compression::Gzip => Box::new(crate::gzip::GzipMembers::new(&mut raw)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(&mut raw)?),
        };
        loop {
            let mut chunk = free.try_recv().unwrap_or_default();
            chunk.resize(CHUNK, 0);
            let mut filled = 0;
            // Fill whole chunks: fewer, larger messages through the channel.
            while filled < CHUNK {
                match decoder.read(&mut chunk[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(io::Error::new(e.kind(), e.to_string())));
                        return Err(e.into());
                    }
                }
            }
            if filled == 0 {
                break;
            }
            chunk.truncate(filled);
            hasher.update(&chunk);
            if tx.send(Ok(chunk)).is_err() {
                return Ok(None);
            }
        }
    }
    // Whatever follows the compressed stream still belongs to the blob.
    io::copy(&mut raw, &mut io::sink())?;
    Ok(Some(hasher.finish()))
}

/// Blocking `Read` over the chunks the decompressor sends.
struct ChunkReader {
    rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
    /// Where finished chunks go back for reuse (dropped if that is full).
    free: std::sync::mpsc::SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl ChunkReader {
    fn new(
        rx: std::sync::mpsc::Receiver<io::Result<Vec<u8>>>,
        free: std::sync::mpsc::SyncSender<Vec<u8>>,
    ) -> Self {
        ChunkReader {
            rx,
            free,
            cur: Vec::new(),
            pos: 0,
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Ok(c)) => {
                    let done = std::mem::replace(&mut self.cur, c);
                    if done.capacity() > 0 {
                        let _ = self.free.try_send(done);
                    }
                    self.pos = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::content::ContentStore;
    use crate::formats::media;

    fn layer_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        b.append_data(&mut h, "etc/hello", &b"hello"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn desc(blob: &[u8], media_type: &str) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: Digest::sha256_of(blob),
            size: blob.len() as u64,
            platform: None,
            urls: vec![],
            annotations: Default::default(),
        }
    }

    /// The scratch dir where layers are unpacked carries FS_TOPDIR_FL on
    /// filesystems that know it (the test dir is on the store's usual fs).
    #[test]
    fn layer_scratch_dir_spreads_its_subdirs() {
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let store = LayerStore::open(dir.path().join("layers")).unwrap();
        let out = std::process::Command::new("lsattr")
            .arg("-d")
            .arg(store.root().join("tmp"))
            .output();
        let Ok(out) = out else { return }; // no e2fsprogs: nothing to check
        if !out.status.success() {
            return; // not an ext* filesystem: the flag does not exist there
        }
        let attrs = String::from_utf8_lossy(&out.stdout);
        let flags = attrs.split_whitespace().next().unwrap_or("");
        assert!(flags.contains('T'), "no top-dir flag: {attrs}");
    }

    #[test]
    fn ingest_uncompressed_and_zstd() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().join("content")).unwrap();
        let ls = LayerStore::open(t.path().join("layers")).unwrap();
        let tar = layer_tar();
        let diff = Digest::sha256_of(&tar);
        let zst = zstd::encode_all(&tar[..], 3).unwrap();
        for (blob, mt) in [
            (tar.clone(), media::OCI_LAYER),
            (zst, media::OCI_LAYER_ZSTD),
        ] {
            let d = desc(&blob, mt);
            let chain = Digest::sha256_of(mt.as_bytes()); // distinct per case
            let w = cs.writer(&d.digest).unwrap();
            let meta = ls
                .ingest(&d, &diff, &chain, None, w, &blob[..], None)
                .unwrap();
            assert_eq!(meta.size, 5);
            assert!(ls.exists(&chain));
            assert_eq!(
                fs::read(ls.diff_dir(&chain).join("etc/hello")).unwrap(),
                b"hello"
            );
            assert!(cs.exists(&d.digest));
        }
    }

    #[test]
    fn wrong_diff_id_keeps_nothing() {
        let t = tempfile::tempdir().unwrap();
        let cs = ContentStore::open(t.path().join("content")).unwrap();
        let ls = LayerStore::open(t.path().join("layers")).unwrap();
        let tar = layer_tar();
        let d = desc(&tar, media::OCI_LAYER);
        let wrong = Digest::sha256_of(b"not the diff");
        let w = cs.writer(&d.digest).unwrap();
        let err = ls
            .ingest(&d, &wrong, &wrong, None, w, &tar[..], None)
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!ls.exists(&wrong));
        assert!(!cs.exists(&d.digest));
        assert_eq!(
            fs::read_dir(t.path().join("layers/tmp")).unwrap().count(),
            0
        );
        assert_eq!(
            fs::read_dir(t.path().join("content/ingest"))
                .unwrap()
                .count(),
            0
        );
    }
}
