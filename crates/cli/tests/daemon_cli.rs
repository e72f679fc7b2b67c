//! `berth` against a private berthd (root + the localhost:5000 registry):
//! the daemon starting on demand, each command family, exit codes, stdin,
//! and output compared with the docker CLI against the same daemon.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::common::registry::AuthRegistry;
use support::*;

/// The fixture with a tag, as `ps`/`images` show it.
const BUSYBOX: &str = "localhost:5000/busybox:latest";

/// Kills the daemon `berth` started on its own (not our child) and deletes
/// the default bridge and nftables table it made (a SIGKILLed daemon
/// leaves them).
struct KillOnDrop(i32, Option<String>);

impl KillOnDrop {
    /// The bridge device of the daemon's default network, asked through
    /// `berth` (with the arguments that reach that daemon).
    fn bridge_of(args: &[&std::ffi::OsStr]) -> Option<String> {
        let o = std::process::Command::new(BERTH)
            .args(args)
            .args([
                "network",
                "inspect",
                "-f",
                "{{index .Options \"com.docker.network.bridge.name\"}}",
                "bridge",
            ])
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .output()
            .ok()?;
        let name = String::from_utf8_lossy(&o.stdout).trim().to_string();
        (o.status.success() && name.starts_with("berth") && name != "berth0").then_some(name)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // SAFETY: a plain kill of the berthd this test caused to start.
        unsafe { libc::kill(self.0, libc::SIGKILL) };
        let end = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{}", self.0)).exists() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(b) = &self.1 {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", b])
                .output();
            // Its packet rules' table is named after the bridge; left
            // behind, it drops traffic for a subnet another daemon may take.
            let _ = std::process::Command::new("nft")
                .args(["delete", "table", "ip", b])
                .output();
        }
    }
}

