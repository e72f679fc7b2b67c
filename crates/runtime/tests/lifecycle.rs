//! Root-only integration tests: real containers from the busybox fixture on
//! the real kernel. What the container sees is checked from inside it.

mod common;

use common::*;
use serde_json::json;

#[test]
fn init_is_pid_1_with_its_own_hostname_and_no_host_processes() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "echo pid=$$; hostname; ps -o pid,comm | wc -l; ls /proc | grep -c '^[0-9]'",
    ]);
    let (code, out, err) = rt.run(&b, &unique_id("pid1"));
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pid=1");
    assert_eq!(lines[1], "berth-test");
    // Header + sh + ps + wc at most: no host processes.
    let ps_lines: usize = lines[2].trim().parse().unwrap();
    assert!(ps_lines <= 5, "container sees {ps_lines} ps lines: {out}");
    let procs: usize = lines[3].trim().parse().unwrap();
    assert!(procs <= 4, "container sees {procs} pids in /proc");
}

#[test]
fn host_mounts_are_invisible_and_masks_apply() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /proc/self/mountinfo; echo ---; cat /proc/timer_list | wc -c; echo x > /proc/sys/kernel/domainname && echo WROTE; true",
    ]);
    let (code, out, err) = rt.run(&b, &unique_id("mounts"));
    assert_eq!(code, 0, "{err}");
    let (mounts, rest) = out.split_once("---").unwrap();
    for line in mounts.lines() {
        let mp = line.split(' ').nth(4).unwrap();
        assert!(
            !mp.starts_with("/work")
                && !mp.starts_with("/var/tmp")
                && !mp.starts_with("/run/berth"),
            "host mount visible: {line}"
        );
    }
    assert!(
        mounts
            .lines()
            .any(|l| l.split(' ').nth(4) == Some("/sys/fs/cgroup"))
    );
    assert_eq!(
        rest.lines().nth(1).unwrap().trim(),
        "0",
        "masked /proc/timer_list readable"
    );
    assert!(!rest.contains("WROTE"), "readonly /proc/sys was writable");
    // Nothing of the container stays mounted on the host.
    let host = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host.contains(b.rootfs().to_str().unwrap()),
        "rootfs still mounted on host"
    );
}

#[test]
fn exit_codes_pass_through() {
    let rt = Runtime::new();
    for code in [0, 3, 42] {
        let b = Bundle::busybox(&["sh", "-c", &format!("exit {code}")]);
        assert_eq!(rt.run(&b, &unique_id("exit")).0, code);
    }
    let b = Bundle::busybox(&["sh", "-c", "kill -9 $$"]);
    // PID 1 ignores signals it has no handler for, except from its ancestors'
    // namespaces: exit through a child instead.
    let _ = b;
    let b = Bundle::busybox(&["/does/not/exist"]);
    let (code, _, err) = rt.run(&b, &unique_id("noexe"));
    assert_ne!(code, 0);
    assert!(
        err.contains("/does/not/exist"),
        "error does not name the binary: {err}"
    );
}

#[test]
fn process_attributes_are_applied() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "id -u; id -g; id -G; umask; pwd; ulimit -n; echo $FOO; cat /proc/self/oom_score_adj; grep NoNewPrivs /proc/self/status; grep CapEff /proc/self/status",
    ]);
    b.config["process"]["user"] =
        json!({"uid": 1000, "gid": 1001, "additionalGids": [5, 1002], "umask": 63});
    b.config["process"]["cwd"] = json!("/tmp");
    b.config["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("FOO=bar"));
    b.config["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 333, "soft": 222}]);
    b.config["process"]["oomScoreAdj"] = json!(123);
    let (code, out, err) = rt.run(&b, &unique_id("proc"));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "1000");
    assert_eq!(l[1], "1001");
    assert!(
        l[2].split(' ').any(|g| g == "1002") && l[2].split(' ').any(|g| g == "5"),
        "groups {}",
        l[2]
    );
    assert_eq!(l[3], "0077");
    assert_eq!(l[4], "/tmp");
    assert_eq!(l[5], "222");
    assert_eq!(l[6], "bar");
    assert_eq!(l[7], "123");
    assert!(l[8].ends_with('1'), "{}", l[8]);
    // Non-root user without ambient caps: no effective capabilities.
    assert!(l[9].ends_with("0000000000000000"), "{}", l[9]);
}

#[test]
fn root_capabilities_follow_the_bounding_set() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep CapBnd /proc/self/status; grep CapEff /proc/self/status",
    ]);
    let (code, out, err) = rt.run(&b, &unique_id("caps"));
    assert_eq!(code, 0, "{err}");
    // CHOWN(0) DAC_OVERRIDE(1) FOWNER(3) KILL(5) SETGID(6) SETUID(7) NET_BIND_SERVICE(10) SYS_CHROOT(18)
    let want = format!(
        "{:016x}",
        (1u64 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 10) | (1 << 18)
    );
    for line in out.lines() {
        assert!(line.ends_with(&want), "{line} != {want}");
    }
}

