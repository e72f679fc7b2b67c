//! User namespaces: the container's root is an unprivileged uid outside.

mod common;

use common::*;
use serde_json::json;

const HOST_BASE: u32 = 200_000;

fn userns_bundle(args: &[&str]) -> Bundle {
    let mut b = Bundle::busybox(args);
    // The engine's job: the image files belong to the mapped range.
    let st = std::process::Command::new("chown")
        .args([
            "-R",
            "--no-dereference",
            &format!("{HOST_BASE}:{HOST_BASE}"),
        ])
        .arg(b.rootfs())
        .status()
        .unwrap();
    assert!(st.success());
    // The bundle dir itself must be reachable by the mapped root.
    std::fs::set_permissions(
        b.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let ns = b.config["linux"]["namespaces"].as_array_mut().unwrap();
    ns.push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    // sysfs can't be mounted without owning the network namespace's user ns... we do own it.
    b
}

#[test]
fn container_root_is_unprivileged_outside() {
    let rt = Runtime::new();
    let b = userns_bundle(&[
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; ls -ln /bin/busybox | awk '{print $3}'; touch /root-owned && echo CAN-WRITE-ROOTFS; echo x > /proc/sys/kernel/hostname 2>/dev/null || true; sleep 2",
    ]);
    b.write();
    let id = unique_id("userns");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["start", &id]);
    // Seen from the host the container's root is HOST_BASE.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == HOST_BASE.to_string()),
        "{uid_line}"
    );
    assert!(wait_until(10_000, || rt.status(&id) == "stopped"));
    rt.ok(&["delete", &id]);
    let out = std::fs::read_to_string(b.rootfs().join("root-owned"))
        .map(|_| ())
        .is_ok();
    assert!(out, "mapped root could not write its own rootfs");
}

#[test]
fn userns_container_output_and_devices() {
    let rt = Runtime::new();
    let b = userns_bundle(&[
        "sh",
        "-c",
        "id -u; awk '{print $1, $2, $3}' /proc/self/uid_map; stat -c %u /bin/busybox; echo hi > /dev/null && echo DEVNULL-OK; cat /proc/self/status | grep CapEff",
    ]);
    let (code, out, err) = rt.run(&b, &unique_id("userns2"));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "0");
    assert_eq!(l[1], format!("0 {HOST_BASE} 65536"));
    assert_eq!(l[2], "0", "rootfs files not owned by the container's root");
    assert_eq!(l[3], "DEVNULL-OK");
}

/// An unmodified bundle (files owned by host root) under a user namespace:
/// the runtime attaches the rootfs through an idmapped mount, so the
/// container's root owns its files; writes land as host root on disk.
#[test]
fn rootfs_owned_by_host_root_is_idmapped() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "stat -c %u /bin/busybox; touch /idmapped && stat -c %u /idmapped",
    ]);
    std::fs::set_permissions(
        b.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    b.config["linux"]["gidMappings"] =
        json!([{"containerID": 0, "hostID": HOST_BASE, "size": 65536}]);
    let (code, out, err) = rt.run(&b, &unique_id("idmap"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0\n0\n", "{err}");
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(b.rootfs().join("idmapped")).unwrap();
    assert_eq!(
        meta.uid(),
        0,
        "file created by the container's root is not host root's on disk"
    );
    // The idmapped mount went away with the container.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!host.contains(b.rootfs().to_str().unwrap()));
}
