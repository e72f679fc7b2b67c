//! Abuse suite, resources (issue #13, defects 4 and 5): what a client
//! sends can neither grow berthd's memory nor keep it working once the
//! client has gone. Root only (a berthd per test, the fixture registry).
//! berthd's memory figures are printed for the bench notes.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{
    Daemon, IMAGE, memory_kib, push_blob, put_manifest, read_response, sha256_digest, unique,
    wait_until,
};

/// CPU time (user + system, clock ticks) berthd has used so far.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    // Fields 14 and 15 (utime, stime); f[0] is field 3.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// Sends `total` bytes of garbage as the body of `POST path` (declared
/// with a Content-Length, or chunked) from a thread, and returns the
/// answer with the time it took. The sender stops at the first failed
/// write (the server closed the connection).
fn post_garbage(d: &Daemon, path: &str, total: usize, chunked: bool) -> (u16, String, Duration) {
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let len_header = if chunked {
        "Transfer-Encoding: chunked".to_string()
    } else {
        format!("Content-Length: {total}")
    };
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/json\r\n{len_header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut w = s.try_clone().unwrap();
    w.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || {
        let chunk = vec![b'{'; 1 << 20];
        let mut sent = 0;
        while sent < total {
            let r = if chunked {
                write!(w, "{:x}\r\n", chunk.len())
                    .and_then(|()| w.write_all(&chunk))
                    .and_then(|()| w.write_all(b"\r\n"))
            } else {
                w.write_all(&chunk)
            };
            if r.is_err() {
                return sent;
            }
            sent += chunk.len();
        }
        if chunked {
            let _ = w.write_all(b"0\r\n\r\n");
        }
        sent
    });
    let (status, resp) = read_response(&mut s);
    let took = t0.elapsed();
    let _ = s.shutdown(std::net::Shutdown::Both);
    let sent = sender.join().unwrap();
    eprintln!("{path}: {status} after {took:?}, {} MiB sent", sent >> 20);
    (status, resp, took)
}

#[test]
fn abuse_oversized_json_bodies_are_413_and_never_buffered() {
    let mut d = Daemon::start();
    let pid = d.pid();
    let (hwm0, rss0) = memory_kib(pid);
    const BODY: usize = 600 << 20;
    // Declared: refused before a byte of the body is read.
    let (status, resp, took) = post_garbage(&d, "/v1.45/containers/create", BODY, false);
    assert_eq!(status, 413, "{resp}");
    assert!(resp.contains("request body too large"), "{resp}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    // Undeclared (chunked): reading stops at the limit.
    for path in [
        "/v1.45/containers/create",
        "/v1.45/networks/create",
        "/v1.45/volumes/create",
    ] {
        let (status, resp, took) = post_garbage(&d, path, BODY, true);
        assert_eq!(status, 413, "{path}: {resp}");
        assert!(took < Duration::from_secs(20), "{path}: {took:?}");
    }
    let (hwm1, rss1) = memory_kib(pid);
    eprintln!(
        "berthd memory: VmHWM {hwm0} -> {hwm1} KiB, VmRSS {rss0} -> {rss1} KiB after 4 x 600 MiB bodies"
    );
    assert!(
        hwm1 < hwm0 + 100 * 1024,
        "peak grew from {hwm0} to {hwm1} KiB"
    );
    // A body within the limit still works, and the daemon serves on.
    let (status, body) = d.http_json("POST", "/v1.45/volumes/create", r#"{"Name":"ok"}"#);
    assert_eq!(status, 201, "{body}");
    d.ok(&["volume", "rm", "ok"]);
    d.finish();
}

/// A build context directory with a `size`-byte file (sparse on disk; the
/// client still sends every byte of it).
fn big_context(size: u64, dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("berth-abuse-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    std::fs::File::create(dir.path().join("big"))
        .unwrap()
        .set_len(size)
        .unwrap();
    dir
}

#[test]
fn abuse_a_300mb_build_context_streams_to_disk() {
    let mut d = Daemon::start();
    let pid = d.pid();
    let (hwm0, rss0) = memory_kib(pid);
    let ctx = big_context(300 << 20, "FROM scratch\nCOPY Dockerfile /Dockerfile\n");
    let tag = unique("abuse-bigctx");
    let t0 = Instant::now();
    d.ok(&["build", "-q", "-t", &tag, ctx.path().to_str().unwrap()]);
    let took = t0.elapsed();
    let (hwm1, rss1) = memory_kib(pid);
    eprintln!(
        "300 MiB context built in {took:?}; berthd VmHWM {hwm0} -> {hwm1} KiB, VmRSS {rss0} -> {rss1} KiB"
    );
    assert!(
        hwm1 < hwm0 + 100 * 1024,
        "peak grew from {hwm0} to {hwm1} KiB"
    );
    // The spool file (in the store's scratch dir) is gone with the build.
    let left = layer_tmp_entries(d.root.path());
    assert!(left.is_empty(), "left in layers/tmp: {left:?}");
    d.ok(&["rmi", &tag]);
    d.finish();
}

/// Processes whose command line is exactly `argv`.
fn processes(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default() == want)
        .collect()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn abuse_a_build_stops_when_its_client_disconnects() {
    let mut d = Daemon::start();
    // A number no other test sleeps for.
    let secs = (100_000 + std::process::id()).to_string();
    let df = format!("FROM {IMAGE}\nRUN sleep {secs}\n");
    let context = tar_of(&[("Dockerfile", df.as_bytes())]);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /v1.45/build?t={} HTTP/1.1\r\nHost: berth\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        unique("abuse-cancel"),
        context.len()
    )
    .unwrap();
    s.write_all(&context).unwrap();
    // The RUN step is running.
    let sleep = ["sleep", secs.as_str()];
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut progress = String::new();
    while processes(&sleep).is_empty() {
        // The progress stream, until RUN's line (the sleep starts after it).
        let mut line = String::new();
        let n = r.read_line(&mut line);
        assert!(
            n.as_ref().is_ok_and(|&n| n > 0),
            "the build ended: {n:?} {progress}\n--- berthd log:\n{}",
            d.log()
        );
        progress.push_str(&line);
        if line.contains("RUN ") {
            wait_until("the RUN step starts", Duration::from_secs(30), || {
                !processes(&sleep).is_empty()
            });
        }
    }
    assert!(progress.starts_with("HTTP/1.1 200"), "{progress}");
    drop(r);
    drop(s);
    let gone = wait_until("the RUN process is killed", Duration::from_secs(10), || {
        processes(&sleep).is_empty()
    });
    let root = d.root.path().to_path_buf();
    let unmounted = wait_until("the step's mounts go", Duration::from_secs(10), || {
        common::mounts_under(&root).is_empty()
    });
    eprintln!("RUN killed {gone:?} after the disconnect, mounts gone after {unmounted:?}");
    let builder_tmp = root.join("builder/tmp");
    wait_until("the step dirs go", Duration::from_secs(10), || {
        std::fs::read_dir(&builder_tmp).map_or(true, |rd| rd.count() == 0)
    });
    let rt = root.join("builder/runtime");
    wait_until("the step container goes", Duration::from_secs(10), || {
        std::fs::read_dir(&rt).map_or(true, |rd| {
            rd.flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with("berth-build-"))
        })
    });
    // The daemon still builds.
    let (status, _) = d.http("GET", "/_ping");
    assert_eq!(status, 200);
    d.finish();
}

/// A GNU sparse file of apparent size `real` whose only data is its last
/// 512 bytes: a few KB of tar.
fn sparse_layer(name: &str, real: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_size(512);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(real);
    gnu.sparse[0].set_offset(real - 512);
    gnu.sparse[0].set_length(512);
    h.set_cksum();
    b.append(&h, &[1u8; 512][..]).unwrap();
    b.into_inner().unwrap()
}

/// Pushes a one-layer image (the layer an uncompressed tar) under a repo
/// of its own; returns the reference.
fn push_one_layer_image(repo: &str, layer: &[u8]) -> String {
    let diff_id = sha256_digest(layer);
    let layer_digest = push_blob(repo, layer);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = push_blob(repo, &config);
    put_manifest(
        repo,
        &serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": config.len(),
            },
            "layers": [{
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": layer.len(),
            }],
        }),
    )
}

