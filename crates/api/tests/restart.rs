//! Root-only: restart policies through the docker CLI against a private
//! berthd, including a berthd SIGKILL and restart.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn state(d: &Daemon, c: &str) -> String {
    d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}} {{.RestartCount}}",
        c,
    ])
    .trim()
    .to_string()
}

/// Polls until `f` holds (or fails with what it last saw).
fn until(what: &str, limit: Duration, mut f: impl FnMut() -> (bool, String)) {
    let end = Instant::now() + limit;
    loop {
        let (ok, seen) = f();
        if ok {
            return;
        }
        assert!(Instant::now() < end, "{what}: last seen {seen}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn restart_count(d: &Daemon, c: &str) -> i64 {
    d.ok(&["inspect", "--format", "{{.RestartCount}}", c])
        .trim()
        .parse()
        .unwrap()
}

/// `docker run -d --name NAME --restart POLICY busybox CMD...`
fn run_with(d: &Daemon, name: &str, policy: &str, cmd: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--restart", policy, IMAGE];
    args.extend_from_slice(cmd);
    d.ok(&args);
}

#[test]
fn on_failure_retries_then_gives_up() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let c = unique("onfail");
    run_with(&d, &c, "on-failure:2", &["sh", "-c", "exit 3"]);
    // 100 ms then 200 ms of back-off: done well within 5 s.
    until("two retries", Duration::from_secs(5), || {
        let s = state(&d, &c);
        (s == "exited 3 2", s)
    });
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(state(&d, &c), "exited 3 2");
    // A clean exit is not a failure.
    let ok = unique("onfail-ok");
    run_with(&d, &ok, "on-failure", &["true"]);
    until("clean exit", Duration::from_secs(5), || {
        let s = state(&d, &ok);
        (s == "exited 0 0", s)
    });
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(state(&d, &ok), "exited 0 0");
    // --rm with a policy is refused by the daemon, not just the CLI.
    let body = format!(
        r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{"AutoRemove":true,"RestartPolicy":{{"Name":"always"}}}}}}"#
    );
    let (status, resp) = d.http_json("POST", "/v1.45/containers/create", &body);
    assert_eq!(status, 400, "{resp}");
    assert!(resp.contains("AutoRemove"), "{resp}");
    let o = d.docker(&["run", "-d", "--restart", "sometimes", IMAGE, "true"]);
    assert!(o.code != 0, "{}", o.stdout);
    d.finish();
}

#[test]
fn always_restarts_until_stopped_and_shows_restarting() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let c = unique("always");
    run_with(&d, &c, "always", &["sh", "-c", "echo run; exit 1"]);
    // The back-off grows (100, 200, 400, 800 ms…): the restarting state
    // shows in inspect, with Running true as in Docker.
    until("restarting state", Duration::from_secs(8), || {
        let s = d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Restarting}} {{.State.Running}}",
            &c,
        ]);
        (s.trim() == "restarting true true", s)
    });
    assert!(restart_count(&d, &c) >= 1);
    // A restarting container needs force to go; stop ends it for good.
    let o = d.docker(&["rm", &c]);
    assert!(o.code != 0, "{}", o.stdout);
    until("second restart", Duration::from_secs(8), || {
        let n = restart_count(&d, &c);
        (n >= 2, n.to_string())
    });
    d.ok(&["stop", &c]);
    let n = restart_count(&d, &c);
    // Every run's output stays in the log, as with Docker (a restart
    // cancelled by the stop during its back-off is counted but never ran).
    let runs = d.ok(&["logs", &c]).lines().filter(|l| *l == "run").count() as i64;
    assert!(
        runs == n || runs == n + 1,
        "{runs} runs logged, RestartCount {n}"
    );
    assert!(runs >= 2, "{runs}");
    std::thread::sleep(Duration::from_millis(1500));
    let s = state(&d, &c);
    assert!(s.starts_with("exited "), "{s}");
    assert_eq!(restart_count(&d, &c), n);

    // A long-running one: killing its process restarts it; `docker
    // restart` and `docker start` work as usual.
    let l = unique("always-long");
    run_with(&d, &l, "always", &["sleep", "1000"]);
    let pid1 = d.ok(&["inspect", "--format", "{{.State.Pid}}", &l]);
    d.ok(&["kill", &l]);
    until("restart after kill", Duration::from_secs(5), || {
        let s = d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Pid}} {{.RestartCount}}",
            &l,
        ]);
        let ok = s.starts_with("running ")
            && !s.contains(&format!(" {} ", pid1.trim()))
            && s.trim().ends_with(" 1");
        (ok, s)
    });
    let o = d.docker(&["exec", &l, "echo", "up"]);
    assert_eq!(o.stdout, "up\n", "{}", o.stderr);
    // rm -f of a container with a policy does not bring it back.
    d.ok(&["rm", "-f", &l, &c]);
    d.finish();
}

