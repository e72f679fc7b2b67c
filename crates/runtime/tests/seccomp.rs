//! seccomp filters from the config, seen from inside the container.

mod common;

use common::*;
use serde_json::json;

#[test]
fn errno_kill_and_argument_rules_apply() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "mkdir /tmp/x; echo mkdir=$?; (hostname x >/dev/null 2>&1); echo sethostname=$?; echo ok > /tmp/f && echo write=ok",
    ]);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["sethostname"], "action": "SCMP_ACT_KILL"},
            // An argument condition that never matches for this script: compiled, harmless.
            {"names": ["setns"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 1, "value": 0, "op": "SCMP_CMP_NE"}]}
        ]
    });
    let (code, out, err) = rt.run(&b, &unique_id("seccomp"));
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("Permission denied"),
        "mkdir not denied with EACCES: {err}"
    );
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "mkdir=1");
    // SIGSYS (31): 128 + 31.
    assert_eq!(l[1], "sethostname=159", "{out}");
    assert_eq!(l[2], "write=ok");
}

#[test]
fn filter_applies_to_exec_and_without_no_new_privileges() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sleep", "1000"]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
    });
    b.write();
    let id = unique_id("seccompexec");
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    let out = rt.output(&[
        "exec",
        &id,
        "sh",
        "-c",
        "mkdir /tmp/y; grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"));
    assert!(stdout.contains("NoNewPrivs:\t0"), "{stdout}");
    assert!(stdout.contains("Seccomp:\t2"), "{stdout}");
}
