//! Root-only: a container's filesystem through the real docker CLI against
//! a private berthd — diff, export, commit (and the committed image runs).

mod common;

use std::process::Command;

use common::{Daemon, IMAGE, unique};

/// The names in a tar archive (via the host's tar).
fn tar_names(tar: &std::path::Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn diff_export_commit() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("fs");
    d.ok(&[
        "run",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /tmp/new && echo data > /tmp/new/file && echo x >> /etc/passwd && rm /bin/vi",
    ]);
    // Added, changed, deleted (a whiteout); nothing of the engine's own mounts.
    let diff = d.ok(&["diff", &name]);
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /bin",
            "D /bin/vi",
            "C /etc",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/new",
            "A /tmp/new/file"
        ],
        "{diff}"
    );

    // Export: the whole merged filesystem.
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("export.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), &name]);
    let names = tar_names(&tar);
    assert!(names.contains(&"tmp/new/file".to_string()), "{names:?}");
    assert!(names.contains(&"bin/sh".to_string()));
    assert!(!names.contains(&"bin/vi".to_string()));
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg("tmp/new/file")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"data\n");

    // Commit with changes: a new image, one layer more, the config edited.
    let repo = format!("localhost:5000/{}", unique("committed"));
    let id = d.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/tmp/new/file\"]",
        "--change",
        "ENV GREETING=hello",
        "--change",
        "LABEL team=ops",
        "--change",
        "EXPOSE 8080",
        "--change",
        "WORKDIR /tmp",
        "-m",
        "a comment",
        "-a",
        "someone",
        &name,
        &format!("{repo}:v1"),
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let base_layers = d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", IMAGE]);
    let layers = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(
        layers.trim().parse::<usize>().unwrap(),
        base_layers.trim().parse::<usize>().unwrap() + 1
    );
    let cfg = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{.Config.Labels.team}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}} {{.Author}} {{.Comment}}",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["cat","/tmp/new/file"] ops /tmp {"8080/tcp":{}} someone a comment"#
    );
    // The image runs: its layer has the file, the whiteout hides vi.
    assert_eq!(d.ok(&["run", "--rm", &format!("{repo}:v1")]), "data\n");
    let o = d.ok(&[
        "run",
        "--rm",
        &format!("{repo}:v1"),
        "sh",
        "-c",
        "echo $GREETING; test -e /bin/vi || echo gone; tail -1 /etc/passwd",
    ]);
    assert_eq!(o, "hello\ngone\nx\n");
    // Bad change instructions are the client's fault.
    let o = d.docker(&["commit", "--change", "FROM x", &name]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("not a valid change command"),
        "{}",
        o.stderr
    );
    // Commit of a running container (paused meanwhile) keeps it running.
    let live = unique("live");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &live,
        IMAGE,
        "sh",
        "-c",
        "echo up > /up; sleep 1000",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.ok(&["commit", &live, &format!("{repo}:live")]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &live]).trim(),
        "running"
    );
    assert_eq!(
        d.ok(&["run", "--rm", &format!("{repo}:live"), "cat", "/up"]),
        "up\n"
    );
    d.finish();
}

