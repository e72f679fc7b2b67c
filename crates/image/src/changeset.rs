//! A changeset → a layer (a build step's, a committed container's). The
//! changeset is the overlay *upper* dir (only what was written), so nothing
//! walks the whole tree: overlay
//! whiteouts (char 0:0) become `.wh.<name>`, opaque dirs
//! (`trusted.overlay.opaque=y`) get `.wh..wh..opq`. The tar is
//! deterministic: sorted entries, no user/group names, mtimes clamped to
//! SOURCE_DATE_EPOCH when given, gzip header without a timestamp
//! (incompressible stretches stored, see [`crate::gzwrite`]).

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::digest::{Algorithm, Hasher};
use crate::error::{IoContext, Result};
use crate::formats::{Descriptor, media};
use crate::fswalk;
use crate::{Digest, ImageStore, LayerRecord};

struct HashWriter<W> {
    inner: W,
    hasher: Hasher,
    n: u64,
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Is the upper dir empty (the step changed nothing)?
pub fn is_empty(upper: &Path) -> Result<bool> {
    Ok(fs::read_dir(upper).ctx("read", upper)?.next().is_none())
}

/// Writes the changeset under `upper` as a gzip tar at `out`; returns
/// (blob digest, size, diff id).
pub fn write_tar(upper: &Path, out: &Path, epoch: Option<i64>) -> Result<(Digest, u64, Digest)> {
    write_tar_excluding(upper, out, epoch, &|_| false)
}

/// [`write_tar`] without the paths (relative to `upper`) that `skip`
/// names, nor anything below them: a container's mount points.
pub fn write_tar_excluding(
    upper: &Path,
    out: &Path,
    epoch: Option<i64>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<(Digest, u64, Digest)> {
    let f = File::create(out).ctx("create", out)?;
    // Two threads joined by a pipe: this one walks the tree and hashes
    // the tar (diff ID); the other compresses, hashes the blob and writes
    // it, so compression overlaps the file reading.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
    std::thread::scope(|s| {
        let compressor = s.spawn(move || -> io::Result<(Digest, u64, File)> {
            let blob = HashWriter {
                inner: BufWriter::with_capacity(256 * 1024, f),
                hasher: Hasher::new(Algorithm::Sha256),
                n: 0,
            };
            let mut gz = crate::gzwrite::GzWriter::new(blob)?;
            for piece in rx {
                gz.write_all(&piece)?;
            }
            let mut blob = gz.finish()?;
            blob.flush()?;
            let file = blob.inner.into_inner().map_err(|e| e.into_error())?;
            Ok((blob.hasher.finish(), blob.n, file))
        });
        let diff = HashWriter {
            inner: Pipe {
                tx,
                buf: Vec::with_capacity(PIPE_PIECE),
            },
            hasher: Hasher::new(Algorithm::Sha256),
            n: 0,
        };
        let tarred = tar_tree(upper, diff, epoch, skip);
        // The compressor's error first: a failed write shows up on this
        // side only as a closed pipe.
        let (digest, size, file) = compressor
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the compressing thread panicked")))
            .ctx("write", out)?;
        let diff_id = tarred?;
        file.sync_all().ctx("fsync", out)?;
        Ok((digest, size, diff_id))
    })
}

/// Pieces handed to the compressing thread.
const PIPE_PIECE: usize = 1 << 20;

/// The writing end of the pipe to the compressing thread.
struct Pipe {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    buf: Vec<u8>,
}

impl Pipe {
    fn send(&mut self) -> io::Result<()> {
        let piece = std::mem::replace(&mut self.buf, Vec::with_capacity(PIPE_PIECE));
        self.tx
            .send(piece)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the compressor stopped"))
    }
}

impl Write for Pipe {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(PIPE_PIECE - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == PIPE_PIECE {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the tar of `upper` into `diff`; returns the tar's digest (the
/// diff ID) once everything went down the pipe.
fn tar_tree(
    upper: &Path,
    diff: HashWriter<Pipe>,
    epoch: Option<i64>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<Digest> {
    let mut tar = tar::Builder::new(diff);
    tar.mode(tar::HeaderMode::Complete);
    // Through directory fds, never following a symlink: a committed
    // container may still be running and swapping paths under us.
    let dir = nix::fcntl::open(
        upper,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io::Error::from_raw_os_error(e as i32))
    .ctx("open", upper)?;
    let opts = fswalk::TarOptions {
        epoch,
        overlay: true,
        skip,
    };
    fswalk::append_tree(
        &mut tar,
        std::os::fd::AsFd::as_fd(&dir),
        Path::new(""),
        &opts,
    )
    .ctx("tar", upper)?;
    let mut diff = tar.into_inner().ctx("finish tar", upper)?;
    if !diff.inner.buf.is_empty() {
        diff.inner.send().ctx("tar", upper)?;
    }
    Ok(diff.hasher.finish())
}

/// Stores a layer tarball (content store + unpacked layer by chain id),
/// as pull/load do: verified streaming ingest.
pub fn store_layer(
    store: &ImageStore,
    tar_gz: &Path,
    blob: Digest,
    size: u64,
    diff_id: Digest,
    parent: Option<&Digest>,
) -> Result<LayerRecord> {
    let chain_id = match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    };
    let desc = Descriptor {
        media_type: media::OCI_LAYER_GZIP.into(),
        digest: blob.clone(),
        size,
        platform: None,
        urls: vec![],
        annotations: Default::default(),
    };
    let open = || File::open(tar_gz).ctx("open", tar_gz);
    if !store.layers.exists(&chain_id) {
        let mut w = store.content.writer(&blob)?;
        if w.offset() > 0 {
            w.truncate()?;
        }
        store
            .layers
            .ingest(&desc, &diff_id, &chain_id, parent, w, open()?, None)?;
    } else if !store.content.exists(&blob) {
        store.content.ingest_reader(&blob, size, open()?)?;
    }
    Ok(LayerRecord {
        blob,
        media_type: desc.media_type,
        blob_size: size,
        diff_id,
        chain_id,
    })
}

/// Writes an image's config and OCI manifest to the content store and
/// returns its record (not yet named: [`ImageStore::put`] does that). The
/// config's `created` is the record's.
pub fn write_image(
    store: &ImageStore,
    config: &serde_json::Value,
    layers: &[LayerRecord],
) -> Result<crate::ImageRecord> {
    let config_bytes = serde_json::to_vec(config).expect("config serialises");
    let config_digest = store.content.write_all(&config_bytes, None)?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_MANIFEST,
        "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": layers
            .iter()
            .map(|l| serde_json::json!({"mediaType": l.media_type, "digest": l.blob.to_string(), "size": l.blob_size}))
            .collect::<Vec<_>>(),
    });
    let mbytes = serde_json::to_vec(&manifest).expect("manifest serialises");
    let mdigest = store.content.write_all(&mbytes, None)?;
    let size = layers
        .iter()
        .map(|l| store.layers.meta(&l.chain_id).map_or(0, |m| m.size))
        .sum();
    let s = |k: &str| config[k].as_str().unwrap_or_default().to_string();
    Ok(crate::ImageRecord {
        id: Digest::sha256_of(&config_bytes),
        manifest: mdigest,
        manifest_media_type: media::OCI_MANIFEST.into(),
        index: None,
        repo_tags: Vec::new(),
        repo_digests: Vec::new(),
        layers: layers.to_vec(),
        created: config["created"].as_str().map(String::from),
        platform: crate::formats::Platform {
            architecture: s("architecture"),
            os: s("os"),
            variant: config["variant"].as_str().map(String::from),
            os_version: None,
        }
        .to_string(),
        size,
    })
}
