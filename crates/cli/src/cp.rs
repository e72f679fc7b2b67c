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
    let contents = path.ends_with("/.") || path == "." || path.trim_matches('/').is_empty();
    extract(spool, &dest, contents)
}

/// Extracts a `docker cp` archive at `dest` on this host: into it when it
/// is a directory, else as it (the archive's top entry renamed to `dest`;
/// with `contents`, the top is `.` and `dest` becomes a directory of what
/// it held). The archive comes from a daemon that may be remote or
/// compromised, so berth-image's unpacker extracts it: `..`, absolute
/// names and writes through a symlink that leaves the target are refused,
/// and everything is owned by the user running berth (as docker's CLI does).
fn extract(tar: impl io::Read, dest: &Path, contents: bool) -> Result<()> {
    // SAFETY: geteuid/getegid have no failure modes.
    let owner = unsafe { (libc::geteuid(), libc::getegid()) };
    let opts = berth_image::unpack::UnpackOptions {
        owner: Some(owner),
        whiteouts: false,
        no_overwrite_dir_non_dir: false,
        ..Default::default()
    };
    if dest.is_dir() {
        berth_image::unpack::unpack_with(tar, dest, opts)
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
    // Unpacked next to `dest` (same filesystem), then renamed into place.
    let tmp = tempfile::Builder::new()
        .prefix(".berth-cp-")
        .tempdir_in(parent)
        .with_context(|| format!("temporary directory in {}", parent.display()))?;
    berth_image::unpack::unpack_with(tar, tmp.path(), opts)
        .with_context(|| format!("extracting {}", dest.display()))?;
    let top = if contents {
        tmp.path().to_path_buf()
    } else {
        let mut names = std::fs::read_dir(tmp.path())?.collect::<io::Result<Vec<_>>>()?;
        if names.len() != 1 {
            bail!(
                "the archive holds {} top-level entries, expected the one copied",
                names.len()
            );
        }
        names.remove(0).path()
    };
    if contents {
        std::fs::set_permissions(
            tmp.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )?;
    }
    std::fs::rename(&top, dest).with_context(|| format!("writing {}", dest.display()))?;
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

    /// A tar entry with a raw name (tar's own setters refuse `..`, which
    /// is the point here: a hostile daemon does not use them).
    fn raw(
        b: &mut tar::Builder<Vec<u8>>,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        data: &[u8],
    ) {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    #[test]
    fn hostile_archives_stay_in_the_destination() {
        use tar::EntryType::{Directory, Regular, Symlink};
        let t = tempfile::tempdir().unwrap();
        let (dest, outside) = (t.path().join("dest"), t.path().join("outside"));
        std::fs::create_dir_all(&dest).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        let abs = format!("{}/b", outside.display());
        type Entries<'a> = Vec<(&'a str, tar::EntryType, String)>;
        let cases: Vec<(&str, Entries)> = vec![
            (
                "dotdot",
                vec![("x/../../outside/a", Regular, String::new())],
            ),
            ("absolute", vec![(&abs, Regular, String::new())]),
            // A symlink out of the destination, then a file written through it.
            (
                "through a link",
                vec![
                    ("x", Directory, String::new()),
                    ("x/ln", Symlink, outside.display().to_string()),
                    ("x/ln/c", Regular, String::new()),
                ],
            ),
            (
                "through a relative link",
                vec![
                    ("y", Directory, String::new()),
                    ("y/up", Symlink, "../..".into()),
                    ("y/up/outside/d", Regular, String::new()),
                ],
            ),
        ];
        for (what, entries) in cases {
            let mut b = tar::Builder::new(Vec::new());
            for (name, kind, link) in &entries {
                raw(
                    &mut b,
                    name,
                    *kind,
                    link,
                    if *kind == Regular { b"evil" } else { b"" },
                );
            }
            let data = b.into_inner().unwrap();
            // Into a directory, and as a new name next to it.
            let r = extract(&data[..], &dest, false);
            assert!(r.is_err(), "{what}: extracted into a dir");
            let r = extract(&data[..], &t.path().join("new"), false);
            assert!(r.is_err(), "{what}: extracted as a new name");
            let left: Vec<_> = std::fs::read_dir(&outside).unwrap().collect();
            assert!(left.is_empty(), "{what}: wrote {left:?} outside");
        }
    }

    #[test]
    fn extracts_into_and_as_the_destination() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, "src", tar::EntryType::Directory, "", b"");
        raw(&mut b, "src/f", tar::EntryType::Regular, "", b"data");
        raw(&mut b, "src/ln", tar::EntryType::Symlink, "f", b"");
        let data = b.into_inner().unwrap();
        extract(&data[..], t.path(), false).unwrap();
        assert_eq!(std::fs::read(t.path().join("src/f")).unwrap(), b"data");
        extract(&data[..], &t.path().join("renamed"), false).unwrap();
        assert_eq!(std::fs::read(t.path().join("renamed/ln")).unwrap(), b"data");
        // `cp c:/dir/. new`: the contents of dir become `new`.
        let mut b = tar::Builder::new(Vec::new());
        raw(&mut b, ".", tar::EntryType::Directory, "", b"");
        raw(&mut b, "./g", tar::EntryType::Regular, "", b"g");
        let data = b.into_inner().unwrap();
        extract(&data[..], &t.path().join("contents"), true).unwrap();
        assert_eq!(std::fs::read(t.path().join("contents/g")).unwrap(), b"g");
        let names: Vec<_> = std::fs::read_dir(t.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with(".berth-cp-"))
            .collect();
        assert!(names.is_empty(), "left behind {names:?}");
    }
}