fn layer_tmp_entries(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("layers/tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn abuse_a_sparse_bomb_layer_is_refused_at_once_by_name() {
    let mut d = Daemon::start();
    let layer = sparse_layer("var/log/lastlog", 1 << 40);
    assert!(layer.len() < 10_000);
    let image = push_one_layer_image(&unique("berth-abuse-sparse-bomb"), &layer);
    let t0 = Instant::now();
    let o = d.docker(&["pull", &image]);
    let took = t0.elapsed();
    assert_ne!(o.code, 0, "pulled a 1 TiB sparse bomb: {}", o.stdout);
    assert!(
        o.stderr.contains("var/log/lastlog") && o.stderr.contains("over the limit"),
        "{}",
        o.stderr
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    eprintln!(
        "1 TiB sparse layer refused in {took:?}: {}",
        o.stderr.trim()
    );
    assert!(layer_tmp_entries(d.root.path()).is_empty());
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    d.finish();
}

#[test]
fn abuse_a_pull_stops_when_its_client_disconnects() {
    let mut d = Daemon::start();
    let pid = d.pid();
    // 200 GiB of holes, under the default limit: without a cancel, a debug
    // berthd would expand it for an hour after the client left.
    let layer = sparse_layer("big", 200 << 30);
    let image = push_one_layer_image(&unique("berth-abuse-slow-layer"), &layer);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    write!(
        s,
        "POST /v1.45/images/create?fromImage={} HTTP/1.1\r\nHost: berth\r\nContent-Length: 0\r\n\r\n",
        image.trim_end_matches(":latest")
    )
    .unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 200"), "{line}");
    let root = d.root.path().to_path_buf();
    wait_until("the layer unpack starts", Duration::from_secs(30), || {
        !layer_tmp_entries(&root).is_empty()
    });
    std::thread::sleep(Duration::from_millis(500));
    drop(r);
    drop(s);
    let stopped = wait_until("the unpack stops", Duration::from_secs(5), || {
        layer_tmp_entries(&root).is_empty()
    });
    // And stays stopped: berthd idles.
    let c0 = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let busy = cpu_ticks(pid) - c0;
    eprintln!("unpack stopped {stopped:?} after the disconnect; then {busy} ticks in 1 s");
    assert!(busy < 30, "berthd still busy: {busy} ticks in 1 s");
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    // The next pull of it is not blocked by the cancelled one.
    let again = d.docker(&["pull", "-q", IMAGE]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    d.ok(&["rmi", IMAGE]);
    d.finish();
}
