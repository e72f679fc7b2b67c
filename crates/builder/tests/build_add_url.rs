//! ADD <url> and --checksum (root, the busybox fixture; see common/),
//! against a loopback HTTP server the test runs: no other network.

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use berth_image::Digest;
use common::*;

/// Last-Modified the server sends, and its Unix time.
const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
const LAST_MODIFIED_UNIX: i64 = 1_445_412_480;

struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    requests: Arc<AtomicUsize>,
}

impl Server {
    /// Serves `files` by path (with a Last-Modified, except under
    /// `/nolm/`); `/elsewhere` redirects to the same server
    /// under another host name (localhost), `/hop/<port>/<path>` to
    /// `localhost:<port>/<path>`, anything else is a 404.
    fn start() -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let files = Arc::new(Mutex::new(HashMap::<String, Vec<u8>>::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let (f, n) = (files.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { continue };
                n.fetch_add(1, Ordering::SeqCst);
                let mut r = BufReader::new(c.try_clone().unwrap());
                let mut line = String::new();
                let _ = r.read_line(&mut line);
                let path = line.split(' ').nth(1).unwrap_or("").to_string();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                }
                let body = f.lock().unwrap().get(&path).cloned();
                let head = match (&body, path.as_str()) {
                    (Some(b), p) => format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n",
                        b.len(),
                        if p.starts_with("/nolm/") {
                            String::new()
                        } else {
                            format!("Last-Modified: {LAST_MODIFIED}\r\n")
                        }
                    ),
                    (None, "/elsewhere") => format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://localhost:{port}/files/data.bin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    (None, p) if p.starts_with("/hop/") => format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://localhost:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                        &p[5..]
                    ),
                    _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string(),
                };
                let _ = c.write_all(head.as_bytes());
                if let Some(b) = body {
                    let _ = c.write_all(&b);
                }
            }
        });
        Server {
            port,
            files,
            requests,
        }
    }

    fn put(&self, path: &str, data: &[u8]) {
        self.files
            .lock()
            .unwrap()
            .insert(path.to_string(), data.to_vec());
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn tar_gz() -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "inside.txt", &b"in"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap()
}

