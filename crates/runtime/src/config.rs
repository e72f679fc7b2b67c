//! The bundle's config.json: loading, the checks the runtime makes before
//! anything is created, and the namespace plan derived from it.

use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{IoContext, Result, RuntimeError};

/// Loads and checks `config.json` from a bundle.
pub fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text = fs::read_to_string(&path).ctx(|| format!("read {}", path.display()))?;
    let spec: Spec = serde_json::from_str(&text).map_err(|e| RuntimeError::Config {
        path: path.clone(),
        msg: format!("line {} column {}: {e}", e.line(), e.column()),
    })?;
    validate_spec(&spec).map_err(|msg| RuntimeError::Config { path, msg })?;
    Ok(spec)
}

fn validate_spec(spec: &Spec) -> std::result::Result<(), String> {
    if !spec.version().starts_with("1.") {
        return Err(format!(
            "ociVersion {:?} is not supported (need 1.x)",
            spec.version()
        ));
    }
    let root = spec.root().as_ref().ok_or("root: missing")?;
    if root.path().as_os_str().is_empty() {
        return Err("root.path: empty".into());
    }
    let process = spec.process().as_ref().ok_or("process: missing")?;
    if process.args().as_deref().unwrap_or_default().is_empty() {
        return Err("process.args: must contain at least one entry".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!("process.cwd: {:?} is not absolute", process.cwd()));
    }
    let linux = spec.linux().as_ref().ok_or("linux: missing")?;
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    let has = |t: LinuxNamespaceType| namespaces.iter().any(|n| n.typ() == t);
    let mut seen = Vec::new();
    for ns in namespaces {
        if seen.contains(&ns.typ()) {
            return Err(format!("linux.namespaces: {:?} listed twice", ns.typ()));
        }
        seen.push(ns.typ());
    }
    if spec.hostname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts) {
        return Err("hostname: needs a uts namespace in linux.namespaces".into());
    }
    if spec.domainname().as_deref().is_some_and(|h| !h.is_empty()) && !has(LinuxNamespaceType::Uts)
    {
        return Err("domainname: needs a uts namespace in linux.namespaces".into());
    }
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !m.destination().is_absolute() {
            return Err(format!(
                "mounts: destination {:?} is not absolute",
                m.destination()
            ));
        }
    }
    let user_ns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User && n.path().is_none());
    let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if user_ns && !has_maps {
        return Err("linux.uidMappings: a new user namespace needs uid and gid mappings".into());
    }
    Ok(())
}

fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespace plan: flags for clone, and paths to join in order.
pub(crate) struct NamespacePlan {
    pub(crate) clone_flags: CloneFlags,
    pub(crate) join: Vec<(CloneFlags, OwnedFd)>,
    pub(crate) join_pid: Option<OwnedFd>,
    pub(crate) new_cgroup_ns: bool,
    pub(crate) new_user_ns: bool,
    pub(crate) new_pid_ns: bool,
    pub(crate) new_mount_ns: bool,
    pub(crate) new_time_ns: bool,
}

pub(crate) fn plan_namespaces(spec: &Spec) -> Result<NamespacePlan> {
    let mut plan = NamespacePlan {
        clone_flags: CloneFlags::empty(),
        join: Vec::new(),
        join_pid: None,
        new_cgroup_ns: false,
        new_user_ns: false,
        new_pid_ns: false,
        new_mount_ns: false,
        new_time_ns: false,
    };
    let namespaces = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    // Join the user namespace first: it decides what we may do in the others.
    let order = |t: LinuxNamespaceType| if t == LinuxNamespaceType::User { 0 } else { 1 };
    let mut sorted = namespaces;
    sorted.sort_by_key(|n| order(n.typ()));
    for ns in sorted {
        let flag = clone_flag(ns.typ());
        match ns.path() {
            Some(p) if !p.as_os_str().is_empty() => {
                let fd: OwnedFd = fs::File::open(p)
                    .ctx(|| format!("open namespace {:?} path {}", ns.typ(), p.display()))?
                    .into();
                if ns.typ() == LinuxNamespaceType::Pid {
                    plan.join_pid = Some(fd);
                } else {
                    plan.join.push((flag, fd));
                }
            }
            _ => match ns.typ() {
                LinuxNamespaceType::Cgroup => plan.new_cgroup_ns = true,
                LinuxNamespaceType::Time => plan.new_time_ns = true,
                t => {
                    plan.new_user_ns |= t == LinuxNamespaceType::User;
                    plan.new_pid_ns |= t == LinuxNamespaceType::Pid;
                    plan.new_mount_ns |= t == LinuxNamespaceType::Mount;
                    plan.clone_flags |= flag;
                }
            },
        }
    }
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from(v: serde_json::Value) -> Spec {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "mount"}, {"type": "pid"}]}
        })
    }

    #[test]
    fn valid_spec_passes() {
        assert!(validate_spec(&spec_from(base())).is_ok());
    }

    #[test]
    fn duplicate_namespace_is_named() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        let e = validate_spec(&spec_from(v)).unwrap_err();
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "box".into();
        let e = validate_spec(&spec_from(v)).unwrap_err();
        assert!(e.starts_with("hostname"), "{e}");
    }

    #[test]
    fn relative_cwd_and_empty_args_are_refused() {
        let mut v = base();
        v["process"]["cwd"] = "tmp".into();
        assert!(
            validate_spec(&spec_from(v))
                .unwrap_err()
                .contains("process.cwd")
        );
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(
            validate_spec(&spec_from(v))
                .unwrap_err()
                .contains("process.args")
        );
    }

    #[test]
    fn namespace_plan_orders_user_first_and_defers_cgroup() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([
            {"type": "mount"}, {"type": "cgroup"}, {"type": "network"}, {"type": "pid"}
        ]);
        let plan = plan_namespaces(&spec_from(v)).unwrap();
        assert!(plan.new_cgroup_ns && plan.new_pid_ns && !plan.new_user_ns);
        assert!(!plan.clone_flags.contains(CloneFlags::CLONE_NEWCGROUP));
        assert!(
            plan.clone_flags
                .contains(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWNET)
        );
    }

    #[test]
    fn bad_json_names_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("config.json"), "{\n  \"ociVersion\": 1,\n}").unwrap();
        let e = load_spec(d.path()).unwrap_err().to_string();
        assert!(e.contains("config.json") && e.contains("line 2"), "{e}");
    }
}
