//! Root-only: `docker run --rm` of many containers leaves nothing behind —
//! no shim or container process, mount, cgroup, or file under the private
//! exec root. BERTH_LEAK_N overrides the count (100 keeps CI fast).

mod common;

use std::path::Path;
use std::time::Instant;

use common::*;

/// cgroup dirs named `id` under any hierarchy's `berth/` parent.
fn cgroups_of(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let base = Path::new("/sys/fs/cgroup");
    let mut roots = vec![base.to_path_buf()];
    if let Ok(rd) = std::fs::read_dir(base) {
        roots.extend(rd.flatten().map(|e| e.path()));
    }
    for r in roots {
        let p = r.join("berth").join(id);
        if p.exists() {
            found.push(p.display().to_string());
        }
    }
    found
}

/// Removed containers' dirs wait in `<root>/trash` for the background
/// teardown: until it has deleted them all (or 20 s).
fn wait_trash_emptied(d: &Daemon) {
    let trash = d.root.path().join("trash");
    let end = Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read_dir(&trash).is_ok_and(|mut rd| rd.next().is_some()) {
        assert!(
            Instant::now() < end,
            "removed containers' files left in {trash:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn run_rm_many_leaves_nothing() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let n: usize = std::env::var("BERTH_LEAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let cids = tempfile::tempdir().unwrap();
    let threads = 4;
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let d = &d;
            let dir = cids.path();
            s.spawn(move || {
                for i in (t..n).step_by(threads) {
                    let f = dir.join(format!("{i}.cid"));
                    let f = f.display().to_string();
                    // Alternate plain runs (which exit 3: the removal follows
                    // the exit at once, and the client must still get the
                    // code), a tmpfs and an anonymous volume.
                    let o = match i % 3 {
                        0 => {
                            let o = d.docker(&[
                                "run",
                                "--rm",
                                "--cidfile",
                                &f,
                                IMAGE,
                                "sh",
                                "-c",
                                "echo hi; exit 3",
                            ]);
                            assert_eq!(o.code, 3, "{}", o.stderr);
                            o.stdout
                        }
                        1 => d.ok(&[
                            "run",
                            "--rm",
                            "--cidfile",
                            &f,
                            "--tmpfs",
                            "/t",
                            IMAGE,
                            "echo",
                            "hi",
                        ]),
                        _ => d.ok(&[
                            "run",
                            "--rm",
                            "--cidfile",
                            &f,
                            "-v",
                            "/anon",
                            IMAGE,
                            "echo",
                            "hi",
                        ]),
                    };
                    assert_eq!(o, "hi\n");
                }
            });
        }
    });
    let took = t0.elapsed();
    eprintln!(
        "{n} x docker run --rm in {took:?} ({:.1}/s with {threads} clients)",
        n as f64 / took.as_secs_f64()
    );
    let ids: Vec<String> = std::fs::read_dir(cids.path())
        .unwrap()
        .flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap()
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), n);
    // --rm finishes after the client returns: wait for the removals.
    let end = Instant::now() + std::time::Duration::from_secs(30);
    while !d.ok(&["ps", "-aq"]).trim().is_empty() {
        assert!(
            Instant::now() < end,
            "containers not removed: {}",
            d.ok(&["ps", "-a"])
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The record goes with the removal; the shim, the runtime's state and
    // cgroups, the mount and the files follow in the background (the
    // client does not wait for the disk): give those a while.
    for id in &ids {
        assert!(
            !d.root.path().join("containers").join(id).exists(),
            "record left for {id}"
        );
    }
    let end = Instant::now() + std::time::Duration::from_secs(20);
    for id in &ids {
        loop {
            let left = cgroups_of(id);
            if left.is_empty() {
                break;
            }
            assert!(Instant::now() < end, "cgroups left for {id}: {left:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    wait_trash_emptied(&d);
    // Anonymous volumes of --rm containers go with them.
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
    // No process, mount or state under the private roots (see finish).
    d.finish();
}

/// A daemon killed between a removal's answer and its background teardown
/// leaves the container's dir in `trash/` (its shim, mount and lease still
/// there); the next daemon finishes the job.
#[test]
fn next_daemon_finishes_an_interrupted_teardown() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let id = d.ok(&["create", "--rm", IMAGE, "true"]).trim().to_string();
    let dir = d.root.path().join("containers").join(&id);
    let lease = |d: &Daemon| {
        std::fs::read_dir(d.root.path().join("leases"))
            .unwrap()
            .flatten()
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|s| s.contains(&id)))
            .count()
    };
    assert_eq!(lease(&d), 1, "no lease for the created container");
    assert_eq!(mounts_under(&dir).len(), 1);
    d.kill9();
    // What the removal does before it answers: the dir goes to the trash.
    let trash = d.root.path().join("trash");
    std::fs::create_dir_all(&trash).unwrap();
    std::fs::rename(&dir, trash.join(&id)).unwrap();
    d.spawn();
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    let end = Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let shims = processes_mentioning(&d.exec_root.path().join("containers").join(&id));
        let left = (
            shims,
            mounts_under(d.root.path()),
            trash.join(&id).exists(),
            cgroups_of(&id),
            lease(&d),
        );
        if left == (vec![], vec![], false, vec![], 0) {
            break;
        }
        assert!(Instant::now() < end, "teardown not finished: {left:?}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.finish();
}

/// The overlay options of the mount at `target` (mountinfo's super options).
fn overlay_options(target: &Path) -> String {
    let t = target.canonicalize().unwrap().display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(t.as_str()))
        .and_then(|l| l.rsplit(' ').next().map(String::from))
        .unwrap_or_default()
}

/// A `--rm` container's upper dir is thrown away with it: its overlay is
/// `volatile` (no flush of the whole upper filesystem at unmount); any
/// other container's is not.
#[test]
fn only_rm_containers_get_a_volatile_overlay() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let rm = d.ok(&["create", "--rm", IMAGE, "true"]).trim().to_string();
    let kept = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    let rootfs = |id: &str| d.root.path().join("containers").join(id).join("rootfs");
    let (rm_opts, kept_opts) = (
        overlay_options(&rootfs(&rm)),
        overlay_options(&rootfs(&kept)),
    );
    assert!(rm_opts.contains("upperdir="), "{rm_opts}");
    assert!(rm_opts.contains("volatile"), "{rm_opts}");
    assert!(
        kept_opts.contains("upperdir=") && !kept_opts.contains("volatile"),
        "{kept_opts}"
    );
    d.ok(&["rm", &rm, &kept]);
    d.finish();
}

