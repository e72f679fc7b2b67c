//! `cp`: files between a container and the host as tar streams
//! (`GET`/`PUT /containers/{id}/archive`), with docker's naming rules: into
//! an existing directory the source keeps its name, otherwise it takes the
//! destination's.

use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hyper::Method;
use serde_json::Value;

use crate::client::{Client, ClientError, empty_body, query, reader_body, seg};

#[derive(clap::Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information).
    #[arg(short, long)]
    archive: bool,
    /// Always follow symbol link in SRC_PATH.
    #[arg(short = 'L', long)]
    follow_link: bool,
    /// Suppress progress output during copy.
    #[arg(short, long)]
    quiet: bool,
    /// CONTAINER:SRC_PATH or a local path (- for a tar on STDIN).
    src: String,
    /// CONTAINER:DEST_PATH or a local path (- for a tar on STDOUT).
    dest: String,
}

/// `name:path` splits into the container and the path; a local path that
/// holds a colon must start with `/` or `.`.
fn split(arg: &str) -> Option<(&str, &str)> {
    if arg.starts_with('/') || arg.starts_with('.') {
        return None;
    }
    arg.split_once(':')
}

/// The container-side stat docker sends base64-encoded in a header.
fn stat(c: &Client, id: &str, path: &str) -> Result<Option<Value>> {
    match c.request(
        Method::HEAD,
        &format!(
            "/containers/{}/archive{}",
            seg(id),
            query(&[("path", path.into())])
        ),
        vec![],
        empty_body(),
    ) {
        Ok(resp) => {
            let v = resp
                .headers()
                .get("x-docker-container-path-stat")
                .and_then(|h| {
                    base64::engine::general_purpose::STANDARD
                        .decode(h.as_bytes())
                        .ok()
                })
                .and_then(|b| serde_json::from_slice(&b).ok());
            Ok(v)
        }
        Err(ClientError::Api { status: 404, .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Go's os.ModeDir bit, as the stat's `mode` carries it.
const GO_MODE_DIR: u64 = 1 << 31;

pub fn cp(c: &Client, a: CpArgs) -> Result<()> {
    let _ = (a.archive, a.quiet);
    match (split(&a.src), split(&a.dest)) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some((id, path)), None) => from_container(c, id, path, &a.dest),
        (None, Some((id, path))) => to_container(c, &a.src, id, path, a.follow_link),
    }
}

fn from_container(c: &Client, id: &str, path: &str, dest: &str) -> Result<()> {
    let resp = c.request(
        Method::GET,
        &format!(
            "/containers/{}/archive{}",
            seg(id),
            query(&[("path", path.into())])
        ),
        vec![],
        empty_body(),
    )?;
    if dest == "-" {
        return crate::images::body_to_output(c, None, || Ok(resp));
    }
    // Spool the tar, then unpack: tar's reader wants `Read`, the body is async.
    let mut spool = tempfile::tempfile().context("temporary file for the archive")?;
    c.each_chunk(resp, |d| {
        io::Write::write_all(&mut spool, d)?;
        Ok(true)
    })?;
    io::Seek::seek(&mut spool, io::SeekFrom::Start(0))?;
    let dest = PathBuf::from(dest);
    if dest.is_dir() {
        tar::Archive::new(spool)
            .unpack(&dest)
            .with_context(|| format!("extracting into {}", dest.display()))?;
        return Ok(());
    }
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        bail!("no such directory: {}", parent.display());
    }
    // The archive's top entry is the source's name; it becomes `dest`.
    let mut ar = tar::Archive::new(spool);
    for entry in ar.entries()? {
        let mut e = entry?;
        let p = e.path()?.into_owned();
        let mut comps = p.components();
        comps.next();
        let rest = comps.as_path();
        let target = if rest.as_os_str().is_empty() {
            dest.clone()
        } else {
            dest.join(rest)
        };
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d)?;
        }
        e.unpack(&target)
            .with_context(|| format!("extracting {}", target.display()))?;
    }
    Ok(())
}

fn to_container(c: &Client, src: &str, id: &str, path: &str, follow: bool) -> Result<()> {
    let (dir, body) = if src == "-" {
        (path.to_string(), reader_body(io::stdin()))
    } else {
        let src_path = Path::new(src);
        let meta = if follow {
            std::fs::metadata(src_path)
        } else {
            std::fs::symlink_metadata(src_path)
        }
        .with_context(|| format!("stat {src}"))?;
        let st = stat(c, id, path)?;
        let is_dir = st
            .as_ref()
            .and_then(|s| s["mode"].as_u64())
            .is_some_and(|m| m & GO_MODE_DIR != 0);
        let (dir, name) = if is_dir || path.ends_with('/') {
            let name = src_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| ".".into());
            (path.to_string(), name)
        } else {
            let p = Path::new(path);
            let parent = p
                .parent()
                .map(|x| x.to_string_lossy().into_owned())
                .filter(|x| !x.is_empty())
                .unwrap_or_else(|| "/".into());
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .with_context(|| format!("invalid destination path {path}"))?;
            (parent, name)
        };
        let mut b = tar::Builder::new(Vec::new());
        b.follow_symlinks(follow);
        if meta.is_dir() {
            b.append_dir_all(&name, src_path)
        } else {
            b.append_path_with_name(src_path, &name)
        }
        .with_context(|| format!("archiving {src}"))?;
        let data = b.into_inner()?;
        (dir, reader_body(io::Cursor::new(data)))
    };
    c.request(
        Method::PUT,
        &format!(
            "/containers/{}/archive{}",
            seg(id),
            query(&[("path", dir), ("noOverwriteDirNonDir", "true".into())])
        ),
        vec![("content-type", "application/x-tar".into())],
        body,
    )
    .and_then(|r| c.bytes(r))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths() {
        assert_eq!(split("web:/etc/hosts"), Some(("web", "/etc/hosts")));
        assert_eq!(split("/tmp/a:b"), None);
        assert_eq!(split("./a:b"), None);
        assert_eq!(split("file"), None);
    }
}
