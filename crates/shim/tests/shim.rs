//! Root-only: the shim with berth-runtime on busybox bundles.

mod common;

use std::time::Duration;

use berth_shim::Request;
use common::*;
use serde_json::json;

#[test]
fn exit_code_and_json_log_then_clean_exit() {
    let mut t = ShimUnderTest::new(
        "exit",
        &["sh", "-c", "echo out; echo err >&2; exit 3"],
        false,
    );
    t.launch();
    let st = t.client().wait(None).unwrap();
    assert_eq!(st.exit_code, 3);
    assert!(!st.oom_killed);
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.opts.exit_path()).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 3);
    assert_eq!(exit["exited_at"], st.exited_at);
    let mut log: Vec<(String, String)> = t
        .log_entries()
        .iter()
        .map(|e| {
            assert!(e["time"].as_str().unwrap().ends_with('Z'));
            (
                e["log"].as_str().unwrap().into(),
                e["stream"].as_str().unwrap().into(),
            )
        })
        .collect();
    log.sort();
    assert_eq!(
        log,
        [
            ("err\n".to_string(), "stderr".to_string()),
            ("out\n".into(), "stdout".into())
        ]
    );
    let state = t.client().state().unwrap();
    assert_eq!(state.status, "stopped");
    assert_eq!(state.exit.unwrap().exit_code, 3);
    t.finish_and_check_clean();
}

#[test]
fn attach_stdin_echoes_through_cat() {
    let mut t = ShimUnderTest::new("cat", &["cat"], false);
    t.opts.stdin = true;
    t.opts.stdin_once = true;
    t.launch();
    let mut a = t
        .client()
        .into_stream(&Request::Attach {
            stdin: true,
            stdout: true,
            stderr: true,
            exec_id: None,
        })
        .unwrap();
    assert!(!a.tty);
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    a.send(b"hello shim\n").unwrap();
    let (stream, data) = a.read_frame().unwrap().expect("a frame");
    assert_eq!((stream, data.as_slice()), (1, &b"hello shim\n"[..]));
    // EOF on our side closes cat's stdin (--stdin-once): cat exits 0 and
    // the shim ends the stream.
    a.close_stdin().unwrap();
    assert!(a.read_frame().unwrap().is_none());
    assert_eq!(t.client().wait(None).unwrap().exit_code, 0);
    assert_eq!(t.log_entries()[0]["log"], "hello shim\n");
    t.finish_and_check_clean();
}

#[test]
fn tty_shell_attach_and_resize() {
    let mut t = ShimUnderTest::new("tty", &["sh"], true);
    t.opts.stdin = true;
    t.launch();
    let mut c = t.client();
    c.resize(123, 45, None).unwrap();
    let mut a = t
        .client()
        .into_stream(&Request::Attach {
            stdin: true,
            stdout: true,
            stderr: true,
            exec_id: None,
        })
        .unwrap();
    assert!(a.tty);
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    a.send(b"echo mark-$((6*7)); stty size\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("45 123") {
        let n = a.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&seen).contains("mark-42"));
    a.send(b"exit 7\n").unwrap();
    assert_eq!(c.wait(None).unwrap().exit_code, 7);
    let logged: String = t
        .log_entries()
        .iter()
        .map(|e| e["log"].as_str().unwrap().to_string())
        .collect();
    assert!(logged.contains("mark-42"), "tty output logged: {logged}");
    t.finish_and_check_clean();
}

