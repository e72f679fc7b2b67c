//! `docker build` (legacy builder protocol: POST /build) against a private
//! berthd. Root only: RUN steps run in containers.

mod common;

use common::{DOCKER, Daemon, IMAGE, unique};

fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::Builder::new()
        .prefix("berth-build-ctx-")
        .tempdir()
        .unwrap();
    for (name, text) in files {
        std::fs::write(d.path().join(name), text).unwrap();
    }
    d
}

fn tar_of(dir: &std::path::Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

#[test]
fn docker_build_tags_args_labels_and_cache() {
    let mut d = Daemon::start();
    let df = format!(
        "FROM {IMAGE}\nARG X=def\nCOPY a.txt /a.txt\nRUN echo ran-$X && echo $X > /x\nLABEL from=df\nCMD [\"cat\", \"/x\"]\n"
    );
    let ctx = context(&[("Dockerfile", &df), ("a.txt", "hello\n")]);
    let dir = ctx.path().to_str().unwrap();
    let iid = ctx.path().join("iid");
    let out = d.ok(&[
        "build",
        "-t",
        "bt:one",
        "-t",
        "bt:two",
        "--build-arg",
        "X=given",
        "--label",
        "cli=yes",
        "--iidfile",
        iid.to_str().unwrap(),
        dir,
    ]);
    assert!(out.contains("ran-given"), "RUN output streamed: {out}");
    assert!(out.contains("Successfully tagged bt:one"), "{out}");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert!(id.starts_with("sha256:"), "iidfile: {id}");
    let inspect = d.ok(&[
        "image",
        "inspect",
        "bt:two",
        "--format",
        "{{.Id}} {{json .Config.Labels}} {{json .Config.Cmd}}",
    ]);
    assert_eq!(
        inspect.trim(),
        format!(r#"{id} {{"cli":"yes","from":"df"}} ["cat","/x"]"#)
    );
    assert_eq!(d.ok(&["run", "--rm", "bt:one"]).trim(), "given");

    // Same inputs: every step from the cache, same image; --no-cache reruns.
    let again = d.ok(&["build", "--build-arg", "X=given", "--label", "cli=yes", dir]);
    assert!(
        again.contains("CACHED") && !again.contains("ran-given"),
        "{again}"
    );
    assert!(again.contains(&id[7..19]), "same image id: {again}");
    // -q prints only the id.
    let q = d.ok(&[
        "build",
        "-q",
        "--build-arg",
        "X=given",
        "--label",
        "cli=yes",
        dir,
    ]);
    assert_eq!(q.trim(), id.trim());

    let fresh = d.ok(&["build", "--no-cache", "--build-arg", "X=given", dir]);
    assert!(fresh.contains("ran-given"), "{fresh}");

    // A failing step: non-zero exit, the step named.
    std::fs::write(
        ctx.path().join("Bad"),
        format!("FROM {IMAGE}\nRUN exit 3\n"),
    )
    .unwrap();
    let bad = ctx.path().join("Bad");
    let o = d.docker(&["build", "-f", bad.to_str().unwrap(), dir]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("exit 3") && o.stderr.contains("exit code 3"),
        "{}",
        o.stderr
    );

    // builder prune keeps what images use (the build stays cached);
    // with -a the cache empties: the next build runs the step again.
    let p = d.ok(&["builder", "prune", "-f"]);
    assert!(p.contains("Total reclaimed space"), "{p}");
    let cached = d.ok(&["build", "--build-arg", "X=given", dir]);
    assert!(!cached.contains("ran-given"), "{cached}");
    let p = d.ok(&["builder", "prune", "-a", "-f"]);
    assert!(p.contains("Total reclaimed space"), "{p}");
    let after = d.ok(&["build", "--build-arg", "X=given", dir]);
    assert!(after.contains("ran-given"), "{after}");
    d.finish();
}

#[test]
fn docker_build_stdin_target_and_file() {
    let mut d = Daemon::start();
    // `docker build -`: the Dockerfile on stdin, empty context.
    let df = format!("FROM {IMAGE}\nRUN echo from-stdin > /s\n");
    let o = d.docker_stdin(&["build", "-t", "bt:stdin", "-"], df.as_bytes());
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(
        d.ok(&["run", "--rm", "bt:stdin", "cat", "/s"]).trim(),
        "from-stdin"
    );

    // A context tar on stdin, another Dockerfile (-f), a --target stage.
    let multi = format!(
        "FROM {IMAGE} AS a\nCOPY f /f\nRUN echo A >> /f\nFROM {IMAGE} AS b\nRUN echo never-run\nFROM {IMAGE}\nCOPY --from=a /f /g\n"
    );
    let ctx = context(&[("Multi.df", &multi), ("f", "ctx\n")]);
    let tar = tar_of(ctx.path());
    let o = d.docker_stdin(
        &[
            "build", "-f", "Multi.df", "--target", "a", "-t", "bt:a", "-",
        ],
        &tar,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(d.ok(&["run", "--rm", "bt:a", "cat", "/f"]), "ctx\nA\n");
    let o = d.docker_stdin(&["build", "-f", "Multi.df", "-t", "bt:final", "-"], &tar);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        !o.stdout.contains("never-run"),
        "unneeded stage b ran: {}",
        o.stdout
    );
    assert_eq!(d.ok(&["run", "--rm", "bt:final", "cat", "/g"]), "ctx\nA\n");

    // Bad input is refused with the problem named.
    let o = d.docker_stdin(&["build", "-f", "Missing", "-"], &tar);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Missing"), "{}", o.stderr);
    let o = d.docker_stdin(&["build", "--network", "container:x", "-"], df.as_bytes());
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("container:x"), "{}", o.stderr);
    d.finish();
}

/// The berth CLI beside berthd (built if this crate was built alone).
fn berth_cli() -> std::path::PathBuf {
    let p = std::path::Path::new(common::BERTHD.as_str())
        .parent()
        .unwrap()
        .join("berth");
    if !p.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "berth-cli"])
            .status()
            .unwrap()
            .success();
        assert!(ok, "building berth-cli failed");
    }
    p
}

