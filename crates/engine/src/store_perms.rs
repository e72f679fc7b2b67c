//! The store's permissions, as dockerd's: a container's record and spec
//! hold its environment (passwords), its log its output; no local user but
//! root reads them. Applied at every start, so stores made before are
//! tightened too.
//!
//! - data root, `containers/`, each container's dir, `layers/`: 0710
//!   (dockerd's data root and overlay2 dirs; a group that may traverse, never
//!   list; a container running as a non-root user needs no access here: its
//!   rootfs is an overlay mounted by root and its bind mounts are resolved
//!   by root);
//! - records and specs (`config.v2*.json`, `config.json`): 0600; logs 0640;
//! - exec root: 0700, 0711 when it holds a socket a group may use (berthd
//!   opens that itself), its subdirs 0700.
//!
//! New files get these modes when written ([`crate::util::write_private`],
//! the shim's log); this sweep only fixes what older versions left.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::Paths;
use crate::error::{Result, io_err};

pub const DIR_MODE: u32 = 0o710;
pub const EXEC_ROOT_MODE: u32 = 0o700;
pub const PRIVATE_MODE: u32 = 0o600;
pub const LOG_MODE: u32 = 0o640;

fn chmod(path: &Path, mode: u32) -> std::io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

/// The mode a file in a container's dir should have; None for files the
/// container reads through a bind mount (hosts, hostname, resolv.conf).
fn container_file_mode(name: &str) -> Option<u32> {
    if name.contains("-json.log") {
        Some(LOG_MODE)
    } else if name.ends_with(".json") || name.ends_with(".tmp") {
        Some(PRIVATE_MODE)
    } else {
        None
    }
}

/// Tightens the store's modes (see the module docs). The roots must
/// succeed; a container file that vanished meanwhile is no error.
pub(crate) fn secure(paths: &Paths) -> Result<()> {
    for (dir, mode) in [
        (paths.root.clone(), DIR_MODE),
        (paths.containers(), DIR_MODE),
        (paths.exec_root.clone(), EXEC_ROOT_MODE),
    ] {
        chmod(&dir, mode).map_err(|e| io_err("chmod", &dir, e))?;
    }
    let layers = paths.root.join("layers");
    if layers.is_dir() {
        chmod(&layers, DIR_MODE).map_err(|e| io_err("chmod", &layers, e))?;
    }
    for e in fs::read_dir(&paths.exec_root)
        .map_err(|e| io_err("read", &paths.exec_root, e))?
        .flatten()
    {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = chmod(&e.path(), EXEC_ROOT_MODE);
        }
    }
    let containers = paths.containers();
    for c in fs::read_dir(&containers)
        .map_err(|e| io_err("read", &containers, e))?
        .flatten()
    {
        if !c.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let _ = chmod(&c.path(), DIR_MODE);
        let Ok(files) = fs::read_dir(c.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some(mode) = container_file_mode(&name.to_string_lossy()) else {
                continue;
            };
            if f.file_type().is_ok_and(|t| t.is_file())
                && let Err(e) = chmod(&f.path(), mode)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                eprintln!("berthd: chmod {}: {e}", f.path().display());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_files_get_private_modes() {
        let id = "a".repeat(64);
        assert_eq!(
            container_file_mode(&format!("{id}-json.log")),
            Some(LOG_MODE)
        );
        assert_eq!(
            container_file_mode(&format!("{id}-json.log.1")),
            Some(LOG_MODE)
        );
        for f in [
            "config.v2.json",
            "config.v2.started.json",
            "config.json",
            "config.v2.tmp",
        ] {
            assert_eq!(container_file_mode(f), Some(PRIVATE_MODE), "{f}");
        }
        for f in ["hosts", "hostname", "resolv.conf"] {
            assert_eq!(container_file_mode(f), None, "{f}");
        }
    }

    #[test]
    fn an_old_store_is_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let paths = Paths {
            root: tmp.path().join("root"),
            exec_root: tmp.path().join("exec"),
            shim: "berth-shim".into(),
            runtime: None,
        };
        let c = paths.container_dir("c1");
        fs::create_dir_all(&c).unwrap();
        fs::create_dir_all(paths.root.join("layers")).unwrap();
        fs::create_dir_all(paths.exec_root.join("runtime")).unwrap();
        for f in ["config.v2.json", "config.json", "c1-json.log", "hosts"] {
            fs::write(c.join(f), "x").unwrap();
            chmod(&c.join(f), 0o644).unwrap();
        }
        for d in [&paths.root, &paths.exec_root, &c] {
            chmod(d, 0o755).unwrap();
        }
        secure(&paths).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&paths.root), 0o710);
        assert_eq!(mode(&paths.containers()), 0o710);
        assert_eq!(mode(&c), 0o710);
        assert_eq!(mode(&paths.root.join("layers")), 0o710);
        assert_eq!(mode(&paths.exec_root), 0o700);
        assert_eq!(mode(&paths.exec_root.join("runtime")), 0o700);
        assert_eq!(mode(&c.join("config.v2.json")), 0o600);
        assert_eq!(mode(&c.join("config.json")), 0o600);
        assert_eq!(mode(&c.join("c1-json.log")), 0o640);
        assert_eq!(mode(&c.join("hosts")), 0o644);
    }
}