/// A create the runtime refuses (a tmpfs option the kernel rejects, which
/// the engine passes on unchecked: its mount fails while the container's
/// child sets up the rootfs) reports the runtime's own message to the
/// client, and its teardown leaves nothing. (A cpuset the host lacks no
/// longer gets this far: create refuses it, as dockerd.)
/// A tmpfs whose option only the kernel's mount refuses.
const BAD_TMPFS: &str = "/refused:nr_inodes=nonsense";

#[test]
fn refused_create_reports_the_runtime_error_and_leaves_nothing() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let o = d.docker(&["run", "--rm", "--tmpfs", BAD_TMPFS, IMAGE, "true"]);
    assert_eq!(o.code, 125, "{}", o.stderr);
    assert!(
        o.stderr.contains("failed to create container")
            && o.stderr.contains("berth-runtime")
            && o.stderr.contains("/refused"),
        "{}",
        o.stderr
    );
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    wait_trash_emptied(&d);
    d.finish();
}

/// With `--runtime runc` (any runc-compatible runtime), the same: the exit
/// code of a `--rm` container, exec, `rm -f`, a refused create's message,
/// and nothing left behind.
#[test]
fn runc_as_the_runtime_runs_removes_and_leaves_nothing() {
    let runc = Path::new("/usr/sbin/runc");
    if !runc.exists() {
        eprintln!("skipped: no {}", runc.display());
        return;
    }
    let mut d = Daemon::start();
    d.kill9();
    d.spawn_with(&["--runtime", "/usr/sbin/runc"]);
    d.ok(&["pull", "-q", IMAGE]);
    let o = d.docker(&["run", "--rm", IMAGE, "sh", "-c", "echo hi; exit 3"]);
    assert_eq!((o.code, o.stdout.as_str()), (3, "hi\n"), "{}", o.stderr);
    let id = d
        .ok(&["run", "-d", IMAGE, "sleep", "1000"])
        .trim()
        .to_string();
    assert_eq!(d.ok(&["exec", &id, "echo", "in"]), "in\n");
    d.ok(&["rm", "-f", &id]);
    let o = d.docker(&["run", "--rm", "--tmpfs", BAD_TMPFS, IMAGE, "true"]);
    // 125, or 127: the docker CLI says 127 for any error that mentions "no
    // such file or directory", which runc's warnings about the cgroup can.
    assert!(matches!(o.code, 125 | 127), "{} {}", o.code, o.stderr);
    assert!(o.stderr.contains("runc create failed"), "{}", o.stderr);
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    wait_trash_emptied(&d);
    d.finish();
}
