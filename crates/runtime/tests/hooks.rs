//! OCI hooks at the spec's points, with the state on stdin.

mod common;

use common::*;
use serde_json::json;

#[test]
fn all_hooks_run_in_order_with_state() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "echo process >> /tmp/log"]);
    let log = b.path().join("hooks.log");
    let host_hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("read -r s; echo \"{name} $s\" >> {}", log.display())]});
    b.config["hooks"] = json!({
        "prestart": [host_hook("prestart")],
        "createRuntime": [host_hook("createRuntime")],
        "createContainer": [host_hook("createContainer")],
        "startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", "echo startContainer >> /tmp/log"]}],
        "poststart": [host_hook("poststart")],
        "poststop": [host_hook("poststop")]
    });
    b.write();
    let id = unique_id("hooks");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["start", &id]);
    assert!(wait_until(5000, || rt.status(&id) == "stopped"));
    rt.ok(&["delete", &id]);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let names: Vec<&str> = lines.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        names,
        [
            "prestart",
            "createRuntime",
            "createContainer",
            "poststart",
            "poststop"
        ],
        "{text}"
    );
    for (line, status) in lines
        .iter()
        .zip(["created", "created", "created", "running", "stopped"])
    {
        let state: serde_json::Value =
            serde_json::from_str(line.split_once(' ').unwrap().1).unwrap();
        assert_eq!(state["id"], id.as_str());
        assert_eq!(state["status"], status, "{line}");
        if status != "stopped" {
            assert_eq!(state["pid"], pid, "{line}");
        }
    }
    // startContainer ran inside the container, before the process.
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/log")).unwrap(),
        "startContainer\nprocess\n"
    );
}

#[test]
fn failing_create_hook_fails_create_and_cleans_up() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["hooks"] = json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "echo nope >&2; exit 1"]}]});
    b.write();
    let id = unique_id("hookfail");
    let out = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("createRuntime") && err.contains("nope"),
        "{err}"
    );
    assert!(!rt.root.path().join(&id).exists());
}

#[test]
fn hook_timeout_is_enforced() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["hooks"] =
        json!({"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]});
    b.write();
    let t = std::time::Instant::now();
    let out = rt.output(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("hooktime"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("timed out"));
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn failing_poststart_is_only_a_warning() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "10"]);
    b.config["hooks"] = json!({"poststart": [{"path": "/bin/false"}]});
    b.write();
    let id = unique_id("poststartfail");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = rt.output(&["start", &id]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning"));
    assert_eq!(rt.status(&id), "running");
}

#[test]
fn remaining_poststop_hooks_run_after_a_failure() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    let marker = b.path().join("second-ran");
    b.config["hooks"] = json!({"poststop": [
        {"path": "/bin/false"},
        {"path": "/bin/sh", "args": ["sh", "-c", format!("touch {}", marker.display())]}
    ]});
    let (code, _, err) = rt.run(&b, &unique_id("poststop2"));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning"), "{err}");
    assert!(marker.exists(), "second poststop hook did not run");
}
