//! Volumes: Docker's `local` driver. A volume is `<root>/volumes/<name>/`
//! holding `_data` (what containers see) and `opts.json` (its record).
//! Creation builds the directory under a temporary name and renames it into
//! place, removal renames it away first, so a crash never leaves a volume
//! half there; leftovers of either are cleared when the engine opens.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Engine;
use crate::error::{EngineError, Result, io_err};
use crate::util::{
    bool_filter, is_mountpoint, label_matches, now_rfc3339, random_id, write_atomic,
};

const RECORD: &str = "opts.json";
/// Docker (API ≥ 1.42) marks anonymous volumes with this label; prune
/// without `all` removes only those.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// `POST /volumes/create`'s body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeCreate {
    pub name: Option<String>,
    pub driver: Option<String>,
    pub driver_opts: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

/// A volume in Docker's shape (`GET /volumes/{name}`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Volume {
    pub name: String,
    pub driver: String,
    pub mountpoint: String,
    pub created_at: String,
    /// Docker answers null, not {}, for none.
    #[serde(serialize_with = "null_if_empty", deserialize_with = "empty_if_null")]
    pub labels: BTreeMap<String, String>,
    pub scope: String,
    #[serde(serialize_with = "null_if_empty", deserialize_with = "empty_if_null")]
    pub options: BTreeMap<String, String>,
    /// Size and reference count; only filled when asked (system df).
    pub usage_data: Option<UsageData>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UsageData {
    pub size: i64,
    pub ref_count: i64,
}

/// What is kept in `opts.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Record {
    name: String,
    driver: String,
    created_at: String,
    labels: BTreeMap<String, String>,
    options: BTreeMap<String, String>,
}

/// Docker's rule for volume names.
fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    n.len() >= 2
        && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Checks `type`/`device`/`o` as the local driver accepts them.
fn check_options(opts: &BTreeMap<String, String>) -> Result<()> {
    for k in opts.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            return Err(EngineError::InvalidArgument(format!(
                "invalid option key: {k:?}"
            )));
        }
    }
    let typ = opts.get("type").map(String::as_str).unwrap_or("");
    let device = opts.get("device").map(String::as_str).unwrap_or("");
    let o = opts.get("o").map(String::as_str).unwrap_or("");
    if typ.is_empty() && (!device.is_empty() || !o.is_empty()) {
        return Err(EngineError::InvalidArgument(
            "invalid option: missing required option \"type\"".into(),
        ));
    }
    if !typ.is_empty() && device.is_empty() {
        return Err(EngineError::InvalidArgument(
            "invalid option: missing required option \"device\"".into(),
        ));
    }
    let bind = o.split(',').any(|x| x == "bind" || x == "rbind");
    if bind && !Path::new(device).is_dir() {
        return Err(EngineError::InvalidArgument(format!(
            "invalid option: device {device:?} for a bind volume does not exist or is not a directory"
        )));
    }
    Ok(())
}

impl Engine {
    pub fn volumes_dir(&self) -> PathBuf {
        self.paths.root.join("volumes")
    }

    /// Drops half-created and half-removed volume dirs left by a crash.
    pub(crate) fn volumes_cleanup(&self) -> Result<()> {
        let dir = self.volumes_dir();
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        for e in std::fs::read_dir(&dir)
            .map_err(|e| io_err("read", &dir, e))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".tmp-") || n.starts_with(".rm-") {
                let _ = unmount_if_mounted(&e.path().join("_data"));
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
        Ok(())
    }

    fn read_volume(&self, name: &str) -> Result<Record> {
        if !valid_name(name) {
            return Err(no_such_volume(name));
        }
        let p = self.volumes_dir().join(name).join(RECORD);
        let data = std::fs::read(&p).map_err(|_| no_such_volume(name))?;
        serde_json::from_slice(&data)
            .map_err(|e| EngineError::Internal(format!("volume record {}: {e}", p.display())))
    }

    fn to_volume(&self, r: Record) -> Volume {
        Volume {
            mountpoint: self.volume_data(&r.name).display().to_string(),
            name: r.name,
            driver: r.driver,
            created_at: r.created_at,
            labels: r.labels,
            scope: "local".into(),
            options: r.options,
            usage_data: None,
        }
    }

