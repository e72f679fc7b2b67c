//! `docker push` / `docker pull` through dockerd against Berth's registry (root).
//!
//! Gated on `BERTH_DOCKER_TESTS=1`: CI does not run dockerd, so without it the test only
//! prints that it was skipped. With it, the shared dockerd fixture is used
//! (`/work/shared/fixtures/dockerd.sh start`, or `$BERTH_DOCKERD_FIXTURE`; it loads
//! `busybox:latest`). The registry (`berth-registry serve`, the same command as
//! `berth registry serve`) listens on a free port of 127.0.0.1: dockerd treats every
//! registry in 127.0.0.0/8 as insecure by default (plain HTTP), so no daemon flag is needed.
//!
//! Checked: push, rmi, pull, run; the digest docker reports for the push, the manifest digest
//! the registry serves, the digest docker reports for the pull and the pulled image's
//! RepoDigest are all the same, and the pulled image ID (config digest) is the original's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first `sha256:<64 hex>` after `marker` in `text`.
fn digest_after(text: &str, marker: &str) -> String {
    let i = text
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker:?} in {text:?}"));
    let rest = &text[i + marker.len()..];
    let j = rest.find("sha256:").expect("digest");
    let d = &rest[j..j + 71];
    assert!(d[7..].bytes().all(|b| b.is_ascii_hexdigit()), "{d}");
    d.to_string()
}

/// A raw HTTP/1.1 request; returns the response head and body.
fn http(addr: &str, method: &str, path: &str, accept: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (head.to_string(), body.to_string())
}

fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_string())
    })
}

struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_registry() -> Registry {
    let dir = tempfile::tempdir().unwrap();
    // A free loopback port (released just before the registry binds it).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_berth-registry"))
        .args(["serve", "--addr", &addr, "--root"])
        .arg(dir.path().join("root"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let reg = Registry {
        child,
        addr,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if TcpStream::connect(&reg.addr).is_ok()
            && http(&reg.addr, "GET", "/v2/", "*/*").0.contains(" 200 ")
        {
            return reg;
        }
        assert!(Instant::now() < deadline, "registry did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn docker_push_pull_run_through_dockerd() {
    if std::env::var("BERTH_DOCKER_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_DOCKER_TESTS=1 (needs root and dockerd; CI has none)");
        return;
    }
    let fixture = std::env::var("BERTH_DOCKERD_FIXTURE")
        .unwrap_or_else(|_| "/work/shared/fixtures/dockerd.sh".into());
    run(&[&fixture, "start"]);

    let reg = start_registry();
    let image = format!("{}/t/busybox:1", reg.addr);
    let original_id = run(&[
        "docker",
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        "busybox:latest",
    ]);

    run(&["docker", "tag", "busybox:latest", &image]);
    let pushed = run(&["docker", "push", &image]);
    let push_digest = digest_after(&pushed, "digest: ");

    // The registry serves that manifest under the tag, with the same digest.
    let (head, body) = http(
        &reg.addr,
        "GET",
        "/v2/t/busybox/manifests/1",
        "application/vnd.docker.distribution.manifest.v2+json",
    );
    assert!(head.contains(" 200 "), "{head}");
    assert_eq!(
        header(&head, "docker-content-digest").as_deref(),
        Some(push_digest.as_str())
    );
    assert!(body.contains("application/vnd.docker.distribution.manifest.v2+json"));

    run(&["docker", "rmi", &image]);
    let pulled = run(&["docker", "pull", &image]);
    assert_eq!(digest_after(&pulled, "Digest: "), push_digest);
    let repo_digest = run(&[
        "docker",
        "image",
        "inspect",
        "-f",
        "{{range .RepoDigests}}{{println .}}{{end}}",
        &image,
    ]);
    let want = format!("{}/t/busybox@{push_digest}", reg.addr);
    assert!(
        repo_digest.lines().any(|l| l == want),
        "{repo_digest:?} lacks {want}"
    );
    let pulled_id = run(&["docker", "image", "inspect", "-f", "{{.Id}}", &image]);
    assert_eq!(pulled_id, original_id);

    // The shared dockerd has no bridge by default: no network for the container.
    let out = run(&[
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        &image,
        "echo",
        "ok",
    ]);
    assert_eq!(out.trim(), "ok");

    run(&["docker", "rmi", &image]);
}
