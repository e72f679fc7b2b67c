//! `RUN --mount`: what each mount is on the host, its part of the step's
//! cache key, and the mount points it needs in the rootfs (removed again
//! before the changeset is taken, so no mount leaves a trace in a layer).
//!
//! - cache: a persistent dir per id under `<root>/builder/cache-mounts`,
//!   kept across builds; `sharing=locked` holds an exclusive lock for the
//!   step, `private` takes a fresh dir when another step holds the cache.
//! - bind: a path of the context, or of a stage or image (`from=`),
//!   read-only with all its submounts unless `rw` (then the step gets a
//!   throwaway copy); a copy without what .dockerignore excludes, when it
//!   excludes anything there.
//! - tmpfs: an empty tmpfs.
//! - secret: the build's `--secret id=…` file, read-only at
//!   `/run/secrets/<id>`; only its id reaches the cache key.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::lease::Lease;
use berth_image::{Digest, fswalk};
use nix::fcntl::OFlag;
use serde_json::{Value, json};

use super::copy;
use super::copy_step::scoped;
use super::run::ReadOnlyRoot;
use super::steps::{Ctx, StageState};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{Dockerfile, MountType, RunMount, Sharing};
use crate::error::{Error, IoContext, Result};

/// A RUN's mounts, ready for its container.
#[derive(Default)]
pub(super) struct Prepared {
    /// OCI runtime-spec mount entries.
    pub oci: Vec<Value>,
    /// What the cache key must reflect.
    pub key: Vec<Value>,
    /// Mount points the rootfs needs: (target, is a file).
    points: Vec<(String, bool)>,
    /// Mount points created in the rootfs (their topmost new ancestor).
    stubs: Vec<PathBuf>,
    /// Held for the step: read-only roots of `from=`, cache locks,
    /// throwaway dirs.
    _roots: Vec<ReadOnlyRoot>,
    _locks: Vec<fs::File>,
    scratch: Vec<PathBuf>,
    /// Scratch dirs holding a detached bind at `src` (see bind_detached).
    detached: Vec<PathBuf>,
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for d in &self.scratch {
            let _ = fs::remove_dir_all(d);
        }
        // Never removed while still mounted: the mount is someone's real
        // directory (read-only, but still).
        for d in &self.detached {
            if berth_image::rootfs::unmount(&d.join("src")).is_ok() {
                let _ = fs::remove_dir_all(d);
            }
        }
    }
}

impl Prepared {
    /// Creates the missing mount points in the step's rootfs.
    pub fn make_stubs(&mut self, rootfs: &Path) -> Result<()> {
        for (t, file) in &self.points {
            self.stubs.extend(stub(rootfs, t, *file)?);
        }
        Ok(())
    }

    /// Removes the mount points the step's rootfs got only for the mounts.
    pub fn remove_stubs(&self) -> Result<()> {
        for s in &self.stubs {
            let r = if s.is_dir() {
                fs::remove_dir_all(s)
            } else {
                fs::remove_file(s)
            };
            r.ctx("remove mount point", s)?;
        }
        Ok(())
    }
}

fn bind(target: &str, source: &Path, readonly: bool) -> Value {
    let mut o = vec!["rbind", "nosuid", "nodev"];
    if readonly {
        o.push("ro");
    }
    json!({"destination": target, "type": "bind", "source": source, "options": o})
}

/// Creates `target` (a dir, or a file for file sources) in `rootfs` when
/// missing; returns its topmost created ancestor.
fn stub(rootfs: &Path, target: &str, file: bool) -> Result<Option<PathBuf>> {
    let host = scoped(rootfs, target)?;
    if host.symlink_metadata().is_ok() {
        return Ok(None);
    }
    let mut top = host.clone();
    while let Some(p) = top.parent() {
        if p.symlink_metadata().is_ok() || p == rootfs {
            break;
        }
        top = p.to_path_buf();
    }
    if file {
        if let Some(p) = host.parent() {
            fs::create_dir_all(p).ctx("create", p)?;
        }
        fs::File::create(&host).ctx("create", &host)?;
    } else {
        fs::create_dir_all(&host).ctx("create", &host)?;
    }
    Ok(Some(top))
}