    /// `_data` of a volume: what containers mount.
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name).join("_data")
    }

    /// `POST /volumes/create`. An existing name answers with that volume,
    /// as Docker does.
    pub fn volume_create(&self, req: VolumeCreate) -> Result<Volume> {
        let driver = req
            .driver
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| "local".into());
        if driver != "local" {
            return Err(EngineError::NotFound(format!(
                "error looking up volume plugin {driver}: plugin \"{driver}\" not found (only the \"local\" driver is available)"
            )));
        }
        let mut labels = req.labels.unwrap_or_default();
        // A volume nobody named is anonymous (Docker labels it so prune
        // takes it by default).
        let name = match req.name.filter(|n| !n.is_empty()) {
            Some(n) => n,
            None => {
                labels.insert(ANONYMOUS_LABEL.into(), String::new());
                random_id()
            }
        };
        if !valid_name(&name) {
            return Err(EngineError::InvalidArgument(format!(
                "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed (at least two characters)"
            )));
        }
        if let Ok(r) = self.read_volume(&name) {
            return Ok(self.to_volume(r));
        }
        let options = req.driver_opts.unwrap_or_default();
        check_options(&options)?;
        let rec = Record {
            name: name.clone(),
            driver,
            created_at: now_rfc3339(),
            labels,
            options,
        };
        let dir = self.volumes_dir();
        let tmp = dir.join(format!(".tmp-{}", &random_id()[..16]));
        let data = tmp.join("_data");
        std::fs::create_dir_all(&data).map_err(|e| io_err("create", &data, e))?;
        let built = write_atomic(&tmp.join(RECORD), &serde_json::to_vec(&rec)?);
        let dst = dir.join(&name);
        let res =
            built.and_then(|()| std::fs::rename(&tmp, &dst).map_err(|e| io_err("rename", &dst, e)));
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&tmp);
            // Lost a race with a create of the same name: that one stands.
            if let Ok(r) = self.read_volume(&name) {
                return Ok(self.to_volume(r));
            }
            return Err(e);
        }
        let attrs = [("driver".to_string(), rec.driver.clone())].into();
        self.emit("volume", "create", &rec.name, attrs);
        Ok(self.to_volume(rec))
    }

    pub fn volume_inspect(&self, name: &str) -> Result<Volume> {
        Ok(self.to_volume(self.read_volume(name)?))
    }

    fn all_volumes(&self) -> Result<Vec<Record>> {
        let dir = self.volumes_dir();
        let mut out = Vec::new();
        for e in std::fs::read_dir(&dir)
            .map_err(|e| io_err("read", &dir, e))?
            .flatten()
        {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Ok(r) = self.read_volume(&n) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Ids of the containers (any state) whose mounts name the volume.
    pub fn volume_users(&self, name: &str) -> Vec<String> {
        users_in(&self.lock(), name)
    }

    /// Marks a volume in use by a create in progress; false when it does
    /// not exist (any more). Under the table lock, as removal checks, so a
    /// volume cannot go between the two.
    pub(crate) fn hold_volume(&self, name: &str) -> bool {
        let mut t = self.lock();
        if self.read_volume(name).is_err() {
            return false;
        }
        *t.volume_holds.entry(name.to_string()).or_default() += 1;
        true
    }

    pub(crate) fn release_volumes(t: &mut crate::Table, mounts: &[crate::MountPoint]) {
        for m in mounts.iter().filter(|m| m.typ == "volume") {
            if let Some(n) = t.volume_holds.get_mut(&m.name) {
                *n -= 1;
                if *n == 0 {
                    t.volume_holds.remove(&m.name);
                }
            }
        }
    }

    /// `GET /volumes`, with Docker's filters (dangling, name, label, driver).
    pub fn volume_list(&self, filters: &Value) -> Result<Vec<Volume>> {
        let filters = parse_filters(filters)?;
        let mut out = Vec::new();
        for r in self.all_volumes()? {
            if volume_matches(&r, &filters, || !self.volume_users(&r.name).is_empty())? {
                out.push(self.to_volume(r));
            }
        }
        Ok(out)
    }

    /// Size of the data and how many containers use it (`system df`).
    pub fn volume_usage(&self, name: &str) -> Result<UsageData> {
        self.read_volume(name)?;
        Ok(UsageData {
            size: dir_size(&self.volume_data(name)) as i64,
            ref_count: self.volume_users(name).len() as i64,
        })
    }

    /// `DELETE /volumes/{name}`: refused while any container, running or
    /// not, uses it (`force` does not override that, as in Docker).
    pub fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        if let Err(e) = self.read_volume(name) {
            return if force { Ok(()) } else { Err(e) };
        }
        let src = self.volumes_dir().join(name);
        let gone = self
            .volumes_dir()
            .join(format!(".rm-{}", &random_id()[..16]));
        {
            // Checked and renamed away under the table lock: no create can
            // take the volume in between (see hold_volume).
            let t = self.lock();
            let mut users = users_in(&t, name);
            if t.volume_holds.contains_key(name) {
                users.push("a container being created".into());
            }
            if !users.is_empty() {
                return Err(EngineError::Conflict(format!(
                    "remove {name}: volume is in use - [{}]",
                    users.join(", ")
                )));
            }
            std::fs::rename(&src, &gone).map_err(|e| io_err("rename", &src, e))?;
        }
        let _ = unmount_if_mounted(&gone.join("_data"));
        let attrs = [("driver".to_string(), "local".to_string())].into();
        self.emit("volume", "destroy", name, attrs);
        std::fs::remove_dir_all(&gone).map_err(|e| io_err("remove", &gone, e))
    }

    /// `POST /volumes/prune`: unused volumes; only anonymous ones unless
    /// the `all` filter is true (API ≥ 1.42 behaviour).
    pub fn volume_prune(&self, filters: &Value) -> Result<(Vec<String>, u64)> {
        let mut f = parse_filters(filters)?;
        let all = f
            .remove("all")
            .is_some_and(|v| v.iter().any(|x| x == "true" || x == "1"));
        f.remove("dangling");
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for r in self.all_volumes()? {
            if !all && !r.labels.contains_key(ANONYMOUS_LABEL) {
                continue;
            }
            if !volume_matches(&r, &f, || false)? || !self.volume_users(&r.name).is_empty() {
                continue;
            }
            let size = dir_size(&self.volume_data(&r.name));
            if self.volume_remove(&r.name, false).is_ok() {
                reclaimed += size;
                deleted.push(r.name);
            }
        }
        Ok((deleted, reclaimed))
    }

    /// The host path a container mounts for the volume: the device itself
    /// for a bind-typed volume, `_data` otherwise (with the volume's
    /// filesystem mounted on it first when it has a `type`).
    pub(crate) fn volume_source(&self, name: &str) -> Result<PathBuf> {
        let r = self.read_volume(name)?;
        let data = self.volume_data(name);
        let typ = r.options.get("type").map(String::as_str).unwrap_or("");
        if typ.is_empty() {
            return Ok(data);
        }
        let device = r.options.get("device").cloned().unwrap_or_default();
        let o = r.options.get("o").cloned().unwrap_or_default();
        if o.split(',').any(|x| x == "bind" || x == "rbind") {
            return Ok(PathBuf::from(device));
        }
        if is_mountpoint(&data) {
            return Ok(data);
        }
        mount_fs(typ, &device, &data, &o).map_err(|e| {
            EngineError::Internal(format!(
                "error while mounting volume '{}': mount {typ} {device} (o={o}): {e}",
                data.display()
            ))
        })?;
        Ok(data)
    }
}

