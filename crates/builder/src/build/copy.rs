//! COPY/ADD: sources from the context (globs, .dockerignore) or another
//! stage's rootfs, Docker's destination rules, --chown/--chmod, ADD's local
//! tar auto-extraction, and the content hash the cache keys on (contents,
//! modes, owners, link targets — never mtimes).

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::digest::{Algorithm, Hasher};
use berth_image::fswalk;

use crate::dockerfile::glob;
use crate::dockerfile::ignore::{Ignore, clean};
use crate::error::{Error, IoContext, Result};

use super::dest;

/// A source resolved to a real path, with its context-relative name.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub rel: String,
    /// COPY --parents: where it goes under the destination.
    pub keep: Option<Keep>,
}

/// COPY --parents: the source's path below its pivot (the context root,
/// or the part of the source before `/./`), kept under the destination.
#[derive(Clone, Debug)]
pub struct Keep {
    pub pivot: PathBuf,
    pub under: String,
}

/// Expands source words against `root` (globs match context-relative paths).
pub fn resolve(root: &Path, words: &[String], ignore: Option<&Ignore>) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for w in words {
        let rel = clean(w);
        if glob::is_pattern(&rel) {
            let mut all = Vec::new();
            list(root, "", &mut all)?;
            // A pattern matching nothing copies nothing: BuildKit allows
            // it (the legacy builder failed), checked against dockerd 20.10.
            for r in all {
                if glob::matches(&rel, &r) && !left_out(ignore, &root.join(&r), &r) {
                    // A matched link is followed as a named one is (BuildKit:
                    // `a.txt -> b.dat` copies b.dat's bytes as a.txt, a link
                    // to a directory copies its contents).
                    out.push(Source {
                        path: followed(root, &r, w)?,
                        rel: r,
                        keep: None,
                    });
                }
            }
        } else {
            // Links in the leading components resolve inside the root (a
            // context's `sub -> /etc` must not make `COPY sub/passwd` read
            // the host's); the last one is looked at below.
            let path = match rel.rsplit_once('/') {
                _ if rel.is_empty() => root.to_path_buf(),
                Some((dir, name)) => super::copy_step::scoped(root, dir)?.join(name),
                None => root.join(&rel),
            };
            if fs::symlink_metadata(&path).is_err()
                || (!rel.is_empty() && left_out(ignore, &path, &rel))
            {
                return Err(Error::Invalid(format!(
                    "`{w}` not found in the build context (or excluded by .dockerignore)"
                )));
            }
            let path = if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
                followed(root, &rel, w)?
            } else {
                path
            };
            out.push(Source {
                path,
                rel,
                keep: None,
            });
        }
    }
    Ok(out)
}

/// The context-relative path of the entry `name` of the directory `rel`
/// ("" is the context root).
pub(super) fn child_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

/// Is the context entry `rel` (at `path`) left out by .dockerignore? An
/// excluded directory still comes when an exception re-includes something
/// below it (`secret` + `!secret/keep` brings `secret/keep`, as Docker's
/// context does), and only then: `other` + `!*.md` with `other/a.md`
/// (which `*.md` does not match) brings no empty `other`.
fn left_out(ignore: Option<&Ignore>, path: &Path, rel: &str) -> bool {
    let Some(i) = ignore else {
        return false;
    };
    if !i.excluded(rel) {
        return false;
    }
    if !i.may_include_under(rel) || !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return true;
    }
    let Ok(entries) = fs::read_dir(path) else {
        return true;
    };
    !entries.filter_map(|e| e.ok()).any(|e| {
        let r = format!("{rel}/{}", e.file_name().to_string_lossy());
        !left_out(ignore, &e.path(), &r)
    })
}

/// A source that is itself a symlink is followed within the root, as
/// Docker does (links inside copied directories stay links); one that
/// leads nowhere there (dangling, or to the daemon's host) is an error.
fn followed(root: &Path, rel: &str, w: &str) -> Result<PathBuf> {
    let path = super::copy_step::scoped(root, rel)?;
    if !path.exists() {
        return Err(Error::Invalid(format!(
            "`{w}`: {rel} is a dangling symlink (links resolve inside the build context)"
        )));
    }
    Ok(path)
}

