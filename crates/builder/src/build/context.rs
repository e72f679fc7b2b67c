//! Build contexts that aren't a directory: a tar (optionally gzip'd) on
//! stdin, or just a Dockerfile on stdin (empty context). Both live in a
//! scratch dir under the store that is removed on drop.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

pub struct ScratchContext {
    pub dir: PathBuf,
    /// The Dockerfile text when stdin held one instead of a tar.
    pub dockerfile: Option<String>,
}

impl Drop for ScratchContext {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Most a bare Dockerfile sent instead of a context tar may hold.
const DOCKERFILE_MAX: u64 = 16 << 20;

/// What stdin-like input holds: a tar (streamed from `head` on, never
/// whole in memory), gzip'd or not, or a bare Dockerfile.
enum Input<R> {
    Tar {
        gz: bool,
        data: std::io::Chain<std::io::Cursor<Vec<u8>>, R>,
    },
    Dockerfile(String),
}

/// Reads enough of `input` to tell a tar from a Dockerfile.
fn sniff<R: Read>(mut input: R) -> Result<Input<R>> {
    let mut head = vec![0u8; 512];
    let n = read_full(&mut input, &mut head).ctx("read", "build context")?;
    head.truncate(n);
    if is_tar(&head) {
        let gz = head.starts_with(&[0x1f, 0x8b]);
        return Ok(Input::Tar {
            gz,
            data: std::io::Cursor::new(head).chain(input),
        });
    }
    let mut text = head;
    input
        .take(DOCKERFILE_MAX + 1)
        .read_to_end(&mut text)
        .ctx("read", "build context")?;
    if text.len() as u64 > DOCKERFILE_MAX {
        return Err(crate::Error::Invalid(format!(
            "the build context is neither a tar nor a Dockerfile of at most {} MiB",
            DOCKERFILE_MAX >> 20
        )));
    }
    Ok(Input::Dockerfile(
        String::from_utf8_lossy(&text).into_owned(),
    ))
}

/// Reads stdin-like input: a tar/tar.gz becomes the context, anything else
/// is taken as the Dockerfile with an empty context.
pub fn from_reader(store_root: &Path, input: impl Read) -> Result<ScratchContext> {
    let dir = store_root
        .join("builder")
        .join("tmp")
        .join(super::run::unique("context"));
    fs::create_dir_all(&dir).ctx("create", &dir)?;
    let mut ctx = ScratchContext {
        dir,
        dockerfile: None,
    };
    let r: Box<dyn Read> = match sniff(input)? {
        Input::Dockerfile(text) => {
            ctx.dockerfile = Some(text);
            return Ok(ctx);
        }
        Input::Tar { gz: true, data } => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Input::Tar { gz: false, data } => Box::new(data),
    };
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    // `unpack` refuses entries that would land outside the dir.
    a.unpack(&ctx.dir).ctx("extract context", &ctx.dir)?;
    Ok(ctx)
}

/// Is a `POST /build` body a tar (plain or gzip'd), not a bare Dockerfile?
pub fn is_tar(body: &[u8]) -> bool {
    body.starts_with(&[0x1f, 0x8b]) || (body.len() >= 512 && &body[257..262] == b"ustar")
}

/// A context directory as the tar a client sends with `POST /build`. What
/// `.dockerignore` excludes stays out (as the docker CLI does), except the
/// Dockerfile (`keep`) and `.dockerignore` themselves, which the builder
/// reads; `extra` adds files by name (a Dockerfile from outside the
/// context, or from stdin), and, as the docker CLI does, lists them in the
/// sent `.dockerignore` so that `COPY .` does not pick them up.
pub fn tar_dir(dir: &Path, keep: &[&str], extra: &[(&str, &[u8])]) -> Result<Vec<u8>> {
    let ignore_text = fs::read_to_string(dir.join(".dockerignore")).ok();
    let ignore = ignore_text
        .as_deref()
        .map(crate::dockerfile::ignore::Ignore::parse);
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let mut extra: Vec<(String, Vec<u8>)> = extra
        .iter()
        .map(|(n, d)| (n.to_string(), d.to_vec()))
        .collect();
    if !extra.is_empty() {
        let mut text = ignore_text.unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for (n, _) in &extra {
            text.push_str(&format!("{n}\n"));
        }
        extra.push((".dockerignore".into(), text.into_bytes()));
    }
    let mut todo = vec![String::new()];
    while let Some(rel) = todo.pop() {
        let here = dir.join(&rel);
        let mut names: Vec<String> = fs::read_dir(&here)
            .ctx("read", &here)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<std::io::Result<_>>()
            .ctx("read", &here)?;
        names.sort();
        for n in names {
            let r = super::copy::child_rel(&rel, &n);
            let p = dir.join(&r);
            let is_dir = fs::symlink_metadata(&p).ctx("stat", &p)?.is_dir();
            if extra.iter().any(|(n, _)| *n == r) {
                continue;
            }
            let excluded = ignore.as_ref().is_some_and(|i| i.excluded(&r))
                && r != ".dockerignore"
                && !keep.contains(&r.as_str());
            if excluded {
                // An exception may still re-include something below.
                if is_dir && ignore.as_ref().is_some_and(|i| i.may_include_under(&r)) {
                    todo.push(r);
                }
                continue;
            }
            b.append_path_with_name(&p, &r).ctx("tar", &p)?;
            if is_dir {
                todo.push(r);
            }
        }
    }
    for (name, data) in &extra {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, &data[..]).ctx("tar", name)?;
    }
    b.into_inner().ctx("tar", dir)
}