#[test]
fn cp_both_directions_running_and_stopped_without_escapes() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("cp");
    d.ok(&[
        "run", "-d", "--name", &name, IMAGE, "sh", "-c",
        "ln -s / /esc && ln -s ../../../../../.. /tmp/up && mkdir -p /srv/in && echo inside > /srv/in/f && sleep 1000",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let tmp = tempfile::tempdir().unwrap();
    let host = tmp.path();

    // Host → container: a file, and a directory tree with its owners (-a).
    std::fs::write(host.join("one.txt"), "one\n").unwrap();
    std::fs::create_dir_all(host.join("tree/sub")).unwrap();
    std::fs::write(host.join("tree/sub/leaf"), "leaf\n").unwrap();
    std::os::unix::fs::chown(host.join("tree/sub/leaf"), Some(1234), Some(4321)).unwrap();
    d.ok(&[
        "cp",
        host.join("one.txt").to_str().unwrap(),
        &format!("{name}:/tmp/"),
    ]);
    assert_eq!(d.ok(&["exec", &name, "cat", "/tmp/one.txt"]), "one\n");
    // Without -a the container's root owns the copy.
    d.ok(&[
        "cp",
        host.join("tree").to_str().unwrap(),
        &format!("{name}:/tmp/t0"),
    ]);
    assert_eq!(
        d.ok(&["exec", &name, "stat", "-c", "%u:%g", "/tmp/t0/sub/leaf"]),
        "0:0\n"
    );
    d.ok(&[
        "cp",
        "-a",
        host.join("tree").to_str().unwrap(),
        &format!("{name}:/tmp/"),
    ]);
    assert_eq!(
        d.ok(&["exec", &name, "cat", "/tmp/tree/sub/leaf"]),
        "leaf\n"
    );
    assert_eq!(
        d.ok(&["exec", &name, "stat", "-c", "%u:%g", "/tmp/tree/sub/leaf"]),
        "1234:4321\n"
    );

    // Container → host: a file, a directory.
    d.ok(&[
        "cp",
        &format!("{name}:/srv/in/f"),
        host.join("f-out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("f-out")).unwrap(),
        "inside\n"
    );
    d.ok(&[
        "cp",
        &format!("{name}:/srv/in"),
        host.join("in-out").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("in-out/f")).unwrap(),
        "inside\n"
    );
    // Missing paths are docker's 404.
    let o = d.docker(&["cp", &format!("{name}:/nope"), host.to_str().unwrap()]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("Could not find the file /nope"),
        "{}",
        o.stderr
    );

    // Symlinks resolve inside the container: a host-only file stays out of
    // reach, and writes through a link land in the container.
    let marker = format!("berth-cp-marker-{}", std::process::id());
    std::fs::write(format!("/run/{marker}"), "host secret").unwrap();
    for via in ["/esc/run", "/tmp/up/run"] {
        let o = d.docker(&[
            "cp",
            &format!("{name}:{via}/{marker}"),
            host.to_str().unwrap(),
        ]);
        assert_ne!(o.code, 0, "read the host's file through {via}");
    }
    std::fs::write(host.join(&marker), "written\n").unwrap();
    d.ok(&[
        "cp",
        host.join(&marker).to_str().unwrap(),
        &format!("{name}:/esc/tmp/"),
    ]);
    assert!(!std::path::Path::new(&format!("/tmp/{marker}")).exists());
    assert_eq!(
        d.ok(&["exec", &name, "cat", &format!("/tmp/{marker}")]),
        "written\n"
    );
    let _ = std::fs::remove_file(format!("/run/{marker}"));

    // Stopped container: both directions still work.
    d.ok(&["stop", "-t", "0", &name]);
    d.ok(&[
        "cp",
        host.join("one.txt").to_str().unwrap(),
        &format!("{name}:/srv/"),
    ]);
    d.ok(&[
        "cp",
        &format!("{name}:/srv/one.txt"),
        host.join("back.txt").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(host.join("back.txt")).unwrap(),
        "one\n"
    );
    let o = d.docker(&[
        "cp",
        &format!("{name}:/esc/run/{marker}"),
        host.to_str().unwrap(),
    ]);
    assert_ne!(o.code, 0);
    // A stopped container's volume is reached through its host source.
    let vol = unique("cpvol");
    let v = unique("cpv");
    d.ok(&[
        "create",
        "--name",
        &v,
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "true",
    ]);
    d.ok(&[
        "cp",
        host.join("one.txt").to_str().unwrap(),
        &format!("{v}:/data/"),
    ]);
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "cat",
        "/data/one.txt",
    ]);
    assert_eq!(o, "one\n");
    d.ok(&["rm", &v]);
    d.ok(&["volume", "rm", &vol]);

    // A directory cannot replace a file (noOverwriteDirNonDir).
    std::fs::create_dir_all(host.join("clash/one.txt")).unwrap();
    let o = d.docker(&[
        "cp",
        &format!("{}/.", host.join("clash").display()),
        &format!("{name}:/srv/"),
    ]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("cannot overwrite"), "{}", o.stderr);
    d.finish();
}

/// A raw GET whose body is binary (a tar): (status, body bytes).
fn get_bytes(d: &Daemon, path: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(d.socket()).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: berth\r\n\r\n").unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(resp.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&resp[..head_end])
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp[head_end..].to_vec())
}

/// CVE-2018-15664: while `docker cp` and `docker export` walk a running
/// container, a file and a directory in it keep being swapped for symlinks
/// to a host path (by a tight loop writing through /proc/<pid>/root, as a
/// compiled program in the container would; busybox sh is too slow to hit
/// the window). The daemon must archive the links as links and never the
/// host's content behind them.
#[test]
fn cp_and_export_never_follow_links_swapped_in_during_the_walk() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let secret = format!("berth-host-secret-{}", std::process::id());
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("f"), &secret).unwrap();
    let name = unique("cprace");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /srv/d && exec sleep 1000",
    ]);
    let pid = d.ok(&["inspect", "-f", "{{.State.Pid}}", &name]);
    let dir = std::path::PathBuf::from(format!("/proc/{}/root/srv/d", pid.trim()));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !dir.is_dir() {
        assert!(
            std::time::Instant::now() < end,
            "no /srv/d in the container"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Each name flips between a real entry and a link to the host with one
    // renameat2(RENAME_EXCHANGE), so it is always one or the other.
    std::fs::create_dir(dir.join("x")).unwrap();
    std::fs::write(dir.join("x/f"), "ok").unwrap();
    std::fs::write(dir.join("f"), "ok").unwrap();
    std::os::unix::fs::symlink(host_dir.path(), dir.join("x.l")).unwrap();
    std::os::unix::fs::symlink(host_dir.path().join("f"), dir.join("f.l")).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flipper = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let c = |n: &str| std::ffi::CString::new(dir.join(n).to_str().unwrap()).unwrap();
            let pairs = [(c("x"), c("x.l")), (c("f"), c("f.l"))];
            while !stop.load(Ordering::Relaxed) {
                for (a, b) in &pairs {
                    // SAFETY: valid C strings; RENAME_EXCHANGE swaps two names.
                    unsafe {
                        libc::renameat2(
                            libc::AT_FDCWD,
                            a.as_ptr(),
                            libc::AT_FDCWD,
                            b.as_ptr(),
                            libc::RENAME_EXCHANGE,
                        )
                    };
                }
            }
        })
    };
    let contains = |hay: &[u8]| hay.windows(secret.len()).any(|w| w == secret.as_bytes());
    let end = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let (mut archives, mut leaks) = (0, Vec::new());
    while std::time::Instant::now() < end {
        let (code, body) = get_bytes(&d, &format!("/containers/{name}/archive?path=/srv/d"));
        // A name vanishing mid-walk may fail a request; a leak must not pass.
        if contains(&body) {
            leaks.push("docker cp");
        }
        if code == 200 {
            archives += 1;
        }
        // An export walks the whole rootfs (slow): one per ten copies.
        if archives % 10 == 1 {
            let (_, body) = get_bytes(&d, &format!("/containers/{name}/export"));
            if contains(&body) {
                leaks.push("docker export");
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(leaks.is_empty(), "host file archived by {leaks:?}");
    assert!(archives > 20, "only {archives} archives completed");
    d.finish();
}
