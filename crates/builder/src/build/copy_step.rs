//! COPY/ADD as a step: sources (context, stage or image), the cache key,
//! and the copy into the step's rootfs.

use std::path::{Path, PathBuf};

use berth_image::Digest;
use berth_image::lease::Lease;
use serde_json::json;

use super::dest::{self, Dest};
use super::run::{ReadOnlyRoot, StepRoot};
use super::steps::{Ctx, Made, Scope, StageState, chain, non_empty};
use super::{config, copy, fetch};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{self, Dockerfile, expand};
use crate::error::{Error, IoContext, Result};
use std::os::fd::AsFd;

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
        // BuildKit links only without --chmod (with it, --link is ignored).
        let linked = c.link && chmod.is_none();
        // A linked layer is made without the base, so a user name cannot be
        // looked up (BuildKit refuses it too): only numeric ids and root.
        let link_owner = match (&chown, linked) {
            (Some(u), true) => Some(numeric_owner(u).ok_or_else(|| {
                Error::Invalid(format!(
                    "{kw} --link --chown={u}: a linked layer does not read the base's /etc/passwd, so only numeric ids (or root) can be used"
                ))
            })?),
            _ => None,
        };
        let checksum = c
            .checksum
            .as_deref()
            .map(|v| {
                let v = xs(v)?;
                dockerfile::checksum_value(&v)
                    .map_err(|m| Error::Invalid(format!("ADD --checksum={v}: {m}")))
            })
            .transpose()?;
        let mut words = Vec::new();
        let mut urls = Vec::new();
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
            if c.add && (dockerfile::is_remote(&w) || w.contains("://")) {
                let git = w.starts_with("git@")
                    || w.contains(".git#")
                    || w.trim_end_matches('/').ends_with(".git");
                if git || !(w.starts_with("http://") || w.starts_with("https://")) {
                    return Err(Error::Unsupported(format!(
                        "ADD from a git repository ({w})"
                    )));
                }
                urls.push(w);
                continue;
            }
            words.push(w);
        }
        if checksum.is_some() && (urls.len() != 1 || !words.is_empty() || !heredocs.is_empty()) {
            return Err(Error::Invalid(
                "ADD --checksum applies to exactly one http:// or https:// source".into(),
            ));
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
        let sources = if c.parents {
            copy::resolve_parents(root, &words, ignore)?
        } else {
            copy::resolve(root, &words, ignore)?
        };
        let (content, seen) = if from_root.is_some() {
            // Another stage's files are pinned by its layer chain.
            (from_key.clone() + &json!(words).to_string(), Vec::new())
        } else {
            copy::hash_seen(&sources, ignore)?
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
        // URLs: with --checksum the digest is the key and the download waits
        // for a cache miss; without, the content is fetched to be keyed on.
        let mut downloads = fetch::Downloads::new(&self.tmp);
        let mut fetched = Vec::new();
        let mut remote_key = Vec::new();
        for u in &urls {
            match &checksum {
                Some(d) => {
                    remote_key.push(json!([fetch::file_name(u)?, d.to_string()]));
                    fetched.push(None);
                }
                None => {
                    self.line(&format!("fetching {u}"));
                    let f = downloads.get(u, None)?;
                    remote_key.push(json!([f.name, f.digest.to_string(), f.mtime]));
                    fetched.push(Some(f));
                }
            }
        }
        let mut key = json!({"kw": kw, "dest": dest, "chown": chown, "chmod": chmod,
            "content": content, "heredocs": heredocs, "words": words});
        if c.parents {
            key["parents"] = json!(true);
        }
        if !urls.is_empty() {
            key["urls"] = json!(remote_key);
        }
        if linked {
            // Independent of the layers below: the same files give the same
            // layer blob whatever the base (see `cached_layer`'s relink).
            key["link"] = json!(true);
        } else {
            key["p"] = json!(config::identity(&st.image));
            key["layers"] = json!(chain(st));
        }
        let key = Digest::sha256_of(key.to_string().as_bytes());
        // What was matched counts, not what was written: a pattern matching
        // one file copies it to a destination without a slash as that file
        // (BuildKit does the same). Several files always go into a
        // directory (BuildKit 20.10 instead overwrites one file with each).
        let many = sources.len() + heredocs.len() + urls.len() > 1;
        let add = c.add;
        let by = format!("{shown} # buildkit");
        self.cached_layer(st, key, &by, linked, lease, |me, st, lease| {
            // A linked layer starts from nothing: the destination's parents
            // are made fresh, never resolved through the base's links.
            let lowers = if linked { Vec::new() } else { me.lowers(st)? };
            let mut step = StepRoot::mount(&me.store, &me.tmp, &lowers)?;
            if !linked {
                mkdir_in_root(&step.rootfs, &workdir)?;
            }
            let owner = match (&chown, link_owner) {
                (_, Some(o)) => Some(o),
                (Some(u), None) => Some(berth_image::rootfs::resolve_user(u, &step.rootfs)?),
                (None, None) if from_root.is_none() => Some((0, 0)),
                (None, None) => None,
            };
            // Directories the copy has to create belong to the --chown user.
            let dir_owner = owner.unwrap_or((0, 0));
            let attrs = copy::Attrs { owner, chmod };
            let dest_dir = dest.ends_with('/') || many || c.parents;
            // The destination itself resolves inside the rootfs (its links
            // followed there, as BuildKit does); what goes below it is
            // written through directory fds that never follow a link out.
            let root = Dest::open(&step.rootfs)?;
            let dst_rel = root.resolve(&dest)?;
            let dst_abs = step.rootfs.join(&dst_rel);
            let dst_is_dir =
                dest_dir || std::fs::symlink_metadata(&dst_abs).is_ok_and(|m| m.is_dir());
            // Where a file named `name` goes: into the destination
            // directory, or as the destination itself.
            let file_target = |name: &std::ffi::OsStr| -> Result<_> {
                if dst_is_dir {
                    let d = root.dir(&dst_rel, dir_owner)?;
                    Ok((d, dst_abs.clone(), name.to_os_string()))
                } else {
                    let (parent, last) = dest::split(&dst_rel, &dest)?;
                    let d = root.dir(parent, dir_owner)?;
                    Ok((d, step.rootfs.join(parent), last.to_os_string()))
                }
            };
            for s in &sources {
                let meta = std::fs::symlink_metadata(&s.path).ctx("stat", &s.path)?;
                let ign = if from_root.is_none() { ignore } else { None };
                if s.keep.is_none() && add && meta.is_file() && copy::is_archive(&s.path) {
                    root.dir(&dst_rel, dir_owner)?;
                    copy::extract(&s.path, &dst_abs)?;
                    continue;
                }
                if s.keep.is_none() && std::fs::metadata(&s.path).is_ok_and(|m| m.is_dir()) {
                    // A directory's contents go into the destination, which
                    // is made (0755, the --chown user or root) or left as
                    // it is, never given the source directory's mode or
                    // owner (BuildKit, checked against dockerd 20.10).
                    let d = root.dir(&dst_rel, dir_owner)?;
                    copy::copy_children(&s.path, &s.rel, d.as_fd(), &dst_abs, attrs, ign)?;
                    continue;
                }
                let (d, shown, name) = match &s.keep {
                    Some(k) => {
                        let d = root.dir(&dst_rel, dir_owner)?;
                        copy::parent_dirs(k, d, &dst_abs, attrs)?
                    }
                    None => file_target(Path::new(&s.rel).file_name().unwrap_or_default())?,
                };
                let shown = shown.join(&name);
                copy::copy_entry(&s.path, &s.rel, d.as_fd(), &name, &shown, attrs, ign)?;
            }
            for (u, f) in urls.iter().zip(fetched) {
                let f = match f {
                    Some(f) => f,
                    None => {
                        me.line(&format!("fetching {u}"));
                        downloads.get(u, checksum.as_ref())?
                    }
                };
                // Remote archives are never unpacked (Docker's rule).
                let (d, shown, name) = file_target(std::ffi::OsStr::new(&f.name))?;
                copy::copy_entry(
                    &f.path,
                    &f.name,
                    d.as_fd(),
                    &name,
                    &shown.join(&name),
                    attrs,
                    None,
                )?;
            }
            for (name, body) in &heredocs {
                let (d, shown, name) = file_target(std::ffi::OsStr::new(name))?;
                let shown = shown.join(&name);
                let mut f = dest::create_file(d.as_fd(), &name, &shown)?;
                std::io::Write::write_all(&mut f, body.as_bytes()).ctx("write", &shown)?;
                dest::set_attrs(
                    f.as_fd(),
                    &shown,
                    owner.unwrap_or((0, 0)),
                    chmod.unwrap_or(0o644),
                    None,
                )?;
            }
            // An in-place context can change while it is copied: the layer
            // then holds what was read, not what the key was made of, so it
            // serves this build but is not cached under that key.
            let cacheable = copy::unchanged(&seen);
            if !cacheable {
                me.line("the build context changed while it was copied: this layer is not cached");
            }
            Ok(Made {
                layer: me.commit(&mut step, st, lease)?,
                cacheable,
            })
        })
    }
}

/// `uid[:gid]` with numbers (or `root`), as a linked COPY can use them; a
/// missing gid is the uid. None when a name would need /etc/passwd.
fn numeric_owner(s: &str) -> Option<(u32, u32)> {
    let id = |p: &str| if p == "root" { Some(0) } else { p.parse().ok() };
    match s.split_once(':') {
        Some((u, g)) => Some((id(u)?, id(g)?)),
        None => id(s).map(|u| (u, u)),
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

/// WORKDIR and COPY's working directory: made (0755, root) inside the
/// rootfs, never through a link out of it.
pub(super) fn mkdir_in_root(root: &Path, dir: &str) -> Result<()> {
    let d = Dest::open(root)?;
    d.dir(&d.resolve(dir)?, (0, 0)).map(drop)
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

    #[test]
    fn linked_owners_are_numeric() {
        assert_eq!(numeric_owner("5"), Some((5, 5)));
        assert_eq!(numeric_owner("5:6"), Some((5, 6)));
        assert_eq!(numeric_owner("root"), Some((0, 0)));
        assert_eq!(numeric_owner("root:7"), Some((0, 7)));
        assert_eq!(numeric_owner("app"), None);
        assert_eq!(numeric_owner("1:staff"), None);
    }
}
