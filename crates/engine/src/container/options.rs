//! The run options that adjust the generated OCI config: ulimits,
//! sysctls, devices (and all host devices for `--privileged`), /dev/shm
//! size, supplementary groups, OOM-killer, namespace modes (ipc, pid, uts,
//! cgroupns, shared with the host or another container), `--init`, and a
//! client's seccomp profile.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use serde_json::{Value, json};

use super::model::{Container, DeviceMapping, Ulimit};
use crate::Engine;
use crate::error::{EngineError, Result};

/// Where Docker puts the init and where Berth finds a static one (a
/// dynamically linked host binary would not run in every image).
pub const INIT_PATH: &str = "/sbin/docker-init";
pub const INIT_BINARY: &str = "/usr/bin/tini-static";

fn bad(m: String) -> EngineError {
    EngineError::InvalidArgument(m)
}

fn rlimit_type(name: &str) -> Result<String> {
    const KNOWN: &[&str] = &[
        "as",
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    ];
    if KNOWN.contains(&name) {
        Ok(format!("RLIMIT_{}", name.to_ascii_uppercase()))
    } else {
        Err(bad(format!("invalid ulimit type: {name}")))
    }
}

fn rlimits(ulimits: &[Ulimit]) -> Result<Vec<Value>> {
    ulimits
        .iter()
        .map(|u| {
            if u.soft > u.hard && u.hard >= 0 {
                return Err(bad(format!(
                    "ulimit soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            // -1 is unlimited, as in Docker.
            let v = |x: i64| if x < 0 { u64::MAX } else { x as u64 };
            Ok(json!({"type": rlimit_type(&u.name)?, "soft": v(u.soft), "hard": v(u.hard)}))
        })
        .collect()
}

/// Docker allows only namespaced sysctls, and net.* only with a private
/// network namespace.
fn check_sysctl(key: &str, host_net: bool, host_ipc: bool) -> Result<()> {
    let ipc = [
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if ipc.contains(&key) || key.starts_with("fs.mqueue.") {
        if host_ipc {
            return Err(bad(format!(
                "sysctl {key:?} is not allowed when sharing the host's IPC namespace"
            )));
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        if host_net {
            return Err(bad(format!(
                "sysctl {key:?} is not allowed in host network namespace"
            )));
        }
        return Ok(());
    }
    if key == "kernel.domainname" || key == "kernel.hostname" {
        return Ok(());
    }
    Err(bad(format!(
        "sysctl {key:?} is not in a separate kernel namespace"
    )))
}

/// One host device as an OCI `linux.devices` entry and its cgroup rule.
fn device(host: &Path, in_ctr: &str, perms: &str) -> Result<(Value, Value)> {
    let md = std::fs::metadata(host).map_err(|e| {
        bad(format!(
            "error gathering device information while adding custom device {:?}: {e}",
            host.display()
        ))
    })?;
    let ft = md.file_type();
    let typ = if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else {
        return Err(bad(format!("{} is not a device node", host.display())));
    };
    if perms.is_empty() || !perms.chars().all(|c| "rwm".contains(c)) {
        return Err(bad(format!(
            "invalid device permissions {perms:?} (r, w, m)"
        )));
    }
    let rdev = md.rdev();
    let (major, minor) = (libc::major(rdev) as i64, libc::minor(rdev) as i64);
    Ok((
        json!({"path": in_ctr, "type": typ, "major": major, "minor": minor,
               "fileMode": md.mode() & 0o777, "uid": md.uid(), "gid": md.gid()}),
        json!({"allow": true, "type": typ, "major": major, "minor": minor, "access": perms}),
    ))
}

/// `--device host[:ctr[:perms]]`; a directory maps every device under it.
fn devices(list: &[DeviceMapping]) -> Result<Vec<(Value, Value)>> {
    let mut out = Vec::new();
    for d in list {
        let host = Path::new(&d.path_on_host);
        let ctr = if d.path_in_container.is_empty() {
            d.path_on_host.clone()
        } else {
            d.path_in_container.clone()
        };
        let perms = if d.cgroup_permissions.is_empty() {
            "rwm"
        } else {
            d.cgroup_permissions.as_str()
        };
        if host.is_dir() {
            for p in walk_devices(host) {
                let rel = p.strip_prefix(host).unwrap_or(&p);
                let dst = Path::new(&ctr).join(rel).display().to_string();
                out.push(device(&p, &dst, perms)?);
            }
        } else {
            out.push(device(host, &ctr, perms)?);
        }
    }
    Ok(out)
}

/// Device nodes under `dir`, skipping what a container gets its own of.
fn walk_devices(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name();
        let name = name.to_string_lossy();
        if matches!(
            name.as_ref(),
            "pts" | "shm" | "mqueue" | ".lxc" | ".lxd-mounts" | "console"
        ) {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let ft = md.file_type();
        if ft.is_dir() {
            out.extend(walk_devices(&p));
        } else if ft.is_char_device() || ft.is_block_device() {
            out.push(p);
        }
    }
    out
}

/// The image's /etc/`name` ("" when missing), read inside the rootfs: a
/// symlink to /dev/zero, a FIFO or a huge file is a clear error, not a hang.
fn etc(rootfs: &Path, name: &str) -> Result<String> {
    berth_image::rootfs::read_etc(rootfs, name)
        .map(Option::unwrap_or_default)
        .map_err(|e| bad(e.to_string()))
}

/// `-u user[:group]` resolved in the image. A numeric uid the image's
/// passwd does not list gets gid 0, as runc does for docker run/exec
/// (unlike COPY --chown, where the uid doubles as gid).
pub(crate) fn resolve_user(user: &str, rootfs: &Path) -> Result<(u32, u32)> {
    let (uid, gid) = berth_image::rootfs::resolve_user(user, rootfs)
        .map_err(|e| bad(format!("unable to find user {user}: {e}")))?;
    if !user.contains(':') && user.parse::<u32>().is_ok() {
        let passwd = etc(rootfs, "passwd")?;
        let listed = passwd.lines().any(|l| l.split(':').nth(2) == Some(user));
        if !listed {
            return Ok((uid, 0));
        }
    }
    Ok((uid, gid))
}

/// Supplementary groups: the user's groups in the image's /etc/group
/// (as Docker resolves them), then `--group-add` names or ids.
fn additional_gids(c: &Container, rootfs: &Path, gid: u32) -> Result<Vec<u32>> {
    let groups = etc(rootfs, "group")?;
    let entries: Vec<Vec<&str>> = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    // The primary group is listed too, as runc does (so `id` shows it).
    let mut out = vec![gid];
    let user = c.config.user.as_deref().unwrap_or("");
    let uname = user.split(':').next().unwrap_or("");
    let passwd = etc(rootfs, "passwd")?;
    let name = if uname.parse::<u32>().is_ok() {
        passwd
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.len() >= 3 && f[2] == uname)
            .map(|f| f[0].to_string())
    } else {
        Some(uname.to_string()).filter(|n| !n.is_empty())
    };
    // Only when the group was not given explicitly (`-u u:g` sets it alone).
    if let Some(name) = name.filter(|_| !user.contains(':')) {
        for f in &entries {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name)
                && let Ok(g) = f[2].parse::<u32>()
                && g != gid
                && !out.contains(&g)
            {
                out.push(g);
            }
        }
    }
    for g in c.host_config.group_add.iter().flatten() {
        let id = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => entries
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    bad(format!(
                        "Unable to find group {g}: no matching entries in group file"
                    ))
                })?,
        };
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Docker's seccomp profile format (what the CLI sends for
/// `--security-opt seccomp=<file>`) to the OCI one, keeping the rules
/// that apply to this architecture and capability set.
pub(crate) fn seccomp_from_docker(profile: &str, caps: &[String]) -> Result<Value> {
    let p: Value = serde_json::from_str(profile)
        .map_err(|e| bad(format!("decoding seccomp profile failed: {e}")))?;
    let native = match std::env::consts::ARCH {
        "x86_64" => ("SCMP_ARCH_X86_64", "amd64"),
        "aarch64" => ("SCMP_ARCH_AARCH64", "arm64"),
        other => ("", other),
    };
    let mut out = json!({"defaultAction": p["defaultAction"].as_str().unwrap_or("SCMP_ACT_ERRNO")});
    if let Some(e) = p.get("defaultErrnoRet").filter(|e| !e.is_null()) {
        out["defaultErrnoRet"] = e.clone();
    }
    let mut arches: Vec<Value> = Vec::new();
    if let Some(map) = p["archMap"].as_array() {
        for a in map {
            if a["architecture"] == native.0 {
                arches.push(a["architecture"].clone());
                arches.extend(
                    a["subArchitectures"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default(),
                );
            }
        }
    } else if let Some(a) = p["architectures"].as_array() {
        arches = a.clone();
    }
    if !arches.is_empty() {
        out["architectures"] = json!(arches);
    }
    let list_has = |v: &Value, x: &str| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|i| i.as_str() == Some(x)))
    };
    let mut syscalls = Vec::new();
    for s in p["syscalls"].as_array().into_iter().flatten() {
        let inc = &s["includes"];
        let exc = &s["excludes"];
        if inc["arches"].as_array().is_some_and(|a| !a.is_empty())
            && !list_has(&inc["arches"], native.1)
        {
            continue;
        }
        if list_has(&exc["arches"], native.1) {
            continue;
        }
        let has_cap = |cap: &Value| cap.as_str().is_some_and(|c| caps.iter().any(|x| x == c));
        if let Some(need) = inc["caps"].as_array()
            && !need.iter().all(has_cap)
        {
            continue;
        }
        if exc["caps"]
            .as_array()
            .is_some_and(|x| x.iter().any(has_cap))
        {
            continue;
        }
        let mut names: Vec<Value> = s["names"].as_array().cloned().unwrap_or_default();
        if let Some(n) = s["name"].as_str() {
            names.push(json!(n));
        }
        if names.is_empty() {
            continue;
        }
        let action = s["action"]
            .as_str()
            .ok_or_else(|| bad("seccomp profile: a syscall rule has no action".into()))?;
        let mut r = json!({"names": names, "action": action});
        for k in ["errnoRet", "args"] {
            if let Some(v) = s.get(k).filter(|v| !v.is_null()) {
                r[k] = v.clone();
            }
        }
        syscalls.push(r);
    }
    out["syscalls"] = json!(syscalls);
    Ok(out)
}

impl Engine {
    /// `container:<name|id>` → the namespace file of that running container.
    fn ns_of(&self, target: &str, kind: &str, what: &str) -> Result<String> {
        let t = self.lock();
        let other = t.get(target).map_err(|_| {
            bad(format!(
                "cannot join {what} of a non running container: {target}"
            ))
        })?;
        if !other.state.running || other.state.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "cannot join {what} of a non running container: {target}"
            )));
        }
        Ok(format!("/proc/{}/ns/{kind}", other.state.pid))
    }

    /// Applies the options above to a generated spec.
    pub(crate) fn apply_options(
        &self,
        c: &Container,
        spec: &mut Value,
        rootfs: &Path,
        gid: u32,
    ) -> Result<()> {
        let hc = &c.host_config;
        let privileged = hc.privileged.unwrap_or(false);
        if let Some(u) = hc.ulimits.as_ref().filter(|u| !u.is_empty()) {
            spec["process"]["rlimits"] = json!(rlimits(u)?);
        }
        spec["process"]["user"]["additionalGids"] = json!(additional_gids(c, rootfs, gid)?);

        // Namespaces: host (absent), another container's (path), private.
        let set_ns = |spec: &mut Value, kind: &str, path: Option<Option<String>>| {
            let list = spec["linux"]["namespaces"]
                .as_array_mut()
                .expect("namespaces");
            list.retain(|n| n["type"] != kind);
            match path {
                None => {}
                Some(None) => list.push(json!({"type": kind})),
                Some(Some(p)) => list.push(json!({"type": kind, "path": p})),
            }
        };
        let mode = |m: &Option<String>| m.clone().unwrap_or_default();
        let ipc = mode(&hc.ipc_mode);
        match ipc.as_str() {
            "" | "private" | "shareable" | "none" => {}
            "host" => set_ns(spec, "ipc", None),
            m => match m.strip_prefix("container:") {
                Some(t) => set_ns(
                    spec,
                    "ipc",
                    Some(Some(self.ns_of(t, "ipc", "IPC namespace")?)),
                ),
                None => return Err(bad(format!("invalid IPC mode: {m}"))),
            },
        }
        let pid = mode(&hc.pid_mode);
        match pid.as_str() {
            "" | "private" => {}
            "host" => set_ns(spec, "pid", None),
            m => match m.strip_prefix("container:") {
                Some(t) => set_ns(
                    spec,
                    "pid",
                    Some(Some(self.ns_of(t, "pid", "PID namespace")?)),
                ),
                None => return Err(bad(format!("invalid PID mode: {m}"))),
            },
        }
        match mode(&hc.uts_mode).as_str() {
            "" | "private" => {}
            "host" => {
                set_ns(spec, "uts", None);
                spec["hostname"] = json!("");
            }
            m => return Err(bad(format!("invalid UTS mode: {m}"))),
        }
        match mode(&hc.cgroupns_mode).as_str() {
            "" => {}
            "host" => set_ns(spec, "cgroup", None),
            "private" => set_ns(spec, "cgroup", Some(None)),
            m => return Err(bad(format!("invalid cgroup namespace mode: {m}"))),
        }

        let mounts = spec["mounts"].as_array_mut().expect("mounts");
        if ipc == "none" {
            mounts.retain(|m| m["destination"] != "/dev/shm");
        }
        if let Some(size) = hc.shm_size.filter(|s| *s > 0) {
            for m in mounts.iter_mut().filter(|m| m["destination"] == "/dev/shm") {
                m["options"] = json!([
                    "nosuid",
                    "noexec",
                    "nodev",
                    "mode=1777",
                    format!("size={size}")
                ]);
            }
        } else if hc.shm_size.is_some_and(|s| s < 0) {
            return Err(bad("SHM size can not be less than 0".into()));
        }
        if hc.init.unwrap_or(false) {
            if !Path::new(INIT_BINARY).is_file() {
                return Err(bad(format!(
                    "--init needs a static init binary at {INIT_BINARY} (Debian package tini)"
                )));
            }
            mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": INIT_BINARY, "options": ["bind", "ro", "rprivate"]}));
            let mut args = vec![json!(INIT_PATH), json!("--")];
            args.extend(
                spec["process"]["args"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            spec["process"]["args"] = json!(args);
        }

        if let Some(s) = hc.sysctls.as_ref().filter(|s| !s.is_empty()) {
            let host_net = hc.network_mode.as_deref() == Some("host");
            for k in s.keys() {
                check_sysctl(k, host_net, ipc == "host")?;
            }
            spec["linux"]["sysctl"] = json!(s);
        }

        let mut devs = devices(hc.devices.as_deref().unwrap_or_default())?;
        if privileged {
            for p in walk_devices(Path::new("/dev")) {
                let dst = p.display().to_string();
                // Privileged containers get every device; an unreadable
                // one is skipped rather than failing the run.
                if let Ok(d) = device(&p, &dst, "rwm") {
                    devs.push(d);
                }
            }
        }
        if !devs.is_empty() {
            let (nodes, rules): (Vec<Value>, Vec<Value>) = devs.into_iter().unzip();
            let mut seen = std::collections::BTreeSet::new();
            let nodes: Vec<Value> = nodes
                .into_iter()
                .filter(|n| seen.insert(n["path"].as_str().unwrap_or("").to_string()))
                .collect();
            spec["linux"]["devices"] = json!(nodes);
            if let Some(r) = spec["linux"]["resources"]["devices"].as_array_mut() {
                r.extend(rules);
            }
        }
        if hc.oom_kill_disable.unwrap_or(false) {
            spec["linux"]["resources"]["memory"]["disableOOMKiller"] = json!(true);
        }
        for s in hc.security_opt.iter().flatten() {
            let Some(profile) = s
                .strip_prefix("seccomp=")
                .or_else(|| s.strip_prefix("seccomp:"))
            else {
                continue;
            };
            if profile == "unconfined" || privileged {
                continue;
            }
            let caps: Vec<String> = spec["process"]["capabilities"]["bounding"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            spec["linux"]["seccomp"] = seccomp_from_docker(profile, &caps)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulimits_and_sysctls() {
        let u = |name: &str, soft, hard| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        let r = rlimits(&[u("nofile", 1024, 2048), u("core", -1, -1)]).unwrap();
        assert_eq!(
            r[0],
            json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048})
        );
        assert_eq!(r[1]["hard"], json!(u64::MAX));
        assert!(rlimits(&[u("bogus", 1, 1)]).is_err());
        assert!(rlimits(&[u("nofile", 10, 5)]).is_err());
        assert!(check_sysctl("net.ipv4.ip_forward", false, false).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", true, false).is_err());
        assert!(check_sysctl("kernel.shmmax", false, false).is_ok());
        assert!(check_sysctl("kernel.panic", false, false).is_err());
    }

    #[test]
    fn numeric_users() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(t.path().join("etc/passwd"), "bob:x:1000:1001::/h:/bin/sh\n").unwrap();
        assert_eq!(resolve_user("1000", t.path()).unwrap(), (1000, 1001));
        assert_eq!(resolve_user("2000", t.path()).unwrap(), (2000, 0));
        assert_eq!(resolve_user("2000:7", t.path()).unwrap(), (2000, 7));
        assert!(resolve_user("nosuch", t.path()).is_err());
    }

    /// /etc/group as a link to /dev/zero made the daemon read forever (out
    /// of memory), a FIFO hung create, and a link to an absolute path read
    /// the host's file: now each is an error naming the file, or resolved
    /// inside the image.
    #[test]
    fn hostile_etc_files_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path().join("rootfs");
        std::fs::create_dir_all(r.join("etc")).unwrap();
        // An absolute link resolves in the image, never on the host.
        std::fs::write(r.join("passwd.real"), "bob:x:1000:1000::/h:/bin/sh\n").unwrap();
        std::os::unix::fs::symlink("/passwd.real", r.join("etc/passwd")).unwrap();
        std::fs::write(t.path().join("passwd.real"), "bob:x:1:1::/h:/bin/sh\n").unwrap();
        assert_eq!(resolve_user("bob", &r).unwrap(), (1000, 1000));
        std::os::unix::fs::symlink("/dev/zero", r.join("etc/group")).unwrap();
        // A real /dev/zero in the image too, as a rootfs usually has.
        std::fs::create_dir_all(r.join("dev")).unwrap();
        nix::sys::stat::mknod(
            &r.join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        let mut c = Container::default();
        c.config.user = Some("bob".into());
        let e = additional_gids(&c, &r, 1000).unwrap_err().to_string();
        assert!(
            e.contains("/etc/group") && e.contains("not a regular file"),
            "{e}"
        );
        let e = resolve_user("bob:staff", &r).unwrap_err().to_string();
        assert!(e.contains("/etc/group"), "{e}");

        std::fs::remove_file(r.join("etc/group")).unwrap();
        nix::unistd::mkfifo(
            &r.join("etc/group"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        let e = additional_gids(&c, &r, 1000).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");

        std::fs::remove_file(r.join("etc/group")).unwrap();
        std::fs::write(r.join("etc/group"), vec![b'#'; 2 << 20]).unwrap();
        let e = additional_gids(&c, &r, 1000).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn groups_from_image() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("etc")).unwrap();
        std::fs::write(
            t.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nbob:x:1000:1000::/h:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            t.path().join("etc/group"),
            "root:x:0:\nbob:x:1000:\nwheel:x:10:bob,amy\naudio:x:29:\n",
        )
        .unwrap();
        let mut c = Container::default();
        c.config.user = Some("bob".into());
        c.host_config.group_add = Some(vec!["audio".into(), "4242".into()]);
        assert_eq!(
            additional_gids(&c, t.path(), 1000).unwrap(),
            [1000, 10, 29, 4242]
        );
        c.config.user = Some("1000:1000".into());
        c.host_config.group_add = Some(vec!["nosuch".into()]);
        assert!(additional_gids(&c, t.path(), 1000).is_err());
    }

    #[test]
    fn docker_seccomp_profile_converts() {
        let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86"]},{"architecture":"SCMP_ARCH_AARCH64","subArchitectures":[]}],
            "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
                        {"names":["reboot"],"action":"SCMP_ACT_ALLOW","includes":{"caps":["CAP_SYS_BOOT"]}},
                        {"names":["chown"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_CHOWN"]}}]}"#;
        let s = seccomp_from_docker(p, &["CAP_CHOWN".to_string()]).unwrap();
        assert_eq!(s["defaultAction"], "SCMP_ACT_ALLOW");
        assert_eq!(s["syscalls"].as_array().unwrap().len(), 1);
        assert_eq!(s["syscalls"][0]["errnoRet"], 1);
        if std::env::consts::ARCH == "x86_64" {
            assert_eq!(
                s["architectures"],
                json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"])
            );
        }
        assert!(seccomp_from_docker("{not json", &[]).is_err());
    }
}