/// Exclusive lock, waiting or not.
fn lock(path: &Path, wait: bool) -> Result<Option<fs::File>> {
    let f = fs::File::create(path).ctx("create", path)?;
    let mut flags = libc::LOCK_EX;
    if !wait {
        flags |= libc::LOCK_NB;
    }
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), flags) } != 0 {
        let e = std::io::Error::last_os_error();
        if !wait && e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e).ctx("lock", path);
    }
    Ok(Some(f))
}

fn new_dir(dir: &Path, m: &RunMount) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(m.mode.unwrap_or(0o755))
        .create(dir)
        .ctx("create", dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(m.mode.unwrap_or(0o755)))
        .ctx("chmod", dir)?;
    std::os::unix::fs::lchown(dir, Some(m.uid.unwrap_or(0)), Some(m.gid.unwrap_or(0)))
        .ctx("chown", dir)
}

impl Ctx<'_> {
    /// Resolves `mounts` (values already expanded) for a RUN.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare_mounts(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        done: &[Option<StageState>],
        mounts: &[RunMount],
        workdir: &str,
        lease: &mut Lease,
    ) -> Result<Prepared> {
        let mut p = Prepared::default();
        for m in mounts {
            let target = match (&m.target, m.kind) {
                (Some(t), _) => t.clone(),
                (None, MountType::Secret) => {
                    format!("/run/secrets/{}", m.id.as_deref().unwrap_or_default())
                }
                (None, _) => return Err(Error::Invalid("RUN --mount: target is required".into())),
            };
            // Relative targets are relative to the working directory.
            let target = if target.starts_with('/') {
                target
            } else {
                format!("{}/{target}", workdir.trim_end_matches('/'))
            };
            match m.kind {
                MountType::Tmpfs => {
                    let mut o = vec!["nosuid".to_string(), "nodev".to_string()];
                    if let Some(s) = m.size {
                        o.push(format!("size={s}"));
                    }
                    p.oci.push(json!({"destination": target, "type": "tmpfs", "source": "tmpfs", "options": o}));
                    p.key.push(json!({"tmpfs": target, "size": m.size}));
                    p.points.push((target.clone(), false));
                }
                MountType::Secret => {
                    let id = m
                        .id
                        .clone()
                        .unwrap_or_else(|| target.rsplit('/').next().unwrap_or_default().into());
                    let Some(src) = self.opts.secrets.get(&id) else {
                        if m.required {
                            return Err(Error::Invalid(format!(
                                "secret {id}: required by RUN --mount but not given to the build (--secret id={id},src=FILE)"
                            )));
                        }
                        continue;
                    };
                    if !src.is_file() {
                        return Err(Error::Invalid(format!(
                            "secret {id}: {} is not a file",
                            src.display()
                        )));
                    }
                    p.oci.push(bind(&target, src, true));
                    p.key.push(json!({"secret": id, "target": target}));
                    p.points.push((target.clone(), true));
                }
                MountType::Cache => {
                    if m.from.is_some() {
                        return Err(Error::Unsupported(
                            "RUN --mount=type=cache with from= (seeding a cache from a stage)"
                                .into(),
                        ));
                    }
                    let id = m.id.clone().unwrap_or_else(|| target.clone());
                    let base = self.store.root().join("builder").join("cache-mounts");
                    fs::create_dir_all(&base).ctx("create", &base)?;
                    let name = Digest::sha256_of(id.as_bytes()).hex().to_string();
                    let mut dir = base.join(&name);
                    let lock_path = base.join(format!("{name}.lock"));
                    match m.sharing {
                        Sharing::Shared => {}
                        Sharing::Locked => p._locks.extend(lock(&lock_path, true)?),
                        Sharing::Private => match lock(&lock_path, false)? {
                            Some(l) => p._locks.push(l),
                            None => {
                                // Held by another step: this one gets its own.
                                dir = self.tmp.join(super::run::unique("cache"));
                                p.scratch.push(dir.clone());
                            }
                        },
                    }
                    if !dir.is_dir() {
                        new_dir(&dir, m)?;
                    }
                    p.oci.push(bind(&target, &dir, m.readonly));
                    p.key
                        .push(json!({"cache": id, "target": target, "ro": m.readonly}));
                    p.points.push((target.clone(), false));
                }
                MountType::Bind => {
                    let source = m.source.clone().unwrap_or_default();
                    let (root_dir, key, filtered) = match &m.from {
                        None => {
                            let host = scoped(&self.opts.context, &source)?;
                            if host.symlink_metadata().is_err() {
                                return Err(Error::Invalid(format!(
                                    "RUN --mount=type=bind: source {source:?} not found in the build context"
                                )));
                            }
                            // What .dockerignore excludes is no part of the
                            // context: not of the key, not of the mount.
                            let ignore = self.ignore.as_ref();
                            let srcs = copy::resolve(
                                &self.opts.context,
                                std::slice::from_ref(&source),
                                ignore,
                            )?;
                            let filtered = match (ignore, srcs.as_slice()) {
                                (Some(i), [s]) if excludes(&s.path, &s.rel, i)? => {
                                    Some((s.clone(), i.clone()))
                                }
                                _ => None,
                            };
                            (
                                self.opts.context.clone(),
                                copy::hash(&srcs, ignore)?,
                                filtered,
                            )
                        }
                        Some(f) => {
                            let st = self.stage_or_image(df, idx, done, f, lease)?;
                            let root =
                                ReadOnlyRoot::mount(&self.store, &self.tmp, &self.lowers(&st)?)?;
                            let host = scoped(&root.dir, &source)?;
                            if host.symlink_metadata().is_err() {
                                return Err(Error::Invalid(format!(
                                    "RUN --mount=type=bind: source {source:?} not found in {f}"
                                )));
                            }
                            let dir = root.dir.clone();
                            p._roots.push(root);
                            let chain: Vec<String> =
                                st.layers.iter().map(|l| l.chain_id.to_string()).collect();
                            (dir, json!(chain).to_string(), None)
                        }
                    };
                    let d = self.tmp.join(super::run::unique(if m.readonly {
                        "bindro"
                    } else {
                        "bindrw"
                    }));
                    let src = d.join("src");
                    let bound = match &filtered {
                        Some(_) => false,
                        None if m.readonly => bind_detached(&root_dir, &source, &d, &src)?,
                        None => false,
                    };
                    if bound {
                        p.detached.push(d);
                    } else {
                        // A copy in a scratch dir: writes are allowed but
                        // discarded (rw), what .dockerignore excludes is
                        // left out, or the context is in a mount namespace
                        // the daemon cannot bind from.
                        p.scratch.push(d.clone());
                        fs::create_dir_all(&d).ctx("create", &d)?;
                        match &filtered {
                            Some((s, ignore)) => copy_filtered(s, &d, ignore)?,
                            None => copy_tree(&root_dir, &source, &src)?,
                        }
                    }
                    let file = src.is_file();
                    p.oci.push(bind(&target, &src, m.readonly));
                    p.key.push(json!({"bind": source, "target": target, "from": m.from, "content": key, "ro": m.readonly}));
                    p.points.push((target.clone(), file));
                }
            }
        }
        Ok(p)
    }
}

