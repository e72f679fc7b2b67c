//! Root-only: the shim drives other runc-compatible runtimes by path.

mod common;

use std::path::Path;
use std::time::Duration;

use berth_shim::Request;
use common::*;
use serde_json::json;

/// Exit code + log, an attached exec, a tty exec, then a clean exit.
fn lifecycle(t: &mut ShimUnderTest) {
    let mut c = t.client();
    assert_eq!(c.state().unwrap().status, "running");
    let user = json!({"uid": 0, "gid": 0});
    let mut a = t
        .client()
        .into_stream(&Request::Exec {
            id: "x".into(),
            process: json!({"args": ["sh", "-c", "echo via-exec; exit 6"], "cwd": "/",
                "env": ["PATH=/bin"], "user": user}),
            tty: false,
            stdin: false,
            attach: true,
        })
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    assert_eq!(a.read_frame().unwrap(), Some((1, b"via-exec\n".to_vec())));
    assert_eq!(c.wait(Some("x")).unwrap().exit_code, 6);
    let mut a = t
        .client()
        .into_stream(&Request::Exec {
            id: "tty".into(),
            process: json!({"args": ["sh", "-c", "stty size; exit 3"], "cwd": "/",
                "env": ["PATH=/bin"], "user": user, "consoleSize": {"height": 21, "width": 77}}),
            tty: true,
            stdin: false,
            attach: true,
        })
        .unwrap();
    assert!(a.tty);
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = a.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(c.wait(Some("tty")).unwrap().exit_code, 3);
    assert!(!seen.is_empty(), "no tty exec output");
    std::fs::write(t.bundle.path().join("rootfs/stop"), b"").unwrap();
    assert_eq!(c.wait(None).unwrap().exit_code, 3);
    let logged: Vec<_> = t.log_entries().iter().map(|e| e["log"].clone()).collect();
    assert_eq!(logged, [json!("up\n")]);
    drop(c);
    t.finish_and_check_clean();
}

fn shim_for(runtime: &str, name: &str) -> ShimUnderTest {
    let mut t = ShimUnderTest::new(
        name,
        &[
            "sh",
            "-c",
            "echo up; while [ ! -e /stop ]; do sleep 0.05; done; exit 3",
        ],
        false,
    );
    t.opts.runtime = Some(runtime.into());
    t
}

#[test]
fn runc() {
    if !Path::new("/usr/sbin/runc").exists() {
        println!("skipped: /usr/sbin/runc not installed");
        return;
    }
    let mut t = shim_for("/usr/sbin/runc", "runc");
    t.launch();
    lifecycle(&mut t);
}

#[test]
fn default_runtime_is_berth_runtime_next_to_the_shim() {
    let mut t = shim_for("unused", "berthrt");
    berth_runtime(); // built, next to the shim, where the shim looks by default
    t.opts.runtime = None;
    t.launch();
    lifecycle(&mut t);
}

/// crun refuses the hybrid layout's /sys/fs/cgroup/unified: the shim runs in
/// a private mount namespace without it (as bench/runtime does).
#[test]
fn crun_in_private_mount_namespace() {
    if !Path::new("/usr/bin/crun").exists() {
        println!("skipped: /usr/bin/crun not installed");
        return;
    }
    let mut t = shim_for("/usr/bin/crun", "crun");
    let mut args: Vec<std::ffi::OsString> = [
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "umount /sys/fs/cgroup/unified 2>/dev/null; exec \"$0\" \"$@\"",
        SHIM,
    ]
    .map(Into::into)
    .to_vec();
    args.extend(t.opts.to_args());
    let started = berth_shim::daemon::launch_with(Path::new("unshare"), args)
        .unwrap_or_else(|e| panic!("shim with crun: {e}"));
    t.started = Some(started);
    lifecycle(&mut t);
}
