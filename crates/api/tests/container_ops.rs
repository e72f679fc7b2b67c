//! Root-only: container operations beyond the lifecycle — top, pause,
//! rename, update, events — through the real docker CLI against a private
//! berthd, checking their effects on the kernel (cgroups, processes).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{DOCKER, Daemon, IMAGE, unique};

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn cgroup_file(controller: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{file} of {id}: {e}"))
        .trim()
        .to_string()
}

#[test]
fn top_pause_unpause_stop_paused() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("top");
    let id = d
        .ok(&[
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "sleep 1000 & sleep 999; exit 0",
        ])
        .trim()
        .to_string();

    // Every process of the container, ps -ef style, none of the host's.
    // `run -d` answers once the shell runs: its two children may be a few
    // ms behind under load.
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let top = loop {
        let top = d.ok(&["top", &name]);
        if top.lines().count() >= 4 || std::time::Instant::now() > end {
            break top;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut lines = top.lines();
    let header = lines.next().unwrap();
    assert!(header.contains("PID") && header.contains("CMD"), "{top}");
    let cmds: Vec<&str> = lines.collect();
    assert_eq!(cmds.len(), 3, "{top}");
    assert!(cmds.iter().any(|l| l.ends_with("sleep 1000")), "{top}");
    assert!(cmds.iter().any(|l| l.ends_with("sleep 999")), "{top}");
    // Custom ps arguments.
    let top = d.ok(&["top", &name, "-o", "pid,comm"]);
    assert_eq!(top.lines().next().unwrap().split_whitespace().count(), 2);
    assert_eq!(
        top.lines().filter(|l| l.ends_with("sleep")).count(),
        2,
        "{top}"
    );

    // Pause freezes the cgroup; status and ps say so.
    d.ok(&["pause", &name]);
    assert_eq!(cgroup_file("freezer", &id, "freezer.state"), "FROZEN");
    let st = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}} {{.State.Running}}",
        &name,
    ]);
    assert_eq!(st.trim(), "paused true true");
    assert!(d.ok(&["ps"]).contains("(Paused)"));
    let o = d.docker(&["pause", &name]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("already paused"), "{}", o.stderr);
    let o = d.docker(&["exec", &name, "true"]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("is paused"), "{}", o.stderr);

    d.ok(&["unpause", &name]);
    assert_eq!(cgroup_file("freezer", &id, "freezer.state"), "THAWED");
    assert_eq!(d.ok(&["exec", &name, "echo", "alive"]), "alive\n");
    let o = d.docker(&["unpause", &name]);
    assert!(o.stderr.contains("is not paused"), "{}", o.stderr);

    // Stop of a paused container works (the signal lands after the thaw),
    // also when a new daemon took it over.
    d.ok(&["pause", &name]);
    d.kill9();
    d.spawn();
    let st = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        &name,
    ]);
    assert_eq!(st.trim(), "paused true");
    assert_eq!(cgroup_file("freezer", &id, "freezer.state"), "FROZEN");
    let t = Instant::now();
    d.ok(&["stop", "-t", "1", &name]);
    assert!(t.elapsed() < Duration::from_secs(10));
    let st = d.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited false");
    let o = d.docker(&["top", &name]);
    assert!(o.stderr.contains("is not running"), "{}", o.stderr);
    // rm -f of a paused container, and kill.
    let p = unique("paused");
    d.ok(&["run", "-d", "--name", &p, IMAGE, "sleep", "1000"]);
    d.ok(&["pause", &p]);
    let t = Instant::now();
    d.ok(&["rm", "-f", &p]);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    d.ok(&["run", "-d", "--name", &p, IMAGE, "sleep", "1000"]);
    d.ok(&["pause", &p]);
    d.ok(&["kill", &p]);
    d.ok(&["wait", &p]);
    d.finish();
}

