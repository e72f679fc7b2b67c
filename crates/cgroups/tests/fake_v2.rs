//! cgroup v2 writes against a plain temp directory laid out like cgroup2
//! (no root needed). The directory is detected as v2 because it holds
//! `cgroup.controllers` and is no cgroup mount.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, CgroupManager, CgroupVersion, FreezerState, detect_version};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

const ALL: &str = "cpuset cpu io memory hugetlb pids";

const LEAF_FILES: &[&str] = &[
    "cgroup.procs",
    "cgroup.freeze",
    "cgroup.events",
    "memory.max",
    "memory.low",
    "memory.swap.max",
    "cpu.weight",
    "cpu.max",
    "cpu.max.burst",
    "cpu.idle",
    "cpuset.cpus",
    "cpuset.mems",
    "pids.max",
    "io.max",
    "hugetlb.2MB.max",
    "hugetlb.2MB.rsvd.max",
    "hugetlb.1GB.max",
    "memory.high",
];

/// `root` like a cgroup2 root, with `a` and the leaf `a/b` below it.
fn layout(root: &Path, io_weight_file: &str) -> PathBuf {
    for (dir, controllers) in [(root.to_path_buf(), ALL), (root.join("a"), ALL)] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), format!("{controllers}\n")).unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    }
    let leaf = root.join("a/b");
    fs::create_dir_all(&leaf).unwrap();
    fs::write(leaf.join("cgroup.controllers"), format!("{ALL}\n")).unwrap();
    for f in LEAF_FILES.iter().chain([&io_weight_file]) {
        fs::write(leaf.join(f), "").unwrap();
    }
    leaf
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap()
}

fn throttle(major: i64, minor: i64, rate: u64) -> oci_spec::runtime::LinuxThrottleDevice {
    LinuxThrottleDeviceBuilder::default()
        .major(major)
        .minor(minor)
        .rate(rate)
        .build()
        .unwrap()
}

fn full_resources() -> LinuxResources {
    LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(256 << 20)
                .reservation(128 << 20)
                .swap(512 << 20)
                .kernel(64 << 20) // ignored
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(1024u64)
                .quota(50_000)
                .period(100_000u64)
                .burst(1000u64)
                .idle(0)
                .cpus("0")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(64).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(500u16)
                .weight_device(vec![
                    LinuxWeightDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .weight(1000u16)
                        .build()
                        .unwrap(),
                ])
                .throttle_read_bps_device(vec![throttle(8, 0, 1_048_576)])
                .throttle_write_iops_device(vec![throttle(8, 0, 100), throttle(8, 16, 7)])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(4 << 21)
                .build()
                .unwrap(),
        ])
        .unified(HashMap::from([(
            "memory.high".to_string(),
            "200000000".to_string(),
        )]))
        .build()
        .unwrap()
}

#[test]
fn fake_root_is_detected_as_v2() {
    let tmp = tempfile::tempdir().unwrap();
    layout(tmp.path(), "io.weight");
    assert_eq!(detect_version(tmp.path()).unwrap(), CgroupVersion::V2);
    let empty = tempfile::tempdir().unwrap();
    assert!(detect_version(empty.path()).is_err());
}

#[test]
fn create_enables_controllers_in_ancestors_only() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    layout(root, "io.weight");
    // The parent lists only some controllers: only those are enabled below it.
    fs::write(root.join("a/cgroup.controllers"), "cpu memory pids\n").unwrap();
    let cg = Cgroup::open_at(root, Some(Path::new("/a/b/c")), "x").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V2);
    cg.create().unwrap();
    assert!(root.join("a/b/c").is_dir());
    assert_eq!(
        read(&root.join("cgroup.subtree_control")),
        "+cpuset +cpu +io +memory +hugetlb +pids"
    );
    assert_eq!(
        read(&root.join("a/cgroup.subtree_control")),
        "+cpu +memory +pids"
    );
    // a/b has no cgroup.controllers in this fake: nothing to enable there,
    // and the leaf c itself is never touched.
    assert!(!root.join("a/b/cgroup.subtree_control").exists());
    assert!(!root.join("a/b/c/cgroup.subtree_control").exists());

    // Already enabled controllers are not written again.
    fs::write(
        root.join("cgroup.subtree_control"),
        "cpuset cpu io memory hugetlb pids",
    )
    .unwrap();
    cg.create().unwrap();
    assert_eq!(
        read(&root.join("cgroup.subtree_control")),
        "cpuset cpu io memory hugetlb pids"
    );

    let h = cg.hierarchies();
    assert_eq!(h.len(), 1);
    assert!(h[0].unified);
    assert_eq!(h[0].options, "");
    assert_eq!(h[0].mount_point, root);
    assert_eq!(h[0].dir, root.join("a/b/c"));
}