/// COPY --parents: each word is `[pivot/./]pattern`; what the pattern
/// matches below the pivot keeps its path from the pivot on. As in
/// BuildKit, a pattern with wildcards may match nothing, a plain path must
/// exist, and a matched directory brings its whole tree.
pub fn resolve_parents(
    root: &Path,
    words: &[String],
    ignore: Option<&Ignore>,
) -> Result<Vec<Source>> {
    let mut out = Vec::new();
    for w in words {
        let (pivot, pattern) = match w.split_once("/./") {
            Some((p, pat)) => (clean(p), clean(pat)),
            None => (String::new(), clean(w)),
        };
        if glob::is_pattern(&pivot) {
            return Err(Error::Invalid(format!(
                "COPY --parents {w}: wildcards are not allowed before the `/./` pivot"
            )));
        }
        let pivot_dir = super::copy_step::scoped(root, &pivot)?;
        if !pivot_dir.is_dir() {
            return Err(Error::Invalid(format!(
                "`{w}`: {pivot:?} is not a directory in the build context"
            )));
        }
        let ctx_rel = |r: &str| {
            if pivot.is_empty() {
                r.to_string()
            } else {
                format!("{pivot}/{r}")
            }
        };
        let keep = |under: String| Keep {
            pivot: pivot_dir.clone(),
            under,
        };
        if !glob::is_pattern(&pattern) {
            let found = resolve(&pivot_dir, std::slice::from_ref(&pattern), None)
                .ok()
                .filter(|_| !ignore.is_some_and(|i| i.excluded(&ctx_rel(&pattern))));
            let Some(mut found) = found else {
                return Err(Error::Invalid(format!(
                    "`{w}` not found in the build context (or excluded by .dockerignore)"
                )));
            };
            for s in &mut found {
                s.rel = ctx_rel(&s.rel);
                s.keep = Some(keep(pattern.clone()));
            }
            out.extend(found);
            continue;
        }
        let mut all = Vec::new();
        list(&pivot_dir, "", &mut all)?;
        // A matched directory brings its tree: its entries are not matched again.
        let mut taken: Option<String> = None;
        for r in all {
            if taken.as_ref().is_some_and(|t| {
                r.starts_with(t.as_str()) && r.as_bytes().get(t.len()) == Some(&b'/')
            }) {
                continue;
            }
            if glob::matches(&pattern, &r) && !left_out(ignore, &pivot_dir.join(&r), &ctx_rel(&r)) {
                taken = Some(r.clone());
                out.push(Source {
                    path: pivot_dir.join(&r),
                    rel: ctx_rel(&r),
                    keep: Some(keep(r)),
                });
            }
        }
    }
    Ok(out)
}

/// COPY --parents: the directories between the destination `dir` and a
/// kept source, made like the context's (mode, mtime; owner per `attrs`),
/// entered without following links. Returns the last one (and its path,
/// for messages) and the source's own name in it.
pub fn parent_dirs(
    keep: &Keep,
    dir: OwnedFd,
    shown: &Path,
    attrs: Attrs,
) -> Result<(OwnedFd, PathBuf, OsString)> {
    let mut src = keep.pivot.clone();
    let mut cur = dir;
    let mut shown = shown.to_path_buf();
    let parts: Vec<&str> = keep.under.split('/').filter(|p| !p.is_empty()).collect();
    let Some((last, between)) = parts.split_last() else {
        return Err(Error::Invalid(format!(
            "COPY --parents: {:?} names no file",
            keep.under
        )));
    };
    for p in between {
        src.push(p);
        shown.push(p);
        let m = fs::metadata(&src).ctx("stat", &src)?;
        let (uid, gid) = attrs.owner.unwrap_or((m.uid(), m.gid()));
        let mode = attrs.chmod.unwrap_or(m.mode() & 0o7777);
        let t = Some((m.mtime(), m.mtime_nsec()));
        cur = dest::child_dir(cur.as_fd(), OsStr::new(p), &shown, |fd| {
            dest::set_attrs(fd, &shown, (uid, gid), mode, t)
        })?
        .0;
    }
    Ok((cur, shown, OsString::from(last)))
}

fn list(root: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .ctx("read", &dir)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    for n in names {
        let r = child_rel(rel, &n);
        let is_dir = fs::symlink_metadata(root.join(&r)).is_ok_and(|m| m.is_dir());
        out.push(r.clone());
        if is_dir {
            list(root, &r, out)?;
        }
    }
    Ok(())
}

/// Every entry a hash read, as it was then: (path, (device, inode), stamp).
pub(super) type Seen = Vec<(PathBuf, (u64, u64), super::filehash::Stamp)>;