#[test]
fn rename_and_update_live() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let (a, b) = (unique("ren-a"), unique("ren-b"));
    let id = d
        .ok(&[
            "run", "-d", "--name", &a, "-m", "64m", IMAGE, "sleep", "1000",
        ])
        .trim()
        .to_string();
    d.ok(&["create", "--name", &b, IMAGE, "true"]);
    // Taken name: 409 with docker's words.
    let o = d.docker(&["rename", &a, &b]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("is already in use"), "{}", o.stderr);
    let o = d.docker(&["rename", &a, "bad/name"]);
    assert!(o.stderr.contains("Invalid container name"), "{}", o.stderr);
    let c = unique("ren-c");
    d.ok(&["rename", &a, &c]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}}", &id]).trim(),
        format!("/{c}")
    );
    assert_ne!(d.docker(&["inspect", &a]).code, 0);

    // Limits change in the kernel while it runs, and are kept.
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "67108864"
    );
    d.ok(&[
        "update",
        "-m",
        "128m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        &c,
    ]);
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cgroup_file("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "50");
    let hc = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}}",
        &c,
    ]);
    assert_eq!(hc.trim(), "134217728 500000000 50");
    // ... also after a restart (the bundle follows).
    d.ok(&["restart", "-t", "0", &c]);
    assert_eq!(
        cgroup_file("memory", &id, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cgroup_file("pids", &id, "pids.max"), "50");
    d.ok(&["update", "--restart", "on-failure:3", &c]);
    let rp = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}",
        &c,
    ]);
    assert_eq!(rp.trim(), "on-failure 3");
    let o = d.docker(&["update", "-m", "1m", &c]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Minimum memory limit"), "{}", o.stderr);
    d.finish();
}

/// `--cpu-quota`, `--cpu-period` and `--memory-reservation`: set at
/// create, changed live by `update`, kept in HostConfig and over a restart
/// (read from inside the container, cgroup v1 or v2).
#[test]
fn cpu_quota_period_and_memory_reservation() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let c = unique("quota");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &c,
        "--cpu-quota",
        "25000",
        "--cpu-period",
        "50000",
        "--memory-reservation",
        "32m",
        IMAGE,
        "sleep",
        "1000",
    ]);
    let read = || {
        d.ok(&[
            "exec",
            &c,
            "sh",
            "-c",
            "cd /sys/fs/cgroup; if [ -f cpu.max ]; then cat cpu.max memory.low; \
             else echo $(cat cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us); \
             cat memory/memory.soft_limit_in_bytes; fi",
        ])
    };
    assert_eq!(read(), "25000 50000\n33554432\n");
    d.ok(&[
        "update",
        "--cpu-quota",
        "40000",
        "--cpu-period",
        "80000",
        "--memory-reservation",
        "48m",
        &c,
    ]);
    assert_eq!(read(), "40000 80000\n50331648\n");
    let hc = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CpuQuota}} {{.HostConfig.CpuPeriod}} {{.HostConfig.MemoryReservation}}",
        &c,
    ]);
    assert_eq!(hc.trim(), "40000 80000 50331648");
    d.ok(&["restart", "-t", "0", &c]);
    assert_eq!(read(), "40000 80000\n50331648\n");
    // --cpus excludes them, as in Docker.
    let o = d.docker(&["update", "--cpus", "0.5", &c]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Conflicting options"), "{}", o.stderr);
    d.finish();
}

