//! Issue #13 defects 1 and 2, through berthd and the docker CLI (root):
//! builds reach registries by the same policy as pulls (HTTPS; plain HTTP
//! for loopback and `--insecure-registry` only), and the daemon never
//! lends its own credentials — a client's come in X-Registry-Auth (pull)
//! and X-Registry-Config (build).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::registry::AuthRegistry;
use common::*;

/// A docker config.json holding alice's credentials for `registry`.
fn write_config(dir: &Path, registry: &str) {
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:wonder");
    std::fs::write(
        dir.join("config.json"),
        serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string(),
    )
    .unwrap();
}

fn build_context(from: &str) -> tempfile::TempDir {
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {from}\nLABEL built=yes\n"),
    )
    .unwrap();
    ctx
}

#[test]
fn abuse_daemon_never_lends_its_own_credentials() {
    let reg = AuthRegistry::start();
    let image = reg.push_busybox("team/bb:1");
    // berthd's own HOME and DOCKER_CONFIG hold working credentials: the
    // operator's, which no API client may use.
    let daemon_home = tempfile::tempdir().unwrap();
    write_config(daemon_home.path(), &reg.addr);
    std::fs::create_dir_all(daemon_home.path().join(".docker")).unwrap();
    write_config(&daemon_home.path().join(".docker"), &reg.addr);
    let home = daemon_home.path().to_str().unwrap();
    let mut d = Daemon::start_with_env(&[("HOME", home), ("DOCKER_CONFIG", home)]);
    let refused = format!(
        "Get \"http://{}/v2/team/bb/manifests/1\": no basic auth credentials",
        reg.addr
    );

    // The docker CLI has no credentials: pull and build are refused with
    // dockerd's words.
    let o = d.docker(&["pull", &image]);
    assert_eq!(o.code, 1, "pull without credentials: {}", o.stdout);
    assert!(o.stderr.contains(&refused), "{}", o.stderr);
    let ctx = build_context(&image);
    let dir = ctx.path().to_str().unwrap();
    let o = d.docker(&["build", "-t", "trust:nocreds", dir]);
    assert_ne!(o.code, 0, "build without credentials: {}", o.stdout);
    assert!(o.stderr.contains(&refused), "{}{}", o.stdout, o.stderr);
    // The API itself, without X-Registry-Auth.
    let (_, body) = d.http(
        "POST",
        &format!("/v1.45/images/create?fromImage={}/team/bb&tag=1", reg.addr),
    );
    let last: serde_json::Value = serde_json::from_str(body.lines().last().unwrap_or("")).unwrap();
    assert_eq!(last["error"], refused.as_str(), "{body}");
    assert_eq!(d.ok(&["images", "-q"]), "");

    // With the client's own credentials both work: X-Registry-Config for
    // the build's FROM, X-Registry-Auth for the pull.
    write_config(d.docker_config.path(), &reg.addr);
    let out = d.ok(&["build", "-t", "trust:creds", dir]);
    assert!(out.contains("Successfully tagged trust:creds"), "{out}");
    d.ok(&["rmi", "trust:creds", &image]);
    let out = d.ok(&["pull", &image]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    d.ok(&["rmi", &image]);
    d.finish();
}

/// A veth pair of our own (this kernel has no dummy links) holding one
/// TEST-NET-1 address (RFC 5737): a registry address that is not loopback
/// yet never leaves this host.
struct TestNetAddr {
    link: String,
    ip: String,
}

impl TestNetAddr {
    fn add() -> TestNetAddr {
        let pid = std::process::id();
        let t = TestNetAddr {
            link: format!("trst{}", pid % 100_000),
            ip: format!("192.0.2.{}", 1 + pid % 250),
        };
        let ip = |args: &[&str]| {
            let o = Command::new("ip").args(args).output().unwrap();
            assert!(
                o.status.success(),
                "ip {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        };
        let peer = format!("{}p", t.link);
        ip(&[
            "link", "add", &t.link, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["addr", "add", &format!("{}/32", t.ip), "dev", &t.link]);
        ip(&["link", "set", &t.link, "up"]);
        ip(&["link", "set", &peer, "up"]);
        t
    }
}

impl Drop for TestNetAddr {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.link])
            .output();
    }
}

/// A listener that records each connection's first bytes and answers
/// plain HTTP requests with 404 (TLS handshakes just get closed).
struct Recorder {
    addr: String,
    seen: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Recorder {
    fn start(ip: &str) -> Recorder {
        let l = TcpListener::bind((ip, 0)).unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 4096];
                let n = c.read(&mut buf).unwrap_or(0);
                if buf[..n].starts_with(b"GET ") || buf[..n].starts_with(b"HEAD ") {
                    let _ = c.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
                s.lock().unwrap().push(buf[..n].to_vec());
            }
        });
        Recorder { addr, seen }
    }

    /// The first bytes of every connection so far, then forgets them.
    fn take(&self) -> Vec<Vec<u8>> {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

fn assert_all_tls(what: &str, conns: &[Vec<u8>]) {
    assert!(
        !conns.is_empty(),
        "{what}: no connection reached the registry"
    );
    for c in conns {
        // 0x16: a TLS handshake record (the ClientHello).
        assert_eq!(
            c.first(),
            Some(&0x16),
            "{what}: sent in the clear: {:?}",
            String::from_utf8_lossy(c)
        );
    }
}

fn assert_all_plain(what: &str, conns: &[Vec<u8>]) {
    assert!(
        !conns.is_empty(),
        "{what}: no connection reached the registry"
    );
    for c in conns {
        assert!(
            c.starts_with(b"GET /v2/"),
            "{what}: not plain HTTP: {:?}",
            String::from_utf8_lossy(c)
        );
    }
}

#[test]
fn abuse_builds_reach_registries_by_the_daemons_policy() {
    let net = TestNetAddr::add();
    let rec = Recorder::start(&net.ip);
    let image = format!("{}/team/bb:1", rec.addr);
    let ctx = build_context(&image);
    let dir = ctx.path().to_str().unwrap();
    let mut d = Daemon::start();
    // The client has credentials for it: they must never go out in the clear.
    write_config(d.docker_config.path(), &rec.addr);

    // Not loopback, not configured insecure: HTTPS only, for pull and build.
    assert_eq!(d.docker(&["pull", &image]).code, 1);
    assert_all_tls("pull", &rec.take());
    let o = d.docker(&["build", dir]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert_all_tls("build", &rec.take());

    // Configured insecure (here by CIDR): plain HTTP, for both alike.
    d.kill9();
    d.spawn_with(&["--insecure-registry", &format!("{}/32", net.ip)]);
    assert_eq!(d.docker(&["pull", &image]).code, 1);
    assert_all_plain("pull, insecure", &rec.take());
    let o = d.docker(&["build", dir]);
    assert_ne!(o.code, 0, "{}", o.stdout);
    assert_all_plain("build, insecure", &rec.take());

    // A bad value is refused with dockerd's words before berthd starts.
    let o = Command::new(BERTHD.as_str())
        .args(["--insecure-registry", "ftp://x", "--root", "/nonexistent"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("insecure registry ftp://x is not valid"),
        "{err}"
    );
    d.finish();
}