/// A context kept between builds from the same client directory (`key`):
/// each build's tar is applied to it, writing only the entries whose type,
/// size, mode, owner or mtime changed and removing what the tar no longer
/// has. An unchanged context then costs no file creation or removal, which
/// on ext4 is most of what unpacking a large context costs (BuildKit's
/// context sync saves the same).
pub struct KeptContext {
    pub dir: PathBuf,
    pub dockerfile: Option<String>,
    /// Held while a build uses the dir.
    _lock: fs::File,
}

/// The kept context for `key` synced to `input`; None when another build
/// holds it (the caller then uses a scratch context), before any of
/// `input` is read.
pub fn kept(store_root: &Path, key: &str, input: impl Read) -> Result<Option<KeptContext>> {
    if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(crate::Error::Invalid(format!(
            "context key {key:?}: expected up to 64 hex digits"
        )));
    }
    let base = store_root.join("builder").join("contexts");
    fs::create_dir_all(&base).ctx("create", &base)?;
    let lock_path = base.join(format!("{key}.lock"));
    let lock = fs::File::create(&lock_path).ctx("create", &lock_path)?;
    // SAFETY: flock on an fd we own.
    if unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    } != 0
    {
        return Ok(None);
    }
    let dir = base.join(key);
    fs::create_dir_all(&dir).ctx("create", &dir)?;
    let mut ctx = KeptContext {
        dir,
        dockerfile: None,
        _lock: lock,
    };
    match sniff(input)? {
        Input::Dockerfile(text) => {
            ctx.dockerfile = Some(text);
            sync(&ctx.dir, tar::Archive::new(&[][..]))?;
        }
        Input::Tar { gz: true, data } => sync(
            &ctx.dir,
            tar::Archive::new(flate2::read::MultiGzDecoder::new(data)),
        )?,
        Input::Tar { gz: false, data } => sync(&ctx.dir, tar::Archive::new(data))?,
    }
    Ok(Some(ctx))
}

/// Does the file at `m` already hold what the tar entry `h` describes?
fn unchanged(m: &fs::Metadata, h: &tar::Header, link: Option<&Path>, at: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let same_owner = h.uid().ok() == Some(m.uid() as u64) && h.gid().ok() == Some(m.gid() as u64);
    // tar-rs puts the whole st_mode (file type bits too) in headers it
    // fills from a file, as GNU tar does not: compare permission bits only.
    let same_mode = h.mode().ok().map(|v| v & 0o7777) == Some(m.mode() & 0o7777);
    match h.entry_type() {
        tar::EntryType::Directory => m.is_dir() && same_owner && same_mode,
        tar::EntryType::Regular => {
            m.is_file()
                && same_owner
                && same_mode
                && h.size().ok() == Some(m.len())
                && h.mtime().ok() == Some(m.mtime().max(0) as u64)
        }
        tar::EntryType::Symlink => {
            m.file_type().is_symlink() && same_owner && fs::read_link(at).ok().as_deref() == link
        }
        _ => false,
    }
}

/// How far apart (seconds) a client's read of a file and the sync's
/// write of it may be, and still be told apart by mtime alone.
const RACY_SECONDS: i64 = 2;