#[test]
fn readonly_root_and_bind_mounts() {
    let rt = Runtime::new();
    let host_dir = tempfile::tempdir().unwrap();
    std::fs::write(host_dir.path().join("f"), "from-host").unwrap();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /data/f; touch /x 2>/dev/null && echo ROOT-RW; touch /data/g 2>/dev/null && echo DATA-RW; touch /rw/g && echo RW-OK; grep ' /data ' /proc/self/mountinfo",
    ]);
    b.config["root"]["readonly"] = json!(true);
    let mounts = b.config["mounts"].as_array_mut().unwrap();
    mounts.push(json!({"destination": "/data", "type": "bind", "source": host_dir.path(), "options": ["rbind", "ro", "nosuid", "nodev"]}));
    mounts.push(
        json!({"destination": "/rw", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}),
    );
    let (code, out, err) = rt.run(&b, &unique_id("ro"));
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("from-host"), "{out}");
    assert!(
        !out.contains("ROOT-RW") && !out.contains("DATA-RW"),
        "{out}"
    );
    assert!(out.contains("RW-OK"), "{out}");
    let data_line = out.lines().last().unwrap();
    assert!(data_line.contains("ro,nosuid,nodev"), "{data_line}");
}

#[test]
fn create_start_state_kill_delete() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "trap 'echo got-term > /tmp/sig; exit 7' TERM; while :; do sleep 0.05; done",
    ]);
    b.write();
    let id = unique_id("life");
    let pidfile = b.path().join("pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.path().to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pidfile).unwrap(), pid.to_string());
    // Created: the user process has not run yet.
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains("trap"));
    let dup = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    rt.ok(&["start", &id]);
    assert_eq!(rt.status(&id), "running");
    // start twice is an error
    assert!(!rt.output(&["start", &id]).status.success());
    // running containers can't be deleted without --force
    assert!(!rt.output(&["delete", &id]).status.success());
    rt.ok(&["kill", &id, "TERM"]);
    assert!(
        wait_until(5000, || rt.status(&id) == "stopped"),
        "TERM did not stop the container"
    );
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("tmp/sig"))
            .unwrap()
            .trim(),
        "got-term"
    );
    assert_eq!(rt.state(&id)["pid"], 0);
    assert!(
        !rt.output(&["kill", &id, "KILL"]).status.success(),
        "kill of a stopped container must fail"
    );
    let list = rt.ok(&["list", "--format", "json"]);
    assert!(list.contains(&id));
    rt.ok(&["delete", &id]);
    assert!(!rt.root.path().join(&id).exists());
    for d in cgroup_dirs(&format!("/berth/{id}")) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    let out = rt.output(&["state", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn killing_init_ends_every_process_in_the_container() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000"]);
    b.write();
    let id = unique_id("killall");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    let procs = format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs");
    assert!(wait_until(3000, || std::fs::read_to_string(&procs)
        .map(|s| s.lines().count() >= 3)
        .unwrap_or(false)));
    rt.ok(&["kill", &id, "KILL"]);
    assert!(
        wait_until(3000, || std::fs::read_to_string(&procs)
            .map(|s| s.trim().is_empty())
            .unwrap_or(true)),
        "processes survived their init: {:?}",
        std::fs::read_to_string(&procs)
    );
    rt.ok(&["delete", &id]);
}

#[test]
fn kill_all_reaches_processes_without_a_pid_namespace() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["sh", "-c", "sleep 1000 & sleep 1000"]);
    b.config["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] != "sysfs" && m["type"] != "cgroup");
    b.write();
    let id = unique_id("nopidns");
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    rt.ok(&["start", &id]);
    let procs = format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs");
    assert!(wait_until(3000, || std::fs::read_to_string(&procs)
        .map(|s| s.lines().count() >= 2)
        .unwrap_or(false)));
    rt.ok(&["kill", "--all", &id, "KILL"]);
    assert!(wait_until(3000, || std::fs::read_to_string(&procs)
        .map(|s| s.trim().is_empty())
        .unwrap_or(true)));
    rt.ok(&["delete", &id]);
    assert!(!std::path::Path::new(&procs).exists());
}

#[test]
fn delete_force_stops_a_running_container() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    b.write();
    let id = unique_id("force");
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(rt.status(&id), "running");
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", "--force", &id]);
    assert!(wait_until(2000, || !std::path::Path::new(&format!(
        "/proc/{pid}/cmdline"
    ))
    .exists()
        || std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.is_empty())
            .unwrap_or(true)));
    assert!(rt.ok(&["list", "-q"]).trim().is_empty());
}

