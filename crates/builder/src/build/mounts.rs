//! `RUN --mount`: what each mount is on the host, its part of the step's
//! cache key, and the mount points it needs in the rootfs (removed again
//! before the changeset is taken, so no mount leaves a trace in a layer).
//!
//! - cache: a persistent dir per id under `<root>/builder/cache-mounts`,
//!   kept across builds; `sharing=locked` holds an exclusive lock for the
//!   step, `private` takes a fresh dir when another step holds the cache.
//! - bind: a path of the context, or of a stage or image (`from=`),
//!   read-only unless `rw` (then writes go to a throwaway overlay).
//! - tmpfs: an empty tmpfs.
//! - secret: the build's `--secret id=…` file, read-only at
//!   `/run/secrets/<id>`; only its id reaches the cache key.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_image::Digest;
use berth_image::lease::Lease;
use serde_json::{Value, json};

use super::copy;
use super::copy_step::scoped;
use super::run::ReadOnlyRoot;
use super::steps::{Ctx, StageState};
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
}

impl Drop for Prepared {
    fn drop(&mut self) {
        for d in &self.scratch {
            let _ = fs::remove_dir_all(d);
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
                    let (host, key) = match &m.from {
                        None => {
                            let host = scoped(&self.opts.context, &source)?;
                            if host.symlink_metadata().is_err() {
                                return Err(Error::Invalid(format!(
                                    "RUN --mount=type=bind: source {source:?} not found in the build context"
                                )));
                            }
                            let srcs = copy::resolve(
                                &self.opts.context,
                                std::slice::from_ref(&source),
                                None,
                            )?;
                            (host, copy::hash(&srcs, None)?)
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
                            p._roots.push(root);
                            let chain: Vec<String> =
                                st.layers.iter().map(|l| l.chain_id.to_string()).collect();
                            (host, json!(chain).to_string())
                        }
                    };
                    let src = if m.readonly && bindable(&host) {
                        std::fs::canonicalize(&host).ctx("resolve", &host)?
                    } else if m.readonly {
                        // A context read in place elsewhere (another mount
                        // namespace): the step gets a copy.
                        let d = self.tmp.join(super::run::unique("bindro"));
                        copy_tree(&host, &d)?;
                        p.scratch.push(d.clone());
                        d
                    } else {
                        // Writes are allowed but discarded: the step gets a
                        // copy in a scratch dir.
                        let d = self.tmp.join(super::run::unique("bindrw"));
                        copy_tree(&host, &d)?;
                        p.scratch.push(d.clone());
                        d
                    };
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

/// `cp -a` for a rw bind source (files, dirs, links; owners and modes).
fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let ok = std::process::Command::new("cp")
        .arg("-a")
        .arg(src)
        .arg(dst)
        .status()
        .ctx("run cp -a", src)?
        .success();
    if !ok {
        return Err(Error::Invalid(format!(
            "copying {} for a rw bind mount failed",
            src.display()
        )));
    }
    Ok(())
}

/// Can the runtime bind `host` by its real path? A context read in place
/// is named `/proc/<berthd>/fd/<n>/…`, a path mount(2) refuses; its
/// canonical path works when it is the same inode in the daemon's mount
/// namespace (not when the client's directory is only in its own).
fn bindable(host: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(real), Ok(m)) = (std::fs::canonicalize(host), std::fs::metadata(host)) else {
        return false;
    };
    std::fs::metadata(&real).is_ok_and(|r| (r.dev(), r.ino()) == (m.dev(), m.ino()))
}