/// Hashes what a COPY would copy: names, types, modes, owners, link
/// targets and contents, in sorted order.
pub fn hash(sources: &[Source], ignore: Option<&Ignore>) -> Result<String> {
    hash_seen(sources, ignore).map(|(h, _)| h)
}

/// [`hash`], and what it saw, so a copy (which reads the files again) can
/// tell whether it copied the same.
pub(super) fn hash_seen(sources: &[Source], ignore: Option<&Ignore>) -> Result<(String, Seen)> {
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut seen = Vec::new();
    for s in sources {
        h.update(s.rel.as_bytes());
        h.update(b"\0");
        hash_tree(&s.path, &s.rel, ignore, &mut h, &mut seen)?;
    }
    Ok((h.finish().to_string(), seen))
}

/// Is every entry `hash` saw still the same inode, unchanged (a write,
/// chmod, chown or rename moves its ctime)?
pub(super) fn unchanged(seen: &Seen) -> bool {
    seen.iter().all(|(p, id, stamp)| {
        fs::symlink_metadata(p)
            .is_ok_and(|m| (m.dev(), m.ino()) == *id && super::filehash::Stamp::of(&m) == *stamp)
    })
}

fn hash_tree(
    path: &Path,
    rel: &str,
    ignore: Option<&Ignore>,
    h: &mut Hasher,
    seen: &mut Seen,
) -> Result<()> {
    let m = fs::symlink_metadata(path).ctx("stat", path)?;
    seen.push((
        path.to_path_buf(),
        (m.dev(), m.ino()),
        super::filehash::Stamp::of(&m),
    ));
    h.update(format!("{}:{:o}:{}:{}\0", rel, m.mode(), m.uid(), m.gid()).as_bytes());
    if m.file_type().is_symlink() {
        h.update(
            fs::read_link(path)
                .ctx("readlink", path)?
                .as_os_str()
                .as_encoded_bytes(),
        );
    } else if m.is_file() {
        h.update(super::filehash::digest(path, &m)?.to_string().as_bytes());
    } else if m.is_dir() {
        let mut names: Vec<_> = fs::read_dir(path)
            .ctx("read", path)?
            .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect();
        names.sort();
        for n in names {
            let r = child_rel(rel, &n);
            if left_out(ignore, &path.join(&n), &r) {
                continue;
            }
            hash_tree(&path.join(&n), &r, ignore, h, seen)?;
        }
    }
    Ok(())
}

/// How copied files are owned and moded.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    /// None: keep the source's owner (COPY --from); Some: set it.
    pub owner: Option<(u32, u32)>,
    pub chmod: Option<u32>,
}

/// Copies the entries of the directory `src` into the directory `dir`
/// (a directory source's *contents* are copied: `dir` keeps its own mode
/// and owner, as in BuildKit). `shown` is `dir`'s path, for messages.
pub fn copy_children(
    src: &Path,
    rel: &str,
    dir: BorrowedFd<'_>,
    shown: &Path,
    attrs: Attrs,
    ignore: Option<&Ignore>,
) -> Result<()> {
    let fd = fswalk::open_root(src).ctx("open", src)?;
    children(fd.as_fd(), src, rel, dir, shown, attrs, ignore)
}

/// Copies `src` as the entry `name` of the directory `parent`: a
/// directory is merged into an existing one (never through a link), a
/// file or link replaces what was there. `src` was resolved when it was
/// chosen; from here on the source is read through fds (an entry swapped
/// for a link meanwhile is copied as that link, never followed).
pub fn copy_entry(
    src: &Path,
    rel: &str,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    attrs: Attrs,
    ignore: Option<&Ignore>,
) -> Result<()> {
    if rel.is_empty() {
        // The context root itself, which for a context passed as an fd is
        // the daemon's /proc/self/fd/N magic link: followed (the context is
        // that directory), never copied as the link.
        let f = File::from(fswalk::open_root(src).ctx("open", src)?);
        let m = f.metadata().ctx("stat", src)?;
        let node = fswalk::Node::Dir(f.into());
        return copy_node(&m, node, src, rel, parent, name, shown, attrs, ignore);
    }
    let (Some(src_dir), Some(src_name)) = (src.parent(), src.file_name()) else {
        return Err(Error::Invalid(format!(
            "{}: not a file to copy",
            src.display()
        )));
    };
    let d = fswalk::open_root(src_dir).ctx("open", src_dir)?;
    let (m, node) = fswalk::open_child(d.as_fd(), src_name).ctx("open", src)?;
    copy_node(&m, node, src, rel, parent, name, shown, attrs, ignore)
}

