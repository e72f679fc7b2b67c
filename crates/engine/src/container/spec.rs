//! The OCI runtime config for a container, with Docker's defaults: its
//! capability set, masked and read-only /proc paths, standard mounts, the
//! default seccomp profile, and resources from the HostConfig.

use std::path::Path;

use serde_json::{Value, json};

use super::model::{Container, HostConfig};
use crate::error::{EngineError, Result};

/// Docker's default capabilities.
pub use berth_runtime::seccomp_profile::DOCKER_DEFAULT_CAPS as DEFAULT_CAPS;

const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn cap_name(c: &str) -> String {
    let c = c.to_ascii_uppercase();
    if c.starts_with("CAP_") {
        c
    } else {
        format!("CAP_{c}")
    }
}

/// The capability set after `--privileged`, `--cap-add` and `--cap-drop`.
/// Every capability the daemon itself may pass on: "all" means the known
/// ones within berthd's bounding set (a host or outer container may lack
/// some, and asking for those would fail the container's capset).
fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    // ALL_CAPS is in capability-number order.
    ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bounding & (1u64 << i) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// `--cap-add`/`--cap-drop` names must be capabilities (or ALL).
fn check_caps(c: &Container) -> Result<()> {
    let hc = &c.host_config;
    for n in hc.cap_add.iter().chain(hc.cap_drop.iter()).flatten() {
        if !n.eq_ignore_ascii_case("all") && !ALL_CAPS.contains(&cap_name(n).as_str()) {
            return Err(crate::error::EngineError::InvalidArgument(format!(
                "unknown capability: \"{}\"",
                cap_name(n)
            )));
        }
    }
    Ok(())
}

pub fn capabilities(c: &Container) -> Vec<String> {
    let hc = &c.host_config;
    if hc.privileged.unwrap_or(false) {
        return all_caps();
    }
    let mut caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
    for d in hc.cap_drop.iter().flatten() {
        if d.eq_ignore_ascii_case("all") {
            caps.clear();
        } else {
            let d = cap_name(d);
            caps.retain(|c| *c != d);
        }
    }
    for a in hc.cap_add.iter().flatten() {
        let add: Vec<String> = if a.eq_ignore_ascii_case("all") {
            all_caps()
        } else {
            vec![cap_name(a)]
        };
        for a in add {
            if !caps.contains(&a) {
                caps.push(a);
            }
        }
    }
    caps
}

/// Memory, CPU, pids and block I/O limits from the HostConfig into the OCI
/// `linux.resources` (at create, and again on `update`).
pub(crate) fn limits(hc: &HostConfig, resources: &mut Value) -> Result<()> {
    let mem = hc.memory.unwrap_or(0);
    let reservation = hc.memory_reservation.unwrap_or(0);
    if mem > 0 && reservation > mem {
        return Err(EngineError::InvalidArgument(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        ));
    }
    if mem > 0 {
        let mut m = json!({"limit": mem});
        let swap = hc.memory_swap.unwrap_or(0);
        // Docker: unset swap means twice the memory; -1 unlimited.
        m["swap"] = json!(if swap == 0 { default_swap(mem)? } else { swap });
        resources["memory"] = m;
    }
    if reservation > 0 {
        if !resources["memory"].is_object() {
            resources["memory"] = json!({});
        }
        resources["memory"]["reservation"] = json!(reservation);
    }
    let mut cpu = serde_json::Map::new();
    if let Some(s) = hc.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    let quota = hc.cpu_quota.filter(|q| *q != 0);
    let period = hc.cpu_period.filter(|p| *p > 0);
    if let Some(n) = hc.nano_cpus.filter(|n| *n > 0) {
        if quota.is_some() || period.is_some() {
            return Err(EngineError::InvalidArgument(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set".into(),
            ));
        }
        cpu.insert("period".into(), json!(100_000));
        cpu.insert("quota".into(), json!(nano_cpus_quota(n)?));
    }
    if let Some(q) = quota {
        cpu.insert("quota".into(), json!(q));
    }
    if let Some(p) = period {
        cpu.insert("period".into(), json!(p));
    }
    if let Some(s) = hc.cpuset_cpus.as_ref().filter(|s| !s.is_empty()) {
        cpu.insert("cpus".into(), json!(s));
    }
    if let Some(s) = hc.cpuset_mems.as_ref().filter(|s| !s.is_empty()) {
        cpu.insert("mems".into(), json!(s));
    }
    if !cpu.is_empty() {
        resources["cpu"] = Value::Object(cpu);
    }
    if let Some(p) = hc.pids_limit.filter(|p| *p != 0) {
        resources["pids"] = json!({"limit": p});
    }
    super::sysinfo::resources(hc, resources)
}

