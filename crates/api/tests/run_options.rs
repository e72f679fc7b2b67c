//! Root-only: `docker run` options checked from inside the container
//! (ids, cgroup files, limits, capabilities, namespaces), through the
//! docker CLI against a private berthd.

mod common;

use std::time::{Duration, Instant};

use common::*;

/// `docker run --rm [opts] busybox sh -c script` that must succeed.
fn sh(d: &Daemon, opts: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    d.ok(&args)
}

/// The same, expected to fail: its stderr.
fn sh_err(d: &Daemon, opts: &[&str], script: &str) -> String {
    let mut args = vec!["run", "--rm"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[IMAGE, "sh", "-c", script]);
    let o = d.docker(&args);
    assert_ne!(o.code, 0, "docker {args:?} succeeded: {}", o.stdout);
    o.stderr
}

#[test]
fn user_workdir_entrypoint_env_init_stop_signal() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    assert_eq!(
        sh(&d, &["-u", "nobody"], "id").trim(),
        "uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)"
    );
    assert_eq!(
        sh(
            &d,
            &[
                "-u",
                "daemon:tty",
                "--group-add",
                "nogroup",
                "--group-add",
                "4242"
            ],
            "id -u; id -g; id -G"
        )
        .trim(),
        "1\n5\n5 4242 65534"
    );
    let e = sh_err(&d, &["-u", "nosuchuser"], "true");
    assert!(e.contains("nosuchuser"), "{e}");
    assert_eq!(sh(&d, &["-w", "/made/by/w"], "pwd").trim(), "/made/by/w");
    let o = d.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        IMAGE,
        "via",
        "entrypoint",
    ]);
    assert_eq!(o, "via entrypoint\n");
    assert_eq!(
        sh(&d, &["--hostname", "boxy"], "hostname; cat /etc/hostname"),
        "boxy\nboxy\n"
    );
    let env = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(env.path(), "FROM_FILE=yes\n# comment\n").unwrap();
    let o = sh(
        &d,
        &["-e", "A=1", "--env-file", &env.path().display().to_string()],
        "echo $A $FROM_FILE",
    );
    assert_eq!(o, "1 yes\n");
    let e = sh_err(&d, &["--read-only"], "touch /x");
    assert!(e.is_empty() || !e.contains("Error response"), "{e}");
    assert_eq!(
        sh(
            &d,
            &["--read-only", "--tmpfs", "/w"],
            "touch /w/x && echo ok"
        ),
        "ok\n"
    );
    // --init: tini (static) is PID 1 and reaps; the command is its child.
    let o = sh(
        &d,
        &["--init"],
        "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
    );
    assert!(o.starts_with("/sbin/docker-init -- sh -c"), "{o}");
    assert_ne!(o.lines().nth(1), Some("1"), "{o}");
    // Labels.
    let c = unique("labels");
    d.ok(&["create", "--name", &c, "-l", "team=core", IMAGE, "true"]);
    assert_eq!(
        d.ok(&[
            "inspect",
            "--format",
            "{{index .Config.Labels \"team\"}}",
            &c
        ])
        .trim(),
        "core"
    );
    d.ok(&["rm", &c]);
    // --stop-signal / --stop-timeout are what `docker stop` uses.
    let s = unique("stopsig");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &s,
        "--stop-signal",
        "USR1",
        "--stop-timeout",
        "30",
        IMAGE,
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 7' USR1; while true; do sleep 0.1; done",
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    d.ok(&["stop", &s]);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "stop took {:?}",
        t.elapsed()
    );
    assert_eq!(
        d.ok(&["inspect", "--format", "{{.State.ExitCode}}", &s])
            .trim(),
        "7"
    );
    assert_eq!(d.ok(&["logs", &s]), "got-usr1\n");
    d.ok(&["rm", &s]);
    // --pull never with an image the daemon lacks: a clean "No such image".
    let o = d.docker(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "localhost:5000/nosuch-berth:latest",
        "true",
    ]);
    assert!(
        o.code == 125 && o.stderr.contains("No such image"),
        "{} {}",
        o.code,
        o.stderr
    );
    d.finish();
}

#[test]
fn resources_ulimits_shm_sysctls() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let v2 = std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
    let opts = [
        "--memory",
        "64m",
        "--memory-swap",
        "96m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
    ];
    let o = if v2 {
        sh(
            &d,
            &opts,
            "cd /sys/fs/cgroup; cat memory.max memory.swap.max cpu.max cpu.weight cpuset.cpus pids.max",
        )
    } else {
        sh(
            &d,
            &opts,
            "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes \
            cpu/cpu.cfs_quota_us cpu/cpu.shares cpuset/cpuset.cpus pids/pids.max",
        )
    };
    let want = if v2 {
        "67108864\n33554432\n50000 100000\n20\n0\n50\n"
    } else {
        "67108864\n100663296\n50000\n512\n0\n50\n"
    };
    assert_eq!(o, want);
    assert_eq!(
        sh(
            &d,
            &["--ulimit", "nofile=1024:2048", "--ulimit", "nproc=500"],
            "ulimit -n; ulimit -Hn; ulimit -u"
        ),
        "1024\n2048\n500\n"
    );
    let e = sh_err(&d, &["--ulimit", "nofile=20:10"], "true");
    assert!(e.contains("soft limit"), "{e}");
    let o = sh(&d, &["--shm-size", "8m"], "grep ' /dev/shm ' /proc/mounts");
    assert!(o.contains("size=8192k"), "{o}");
    let o = sh(
        &d,
        &["--ipc", "none"],
        "grep -c ' /dev/shm ' /proc/mounts || true",
    );
    assert_eq!(o.trim(), "0");
    let o = sh(
        &d,
        &[
            "--sysctl",
            "net.ipv4.ip_forward=1",
            "--sysctl",
            "kernel.shmmni=1000",
        ],
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
    );
    assert_eq!(o, "1\n1000\n");
    let e = sh_err(&d, &["--sysctl", "kernel.panic=1"], "true");
    assert!(e.contains("kernel.panic"), "{e}");
    if !v2 {
        let o = sh(
            &d,
            &["--memory", "64m", "--oom-kill-disable"],
            "cat /sys/fs/cgroup/memory/memory.oom_control",
        );
        assert!(o.contains("oom_kill_disable 1"), "{o}");
    }
    d.finish();
}

