//! Root-only: berthd driven by the real docker CLI (`/usr/local/bin/docker`)
//! against the busybox image on the localhost:5000 registry.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn version_ping_and_api_errors() {
    let mut d = Daemon::start();
    let v = d.ok(&[
        "version",
        "--format",
        "{{.Server.APIVersion}} {{.Server.MinAPIVersion}} {{.Server.Os}}",
    ]);
    assert_eq!(v.trim(), "1.45 1.24 linux");
    let (status, body) = d.http("GET", "/_ping");
    assert_eq!((status, body.as_str()), (200, "OK"));
    let (status, body) = d.http("GET", "/v1.12/version");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"message\""), "{body}");
    let (status, _) = d.http("GET", "/v1.45/containers/nosuch/json");
    assert_eq!(status, 404);
    let (status, body) = d.http("GET", "/v1.45/info");
    assert_eq!(status, 200);
    let info: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(info["Driver"], "overlay2");
    assert!(matches!(info["CgroupVersion"].as_str(), Some("1" | "2")));
    let o = d.docker(&["rm", "nosuch"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such container: nosuch"),
        "{}",
        o.stderr
    );
    d.finish();
}

#[test]
fn pull_images_tag_inspect_rmi() {
    let mut d = Daemon::start();
    let out = d.ok(&["pull", IMAGE]);
    assert!(
        out.contains("Status: Downloaded newer image for localhost:5000/busybox:latest"),
        "{out}"
    );
    let images = d.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert_eq!(images.trim(), "localhost:5000/busybox:latest");
    let tag = unique("localhost:5000/mine");
    d.ok(&["tag", IMAGE, &format!("{tag}:v1")]);
    let tags = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoTags}} {{.Os}} {{.RootFS.Type}} {{len .RootFS.Layers}}",
        IMAGE,
    ]);
    assert!(
        tags.contains(&format!("{tag}:v1")) && tags.contains(" linux layers 1"),
        "{tags}"
    );
    let cmd = d.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Cmd}}",
        IMAGE,
    ]);
    assert_eq!(cmd.trim(), "[\"sh\"]");
    let rm = d.ok(&["rmi", &format!("{tag}:v1")]);
    assert!(
        rm.contains(&format!("Untagged: {tag}:v1")) && !rm.contains("Deleted"),
        "{rm}"
    );
    let rm = d.ok(&["rmi", IMAGE]);
    assert!(
        rm.contains("Untagged: localhost:5000/busybox:latest") && rm.contains("Deleted: sha256:"),
        "{rm}"
    );
    assert!(d.ok(&["images", "-q"]).trim().is_empty());
    let o = d.docker(&["rmi", IMAGE]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("No such image"), "{}", o.stderr);
    let o = d.docker(&["pull", "localhost:5000/nosuch-image-here"]);
    assert_ne!(o.code, 0);
    d.finish();
}

#[test]
fn run_output_and_exit_codes() {
    let mut d = Daemon::start();
    // Not pulled yet: run pulls it, as docker does.
    let o = d.docker(&["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "hi\n");
    let o = d.docker(&[
        "run",
        "--rm",
        IMAGE,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!((o.code, o.stdout.as_str()), (3, "out\n"));
    assert!(o.stderr.contains("err"), "{}", o.stderr);
    // --rm removed both.
    assert!(d.ok(&["ps", "-aq"]).trim().is_empty());
    // Without --rm the exited container stays, with its exit code.
    let name = unique("keep");
    let o = d.docker(&[
        "run",
        "--name",
        &name,
        "--network",
        "none",
        "--read-only",
        "-e",
        "FOO=bar",
        "-w",
        "/tmp",
        IMAGE,
        "sh",
        "-c",
        "echo $FOO $(pwd) $(hostname); touch /x 2>/dev/null || echo ro",
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let mut parts = o.stdout.split_whitespace();
    assert_eq!((parts.next(), parts.next()), (Some("bar"), Some("/tmp")));
    let id = d.ok(&["inspect", "--format", "{{.Id}}", &name]);
    assert_eq!(parts.next(), Some(&id.trim()[..12]));
    assert_eq!(parts.next(), Some("ro"));
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited 0");
    d.finish();
}

#[test]
fn detached_logs_exec_ps_stop_rm() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let name = unique("web");
    let id = d.ok(&[
        "run",
        "-d",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "echo started; echo oops >&2; exec sleep 1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64);
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with(&format!("{name} Up")), "{ps}");
    let status = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.Running}} {{.Name}}",
        &name,
    ]);
    assert_eq!(status.trim(), format!("running true /{name}"));
    // The log reaches the json-file shortly after start.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let o = d.docker(&["logs", &name]);
        if o.stdout == "started\n" && o.stderr == "oops\n" {
            break;
        }
        assert!(Instant::now() < end, "logs: {:?} {:?}", o.stdout, o.stderr);
        std::thread::sleep(Duration::from_millis(50));
    }
    let tail = d.ok(&["logs", "--tail", "1", "-t", &name]);
    assert!(tail.is_empty(), "stderr line is the last: {tail:?}");
    let o = d.docker(&["exec", &name, "sh", "-c", "echo in-exec; exit 4"]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (4, "in-exec\n"),
        "{}",
        o.stderr
    );
    // A command that does not exist: the docker CLI gets the reason on the
    // stream and 127 from the exec's inspect, as from dockerd (not a failed
    // upgrade); one that is not executable gives 126.
    let o = d.docker(&["exec", &name, "no-such-command-xyz"]);
    assert_eq!(o.code, 127, "{}", o.stderr);
    assert!(
        o.stderr.contains("no-such-command-xyz") && !o.stderr.contains("upgrade"),
        "{}",
        o.stderr
    );
    let o = d.docker(&["exec", &name, "/etc/passwd"]);
    assert_eq!(o.code, 126, "{}", o.stderr);
    let o = d.docker(&[
        "exec",
        "-e",
        "X=1",
        "-w",
        "/etc",
        &name,
        "sh",
        "-c",
        "echo $X $(pwd)",
    ]);
    assert_eq!(o.stdout, "1 /etc\n", "{}", o.stderr);
    let o = d.docker(&["rm", &name]);
    assert_eq!(o.code, 1, "a running container needs -f");
    let start = Instant::now();
    d.ok(&["stop", "-t", "1", &name]);
    assert!(start.elapsed() < Duration::from_secs(8));
    let st = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &name,
    ]);
    assert_eq!(st.trim(), "exited 137");
    let all = d.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert_eq!(all.trim(), name);
    assert!(d.ok(&["ps", "-q"]).trim().is_empty());
    // Started again, killed, removed.
    d.ok(&["start", &name]);
    d.ok(&["kill", &name]);
    let code = d.ok(&["wait", &name]);
    assert_eq!(code.trim(), "137");
    d.ok(&["rm", &name]);
    let o = d.docker(&["rm", &name]);
    assert!(o.stderr.contains("No such container"), "{}", o.stderr);
    d.finish();
}

