//! Root-only abuse cases of issue #13 for the daemon and its store: limits
//! the host cannot honour, store permissions, torn records, orphan blobs.

mod common;

use std::path::Path;

use common::*;
use serde_json::{Value, json};

/// dockerd's warning for `--blkio-weight` on a host without the weight file.
const NO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";

/// Whether this host offers a block I/O weight (cgroup v1: the BFQ/CFQ file
/// in the blkio hierarchy's root; v2: the io controller).
fn host_has_blkio_weight() -> bool {
    let v1 = Path::new("/sys/fs/cgroup/blkio");
    if v1.is_dir() {
        return ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .any(|f| v1.join(f).exists());
    }
    std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
        .unwrap_or_default()
        .split_whitespace()
        .any(|c| c == "io")
}

/// `--blkio-weight` where the host cannot apply it: berthd, as dockerd,
/// drops it with dockerd's warning in the create response and runs the
/// container; where it can, the weight reaches the container's cgroup.
#[test]
fn abuse_blkio_weight_is_dropped_with_dockerds_warning_or_applied() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("bw");
    let body = json!({"Image": IMAGE, "Cmd": ["sleep", "30"], "HostConfig": {"BlkioWeight": 300}});
    let (code, resp) = d.http_json(
        "POST",
        &format!("/containers/create?name={name}"),
        &body.to_string(),
    );
    assert_eq!(code, 201, "{resp}");
    let v: Value = serde_json::from_str(&resp).unwrap();
    d.ok(&["start", &name]);
    if host_has_blkio_weight() {
        assert_eq!(v["Warnings"], json!([]), "{resp}");
        let id = v["Id"].as_str().unwrap();
        let dir = Path::new("/sys/fs/cgroup/blkio/berth").join(id);
        let weight = ["blkio.weight", "blkio.bfq.weight"]
            .iter()
            .find_map(|f| std::fs::read_to_string(dir.join(f)).ok())
            .unwrap_or_default();
        assert!(weight.trim().ends_with("300"), "{weight}");
    } else {
        assert_eq!(v["Warnings"], json!([NO_WEIGHT]), "{resp}");
        let hc = d.ok(&["inspect", "-f", "{{.HostConfig.BlkioWeight}}", &name]);
        assert_eq!(hc.trim(), "0");
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", &name]).trim(),
        "true"
    );
    // Through the docker CLI, which prints the warning as it does for dockerd.
    let o = d.docker(&["run", "--rm", "--blkio-weight", "300", IMAGE, "true"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        o.stderr.contains(NO_WEIGHT),
        !host_has_blkio_weight(),
        "{}",
        o.stderr
    );
    // Out of range is refused where a weight is supported; dockerd drops it
    // first where none is.
    let o = d.docker(&["create", "--blkio-weight", "5", IMAGE, "true"]);
    if host_has_blkio_weight() {
        assert_ne!(o.code, 0);
        assert!(
            o.stderr
                .contains("Range of blkio weight is from 10 to 1000"),
            "{}",
            o.stderr
        );
    } else {
        assert_eq!(o.code, 0, "{}", o.stderr);
    }
    d.finish();
}