#[test]
fn caps_privileged_devices_seccomp() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let caps = |opts: &[&str]| {
        sh(&d, opts, "grep CapEff /proc/self/status")
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(caps(&[]), "00000000a80425fb");
    assert_eq!(
        caps(&["--cap-drop", "ALL", "--cap-add", "NET_RAW"]),
        "0000000000002000"
    );
    assert_eq!(caps(&["--cap-drop", "chown"]), "00000000a80425fa");
    // Privileged: every capability this host lets berthd pass on.
    let full = caps(&["--privileged"]);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let bnd = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim();
    assert_eq!(full, bnd);
    assert_eq!(caps(&["--cap-add", "ALL"]), full);
    // --privileged: host devices, writable sysfs, mounts allowed, no seccomp.
    let o = sh(
        &d,
        &["--privileged"],
        "ls /dev/loop-control >/dev/null && echo dev; \
        mkdir /m && mount -t tmpfs t /m && echo mounted; grep Seccomp: /proc/self/status",
    );
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["dev", "mounted", "Seccomp:", "0"]
    );
    let o = sh(
        &d,
        &[],
        "ls /dev/loop-control 2>/dev/null || echo none; grep Seccomp: /proc/self/status",
    );
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["none", "Seccomp:", "2"]
    );
    // --device, renamed in the container, usable.
    let o = sh(
        &d,
        &["--device", "/dev/null:/dev/mynull:rw"],
        "ls -l /dev/mynull; echo x > /dev/mynull && echo wrote",
    );
    assert!(
        o.starts_with("crw") && o.contains("1,   3") && o.ends_with("wrote\n"),
        "{o}"
    );
    // Seccomp: unconfined, no-new-privileges and a profile from a file.
    let o = sh(
        &d,
        &[
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "no-new-privileges",
        ],
        "grep -E 'Seccomp:|NoNewPrivs:' /proc/self/status",
    );
    assert_eq!(
        o.split_whitespace().collect::<Vec<_>>(),
        ["NoNewPrivs:", "1", "Seccomp:", "0"]
    );
    let profile = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(profile.path(), r#"{"defaultAction":"SCMP_ACT_ALLOW",
        "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"]},
                   {"architecture":"SCMP_ARCH_AARCH64","subArchitectures":["SCMP_ARCH_ARM"]}],
        "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}"#).unwrap();
    let o = sh(
        &d,
        &[
            "--security-opt",
            &format!("seccomp={}", profile.path().display()),
        ],
        "mkdir /blocked 2>&1 || true; touch /allowed && echo touched",
    );
    assert!(
        o.contains("Operation not permitted") && o.ends_with("touched\n"),
        "{o}"
    );
    d.finish();
}

#[test]
fn namespace_modes() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let ns = |p: &str| std::fs::read_link(p).unwrap().display().to_string();
    let o = sh(
        &d,
        &[
            "--ipc",
            "host",
            "--uts",
            "host",
            "--pid",
            "host",
            "--cgroupns",
            "host",
        ],
        "for n in ipc uts pid; do readlink /proc/self/ns/$n; done; cat /proc/sys/kernel/hostname",
    );
    let host_name = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        o,
        format!(
            "{}\n{}\n{}\n{}",
            ns("/proc/self/ns/ipc"),
            ns("/proc/self/ns/uts"),
            ns("/proc/self/ns/pid"),
            host_name
        )
    );
    let o = sh(
        &d,
        &[],
        "readlink /proc/self/ns/ipc; readlink /proc/self/ns/pid",
    );
    assert!(
        !o.contains(&ns("/proc/self/ns/ipc")) && !o.contains(&ns("/proc/self/ns/pid")),
        "{o}"
    );
    // Joining another container's pid and ipc namespaces.
    let t = unique("target");
    d.ok(&["run", "-d", "--name", &t, IMAGE, "sleep", "1000"]);
    let o = sh(
        &d,
        &[
            "--pid",
            &format!("container:{t}"),
            "--ipc",
            &format!("container:{t}"),
        ],
        "ps -o comm | grep -c sleep",
    );
    assert_eq!(o.trim(), "1");
    let o = d.docker(&[
        "run",
        "--rm",
        "--uts",
        "host",
        "--hostname",
        "x",
        IMAGE,
        "true",
    ]);
    assert_ne!(o.code, 0);
    // cgroup namespace: private shows the container's cgroup as the root.
    let private = sh(&d, &["--cgroupns", "private"], "cat /proc/self/cgroup");
    assert!(private.lines().all(|l| l.ends_with(":/")), "{private}");
    d.ok(&["rm", "-f", &t]);
    d.finish();
}