/// Binds `source` below `root` at `mount` (inside the new scratch dir
/// `dir`), read-only with every submount: by an fd opened beneath the
/// root (RESOLVE_IN_ROOT), cloned as a detached tree and attached, so no
/// path under the context is walked again between check and mount, and
/// the runtime binds only the daemon's own scratch path. False when the
/// source lives in another mount namespace (a client's private mount,
/// which the kernel does not clone from) or the kernel lacks the mount
/// API: the caller copies instead.
fn bind_detached(root: &Path, source: &str, dir: &Path, mount: &Path) -> Result<bool> {
    use std::os::fd::AsFd;
    let (fd, at) = open_source(root, source)?;
    let tree = match berth_runtime::idmap::readonly_tree(fd.as_fd()) {
        Ok(t) => t,
        // EINVAL: a mount of another namespace; ENOSYS: a kernel before
        // 5.12 (no mount_setattr), where only a copy is read-only through.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
            return Ok(false);
        }
        Err(e) => return Err(e).ctx("clone mount", &at),
    };
    let is_dir = nix::sys::stat::fstat(&fd)
        .map_err(std::io::Error::from)
        .ctx("stat", &at)?
        .st_mode
        & libc::S_IFMT
        == libc::S_IFDIR;
    fs::create_dir_all(dir).ctx("create", dir)?;
    let made = if is_dir {
        fs::create_dir(mount)
    } else {
        fs::File::create(mount).map(drop)
    };
    let attached = made
        .and_then(|()| berth_runtime::idmap::attach(&tree, mount))
        .ctx("mount", mount);
    if attached.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    attached.map(|()| true)
}