#[test]
fn starts_a_daemon_when_none_answers() {
    require_root();
    let tmp = |prefix: &str, dir: &str| {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(dir)
            .unwrap()
    };
    // A Daemon record without a process: its socket is dead.
    let d = Daemon {
        child: None,
        root: tmp("berth-cli-root-", "/var/tmp"),
        exec_root: tmp("bc", "/run"),
        docker_config: tmp("berth-cli-dcfg-", "/tmp"),
        env: Vec::new(),
    };
    let t = Instant::now();
    let o = berth(&d, &["version", "--format", "{{.Server.ApiVersion}}"]);
    let started = o
        .stderr
        .split("Started berthd (pid ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or_else(|| panic!("no daemon started: {} {}", o.stdout, o.stderr));
    let bridge = KillOnDrop::bridge_of(&[
        "-H".as_ref(),
        format!("unix://{}", d.socket().display()).as_ref(),
        "--root".as_ref(),
        d.root.path().as_os_str(),
    ]);
    let _guard = KillOnDrop(started, bridge);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout.trim(), "1.45");
    eprintln!("auto-start took {:?}", t.elapsed());
    let log = d.exec_root.path().join("berthd.log");
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("listening on"),
        "the daemon logs to <exec-root>/berthd.log"
    );
    // It is detached: its own session, not our process group.
    let stat = std::fs::read_to_string(format!("/proc/{started}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        fields[3],
        started.to_string(),
        "berthd leads its own session"
    );
    // The next command finds it answering and starts nothing.
    let o = berth(&d, &["ps", "-a"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(!o.stderr.contains("Started berthd"), "{}", o.stderr);
    assert!(o.stdout.starts_with("CONTAINER ID"));
}

#[test]
fn a_root_without_a_host_gets_a_daemon_of_its_own() {
    require_root();
    let root = tempfile::Builder::new()
        .prefix("berth-cli-ownroot-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BERTH)
            .arg("--root")
            .arg(root.path())
            .args(args)
            .env_remove("BERTH_HOST")
            .env_remove("DOCKER_HOST")
            .env_remove("BERTH_EXEC_ROOT")
            .output()
            .unwrap()
    };
    let o = run(&["info", "--format", "{{.DockerRootDir}}"]);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let pid = stderr
        .split("Started berthd (pid ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|p| p.parse::<i32>().ok())
        .unwrap_or_else(|| panic!("no daemon started: {stderr}"));
    let bridge = KillOnDrop::bridge_of(&["--root".as_ref(), root.path().as_os_str()]);
    let _guard = KillOnDrop(pid, bridge);
    // Its socket and log live in /run/berth-<hash>, never the default one.
    let log = stderr
        .split("log ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .to_string();
    let exec_root = Path::new(&log).parent().unwrap().to_path_buf();
    assert!(
        exec_root.starts_with("/run")
            && exec_root
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("berth-"),
        "{log}"
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        root.path().to_str().unwrap()
    );
    // The same root finds the same daemon.
    let o = run(&["ps", "-a"]);
    assert!(o.status.success());
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Started berthd"));
    drop(_guard);
    let _ = std::fs::remove_dir_all(&exec_root);
}

/// Several first commands at once on a root with no daemon: each starts
/// one, one of them wins the store's lock, the others step back, and every
/// command is served by the winner.
#[test]
fn concurrent_first_commands_share_one_daemon() {
    require_root();
    let root = tempfile::Builder::new()
        .prefix("berth-cli-race-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let clients: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(BERTH)
                .arg("--root")
                .arg(root.path())
                .args(["info", "--format", "{{.DockerRootDir}}"])
                .env_remove("BERTH_HOST")
                .env_remove("DOCKER_HOST")
                .env_remove("BERTH_EXEC_ROOT")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = clients
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let holder: i32 = std::fs::read_to_string(root.path().join("berthd.lock"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let bridge = KillOnDrop::bridge_of(&["--root".as_ref(), root.path().as_os_str()]);
    let _guard = KillOnDrop(holder, bridge);
    for o in &outs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            root.path().to_str().unwrap()
        );
    }
    // Only the holder is left running on this root (a loser may still be
    // on its way to the lock when its client was already served).
    let needle = root.path().to_str().unwrap();
    let daemons = || -> Vec<i32> {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|pid| {
                let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let cmd = String::from_utf8_lossy(&cmd);
                cmd.contains("berthd") && cmd.split('\0').any(|a| a == needle)
            })
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(10);
    while daemons() != vec![holder] && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left = daemons();
    assert_eq!(left, vec![holder], "daemons on the root: {left:?}");
    // Its exec root (/run/berth-<hash>, beside its log) goes with it.
    let log = std::fs::read_link(format!("/proc/{holder}/fd/2")).unwrap();
    drop(_guard);
    let exec_root = log.parent().unwrap();
    assert!(
        exec_root.starts_with("/run") && exec_root.to_string_lossy().contains("/berth-"),
        "{log:?}"
    );
    let _ = std::fs::remove_dir_all(exec_root);
}

#[test]
fn a_root_the_daemon_does_not_keep_is_refused() {
    let d = Daemon::start();
    let o = std::process::Command::new(BERTH)
        .arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["--root", "/var/tmp/not-this-daemons-root", "images"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("keeps its state in"), "{err}");
}

#[test]
fn bad_flags_exit_125_like_docker() {
    for args in [
        &["run", "--bogus", "img"][..],
        &["ps", "--nope"],
        &["exec", "c"],
    ] {
        let o = std::process::Command::new(BERTH)
            .args(args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(125), "{args:?}");
    }
    let o = std::process::Command::new(BERTH)
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("--publish"));
}

#[test]
fn a_socket_that_is_not_unix_is_refused() {
    let o = std::process::Command::new(BERTH)
        .args(["-H", "tcp://127.0.0.1:2375", "ps"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("only unix:// sockets are supported"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn run_exit_codes_stdin_and_container_commands() {
    let mut d = Daemon::start();
    // Pulled on demand, progress on stderr, output on stdout.
    let o = berth(&d, &["run", "--rm", IMAGE, "echo", "hi"]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "hi\n");
    assert!(
        o.stderr
            .contains(&format!("Unable to find image '{BUSYBOX}' locally")),
        "{}",
        o.stderr
    );
    // -it needs a terminal on stdin, as docker says.
    let o = berth_stdin(&d, &["run", "-it", "--rm", IMAGE, "true"], Some(b""));
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("the input device is not a TTY"),
        "{}",
        o.stderr
    );
    // -i with a pipe: stdin reaches the process, EOF ends it.
    let o = berth_stdin(
        &d,
        &["run", "-i", "--rm", IMAGE, "cat"],
        Some(b"hi\nthere\n"),
    );
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "hi\nthere\n"),
        "{}",
        o.stderr
    );
    // Exit codes: the container's, 127 for a missing command, 125 for the daemon.
    assert_eq!(
        berth(&d, &["run", "--rm", IMAGE, "sh", "-c", "exit 3"]).code,
        3
    );
    let o = berth(&d, &["run", "--rm", IMAGE, "no-such-command"]);
    assert_eq!(o.code, 127, "{}", o.stderr);
    let o = berth(
        &d,
        &["run", "--rm", "localhost:5000/no-such-image:x", "true"],
    );
    assert_eq!(o.code, 125, "{}", o.stderr);
    let o = berth(&d, &["run", "--rm", "--memory", "lots", IMAGE, "true"]);
    assert_eq!(o.code, 125, "docker run exits 125 for a bad flag value too");
    assert!(o.stderr.contains("invalid size: 'lots'"), "{}", o.stderr);
    // stdout and stderr stay apart.
    let o = berth(
        &d,
        &["run", "--rm", IMAGE, "sh", "-c", "echo out; echo err >&2"],
    );
    assert_eq!((o.stdout.as_str(), o.stderr.as_str()), ("out\n", "err\n"));
    // Run options reach the container.
    let o = berth_ok(
        &d,
        &[
            "run",
            "--rm",
            "-e",
            "A=1",
            "-w",
            "/tmp",
            "-u",
            "1000:1000",
            "-h",
            "boxy",
            "--entrypoint",
            "sh",
            IMAGE,
            "-c",
            "echo $A $(pwd) $(id -u) $(hostname)",
        ],
    );
    assert_eq!(o, "1 /tmp 1000 boxy\n");

    let name = unique("berth-cli-run");
    let id = berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo out; echo err >&2; exec sleep 100",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the ID: {id}");
    // logs: both streams, demultiplexed.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let o = berth(&d, &["logs", &name]);
        if o.stdout == "out\n" && o.stderr == "err\n" {
            break;
        }
        assert!(Instant::now() < end, "logs: {:?} {:?}", o.stdout, o.stderr);
        std::thread::sleep(Duration::from_millis(50));
    }
    // exec: env, workdir, user, exit code.
    assert_eq!(
        berth_ok(
            &d,
            &[
                "exec",
                "-e",
                "X=7",
                "-w",
                "/etc",
                "-u",
                "1000",
                &name,
                "sh",
                "-c",
                "echo $X $(pwd) $(id -u)"
            ]
        ),
        "7 /etc 1000\n"
    );
    assert_eq!(berth(&d, &["exec", &name, "sh", "-c", "exit 4"]).code, 4);
    assert_eq!(
        berth_ok(&d, &["exec", "-d", &name, "sh", "-c", "echo bg > /tmp/bg"]),
        ""
    );
    let end = Instant::now() + Duration::from_secs(10);
    while berth(&d, &["exec", &name, "cat", "/tmp/bg"]).stdout != "bg\n" {
        assert!(Instant::now() < end, "exec -d never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    // logs -t: docker's RFC 3339 nanosecond prefix.
    let t = berth_ok(&d, &["logs", "-t", &name]);
    let (ts, line) = t
        .lines()
        .next()
        .unwrap_or("")
        .split_once(' ')
        .unwrap_or_default();
    assert!(
        ts.len() >= 20
            && ts.as_bytes()[4] == b'-'
            && ts.as_bytes()[10] == b'T'
            && ts.ends_with('Z')
            && line == "out",
        "{t}"
    );
    assert_eq!(
        berth_stdin(&d, &["exec", "-i", &name, "cat"], Some(b"piped")).stdout,
        "piped"
    );
    // Signals to an attached run reach the container (docker's sig-proxy).
    let mut child = berth_cmd(
        &d,
        &[
            "run",
            "--rm",
            IMAGE,
            "sh",
            "-c",
            "trap 'echo got; exit 5' TERM; echo ready; sleep 100 & wait",
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: a plain kill of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut out, &mut rest).unwrap();
    assert_eq!((status.code(), rest.as_str()), (Some(5), "got\n"));

    // logs -f follows until the container exits.
    let f = unique("berth-cli-follow");
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &f,
            IMAGE,
            "sh",
            "-c",
            "echo 1; sleep 1; echo 2",
        ],
    );
    let t = Instant::now();
    assert_eq!(berth_ok(&d, &["logs", "-f", &f]), "1\n2\n");
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "logs -f returned early"
    );
    assert_eq!(berth_ok(&d, &["logs", "--tail", "1", &f]), "2\n");
    berth_ok(&d, &["rm", &f]);
    // ps and inspect match the docker CLI's output on the same daemon.
    let ps = berth_ok(&d, &["ps"]);
    let dps = d.ok(&["ps"]);
    // Column widths follow the STATUS text, which ticks between the calls.
    assert_eq!(header_cols(&ps), header_cols(&dps), "ps header");
    assert_eq!(ps.lines().count(), dps.lines().count());
    assert_eq!(berth_ok(&d, &["ps", "-q"]), d.ok(&["ps", "-q"]));
    assert_eq!(berth_ok(&d, &["ps", "-l", "-q"]), d.ok(&["ps", "-l", "-q"]));
    assert_eq!(
        berth_ok(&d, &["ps", "-n", "1", "--no-trunc", "-q"]),
        format!("{id}\n")
    );
    assert_eq!(
        header_cols(&berth_ok(&d, &["ps", "-s"])),
        header_cols(&d.ok(&["ps", "-s"]))
    );
    let f = "{{.ID}} {{.Names}} {{.Image}} {{.Command}} {{.State}}";
    assert_eq!(
        berth_ok(&d, &["ps", "--format", f]),
        d.ok(&["ps", "--format", f])
    );
    let f = "{{.Name}} {{.State.Status}} {{.Config.Tty}} {{json .Config.Cmd}} {{index .Config.Labels \"x\"}} {{len .Args}} {{upper .State.Status}}";
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", f, &name]),
        d.ok(&["inspect", "-f", f, &name])
    );
    let v: serde_json::Value = serde_json::from_str(&berth_ok(&d, &["inspect", &name])).unwrap();
    assert_eq!(v[0]["Id"], id);
    // Byte for byte docker's: the daemon's key order, four-space indent.
    assert_eq!(
        berth_ok(&d, &["inspect", &name, IMAGE]),
        d.ok(&["inspect", &name, IMAGE])
    );
    let o = berth(&d, &["inspect", "no-such-thing"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such object: no-such-thing"),
        "{}",
        o.stderr
    );

    // Lifecycle commands print the names they were given.
    assert_eq!(
        berth_ok(&d, &["stop", "-t", "1", &name]),
        format!("{name}\n")
    );
    let code = berth_ok(&d, &["wait", &name]);
    assert!(
        code.trim().parse::<i32>().is_ok(),
        "wait prints the code: {code}"
    );
    assert_eq!(berth_ok(&d, &["start", &name]), format!("{name}\n"));
    assert_eq!(
        berth_ok(&d, &["restart", "-t", "0", &name]),
        format!("{name}\n")
    );
    assert_eq!(
        berth_ok(&d, &["kill", "-s", "KILL", &name]),
        format!("{name}\n")
    );
    assert_eq!(berth_ok(&d, &["wait", &name]), "137\n");
    let psa = berth_ok(
        &d,
        &[
            "ps",
            "-a",
            "--filter",
            &format!("name={name}"),
            "--format",
            "{{.Status}}",
        ],
    );
    assert!(psa.starts_with("Exited (137)"), "{psa}");
    assert_eq!(berth_ok(&d, &["rm", &name]), format!("{name}\n"));
    let o = berth(&d, &["rm", &name]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr
            .contains("Error response from daemon: No such container"),
        "{}",
        o.stderr
    );

    // create + start -a: the container's output and exit code.
    let c = unique("berth-cli-create");
    berth_ok(
        &d,
        &[
            "create",
            "--name",
            &c,
            IMAGE,
            "sh",
            "-c",
            "echo created; exit 5",
        ],
    );
    let o = berth(&d, &["start", "-a", &c]);
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (5, "created\n"),
        "{}",
        o.stderr
    );
    berth_ok(&d, &["rm", &c]);
    d.finish();
}

#[test]
fn image_commands_through_the_daemon() {
    let mut d = Daemon::start();
    assert_eq!(berth_ok(&d, &["pull", "-q", IMAGE]), format!("{BUSYBOX}\n"));
    // Piped, a pull prints what docker's prints (the image already here).
    let o = berth_ok(&d, &["pull", BUSYBOX]);
    assert!(o.contains("Status: Image is up to date for"), "{o}");
    assert_eq!(o, d.ok(&["pull", BUSYBOX]));
    // Same table and the same answers as the docker CLI.
    let (mine, theirs) = (berth_ok(&d, &["images"]), d.ok(&["images"]));
    assert_eq!(mine, theirs, "images");
    assert_eq!(berth_ok(&d, &["images", "-q"]), d.ok(&["images", "-q"]));
    assert_eq!(
        berth_ok(&d, &["images", "--digests"]),
        d.ok(&["images", "--digests"])
    );
    let f = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Size}}";
    assert_eq!(
        berth_ok(&d, &["images", "--format", f]),
        d.ok(&["images", "--format", f])
    );
    let f = "{{.Id}} {{json .RepoTags}} {{.Config.Cmd}} {{.Os}}";
    assert_eq!(
        berth_ok(&d, &["image", "inspect", "-f", f, IMAGE]),
        d.ok(&["image", "inspect", "-f", f, IMAGE])
    );

    let mine_tag = format!("{}:v1", unique("berth-cli-tag"));
    berth_ok(&d, &["tag", IMAGE, &mine_tag]);
    assert!(berth_ok(&d, &["images"]).contains(&unique("berth-cli-tag")));
    assert_eq!(
        berth_ok(&d, &["rmi", &mine_tag]),
        format!("Untagged: {mine_tag}\n")
    );
    let o = berth(&d, &["rmi", "no-such-image"]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("No such image: no-such-image"),
        "{}",
        o.stderr
    );

    // history: the daemon's endpoint, docker's table.
    assert_eq!(berth_ok(&d, &["history", IMAGE]), d.ok(&["history", IMAGE]));
    assert_eq!(
        berth_ok(&d, &["history", "--no-trunc", "-q", IMAGE]),
        d.ok(&["history", "--no-trunc", "-q", IMAGE])
    );

    // save -> rmi -> load round trip, and docker save through berthd loads too.
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let tar = tmp.path().join("busybox.tar");
    berth_ok(&d, &["save", "-o", tar.to_str().unwrap(), IMAGE]);
    let dtar = tmp.path().join("docker-saved.tar");
    d.ok(&["save", "-o", dtar.to_str().unwrap(), IMAGE]);
    let id = berth_ok(&d, &["images", "-q", "--no-trunc", IMAGE]);
    berth_ok(&d, &["rmi", IMAGE]);
    assert_eq!(berth_ok(&d, &["images", "-q"]), "");
    assert_eq!(
        berth_ok(&d, &["load", "-i", tar.to_str().unwrap()]),
        format!("Loaded image: {BUSYBOX}\n")
    );
    assert_eq!(berth_ok(&d, &["images", "-q", "--no-trunc", IMAGE]), id);
    berth_ok(&d, &["rmi", IMAGE]);
    let o = berth_stdin(&d, &["load", "-q"], Some(&std::fs::read(&dtar).unwrap()));
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(berth_ok(&d, &["images", "-q", "--no-trunc", IMAGE]), id);
    let o = berth_stdin(&d, &["load"], Some(b"not a tar"));
    assert_eq!(o.code, 1, "a bad archive fails: {}", o.stdout);

    // import with --change; the config carries it.
    let src = tmp.path().join("rootfs");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("hello.txt"), "imported\n").unwrap();
    let rootfs_tar = tmp.path().join("rootfs.tar");
    assert!(
        std::process::Command::new("tar")
            .arg("-C")
            .arg(&src)
            .arg("-cf")
            .arg(&rootfs_tar)
            .arg(".")
            .status()
            .unwrap()
            .success()
    );
    let imported = unique("berth-cli-import");
    let out = berth_ok(
        &d,
        &[
            "import",
            "-c",
            "CMD [\"/bin/true\"]",
            "-c",
            "ENV A=1",
            "-m",
            "from a test",
            rootfs_tar.to_str().unwrap(),
            &format!("{imported}:x"),
        ],
    );
    assert!(
        out.trim().starts_with("sha256:"),
        "import prints the ID: {out}"
    );
    assert_eq!(
        berth_ok(
            &d,
            &[
                "inspect",
                "-f",
                "{{json .Config.Cmd}} {{.Config.Env}}",
                &format!("{imported}:x")
            ]
        ),
        "[\"/bin/true\"] [A=1]\n"
    );
    let o = berth(
        &d,
        &["import", "-c", "RUN true", rootfs_tar.to_str().unwrap()],
    );
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains("RUN is not a valid change command"),
        "{}",
        o.stderr
    );
    berth_ok(&d, &["rmi", &format!("{imported}:x")]);

    // push to the registry under a fresh name and pull it back.
    let remote = format!("localhost:5000/{}:v1", unique("berth-cli-push"));
    berth_ok(&d, &["tag", IMAGE, &remote]);
    let o = berth_ok(&d, &["push", &remote]);
    assert!(o.contains("v1: digest: sha256:"), "{o}");
    berth_ok(&d, &["rmi", &remote]);
    assert_eq!(
        berth_ok(&d, &["pull", "-q", &remote]),
        format!("{remote}\n")
    );
    let o = berth(&d, &["push", "localhost:5000/not-here:v1"]);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("does not exist locally"), "{}", o.stderr);

    // login: the daemon checks, the CLI stores; logout is local.
    let o = berth_stdin(
        &d,
        &[
            "login",
            "-u",
            "tester",
            "--password-stdin",
            "localhost:5000",
        ],
        Some(b"secret\n"),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(o.stdout, "Login Succeeded\n");
    let cfg = std::fs::read_to_string(d.docker_config.path().join("config.json")).unwrap();
    assert!(cfg.contains("localhost:5000"), "{cfg}");
    assert_eq!(
        berth_ok(&d, &["logout", "localhost:5000"]),
        "Removing login credentials for localhost:5000\n"
    );
    assert!(Path::new(&d.docker_config.path().join("config.json")).exists());
    d.finish();
}

