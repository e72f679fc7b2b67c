//! Root-only abuse cases of issue #13 for the daemon and its store: limits
//! the host cannot honour, store permissions, torn records, orphan blobs.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// dockerd's warning for `--blkio-weight` on a host without the weight file.
const NO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// Whether this host offers a block I/O weight (cgroup v1: the BFQ/CFQ file
/// in the blkio hierarchy's root; v2: the io controller).
fn host_has_blkio_weight() -> bool {
    let v1 = Path::new("/sys/fs/cgroup/blkio");
    if v1.is_dir() {
        return ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| v1.join(f).exists());
    }
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "io")
}

/// `--blkio-weight` where the host cannot apply it: berthd, as dockerd,
/// drops it with dockerd's warning in the create response and runs the
/// container; where it can, the weight reaches the container's cgroup.
#[test]
fn abuse_blkio_weight_is_dropped_with_dockerds_warning_or_applied() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("bw");
    let body = json!({"Image": IMAGE, "Cmd": ["sleep", "30"], "HostConfig": {"BlkioWeight": 300}});
    let (code, resp) = d.http_json(
        "POST",
        &format!("/containers/create?name={name}"),
        &body.to_string(),
    );
    assert_eq!(code, 201, "{resp}");
    let v: Value = serde_json::from_str(&resp).unwrap();
    d.ok(&["start", &name]);
    if host_has_blkio_weight() {
        assert_eq!(v["Warnings"], json!([]), "{resp}");
        let id = v["Id"].as_str().unwrap();
        let dir = Path::new("/sys/fs/cgroup/blkio/berth").join(id);
        let weight = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .unwrap_or_default();
        assert!(weight.trim().ends_with("300"), "{weight}");
    } else {
        assert_eq!(v["Warnings"], json!([NO_WEIGHT]), "{resp}");
        let hc = d.ok(&["inspect", "-f", "{{.HostConfig.BlkioWeight}}", &name]);
        assert_eq!(hc.trim(), "0");
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", &name]).trim(),
        "true"
    );
    // Through the docker CLI, which prints the warning as it does for dockerd.
    let o = d.docker(&["run", "--rm", "--blkio-weight", "300", IMAGE, "true"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stderr.contains(NO_WEIGHT),
        !host_has_blkio_weight(),
        "{}",
        o.stderr
    );
    // Out of range is refused where a weight is supported; dockerd drops it
    // first where none is.
    let o = d.docker(&["create", "--blkio-weight", "5", IMAGE, "true"]);
    if host_has_blkio_weight() {
        assert_ne!(o.code, 0);
        assert!(
            o.stderr
                .contains("Range of blkio weight is from 10 to 1000"),
            "{}",
            o.stderr
        );
    } else {
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    d.finish();
}
