//! COPY/ADD as a step: sources (context, stage or image), the cache key,
//! and the copy into the step's rootfs.

use std::path::{Path, PathBuf};

use berth_image::Digest;
use berth_image::lease::Lease;
use serde_json::json;

use super::run::{ReadOnlyRoot, StepRoot};
use super::steps::{Ctx, Scope, StageState, chain, non_empty};
use super::{config, copy};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{self, Dockerfile, expand};
use crate::error::{Error, IoContext, Result};

impl Ctx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn copy_step(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        st: &mut StageState,
        scope: &Scope,
        c: &dockerfile::Copy,
        done: &[Option<StageState>],
        lease: &mut Lease,
        tag: &str,
    ) -> Result<()> {
        let esc = df.escape;
        let kw = if c.add { "ADD" } else { "COPY" };
        let xs = |s: &str| Self::x(st, scope, esc, s);
        let workdir = non_empty(config::get_str(&st.image, "WorkingDir"));
        let mut dest = xs(&c.dest)?;
        if !dest.starts_with('/') {
            dest = format!("{}/{dest}", workdir.trim_end_matches('/'));
        }
        let chown = c.chown.as_deref().map(xs).transpose()?;
        let chmod = c
            .chmod
            .as_deref()
            .map(|m| {
                u32::from_str_radix(m, 8)
                    .map_err(|_| Error::Invalid(format!("--chmod={m}: not octal")))
            })
            .transpose()?;
        let mut words = Vec::new();
        let mut heredocs = Vec::new();
        for s in &c.sources {
            if let Some(h) = s
                .strip_prefix("<<")
                .map(|n| n.trim_start_matches('-').trim_matches(['\'', '"']))
                && let Some(hd) = c.heredocs.iter().find(|d| d.name == h)
            {
                let body = if hd.expand {
                    let l = Self::lookup(st, scope);
                    expand::expand_heredoc(&hd.content, &l).map_err(Error::Invalid)?
                } else {
                    hd.content.clone()
                };
                heredocs.push((hd.name.clone(), body));
                continue;
            }
            let w = xs(s)?;
            if c.add && (w.contains("://") || w.starts_with("git@")) {
                return Err(Error::Unsupported(format!("ADD from a URL ({w})")));
            }
            words.push(w);
        }
        // Where sources come from: the context, an earlier stage, or an image.
        let from = c.from.as_deref().map(xs).transpose()?;
        let (from_state, from_key) = match &from {
            None => (None, String::new()),
            Some(f) => {
                let s = self.stage_or_image(df, idx, done, f, lease)?;
                let k = json!(chain(&s)).to_string();
                (Some(s), k)
            }
        };
        let from_root = match &from_state {
            Some(s) => Some(ReadOnlyRoot::mount(
                &self.store,
                &self.tmp,
                &self.lowers(s)?,
            )?),
            None => None,
        };
        let opts = self.opts;
        let ignore_owned = self.ignore.clone();
        let (root, ignore): (&Path, Option<&Ignore>) = match &from_root {
            Some(r) => (&r.dir, None),
            None => (&opts.context, ignore_owned.as_ref()),
        };
        let sources = copy::resolve(root, &words, ignore)?;
        let content = if from_root.is_some() {
            // Another stage's files are pinned by its layer chain.
            from_key.clone() + &json!(words).to_string()
        } else {
            copy::hash(&sources, ignore)?
        };
        let shown = format!(
            "{kw} {}{} {}",
            c.from
                .as_ref()
                .map(|f| format!("--from={f} "))
                .unwrap_or_default(),
            c.sources.join(" "),
            c.dest
        );
        self.vertex(&format!("{tag} {shown}"));
        let key = Digest::sha256_of(
            json!({"p": config::identity(&st.image), "layers": chain(st), "kw": kw, "dest": dest,
                   "chown": chown, "chmod": chmod, "content": content, "heredocs": heredocs,
                   "words": words})
            .to_string()
            .as_bytes(),
        );
        let many = words.len() + heredocs.len() > 1
            || c.sources.iter().any(|s| dockerfile::glob::is_pattern(s));
        let add = c.add;
        let by = format!("{shown} # buildkit");
        self.cached_layer(st, key, &by, lease, |me, st| {
            let mut step = StepRoot::mount(&me.store, &me.tmp, &me.lowers(st)?)?;
            mkdir_in_root(&step.rootfs, &workdir)?;
            let owner = match &chown {
                Some(u) => Some(berth_image::rootfs::resolve_user(u, &step.rootfs)?),
                None if from_root.is_none() => Some((0, 0)),
                None => None,
            };
            let attrs = copy::Attrs { owner, chmod };
            let dest_dir = dest.ends_with('/') || many;
            let dst_abs = scoped(&step.rootfs, &dest)?;
            let dst_is_dir = dest_dir || dst_abs.is_dir();
            for s in &sources {
                let meta = std::fs::symlink_metadata(&s.path).ctx("stat", &s.path)?;
                let target = if meta.is_dir() || !dst_is_dir {
                    dst_abs.clone()
                } else {
                    dst_abs.join(Path::new(&s.rel).file_name().unwrap_or_default())
                };
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).ctx("create", p)?;
                }
                if add && meta.is_file() && copy::is_archive(&s.path) {
                    copy::extract(&s.path, &dst_abs)?;
                    continue;
                }
                copy::copy(
                    s,
                    &target,
                    attrs,
                    if from_root.is_none() { ignore } else { None },
                )?;
            }
            for (name, body) in &heredocs {
                let target = if dst_is_dir {
                    dst_abs.join(name)
                } else {
                    dst_abs.clone()
                };
                if let Some(p) = target.parent() {
                    std::fs::create_dir_all(p).ctx("create", p)?;
                }
                std::fs::write(&target, body).ctx("write", &target)?;
                let (uid, gid) = owner.unwrap_or((0, 0));
                std::os::unix::fs::lchown(&target, Some(uid), Some(gid)).ctx("chown", &target)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    &target,
                    std::fs::Permissions::from_mode(chmod.unwrap_or(0o644)),
                )
                .ctx("chmod", &target)?;
            }
            me.commit(&mut step, st)
        })
    }
}

