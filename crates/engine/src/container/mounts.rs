//! A container's mounts from `-v` (Binds), `--mount` (Mounts), anonymous
//! `-v /path` (Config.Volumes) and the image's `VOLUME`s, resolved to
//! [`MountPoint`]s at create; named volumes are created on demand, and
//! volumes empty at first use are seeded from the image (see [`seed`]).

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::Path;

use nix::fcntl::OFlag;

use super::model::{Container, MountPoint, MountSpec};
use crate::Engine;
use crate::error::{EngineError, Result, io_err};
use crate::volume::{ANONYMOUS_LABEL, VolumeCreate};

const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

fn bad(msg: String) -> EngineError {
    EngineError::InvalidArgument(msg)
}

fn check_destination(dst: &str, spec: &str) -> Result<String> {
    if !dst.starts_with('/') {
        return Err(bad(format!(
            "invalid volume specification: '{spec}': invalid mount config: mount path must be absolute"
        )));
    }
    let clean = clean_path(dst);
    if clean == "/" {
        return Err(bad(format!(
            "invalid volume specification: '{spec}': invalid mount config: destination can't be '/'"
        )));
    }
    Ok(clean)
}

/// `/a//b/./c/` → `/a/b/c`, and `..` resolved lexically.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// One `-v src:dst[:mode]` entry, before volumes are created.
fn parse_bind(spec: &str) -> Result<MountPoint> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => {
            return Err(bad(format!("invalid volume specification: '{spec}'")));
        }
    };
    if src.is_empty() {
        return Err(bad(format!("invalid volume specification: '{spec}'")));
    }
    let destination = check_destination(dst, spec)?;
    let mut m = MountPoint {
        destination,
        rw: true,
        mode: mode.to_string(),
        ..MountPoint::default()
    };
    let mut access = 0;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => {
                m.rw = false;
                access += 1;
            }
            "rw" => access += 1,
            "z" | "Z" => {}
            "nocopy" => m.no_copy = true,
            p if PROPAGATIONS.contains(&p) => m.propagation = p.to_string(),
            _ => return Err(bad(format!("invalid mode: {mode}"))),
        }
    }
    if access > 1 {
        return Err(bad(format!("invalid mode: {mode}")));
    }
    if src.starts_with('/') {
        if m.no_copy {
            return Err(bad(format!("invalid mode: {mode}")));
        }
        m.typ = "bind".into();
        m.source = clean_path(src);
        if m.propagation.is_empty() {
            m.propagation = "rprivate".into();
        }
    } else {
        if !m.propagation.is_empty() {
            return Err(bad(format!("invalid mode: {mode}")));
        }
        m.typ = "volume".into();
        m.name = src.to_string();
        m.driver = "local".into();
        if m.mode.is_empty() {
            m.mode = "z".into();
        }
    }
    Ok(m)
}