/// Docker's swap limit when only memory is given: twice the memory.
pub(crate) fn default_swap(memory: i64) -> Result<i64> {
    memory
        .checked_mul(2)
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid value for Memory: {memory}")))
}

/// The CFS quota per 100 ms period for `NanoCpus` (10⁹ = one CPU).
pub(crate) fn nano_cpus_quota(n: i64) -> Result<i64> {
    n.checked_mul(100_000)
        .map(|q| q / 1_000_000_000)
        .ok_or_else(|| EngineError::InvalidArgument(format!("invalid value for NanoCpus: {n}")))
}

/// Everything the runtime needs: `args`, `env` and `(uid, gid)` are
/// resolved by the caller (they depend on the image and the rootfs).
pub fn generate(
    c: &Container,
    args: &[String],
    env: &[String],
    uid_gid: (u32, u32),
    cgroup_v2: bool,
    files: &Path,
) -> Result<Value> {
    let hc = &c.host_config;
    let privileged = hc.privileged.unwrap_or(false);
    check_caps(c)?;
    let caps = capabilities(c);
    let sec = hc.security_opt.clone().unwrap_or_default();
    let unconfined = privileged
        || sec
            .iter()
            .any(|s| s == "seccomp=unconfined" || s == "seccomp:unconfined");
    let nnp = sec.iter().any(|s| {
        s == "no-new-privileges" || s == "no-new-privileges=true" || s == "no-new-privileges:true"
    });
    let host_net = hc.network_mode.as_deref() == Some("host");

    let mut process = json!({
        "terminal": c.tty(),
        "user": {"uid": uid_gid.0, "gid": uid_gid.1},
        "args": args,
        "env": env,
        "cwd": c.config.working_dir.clone().filter(|w| !w.is_empty()).unwrap_or_else(|| "/".into()),
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": nnp,
    });
    if hc.oom_score_adj != 0 {
        process["oomScoreAdj"] = json!(hc.oom_score_adj);
    }

    let sysfs_opts = if privileged {
        json!(["nosuid", "noexec", "nodev", "rw"])
    } else {
        json!(["nosuid", "noexec", "nodev", "ro"])
    };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": sysfs_opts}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for (name, dst) in [
        ("resolv.conf", "/etc/resolv.conf"),
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
    ] {
        mounts.push(json!({"destination": dst, "type": "bind", "source": files.join(name), "options": ["rbind", "rprivate"]}));
    }
    mounts.extend(super::mounts::oci_mounts(c));

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !host_net {
        namespaces.push(json!({"type": "network"}));
    }
    if cgroup_v2 {
        namespaces.push(json!({"type": "cgroup"}));
    }

    let mut resources = json!({});
    resources["devices"] = if privileged {
        json!([{"allow": true, "access": "rwm"}])
    } else {
        let dev = |t: &str, maj: i64, min: Option<i64>| json!({"allow": true, "type": t, "major": maj, "minor": min, "access": "rwm"});
        json!([
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "access": "m"},
            {"allow": true, "type": "b", "access": "m"},
            dev("c", 1, Some(3)), dev("c", 1, Some(5)), dev("c", 1, Some(7)), dev("c", 1, Some(8)),
            dev("c", 1, Some(9)), dev("c", 5, Some(0)), dev("c", 5, Some(1)), dev("c", 5, Some(2)),
            dev("c", 136, None), dev("c", 10, Some(200))
        ])
    };
    limits(hc, &mut resources)?;
    // cgroup v2 has no swappiness: dropped there, as dockerd discards it.
    if let Some(s) = hc.memory_swappiness.filter(|_| !cgroup_v2) {
        if !resources["memory"].is_object() {
            resources["memory"] = json!({});
        }
        resources["memory"]["swappiness"] = json!(s);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": format!("/berth/{}", c.id),
    });
    if !privileged {
        linux["maskedPaths"] = json!(MASKED);
        linux["readonlyPaths"] = json!(READONLY);
    }
    if !unconfined {
        linux["seccomp"] = berth_runtime::seccomp_profile::default_profile_json(&caps);
    }

    Ok(json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": hc.readonly_rootfs.unwrap_or(false)},
        "hostname": c.config.hostname.clone().unwrap_or_default(),
        "mounts": mounts,
        "linux": linux,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_add_drop_and_privileged() {
        let mut c = Container::default();
        c.host_config.cap_drop = Some(vec!["net_raw".into()]);
        c.host_config.cap_add = Some(vec!["SYS_ADMIN".into()]);
        let caps = capabilities(&c);
        assert!(caps.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_NET_RAW".to_string()));
        c.host_config.privileged = Some(true);
        assert_eq!(capabilities(&c), all_caps());
        assert!(all_caps().len() > DEFAULT_CAPS.len());
        c.host_config.cap_add = Some(vec!["BOGUS".into()]);
        assert!(check_caps(&c).is_err());
    }

    #[test]
    fn resource_overflow_is_an_error() {
        let mut hc = HostConfig {
            memory: Some(i64::MAX),
            ..HostConfig::default()
        };
        let e = limits(&hc, &mut json!({})).unwrap_err();
        assert!(e.to_string().contains("Memory"), "{e}");
        // An explicit swap needs no doubling.
        hc.memory_swap = Some(-1);
        limits(&hc, &mut json!({})).unwrap();
        hc.nano_cpus = Some(i64::MAX);
        let e = limits(&hc, &mut json!({})).unwrap_err();
        assert!(e.to_string().contains("NanoCpus"), "{e}");
        assert_eq!(nano_cpus_quota(1_500_000_000).unwrap(), 150_000);
    }

    #[test]
    fn quota_period_reservation() {
        let mut hc = HostConfig {
            cpu_quota: Some(25_000),
            cpu_period: Some(50_000),
            memory_reservation: Some(32 << 20),
            ..HostConfig::default()
        };
        let mut r = json!({});
        limits(&hc, &mut r).unwrap();
        assert_eq!(r["cpu"], json!({"quota": 25_000, "period": 50_000}));
        assert_eq!(r["memory"], json!({"reservation": 32 << 20}));
        hc.memory = Some(16 << 20);
        assert!(limits(&hc, &mut json!({})).is_err());
        hc.memory = None;
        hc.nano_cpus = Some(500_000_000);
        let e = limits(&hc, &mut json!({})).unwrap_err();
        assert!(e.to_string().contains("Conflicting"), "{e}");
    }

    #[test]
    fn defaults_and_resources() {
        let mut c = Container {
            id: "abc".into(),
            ..Container::default()
        };
        c.host_config.memory = Some(64 << 20);
        c.host_config.nano_cpus = Some(1_500_000_000);
        c.host_config.security_opt = Some(vec!["seccomp=unconfined".into()]);
        c.host_config.network_mode = Some("host".into());
        let s = generate(&c, &["true".into()], &[], (0, 0), false, Path::new("/x")).unwrap();
        assert_eq!(s["linux"]["cgroupsPath"], "/berth/abc");
        assert_eq!(s["linux"]["resources"]["memory"]["swap"], 128 << 20);
        assert_eq!(s["linux"]["resources"]["cpu"]["quota"], 150_000);
        assert!(s["linux"]["seccomp"].is_null());
        assert!(s["linux"]["maskedPaths"].as_array().unwrap().len() > 5);
        let ns = s["linux"]["namespaces"].to_string();
        assert!(!ns.contains("network"));
        c.host_config.security_opt = None;
        let s = generate(&c, &["true".into()], &[], (0, 0), false, Path::new("/x")).unwrap();
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
    }
}
