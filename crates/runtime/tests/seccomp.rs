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

fn cached_filters(rt: &Runtime) -> Vec<std::path::PathBuf> {
    let dir = rt.root.path().join(".seccomp-cache");
    let mut v: Vec<_> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn compiled_filter_is_cached_reused_and_still_enforced() {
    use std::os::unix::fs::MetadataExt;
    let rt = Runtime::new();
    let deny_mkdir = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]
    });
    let run = |profile: &serde_json::Value, tag: &str| {
        let mut b = Bundle::busybox(&["sh", "-c", "mkdir /tmp/x; echo mkdir=$?"]);
        b.config["linux"]["seccomp"] = profile.clone();
        let (code, out, err) = rt.run(&b, &unique_id(tag));
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(run(&deny_mkdir, "sc1").trim(), "mkdir=1");
    let files = cached_filters(&rt);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].extension().is_some_and(|e| e == "bpf"));
    let first = std::fs::metadata(&files[0]).unwrap();
    assert!(first.len() > 0 && first.len().is_multiple_of(8));
    assert_eq!(first.mode() & 0o077, 0, "cache must be private to root");

    // Same profile: the cached program is loaded (file untouched) and enforced.
    assert_eq!(run(&deny_mkdir, "sc2").trim(), "mkdir=1");
    let again = std::fs::metadata(&files[0]).unwrap();
    assert_eq!(
        (first.ino(), first.mtime_nsec()),
        (again.ino(), again.mtime_nsec())
    );

    // A damaged entry is not trusted: recompiled, enforced, replaced.
    std::fs::write(&files[0], b"junk!").unwrap();
    assert_eq!(run(&deny_mkdir, "sc3").trim(), "mkdir=1");
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), first.len());

    // Another profile gets its own entry, and allows what it allows.
    let allow_all = json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["sethostname"], "action": "SCMP_ACT_ERRNO"}
    ]});
    assert_eq!(run(&allow_all, "sc4").trim(), "mkdir=0");
    assert_eq!(cached_filters(&rt).len(), 2);
}
