//! Resource limits through cgroups, checked by their effect on real processes
//! (v1 here for real; v2 on this host's real cgroup2 hierarchy, remounted as
//! the only one inside a private mount namespace).

mod common;

use common::*;
use serde_json::json;

#[test]
fn memory_limit_oom_kills_the_container() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["tail", "/dev/zero"]);
    let limit = 32 * 1024 * 1024;
    b.config["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    let id = unique_id("oom");
    b.write();
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let dir = format!("/sys/fs/cgroup/memory/berth/{id}");
    assert_eq!(
        std::fs::read_to_string(format!("{dir}/memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        limit.to_string()
    );
    rt.ok(&["start", &id]);
    assert!(
        wait_until(20_000, || rt.status(&id) == "stopped"),
        "tail /dev/zero was not stopped by the memory limit"
    );
    let oom = std::fs::read_to_string(format!("{dir}/memory.oom_control")).unwrap();
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(kills >= 1, "no OOM kill recorded: {oom}");
    rt.ok(&["delete", &id]);
    assert!(!std::path::Path::new(&dir).exists());
}

#[test]
fn oom_kill_gives_exit_137_through_run() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["tail", "/dev/zero"]);
    let limit = 24 * 1024 * 1024;
    b.config["linux"]["resources"]["memory"] = json!({"limit": limit, "swap": limit});
    let (code, _, err) = rt.run(&b, &unique_id("oom137"));
    assert_eq!(code, 137, "{err}");
}

#[test]
fn pids_limit_stops_a_fork_bomb() {
    let rt = Runtime::new();
    // `read` is a builtin: it still works when no fork does.
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "(for i in $(seq 40); do sleep 2 & done); read m < /sys/fs/cgroup/pids/pids.max; echo max=$m",
    ]);
    b.config["linux"]["resources"]["pids"] = json!({"limit": 10});
    let id = unique_id("pids");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("can't fork") || err.contains("Resource temporarily unavailable"),
        "fork never failed: {err}"
    );
    assert_eq!(out.trim(), "max=10");
}

#[test]
fn cpu_memory_cpuset_settings_are_written_and_visible_inside() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpuset/cpuset.cpus /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/memory/memory.soft_limit_in_bytes; cat /proc/self/cgroup | grep ':cpu:'",
    ]);
    b.config["linux"]["resources"]["cpu"] =
        json!({"quota": 50000, "period": 100000, "shares": 512, "cpus": "0"});
    b.config["linux"]["resources"]["memory"] =
        json!({"limit": 64 * 1024 * 1024, "reservation": 32 * 1024 * 1024});
    let id = unique_id("cpu");
    let (code, out, err) = rt.run(&b, &id);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(
        &l[..6],
        &["50000", "100000", "512", "0", "67108864", "33554432"],
        "{out}"
    );
    // With a cgroup namespace the container sees itself at the root.
    assert_eq!(l[6], "1:cpu:/");
}

#[test]
fn device_rules_deny_access() {
    // /dev/net/tun (c 10:200): openable by root on this host, and not among
    // the devices every container gets.
    let (major, minor) = (10, 200);
    let script =
        format!("mknod /tmp/tun c {major} {minor} && (: < /tmp/tun) && echo READ; echo done");
    let attempt = |extra_rule: Option<serde_json::Value>| {
        let rt = Runtime::new();
        let mut b = Bundle::busybox(&["sh", "-c", &script]);
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_MKNOD"));
        }
        if let Some(rule) = extra_rule {
            b.config["linux"]["resources"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(rule);
        }
        let (code, out, err) = rt.run(&b, &unique_id("devdeny"));
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = attempt(None);
    assert!(
        !out.contains("READ"),
        "device opened despite deny-all: {out}"
    );
    // Control: the same read works once a rule allows it.
    let out = attempt(Some(
        json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": "r"}),
    ));
    assert!(out.contains("READ"), "allowed device not readable: {out}");
}

/// Runs the runtime where /sys/fs/cgroup is the host's real cgroup2 hierarchy
/// and nothing else: the layout of a pure v2 host.
fn run_on_v2(rt: &Runtime, b: &Bundle, id: &str) -> (i32, String, String) {
    run_in_private_mount_ns(
        rt,
        b,
        id,
        "for m in $(awk '$2 ~ \"^/sys/fs/cgroup/\" {print $2}' /proc/self/mounts | sort -r); do umount -l $m; done; \
         umount -l /sys/fs/cgroup; mount -t cgroup2 cgroup2 /sys/fs/cgroup",
    )
}

/// `run`s the bundle in a private mount namespace after the shell commands
/// `setup`, so the host's mounts stay untouched.
fn run_in_private_mount_ns(
    rt: &Runtime,
    b: &Bundle,
    id: &str,
    setup: &str,
) -> (i32, String, String) {
    b.write();
    let script = format!(
        "set -e; {setup}; exec {} --root {} run --bundle {} {}",
        RUNTIME,
        rt.root.path().display(),
        b.path().display(),
        id
    );
    let out = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn pure_cgroup_v2_layout_works() {
    let unified = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    assert!(
        unified.exists(),
        "this test needs the host's cgroup2 mount at /sys/fs/cgroup/unified"
    );
    let rt = Runtime::new();
    // The kernel keeps listing the (still active) v1 hierarchies in
    // /proc/self/cgroup; the unified entry is the one that matters.
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep '^0::' /proc/self/cgroup; grep ' /sys/fs/cgroup ' /proc/self/mountinfo | cut -d' ' -f9; cat /sys/fs/cgroup/hugetlb.2MB.max",
    ]);
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "2MB", "limit": 4194304}]);
    let id = unique_id("v2");
    let (code, out, err) = run_on_v2(&rt, &b, &id);
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l, vec!["0::/", "cgroup2", "4194304"], "{out}\n{err}");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/unified/berth/{id}")).exists(),
        "v2 cgroup left behind"
    );
}