#[test]
fn events_since_until_filters_and_live() {
    let mut d = Daemon::start();
    let t0 = format!("{:.9}", now() - 1.0);
    d.ok(&["pull", IMAGE]);
    let name = unique("ev");
    // A live stream, filtered to this container.
    let mut live = Command::new(DOCKER)
        .args([
            "events",
            "--filter",
            &format!("container={name}"),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_CONFIG", d.docker_config.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    d.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
    d.ok(&["exec", &name, "true"]);
    d.ok(&["pause", &name]);
    d.ok(&["unpause", &name]);
    d.ok(&["kill", &name]);
    d.ok(&["wait", &name]);
    d.ok(&["rm", &name]);
    let t1 = format!("{:.9}", now() + 0.5);

    let want = [
        "container create",
        "container start",
        "container exec_create: true",
        "container exec_start: true",
        "container exec_die",
        "container pause",
        "container unpause",
        "container kill",
        "container die",
        "container destroy",
    ];
    let mut got = Vec::new();
    let mut r = BufReader::new(live.stdout.take().unwrap());
    let end = Instant::now() + Duration::from_secs(10);
    while got.len() < want.len() && Instant::now() < end {
        let mut l = String::new();
        if r.read_line(&mut l).unwrap() == 0 {
            break;
        }
        assert!(l.trim().ends_with(&name), "{l}");
        got.push(l.trim().trim_end_matches(&name).trim().to_string());
    }
    let _ = live.kill();
    let _ = live.wait();
    assert_eq!(got, want);

    // The buffer answers since/until, with type and event filters.
    let past = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "type=image",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    assert_eq!(past.trim(), format!("pull {IMAGE}:latest"));
    let past = d.ok(&[
        "events",
        "--since",
        &t0,
        "--until",
        &t1,
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(past.trim(), "137");
    // Volume and network events come through the same log.
    let (net, vol, c2) = (unique("evnet"), unique("evvol"), unique("ev2"));
    d.ok(&["volume", "create", &vol]);
    d.ok(&["network", "create", &net]);
    d.ok(&["run", "-d", "--name", &c2, IMAGE, "sleep", "1000"]);
    d.ok(&["network", "connect", &net, &c2]);
    d.ok(&["network", "disconnect", &net, &c2]);
    d.ok(&["network", "rm", &net]);
    d.ok(&["volume", "rm", &vol]);
    let t2 = format!("{:.9}", now());
    let past = d.ok(&[
        "events",
        "--since",
        &t1,
        "--until",
        &t2,
        "--filter",
        "type=network",
        "--filter",
        "type=volume",
        "--format",
        // Docker names a volume by its ID, a network by its name attribute.
        r#"{{.Type}} {{.Action}} {{if eq .Type "volume"}}{{.Actor.ID}}{{else}}{{.Actor.Attributes.name}}{{end}}"#,
    ]);
    let got: Vec<&str> = past
        .lines()
        .filter(|l| l.ends_with(&net) || l.ends_with(&vol))
        .collect();
    assert_eq!(
        got,
        [
            format!("volume create {vol}"),
            format!("network create {net}"),
            format!("network connect {net}"),
            format!("network disconnect {net}"),
            format!("network destroy {net}"),
            format!("volume destroy {vol}"),
        ],
        "{past}"
    );
    d.ok(&["rm", "-f", &c2]);
    // Joining and leaving its network at start and exit, as in Docker.
    let c2_id = d.ok(&[
        "events",
        "--since",
        &t1,
        "--until",
        &t2,
        "--filter",
        "event=start",
        "--format",
        "{{.Actor.ID}}",
    ]);
    let t3 = format!("{:.9}", now());
    let joins = d.ok(&[
        "events",
        "--since",
        &t1,
        "--until",
        &t3,
        "--filter",
        "type=network",
        "--format",
        "{{.Action}} {{.Actor.Attributes.name}} {{.Actor.Attributes.container}}",
    ]);
    let c2_id = c2_id.trim();
    assert!(
        joins.contains(&format!("connect bridge {c2_id}")),
        "{joins}"
    );
    assert!(
        joins.contains(&format!("disconnect bridge {c2_id}")),
        "{joins}"
    );
    let o = d.docker(&["events", "--until", &t1, "--filter", "bogus=1"]);
    assert_ne!(o.code, 0);
    d.finish();
}

#[test]
fn stats_no_stream_and_stream() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let busy = unique("busy");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &busy,
        "-m",
        "64m",
        "--pids-limit",
        "20",
        IMAGE,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    // Real figures: a busy loop takes CPU, the memory limit shows, one pid.
    let o = d.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.PIDs}}",
        &busy,
    ]);
    let f: Vec<&str> = o.trim().split('|').collect();
    assert_eq!(f[0], busy, "{o}");
    let cpu: f64 = f[1].trim_end_matches('%').parse().unwrap();
    assert!(cpu > 5.0, "a busy loop shows CPU use: {o}");
    assert!(f[2].ends_with("/ 64MiB"), "{o}");
    assert!(!f[2].starts_with("0B"), "{o}");
    assert_eq!(f[3], "1", "{o}");

    // The API shape, one shot: no previous CPU figures.
    let (code, body) = d.http(
        "GET",
        &format!("/containers/{busy}/stats?stream=0&one-shot=1"),
    );
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert!(v["cpu_stats"]["cpu_usage"]["total_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() >= 1);
    assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 0);
    assert_eq!(v["memory_stats"]["limit"], 64 * 1024 * 1024);
    assert!(
        v["memory_stats"]["stats"]["total_inactive_file"].is_u64(),
        "{v}"
    );
    assert_eq!(
        v["pids_stats"],
        serde_json::json!({"current": 1, "limit": 20})
    );
    assert!(v["blkio_stats"]["io_service_bytes_recursive"].is_array());
    assert_eq!(v["name"], format!("/{busy}"));

    // Streamed: about one a second, each carrying the previous CPU
    // figures, and the stream ends when the container exits.
    let short = unique("short");
    d.ok(&["run", "-d", "--name", &short, IMAGE, "sleep", "3"]);
    let t = Instant::now();
    let (code, body) = d.http("GET", &format!("/containers/{short}/stats"));
    let took = t.elapsed();
    assert_eq!(code, 200);
    let docs: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!((2..=5).contains(&docs.len()), "{} samples", docs.len());
    assert!(took < Duration::from_secs(8), "{took:?}");
    assert_eq!(docs[1]["precpu_stats"], docs[0]["cpu_stats"]);
    assert_eq!(docs[1]["preread"], docs[0]["read"]);
    // Not running: zeros, once.
    let (code, body) = d.http("GET", &format!("/containers/{short}/stats"));
    assert_eq!(code, 200);
    assert_eq!(body.lines().count(), 1);
    let (code, _) = d.http("GET", "/containers/nope/stats");
    assert_eq!(code, 404);
    d.finish();
}

