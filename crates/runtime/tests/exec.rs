//! exec, ps, pause/resume, update and events on running containers.

mod common;

use common::*;
use serde_json::json;

fn running(rt: &Runtime, args: &[&str], name: &str) -> (Bundle, String) {
    let b = Bundle::busybox(args);
    b.write();
    let id = unique_id(name);
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    (b, id)
}

#[test]
fn exec_joins_every_namespace_and_the_cgroup() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, &["sleep", "1000"], "exec");
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    let out = rt.ok(&["exec", &id, "sh", "-c", "hostname; for n in mnt net ipc uts pid cgroup; do readlink /proc/self/ns/$n; done; cat /proc/1/cmdline | tr '\\0' ' '; echo; grep ':pids:' /proc/self/cgroup"]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "berth-test");
    for (i, n) in ["mnt", "net", "ipc", "uts", "pid", "cgroup"]
        .iter()
        .enumerate()
    {
        let want = std::fs::read_link(format!("/proc/{init}/ns/{n}")).unwrap();
        assert_eq!(l[1 + i], want.to_str().unwrap(), "namespace {n}");
    }
    assert_eq!(l[7].trim(), "sleep 1000");
    assert_eq!(
        l[8], "8:pids:/",
        "exec process outside the container cgroup"
    );
}

#[test]
fn exec_exit_code_user_env_cwd_and_caps() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, &["sleep", "1000"], "execopts");
    let out = rt.output(&["exec", &id, "sh", "-c", "exit 7"]);
    assert_eq!(out.status.code(), Some(7));
    let out = rt.ok(&[
        "exec",
        "--user",
        "1000:1000",
        "--cwd",
        "/tmp",
        "-e",
        "A=b",
        &id,
        "sh",
        "-c",
        "id -u; id -g; pwd; echo $A; grep CapEff /proc/self/status",
    ]);
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(&l[..4], &["1000", "1000", "/tmp", "b"]);
    assert!(l[4].ends_with("0000000000000000"), "{}", l[4]);
    // A process.json replaces the arguments.
    let pj = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pj.path(), json!({"args": ["sh", "-c", "echo from-json; exit 3"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}).to_string()).unwrap();
    let out = rt.output(&["exec", "--process", pj.path().to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from-json\n");
    let out = rt.output(&["exec", &id, "/no/such/binary"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/binary"));
}

#[test]
fn no_descriptors_leak_into_the_container() {
    let rt = Runtime::new();
    // Open a few extra descriptors in the runtime's parent: they must not reach the container.
    let b = Bundle::busybox(&["sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"]);
    b.write();
    let id = unique_id("fds");
    let extra = std::fs::File::open("/etc/hostname").unwrap();
    let extra2 = std::fs::File::open("/etc/passwd").unwrap();
    use std::os::fd::AsRawFd;
    // Make them inheritable across exec into the runtime.
    for f in [&extra, &extra2] {
        unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETFD, 0) };
    }
    let out = rt.ok(&["run", "--bundle", b.path().to_str().unwrap(), &id]);
    // 0,1,2 and the descriptor ls uses for the directory itself.
    assert_eq!(out.trim(), "0 1 2 3", "leaked descriptors: {out}");
    let (_b2, id2) = running(&rt, &["sleep", "1000"], "fdsexec");
    let out = rt.ok(&[
        "exec",
        &id2,
        "sh",
        "-c",
        "ls /proc/self/fd | sort -n | tr '\\n' ' '",
    ]);
    assert_eq!(out.trim(), "0 1 2 3", "leaked descriptors in exec: {out}");
}

#[test]
fn detached_exec_writes_pid_and_dies_with_the_container() {
    let rt = Runtime::new();
    let (b, id) = running(&rt, &["sleep", "1000"], "execd");
    let pidfile = b.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    let pids: Vec<i32> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "{pid} not in {pids:?}");
    assert_eq!(pids.len(), 2);
    rt.ok(&["kill", &id, "KILL"]);
    assert!(
        wait_until(3000, || std::fs::read_to_string(format!(
            "/proc/{pid}/stat"
        ))
        .map(|s| s.contains(") Z"))
        .unwrap_or(true)),
        "exec'd process outlived the container's init"
    );
}

#[test]
fn pause_resume_update_and_stats() {
    let rt = Runtime::new();
    let (_b, id) = running(
        &rt,
        &["sh", "-c", "while :; do echo x > /dev/null; done"],
        "pause",
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["pause", &id]);
    assert_eq!(rt.status(&id), "paused");
    let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    assert!(
        st.rsplit(')').next().unwrap().trim_start().starts_with('D'),
        "not frozen: {st}"
    );
    assert!(
        !rt.output(&["pause", &id]).status.success(),
        "pausing twice must fail"
    );
    rt.ok(&["resume", &id]);
    assert_eq!(rt.status(&id), "running");
    rt.ok(&[
        "update",
        "--memory",
        "52428800",
        "--pids-limit",
        "20",
        "--cpu-quota",
        "20000",
        &id,
    ]);
    let base = |c: &str, f: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{c}/berth/{id}/{f}"))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(base("memory", "memory.limit_in_bytes"), "52428800");
    assert_eq!(base("pids", "pids.max"), "20");
    assert_eq!(base("cpu", "cpu.cfs_quota_us"), "20000");
    let ev: serde_json::Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["data"]["pids"]["current"], 1);
    assert!(ev["data"]["cpu"]["usage"]["total"].as_u64().unwrap() > 0);
    assert_eq!(ev["data"]["memory"]["usage"]["limit"], 52428800);
}

#[test]
fn force_delete_of_a_paused_container_is_quick_and_complete() {
    let rt = Runtime::new();
    let (_b, id) = running(&rt, &["sh", "-c", "sleep 1000 & sleep 1000"], "pausedel");
    rt.ok(&["pause", &id]);
    let t = std::time::Instant::now();
    rt.ok(&["delete", "--force", &id]);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    for d in cgroup_dirs(&format!("/berth/{id}")) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// Lines of `/proc/<pid>/cgroup` (as the host sees them) that are not the
/// container's cgroup: every hierarchy, cgroup2 included, must say
/// `/berth/<id>`. The init is born into the cgroup2 part (CLONE_INTO_CGROUP)
/// and joins the v1 hierarchies itself, so this checks both paths.
fn outside_cgroup(pid: i64, id: &str) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap()
        .lines()
        .filter(|l| !l.ends_with(&format!("/berth/{id}")))
        .map(String::from)
        .collect()
}

#[test]
fn created_init_and_exec_processes_are_in_every_hierarchy() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    b.write();
    let id = unique_id("joinall");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let init = rt.state(&id)["pid"].as_i64().unwrap();
    // Before start too: hooks and `ps` see the created container in its cgroup.
    assert_eq!(outside_cgroup(init, &id), Vec::<String>::new());
    rt.ok(&["start", &id]);
    let dir = tempfile::tempdir().unwrap();
    let pf = dir.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pf.to_str().unwrap(),
        &id,
        "sleep",
        "1000",
    ]);
    let pid: i64 = std::fs::read_to_string(&pf)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(outside_cgroup(pid, &id), Vec::<String>::new());
    rt.ok(&["kill", &id, "KILL"]);
    assert!(wait_until(3000, || rt.status(&id) == "stopped"));
    rt.ok(&["delete", &id]);
}
