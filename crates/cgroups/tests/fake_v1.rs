//! cgroup v1 logic against temp directories laid out like a hybrid host's
//! hierarchies, described by a made-up mountinfo (no root needed).

use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::v1::V1Cgroup;
use berth_cgroups::{CgroupManager, CgroupVersion};
use oci_spec::runtime::{
    LinuxBlockIoBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxDeviceType,
    LinuxHugepageLimitBuilder, LinuxMemoryBuilder, LinuxNetworkBuilder, LinuxPidsBuilder,
    LinuxResourcesBuilder, LinuxThrottleDeviceBuilder,
};

const V1: &[(&str, &str)] = &[
    ("cpu", "rw,cpu"),
    ("cpuacct", "rw,cpuacct"),
    ("cpuset", "rw,cpuset"),
    ("memory", "rw,memory"),
    ("devices", "rw,devices"),
    ("freezer", "rw,freezer"),
    ("blkio", "rw,blkio"),
    ("pids", "rw,pids"),
    ("systemd", "rw,xattr,name=systemd"),
];

const FILES: &[(&str, &[&str])] = &[
    (
        "cpu",
        &["cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"],
    ),
    ("cpuset", &["cpuset.cpus", "cpuset.mems"]),
    (
        "memory",
        &[
            "memory.limit_in_bytes",
            "memory.memsw.limit_in_bytes",
            "memory.soft_limit_in_bytes",
            "memory.swappiness",
            "memory.oom_control",
        ],
    ),
    ("devices", &["devices.allow", "devices.deny"]),
    ("freezer", &["freezer.state"]),
    (
        "blkio",
        &["blkio.bfq.weight", "blkio.throttle.read_bps_device"],
    ),
    ("pids", &["pids.max"]),
    ("unified", &["hugetlb.2MB.max"]),
];

struct Host {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    mountinfo: String,
}