fn null_if_empty<S: serde::Serializer>(
    m: &BTreeMap<String, String>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    if m.is_empty() {
        s.serialize_none()
    } else {
        m.serialize(s)
    }
}

fn empty_if_null<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

fn users_in(t: &crate::Table, name: &str) -> Vec<String> {
    t.containers
        .values()
        .filter(|c| c.mount_points.iter().any(|m| m.name == name))
        .map(|c| c.id.clone())
        .collect()
}

fn no_such_volume(name: &str) -> EngineError {
    EngineError::NotFound(format!("get {name}: no such volume"))
}

type Filters = BTreeMap<String, Vec<String>>;

/// Docker's filter JSON, old (`{"k":["v"]}`) or new (`{"k":{"v":true}}`).
pub fn parse_filters(v: &Value) -> Result<Filters> {
    let mut out = Filters::new();
    let Some(obj) = v.as_object() else {
        return Ok(out);
    };
    for (k, vals) in obj {
        let vals = crate::util::filter_values(vals).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid filter value for {k:?}"))
        })?;
        out.insert(k.clone(), vals);
    }
    Ok(out)
}

fn volume_matches(r: &Record, f: &Filters, in_use: impl Fn() -> bool) -> Result<bool> {
    for (k, vals) in f {
        let ok = match k.as_str() {
            "name" => vals.iter().any(|v| r.name.contains(v.as_str())),
            "driver" => vals.contains(&r.driver),
            "label" => vals.iter().all(|v| label_matches(&r.labels, v)),
            "label!" => !vals.iter().any(|v| label_matches(&r.labels, v)),
            "dangling" => in_use() != bool_filter("dangling", vals)?,
            other => {
                return Err(EngineError::InvalidArgument(format!(
                    "invalid filter '{other}'"
                )));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

fn unmount_if_mounted(p: &Path) -> std::io::Result<()> {
    if is_mountpoint(p) {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
        // SAFETY: plain umount2 of a path we own; MNT_DETACH so a busy
        // mount still goes.
        if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// mount(2) of a volume's filesystem: `o` splits into flags and data as
/// mount(8) would for the common flags.
fn mount_fs(typ: &str, device: &str, target: &Path, o: &str) -> std::io::Result<()> {
    let mut flags: libc::c_ulong = 0;
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        match opt {
            "ro" => flags |= libc::MS_RDONLY,
            "nosuid" => flags |= libc::MS_NOSUID,
            "nodev" => flags |= libc::MS_NODEV,
            "noexec" => flags |= libc::MS_NOEXEC,
            "noatime" => flags |= libc::MS_NOATIME,
            "rw" | "defaults" => {}
            other => data.push(other),
        }
    }
    let cs = |s: &str| std::ffi::CString::new(s).map_err(std::io::Error::other);
    let (src, t, ty, d) = (
        cs(device)?,
        std::ffi::CString::new(target.as_os_str().as_encoded_bytes())?,
        cs(typ)?,
        cs(&data.join(","))?,
    );
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            t.as_ptr(),
            ty.as_ptr(),
            flags,
            d.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options() {
        assert!(valid_name("data_1.x-y"));
        assert!(!valid_name("a"));
        assert!(!valid_name("-ab"));
        assert!(!valid_name("a/b"));
        let o = |kv: &[(&str, &str)]| {
            kv.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(
            check_options(&o(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m")
            ]))
            .is_ok()
        );
        assert!(check_options(&o(&[("device", "tmpfs")])).is_err());
        assert!(check_options(&o(&[("type", "tmpfs")])).is_err());
        assert!(check_options(&o(&[("bogus", "1")])).is_err());
        assert!(
            check_options(&o(&[
                ("type", "none"),
                ("device", "/nonexistent-x"),
                ("o", "bind")
            ]))
            .is_err()
        );
    }

    #[test]
    fn held_volume_cannot_be_removed() {
        let t = tempfile::tempdir().unwrap();
        let e = Engine::open(crate::Paths {
            root: t.path().join("root"),
            exec_root: t.path().join("run"),
            shim: t.path().join("berth-shim"),
            runtime: None,
        })
        .unwrap();
        let v = e
            .volume_create(VolumeCreate {
                name: Some("held".into()),
                ..VolumeCreate::default()
            })
            .unwrap();
        assert!(std::path::Path::new(&v.mountpoint).is_dir());
        assert!(e.hold_volume("held"));
        let err = e.volume_remove("held", true).unwrap_err();
        assert!(matches!(err, EngineError::Conflict(_)), "{err}");
        let m = crate::MountPoint {
            typ: "volume".into(),
            name: "held".into(),
            ..crate::MountPoint::default()
        };
        Engine::release_volumes(&mut e.lock(), &[m]);
        e.volume_remove("held", false).unwrap();
        assert!(!e.hold_volume("held"));
        assert!(e.volume_inspect("held").is_err());
    }

    #[test]
    fn filters() {
        let r = Record {
            name: "web-data".into(),
            driver: "local".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
            ..Record::default()
        };
        let f = |v: Value| parse_filters(&v).unwrap();
        let m = |v: Value, used: bool| volume_matches(&r, &f(v), || used).unwrap();
        assert!(m(serde_json::json!({"name": ["web"]}), false));
        assert!(!m(serde_json::json!({"name": ["db"]}), false));
        assert!(m(serde_json::json!({"label": {"env=prod": true}}), false));
        assert!(!m(serde_json::json!({"label": ["env=dev"]}), false));
        assert!(m(serde_json::json!({"dangling": ["true"]}), false));
        assert!(!m(serde_json::json!({"dangling": ["true"]}), true));
        assert!(m(serde_json::json!({"driver": ["local"]}), true));
        assert!(volume_matches(&r, &f(serde_json::json!({"bogus": ["x"]})), || false).is_err());
    }
}
