//! process.terminal with --console-socket: the pty master arrives over the
//! socket (SCM_RIGHTS) and drives the container's shell, as engines use it.

mod common;

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;

use common::*;
use serde_json::json;

/// Receives one descriptor sent with SCM_RIGHTS.
fn recv_fd(stream: &std::os::unix::net::UnixStream) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 256];
    let mut cmsg = [0u8; 64];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cmsg.as_mut_ptr().cast();
    msg.msg_controllen = cmsg.len();
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    assert!(n > 0, "recvmsg: {}", std::io::Error::last_os_error());
    let c = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(!c.is_null(), "no control message");
    assert_eq!(unsafe { (*c).cmsg_type }, libc::SCM_RIGHTS);
    let fd = unsafe { std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const i32) };
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn read_until(master: &mut std::fs::File, needle: &str) -> String {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while std::time::Instant::now() < deadline {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
        if String::from_utf8_lossy(&out).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn console_socket_gets_a_working_pty() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh"]);
    b.config["process"]["terminal"] = json!(true);
    b.config["process"]["consoleSize"] = json!({"height": 33, "width": 111});
    b.write();
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("console.sock");
    let listener = UnixListener::bind(&sock).unwrap();
    let id = unique_id("tty");
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        recv_fd(&stream)
    });
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let master = receiver.join().unwrap();
    rt.ok(&["start", &id]);
    let mut master = std::fs::File::from(master);
    master
        .write_all(b"tty; stty size; echo TERM-OK; exit 3\n")
        .unwrap();
    let out = read_until(&mut master, "TERM-OK\r\n");
    assert!(out.contains("/dev/pts/0"), "{out}");
    assert!(out.contains("33 111"), "window size not applied: {out}");
    assert!(wait_until(5000, || rt.status(&id) == "stopped"), "{out}");
    rt.ok(&["delete", &id]);
}

#[test]
fn terminal_without_console_socket_is_refused() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh"]);
    b.config["process"]["terminal"] = json!(true);
    b.write();
    let out = rt.output(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("notty"),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("console-socket"));
}