/// One `--mount` entry; for volumes, the options the volume is created
/// with when it does not exist yet.
fn parse_mount(s: &MountSpec) -> Result<(MountPoint, VolumeCreate)> {
    let spec = format!("{}:{}", s.source, s.target);
    if s.target.is_empty() {
        return Err(bad("invalid mount config: Target must not be empty".into()));
    }
    let destination = check_destination(&s.target, &spec)?;
    let mut m = MountPoint {
        destination,
        rw: !s.read_only,
        ..MountPoint::default()
    };
    let mut vc = VolumeCreate::default();
    let for_type = |field: &str, t: &str| {
        bad(format!(
            "invalid mount config for type \"{}\": {field} options are incompatible with type {t}",
            s.typ
        ))
    };
    match s.typ.as_str() {
        "bind" => {
            if s.volume_options.is_some() {
                return Err(for_type("volume", "bind"));
            }
            if s.tmpfs_options.is_some() {
                return Err(for_type("tmpfs", "bind"));
            }
            if s.source.is_empty() {
                return Err(bad(
                    "invalid mount config for type \"bind\": field Source must not be empty".into(),
                ));
            }
            if !s.source.starts_with('/') {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
                    s.source
                )));
            }
            let b = s.bind_options.clone().unwrap_or_default();
            if !Path::new(&s.source).exists() && !b.create_mountpoint {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    s.source
                )));
            }
            if !b.propagation.is_empty() && !PROPAGATIONS.contains(&b.propagation.as_str()) {
                return Err(bad(format!(
                    "invalid mount config for type \"bind\": invalid propagation mode: {}",
                    b.propagation
                )));
            }
            m.typ = "bind".into();
            m.source = clean_path(&s.source);
            m.propagation = if b.propagation.is_empty() {
                "rprivate".into()
            } else {
                b.propagation
            };
            m.non_recursive = b.non_recursive;
        }
        "volume" => {
            if s.bind_options.is_some() {
                return Err(for_type("bind", "volume"));
            }
            if s.tmpfs_options.is_some() {
                return Err(for_type("tmpfs", "volume"));
            }
            let vo = s.volume_options.clone().unwrap_or_default();
            if !vo.subpath.is_empty() {
                return Err(bad(
                    "invalid mount config for type \"volume\": volume subpath is not supported"
                        .into(),
                ));
            }
            m.typ = "volume".into();
            m.name = s.source.clone();
            m.driver = "local".into();
            m.mode = "z".into();
            m.no_copy = vo.no_copy;
            vc.labels = vo.labels;
            if let Some(dc) = vo.driver_config {
                vc.driver = Some(dc.name);
                vc.driver_opts = dc.options;
            }
        }
        "tmpfs" => {
            if !s.source.is_empty() {
                return Err(bad(
                    "invalid mount config for type \"tmpfs\": field Source must be empty".into(),
                ));
            }
            if s.bind_options.is_some() {
                return Err(for_type("bind", "tmpfs"));
            }
            if s.volume_options.is_some() {
                return Err(for_type("volume", "tmpfs"));
            }
            m.typ = "tmpfs".into();
            let t = s.tmpfs_options.clone().unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(bad(format!(
                    "invalid mount config for type \"tmpfs\": invalid tmpfs size {}",
                    t.size_bytes
                )));
            }
            if t.size_bytes > 0 {
                m.tmpfs_options.push(format!("size={}", t.size_bytes));
            }
            if t.mode != 0 {
                m.tmpfs_options.push(format!("mode={:o}", t.mode & 0o7777));
            }
        }
        "" => {
            return Err(bad("invalid mount config: mount type unknown".into()));
        }
        other => {
            return Err(bad(format!(
                "invalid mount config: mount type unknown: {other:?} (bind, volume and tmpfs are supported)"
            )));
        }
    }
    Ok((m, vc))
}

impl Engine {
    /// Every mount a new container gets, volumes created as needed and held
    /// (see [`Engine::hold_volume`]) until the caller releases them. On
    /// error, holds are released and volumes made here removed again.
    pub(crate) fn plan_mounts(
        &self,
        c: &Container,
        image_volumes: &[String],
    ) -> Result<Vec<MountPoint>> {
        let (mut made, mut held) = (Vec::new(), Vec::new());
        let res = self.plan_mounts_inner(c, image_volumes, &mut made, &mut held);
        if res.is_err() {
            let held: Vec<MountPoint> = held
                .into_iter()
                .map(|name| MountPoint {
                    typ: "volume".into(),
                    name,
                    ..MountPoint::default()
                })
                .collect();
            Engine::release_volumes(&mut self.lock(), &held);
            for v in made {
                let _ = self.volume_remove(&v, true);
            }
        }
        res
    }