#[test]
fn bad_config_is_reported_with_file_and_field() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["process"]["cwd"] = json!("relative");
    b.write();
    let out = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), "bad1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("config.json") && err.contains("process.cwd"),
        "{err}"
    );
    std::fs::write(b.path().join("config.json"), "{ not json").unwrap();
    let out = rt.output(&["create", "--bundle", b.path().to_str().unwrap(), "bad2"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
    // Nothing is left behind by a failed create.
    assert!(rt.ok(&["list", "-q"]).trim().is_empty());
    assert!(!rt.root.path().join("bad1").exists());
}

#[test]
fn failed_setup_cleans_up() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&["true"]);
    b.config["mounts"].as_array_mut().unwrap().push(json!({"destination": "/x", "type": "bind", "source": "/nonexistent-berth-src", "options": ["bind"]}));
    let id = unique_id("failsetup");
    let (code, _, err) = rt.run(&b, &id);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent-berth-src"), "{err}");
    assert!(!rt.root.path().join(&id).exists());
    for d in cgroup_dirs(&format!("/berth/{id}")) {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

#[test]
fn namespaces_can_be_joined_by_path() {
    let rt = Runtime::new();
    let b1 = Bundle::busybox(&["sleep", "1000"]);
    b1.write();
    let id1 = unique_id("nsowner");
    rt.ok(&[
        "run",
        "--detach",
        "--bundle",
        b1.path().to_str().unwrap(),
        &id1,
    ]);
    let pid = rt.state(&id1)["pid"].as_i64().unwrap();
    let mut b2 = Bundle::busybox(&[
        "sh",
        "-c",
        "hostname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts",
    ]);
    b2.config["hostname"] = serde_json::Value::Null;
    b2.config["linux"]["namespaces"] = json!([
        {"type": "mount"}, {"type": "pid"},
        {"type": "network", "path": format!("/proc/{pid}/ns/net")},
        {"type": "uts", "path": format!("/proc/{pid}/ns/uts")}
    ]);
    let (code, out, err) = rt.run(&b2, &unique_id("nsjoin"));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert_eq!(l[0], "berth-test");
    assert_eq!(
        l[1],
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    assert_eq!(
        l[2],
        std::fs::read_link(format!("/proc/{pid}/ns/uts"))
            .unwrap()
            .to_str()
            .unwrap()
    );
    rt.ok(&["delete", "--force", &id1]);
}

#[test]
fn devices_from_config_are_created() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "ls -ln /dev/mynull /dev/null; echo hi > /dev/mynull && echo WRITE-OK",
    ]);
    b.config["linux"]["devices"] = json!([{"path": "/dev/mynull", "type": "c", "major": 1, "minor": 3, "fileMode": 0o640, "uid": 7, "gid": 8}]);
    let (code, out, err) = rt.run(&b, &unique_id("dev"));
    assert_eq!(code, 0, "{err}");
    let l: Vec<&str> = out.lines().collect();
    assert!(
        l[0].starts_with("crw-r-----") && l[0].contains(" 7 ") && l[0].contains(" 8 "),
        "{}",
        l[0]
    );
    assert!(l[1].starts_with("crw-rw-rw-"), "{}", l[1]);
    assert!(out.contains("WRITE-OK"));
}

#[test]
fn sysctl_and_domainname() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "cat /proc/sys/net/ipv4/ip_forward; cat /proc/sys/kernel/domainname",
    ]);
    b.config["domainname"] = json!("example.test");
    b.config["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    let (code, out, err) = rt.run(&b, &unique_id("sysctl"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1\nexample.test\n");
}