#[test]
fn hybrid_hugetlb_goes_to_the_unified_hierarchy() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "cat /sys/fs/cgroup/unified/hugetlb.2MB.max"]);
    b.config["linux"]["resources"]["hugepageLimits"] =
        json!([{"pageSize": "2MB", "limit": 2097152}]);
    let (code, out, err) = rt.run(&b, &unique_id("hyb"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "2097152");
}

/// Docker always sends `blockIO.weight: 0` (unset); the kernel rejects a 0 write.
#[test]
fn zero_block_io_weight_from_docker_is_ignored() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["linux"]["resources"]["blockIO"] = json!({"weight": 0});
    b.config["linux"]["resources"]["cpu"] = json!({"shares": 0});
    let (code, _, err) = rt.run(&b, &unique_id("blkio0"));
    assert_eq!(code, 0, "{err}");
}

/// Whether a cgroup v1 hierarchy holding `controller` is mounted here.
fn v1_mounted(controller: &str) -> bool {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mountinfo.lines().any(|l| {
        let Some((_, post)) = l.split_once(" - ") else {
            return false;
        };
        let mut f = post.split(' ');
        f.next() == Some("cgroup")
            && f.nth(1)
                .is_some_and(|o| o.split(',').any(|o| o == controller))
    })
}

/// Runs a container asking for `resources`: either the host has what they
/// need and `file` (under the container's cgroup in `hierarchy`) reads
/// `want`, or the create is refused with `refusal` and leaves no state and
/// no cgroup behind.
fn limit_applied_or_refused(
    resources: serde_json::Value,
    supported: bool,
    hierarchy: &str,
    file: &str,
    want: &str,
    refusal: &str,
) {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "30"]);
    b.config["linux"]["resources"]
        .as_object_mut()
        .unwrap()
        .extend(resources.as_object().unwrap().clone());
    b.write();
    let id = unique_id("refuse");
    let out = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if supported {
        assert!(out.status.success(), "{err}");
        let path = format!("/sys/fs/cgroup/{hierarchy}/berth/{id}/{file}");
        let got = std::fs::read_to_string(&path).unwrap();
        assert!(got.trim().ends_with(want), "{path}: {got}");
        rt.ok(&["delete", "--force", &id]);
        return;
    }
    assert!(!out.status.success(), "created without the limit: {err}");
    assert!(err.contains(refusal), "{err}");
    let list = rt.ok(&["list", "-q"]);
    assert!(!list.lines().any(|l| l == id), "{list}");
    for d in cgroup_dirs(&format!("/berth/{id}")) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// runtime-tools' linux_cgroups_network: runc refuses a classID without
/// net_cls ("cannot set net_cls limit"), and so does berth-runtime.
#[test]
fn abuse_net_cls_class_id_applied_or_refused() {
    limit_applied_or_refused(
        json!({"network": {"classID": 1048577}}),
        v1_mounted("net_cls"),
        "net_cls",
        "net_cls.classid",
        "1048577",
        "cannot set network classID: the net_cls controller is not mounted",
    );
}

/// A blkio weight needs the BFQ (or CFQ) scheduler's weight file; runc
/// refuses it without ("openat2 …/blkio.bfq.weight: no such file").
#[test]
fn abuse_blkio_weight_applied_or_refused() {
    let blkio = std::path::Path::new("/sys/fs/cgroup/blkio");
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| blkio.join(f).exists());
    limit_applied_or_refused(
        json!({"blockIO": {"weight": 300}}),
        file.is_some(),
        "blkio",
        file.unwrap_or("blkio.weight"),
        "300",
        "cannot set blkio weight: neither blkio.weight nor blkio.bfq.weight in /sys/fs/cgroup/blkio/berth/",
    );
}

/// A huge page size the host does not have is refused naming the size.
#[test]
fn abuse_missing_hugepage_size_is_refused() {
    let sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !sizes.iter().any(|s| s == "hugepages-64kB"),
        "this host has 64kB huge pages: pick another size"
    );
    limit_applied_or_refused(
        json!({"hugepageLimits": [{"pageSize": "64KB", "limit": 1048576}]}),
        false,
        "",
        "",
        "",
        "cannot set hugepage limit for 64KB pages: no hugetlb.64KB.",
    );
}

/// A tmpfs mounted over the hybrid host's cgroup2 mount hides it: the runtime
/// must not take the tmpfs for cgroup2 (it failed every create with "Bad
/// file descriptor"). Done in a private mount namespace; the host is untouched.
#[test]
fn abuse_tmpfs_over_the_unified_mount_is_not_cgroup2() {
    let unified = std::path::Path::new("/sys/fs/cgroup/unified/cgroup.controllers");
    assert!(
        unified.exists(),
        "this test needs the host's cgroup2 mount at /sys/fs/cgroup/unified"
    );
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "grep -c '^0::' /proc/self/cgroup; echo ran"]);
    let id = unique_id("overmount");
    let (code, out, err) =
        run_in_private_mount_ns(&rt, &b, &id, "mount -t tmpfs tmpfs /sys/fs/cgroup/unified");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.ends_with("ran\n"), "{out}{err}");
    assert!(
        !std::path::Path::new(&format!("/sys/fs/cgroup/unified/berth/{id}")).exists(),
        "a unified cgroup was made although the mount was hidden"
    );
}