fn children(
    src: BorrowedFd<'_>,
    src_shown: &Path,
    rel: &str,
    dir: BorrowedFd<'_>,
    shown: &Path,
    attrs: Attrs,
    ignore: Option<&Ignore>,
) -> Result<()> {
    for n in fswalk::names(src).ctx("read", src_shown)? {
        let r = child_rel(rel, &n.to_string_lossy());
        let sp = src_shown.join(&n);
        if left_out(ignore, &sp, &r) {
            continue;
        }
        let (m, node) = fswalk::open_child(src, &n).ctx("open", &sp)?;
        copy_node(&m, node, &sp, &r, dir, &n, &shown.join(&n), attrs, ignore)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn copy_node(
    m: &fs::Metadata,
    node: fswalk::Node,
    src: &Path,
    rel: &str,
    parent: BorrowedFd<'_>,
    name: &OsStr,
    shown: &Path,
    attrs: Attrs,
    ignore: Option<&Ignore>,
) -> Result<()> {
    let owner = attrs.owner.unwrap_or((m.uid(), m.gid()));
    let mode = attrs.chmod.unwrap_or(m.mode() & 0o7777);
    let mtime = Some((m.mtime(), m.mtime_nsec()));
    match node {
        fswalk::Node::Dir(fd) => {
            let (d, _) = dest::child_dir(parent, name, shown, |_| Ok(()))?;
            children(fd.as_fd(), src, rel, d.as_fd(), shown, attrs, ignore)?;
            // Attributes last: a read-only directory must not stop its children.
            dest::set_attrs(d.as_fd(), shown, owner, mode, mtime)
        }
        fswalk::Node::Symlink(t) => dest::create_symlink(parent, name, &t, shown, owner, m),
        fswalk::Node::File(mut from) => {
            let mut to = dest::create_file(parent, name, shown)?;
            io::copy(&mut from, &mut to).ctx("copy", shown)?;
            dest::set_attrs(to.as_fd(), shown, owner, mode, mtime)
        }
        fswalk::Node::Other => Err(Error::Unsupported(format!(
            "copying special file {}",
            src.display()
        ))),
    }
}

/// Copies keep the source's mtime, as Docker's do (the cache ignores it).
pub(super) fn set_mtime(p: &Path, sec: i64, nsec: i64) -> Result<()> {
    let ts = nix::sys::time::TimeSpec::new(sec, nsec);
    nix::sys::stat::utimensat(
        nix::fcntl::AT_FDCWD,
        p,
        &ts,
        &ts,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(|e| Error::Io {
        op: "utimensat",
        path: p.to_path_buf(),
        source: e.into(),
    })
}

/// How a local ADD source is packed: Docker unpacks tars that are plain,
/// gzip, bzip2 or xz compressed, and (Docker 23 and later) zstd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    Plain,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

/// The compression, by magic number (a file too short for one is plain).
pub fn packing(p: &Path) -> Result<Packing> {
    let mut head = [0u8; 6];
    let n = read_full(&mut File::open(p).ctx("open", p)?, &mut head).ctx("read", p)?;
    let h = &head[..n];
    Ok(if h.starts_with(&[0x1f, 0x8b]) {
        Packing::Gzip
    } else if h.starts_with(b"BZh") {
        Packing::Bzip2
    } else if h.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Packing::Xz
    } else if h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Packing::Zstd
    } else {
        Packing::Plain
    })
}

/// The file's bytes, decompressed.
fn unpacked(p: &Path) -> Result<Box<dyn Read + Send>> {
    let how = packing(p)?;
    let f = File::open(p).ctx("open", p)?;
    Ok(match how {
        Packing::Plain => Box::new(f),
        Packing::Gzip => Box::new(flate2::read::MultiGzDecoder::new(f)),
        Packing::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(f)),
        Packing::Zstd => Box::new(zstd::stream::read::Decoder::new(f).ctx("open zstd", p)?),
        Packing::Xz => Box::new(XzReader::new(f).ctx("open xz", p)?),
    })
}