    fn plan_mounts_inner(
        &self,
        c: &Container,
        image_volumes: &[String],
        made: &mut Vec<String>,
        held: &mut Vec<String>,
    ) -> Result<Vec<MountPoint>> {
        let hc = &c.host_config;
        let mut wanted: Vec<(MountPoint, VolumeCreate)> = Vec::new();
        for b in hc.binds.iter().flatten() {
            wanted.push((parse_bind(b)?, VolumeCreate::default()));
        }
        for s in hc.mounts.iter().flatten() {
            wanted.push(parse_mount(s)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for (m, _) in &wanted {
            if !seen.insert(m.destination.clone()) {
                return Err(bad(format!("Duplicate mount point: {}", m.destination)));
            }
        }
        // `--volumes-from c[:ro|rw]`: that container's volumes and binds,
        // where this one mounts nothing itself.
        for spec in hc.volumes_from.iter().flatten() {
            let (from, mode) = match spec.rsplit_once(':') {
                Some((c, m)) if m == "ro" || m == "rw" => (c, Some(m == "rw")),
                _ => (spec.as_str(), None),
            };
            let theirs = {
                let t = self.lock();
                t.get(from)?.mount_points.clone()
            };
            for mut m in theirs.into_iter().filter(|m| m.typ != "tmpfs") {
                if seen.contains(&m.destination) {
                    continue;
                }
                if let Some(rw) = mode {
                    m.rw = rw;
                    m.mode = if rw { "rw" } else { "ro" }.into();
                }
                seen.insert(m.destination.clone());
                wanted.push((m, VolumeCreate::default()));
            }
        }
        for dst in hc.tmpfs.iter().flat_map(|t| t.keys()) {
            if seen.contains(&clean_path(dst)) {
                return Err(bad(format!("Duplicate mount point: {dst}")));
            }
        }
        // Anonymous ones: the client's `-v /path`, then the image's VOLUMEs,
        // each unless something above already covers that path.
        let anon: Vec<String> = c
            .config
            .volumes
            .iter()
            .flat_map(|v| v.keys().cloned())
            .chain(image_volumes.iter().cloned())
            .collect();
        let tmpfs: Vec<String> = hc
            .tmpfs
            .iter()
            .flat_map(|t| t.keys().map(|k| clean_path(k)))
            .collect();
        for dst in anon {
            let d = check_destination(&dst, &dst)?;
            if seen.contains(&d) || tmpfs.contains(&d) {
                continue;
            }
            seen.insert(d.clone());
            let m = MountPoint {
                typ: "volume".into(),
                destination: d,
                driver: "local".into(),
                rw: true,
                ..MountPoint::default()
            };
            wanted.push((m, VolumeCreate::default()));
        }

        let mut out = Vec::new();
        for (mut m, mut vc) in wanted {
            if m.typ == "volume" {
                let anonymous = m.name.is_empty();
                if anonymous {
                    let mut labels = vc.labels.take().unwrap_or_default();
                    labels.insert(ANONYMOUS_LABEL.into(), String::new());
                    vc.labels = Some(labels);
                } else {
                    vc.name = Some(m.name.clone());
                }
                let existed = !anonymous && self.volume_inspect(&m.name).is_ok();
                let mut v = self.volume_create(vc.clone())?;
                // Held from here until the container is in the table; a
                // removal that won the race means creating it again.
                if !self.hold_volume(&v.name) {
                    v = self.volume_create(vc)?;
                    if !self.hold_volume(&v.name) {
                        return Err(EngineError::Conflict(format!(
                            "volume {} was removed while the container was being created",
                            v.name
                        )));
                    }
                }
                held.push(v.name.clone());
                if !existed {
                    made.push(v.name.clone());
                }
                m.name = v.name;
                m.driver = v.driver;
                m.source = self.volume_source(&m.name)?.display().to_string();
            } else if m.typ == "bind" && !Path::new(&m.source).exists() {
                // `-v` creates a missing host dir (`--mount` refused above,
                // unless create-mountpoint).
                std::fs::create_dir_all(&m.source)
                    .map_err(|e| io_err("create", Path::new(&m.source), e))?;
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Copies the image's content at each volume's path into volumes that
    /// are still empty (Docker's first-use seeding; `nocopy` opts out).
    pub(crate) fn seed_volumes(&self, c: &Container, rootfs: &Path) -> Result<()> {
        for m in &c.mount_points {
            if m.typ != "volume" || m.no_copy {
                continue;
            }
            // A running container may share the volume and change it under
            // us; Docker only seeds a volume on its first use anyway.
            let running = self
                .volume_users(&m.name)
                .into_iter()
                .any(|id| id != c.id && self.inspect(&id).is_ok_and(|o| o.state.running));
            if running {
                continue;
            }
            let failed = |e: std::io::Error| {
                EngineError::Internal(format!(
                    "seeding volume {} from the image's {}: {e}",
                    m.name, m.destination
                ))
            };
            let dst = nix::fcntl::open(
                Path::new(&m.source),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map_err(|e| failed(std::io::Error::from_raw_os_error(e as i32)))?;
            if !berth_image::fswalk::names(dst.as_fd())
                .map_err(failed)?
                .is_empty()
            {
                continue;
            }
            // The image's dir, resolved inside the rootfs; none, or not a
            // directory, seeds nothing.
            let root = berth_image::fswalk::open_root(rootfs).map_err(failed)?;
            let Ok(src) = berth_image::fswalk::open_in_root(
                root.as_fd(),
                Path::new(&m.destination),
                OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            ) else {
                continue;
            };
            super::seed::copy_tree(src.as_fd(), dst.as_fd()).map_err(failed)?;
        }
        Ok(())
    }

    /// After a container is gone: its anonymous volumes, when `volumes`
    /// (`rm -v`, `--rm`) and nothing else uses them. Named ones stay.
    pub(crate) fn remove_anonymous_volumes(&self, mounts: &[MountPoint]) {
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            let anonymous = self
                .volume_inspect(&m.name)
                .is_ok_and(|v| v.labels.contains_key(ANONYMOUS_LABEL));
            if anonymous && self.volume_users(&m.name).is_empty() {
                let _ = self.volume_remove(&m.name, true);
            }
        }
    }
}

/// The OCI mounts for a container's [`MountPoint`]s and `--tmpfs`, parents
/// before children (by destination depth) so nothing is hidden.
pub(crate) fn oci_mounts(c: &Container) -> Vec<serde_json::Value> {
    use serde_json::json;
    let mut list: Vec<(String, serde_json::Value)> = Vec::new();
    for m in &c.mount_points {
        let rw = if m.rw { "rw" } else { "ro" };
        let v = match m.typ.as_str() {
            "tmpfs" => {
                let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
                o.extend(m.tmpfs_options.iter().cloned());
                o.push(rw.into());
                json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs", "options": o})
            }
            _ => {
                let bind = if m.non_recursive { "bind" } else { "rbind" };
                let prop = if m.propagation.is_empty() {
                    "rprivate"
                } else {
                    m.propagation.as_str()
                };
                json!({"destination": m.destination, "type": "bind", "source": m.source, "options": [bind, rw, prop]})
            }
        };
        list.push((m.destination.clone(), v));
    }
    let tmpfs: BTreeMap<String, String> = c.host_config.tmpfs.clone().unwrap_or_default();
    for (dst, opts) in tmpfs {
        let mut o: Vec<String> = vec!["nosuid".into(), "nodev".into(), "noexec".into()];
        o.extend(opts.split(',').filter(|s| !s.is_empty()).map(String::from));
        list.push((
            clean_path(&dst),
            json!({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": o}),
        ));
    }
    list.sort_by_key(|(d, _)| d.matches('/').count());
    list.into_iter().map(|(_, v)| v).collect()
}

/// Inspect's `Mounts`: the Docker fields of each mount point.
pub fn inspect_mounts(c: &Container) -> serde_json::Value {
    use serde_json::json;
    c.mount_points
        .iter()
        .map(|m| {
            let mut v = json!({
                "Type": m.typ, "Source": m.source, "Destination": m.destination,
                "Mode": m.mode, "RW": m.rw, "Propagation": m.propagation,
            });
            if m.typ == "volume" {
                v["Name"] = json!(m.name);
                v["Driver"] = json!(m.driver);
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_parse_like_docker() {
        let m = parse_bind("/tmp:/data:ro").unwrap();
        assert_eq!(
            (m.typ.as_str(), m.rw, m.propagation.as_str()),
            ("bind", false, "rprivate")
        );
        let m = parse_bind("cache:/var/cache/:nocopy").unwrap();
        assert_eq!(
            (m.typ.as_str(), m.name.as_str(), m.destination.as_str()),
            ("volume", "cache", "/var/cache")
        );
        assert!(m.no_copy && m.rw);
        let m = parse_bind("/h:/c:rw,rshared").unwrap();
        assert_eq!(m.propagation, "rshared");
        assert!(parse_bind("/h:rel").is_err());
        assert!(parse_bind("/h:/").is_err());
        assert!(parse_bind("/h:/c:ro,rw").is_err());
        assert!(parse_bind("/h:/c:bogus").is_err());
        assert!(parse_bind("/h:/c:nocopy").is_err());
        assert!(parse_bind("/a:/b:/c:d").is_err());
    }

    #[test]
    fn mounts_parse_like_docker() {
        let mut s = MountSpec {
            typ: "bind".into(),
            source: "/nonexistent-berth-test".into(),
            target: "/x".into(),
            ..MountSpec::default()
        };
        let e = parse_mount(&s).unwrap_err().to_string();
        assert!(e.contains("bind source path does not exist"), "{e}");
        s.source = "/tmp".into();
        s.read_only = true;
        let (m, _) = parse_mount(&s).unwrap();
        assert_eq!((m.typ.as_str(), m.rw), ("bind", false));
        s.typ = "tmpfs".into();
        assert!(parse_mount(&s).is_err());
        s.source.clear();
        s.tmpfs_options = Some(super::super::model::TmpfsOptions {
            size_bytes: 1 << 20,
            mode: 0o1770,
        });
        let (m, _) = parse_mount(&s).unwrap();
        assert_eq!(m.tmpfs_options, ["size=1048576", "mode=1770"]);
        s.typ = "npipe".into();
        assert!(parse_mount(&s).is_err());
    }

    #[test]
    fn mount_order_parents_first() {
        let mut c = Container::default();
        for d in ["/a/b/c", "/a", "/a/b"] {
            c.mount_points.push(MountPoint {
                typ: "bind".into(),
                source: "/s".into(),
                destination: d.into(),
                rw: true,
                ..MountPoint::default()
            });
        }
        let order: Vec<String> = oci_mounts(&c)
            .iter()
            .map(|m| m["destination"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(order, ["/a", "/a/b", "/a/b/c"]);
    }
}
