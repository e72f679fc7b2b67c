//! Root-only, opt-in (`BERTH_DOCKER_COMPARE=1`, needs the shared dockerd
//! on /var/run/docker.sock): the same `docker run` options on dockerd and
//! on a private berthd must look the same from inside the container, and
//! inspect's `Mounts` must have the same shape.

mod common;

use std::process::Command;

use common::*;

fn enabled() -> bool {
    if std::env::var("BERTH_DOCKER_COMPARE").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_DOCKER_COMPARE=1 to compare with dockerd");
        return false;
    }
    true
}

/// The docker CLI against the shared dockerd.
fn dockerd(args: &[&str]) -> String {
    let out = Command::new(DOCKER)
        .args(args)
        .env("DOCKER_HOST", "unix:///var/run/docker.sock")
        .env_remove("DOCKER_CONTEXT")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dockerd: docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn run_options_match_dockerd() {
    if !enabled() {
        return;
    }
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let dev_shm = "grep ' /dev/shm ' /proc/mounts | cut -d' ' -f3,4";
    let cases: &[(&[&str], &str)] = &[
        (&["-u", "nobody"], "id"),
        (&["-u", "daemon:tty", "--group-add", "nogroup"], "id"),
        (&["-u", "1000"], "id"),
        (&[], "grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status"),
        (
            &[
                "--cap-drop",
                "ALL",
                "--cap-add",
                "NET_RAW",
                "--cap-add",
                "chown",
            ],
            "grep CapEff /proc/self/status",
        ),
        (&["--ulimit", "nofile=1024:2048"], "ulimit -n; ulimit -Hn"),
        (&["--shm-size", "8m"], dev_shm),
        (&[], dev_shm),
        (
            &["--tmpfs", "/x:size=1m"],
            "grep ' /x ' /proc/mounts | cut -d' ' -f3,4",
        ),
        (
            &[
                "--mount",
                "type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=1770",
            ],
            "grep ' /t ' /proc/mounts | cut -d' ' -f3,4; stat -c %a /t",
        ),
        (&["-w", "/made/by/w"], "pwd; stat -c '%a %u' /made /made/by"),
        (
            &["--read-only"],
            "touch /x 2>&1; grep ' / ' /proc/mounts | cut -d' ' -f4 | cut -d, -f1",
        ),
        (
            &["--security-opt", "no-new-privileges"],
            "grep -E 'NoNewPrivs|Seccomp:' /proc/self/status",
        ),
        (
            &["--security-opt", "seccomp=unconfined"],
            "grep -E 'Seccomp:' /proc/self/status",
        ),
        (
            &["--sysctl", "kernel.shmmni=1000"],
            "cat /proc/sys/kernel/shmmni",
        ),
        (&["-v", "/etc-copy"], "stat -c '%a %u' /etc-copy"),
        (&["--entrypoint", "", "-e", "X=1"], "echo $X"),
        (&["--hostname", "boxy"], "hostname; cat /etc/hostname"),
        (&["--init"], "cat /proc/1/cmdline | tr '\\0' ' '"),
        (
            &["--ipc", "none"],
            "grep -c ' /dev/shm ' /proc/mounts || true",
        ),
        (
            &["--device", "/dev/null:/dev/mynull:rw"],
            "ls -l /dev/mynull | cut -c1-10,35-",
        ),
        (
            &["--memory", "64m", "--pids-limit", "50"],
            "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max",
        ),
        (
            &["--cpus", "0.5", "--cpu-shares", "512"],
            "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.shares 2>/dev/null || cat /sys/fs/cgroup/cpu.max /sys/fs/cgroup/cpu.weight",
        ),
        (&[], "ls /dev | tr '\\n' ' '"),
    ];
    let mut diffs = Vec::new();
    for (opts, script) in cases {
        let run = |image: &str| {
            let mut a = vec!["run", "--rm", "--network", "none"];
            a.extend_from_slice(opts);
            a.extend_from_slice(&[image, "sh", "-c", script]);
            a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
        };
        let want = dockerd(
            &run("busybox:latest")
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        let got = d.ok(&run(IMAGE).iter().map(String::as_str).collect::<Vec<_>>());
        if want != got {
            diffs.push(format!(
                "{opts:?} {script}:\n  dockerd: {want:?}\n  berthd:  {got:?}"
            ));
        }
    }
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
    d.finish();
}

#[test]
fn mounts_and_volumes_match_dockerd() {
    if !enabled() {
        return;
    }
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let vol = unique("cmpvol");
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    let bind = format!("{}:/h", host.path().display());
    let named = format!("{vol}:/data:ro");
    let c = unique("cmp");
    let opts = |image: &str| -> Vec<String> {
        [
            "create",
            "--network",
            "none",
            "--name",
            &c,
            "-v",
            &named,
            "-v",
            &bind,
            "-v",
            "/anon",
            "--mount",
            "type=volume,dst=/mv",
            "--mount",
            "type=tmpfs,dst=/t",
            "--mount",
            &format!("type=bind,src={},dst=/b,readonly", host.path().display()),
            image,
            "true",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let shape = |json: &str| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        let mut out: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                // Names and host paths differ by nature; the rest must not.
                let named = m["Name"].as_str().is_some_and(|n| n == vol);
                format!(
                    "{} {} name={} mode={} rw={} prop={} driver={} keys={:?}",
                    m["Destination"],
                    m["Type"],
                    named,
                    m["Mode"],
                    m["RW"],
                    m["Propagation"],
                    m["Driver"],
                    m.as_object().unwrap().keys().collect::<Vec<_>>()
                )
            })
            .collect();
        out.sort();
        out
    };
    let args = opts("busybox:latest");
    dockerd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let want = shape(&dockerd(&["inspect", "--format", "{{json .Mounts}}", &c]));
    let vol_want: serde_json::Value =
        serde_json::from_str(&dockerd(&["volume", "inspect", &vol])).unwrap();
    dockerd(&["rm", "-v", &c]);
    dockerd(&["volume", "rm", &vol]);
    let args = opts(IMAGE);
    d.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let got = shape(&d.ok(&["inspect", "--format", "{{json .Mounts}}", &c]));
    let vol_got: serde_json::Value =
        serde_json::from_str(&d.ok(&["volume", "inspect", &vol])).unwrap();
    assert_eq!(got, want);
    let keys = |v: &serde_json::Value| {
        v[0].as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&vol_got), keys(&vol_want));
    for k in ["Driver", "Scope", "Labels", "Options"] {
        assert_eq!(vol_got[0][k], vol_want[0][k], "{k}");
    }
    d.ok(&["rm", "-v", &c]);
    d.ok(&["volume", "rm", &vol]);
    d.finish();
}
