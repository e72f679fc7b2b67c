//! Root-only: `docker attach` through a real pty (output, input, the
//! detach keys leaving the container running), and handlers that notice a
//! client going away (`wait`, `logs -f`) instead of holding a thread or a
//! polling loop until the container exits.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{DOCKER, Daemon, IMAGE, unique};

/// A docker CLI on a pty; what it prints accumulates in `out`.
struct PtyDocker {
    child: Child,
    master: std::fs::File,
    out: Arc<Mutex<Vec<u8>>>,
}

impl PtyDocker {
    fn spawn(d: &Daemon, args: &[&str]) -> PtyDocker {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty fills two fds we then own.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty");
        // SAFETY: fresh fds from openpty.
        let (master, slave) = unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) };
        let child = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
            .env("DOCKER_CONFIG", d.docker_config.path())
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave))
            .spawn()
            .unwrap();
        let master = std::fs::File::from(master);
        let out = Arc::new(Mutex::new(Vec::new()));
        let (mut r, o) = (master.try_clone().unwrap(), out.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf) {
                if n == 0 {
                    break;
                }
                o.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        PtyDocker { child, master, out }
    }

    fn send(&mut self, b: &[u8]) {
        self.master.write_all(b).unwrap();
    }

    fn expect(&self, what: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let out = String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned();
            if out.contains(what) {
                return;
            }
            assert!(Instant::now() < end, "no {what:?} in {out:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The CLI's exit code, within a few seconds.
    fn exit(&mut self) -> i32 {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "docker attach did not end: {:?}",
                    String::from_utf8_lossy(&self.out.lock().unwrap())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn running(d: &Daemon, name: &str) -> bool {
    d.ok(&["inspect", "-f", "{{.State.Running}}", name]).trim() == "true"
}

#[test]
fn attach_tty_detach_keys_and_stream() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let t0 = format!(
        "{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1
    );
    let name = unique("att");
    d.ok(&["run", "-d", "-it", "--name", &name, IMAGE, "sh"]);

    // Default keys: ctrl-p ctrl-q ends the session, the shell runs on.
    let mut a = PtyDocker::spawn(&d, &["attach", &name]);
    std::thread::sleep(Duration::from_millis(500));
    a.send(b"echo mark$((40+2))\r");
    a.expect("mark42");
    a.send(b"\x10\x11");
    // Docker's CLI says so and exits 1 (as against dockerd).
    a.expect("read escape sequence");
    assert_eq!(a.exit(), 1);
    assert!(running(&d, &name));

    // Own keys; the default ones are then plain input.
    let mut a = PtyDocker::spawn(&d, &["attach", "--detach-keys", "ctrl-x", &name]);
    std::thread::sleep(Duration::from_millis(500));
    a.send(b"\x10\x11echo mark$((50+5))\r");
    a.expect("mark55");
    a.send(b"\x18");
    a.expect("read escape sequence");
    assert_eq!(a.exit(), 1);
    assert!(running(&d, &name));
    // The daemon itself honours the keys (API clients other than the
    // docker CLI, which also watches for them): the stream ends, the shell
    // runs on, a detach event is logged.
    let mut s = UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /containers/{name}/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-y HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"echo mark$((70+7))\r").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("mark77") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101"));
    // ctrl-y ends the stream (EOF within the read timeout).
    s.write_all(b"\x19").unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(running(&d, &name));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ev = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &format!("{now}"),
        "--filter",
        "event=detach",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(ev.trim(), "detach");
    // An exec session detaches the same way and its process runs on.
    let body = r#"{"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"Tty":true,"Cmd":["sh"],"DetachKeys":"ctrl-y"}"#;
    let mut s = UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /containers/{name}/exec HTTP/1.0\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let exec: serde_json::Value =
        serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let exec_id = exec["Id"].as_str().unwrap().to_string();
    let mut s = UnixStream::connect(d.socket()).unwrap();
    let start = r#"{"Detach":false,"Tty":true}"#;
    write!(
        s,
        "POST /exec/{exec_id}/start HTTP/1.1\r\nHost: b\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{start}",
        start.len()
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    s.write_all(b"echo mark$((80+8))\r").unwrap();
    let mut got = Vec::new();
    while !String::from_utf8_lossy(&got).contains("mark88") {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    s.write_all(b"\x19").unwrap();
    s.read_to_end(&mut Vec::new()).unwrap();
    let (code, inspect) = d.http("GET", &format!("/exec/{exec_id}/json"));
    assert_eq!(code, 200);
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Running"], true, "{inspect}");
    assert_eq!(inspect["DetachKeys"], "ctrl-y");
    // The shell kept its stdin: it still answers.
    let mut a = PtyDocker::spawn(&d, &["attach", &name]);
    std::thread::sleep(Duration::from_millis(500));
    a.send(b"echo mark$((60+6)); exit 7\r");
    a.expect("mark66");
    assert_eq!(a.exit(), 7);
    let o = d.docker(&["attach", "--detach-keys", "ctrl-12", &name]);
    assert_ne!(o.code, 0);

    // Without a tty: the output stream, and the container's exit code.
    let b = unique("att-b");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &b,
        IMAGE,
        "sh",
        "-c",
        "sleep 1; echo late; exit 3",
    ]);
    let o = d.docker(&["attach", &b]);
    assert_eq!((o.code, o.stdout.as_str()), (3, "late\n"), "{}", o.stderr);
    d.finish();
}

/// Read syscalls berthd has made so far.
fn read_calls(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("syscr: "))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count()
}

/// Sends a request and returns once the response headers arrived.
fn open_stream(d: &Daemon, method: &str, path: &str) -> UnixStream {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "no headers for {path}");
        got.push(b[0]);
    }
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    s
}

#[test]
fn wait_and_logs_follow_let_go_of_gone_clients() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("gone");
    d.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
    let pid = d.child.as_ref().unwrap().id();
    let before = threads(pid);

    // 40 waits that never end: no thread each, and they go with the client.
    let waits: Vec<UnixStream> = (0..40)
        .map(|_| open_stream(&d, "POST", &format!("/containers/{name}/wait")))
        .collect();
    let during = threads(pid);
    assert!(during < before + 20, "threads {before} -> {during}");
    drop(waits);

    // 20 log followers, then gone: their loops stop reading the log.
    let follows: Vec<UnixStream> = (0..20)
        .map(|_| {
            open_stream(
                &d,
                "GET",
                &format!("/containers/{name}/logs?follow=1&stdout=1"),
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let r0 = read_calls(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let busy = read_calls(pid) - r0;
    assert!(busy > 100, "followers should poll the log: {busy} reads/s");
    drop(follows);
    std::thread::sleep(Duration::from_millis(700));
    let r0 = read_calls(pid);
    std::thread::sleep(Duration::from_millis(1000));
    let idle = read_calls(pid) - r0;
    assert!(
        idle < busy / 5,
        "gone followers still read: {idle} vs {busy} reads/s"
    );

    // A wait still answers when the container exits.
    let w = std::thread::spawn({
        let sock = d.socket();
        let name = name.clone();
        move || {
            let mut s = UnixStream::connect(sock).unwrap();
            write!(
                s,
                "POST /containers/{name}/wait HTTP/1.0\r\nHost: b\r\n\r\n"
            )
            .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["kill", &name]);
    let out = w.join().unwrap();
    assert!(out.contains("\"StatusCode\":137"), "{out}");
    d.finish();
}