#[test]
fn system_commands() {
    let mut d = Daemon::start();
    let info = berth_ok(&d, &["info"]);
    assert!(
        info.contains("Server Version:") && info.contains("Storage Driver: overlay2"),
        "{info}"
    );
    assert_eq!(
        berth_ok(&d, &["info", "--format", "{{.OSType}}/{{.Driver}}"]),
        "linux/overlay2\n"
    );
    let v = berth_ok(&d, &["version"]);
    assert!(
        v.contains("Client:") && v.contains("API version:       1.45"),
        "{v}"
    );
    // local: no daemon involved, the store as it is on disk.
    let o = berth_ok(&d, &["system", "check"]);
    assert!(o.contains(" 0 problems"), "{o}");
    d.finish();
}

/// Runs `cmd` under a pseudo-terminal (util-linux `script`), so berth sees
/// a terminal on stdin and stdout; `input` is fed to it with pauses.
fn in_pty(cmd: &str, input: &[(&[u8], u64)]) -> (i32, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("script")
        .args(["-qec", cmd, "/dev/null"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    let mut stdin = child.stdin.take().unwrap();
    for (bytes, pause_ms) in input {
        std::thread::sleep(Duration::from_millis(*pause_ms));
        stdin.write_all(bytes).unwrap();
    }
    // script ends the session at stdin EOF; give the command time first.
    std::thread::sleep(Duration::from_millis(300));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn tty_sessions_resize_and_detach() {
    let mut d = Daemon::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    let berth = format!(
        "{BERTH} -H unix://{} --root {} --exec-root {}",
        d.socket().display(),
        d.root.path().display(),
        d.exec_root.path().display()
    );
    // -it: the container gets a terminal of our size; its exit code comes back.
    let (code, out) = in_pty(
        &format!(
            "stty rows 30 cols 100; {berth} run -it --rm {IMAGE} sh -c 'tty; stty size; exit 7'"
        ),
        &[],
    );
    assert_eq!(code, 7, "{out}");
    assert!(
        out.contains("/dev/pts/0") && out.contains("30 100"),
        "{out}"
    );
    // ctrl-p ctrl-q detaches and leaves the container running.
    let name = unique("berth-cli-tty");
    let (code, out) = in_pty(
        &format!("{berth} run -it --name {name} {IMAGE} sh"),
        &[(b"echo hel''lo\r", 800), (b"\x10\x11", 500)],
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("hello"), "{out}");
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", "{{.State.Running}}", &name]),
        "true\n"
    );
    // exec -it in it, and attach: typed input reaches the shell.
    let (code, out) = in_pty(
        &format!("{berth} exec -it {name} sh -c 'stty size; exit 3'"),
        &[],
    );
    assert_eq!(code, 3, "{out}");
    let (code, out) = in_pty(
        &format!("{berth} attach {name}"),
        &[(b"echo att''ached\r", 500), (b"exit 9\r", 300)],
    );
    assert!(out.contains("attached"), "{out}");
    assert_eq!(code, 9, "attach returns the container's code: {out}");
    berth_ok(&d, &["rm", &name]);
    d.finish();
}

#[test]
fn container_operations_match_docker() {
    let mut d = Daemon::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    let name = unique("berth-cli-ops");
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &name,
            IMAGE,
            "sh",
            "-c",
            "echo a > /x; exec sleep 100",
        ],
    );
    let end = Instant::now() + Duration::from_secs(10);
    while berth_ok(&d, &["diff", &name]).is_empty() {
        assert!(Instant::now() < end, "the container never wrote /x");
        std::thread::sleep(Duration::from_millis(50));
    }
    // CPU figures move between two calls; pid and command do not.
    let top = ["top", name.as_str(), "-o", "pid,args"];
    assert_eq!(berth_ok(&d, &top), d.ok(&top));
    assert_eq!(berth_ok(&d, &["diff", &name]), d.ok(&["diff", &name]));
    let f = "{{.Name}} {{.PIDs}}";
    assert_eq!(
        berth_ok(&d, &["stats", "--no-stream", "--format", f, &name]),
        d.ok(&["stats", "--no-stream", "--format", f, &name])
    );
    assert_eq!(
        header_cols(&berth_ok(&d, &["stats", "--no-stream", &name])),
        header_cols(&d.ok(&["stats", "--no-stream", &name]))
    );
    assert_eq!(berth_ok(&d, &["pause", &name]), format!("{name}\n"));
    assert!(berth_ok(&d, &["ps", "--format", "{{.Status}}"]).contains("(Paused)"));
    assert_eq!(berth_ok(&d, &["unpause", &name]), format!("{name}\n"));
    assert_eq!(
        berth_ok(&d, &["update", "--memory", "64m", &name]),
        format!("{name}\n")
    );
    assert_eq!(
        berth_ok(&d, &["inspect", "-f", "{{.HostConfig.Memory}}", &name]),
        format!("{}\n", 64 << 20)
    );
    // cp both ways, docker's naming: into a directory keeps the name, a new
    // path renames.
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("sub/f"), "file\n").unwrap();
    berth_ok(&d, &["cp", src.to_str().unwrap(), &format!("{name}:/tmp/")]);
    berth_ok(
        &d,
        &[
            "cp",
            src.join("sub/f").to_str().unwrap(),
            &format!("{name}:/tmp/g"),
        ],
    );
    assert_eq!(
        berth_ok(&d, &["exec", &name, "cat", "/tmp/src/sub/f", "/tmp/g"]),
        "file\nfile\n"
    );
    let back = tmp.path().join("back");
    berth_ok(
        &d,
        &["cp", &format!("{name}:/tmp/src"), back.to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/f")).unwrap(),
        "file\n"
    );
    berth_ok(
        &d,
        &["cp", &format!("{name}:/x"), tmp.path().to_str().unwrap()],
    );
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("x")).unwrap(),
        "a\n"
    );
    let o = berth(
        &d,
        &["cp", &format!("{name}:/nope"), tmp.path().to_str().unwrap()],
    );
    assert_eq!(o.code, 1);
    assert_eq!(
        o.stderr,
        d.docker(&["cp", &format!("{name}:/nope"), tmp.path().to_str().unwrap()])
            .stderr
    );

    let renamed = format!("{name}-2");
    assert_eq!(berth_ok(&d, &["rename", &name, &renamed]), "");
    let committed = format!("{}:c", unique("berth-cli-commit"));
    let id = berth_ok(
        &d,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/x\"]",
            &renamed,
            &committed,
        ],
    );
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(berth_ok(&d, &["run", "--rm", &committed]), "a\n");
    let tar = tmp.path().join("export.tar");
    berth_ok(&d, &["export", "-o", tar.to_str().unwrap(), &renamed]);
    let listing = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&listing.stdout)
            .lines()
            .any(|l| l == "x")
    );
    // events: the same lines as docker's for the same window. One fixed
    // `--until` for both: docker's CLI sends a duration as whole seconds,
    // so `0s` in two calls is two windows when a second boundary falls
    // between them.
    let until = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    assert_eq!(
        berth_ok(
            &d,
            &[
                "events",
                "--since",
                "5m",
                "--until",
                &until,
                "--filter",
                "type=container"
            ]
        ),
        d.ok(&[
            "events",
            "--since",
            "5m",
            "--until",
            &until,
            "--filter",
            "type=container"
        ])
    );
    berth_ok(&d, &["rm", "-f", &renamed]);
    berth_ok(&d, &["rmi", &committed]);

    // volumes
    let v = unique("berth-cli-vol");
    assert_eq!(berth_ok(&d, &["volume", "create", &v]), format!("{v}\n"));
    assert_eq!(berth_ok(&d, &["volume", "ls"]), d.ok(&["volume", "ls"]));
    assert_eq!(
        berth_ok(&d, &["volume", "inspect", &v]),
        d.ok(&["volume", "inspect", &v])
    );
    let f = "{{.Name}} {{.Driver}} {{.Mountpoint}}";
    assert_eq!(
        berth_ok(&d, &["volume", "inspect", "-f", f, &v]),
        d.ok(&["volume", "inspect", "-f", f, &v])
    );
    assert_eq!(
        berth_ok(
            &d,
            &[
                "run",
                "--rm",
                "-v",
                &format!("{v}:/data"),
                IMAGE,
                "sh",
                "-c",
                "echo kept > /data/f; cat /data/f"
            ]
        ),
        "kept\n"
    );
    assert_eq!(berth_ok(&d, &["volume", "rm", &v]), format!("{v}\n"));
    // An anonymous volume left by a removed container goes with prune.
    let c = unique("berth-cli-anon");
    berth_ok(&d, &["run", "--name", &c, "-v", "/anon", IMAGE, "true"]);
    let anon = berth_ok(
        &d,
        &["inspect", "-f", "{{range .Mounts}}{{.Name}}{{end}}", &c],
    );
    berth_ok(&d, &["rm", &c]);
    let pruned = berth_ok(&d, &["volume", "prune", "-f"]);
    assert!(
        pruned.contains(anon.trim()) && pruned.contains("Total reclaimed space:"),
        "{pruned}"
    );
    let o = berth(&d, &["volume", "inspect", &v]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&format!("No such volume: {v}")),
        "{}",
        o.stderr
    );
    d.finish();
}

