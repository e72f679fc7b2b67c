//! Userland port proxy: host `ip:port` → container `ip:port`, TCP or UDP.
//!
//! Used where nftables is unavailable. It runs as its own small process per
//! published port (`berth-proxy`, like docker-proxy), not inside berthd, so a
//! daemon restart does not interrupt published ports; the engine records the
//! pid and kills it when the container stops. The process reports readiness
//! ("ready\n" on stdout) only after binding, so a taken port is an error at
//! `docker run`, not later.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{NetworkError, Result};
use crate::ports::Protocol;

/// UDP "connections" idle this long are forgotten (Docker uses 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySpec {
    pub proto: Protocol,
    pub host: SocketAddr,
    pub container: SocketAddr,
}

impl ProxySpec {
    /// docker-proxy's flag names, so the argv reads the same in `ps`.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "-proto".into(),
            self.proto.as_str().into(),
            "-host-ip".into(),
            self.host.ip().to_string(),
            "-host-port".into(),
            self.host.port().to_string(),
            "-container-ip".into(),
            self.container.ip().to_string(),
            "-container-port".into(),
            self.container.port().to_string(),
        ]
    }

    pub fn from_args(args: &[String]) -> Result<ProxySpec> {
        let mut m: HashMap<&str, &str> = HashMap::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let value = it.next().ok_or_else(|| {
                NetworkError::InvalidArgument(format!("berth-proxy: flag {flag} needs a value"))
            })?;
            m.insert(flag.trim_start_matches('-'), value);
        }
        let get = |k: &str| {
            m.get(k)
                .copied()
                .ok_or_else(|| NetworkError::InvalidArgument(format!("berth-proxy: missing -{k}")))
        };
        let addr = |ip: &str, port: &str| -> Result<SocketAddr> {
            let (ip, port) = (get(ip)?, get(port)?);
            let ip = ip.parse().map_err(|_| {
                NetworkError::InvalidArgument(format!("berth-proxy: bad address {ip:?}"))
            })?;
            let port = port.parse().map_err(|_| {
                NetworkError::InvalidArgument(format!("berth-proxy: bad port {port:?}"))
            })?;
            Ok(SocketAddr::new(ip, port))
        };
        Ok(ProxySpec {
            proto: get("proto")?.parse()?,
            host: addr("host-ip", "host-port")?,
            container: addr("container-ip", "container-port")?,
        })
    }
}

/// A bound proxy, ready to serve.
pub enum Proxy {
    Tcp(TcpListener, SocketAddr),
    Udp(UdpSocket, SocketAddr),
}

impl Proxy {
    pub fn bind(spec: &ProxySpec) -> Result<Proxy> {
        let err = |e| NetworkError::os(format!("proxy: bind {} {}", spec.proto, spec.host), e);
        match spec.proto {
            Protocol::Tcp => Ok(Proxy::Tcp(
                TcpListener::bind(spec.host).map_err(err)?,
                spec.container,
            )),
            Protocol::Udp => Ok(Proxy::Udp(
                UdpSocket::bind(spec.host).map_err(err)?,
                spec.container,
            )),
            Protocol::Sctp => Err(NetworkError::InvalidArgument(
                "the userland proxy does not carry sctp (needs nftables)".into(),
            )),
        }
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        match self {
            Proxy::Tcp(l, _) => l.local_addr(),
            Proxy::Udp(s, _) => s.local_addr(),
        }
        .map_err(|e| NetworkError::os("proxy: local address", e))
    }

    /// Serves forever (the process is stopped by a signal).
    pub fn serve(self) {
        match self {
            Proxy::Tcp(l, target) => serve_tcp(l, target),
            Proxy::Udp(s, target) => serve_udp(s, target),
        }
    }
}

fn serve_tcp(listener: TcpListener, target: SocketAddr) {
    for conn in listener.incoming() {
        let Ok(client) = conn else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        std::thread::spawn(move || {
            let Ok(upstream) = TcpStream::connect_timeout(&target, Duration::from_secs(5)) else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) else {
                return;
            };
            let back = std::thread::spawn(move || pipe(u2, c2));
            pipe(client, upstream);
            let _ = back.join();
        });
    }
}

/// Copies until EOF, then half-closes the writer so the peer sees EOF too.
fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

fn serve_udp(sock: UdpSocket, target: SocketAddr) {
    let sock = Arc::new(sock);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let existing = flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .cloned();
        let upstream = match existing {
            Some(u) => u,
            None => {
                let bind: SocketAddr = if target.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let Ok(u) = UdpSocket::bind(bind) else {
                    continue;
                };
                if u.connect(target).is_err() {
                    continue;
                }
                let _ = u.set_read_timeout(Some(UDP_IDLE));
                let u = Arc::new(u);
                flows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client, u.clone());
                let (u2, sock2, flows2) = (u.clone(), sock.clone(), flows.clone());
                std::thread::spawn(move || {
                    let mut b = vec![0u8; 65536];
                    // Replies go back to the client until the flow idles out.
                    while let Ok(n) = u2.recv(&mut b) {
                        let _ = sock2.send_to(&b[..n], client);
                    }
                    flows2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&client);
                });
                u
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}

/// Starts `binary` (berth-proxy) for `spec` in its own session, waits until it
/// has bound the port, and returns its pid. Its stderr says why if it failed.
pub fn spawn(binary: &Path, spec: &ProxySpec) -> Result<u32> {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(binary);
    cmd.args(spec.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; a new session keeps the proxy out of
    // the daemon's process group, so it survives the daemon's restart.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| NetworkError::os(format!("start {}", binary.display()), e))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout is piped");
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim() == "ready" {
        let pid = child.id();
        // Reap it when it is stopped, so no zombie stays behind in the daemon.
        std::thread::spawn(move || child.wait());
        return Ok(pid);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NetworkError::os("wait for berth-proxy", e))?;
    Err(NetworkError::Conflict(format!(
        "userland proxy for {} {} failed: {}",
        spec.proto,
        spec.host,
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_and_errors() {
        let spec = ProxySpec {
            proto: Protocol::Udp,
            host: "127.0.0.1:8053".parse().unwrap(),
            container: "10.1.0.2:53".parse().unwrap(),
        };
        assert_eq!(ProxySpec::from_args(&spec.to_args()).unwrap(), spec);
        let mut args = spec.to_args();
        args[5] = "x".into();
        let e = ProxySpec::from_args(&args).unwrap_err().to_string();
        assert!(e.contains("bad port \"x\""), "{e}");
        let e = ProxySpec::from_args(&args[..4]).unwrap_err().to_string();
        assert!(e.contains("missing -host-port"), "{e}");
    }
}