#[test]
fn apply_writes_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    cg.create().unwrap();
    cg.apply(&full_resources()).unwrap();

    let expect = [
        ("memory.max", "268435456".to_string()),
        ("memory.low", "134217728".to_string()),
        ("memory.swap.max", (256u64 << 20).to_string()),
        ("cpu.weight", "39".to_string()),
        ("cpu.max", "50000 100000".to_string()),
        ("cpu.max.burst", "1000".to_string()),
        ("cpu.idle", "0".to_string()),
        ("cpuset.cpus", "0".to_string()),
        ("cpuset.mems", "0".to_string()),
        ("pids.max", "64".to_string()),
        // Each write replaces the fake file: the last device line stays.
        ("io.weight", "8:0 10000".to_string()),
        ("io.max", "8:16 wiops=7".to_string()),
        ("hugetlb.2MB.max", (4u64 << 21).to_string()),
        ("hugetlb.2MB.rsvd.max", (4u64 << 21).to_string()),
        ("hugetlb.1GB.max", String::new()),
        ("memory.high", "200000000".to_string()),
    ];
    for (file, want) in expect {
        assert_eq!(read(&leaf.join(file)), want, "{file}");
    }
}

#[test]
fn apply_sets_defaults_and_unlimited_values() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.bfq.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(LinuxMemoryBuilder::default().limit(-1).build().unwrap())
        .cpu(LinuxCpuBuilder::default().quota(-1).build().unwrap())
        .pids(LinuxPidsBuilder::default().limit(0).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read(&leaf.join("memory.max")), "max");
    assert_eq!(read(&leaf.join("memory.swap.max")), "max");
    assert_eq!(read(&leaf.join("cpu.max")), "max");
    assert_eq!(read(&leaf.join("pids.max")), "max");
    // BFQ takes the blkio weight unconverted.
    assert_eq!(read(&leaf.join("io.bfq.weight")), "default 300");
}

#[test]
fn io_weight_without_bfq_is_converted() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let r = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(1000u16)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read(&leaf.join("io.weight")), "default 10000");
}

#[test]
fn device_rules_are_unsupported_but_the_rest_is_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .unwrap();
    let allow_null = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(3)
        .access("rwm")
        .build()
        .unwrap();
    let mut r = full_resources();
    r.set_devices(Some(vec![deny_all, allow_null]));
    let err = cg.apply(&r).unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("eBPF"), "{err}");
    assert_eq!(read(&leaf.join("pids.max")), "64");
    assert_eq!(read(&leaf.join("memory.high")), "200000000");

    // Allow-all is the v2 default: fine.
    let allow_all = LinuxDeviceCgroupBuilder::default()
        .allow(true)
        .build()
        .unwrap();
    r.set_devices(Some(vec![allow_all]));
    cg.apply(&r).unwrap();
}

#[test]
fn v1_only_settings_are_unsupported_after_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    fs::write(leaf.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(1 << 20)
                .swappiness(10u64)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let err = cg.apply(&r).unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("memory.swappiness"), "{err}");
    assert_eq!(read(&leaf.join("memory.max")), "1048576");
    assert_eq!(read(&leaf.join("pids.max")), "5");
}

/// A controller that is not enabled is a refusal naming the setting and the
/// controller, not a warning (runc refuses too).
#[test]
fn abuse_missing_controllers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    fs::write(leaf.join("cgroup.controllers"), "cpu memory\n").unwrap();
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let r = LinuxResourcesBuilder::default()
        .pids(LinuxPidsBuilder::default().limit(5).build().unwrap())
        .build()
        .unwrap();
    let err = cg.apply(&r).unwrap_err();
    assert!(!err.is_unsupported(), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot set pids limit: the pids controller is not enabled for {}",
            leaf.display()
        )
    );
}

#[test]
fn bad_values_are_errors_not_unsupported() {
    let tmp = tempfile::tempdir().unwrap();
    layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let swap_below_limit = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(100)
                .swap(50)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    assert!(!cg.apply(&swap_below_limit).unwrap_err().is_unsupported());
    let bad_size = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("../x")
                .limit(1)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    assert!(!cg.apply(&bad_size).unwrap_err().is_unsupported());
    let bad_key = LinuxResourcesBuilder::default()
        .unified(HashMap::from([("../x".to_string(), "1".to_string())]))
        .build()
        .unwrap();
    assert!(cg.apply(&bad_key).is_err());
}