#[test]
fn berth_build_goes_through_berthd() {
    let mut d = Daemon::start();
    let berth = berth_cli();
    let run = |args: &[&str], stdin: &[u8]| {
        use std::io::Write;
        let mut c = std::process::Command::new(&berth)
            // A root of its own: only the daemon's store may change.
            .arg("--root")
            .arg(d.root.path().join("cli-root-unused"))
            .args(args)
            .env("BERTH_HOST", format!("unix://{}", d.socket().display()))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(stdin).unwrap();
        let o = c.wait_with_output().unwrap();
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let ctx = context(&[
        ("a.txt", "A\n"),
        ("junk.log", "ignored\n"),
        (".dockerignore", "*.log\n"),
    ]);
    // A Dockerfile outside the context (-f from the current directory).
    let outside = context(&[(
        "Build.df",
        &format!("FROM {IMAGE}\nCOPY . /c/\nRUN echo ran-step && ls -A /c > /list\n"),
    )]);
    let df = outside.path().join("Build.df");
    let dir = ctx.path().to_str().unwrap();
    let iid = outside.path().join("iid");
    let (code, _, err) = run(
        &[
            "build",
            "--progress",
            "plain",
            "-t",
            "viacli:1",
            "--iidfile",
            iid.to_str().unwrap(),
            "-f",
            df.to_str().unwrap(),
            dir,
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("ran-step") && err.contains("DONE"), "{err}");
    let id = std::fs::read_to_string(&iid).unwrap();
    assert_eq!(
        d.ok(&["image", "inspect", "viacli:1", "--format", "{{.Id}}"])
            .trim(),
        id
    );
    // .dockerignore applied (the ignored file never left the client).
    assert_eq!(
        d.ok(&["run", "--rm", "viacli:1", "cat", "/list"]),
        ".dockerignore\na.txt\n"
    );
    assert!(
        !std::path::Path::new(d.root.path())
            .join("cli-root-unused/builder")
            .exists(),
        "the build ran in the CLI, not in berthd"
    );

    // tty mode: one line per finished step, cache hits marked; -q: the ID.
    let (code, _, err) = run(
        &[
            "build",
            "--progress",
            "tty",
            "-f",
            df.to_str().unwrap(),
            dir,
        ],
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("=> CACHED [3/3] RUN"), "{err}");
    let (code, out, _) = run(&["build", "-q", "-f", df.to_str().unwrap(), dir], b"");
    assert_eq!((code, out.trim()), (0, id.trim()));

    // Dockerfile on stdin; a failing step fails the command with its message.
    let (code, _, err) = run(
        &["build", "--progress", "plain", "-f", "-", dir],
        format!("FROM {IMAGE}\nRUN echo boom; exit 4\n").as_bytes(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("boom") && err.contains("exit code 4"), "{err}");

    let (code, out, err) = run(&["builder", "prune", "-a", "-f"], b"");
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Deleted build cache objects: 2"), "{out}");
    d.finish();
}

/// docker build names no context: its tars share one kept copy that each
/// build syncs exactly, rewriting only what changed (a same-size edit in
/// the same mtime second included).
#[test]
fn docker_build_context_is_kept_and_synced_exactly() {
    use std::os::unix::fs::MetadataExt;
    let mut d = Daemon::start();
    let df = format!("FROM {IMAGE}\nCOPY . /c/\nRUN cat /c/a.txt\n");
    let ctx = context(&[
        ("Dockerfile", &df),
        ("a.txt", "content-one\n"),
        ("b.txt", "b\n"),
    ]);
    let dir = ctx.path().to_str().unwrap();
    let o = d.docker(&["build", dir]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("content-one"), "{}", o.stdout);
    let kept = d.root.path().join("builder/contexts/0");
    // A second name pins b.txt's inode: a rewrite cannot get its number back.
    let pin = d.root.path().join("pin");
    std::fs::hard_link(kept.join("b.txt"), &pin).unwrap();
    let a = ctx.path().join("a.txt");
    let mtime = std::fs::metadata(&a).unwrap().modified().unwrap();
    std::fs::write(&a, "content-two\n").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&a)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let o = d.docker(&["build", dir]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("content-two"), "{}", o.stdout);
    let ino = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
    assert_eq!(ino(&kept.join("b.txt")), ino(&pin), "b.txt was rewritten");
    std::fs::remove_file(&pin).unwrap();
    d.finish();
}

/// berthd SIGKILLed while a RUN step is running: the step's runtime helper
/// (a fork of the daemon) holds none of the daemon's fds and dies with it,
/// so a new daemon starts on the store at once and answers, and the build
/// is gone.
#[test]
fn daemon_killed_mid_run_step_restarts_at_once() {
    let mut d = Daemon::start();
    let marker = unique("berth-step-sleep");
    // Not the last command: sh stays, its command line naming the marker.
    let df = format!("FROM {IMAGE}\nRUN echo {marker} && sleep 60 && echo {marker}\n");
    let mut build = std::process::Command::new(DOCKER)
        .args(["build", "-q", "-"])
        .env("DOCKER_HOST", format!("unix://{}", d.socket().display()))
        .env("DOCKER_BUILDKIT", "0")
        .env("DOCKER_CONFIG", d.docker_config.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        build
            .stdin
            .take()
            .unwrap()
            .write_all(df.as_bytes())
            .unwrap();
    }
    // Wait for the step's `sleep 60` (its shell's command line names the marker).
    let step_running = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&marker))
                    .unwrap_or(false)
            })
    };
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !step_running() {
        assert!(
            std::time::Instant::now() < end,
            "the step never ran: {}",
            d.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.kill9();
    let t = std::time::Instant::now();
    d.spawn(); // panics if no daemon answers within 20 s
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    d.ok(&["version"]);
    // The client's connection died with the daemon (no fork kept it open).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while build.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < end,
            "docker build still connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // And the step itself is collected (by the new daemon's cleanup).
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while step_running() {
        assert!(
            std::time::Instant::now() < end,
            "the step outlived its build"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    d.finish();
}
