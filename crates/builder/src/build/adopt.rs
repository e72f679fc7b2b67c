//! A step's upper dir becomes its layer's dir by rename, instead of
//! unpacking the tarball just made from it a second time (for a COPY of a
//! large tree that second unpack was most of the step). The upper dir is
//! already in the layer store's form (overlay whiteouts, opaque markers);
//! what differs is dropped or fixed first: overlayfs's bookkeeping xattrs
//! (origin, impure, uuid…, which describe the step's mount) and, with
//! SOURCE_DATE_EPOCH, mtimes later than the epoch (the tar clamps them).

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_image::changeset;
use berth_image::formats::media;
use berth_image::{Digest, ImageStore, LayerMeta, LayerRecord};

use crate::error::{IoContext, Result};

/// The tarball of a step's changeset, as `changeset::write_tar` made it.
pub struct Tarball<'a> {
    pub path: &'a Path,
    pub blob: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

/// The chain id of the layer `diff_id` on `parent` (OCI image spec).
pub fn chain_id(parent: Option<&Digest>, diff_id: &Digest) -> Digest {
    match parent {
        None => diff_id.clone(),
        Some(p) => Digest::sha256_of(format!("{p} {diff_id}").as_bytes()),
    }
}

/// Stores a step's layer: the blob into the content store, `upper` as the
/// layer dir (falling back to unpacking the blob when the rename is not
/// possible, e.g. the scratch dir on another filesystem).
pub fn store_step_layer(
    store: &ImageStore,
    upper: &Path,
    t: &Tarball,
    parent: Option<&Digest>,
    epoch: Option<i64>,
) -> Result<LayerRecord> {
    let chain_id = chain_id(parent, &t.diff_id);
    let fallback = |tar: &Path| {
        changeset::store_layer(
            store,
            tar,
            t.blob.clone(),
            t.size,
            t.diff_id.clone(),
            parent,
        )
    };
    if store.layers.exists(&chain_id) {
        return Ok(fallback(t.path)?);
    }
    let content_bytes = prepare(upper, epoch)?;
    // The tar moves into the content store (renamed, not copied).
    store.content.adopt_file(t.path, &t.blob, t.size)?;
    let blob_path = store.content.blob_path(&t.blob);
    let meta = LayerMeta {
        chain_id: chain_id.clone(),
        diff_id: t.diff_id.clone(),
        parent: parent.cloned(),
        size: content_bytes,
    };
    if store.layers.adopt_dir(upper, &meta).is_err() {
        return Ok(fallback(&blob_path)?);
    }
    Ok(LayerRecord {
        blob: t.blob.clone(),
        media_type: media::OCI_LAYER_GZIP.into(),
        blob_size: t.size,
        diff_id: t.diff_id.clone(),
        chain_id,
    })
}

/// Puts `dir` (recursively) in layer form; returns the bytes of file
/// content (each hard-linked inode once), the layer store's `size`.
fn prepare(dir: &Path, epoch: Option<i64>) -> Result<u64> {
    let mut bytes = 0;
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![dir.to_path_buf()];
    strip_overlay_xattrs(dir);
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).ctx("read", &d)? {
            let p = e.ctx("read", &d)?.path();
            let m = fs::symlink_metadata(&p).ctx("stat", &p)?;
            strip_overlay_xattrs(&p);
            if m.is_file() && (m.nlink() == 1 || seen.insert((m.dev(), m.ino()))) {
                bytes += m.len();
            }
            if m.is_dir() {
                todo.push(p.clone());
            }
            if let Some(e) = epoch
                && m.mtime() > e
            {
                set_mtime(&p, e.max(0));
            }
        }
    }
    // Setting a child's times does not touch its directory's mtime, so
    // the order above is safe.
    Ok(bytes)
}

/// Removes `trusted.overlay.*` xattrs other than `opaque` from `path`.
fn strip_overlay_xattrs(path: &Path) {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let mut buf = [0u8; 1024];
    // SAFETY: a valid C string and a buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return;
    }
    for name in buf[..n as usize].split(|&b| b == 0) {
        if name.starts_with(b"trusted.overlay.")
            && name != b"trusted.overlay.opaque"
            && let Ok(n) = CString::new(name)
        {
            // SAFETY: valid C strings.
            unsafe { libc::lremovexattr(c.as_ptr(), n.as_ptr()) };
        }
    }
}

fn set_mtime(path: &Path, secs: i64) {
    let Ok(c) = CString::new(path.as_os_str().as_bytes()) else {
        return;
    };
    let t = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = [t, t];
    // SAFETY: a valid C string and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
}
