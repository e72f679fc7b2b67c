//! The informational commands: list, spec, features.

use std::path::Path;

use berth_runtime::Runtime;

pub fn list(rt: &Runtime, format: &str, quiet: bool) -> anyhow::Result<()> {
    let containers = rt.list()?;
    if quiet {
        for c in &containers {
            println!("{}", c.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = containers.iter().map(|c| c.to_oci_json()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &containers {
                let pid = if c.status == berth_runtime::Status::Stopped {
                    0
                } else {
                    c.pid
                };
                println!(
                    "{:<24} {:<8} {:<10} {:<40} {:<32} {}",
                    c.id,
                    pid,
                    c.status,
                    c.bundle.display(),
                    c.created,
                    if c.owner.is_empty() { "root" } else { &c.owner }
                );
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(())
}

pub fn write_default_spec(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("{} already exists; remove it first", path.display());
    }
    let spec = if rootless {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(())
}

pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": [],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "sync", "unbindable", "rro", "rnosuid", "rnodev", "rnoexec"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runc.version": "berth-runtime",
        }
    })
}