/// `root`/`path` with symlinks resolved *inside* root, so an image's
/// absolute or `..` links can never point a copy at the host. More than 40
/// links (a loop) is an error: keeping the unresolved link as a plain path
/// part would let the kernel resolve it on the host.
pub(super) fn scoped(root: &Path, path: &str) -> Result<PathBuf> {
    let mut cur = PathBuf::new();
    let mut parts: std::collections::VecDeque<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let mut hops = 0;
    while let Some(c) = parts.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let cand = cur.join(&c);
        match std::fs::read_link(root.join(&cand)) {
            Ok(_) if hops >= 40 => {
                return Err(Error::Invalid(format!(
                    "{path:?}: too many levels of symbolic links"
                )));
            }
            Ok(t) => {
                hops += 1;
                let t = t.to_string_lossy().into_owned();
                if t.starts_with('/') {
                    cur = PathBuf::new();
                }
                for p in t.split('/').filter(|s| !s.is_empty()).rev() {
                    parts.push_front(p.to_string());
                }
            }
            Err(_) => cur = cand,
        }
    }
    Ok(root.join(cur))
}

pub(super) fn mkdir_in_root(root: &Path, dir: &str) -> Result<()> {
    let p = scoped(root, dir)?;
    std::fs::create_dir_all(&p).ctx("create", p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links resolve inside the root; a chain longer than 40 links is an
    /// error rather than a path whose remaining link the kernel would
    /// resolve on the host.
    #[test]
    fn scoped_stays_in_root_or_fails() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("root");
        std::fs::create_dir_all(r.join("real")).unwrap();
        std::os::unix::fs::symlink("/real", r.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../../real", r.join("up")).unwrap();
        assert_eq!(scoped(&r, "/abs/x").unwrap(), r.join("real/x"));
        assert_eq!(scoped(&r, "up/x").unwrap(), r.join("real/x"));
        // l0 -> l1 -> ... -> l40 -> /etc (on the host if left unresolved).
        for i in 0..41 {
            std::os::unix::fs::symlink(format!("l{}", i + 1), r.join(format!("l{i}"))).unwrap();
        }
        std::os::unix::fs::symlink("/etc", r.join("l41")).unwrap();
        let e = scoped(&r, "l0/passwd").unwrap_err().to_string();
        assert!(e.contains("too many levels of symbolic links"), "{e}");
        std::os::unix::fs::symlink("loop", r.join("loop")).unwrap();
        assert!(scoped(&r, "loop").is_err());
    }
}