/// Hierarchies under a temp root, with the cgroup `rel` (and its parents)
/// already holding the files the kernel would show.
fn host(rel: &str) -> Host {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let mut mountinfo = String::from("20 1 0:1 / / rw - ext4 /dev/vda rw\n");
    for (i, (name, opts)) in V1.iter().enumerate() {
        mountinfo.push_str(&format!(
            "{} 31 0:{} / {} rw,relatime - cgroup cgroup {opts}\n",
            32 + i,
            29 + i,
            root.join(name).display()
        ));
    }
    mountinfo.push_str(&format!(
        "41 31 0:38 / {} rw,relatime - cgroup2 cgroup2 rw\n",
        root.join("unified").display()
    ));
    let names = V1.iter().map(|(n, _)| *n).chain(["unified"]);
    for name in names {
        let top = root.join(name);
        let leaf = top.join(rel);
        fs::create_dir_all(&leaf).unwrap();
        let mut dir = leaf.as_path();
        while dir.starts_with(&top) {
            fs::write(dir.join("cgroup.procs"), "").unwrap();
            dir = dir.parent().unwrap();
        }
        for (_, files) in FILES.iter().filter(|(n, _)| *n == name) {
            for f in *files {
                fs::write(leaf.join(f), "").unwrap();
            }
        }
    }
    fs::write(root.join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::write(root.join("cpuset/cpuset.mems"), "0\n").unwrap();
    for dir in [root.join("unified"), root.join("unified").join(rel)] {
        fs::write(dir.join("cgroup.controllers"), "hugetlb\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    }
    Host {
        _tmp: tmp,
        root,
        mountinfo,
    }
}

fn read(p: PathBuf) -> String {
    fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn create_fills_cpuset_and_enables_hugetlb_in_unified() {
    let h = host("x/y");
    // Parent x has empty cpuset files too.
    for f in ["cpuset.cpus", "cpuset.mems"] {
        fs::write(h.root.join("cpuset/x").join(f), "").unwrap();
    }
    let cg = V1Cgroup::from_proc(&h.root, &h.mountinfo, "", Some(Path::new("/x/y")), "id").unwrap();
    assert_eq!(cg.version(), CgroupVersion::V1);
    cg.create().unwrap();
    for dir in ["cpuset/x", "cpuset/x/y"] {
        assert_eq!(read(h.root.join(dir).join("cpuset.cpus")), "0-1", "{dir}");
        assert_eq!(read(h.root.join(dir).join("cpuset.mems")), "0", "{dir}");
    }
    assert_eq!(
        read(h.root.join("unified/cgroup.subtree_control")),
        "+hugetlb"
    );

    let hier = cg.hierarchies();
    assert_eq!(hier.len(), V1.len() + 1);
    let systemd = hier.iter().find(|x| x.options == "name=systemd").unwrap();
    assert_eq!(systemd.dir, h.root.join("systemd/x/y"));
    let unified = hier.iter().find(|x| x.unified).unwrap();
    assert_eq!(unified.options, "");
    assert_eq!(unified.dir, h.root.join("unified/x/y"));
    assert_eq!(
        hier.iter()
            .find(|x| x.options == "memory")
            .unwrap()
            .mount_point,
        h.root.join("memory")
    );

    cg.add_process(4242).unwrap();
    for name in V1.iter().map(|(n, _)| *n).chain(["unified"]) {
        assert_eq!(
            read(h.root.join(name).join("x/y/cgroup.procs")),
            "4242",
            "{name}"
        );
    }
    assert_eq!(cg.pids().unwrap(), [4242]);
}

#[test]
fn apply_writes_every_file() {
    let h = host("c");
    let cg = V1Cgroup::from_proc(&h.root, &h.mountinfo, "", Some(Path::new("/c")), "id").unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .limit(64 << 20)
                .swap(128 << 20)
                .reservation(32 << 20)
                .swappiness(0u64)
                .disable_oom_killer(true)
                .build()
                .unwrap(),
        )
        .cpu(
            LinuxCpuBuilder::default()
                .shares(512u64)
                .quota(20_000)
                .period(100_000u64)
                .cpus("1")
                .mems("0")
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(-1).build().unwrap())
        .block_io(
            LinuxBlockIoBuilder::default()
                .weight(300u16)
                .throttle_read_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .rate(1000u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("2MB")
                .limit(2 << 21)
                .build()
                .unwrap(),
        ])
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(LinuxDeviceType::C)
                .major(1)
                .minor(3)
                .access("rwm")
                .build()
                .unwrap(),
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    cg.apply(&r).unwrap();
    let expect = [
        ("memory/c/memory.limit_in_bytes", "67108864"),
        ("memory/c/memory.memsw.limit_in_bytes", "134217728"),
        ("memory/c/memory.soft_limit_in_bytes", "33554432"),
        ("memory/c/memory.swappiness", "0"),
        ("memory/c/memory.oom_control", "1"),
        ("cpu/c/cpu.shares", "512"),
        ("cpu/c/cpu.cfs_quota_us", "20000"),
        ("cpu/c/cpu.cfs_period_us", "100000"),
        ("cpuset/c/cpuset.cpus", "1"),
        ("cpuset/c/cpuset.mems", "0"),
        ("pids/c/pids.max", "max"),
        // No blkio.weight: the BFQ file takes the weight.
        ("blkio/c/blkio.bfq.weight", "300"),
        ("blkio/c/blkio.throttle.read_bps_device", "8:0 1000"),
        // No v1 hugetlb hierarchy: the unified one takes the limit.
        ("unified/c/hugetlb.2MB.max", "4194304"),
        ("devices/c/devices.allow", "c 1:3 rwm"),
        ("devices/c/devices.deny", "a *:* rwm"),
    ];
    for (file, want) in expect {
        assert_eq!(read(h.root.join(file)), want, "{file}");
    }
}

/// runc refuses a limit whose controller is missing; so does Berth, naming
/// the setting and the controller (runtime-tools' net_cls/hugetlb cases).
#[test]
fn abuse_missing_controllers_are_refused_naming_them() {
    let h = host("c");
    let cg = V1Cgroup::from_proc(&h.root, &h.mountinfo, "", Some(Path::new("/c")), "id").unwrap();
    let class_id = LinuxResourcesBuilder::default()
        .network(
            LinuxNetworkBuilder::default()
                .class_id(7u32)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let err = cg.apply(&class_id).unwrap_err();
    assert!(!err.is_unsupported(), "{err}");
    assert_eq!(
        err.to_string(),
        "cannot set network classID: the net_cls controller is not mounted"
    );
    let unified = LinuxResourcesBuilder::default()
        .unified(
            [("memory.high".to_string(), "1".to_string())]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        )
        .build()
        .unwrap();
    let err = cg.apply(&unified).unwrap_err();
    assert!(!err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("cgroup v1 host"), "{err}");
    // A huge page size the host lacks names the size and the file.
    let huge = LinuxResourcesBuilder::default()
        .hugepage_limits(vec![
            LinuxHugepageLimitBuilder::default()
                .page_size("64KB")
                .limit(1 << 20)
                .build()
                .unwrap(),
        ])
        .build()
        .unwrap();
    let err = cg.apply(&huge).unwrap_err().to_string();
    assert!(
        err.starts_with("cannot set hugepage limit for 64KB pages: no hugetlb.64KB.max in "),
        "{err}"
    );
}

/// A blkio weight without a weight file (no BFQ/CFQ) is refused; the throttle
/// files, which every scheduler has, still work.
#[test]
fn abuse_blkio_weight_without_a_weight_file_is_refused() {
    let h = host("c");
    fs::remove_file(h.root.join("blkio/c/blkio.bfq.weight")).unwrap();
    let cg = V1Cgroup::from_proc(&h.root, &h.mountinfo, "", Some(Path::new("/c")), "id").unwrap();
    let weight = |w: u16| {
        LinuxResourcesBuilder::default()
            .block_io(LinuxBlockIoBuilder::default().weight(w).build().unwrap())
            .build()
            .unwrap()
    };
    let err = cg.apply(&weight(300)).unwrap_err();
    assert!(!err.is_unsupported(), "{err}");
    let msg = err.to_string();
    assert!(
        msg.starts_with("cannot set blkio weight: neither blkio.weight nor blkio.bfq.weight in ")
            && msg.contains("BFQ"),
        "{msg}"
    );
    // Docker's "unset" weight 0 asks for nothing.
    cg.apply(&weight(0)).unwrap();
    let throttle = LinuxResourcesBuilder::default()
        .block_io(
            LinuxBlockIoBuilder::default()
                .throttle_read_bps_device(vec![
                    LinuxThrottleDeviceBuilder::default()
                        .major(8)
                        .minor(0)
                        .rate(1000u64)
                        .build()
                        .unwrap(),
                ])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    cg.apply(&throttle).unwrap();
    assert_eq!(
        read(h.root.join("blkio/c/blkio.throttle.read_bps_device")),
        "8:0 1000"
    );
}

/// kernelTCP is skipped with a warning where its file is missing (runc
/// ignores it everywhere); the rest is written.
#[test]
fn kernel_tcp_without_its_file_is_unsupported_after_the_rest() {
    let h = host("c");
    let cg = V1Cgroup::from_proc(&h.root, &h.mountinfo, "", Some(Path::new("/c")), "id").unwrap();
    let r = LinuxResourcesBuilder::default()
        .memory(
            LinuxMemoryBuilder::default()
                .kernel_tcp(1 << 20)
                .build()
                .unwrap(),
        )
        .pids(LinuxPidsBuilder::default().limit(9).build().unwrap())
        .build()
        .unwrap();
    let err = cg.apply(&r).unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(err.to_string().contains("kernelTCP"), "{err}");
    assert_eq!(read(h.root.join("pids/c/pids.max")), "9");
}

#[test]
fn relative_paths_start_at_the_callers_cgroup_in_each_hierarchy() {
    let h = host("own/rel");
    let proc_cgroup = "4:memory:/own\n9:name=systemd:/own\n1:cpu:/\n0::/own\n";
    let cg = V1Cgroup::from_proc(
        &h.root,
        &h.mountinfo,
        proc_cgroup,
        Some(Path::new("rel")),
        "id",
    )
    .unwrap();
    let dirs: Vec<(String, PathBuf)> = cg
        .hierarchies()
        .into_iter()
        .map(|x| (x.options, x.dir))
        .collect();
    let dir = |o: &str| dirs.iter().find(|(opt, _)| opt == o).unwrap().1.clone();
    assert_eq!(dir("memory"), h.root.join("memory/own/rel"));
    assert_eq!(dir("name=systemd"), h.root.join("systemd/own/rel"));
    assert_eq!(dir("cpu"), h.root.join("cpu/rel"));
    assert_eq!(dir(""), h.root.join("unified/own/rel"));
}

#[test]
fn no_hierarchy_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(V1Cgroup::from_proc(tmp.path(), "", "", None, "id").is_err());
}
