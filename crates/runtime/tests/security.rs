//! Escape attempts from inside containers must fail.

mod common;

use common::*;
use serde_json::json;

fn sha256(path: &std::path::Path) -> String {
    let out = std::process::Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split(' ')
        .next()
        .unwrap()
        .to_string()
}

/// CVE-2019-5736: code in the container (here a startContainer hook, which
/// runs inside the container while the runtime's own image is its parent)
/// keeps a descriptor to /proc/<ppid>/exe and, once no runtime process runs
/// the binary any more, reopens it for writing to replace the runtime.
/// Returns what the attacker recorded.
fn attack_runtime_binary(extra_caps: &[&str]) -> String {
    require_root();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let copy = dir.path().join("berth-runtime");
    std::fs::copy(RUNTIME, &copy).unwrap();
    let before = sha256(&copy);
    let mut b = Bundle::busybox(&["sleep", "10"]);
    for cap in extra_caps {
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!(cap));
        }
    }
    // While the hook runs (in the foreground) its parent is the runtime's
    // image: grab it then; strike once the test says no runtime process is left.
    let attack = "if cat /proc/$PPID/exe >/dev/null 2>/tmp/write-err; then \
                    exec 3</proc/$PPID/exe; \
                    ( while [ ! -e /tmp/go ]; do sleep 0.05; done; \
                      printf PWNED 2>/tmp/write-err >> /proc/self/fd/3 && echo WROTE > /tmp/write-err; \
                      echo done > /tmp/attack-done ) >/dev/null 2>&1 & \
                  else echo done > /tmp/attack-done; fi";
    b.config["hooks"] =
        json!({"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", attack]}]});
    b.write();
    let root = tempfile::tempdir_in("/run").unwrap();
    let id = unique_id("cve");
    // stderr to a file, not a pipe: the created container keeps it open.
    let rt = |args: &[&str]| {
        let err = tempfile::NamedTempFile::new().unwrap();
        let status = std::process::Command::new(&copy)
            .arg("--root")
            .arg(root.path())
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(err.reopen().unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{args:?}: {}",
            std::fs::read_to_string(err.path()).unwrap()
        );
    };
    // Whatever happens below, the container goes away with the test.
    struct Cleanup<'a>(&'a std::path::Path, &'a std::path::Path, &'a str);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = std::process::Command::new(self.0)
                .arg("--root")
                .arg(self.1)
                .args(["delete", "--force", self.2])
                .output();
        }
    }
    let _cleanup = Cleanup(&copy, root.path(), &id);
    rt(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt(&["start", &id]);
    // No runtime process is left running the binary now.
    std::fs::write(b.rootfs().join("tmp/go"), b"").unwrap();
    let done = b.rootfs().join("tmp/attack-done");
    assert!(wait_until(10_000, || done.exists()), "attack did not run");
    let errs = std::fs::read_to_string(b.rootfs().join("tmp/write-err")).unwrap();
    assert!(
        !errs.contains("WROTE"),
        "the container rewrote the runtime binary"
    );
    assert_eq!(sha256(&copy), before, "runtime binary modified");
    errs
}

#[test]
fn runtime_binary_is_out_of_reach_of_a_default_container() {
    // Non-dumpable runtime: without CAP_SYS_PTRACE /proc/<pid>/exe can't be opened.
    let errs = attack_runtime_binary(&[]);
    assert!(errs.contains("Permission denied"), "{errs}");
}

#[test]
fn runtime_binary_is_read_only_for_a_container_that_can_ptrace() {
    // With CAP_SYS_PTRACE the exe opens, but it is a read-only image.
    let errs = attack_runtime_binary(&["CAP_SYS_PTRACE"]);
    assert!(
        errs.contains("Read-only file system") || errs.contains("Operation not permitted"),
        "{errs}"
    );
}