#[test]
fn pids_stats_and_freeze_read_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    fs::create_dir(leaf.join("sub")).unwrap();
    fs::write(leaf.join("cgroup.procs"), "10\n11\n").unwrap();
    fs::write(leaf.join("sub/cgroup.procs"), "12\n").unwrap();
    assert_eq!(cg.pids().unwrap(), [10, 11, 12]);

    fs::write(leaf.join("memory.current"), "4096\n").unwrap();
    fs::write(leaf.join("memory.max"), "max\n").unwrap();
    fs::write(leaf.join("memory.peak"), "8192\n").unwrap();
    fs::write(
        leaf.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n",
    )
    .unwrap();
    fs::write(
        leaf.join("cpu.stat"),
        "usage_usec 30\nuser_usec 20\nsystem_usec 10\n",
    )
    .unwrap();
    fs::write(leaf.join("pids.current"), "3\n").unwrap();
    fs::write(leaf.join("pids.max"), "64\n").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.memory_usage, 4096);
    assert_eq!(s.memory_limit, None);
    assert_eq!(s.memory_max_usage, Some(8192));
    assert_eq!(s.oom_kills, 2);
    assert_eq!(
        (s.cpu_usage_ns, s.cpu_user_ns, s.cpu_system_ns),
        (30_000, 20_000, 10_000)
    );
    assert_eq!((s.pids_current, s.pids_limit), (3, Some(64)));
    assert!(s.memory_stat.is_empty() && s.io_bytes.is_empty());

    // The detail `docker stats` shows: memory.stat, throttling, io.stat.
    fs::write(
        leaf.join("memory.stat"),
        "anon 1024\nfile 2048\ninactive_file 512\nbogus line here\n",
    )
    .unwrap();
    fs::write(
        leaf.join("cpu.stat"),
        "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 7\nnr_throttled 2\nthrottled_usec 5\n",
    )
    .unwrap();
    fs::write(
        leaf.join("io.stat"),
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0\n",
    )
    .unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.memory_stat.get("inactive_file"), Some(&512));
    assert_eq!(s.memory_stat.len(), 3);
    assert_eq!(
        (s.cpu_periods, s.cpu_throttled_periods, s.cpu_throttled_ns),
        (7, 2, 5000)
    );
    let io = |v: &[berth_cgroups::IoStat]| {
        v.iter()
            .map(|e| format!("{}:{} {} {}", e.major, e.minor, e.op, e.value))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        io(&s.io_bytes),
        [
            "8:0 read 4096",
            "8:0 write 8192",
            "253:1 read 1",
            "253:1 write 0"
        ]
    );
    assert_eq!(
        io(&s.io_ops),
        ["8:0 read 1", "8:0 write 2", "253:1 read 1", "253:1 write 0"]
    );
    assert!(s.cpu_percpu_ns.is_empty());

    // The fake kernel reports frozen at once.
    fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze(FreezerState::Frozen).unwrap();
    assert_eq!(read(&leaf.join("cgroup.freeze")), "1");
}

#[test]
fn path_rules_apply_to_the_hierarchy() {
    let tmp = tempfile::tempdir().unwrap();
    layout(tmp.path(), "io.weight");
    let cg = Cgroup::open_at(tmp.path(), None, "abc").unwrap();
    assert_eq!(cg.hierarchies()[0].dir, tmp.path().join("berth/abc"));
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("machine.slice:berth:abc")), "x").unwrap();
    assert_eq!(
        cg.hierarchies()[0].dir,
        tmp.path().join("machine.slice/berth-abc.scope")
    );
    assert!(Cgroup::open_at(tmp.path(), Some(Path::new("/a/../../etc")), "x").is_err());
    // Destroying a hierarchy root is refused.
    let root = Cgroup::open_at(tmp.path(), Some(Path::new("/")), "x").unwrap();
    assert!(root.destroy().is_err());
}

/// Docker sends `blockIO.weight: 0` for "not set"; writing it fails with ERANGE.
#[test]
fn zero_block_io_weight_means_unset() {
    let tmp = tempfile::tempdir().unwrap();
    let leaf = layout(tmp.path(), "io.bfq.weight");
    let cg = Cgroup::open_at(tmp.path(), Some(Path::new("/a/b")), "x").unwrap();
    let r = LinuxResourcesBuilder::default()
        .block_io(LinuxBlockIoBuilder::default().weight(0u16).build().unwrap())
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    assert_eq!(read(&leaf.join("io.bfq.weight")), "");
}