#[test]
fn exec_with_exit_code_and_output() {
    let mut t = ShimUnderTest::new("exec", &["sleep", "600"], false);
    t.launch();
    let process = json!({"args": ["sh", "-c", "echo from-exec; echo e >&2; exit 4"], "cwd": "/",
        "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}});
    let mut a = t
        .client()
        .into_stream(&Request::Exec {
            id: "e1".into(),
            process: process.clone(),
            tty: false,
            stdin: false,
            attach: true,
        })
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = a.read_frame().unwrap() {
        frames.push(f);
    }
    frames.sort();
    assert_eq!(frames, [(1, b"from-exec\n".to_vec()), (2, b"e\n".to_vec())]);
    let mut c = t.client();
    assert_eq!(c.wait(Some("e1")).unwrap().exit_code, 4);
    // A detached exec, reported by wait alone; exec output is not logged.
    c.exec(
        "e2",
        json!({"args": ["sh", "-c", "exit 9"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
        false,
        false,
    )
    .unwrap();
    assert_eq!(c.wait(Some("e2")).unwrap().exit_code, 9);
    assert!(
        c.exec("e2", process, false, false).is_err(),
        "duplicate exec id"
    );
    assert!(t.log_entries().is_empty());
    assert_eq!(c.state().unwrap().status, "running");
    c.kill(libc::SIGKILL, false).unwrap();
    assert_eq!(c.wait(None).unwrap().exit_code, 137);
    t.finish_and_check_clean();
}

#[test]
fn log_rotation_with_tiny_max_size() {
    let mut t = ShimUnderTest::new(
        "rotate",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
        ],
        false,
    );
    t.opts.log_max_size = 1000;
    t.opts.log_max_files = 3;
    t.launch();
    assert_eq!(t.client().wait(None).unwrap().exit_code, 0);
    let log = t.opts.log_path.clone().unwrap();
    let with = |n: u32| std::path::PathBuf::from(format!("{}.{n}", log.display()));
    for p in [log.clone(), with(1), with(2)] {
        let len = std::fs::metadata(&p).unwrap().len();
        assert!(len > 0 && len <= 1000, "{} is {len} bytes", p.display());
    }
    assert!(!with(3).exists());
    let last = read_log(&log);
    assert_eq!(last.last().unwrap()["log"], "line-199\n");
    t.finish_and_check_clean();
}

#[test]
fn start_on_request_and_create_failure_reported() {
    let mut t = ShimUnderTest::new("startreq", &["sh", "-c", "echo started; exit 0"], false);
    t.opts.start = false;
    t.launch();
    let mut c = t.client();
    assert_eq!(c.state().unwrap().status, "created");
    c.start().unwrap();
    assert!(c.start().is_err(), "second start is refused");
    assert_eq!(c.wait(None).unwrap().exit_code, 0);
    assert_eq!(t.log_entries()[0]["log"], "started\n");
    t.finish_and_check_clean();

    let mut bad = ShimUnderTest::new("bad", &["/no/such/binary"], false);
    let err = berth_shim::launch(std::path::Path::new(SHIM), &bad.opts).unwrap_err();
    assert!(
        err.to_string().contains("no/such/binary") || err.to_string().contains("create"),
        "{err}"
    );
    bad.started = None;
    assert!(
        !bad.opts.socket_path().exists(),
        "no socket after a failed create"
    );
}

#[test]
fn exec_stdin_is_closed_at_client_eof() {
    let mut t = ShimUnderTest::new("execin", &["sleep", "600"], false);
    t.launch();
    let mut a = t
        .client()
        .into_stream(&Request::Exec {
            id: "cat".into(),
            process: json!({"args": ["cat"], "cwd": "/", "user": {"uid": 0, "gid": 0}}),
            tty: false,
            stdin: true,
            attach: true,
        })
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    a.send(b"through exec\n").unwrap();
    a.close_stdin().unwrap();
    assert_eq!(
        a.read_frame().unwrap(),
        Some((1, b"through exec\n".to_vec()))
    );
    assert!(a.read_frame().unwrap().is_none());
    let mut c = t.client();
    assert_eq!(c.wait(Some("cat")).unwrap().exit_code, 0);
    c.kill(libc::SIGKILL, true).unwrap();
    assert_eq!(c.wait(None).unwrap().exit_code, 137);
    t.finish_and_check_clean();
}

#[test]
fn oom_kill_is_recorded() {
    let mut t = ShimUnderTest::new(
        "oom",
        &[
            "sh",
            "-c",
            "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived",
        ],
        false,
    );
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.bundle.path().join("config.json")).unwrap())
            .unwrap();
    cfg["linux"]["resources"]["memory"] = json!({"limit": 16777216, "swap": 16777216});
    std::fs::write(t.bundle.path().join("config.json"), cfg.to_string()).unwrap();
    t.launch();
    let st = t.client().wait(None).unwrap();
    if !st.oom_killed {
        // Hosts without a memory controller for the container cannot tell.
        println!(
            "not OOM-killed here (exit {}): memory cgroup missing?",
            st.exit_code
        );
        assert!(std::fs::read_dir("/sys/fs/cgroup/memory").is_err());
    } else {
        assert_eq!(st.exit_code, 137);
    }
    t.finish_and_check_clean();
}