/// `cat path` as `nobody`: Ok(contents) or Err(stderr).
fn read_as_nobody(path: &Path) -> Result<String, String> {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
        .arg(path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

fn chmod(p: &Path, m: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

/// A local user reads neither a container's record (its environment, with
/// passwords), its spec nor its log; a store left world-readable by an older
/// berthd is tightened at startup; containers running as a non-root user
/// still work.
#[test]
fn abuse_store_is_not_readable_by_local_users() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("secret");
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            &name,
            "-e",
            "SECRET=hunter2",
            IMAGE,
            "sh",
            "-c",
            "echo topsecret-output; sleep 300",
        ])
        .trim()
        .to_string();
    let root = d.root.path().to_path_buf();
    let cdir = root.join("containers").join(&id);
    let log = cdir.join(format!("{id}-json.log"));
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(&log).is_ok_and(|l| l.contains("topsecret-output")) {
        assert!(std::time::Instant::now() < end, "no log line");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let secrets = [
        cdir.join("config.v2.json"),
        cdir.join("config.json"),
        log.clone(),
    ];
    // Fresh files: private whatever the dirs above allow.
    assert_eq!(mode(&secrets[0]), 0o600);
    assert_eq!(mode(&secrets[1]), 0o600);
    assert_eq!(mode(&log), 0o640);

    // As an older berthd left it: every dir 0755, every file 0644 (the
    // temp root starts 0700; /var/lib/berth was 0755).
    d.kill9();
    for dir in [
        &root,
        &root.join("containers"),
        &cdir,
        &d.exec_root.path().to_path_buf(),
    ] {
        chmod(dir, 0o755);
    }
    for f in &secrets {
        chmod(f, 0o644);
    }
    assert!(
        read_as_nobody(&secrets[0]).is_ok_and(|c| c.contains("hunter2")),
        "the setup must be readable before the restart"
    );
    d.spawn();
    assert_eq!(mode(&root), 0o710);
    assert_eq!(mode(&root.join("containers")), 0o710);
    assert_eq!(mode(d.exec_root.path()), 0o700);
    for f in &secrets {
        let err = read_as_nobody(f).expect_err(&format!("{} readable", f.display()));
        assert!(err.contains("Permission denied"), "{err}");
    }
    // Even with the dirs opened up again, the files themselves are private.
    chmod(&root, 0o755);
    chmod(&root.join("containers"), 0o755);
    chmod(&cdir, 0o755);
    for f in &secrets {
        let err = read_as_nobody(f).expect_err(&format!("{} readable", f.display()));
        assert!(err.contains("Permission denied"), "{err}");
    }
    chmod(&root, 0o710);
    // The container kept running and is still served; a non-root container
    // reads its image, /etc/hosts and writes /tmp.
    assert!(d.ok(&["logs", &name]).contains("topsecret-output"));
    let out = d.ok(&[
        "run",
        "--rm",
        "-u",
        "65534:65534",
        IMAGE,
        "sh",
        "-c",
        "ls / >/dev/null && cat /etc/hosts >/dev/null && echo ok > /tmp/x && cat /tmp/x && id -u",
    ]);
    assert_eq!(out, "ok\n65534\n");
    d.finish();
}

/// A runtime whose `delete` fails twice before it works: the background
/// teardown of a `--rm` container retries it (with back-off, logged) and
/// leaves nothing; it used to give up at once, leaving the runtime's state
/// and the container's cgroup.
#[test]
fn abuse_teardown_retries_a_failed_runtime_delete() {
    let mut d = Daemon::start();
    d.kill9();
    let runtime = Path::new(BERTHD.as_str())
        .parent()
        .unwrap()
        .join("berth-runtime");
    let dir = tempfile::tempdir().unwrap();
    let count = dir.path().join("deletes");
    let wrapper = dir.path().join("flaky-runtime");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do\n  if [ \"$a\" = delete ]; then\n    \
             n=$(cat {c} 2>/dev/null || echo 0); echo $((n+1)) > {c}\n    \
             if [ $n -lt 2 ]; then echo 'injected delete failure' >&2; exit 1; fi\n  fi\n\
             done\nexec {rt} \"$@\"\n",
            c = count.display(),
            rt = runtime.display()
        ),
    )
    .unwrap();
    chmod(&wrapper, 0o755);
    d.spawn_with(&["--runtime", wrapper.to_str().unwrap()]);
    d.ok(&["pull", "-q", IMAGE]);
    let o = d.docker(&["run", "--rm", IMAGE, "true"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let trash = d.root.path().join("trash");
    let runtime_state = d.exec_root.path().join("runtime");
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let left = |p: &Path| {
        std::fs::read_dir(p)
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != ".seccomp-cache")
                    .count()
            })
            .unwrap_or(0)
    };
    while left(&trash) + left(&runtime_state) > 0 {
        assert!(
            std::time::Instant::now() < end,
            "teardown left {} in the trash and {} runtime states\n{}",
            left(&trash),
            left(&runtime_state),
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let deletes: u32 = std::fs::read_to_string(&count)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(deletes >= 3, "{deletes} deletes");
    assert!(
        d.log().contains("runtime delete failed (attempt 1 of 5)"),
        "{}",
        d.log()
    );
    d.finish();
}

/// A `--rm` container's record torn by a power cut (its record is never
/// fsynced; here: emptied while berthd was down): the next berthd logs it
/// and tears the container down — shim, runtime state, mount, dir — where
/// it used to skip it and keep its dir for ever.
#[test]
fn abuse_torn_rm_record_is_torn_down_at_restore() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let id = d
        .ok(&["run", "-d", "--rm", IMAGE, "sleep", "300"])
        .trim()
        .to_string();
    d.kill9();
    let cdir = d.root.path().join("containers").join(&id);
    std::fs::write(cdir.join("config.v2.json"), "").unwrap();
    let _ = std::fs::remove_file(cdir.join("config.v2.started.json"));
    d.spawn();
    let trash = d.root.path().join("trash").join(&id);
    let runtime_state = d.exec_root.path().join("runtime").join(&id);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while cdir.exists() || trash.exists() || runtime_state.exists() {
        assert!(
            std::time::Instant::now() < end,
            "torn container left: dir {} trash {} runtime state {}\n{}",
            cdir.exists(),
            trash.exists(),
            runtime_state.exists(),
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = d.log();
    assert!(
        log.contains("is unreadable (EOF while parsing")
            && log.contains(&format!("tearing container {id} down")),
        "{log}"
    );
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    d.finish();
}

/// What a failed pull leaves — a committed blob no image names, and a
/// partial download nobody resumes — goes with `image prune`; a partial
/// download younger than the grace period (a pull may be about to resume
/// it) and the images' own data stay.
#[test]
fn abuse_image_prune_removes_what_failed_pulls_left() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let content = d.root.path().join("content");
    let blob = b"config of a pull that failed\n";
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(blob)?;
            c.wait_with_output()
        })
        .unwrap();
    let hex = String::from_utf8(out.stdout).unwrap()[..64].to_string();
    let orphan = content.join("blobs/sha256").join(&hex);
    std::fs::write(&orphan, blob).unwrap();
    let partial = |c: char, age: std::time::Duration| {
        let dir = content
            .join("ingest")
            .join(format!("sha256-{}", c.to_string().repeat(64)));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("lock"), "").unwrap();
        let f = std::fs::File::create(dir.join("data")).unwrap();
        std::io::Write::write_all(&mut &f, &[0u8; 4096]).unwrap();
        f.set_modified(std::time::SystemTime::now() - age).unwrap();
        dir
    };
    let abandoned = partial('a', std::time::Duration::from_secs(2 * 3600));
    let recent = partial('b', std::time::Duration::from_secs(60));
    let (code, body) = d.http_json("POST", "/images/prune", "");
    assert_eq!(code, 200, "{body}");
    assert!(!orphan.exists(), "orphan blob kept");
    assert!(!abandoned.exists(), "abandoned partial download kept");
    assert!(recent.exists(), "a recent partial download went");
    assert_eq!(d.ok(&["run", "--rm", IMAGE, "echo", "intact"]), "intact\n");
    d.finish();
}