#[test]
fn live_restore_after_sigkill() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let name = unique("survivor");
    let quick = unique("quick");
    d.ok(&["run", "-d", "--name", &name, IMAGE, "sleep", "1000"]);
    d.ok(&[
        "run",
        "-d",
        "--name",
        &quick,
        IMAGE,
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    d.kill9();
    // `quick` exits while no daemon runs.
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn();
    let ps = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.trim().starts_with(&format!("{name} Up")), "{ps}");
    let q = d.ok(&[
        "inspect",
        "--format",
        "{{.State.Status}} {{.State.ExitCode}}",
        &quick,
    ]);
    assert_eq!(q.trim(), "exited 5");
    let o = d.docker(&["exec", &name, "echo", "still here"]);
    assert_eq!(o.stdout, "still here\n", "{}", o.stderr);
    d.ok(&["stop", "-t", "1", &name]);
    let st = d.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "exited");
    d.finish();
}

#[test]
fn run_options_stdin_mounts_loopback_limits() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    // -i with a pipe: stdin streams and closes at EOF.
    let o = d.docker_stdin(
        &["run", "-i", "--rm", IMAGE, "sh", "-c", "cat; echo done"],
        b"line1\nline2\n",
    );
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "line1\nline2\ndone\n"),
        "{}",
        o.stderr
    );
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    std::fs::write(host.path().join("f"), "from-host").unwrap();
    let bind = format!("{}:/data:ro", host.path().display());
    let script = "cat /data/f; echo; touch /data/g 2>/dev/null || echo bind-ro; \
                  grep -q ' /scratch tmpfs' /proc/mounts && echo tmpfs; \
                  ip link show lo | grep -q ',UP' && echo lo-up; \
                  grep CapEff /proc/self/status";
    let o = d.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "--tmpfs",
        "/scratch",
        "--memory",
        "64m",
        "--pids-limit",
        "50",
        "--cap-drop",
        "all",
        IMAGE,
        "sh",
        "-c",
        script,
    ]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(
        &lines[..4],
        ["from-host", "bind-ro", "tmpfs", "lo-up"],
        "{}",
        o.stdout
    );
    assert!(lines[4].ends_with("0000000000000000"), "{}", o.stdout);
    // create + rm of a never-started container collects its shim.
    let name = unique("created");
    d.ok(&["create", "--name", &name, IMAGE, "true"]);
    let st = d.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(st.trim(), "created");
    let o = d.docker(&["create", "--name", &name, IMAGE, "true"]);
    assert!(
        o.code != 0 && o.stderr.contains("is already in use"),
        "{}",
        o.stderr
    );
    // An image a container uses needs force to go.
    let o = d.docker(&["rmi", IMAGE]);
    assert!(o.code != 0 && o.stderr.contains("conflict"), "{}", o.stderr);
    d.ok(&["rm", &name]);
    d.finish();
}