#[test]
fn container_without_mount_namespace_leaves_no_host_mounts() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "ls /bin/busybox && cat /proc/self/status | grep -c ^Pid",
    ]);
    b.config["linux"]["namespaces"] = json!([{"type": "pid"}, {"type": "uts"}]);
    b.config["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["type"] == "proc" || m["destination"] == "/dev");
    b.config["root"]["readonly"] = json!(true);
    let id = unique_id("nomntns");
    b.write();
    rt.ok(&["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let rootfs = b.rootfs();
    let host = || std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        host().contains(rootfs.to_str().unwrap()),
        "mounts expected in the host namespace"
    );
    rt.ok(&["start", &id]);
    assert!(wait_until(5000, || rt.status(&id) == "stopped"));
    rt.ok(&["delete", &id]);
    assert!(
        !host().contains(rootfs.to_str().unwrap()),
        "rootfs mounts left on the host after delete"
    );
    // The host's own root was never made read-only or slave.
    assert!(std::fs::write("/var/tmp/.berth-rw-probe", b"x").is_ok());
    let _ = std::fs::remove_file("/var/tmp/.berth-rw-probe");
}

#[test]
fn no_pivot_uses_chroot_and_still_hides_the_host() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&[
        "sh",
        "-c",
        "ls /bin/busybox >/dev/null && echo ROOTFS; cut -d' ' -f5 /proc/self/mountinfo",
    ]);
    b.write();
    let out = rt.output(&[
        "run",
        "--no-pivot",
        "--bundle",
        b.path().to_str().unwrap(),
        &unique_id("nopivot"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ROOTFS"), "{stdout}");
    for mp in stdout.lines().skip(1) {
        assert!(
            !mp.starts_with("/work")
                && !mp.starts_with("/var/tmp")
                && !mp.starts_with("/run/berth"),
            "host mount visible: {mp}"
        );
    }
    assert!(stdout.lines().any(|l| l == "/proc"), "{stdout}");
}

#[test]
fn ambient_capabilities_reach_a_non_root_process() {
    let rt = Runtime::new();
    let mut b = Bundle::busybox(&[
        "sh",
        "-c",
        "grep -E 'CapInh|CapPrm|CapEff|CapAmb' /proc/self/status",
    ]);
    b.config["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    let caps = json!(["CAP_NET_BIND_SERVICE", "CAP_KILL"]);
    b.config["process"]["capabilities"] = json!({
        "bounding": caps, "effective": caps, "permitted": caps, "inheritable": caps,
        "ambient": ["CAP_NET_BIND_SERVICE"]
    });
    let (code, out, err) = rt.run(&b, &unique_id("ambient"));
    assert_eq!(code, 0, "{err}");
    let bit = |name: &str| -> u64 {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    // NET_BIND_SERVICE is bit 10; KILL (bit 5) is not ambient, so after exec
    // as uid 1000 it is gone from the effective set.
    assert_eq!(bit("CapAmb:"), 1 << 10, "{out}");
    assert_eq!(bit("CapEff:"), 1 << 10, "{out}");
    assert_eq!(bit("CapInh:"), (1 << 10) | (1 << 5), "{out}");
}

/// A runtime started with SIGINT/SIGQUIT ignored and SIGTERM blocked (a
/// shell's background job, a careless caller) must not pass either on to
/// the container: its processes start with default dispositions and
/// nothing blocked, for run and for exec.
#[test]
fn container_processes_start_with_default_signal_state() {
    use std::os::unix::process::CommandExt;
    let rt = Runtime::new();
    let b = Bundle::busybox(&["sleep", "1000"]);
    b.write();
    let id = unique_id("sigreset");
    let spawn_hostile = |args: &[&str]| {
        let mut c = rt.cmd(args);
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            c.pre_exec(|| {
                libc::signal(libc::SIGINT, libc::SIG_IGN);
                libc::signal(libc::SIGQUIT, libc::SIG_IGN);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                Ok(())
            });
        }
        output_via_files(c)
    };
    let out = spawn_hostile(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(field("SigIgn:"), "0000000000000000", "{status}");
    assert_eq!(field("SigBlk:"), "0000000000000000", "{status}");
    let out = spawn_hostile(&[
        "exec",
        &id,
        "grep",
        "-E",
        "^Sig(Ign|Blk):",
        "/proc/self/status",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text.lines()
            .filter(|l| l.ends_with("0000000000000000"))
            .count(),
        2,
        "{text}"
    );
    rt.ok(&["delete", "--force", &id]);
}

/// The runtime's state survives a power cut: `state.json` is fsynced before
/// its rename into place and its directory after (seen with strace).
#[test]
fn abuse_state_is_written_durably() {
    let rt = Runtime::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    let id = unique_id("fsync");
    let trace = tempfile::NamedTempFile::new().unwrap();
    let mut c = std::process::Command::new("strace");
    c.args(["-y", "-e", "trace=fsync", "-o"])
        .arg(trace.path())
        .arg(RUNTIME)
        .arg("--root")
        .arg(rt.root.path())
        .args(["create", "--bundle", b.path().to_str().unwrap(), &id]);
    let out = output_via_files(c);
    assert!(out.status.success(), "{out:?}");
    let t = std::fs::read_to_string(trace.path()).unwrap();
    let dir = rt.root.path().join(&id);
    // strace -y: `fsync(3</path>) = 0`.
    let fsynced = |fd_path: &str| {
        t.lines()
            .any(|l| l.starts_with("fsync(") && l.contains(fd_path) && l.ends_with("= 0"))
    };
    assert!(fsynced(&format!("<{}/state.tmp>", dir.display())), "{t}");
    assert!(fsynced(&format!("<{}>", dir.display())), "{t}");
    rt.ok(&["delete", "--force", &id]);
}
