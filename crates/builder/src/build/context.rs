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

/// Reads stdin-like input: a tar/tar.gz becomes the context, anything else
/// is taken as the Dockerfile with an empty context.
pub fn from_reader(store_root: &Path, mut input: impl Read) -> Result<ScratchContext> {
    let dir = store_root
        .join("builder")
        .join("tmp")
        .join(super::run::unique("context"));
    fs::create_dir_all(&dir).ctx("create", &dir)?;
    let mut ctx = ScratchContext {
        dir,
        dockerfile: None,
    };
    let mut data = Vec::new();
    input.read_to_end(&mut data).ctx("read", "stdin")?;
    let gz = data.starts_with(&[0x1f, 0x8b]);
    let is_tar = gz || (data.len() >= 512 && &data[257..262] == b"ustar");
    if !is_tar {
        ctx.dockerfile = Some(String::from_utf8_lossy(&data).into_owned());
        return Ok(ctx);
    }
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(&data[..]))
    } else {
        Box::new(&data[..])
    };
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    // `unpack` refuses entries that would land outside the dir.
    a.unpack(&ctx.dir).ctx("extract context", &ctx.dir)?;
    Ok(ctx)
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
            let r = if rel.is_empty() {
                n
            } else {
                format!("{rel}/{n}")
            };
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
    }
}
