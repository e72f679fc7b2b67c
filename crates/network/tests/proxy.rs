//! The berth-proxy binary: TCP and UDP carried to a backend, a taken port
//! reported at start, the process gone when killed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::time::Duration;

use berth_network::ports::Protocol;
use berth_network::proxy::{ProxySpec, spawn};

const BIN: &str = env!("CARGO_BIN_EXE_berth-proxy");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Kill(u32);
impl Drop for Kill {
    fn drop(&mut self) {
        // SAFETY: a pid this test started.
        unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
    }
}

#[test]
fn tcp_round_trip_with_half_close() {
    // Backend: reads everything, answers with its length, closes.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let baddr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in backend.incoming().take(2) {
            let mut c = c.unwrap();
            let mut all = Vec::new();
            c.read_to_end(&mut all).unwrap();
            c.write_all(format!("got {}", all.len()).as_bytes())
                .unwrap();
        }
    });
    let host: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let spec = ProxySpec {
        proto: Protocol::Tcp,
        host,
        container: baddr,
    };
    let _p = Kill(spawn(Path::new(BIN), &spec).unwrap());
    for size in [5usize, 3 << 20] {
        let mut c = TcpStream::connect(host).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(&vec![7u8; size]).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, format!("got {size}"));
    }
}

#[test]
fn udp_round_trip() {
    let backend = UdpSocket::bind("127.0.0.1:0").unwrap();
    let baddr = backend.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut b = [0u8; 100];
        loop {
            let (n, from) = backend.recv_from(&mut b).unwrap();
            let mut r = b"echo:".to_vec();
            r.extend_from_slice(&b[..n]);
            backend.send_to(&r, from).unwrap();
        }
    });
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let _p = Kill(
        spawn(
            Path::new(BIN),
            &ProxySpec {
                proto: Protocol::Udp,
                host,
                container: baddr,
            },
        )
        .unwrap(),
    );
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for msg in ["a", "bb"] {
        c.send_to(msg.as_bytes(), host).unwrap();
        let mut b = [0u8; 100];
        let n = c.recv(&mut b).unwrap();
        assert_eq!(&b[..n], format!("echo:{msg}").as_bytes());
    }
}

#[test]
fn taken_port_fails_at_start_and_kill_frees_it() {
    let held = TcpListener::bind("127.0.0.1:0").unwrap();
    let host = held.local_addr().unwrap();
    let spec = ProxySpec {
        proto: Protocol::Tcp,
        host,
        container: "127.0.0.1:9".parse().unwrap(),
    };
    let e = spawn(Path::new(BIN), &spec).unwrap_err().to_string();
    assert!(
        e.contains("Address already in use") || e.contains("in use"),
        "{e}"
    );
    drop(held);
    let pid = spawn(Path::new(BIN), &spec).unwrap();
    drop(Kill(pid));
    // Gone (reaped by init once its session leader exits; the port frees).
    for _ in 0..100 {
        if TcpListener::bind(host).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("port {host} still held after the proxy was killed");
}