#[test]
fn prune_and_system_df() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let keep = unique("keep");
    let gone = unique("gone");
    let labelled = unique("labelled");
    let running = unique("running");
    d.ok(&["run", "--name", &keep, "-l", "keep=yes", IMAGE, "true"]);
    d.ok(&[
        "run",
        "--name",
        &gone,
        IMAGE,
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /big",
    ]);
    d.ok(&["create", "--name", &labelled, "-l", "tier=x", IMAGE, "true"]);
    d.ok(&["run", "-d", "--name", &running, IMAGE, "sleep", "1000"]);

    // system df: the image is used by four containers, one running.
    let df = d.ok(&[
        "system",
        "df",
        "--format",
        "{{.Type}}|{{.TotalCount}}|{{.Active}}",
    ]);
    let rows: Vec<&str> = df.lines().collect();
    assert!(rows.contains(&"Images|1|1"), "{df}");
    assert!(rows.contains(&"Containers|4|1"), "{df}");
    let (code, body) = d.http("GET", "/system/df");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["Images"][0]["Containers"], 4);
    let gone_rw = v["Containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Names"][0] == format!("/{gone}"))
        .unwrap()["SizeRw"]
        .as_u64()
        .unwrap();
    assert!(gone_rw >= 300_000, "{gone_rw}");
    assert!(v["LayersSize"].as_u64().unwrap() > 0);
    assert!(v["Volumes"].is_array() && v["BuildCache"].is_array());

    // Filters: labels, and until (nothing is older than an hour).
    let o = d.ok(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(o.contains("Total reclaimed space: 0B"), "{o}");
    let lid = d
        .ok(&["inspect", "-f", "{{.Id}}", &labelled])
        .trim()
        .to_string();
    let o = d.ok(&["container", "prune", "-f", "--filter", "label=tier=x"]);
    assert_eq!(o.lines().nth(1), Some(lid.as_str()), "{o}");
    assert!(d.docker(&["inspect", &labelled]).code != 0, "{o}");
    let o = d.ok(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(!o.contains("Total reclaimed space: 0B"), "{o}");
    let left = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    let mut left: Vec<&str> = left.lines().collect();
    left.sort();
    let mut want = vec![keep.as_str(), running.as_str()];
    want.sort();
    assert_eq!(left, want);

    // Image prune: a dangling commit goes, the used image stays; -a takes
    // every image no container uses.
    let dangling = d.ok(&["commit", &keep]).trim().to_string();
    let o = d.ok(&["image", "prune", "-f"]);
    assert!(o.contains(&format!("deleted: {dangling}")), "{o}");
    assert!(d.ok(&["images", "-q"]).lines().count() == 1);
    let o = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(!o.contains("deleted"), "{o}");
    d.ok(&["rm", "-f", &keep, &running]);
    let o = d.ok(&["image", "prune", "-a", "-f"]);
    assert!(
        o.contains("untagged: ") && o.contains("deleted: sha256:"),
        "{o}"
    );
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    d.finish();
}

/// `rm` and `run --rm` answer before the background teardown releases the
/// container's rootfs; an `rmi` of its (last-tagged) image right after them
/// must still succeed, as with dockerd (it failed "in use" about half the
/// time). A live container's image stays in use.
#[test]
fn rmi_right_after_rm_of_its_container() {
    let mut d = Daemon::start();
    for round in 0..8 {
        d.ok(&["pull", "-q", IMAGE]);
        if round % 2 == 0 {
            d.ok(&["run", "--rm", IMAGE, "true"]);
        } else {
            let name = unique(&format!("rmi{round}"));
            d.ok(&["run", "--name", &name, IMAGE, "true"]);
            d.ok(&["rm", &name]);
        }
        let out = d.ok(&["rmi", IMAGE]);
        assert!(out.contains("Deleted: sha256:"), "round {round}: {out}");
    }
    d.ok(&["pull", "-q", IMAGE]);
    let name = unique("rmi-live");
    d.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
    let o = d.docker(&["rmi", IMAGE]);
    assert_ne!(o.code, 0, "the image of a live container was deleted");
    d.ok(&["rm", "-f", &name]);
    d.finish();
}