/// lzma-rs decodes xz from a reader into a writer; a thread behind a pipe
/// turns that into a reader. A decoding error surfaces at the end of the
/// stream; dropping the reader early stops the thread (broken pipe).
struct XzReader {
    pipe: io::PipeReader,
    worker: Option<std::thread::JoinHandle<std::result::Result<(), String>>>,
}

impl XzReader {
    fn new(f: File) -> io::Result<XzReader> {
        let (pipe, mut w) = io::pipe()?;
        let worker = std::thread::spawn(move || {
            let mut input = io::BufReader::new(f);
            lzma_rs::xz_decompress(&mut input, &mut w).map_err(|e| e.to_string())
        });
        Ok(XzReader {
            pipe,
            worker: Some(worker),
        })
    }
}

impl Read for XzReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.pipe.read(buf)?;
        if n == 0
            && !buf.is_empty()
            && let Some(w) = self.worker.take()
        {
            match w.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(io::Error::other(format!("xz: {e}"))),
                Err(_) => return Err(io::Error::other("xz: decoder panicked")),
            }
        }
        Ok(n)
    }
}

/// ADD's auto-extraction: is this a (possibly compressed) tar archive?
pub fn is_archive(p: &Path) -> bool {
    let Ok(mut r) = unpacked(p) else {
        return false;
    };
    let mut h = [0u8; 512];
    read_full(&mut r, &mut h).is_ok_and(|n| n == 512 && &h[257..262] == b"ustar")
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// A directory entry where `dst` has a symlink (an image's `/app/sub ->
/// /host/dir`) replaces the link with a directory, as Docker's untar does
/// (checked against dockerd 20.10's BuildKit), before anything below is
/// unpacked: tar would merge into the link's target and chmod and chown
/// it, which from `/etc` is the host's. Only when the link itself lies
/// inside `dst` (else tar refuses the entry as outside anyway).
fn replace_link_with_dir(dst: &Path, rel: &str) -> Result<()> {
    let at = dst.join(rel);
    if rel.is_empty() || !fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
        return Ok(());
    }
    let inside = at
        .parent()
        .and_then(|p| fs::canonicalize(p).ok())
        .zip(fs::canonicalize(dst).ok())
        .is_some_and(|(p, d)| p.starts_with(d));
    if !inside {
        return Err(Error::Invalid(format!(
            "cannot copy to non-directory: {} is a symlink",
            at.display()
        )));
    }
    fs::remove_file(&at).ctx("remove", &at)?;
    fs::create_dir(&at).ctx("create", &at)
}

