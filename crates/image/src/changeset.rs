//! A changeset → a layer (a build step's, a committed container's). The
//! changeset is the overlay *upper* dir (only what was written), so nothing
//! walks the whole tree: overlay
//! whiteouts (char 0:0) become `.wh.<name>`, opaque dirs
//! (`trusted.overlay.opaque=y`) get `.wh..wh..opq`. The tar is
//! deterministic: sorted entries, no user/group names, mtimes clamped to
//! SOURCE_DATE_EPOCH when given, gzip header without a timestamp.

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