/// BuildKit's HTTP source: named after the URL path, mode 0600, root,
/// mtime from Last-Modified (else 0), archives left packed; --chown/--chmod and a
/// destination file name apply as for local files.
#[test]
fn add_url_downloads_like_buildkit() {
    let e = env();
    let s = Server::start();
    s.put("/files/data.bin", b"payload\n");
    s.put("/files/arch.tar.gz", &tar_gz());
    s.put("/nolm/raw", b"raw");
    let ctx = e.context("ctx");
    let df = format!(
        "FROM busybox\n\
         ADD {} /dl/\n\
         ADD {} /dl/\n\
         ADD {} /dl/\n\
         ADD --chown=5:6 --chmod=644 {} /dl/renamed.bin\n",
        s.url("/files/arch.tar.gz"),
        s.url("/nolm/raw"),
        s.url("/files/data.bin"),
        s.url("/files/data.bin"),
    );
    let (r, _) = e.build(&ctx, &df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let md = fs::metadata(m.dir.join("dl/data.bin")).unwrap();
    assert_eq!(fs::read(m.dir.join("dl/data.bin")).unwrap(), b"payload\n");
    assert_eq!((md.mode() & 0o7777, md.uid(), md.gid()), (0o600, 0, 0));
    assert_eq!(md.mtime(), LAST_MODIFIED_UNIX);
    // No Last-Modified: mtime 0, as BuildKit sets it.
    assert_eq!(fs::metadata(m.dir.join("dl/raw")).unwrap().mtime(), 0);
    let arch = fs::metadata(m.dir.join("dl/arch.tar.gz")).unwrap();
    assert!(arch.is_file(), "a remote archive is not unpacked");
    assert!(!m.dir.join("dl/inside.txt").exists());
    let rn = fs::metadata(m.dir.join("dl/renamed.bin")).unwrap();
    assert_eq!((rn.mode() & 0o7777, rn.uid(), rn.gid()), (0o644, 5, 6));
    drop(m);
    // Without --checksum the content is fetched to key the cache: the
    // same content is a hit, a changed one is not.
    let before = s.requests();
    let (r2, _) = e.build(&ctx, &df, |_| {});
    assert_eq!(r2.image_id, r.image_id);
    assert_eq!(r2.cached_steps, 4);
    assert_eq!(s.requests(), before + 4);
    s.put("/files/data.bin", b"payload v2\n");
    let (r3, _) = e.build(&ctx, &df, |_| {});
    assert_eq!(
        r3.executed_steps, 2,
        "both ADDs of data.bin rerun, not the first"
    );
}

/// --checksum: the right digest passes and keys the cache (a rebuild does
/// not download); a wrong one fails naming the line and both digests.
#[test]
fn add_checksum_is_verified_and_keys_the_cache() {
    let e = env();
    let s = Server::start();
    let data = b"checked content\n";
    s.put("/c/file.txt", data);
    let good = Digest::sha256_of(data);
    let ctx = e.context("ctx");
    let df = format!(
        "FROM busybox\nADD --checksum={good} {} /c/\n",
        s.url("/c/file.txt")
    );
    let (r, _) = e.build(&ctx, &df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(fs::read(m.dir.join("c/file.txt")).unwrap(), data);
    drop(m);
    let before = s.requests();
    let (r2, out) = e.build(&ctx, &df, |_| {});
    assert_eq!(r2.image_id, r.image_id);
    assert_eq!(r2.cached_steps, 1, "{out}");
    assert_eq!(
        s.requests(),
        before,
        "a cached --checksum ADD downloads nothing"
    );

    let wrong = format!("sha256:{}", "0".repeat(64));
    let df = format!(
        "FROM busybox\nENV X=1\nADD --checksum={wrong} {} /c/\n",
        s.url("/c/file.txt")
    );
    let (err, _) = e.build_err(&ctx, &df);
    assert!(
        err.contains("line 3:")
            && err.contains(&format!("expected {wrong}"))
            && err.contains(&format!("got {good}")),
        "{err}"
    );
    // Expanded from a variable, checked once expanded.
    let df = format!(
        "FROM busybox\nARG SUM=sha256:abc\nADD --checksum=$SUM {} /c/\n",
        s.url("/c/file.txt")
    );
    let (err, _) = e.build_err(&ctx, &df);
    assert!(err.contains("expected 64 hex digits"), "{err}");
}

/// Redirects to other hosts are followed, as BuildKit does (release
/// downloads redirect to a CDN), up to 10; HTTP errors are said plainly.
#[test]
fn add_url_redirects_and_errors() {
    let e = env();
    let s = Server::start();
    let other = Server::start();
    s.put("/files/data.bin", b"x");
    let ctx = e.context("ctx");
    let hop = other.url(&format!("/hop/{}/files/data.bin", s.port));
    let (r, _) = e.build(
        &ctx,
        &format!(
            "FROM scratch\nADD {} /x\nADD {hop} /y\n",
            s.url("/elsewhere")
        ),
        |_| {},
    );
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(fs::read(m.dir.join("x")).unwrap(), b"x");
    assert_eq!(fs::read(m.dir.join("y")).unwrap(), b"x");
    drop(m);
    // A loop between the two servers stops after 10.
    let (a, b) = (s.port, other.port);
    let looped = other.url(&format!("/hop/{a}/hop/{b}/hop/{a}/hop/{b}/hop/{a}/hop/{b}/hop/{a}/hop/{b}/hop/{a}/hop/{b}/hop/{a}/files/data.bin"));
    let (err, _) = e.build_err(&ctx, &format!("FROM scratch\nADD {looped} /z\n"));
    assert!(
        err.contains("line 2:") && err.contains("stopped after 10 redirects"),
        "{err}"
    );
    let (err, _) = e.build_err(&ctx, &format!("FROM busybox\nADD {} /x\n", s.url("/nope")));
    assert!(err.contains("404"), "{err}");
    let (err, _) = e.build_err(&ctx, "FROM busybox\nADD http://127.0.0.1:1/f /x\n");
    assert!(
        err.contains("ADD http://127.0.0.1:1/f") && err.contains("refused"),
        "{err}"
    );
}