/// `source` opened (O_PATH) beneath `root` as if it were `/`, and its
/// path for messages.
fn open_source(root: &Path, source: &str) -> Result<(std::os::fd::OwnedFd, PathBuf)> {
    use std::os::fd::AsFd;
    let at = root.join(source);
    let r = fswalk::open_root(root).ctx("open", root)?;
    let fd = fswalk::open_in_root(r.as_fd(), Path::new(source), OFlag::O_PATH).ctx("open", &at)?;
    Ok((fd, at))
}

/// Does `ignore` exclude anything at or below `path` (context-relative
/// `rel`)? Links are not followed: a copy keeps them as links.
fn excludes(path: &Path, rel: &str, ignore: &Ignore) -> Result<bool> {
    if !rel.is_empty() && ignore.excluded(rel) {
        return Ok(true);
    }
    if !fs::symlink_metadata(path).ctx("stat", path)?.is_dir() {
        return Ok(false);
    }
    for e in fs::read_dir(path).ctx("read", path)? {
        let e = e.ctx("read", path)?;
        let n = e.file_name();
        let r = copy::child_rel(rel, &n.to_string_lossy());
        if excludes(&e.path(), &r, ignore)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A copy of a context source as the entry `src` of the scratch dir
/// `dir`, without what `ignore` excludes; the top keeps the source's mode
/// and owner, as a bind would show them.
fn copy_filtered(s: &copy::Source, dir: &Path, ignore: &Ignore) -> Result<()> {
    use std::os::fd::AsFd;
    let attrs = copy::Attrs {
        owner: None,
        chmod: None,
    };
    let d = fswalk::open_root(dir).ctx("open", dir)?;
    copy::copy_entry(
        &s.path,
        &s.rel,
        d.as_fd(),
        std::ffi::OsStr::new("src"),
        &dir.join("src"),
        attrs,
        Some(ignore),
    )
}

/// `cp -a` of `source` below `root` to `dst` (files, dirs, links; owners
/// and modes), for a rw bind or a source the kernel cannot clone. The
/// source is opened beneath the root first (RESOLVE_IN_ROOT) and cp reads
/// it through that fd (`-H` follows only that command-line link), so no
/// ancestor swapped for a symlink meanwhile can redirect it.
fn copy_tree(root: &Path, source: &str, dst: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    let (fd, at) = open_source(root, source)?;
    let ok = std::process::Command::new("cp")
        .args(["-a", "-H"])
        .arg(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            fd.as_raw_fd()
        ))
        .arg(dst)
        .status()
        .ctx("run cp -a", &at)?
        .success();
    if !ok {
        return Err(Error::Invalid(format!(
            "copying {} for a bind mount failed",
            at.display()
        )));
    }
    Ok(())
}