#[test]
fn network_commands_match_docker() {
    let mut d = Daemon::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    assert_eq!(berth_ok(&d, &["network", "ls"]), d.ok(&["network", "ls"]));
    let net = unique("bcnet");
    let id = berth_ok(&d, &["network", "create", "--label", "k=v", &net]);
    assert_eq!(id.trim().len(), 64, "network create prints the ID: {id}");
    assert_eq!(berth_ok(&d, &["network", "ls"]), d.ok(&["network", "ls"]));
    assert_eq!(
        berth_ok(&d, &["network", "ls", "-q"]),
        d.ok(&["network", "ls", "-q"])
    );
    let f = "{{.Name}} {{.Driver}} {{.Internal}} {{index .Labels \"k\"}} {{range .IPAM.Config}}{{.Subnet}}{{end}}";
    assert_eq!(
        berth_ok(&d, &["network", "inspect", "-f", f, &net]),
        d.ok(&["network", "inspect", "-f", f, &net])
    );
    assert_eq!(
        berth_ok(&d, &["network", "inspect", &net]),
        d.ok(&["network", "inspect", &net])
    );
    // A container on it, and connected to a second network later.
    let c = unique("bcnet-c");
    berth_ok(
        &d,
        &[
            "run",
            "-d",
            "--name",
            &c,
            "--network",
            &net,
            IMAGE,
            "sleep",
            "100",
        ],
    );
    let other = unique("bcnet2");
    berth_ok(&d, &["network", "create", &other]);
    assert_eq!(berth_ok(&d, &["network", "connect", &other, &c]), "");
    let f =
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}}={{if $v.IPAddress}}ip {{end}}{{end}}";
    let nets = berth_ok(&d, &["inspect", "-f", f, &c]);
    assert_eq!(nets, d.ok(&["inspect", "-f", f, &c]));
    assert!(
        nets.contains(&format!("{net}=ip")) && nets.contains(&format!("{other}=ip")),
        "{nets}"
    );
    assert_eq!(berth_ok(&d, &["network", "disconnect", &other, &c]), "");
    // In use: refused, as docker.
    let o = berth(&d, &["network", "rm", &net]);
    assert_eq!(o.code, 1);
    // docker 28 appends a literal "exit status 1" line; the message is the same.
    let theirs = d.docker(&["network", "rm", &net]).stderr;
    assert_eq!(o.stderr.lines().next(), theirs.lines().next());
    berth_ok(&d, &["rm", "-f", &c]);
    assert_eq!(berth_ok(&d, &["network", "rm", &net]), format!("{net}\n"));
    let pruned = berth_ok(&d, &["network", "prune", "-f"]);
    assert!(pruned.contains(&other), "{pruned}");
    assert_eq!(berth_ok(&d, &["network", "ls"]), d.ok(&["network", "ls"]));
    let o = berth(&d, &["network", "inspect", &net]);
    assert_eq!(o.code, 1);
    assert!(
        o.stderr.contains(&format!("No such network: {net}")),
        "{}",
        o.stderr
    );
    d.finish();
}