/// Could the kept file differ from the tar entry although size and mtime
/// second agree? Tar headers carry whole seconds (both `berth build`'s and
/// docker's), so an edit that keeps the size and lands in the same second
/// as the previous one, after the client read the file, looks unchanged.
/// That is only possible when the file's mtime second is (about) when the
/// kept copy was written, which its ctime records (as git's racy-clean
/// check uses the index's time); an older mtime is settled.
fn ambiguous(m: &fs::Metadata, h: &tar::Header) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(mtime) = h.mtime() else {
        return true;
    };
    mtime as i64 + RACY_SECONDS >= m.ctime()
}

/// Compares the kept file `at` with the entry in chunks (never a whole
/// file in memory); on the first difference the rest of the entry goes
/// to a new file beside it (the equal prefix copied from the old one),
/// renamed over it. Equal: its ctime moves to now, so a settled mtime is
/// not compared again next time.
fn compare_or_rewrite(e: &mut impl Read, at: &Path) -> Result<()> {
    use std::io::{Seek, Write};
    const CHUNK: usize = 64 << 10;
    let mut old = fs::File::open(at).ctx("open", at)?;
    let (mut a, mut b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut same: u64 = 0;
    loop {
        let n = read_full(e, &mut a).ctx("read context tar", at)?;
        let k = read_full(&mut old, &mut b[..n]).ctx("read", at)?;
        if n == 0 && k == 0 {
            // Equal: touch the ctime (same mtime) to settle it.
            let t = old.metadata().ctx("stat", at)?.modified().ctx("stat", at)?;
            return fs::File::options()
                .write(true)
                .open(at)
                .and_then(|f| f.set_modified(t))
                .ctx("set mtime", at);
        }
        if n != k || a[..n] != b[..n] {
            let tmp = at.with_file_name(format!(
                ".{}.sync-{}",
                at.file_name().unwrap_or_default().to_string_lossy(),
                std::process::id()
            ));
            let _ = fs::remove_file(&tmp);
            let mut new = fs::File::options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .ctx("create", &tmp)?;
            let written = (|| -> std::io::Result<()> {
                old.seek(std::io::SeekFrom::Start(0))?;
                std::io::copy(&mut (&mut old).take(same), &mut new)?;
                new.write_all(&a[..n])?;
                std::io::copy(e, &mut new)?;
                Ok(())
            })();
            drop(new);
            if let Err(err) = written {
                let _ = fs::remove_file(&tmp);
                return Err(err).ctx("write", at);
            }
            let m = old.metadata().ctx("stat", at)?;
            set_attrs(&tmp, &m)?;
            return fs::rename(&tmp, at).ctx("rename", at);
        }
        same += n as u64;
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// The kept file's owner, mode and mtime (the header's, which it matched)
/// on its rewrite.
fn set_attrs(at: &Path, m: &fs::Metadata) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    std::os::unix::fs::lchown(at, Some(m.uid()), Some(m.gid())).ctx("chown", at)?;
    // After the chown, which clears set-id bits.
    fs::set_permissions(at, fs::Permissions::from_mode(m.mode() & 0o7777)).ctx("chmod", at)?;
    let t = m.modified().ctx("stat", at)?;
    fs::File::options()
        .write(true)
        .open(at)
        .and_then(|f| f.set_modified(t))
        .ctx("set mtime", at)
}

fn sync<R: Read>(dir: &Path, mut a: tar::Archive<R>) -> Result<()> {
    use std::collections::HashSet;
    use std::path::Component;
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    let mut seen: HashSet<PathBuf> = HashSet::new();
    // Dirs of the kept context checked to be real dirs, not symlinks.
    let mut real_dirs: HashSet<PathBuf> = HashSet::new();
    for e in a.entries().ctx("read context tar", dir)? {
        let mut e = e.ctx("read context tar", dir)?;
        let raw = e.path().ctx("read context tar", dir)?.into_owned();
        if raw
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
        {
            return Err(crate::Error::Invalid(format!(
                "context tar entry {}: outside the context",
                raw.display()
            )));
        }
        let rel: PathBuf = raw
            .components()
            .filter(|c| matches!(c, Component::Normal(_)))
            .collect();
        if rel.as_os_str().is_empty() {
            continue;
        }
        let mut anc = rel.clone();
        loop {
            seen.insert(anc.clone());
            if !anc.pop() || anc.as_os_str().is_empty() {
                break;
            }
        }
        let at = dir.join(&rel);
        let link = e.link_name().ok().flatten().map(|l| l.into_owned());
        if e.header().entry_type() != tar::EntryType::Directory {
            real_dirs.remove(&rel);
        }
        // A parent that is a symlink (an entry of this tar or a leftover)
        // must not lead the stat, removal or write below out of the dir;
        // unpack_in refuses such an entry by itself.
        let parents_real = rel
            .ancestors()
            .skip(1)
            .filter(|a| !a.as_os_str().is_empty())
            .all(|a| {
                real_dirs.contains(a)
                    || (fs::symlink_metadata(dir.join(a)).is_ok_and(|m| m.is_dir())
                        && real_dirs.insert(a.to_path_buf()))
            });
        if !parents_real {
            e.unpack_in(dir).ctx("extract context", &at)?;
            continue;
        }
        if let Ok(m) = fs::symlink_metadata(&at) {
            if unchanged(&m, e.header(), link.as_deref(), &at) {
                if !m.is_file() || !ambiguous(&m, e.header()) {
                    continue;
                }
                // Same size and mtime second, and that second is when the
                // kept copy was written: the contents decide (an edit
                // within the second the last sync saw would look the same).
                compare_or_rewrite(&mut e, &at)?;
                continue;
            }
            // Replaced, never written in place.
            let is_dir_entry = e.header().entry_type() == tar::EntryType::Directory;
            if m.is_dir() && !is_dir_entry {
                fs::remove_dir_all(&at).ctx("remove", &at)?;
            } else if !m.is_dir() {
                fs::remove_file(&at).ctx("remove", &at)?;
            }
        }
        e.unpack_in(dir).ctx("extract context", &at)?;
    }
    // What the tar no longer has.
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let here = dir.join(&rel);
        for ent in fs::read_dir(&here).ctx("read", &here)? {
            let name = ent.ctx("read", &here)?.file_name();
            let r = rel.join(&name);
            let p = dir.join(&r);
            let is_dir = fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir());
            if !seen.contains(&r) {
                if is_dir {
                    fs::remove_dir_all(&p).ctx("remove", &p)?;
                } else {
                    fs::remove_file(&p).ctx("remove", &p)?;
                }
            } else if is_dir {
                todo.push(r);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_tar_honours_dockerignore() {
        let d = tempfile::tempdir().unwrap();
        for (p, t) in [
            ("Dockerfile", "FROM scratch"),
            (".dockerignore", "*.log\nbuild\n!build/keep\nDockerfile\n"),
            ("a.txt", "a"),
            ("x.log", "x"),
            ("build/out", "o"),
            ("build/keep", "k"),
            ("src/m.c", "m"),
        ] {
            let f = d.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, t).unwrap();
        }
        let data = tar_dir(d.path(), &["Dockerfile"], &[(".df-extra", b"FROM x")]).unwrap();
        let mut names: Vec<String> = tar::Archive::new(&data[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                ".df-extra",
                ".dockerignore",
                "Dockerfile",
                "a.txt",
                "build/keep",
                "src",
                "src/m.c"
            ]
        );
        // What a daemon does with it.
        let root = tempfile::tempdir().unwrap();
        let c = from_reader(root.path(), &data[..]).unwrap_or_else(|e| {
            panic!("{e}: {:?}", std::error::Error::source(&e));
        });
        assert_eq!(
            fs::read_to_string(c.dir.join(".df-extra")).unwrap(),
            "FROM x"
        );
        assert_eq!(
            fs::read_to_string(c.dir.join(".dockerignore")).unwrap(),
            "*.log\nbuild\n!build/keep\nDockerfile\n.df-extra\n"
        );
        assert_eq!(fs::read_to_string(c.dir.join("build/keep")).unwrap(), "k");
        // A kept context: same result, then only what changed is rewritten
        // and what went away is removed.
        let k = kept(root.path(), "ab12", &data[..]).unwrap().unwrap();
        assert_eq!(fs::read_to_string(k.dir.join("src/m.c")).unwrap(), "m");
        assert!(
            kept(root.path(), "ab12", &data[..]).unwrap().is_none(),
            "locked"
        );
        let dir2 = k.dir.clone();
        let keep_ino =
            |p: &str| std::os::unix::fs::MetadataExt::ino(&fs::metadata(dir2.join(p)).unwrap());
        drop(k);
        fs::write(d.path().join("src/m.c"), "changed").unwrap();
        fs::remove_file(d.path().join("a.txt")).unwrap();
        let data2 = tar_dir(d.path(), &["Dockerfile"], &[]).unwrap();
        let k = kept(root.path(), "ab12", &data2[..]).unwrap().unwrap();
        assert_eq!(
            fs::read_to_string(k.dir.join("src/m.c")).unwrap(),
            "changed"
        );
        assert!(!k.dir.join("a.txt").exists() && !k.dir.join(".df-extra").exists());
        drop(k);
        fs::write(d.path().join("a.txt"), "a").unwrap();
        let k = kept(
            root.path(),
            "ab12",
            &tar_dir(d.path(), &["Dockerfile"], &[]).unwrap()[..],
        )
        .unwrap()
        .unwrap();
        let b_ino = keep_ino("build/keep");
        // A second name pins the inode: a rewrite cannot get its number back.
        let pin = root.path().join("pin");
        fs::hard_link(dir2.join("build/keep"), &pin).unwrap();
        let again = kept(root.path(), "ab12", &[][..]);
        assert!(again.unwrap().is_none());
        drop(k);
        let k = kept(
            root.path(),
            "ab12",
            &tar_dir(d.path(), &["Dockerfile"], &[]).unwrap()[..],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            keep_ino("build/keep"),
            b_ino,
            "an unchanged file is not rewritten"
        );
        assert_eq!(k.dir, dir2);
        assert!(kept(root.path(), "../x", &data[..]).is_err());
        drop(k);
        // Same size, same mtime: the contents still decide.
        let src = d.path().join("build/keep");
        let mtime = fs::metadata(&src).unwrap().modified().unwrap();
        fs::write(&src, "K").unwrap();
        fs::File::options()
            .write(true)
            .open(&src)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let k = kept(
            root.path(),
            "ab12",
            &tar_dir(d.path(), &["Dockerfile"], &[]).unwrap()[..],
        )
        .unwrap()
        .unwrap();
        assert_eq!(fs::read_to_string(k.dir.join("build/keep")).unwrap(), "K");
    }

    /// Same size and mtime second: a file whose mtime is about when its
    /// kept copy was written is compared (in chunks: a difference past the
    /// first one is found and rewritten right); an older mtime is settled
    /// and the file not read at all (its stale copy here proves it).
    #[test]
    fn sync_compares_only_files_of_an_ambiguous_second() {
        use std::time::{Duration, SystemTime, UNIX_EPOCH};
        let root = tempfile::tempdir().unwrap();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw() as u64,
            nix::unistd::getegid().as_raw() as u64,
        );
        let mut b = tar::Builder::new(Vec::new());
        for (name, mtime) in [("old", now - 1000), ("new", now)] {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(big.len() as u64);
            h.set_mode(0o644);
            h.set_uid(uid);
            h.set_gid(gid);
            h.set_mtime(mtime);
            b.append_data(&mut h, name, &big[..]).unwrap();
        }
        let t = b.into_inner().unwrap();
        drop(kept(root.path(), "ef", &t[..]).unwrap().unwrap());
        let dir = root.path().join("builder/contexts/ef");
        let mut other = big.clone();
        other[200_000] ^= 0xff;
        for (name, mtime) in [("old", now - 1000), ("new", now)] {
            fs::write(dir.join(name), &other).unwrap();
            fs::File::options()
                .write(true)
                .open(dir.join(name))
                .unwrap()
                .set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
                .unwrap();
        }
        drop(kept(root.path(), "ef", &t[..]).unwrap().unwrap());
        assert!(fs::read(dir.join("new")).unwrap() == big, "compared");
        assert!(fs::read(dir.join("old")).unwrap() == other, "not read");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    /// An entry below a symlink never reaches what the link points at,
    /// even when its header matches the file there.
    #[test]
    fn sync_stays_inside_through_symlinked_parents() {
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::write(victim.join("f"), "secret").unwrap();
        let vm = fs::metadata(victim.join("f")).unwrap();
        let tar_of = |with_file: bool| {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            h.set_mode(0o777);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            b.append_link(&mut h, "lnk", &victim).unwrap();
            if with_file {
                use std::os::unix::fs::MetadataExt;
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(6);
                h.set_mode(vm.mode() & 0o7777);
                h.set_uid(vm.uid() as u64);
                h.set_gid(vm.gid() as u64);
                h.set_mtime(vm.mtime() as u64);
                b.append_data(&mut h, "lnk/f", &b"hacked"[..]).unwrap();
            }
            b.into_inner().unwrap()
        };
        drop(
            kept(root.path(), "cd", &tar_of(false)[..])
                .unwrap()
                .unwrap(),
        );
        assert!(kept(root.path(), "cd", &tar_of(true)[..]).is_err());
        assert_eq!(fs::read_to_string(victim.join("f")).unwrap(), "secret");
    }
}