/// Unpacks an archive into `dst`, owners and modes as in the archive.
pub fn extract(p: &Path, dst: &Path) -> Result<()> {
    let r = unpacked(p)?;
    fs::create_dir_all(dst).ctx("create", dst)?;
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    // As tar's own unpack: directories last (a read-only one must not stop
    // its children), then their mtimes, which tar leaves unset and
    // Docker keeps, once nothing more is created inside them.
    let mut dirs = Vec::new();
    for e in a.entries().ctx("extract", p)? {
        let mut e = e.ctx("extract", p)?;
        if e.header().entry_type() == tar::EntryType::Directory {
            if let Ok(rel) = e.path() {
                replace_link_with_dir(dst, &clean(&rel.to_string_lossy()))?;
            }
            dirs.push(e);
        } else {
            e.unpack_in(dst).ctx("extract", p)?;
        }
    }
    dirs.sort_by(|a, b| b.path_bytes().cmp(&a.path_bytes()));
    let mut times = Vec::new();
    for mut d in dirs {
        // Links were replaced above; one made since (by the archive's own
        // entries) is refused rather than merged through.
        if let Ok(rel) = d.path() {
            let at = dst.join(clean(&rel.to_string_lossy()));
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Invalid(format!(
                    "cannot copy to non-directory: {} is a symlink",
                    at.display()
                )));
            }
        }
        if d.unpack_in(dst).ctx("extract", p)?
            && let (Ok(rel), Ok(t)) = (d.path(), d.header().mtime())
        {
            times.push((dst.join(clean(&rel.to_string_lossy())), t as i64));
        }
    }
    for (d, t) in times {
        set_mtime(&d, t, 0)?;
    }
    // tar stops at its end marker; reading on to the end makes the
    // decompressor check its trailer (CRCs, xz index), so a damaged file
    // fails instead of passing for complete.
    io::copy(&mut a.into_inner(), &mut io::sink()).ctx("extract", p)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::symlink;

    fn tar_bytes() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o750);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1_500_000_000);
        h.set_cksum();
        b.append_data(&mut h, "d/", io::empty()).unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(6);
        h.set_mode(0o640);
        h.set_uid(7);
        h.set_gid(8);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        b.append_data(&mut h, "d/file", &b"inside"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// Links matched by a glob are followed inside the context, as named
    /// ones are: never to the host, and a dangling one is an error.
    #[test]
    fn glob_matches_follow_links_inside_the_root() {
        let t = tempfile::tempdir().unwrap();
        let host = t.path().join("host");
        fs::create_dir_all(&host).unwrap();
        fs::write(host.join("secret"), "HOST").unwrap();
        let r = t.path().join("ctx");
        fs::create_dir_all(r.join("d")).unwrap();
        fs::write(r.join("b.dat"), "B").unwrap();
        fs::write(r.join("d/f"), "F").unwrap();
        symlink("b.dat", r.join("a.txt")).unwrap();
        symlink("d/", r.join("dl.txt")).unwrap();
        let got = resolve(&r, &["*.txt".to_string()], None).unwrap();
        let paths: Vec<_> = got
            .iter()
            .map(|s| (s.rel.as_str(), s.path.clone()))
            .collect();
        assert_eq!(paths, [("a.txt", r.join("b.dat")), ("dl.txt", r.join("d"))]);
        // An absolute link names the context's own path, not the host's.
        symlink(host.join("secret"), r.join("h.txt")).unwrap();
        let e = resolve(&r, &["*.txt".to_string()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("h.txt is a dangling symlink"), "{e}");
        fs::remove_file(r.join("h.txt")).unwrap();
        symlink("nope", r.join("dang.txt")).unwrap();
        let e = resolve(&r, &["*.txt".to_string()], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dang.txt is a dangling symlink"), "{e}");
    }

    /// Every format Docker's ADD unpacks is recognised and unpacked with
    /// the archive's modes, owners and mtimes; what is not a tar (or is a
    /// broken one) is left alone or fails, never half-unpacked silently.
    #[test]
    fn compressed_tars_are_unpacked() {
        let t = tempfile::tempdir().unwrap();
        let tar = tar_bytes();
        let gz = {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let bz2 = {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
            e.write_all(&tar).unwrap();
            e.finish().unwrap()
        };
        let xz = {
            let mut out = Vec::new();
            lzma_rs::xz_compress(&mut &tar[..], &mut out).unwrap();
            out
        };
        let zst = zstd::stream::encode_all(&tar[..], 1).unwrap();
        for (name, data, how) in [
            ("a.tar", &tar, Packing::Plain),
            ("a.tar.gz", &gz, Packing::Gzip),
            ("a.tar.bz2", &bz2, Packing::Bzip2),
            ("a.tar.xz", &xz, Packing::Xz),
            ("a.tar.zst", &zst, Packing::Zstd),
        ] {
            let p = t.path().join(name);
            fs::write(&p, data).unwrap();
            assert_eq!(packing(&p).unwrap(), how, "{name}");
            assert!(is_archive(&p), "{name}");
            let dst = t.path().join(format!("out-{name}"));
            extract(&p, &dst).unwrap();
            let f = dst.join("d/file");
            let m = fs::metadata(&f).unwrap();
            assert_eq!(fs::read(&f).unwrap(), b"inside", "{name}");
            assert_eq!(
                (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
                (0o640, 7, 8, 1_600_000_000),
                "{name}"
            );
            let d = fs::metadata(dst.join("d")).unwrap();
            assert_eq!(
                (d.mode() & 0o7777, d.mtime()),
                (0o750, 1_500_000_000),
                "{name}"
            );
        }
        // Compressed non-tars are files to copy, not archives.
        let not_tar = t.path().join("notes.xz");
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &b"just text"[..], &mut out).unwrap();
        fs::write(&not_tar, &out).unwrap();
        assert!(!is_archive(&not_tar));
        let short = t.path().join("short");
        fs::write(&short, b"BZ").unwrap();
        assert_eq!(packing(&short).unwrap(), Packing::Plain);
        assert!(!is_archive(&short));
        // A truncated xz tar fails loudly.
        let cut = t.path().join("cut.tar.xz");
        fs::write(&cut, &xz[..xz.len() - 20]).unwrap();
        let e = extract(&cut, &t.path().join("out-cut"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.tar.xz"), "{e}");
    }
}