#[test]
fn escape_attempts_fail() {
    let rt = Runtime::new();
    let marker = format!("/var/tmp/berth-escape-{}", std::process::id());
    let script = format!(
        "echo x > {marker} 2>/dev/null && echo WROTE-HOST-PATH; \
         ls /proc | grep -qx 1 && [ $(ls /proc | grep -c '^[0-9]') -lt 5 ] && echo PIDS-ISOLATED; \
         mount -t tmpfs t /mnt 2>/dev/null && echo MOUNTED; \
         unshare -m true 2>/dev/null && echo UNSHARED; \
         insmod /nonexistent.ko 2>/dev/null; modprobe dummy 2>/dev/null && echo MODULE; \
         cat /proc/timer_list >/dev/null 2>&1 && [ -s /proc/timer_list ] && echo MASKED-READ; \
         echo 1 > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ; \
         kill -0 1 && echo SEES-OWN-INIT"
    );
    let b = Bundle::busybox(&["sh", "-c", &script]);
    let (code, out, err) = rt.run(&b, &unique_id("escape"));
    assert_eq!(code, 0, "{err}");
    assert!(
        !std::path::Path::new(&marker).exists(),
        "container wrote to a host path"
    );
    for bad in [
        "WROTE-HOST-PATH",
        "MOUNTED",
        "UNSHARED",
        "MODULE",
        "MASKED-READ",
        "SYSRQ",
    ] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    assert!(
        out.contains("PIDS-ISOLATED") && out.contains("SEES-OWN-INIT"),
        "{out}"
    );
}

#[test]
fn ptrace_of_a_host_process_fails() {
    let rt = Runtime::new();
    let mut host = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    // Without a pid namespace the host pid is visible; ptrace still needs CAP_SYS_PTRACE.
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        &format!(
            "ls /proc/{0}/ >/dev/null && echo VISIBLE; cat /proc/{0}/environ >/dev/null 2>&1 && echo ENVIRON-READ; cat /proc/{0}/mem >/dev/null 2>&1 && echo MEM-READ; true",
            host.id()
        ),
    ]);
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let (code, out, err) = rt.run(&b, &unique_id("ptrace"));
    let _ = host.kill();
    let _ = host.wait();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("VISIBLE"),
        "test setup: host pid not visible: {out}"
    );
    assert!(
        !out.contains("ENVIRON-READ") && !out.contains("MEM-READ"),
        "{out}"
    );
}

/// Under the default profile a syscall that needs a capability the profile
/// was not built for gets EPERM, even though the process holds the capability.
#[test]
fn default_seccomp_profile_denies_with_eperm() {
    let caps: Vec<String> = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let attempt = |profile_caps: &[String]| {
        let rt = Runtime::new();
        let mut b = Bundle::busybox(&[
            "sh",
            "-c",
            "unshare -u true && echo UNSHARE-OK; mkdir /tmp/d && echo MKDIR-OK; true",
        ]);
        for set in ["bounding", "effective", "permitted"] {
            b.config["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push(json!("CAP_SYS_ADMIN"));
        }
        b.config["linux"]["seccomp"] =
            berth_runtime::seccomp_profile::default_profile_json(profile_caps);
        rt.run(&b, &unique_id("seccompdefault"))
    };
    let (code, out, err) = attempt(&caps);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("MKDIR-OK"), "{out} {err}");
    assert!(
        !out.contains("UNSHARE-OK"),
        "unshare allowed by the default profile: {out}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    // Control: with CAP_SYS_ADMIN in the profile's view the same call works.
    let mut with_admin = caps.clone();
    with_admin.push("CAP_SYS_ADMIN".into());
    let (code, out, err) = attempt(&with_admin);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("UNSHARE-OK"), "{out} {err}");
}

#[test]
fn an_apparmor_profile_that_cannot_be_applied_is_an_error() {
    let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false);
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["process"]["apparmorProfile"] = json!("berth-test-no-such-profile");
    let (code, _, err) = rt.run(&b, &unique_id("apparmor"));
    // Either AppArmor is off (this CI host) or the profile does not exist: never run unconfined.
    assert_ne!(
        code, 0,
        "container ran although its AppArmor profile was not applied (AppArmor enabled: {enabled})"
    );
    assert!(
        err.contains("AppArmor") || err.contains("apparmor"),
        "{err}"
    );
}