#[test]
fn policies_across_daemon_sigkill() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let always = unique("always-stopped");
    let unless = unique("unless-stopped");
    let unless_up = unique("unless-running");
    let fail = unique("fails-while-down");
    let none = unique("no-policy");
    for (n, p) in [
        (&always, "always"),
        (&unless, "unless-stopped"),
        (&unless_up, "unless-stopped"),
    ] {
        run_with(&d, n, p, &["sleep", "1000"]);
    }
    d.ok(&["stop", "-t", "0", &always]);
    d.ok(&["stop", "-t", "0", &unless]);
    for n in [&always, &unless] {
        assert!(state(&d, n).starts_with("exited "), "{}", state(&d, n));
    }
    run_with(
        &d,
        &fail,
        "on-failure:1",
        &[
            "sh",
            "-c",
            "[ -e /ran ] && exec sleep 1000; touch /ran; sleep 1; exit 4",
        ],
    );
    d.ok(&[
        "run",
        "-d",
        "--name",
        &none,
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 4",
    ]);
    d.kill9();
    // `fail` and `none` exit while no daemon runs.
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn();
    // always: back even though stopped (a fresh daemon); unless-stopped:
    // stays down after a stop, the running one kept running; on-failure:
    // the exit seen while down counts and is retried.
    until("restarts on boot", Duration::from_secs(10), || {
        let s: Vec<String> = [&always, &unless, &unless_up, &fail, &none]
            .iter()
            .map(|n| state(&d, n))
            .collect();
        let ok = s[0].starts_with("running ")
            && s[1].starts_with("exited ")
            && s[2] == "running 0 0"
            && s[3] == "running 0 1"
            && s[4] == "exited 4 0";
        (ok, format!("{s:?}"))
    });
    let o = d.docker(&["exec", &fail, "ls", "/ran"]);
    assert_eq!(o.stdout, "/ran\n", "{}", o.stderr);
    d.finish();
}

/// A stop or rm -f that lands while a policy restart is under way (its
/// back-off or its start) wins: nothing runs afterwards and rm leaves no
/// shim, process, cgroup, veth or address behind (checked by `finish`).
/// The offsets sweep the 100 ms back-off and the start that follows it.
#[test]
fn stop_or_rm_during_restart_wins() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    for i in 0..10u64 {
        let c = unique("rmrace");
        run_with(&d, &c, "always", &["true"]);
        std::thread::sleep(Duration::from_millis(15 * i + 40));
        d.ok(&["rm", "-f", &c]);
        assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    }
    for i in 0..6u64 {
        let c = unique("stoprace");
        run_with(&d, &c, "always", &["true"]);
        std::thread::sleep(Duration::from_millis(25 * i + 40));
        d.ok(&["stop", &c]);
        std::thread::sleep(Duration::from_millis(300));
        let s = d.ok(&[
            "inspect",
            "--format",
            "{{.State.Status}} {{.State.Running}} {{.State.Pid}}",
            &c,
        ]);
        assert!(s.starts_with("exited false 0"), "{c} after stop: {s}");
        d.ok(&["rm", &c]);
    }
    d.finish();
}

/// A second berthd on a root another one is using refuses to start, names
/// the holder, and touches nothing: the first keeps serving. Once the
/// first is killed (kill -9 leaves no cleanup behind) a new one starts.
#[test]
fn second_daemon_on_the_same_root_is_refused() {
    let mut d = Daemon::start();
    let first = d.child.as_ref().unwrap().id();
    let other = tempfile::Builder::new()
        .prefix("bd")
        .tempdir_in("/run")
        .unwrap();
    let run_second = || {
        std::process::Command::new(BERTHD.as_str())
            .arg("--host")
            .arg(format!("unix://{}/berth.sock", other.path().display()))
            .arg("--root")
            .arg(d.root.path())
            .arg("--exec-root")
            .arg(other.path())
            .output()
            .unwrap()
    };
    let out = run_second();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "second berthd started: {err}");
    assert!(
        err.contains(&format!(
            "another berthd (pid {first}) is using the store at"
        )),
        "{err}"
    );
    assert!(!other.path().join("berth.sock").exists());
    d.ok(&["version"]);
    d.kill9();
    // The lock went with the process: a daemon on the same root starts.
    d.spawn();
    d.ok(&["version"]);
}

/// A container without a restart policy keeps its start's state in an
/// unsynced file beside its durable record: a new daemon takes it (and
/// makes it durable); one a power cut emptied is ignored, and the
/// container is still there, from the durable record.
#[test]
fn start_record_of_a_policyless_container_survives_or_falls_back() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let kept = unique("started-kept");
    let cut = unique("started-cut");
    let policy = unique("started-policy");
    for n in [&kept, &cut] {
        d.ok(&["run", "-d", "--name", n, IMAGE, "sleep", "1000"]);
    }
    run_with(&d, &policy, "always", &["sleep", "1000"]);
    let id = |d: &Daemon, n: &str| {
        d.ok(&["inspect", "--format", "{{.Id}}", n])
            .trim()
            .to_string()
    };
    let started_file = |d: &Daemon, n: &str| {
        d.root
            .path()
            .join("containers")
            .join(id(d, n))
            .join("config.v2.started.json")
    };
    assert!(started_file(&d, &kept).is_file());
    // A restart policy needs the start's state durable: no side file.
    assert!(!started_file(&d, &policy).exists());
    let started_at = |d: &Daemon, n: &str| {
        d.ok(&["inspect", "--format", "{{.State.StartedAt}}", n])
            .trim()
            .to_string()
    };
    let kept_started = started_at(&d, &kept);
    let cut_file = started_file(&d, &cut);
    d.kill9();
    std::fs::write(&cut_file, b"").unwrap();
    d.spawn();
    assert_eq!(state(&d, &kept), "running 0 0");
    assert_eq!(started_at(&d, &kept), kept_started);
    // The durable record now has it: the side file is gone.
    assert!(!started_file(&d, &kept).exists());
    // From the create's record: the container and its shim are found.
    assert_eq!(state(&d, &cut), "running 0 0");
    d.ok(&["rm", "-f", &kept, &cut, &policy]);
    d.finish();
}
