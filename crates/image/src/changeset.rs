//! A changeset → a layer (a build step's, a committed container's). The
//! changeset is the overlay *upper* dir (only what was written), so nothing
//! walks the whole tree: overlay
//! whiteouts (char 0:0) become `.wh.<name>`, opaque dirs
//! (`trusted.overlay.opaque=y`) get `.wh..wh..opq`. The tar is
//! deterministic: sorted entries, no user/group names, mtimes clamped to
//! SOURCE_DATE_EPOCH when given, gzip header without a timestamp.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::digest::{Algorithm, Hasher};
use crate::error::{IoContext, Result};
use crate::formats::{Descriptor, media};
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
    let blob = HashWriter {
        inner: BufWriter::with_capacity(256 * 1024, f),
        hasher: Hasher::new(Algorithm::Sha256),
        n: 0,
    };
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::new(6));
    let diff = HashWriter {
        inner: gz,
        hasher: Hasher::new(Algorithm::Sha256),
        n: 0,
    };
    let mut tar = tar::Builder::new(diff);
    tar.mode(tar::HeaderMode::Complete);
    let mut links = HashMap::new();
    walk(&mut tar, upper, Path::new(""), epoch, &mut links, skip)?;
    let diff = tar.into_inner().ctx("finish tar", out)?;
    let diff_id = diff.hasher.finish();
    let mut blob = diff.inner.finish().ctx("finish gzip", out)?;
    blob.flush().ctx("write", out)?;
    let size = blob.n;
    let digest = blob.hasher.finish();
    blob.inner
        .into_inner()
        .map_err(|e| e.into_error())
        .ctx("write", out)?
        .sync_all()
        .ctx("fsync", out)?;
    Ok((digest, size, diff_id))
}

fn header(meta: &fs::Metadata, epoch: Option<i64>) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(meta.mode() & 0o7777);
    h.set_uid(meta.uid() as u64);
    h.set_gid(meta.gid() as u64);
    let mtime = meta.mtime().max(0);
    h.set_mtime(match epoch {
        Some(e) => mtime.min(e.max(0)) as u64,
        None => mtime as u64,
    });
    h
}

fn opaque(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 4];
    // SAFETY: valid C strings and a buffer of the given length.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    n == 1 && buf[0] == b'y'
}

fn walk<W: Write>(
    tar: &mut tar::Builder<W>,
    dir: &Path,
    rel: &Path,
    epoch: Option<i64>,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
    skip: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .ctx("read", dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .ctx("read", dir)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let rp = rel.join(&name);
        if skip(&rp) {
            continue;
        }
        let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
        let ft = meta.file_type();
        let mut h = header(&meta, epoch);
        if ft.is_char_device() && meta.rdev() == 0 {
            let mut wh = header(&meta, epoch);
            wh.set_entry_type(tar::EntryType::Regular);
            wh.set_size(0);
            wh.set_mode(0o644);
            let wname = rel.join(format!(".wh.{}", name.to_string_lossy()));
            tar.append_data(&mut wh, wname, io::empty())
                .ctx("tar", &path)?;
        } else if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            tar.append_data(&mut h, &rp, io::empty())
                .ctx("tar", &path)?;
            if opaque(&path) {
                let mut wh = header(&meta, epoch);
                wh.set_entry_type(tar::EntryType::Regular);
                wh.set_size(0);
                wh.set_mode(0o644);
                tar.append_data(&mut wh, rp.join(".wh..wh..opq"), io::empty())
                    .ctx("tar", &path)?;
            }
            walk(tar, &path, &rp, epoch, links, skip)?;
        } else if ft.is_symlink() {
            let target = fs::read_link(&path).ctx("readlink", &path)?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            tar.append_link(&mut h, &rp, target).ctx("tar", &path)?;
        } else if ft.is_file() {
            let key = (meta.dev(), meta.ino());
            if meta.nlink() > 1 {
                if let Some(first) = links.get(&key) {
                    h.set_entry_type(tar::EntryType::Link);
                    h.set_size(0);
                    tar.append_link(&mut h, &rp, first).ctx("tar", &path)?;
                    continue;
                }
                links.insert(key, rp.clone());
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let f = File::open(&path).ctx("open", &path)?;
            tar.append_data(&mut h, &rp, f).ctx("tar", &path)?;
        } else {
            let kind = if ft.is_char_device() {
                tar::EntryType::Char
            } else if ft.is_block_device() {
                tar::EntryType::Block
            } else {
                tar::EntryType::Fifo
            };
            h.set_entry_type(kind);
            h.set_size(0);
            let rdev = meta.rdev();
            h.set_device_major(libc::major(rdev)).ok();
            h.set_device_minor(libc::minor(rdev)).ok();
            tar.append_data(&mut h, &rp, io::empty())
                .ctx("tar", &path)?;
        }
    }
    Ok(())
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
            .ingest(&desc, &diff_id, &chain_id, parent, w, open()?)?;
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