#[test]
fn prune_and_disk_usage() {
    let mut d = Daemon::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    let c = unique("berth-cli-prune");
    berth_ok(&d, &["run", "--name", &c, IMAGE, "true"]);
    assert_eq!(
        header(&berth_ok(&d, &["system", "df"])),
        header(&d.ok(&["system", "df"]))
    );
    let f = "{{.Type}} {{.TotalCount}} {{.Active}}";
    assert_eq!(
        berth_ok(&d, &["system", "df", "--format", f]),
        d.ok(&["system", "df", "--format", f])
    );
    let out = berth_ok(&d, &["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert_eq!(berth_ok(&d, &["ps", "-aq"]), "");
    // Without -f it asks; no answer means no.
    let o = berth_stdin(&d, &["image", "prune", "-a"], Some(b"n\n"));
    assert!(
        o.stderr
            .contains("Are you sure you want to continue? [y/N]"),
        "{}",
        o.stderr
    );
    assert!(!berth_ok(&d, &["images", "-q"]).is_empty());
    let out = berth_ok(&d, &["image", "prune", "-a", "-f"]);
    assert!(
        out.contains("untagged: localhost:5000/busybox:latest"),
        "{out}"
    );
    assert_eq!(berth_ok(&d, &["images", "-q"]), "");
    let out = berth_ok(&d, &["system", "prune", "-f"]);
    assert!(out.contains("Total reclaimed space:"), "{out}");
    d.finish();
}

#[test]
fn login_then_push_and_pull_with_the_stored_credentials() {
    let mut d = Daemon::start();
    let reg = AuthRegistry::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    let login = |pw: &[u8]| {
        berth_stdin(
            &d,
            &["login", "-u", "alice", "--password-stdin", &reg.addr],
            Some(pw),
        )
    };
    let o = login(b"wrong\n");
    assert_eq!(o.code, 1, "{}", o.stdout);
    assert!(
        o.stderr.contains("Error response from daemon:")
            && o.stderr
                .contains("unauthorized: incorrect username or password"),
        "{}",
        o.stderr
    );
    let image = format!("{}/team/app:1", reg.addr);
    berth_ok(&d, &["tag", IMAGE, &image]);
    // Not logged in yet: the registry refuses the push.
    assert_eq!(berth(&d, &["push", &image]).code, 1);
    let o = login(b"wonder\n");
    assert_eq!(
        (o.code, o.stdout.as_str()),
        (0, "Login Succeeded\n"),
        "{}",
        o.stderr
    );
    // The daemon gets the stored credentials in X-Registry-Auth.
    let o = berth_ok(&d, &["push", &image]);
    assert!(o.contains("1: digest: sha256:"), "{o}");
    berth_ok(&d, &["rmi", &image]);
    assert_eq!(berth_ok(&d, &["pull", "-q", &image]), format!("{image}\n"));
    berth_ok(&d, &["rmi", &image]);
    berth_ok(&d, &["logout", &reg.addr]);
    let o = berth(&d, &["pull", &image]);
    assert_eq!(o.code, 1, "pull without credentials: {}", o.stdout);
    d.finish();
}

/// Issue #13 defect 2: berthd has no credentials of its own, so `berth`
/// reads config.json itself and sends them: X-Registry-Auth for pull (and
/// run's implicit pull), X-Registry-Config for build.
#[test]
fn abuse_berth_pull_run_and_build_send_the_clients_own_credentials() {
    let reg = AuthRegistry::start();
    let image = reg.push_busybox("team/bb:1");
    let mut d = Daemon::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {image}\nLABEL built=yes\n"),
    )
    .unwrap();
    let dir = ctx.path().to_str().unwrap();
    let refused = format!(
        "Get \"http://{}/v2/team/bb/manifests/1\": no basic auth credentials",
        reg.addr
    );
    // Not logged in: refused, in dockerd's words.
    for args in [
        &["pull", image.as_str()][..],
        &["run", "--rm", "--network", "none", image.as_str(), "true"],
        &["build", "--progress", "plain", "-t", "tb:1", dir],
    ] {
        let o = berth(&d, args);
        assert_ne!(o.code, 0, "{args:?} without credentials: {}", o.stdout);
        assert!(o.stderr.contains(&refused), "{args:?}: {}", o.stderr);
    }
    // A broken config.json is said, not silently skipped (docker warns too).
    let cfg = d.docker_config.path().join("config.json");
    std::fs::write(&cfg, "{not json").unwrap();
    let o = berth(&d, &["pull", &image]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("WARNING: ") && o.stderr.contains("config.json"),
        "{}",
        o.stderr
    );
    std::fs::remove_file(&cfg).unwrap();
    let o = berth_stdin(
        &d,
        &["login", "-u", "alice", "--password-stdin", &reg.addr],
        Some(b"wonder\n"),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    berth_ok(&d, &["build", "--progress", "plain", "-t", "tb:1", dir]);
    berth_ok(&d, &["rmi", "tb:1", &image]);
    let out = berth_ok(
        &d,
        &["run", "--rm", "--network", "none", &image, "echo", "ran"],
    );
    assert_eq!(out, "ran\n");
    berth_ok(&d, &["rmi", &image]);
    assert_eq!(berth_ok(&d, &["pull", "-q", &image]), format!("{image}\n"));
    berth_ok(&d, &["rmi", &image]);
    d.finish();
}

#[test]
fn run_options_reach_the_daemon_as_dockers_do() {
    let mut d = Daemon::start();
    berth_ok(&d, &["pull", "-q", IMAGE]);
    let tmp = tempfile::tempdir_in("/var/tmp").unwrap();
    let env_file = tmp.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=1\n").unwrap();
    let env_file = env_file.to_str().unwrap().to_string();
    let bind = format!("{}:/host:ro", tmp.path().display());
    let opts = [
        "-e",
        "A=1",
        "--env-file",
        &env_file,
        "-w",
        "/tmp",
        "-u",
        "1000:1000",
        "-h",
        "box",
        "-l",
        "k=v",
        "--entrypoint",
        "sh",
        "-t",
        "-i",
        "--stop-signal",
        "SIGUSR1",
        "--stop-timeout",
        "3",
        "-v",
        &bind,
        "--mount",
        "type=tmpfs,target=/mnt/t",
        "--tmpfs",
        "/run:size=1m",
        "--read-only",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "50",
        "--ulimit",
        "nofile=100:200",
        "--cap-add",
        "NET_ADMIN",
        "--cap-drop",
        "MKNOD",
        "--security-opt",
        "no-new-privileges",
        "--init",
        "--restart",
        "on-failure:2",
        "--network",
        "none",
    ];
    let create = |who: &str| -> Vec<String> {
        let mut a: Vec<String> = vec!["create".into(), "--name".into(), unique(who)];
        a.extend(opts.iter().map(|s| s.to_string()));
        a.extend([IMAGE.to_string(), "-c".into(), "true".into()]);
        a
    };
    let mine = create("berth-cli-opts-b");
    let theirs = create("berth-cli-opts-d");
    berth_ok(&d, &mine.iter().map(String::as_str).collect::<Vec<_>>());
    d.ok(&theirs.iter().map(String::as_str).collect::<Vec<_>>());
    let fields = [
        ".Config.Env",
        ".Config.WorkingDir",
        ".Config.User",
        ".Config.Hostname",
        ".Config.Labels",
        ".Config.Entrypoint",
        ".Config.Cmd",
        ".Config.StopSignal",
        ".Config.StopTimeout",
        ".Config.Tty",
        ".Config.OpenStdin",
        ".HostConfig.Binds",
        ".HostConfig.Tmpfs",
        ".HostConfig.ReadonlyRootfs",
        ".HostConfig.Memory",
        ".HostConfig.MemorySwap",
        ".HostConfig.NanoCpus",
        ".HostConfig.CpuShares",
        ".HostConfig.CpusetCpus",
        ".HostConfig.PidsLimit",
        ".HostConfig.Ulimits",
        ".HostConfig.CapAdd",
        ".HostConfig.CapDrop",
        ".HostConfig.SecurityOpt",
        ".HostConfig.Init",
        ".HostConfig.RestartPolicy",
        ".HostConfig.NetworkMode",
        ".HostConfig.Mounts",
    ];
    // As values: docker's `json` follows its Go structs' field order and
    // leaves out `omitempty` fields, berth's shows a JSON map as it came.
    fn strip(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value as V;
        match v {
            V::Object(o) => V::Object(
                o.into_iter()
                    .filter(|(_, x)| !matches!(x, V::Null | V::Bool(false)) && x != "")
                    .map(|(k, x)| (k, strip(x)))
                    .collect(),
            ),
            V::Array(a) => V::Array(a.into_iter().map(strip).collect()),
            x => x,
        }
    }
    let value = |s: String| strip(serde_json::from_str::<serde_json::Value>(&s).unwrap());
    for f in fields {
        let t = format!("{{{{json {f}}}}}");
        assert_eq!(
            value(berth_ok(&d, &["inspect", "-f", &t, &mine[2]])),
            value(d.ok(&["inspect", "-f", &t, &theirs[2]])),
            "{f}"
        );
    }
    berth_ok(&d, &["rm", &mine[2], &theirs[2]]);
    // Ports: bindings and exposed ports as docker's CLI sends them.
    let ports = [
        "-p",
        "127.0.0.1:18080:80",
        "-p",
        "53/udp",
        "-p",
        "9000-9001:7000-7001",
        "--expose",
        "90",
        "-P",
    ];
    let (b, dk) = (unique("berth-cli-ports-b"), unique("berth-cli-ports-d"));
    let args = |n: &str| -> Vec<String> {
        let mut a = vec!["create".to_string(), "--name".into(), n.to_string()];
        a.extend(ports.iter().map(|s| s.to_string()));
        a.push(IMAGE.into());
        a
    };
    berth_ok(&d, &args(&b).iter().map(String::as_str).collect::<Vec<_>>());
    d.ok(&args(&dk).iter().map(String::as_str).collect::<Vec<_>>());
    for f in [
        ".HostConfig.PortBindings",
        ".Config.ExposedPorts",
        ".HostConfig.PublishAllPorts",
    ] {
        let t = format!("{{{{json {f}}}}}");
        assert_eq!(
            value(berth_ok(&d, &["inspect", "-f", &t, &b])),
            value(d.ok(&["inspect", "-f", &t, &dk])),
            "{f}"
        );
    }
    berth_ok(&d, &["rm", &b, &dk]);
    d.finish();
}
