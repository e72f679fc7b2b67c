//! `berth build` against a private berthd: the context read in place
//! (`berthcontextpath`, root clients) and sent as a tar (everyone else,
//! and `docker build`) give the same image; .dockerignore holds in both;
//! a rebuild re-runs exactly the steps a changed file feeds. Root only.

mod support;

use std::path::Path;
use std::process::Command;

use support::*;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// `berth build` as uid/gid 1000 (setpriv): the daemon refuses to read
/// its directory, so the context goes as a tar.
fn build_as_user(d: &Daemon, dir: &Path) -> Output {
    let o = Command::new("setpriv")
        .args(["--reuid=1000", "--regid=1000", "--clear-groups", BERTH])
        .arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .args(["build", "--progress", "plain"])
        .arg(dir)
        .env("HOME", "/tmp")
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn image_id(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split("writing image ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no image id in: {out}"))
        .to_string()
}

/// Steps that ran (not CACHED), by their `#N [stage i/n] INSTR` line.
fn ran(out: &str) -> Vec<String> {
    let lines: Vec<&str> = out.lines().collect();
    let mut v = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some((num, rest)) = l.split_once(' ') else {
            continue;
        };
        if !num.starts_with('#')
            || !rest.starts_with('[')
            || rest.starts_with("[internal]")
            || rest.contains("FROM ")
        {
            continue;
        }
        let cached = lines[i + 1..]
            .iter()
            .any(|n| n.starts_with(&format!("{num} CACHED")));
        if !cached {
            v.push(rest.split_once("] ").map_or(rest, |x| x.1).to_string());
        }
    }
    v
}

#[test]
fn context_in_place_and_as_tar_give_the_same_image() {
    let mut d = Daemon::start();
    let ctx = tempfile::Builder::new()
        .prefix("berth-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = ctx.path();
    write(
        dir,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {IMAGE}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /from-a\nCOPY . /ctx/\nRUN find /ctx | sort > /list\nRUN --mount=type=bind,source=sub,target=/m cat /m/y.log > /bound\n"
                ),
            ),
            (".dockerignore", "*.log\nsecret\n"),
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("x.log", "log\n"),
            ("sub/y.log", "log\n"),
            ("secret/key", "hidden\n"),
        ],
    );
    // The uid 1000 client must be able to read it all.
    Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(dir)
        .status()
        .unwrap();
    let p = dir.to_str().unwrap();

    // Root: read in place (no kept context appears on the daemon's side).
    let o = berth(&d, &["build", "--progress", "plain", "-t", "bc:one", p]);
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, d.log());
    let id = image_id(&o.stderr);
    let contexts = d.root.path().join("builder/contexts");
    assert!(!contexts.exists(), "path mode keeps no context copy");
    // A bind mount of the context (a detached clone of the passed
    // directory's tree, attached in the daemon's scratch dir).
    assert_eq!(
        berth_ok(&d, &["run", "--rm", "bc:one", "cat", "/bound"]),
        "log\n"
    );
    let list = berth_ok(&d, &["run", "--rm", "bc:one", "cat", "/list"]);
    assert_eq!(
        list.split_whitespace().collect::<Vec<_>>(),
        [
            "/ctx",
            "/ctx/.dockerignore",
            "/ctx/Dockerfile",
            "/ctx/a.txt",
            "/ctx/b.txt",
            "/ctx/sub",
            "/ctx/sub/y.log"
        ],
        ".dockerignore honoured in place"
    );

    // A non-root client is refused the path mode, with a clear answer...
    std::fs::set_permissions(
        d.exec_root.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(
        d.socket(),
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let refused = Command::new("setpriv")
        .args(["--reuid=1000", "--regid=1000", "--clear-groups", "curl"])
        .args(["-s", "-X", "POST", "-w", " %{http_code}", "--unix-socket"])
        .arg(d.socket())
        .arg(format!(
            "http://berth/v1.45/build?berthcontextpath={p}&dockerfile=Dockerfile"
        ))
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&refused.stdout).into_owned();
    assert!(
        refused.ends_with(" 403") && refused.contains("only for root clients"),
        "{refused}"
    );
    // ...and `berth build` then sends a tar: same cache keys, same image.
    let o = build_as_user(&d, dir);
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, d.log());
    assert_eq!(image_id(&o.stderr), id, "{}", o.stderr);
    assert!(ran(&o.stderr).is_empty(), "all cached: {}", o.stderr);
    assert!(contexts.exists(), "the tar went to a kept context");
    // docker build (a Docker API client: always a tar) agrees.
    let o = d.docker(&["build", p]);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stdout
            .contains(&format!("Successfully built {}", &id[7..19])),
        "{}",
        o.stdout
    );

    // touch: contents unchanged, every step cached (mtimes are not keyed).
    Command::new("touch")
        .arg(dir.join("a.txt"))
        .status()
        .unwrap();
    let o = berth(&d, &["build", "--progress", "plain", p]);
    assert_eq!(image_id(&o.stderr), id, "{}", o.stderr);
    // b.txt feeds only COPY . and what follows.
    std::fs::write(dir.join("b.txt"), "B\n").unwrap();
    let o = berth(&d, &["build", "--progress", "plain", p]);
    assert_eq!(
        ran(&o.stderr),
        [
            "COPY . /ctx/",
            "RUN /bin/sh -c find /ctx | sort > /list",
            "RUN /bin/sh -c cat /m/y.log > /bound"
        ],
        "{}",
        o.stderr
    );
    // An ignored file changes nothing.
    std::fs::write(dir.join("x.log"), "other\n").unwrap();
    std::fs::write(dir.join("secret/key"), "other\n").unwrap();
    let o2 = berth(&d, &["build", "--progress", "plain", p]);
    assert!(ran(&o2.stderr).is_empty(), "{}", o2.stderr);
    assert_eq!(image_id(&o2.stderr), image_id(&o.stderr));
    // a.txt feeds everything after the FROM.
    std::fs::write(dir.join("a.txt"), "A\n").unwrap();
    let o = berth(&d, &["build", "--progress", "plain", p]);
    assert_eq!(ran(&o.stderr).len(), 5, "{}", o.stderr);
    d.finish();
}

/// A client in a mount namespace of its own names a directory only it
/// sees: the daemon reads it through the fd the client passed.
#[test]
fn context_in_another_mount_namespace() {
    let mut d = Daemon::start();
    let mnt = tempfile::Builder::new()
        .prefix("berth-ns-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let script = format!(
        "set -e; mount -t tmpfs ctx {m}; printf 'FROM {IMAGE}\\nCOPY f /f\\nRUN --mount=type=bind,target=/m cat /m/f\\n' > {m}/Dockerfile; echo private > {m}/f; \
         {berth} -H unix://{sock} build --progress plain -t ns:one {m}",
        m = mnt.path().display(),
        berth = BERTH,
        sock = d.socket().display(),
    );
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}\n{}", d.log());
    assert!(
        !d.root.path().join("builder/contexts").exists(),
        "read in place, not sent as a tar: {err}"
    );
    // The bind mount got a copy: the kernel clones no mount of another
    // namespace.
    assert!(err.lines().any(|l| l.ends_with(" private")), "{err}");
    assert_eq!(
        berth_ok(&d, &["run", "--rm", "ns:one", "cat", "/f"]).trim(),
        "private"
    );
    d.finish();
}

/// `RUN --mount=type=bind` of a context read in place: read-only down
/// through a host directory mounted inside it (a plain `ro` bind covers
/// only the top mount), and without what .dockerignore excludes.
#[test]
fn a_context_bind_is_read_only_through_submounts_and_filtered() {
    let mut d = Daemon::start();
    let ctx = tempfile::Builder::new()
        .prefix("berth-bindro-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let host = tempfile::Builder::new()
        .prefix("berth-bindro-host-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = ctx.path();
    std::fs::write(host.path().join("file"), "orig\n").unwrap();
    write(
        dir,
        &[
            (
                "Dockerfile",
                &format!(
                    "FROM {IMAGE}\n\
                     RUN --mount=type=bind,source=data,target=/d sh -c 'echo X >/d/sub/file; echo t >/d/t; cat /d/sub/file /d/keep; true'\n\
                     RUN --mount=type=bind,target=/ctx sh -c 'cat /ctx/secret/.env /ctx/secret/plain; true'\n\
                     RUN --mount=type=bind,source=data,target=/w,rw sh -c 'echo rewritten >/w/keep; echo \"rw:$(cat /w/keep)\"'\n"
                ),
            ),
            (".dockerignore", "secret/.env\n"),
            ("secret/.env", "hunter2\n"),
            ("secret/plain", "plain-text\n"),
            ("data/keep", "kept\n"),
            ("data/sub/.stub", ""),
        ],
    );
    let sub = dir.join("data/sub");
    let st = Command::new("mount")
        .arg("--bind")
        .arg(host.path())
        .arg(&sub)
        .status()
        .unwrap();
    assert!(st.success());
    let o = berth(&d, &["build", "--progress", "plain", dir.to_str().unwrap()]);
    let _ = Command::new("umount").arg(&sub).status();
    assert_eq!(o.code, 0, "{}\n{}", o.stderr, d.log());
    assert!(
        !d.root.path().join("builder/contexts").exists(),
        "read in place: {}",
        o.stderr
    );
    assert_eq!(
        std::fs::read_to_string(host.path().join("file")).unwrap(),
        "orig\n",
        "the submount was written through: {}",
        o.stderr
    );
    assert!(!dir.join("data/t").exists());
    // A rw bind writes to a throwaway copy.
    assert!(o.stderr.contains("rw:rewritten"), "{}", o.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("data/keep")).unwrap(),
        "kept\n"
    );
    // The bind shows what it should...
    assert!(
        o.stderr.contains("orig") && o.stderr.contains("kept"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("plain-text"), "{}", o.stderr);
    // ...and not what .dockerignore excludes.
    assert!(!o.stderr.contains("hunter2"), "{}", o.stderr);
    d.finish();
}

/// A byte relay in front of berthd's socket, as socat or an ssh forward
/// would be: it runs as root, so the daemon sees uid 0, but it passes no
/// fds. Serves until the test process ends.
fn relay(front: &Path, back: &Path) {
    use std::os::unix::net::{UnixListener, UnixStream};
    let l = UnixListener::bind(front).unwrap();
    let back = back.to_path_buf();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(c) = c else { return };
            let Ok(d) = UnixStream::connect(&back) else {
                return;
            };
            let pipe = |mut a: UnixStream, mut b: UnixStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut a, &mut b);
                    let _ = b.shutdown(std::net::Shutdown::Write);
                });
            };
            pipe(c.try_clone().unwrap(), d.try_clone().unwrap());
            pipe(d, c);
        }
    });
}

/// `curl` POST /build with `berthcontextpath=path` on `sock`: the reply
/// body and status.
fn curl_build(sock: &Path, path: &str) -> String {
    let o = Command::new("curl")
        .args(["-s", "-X", "POST", "-w", " %{http_code}", "--unix-socket"])
        .arg(sock)
        .arg(format!(
            "http://berth/v1.45/build?berthcontextpath={path}&dockerfile=Dockerfile"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The path names nothing by itself: only a directory fd passed with the
/// connection is read in place. A root client without one, and any
/// client behind a root relay (which drops fds), is refused (400); `berth
/// build` through the relay then sends a tar.
#[test]
fn a_path_without_a_passed_directory_is_refused() {
    let mut d = Daemon::start();
    let ctx = tempfile::Builder::new()
        .prefix("berth-relay-ctx-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let dir = ctx.path();
    write(
        dir,
        &[
            ("Dockerfile", &format!("FROM {IMAGE}\nCOPY f /f\n")),
            ("f", "relayed\n"),
        ],
    );
    let p = dir.to_str().unwrap();
    let direct = curl_build(&d.socket(), p);
    assert!(
        direct.ends_with(" 400") && direct.contains("no directory fd"),
        "{direct}"
    );
    let front = d.exec_root.path().join("relay.sock");
    relay(&front, &d.socket());
    let relayed = curl_build(&front, "/root");
    assert!(
        relayed.ends_with(" 400") && relayed.contains("no directory fd"),
        "{relayed}"
    );
    let o = Command::new(BERTH)
        .arg("-H")
        .arg(format!("unix://{}", front.display()))
        .args(["build", "--progress", "plain", "-t", "relayed:one", p])
        .env("DOCKER_CONFIG", d.docker_config.path())
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}\n{}", d.log());
    assert!(
        d.root.path().join("builder/contexts").exists(),
        "sent as a tar: {err}"
    );
    assert_eq!(
        berth_ok(&d, &["run", "--rm", "relayed:one", "cat", "/f"]),
        "relayed\n"
    );
    d.finish();
}

/// A layer of random data (written as stored blocks by berth-image's
/// gzwrite) is an ordinary gzip blob to other tools: pushed to the
/// registry and pulled by dockerd, its file arrives intact. Opt-in with
/// the shared dockerd (`BERTH_DOCKER_COMPARE=1`).
#[test]
fn a_stored_layer_pushes_and_pulls_into_dockerd() {
    if std::env::var("BERTH_DOCKER_COMPARE").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_DOCKER_COMPARE=1 to pull into dockerd");
        return;
    }
    let st = Command::new("/work/shared/fixtures/dockerd.sh")
        .arg("start")
        .status();
    assert!(matches!(st, Ok(s) if s.success()), "no dockerd: {st:?}");
    let mut d = Daemon::start();
    let ctx = tempfile::Builder::new()
        .prefix("berth-stored-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let mut noise = vec![0u8; 4 << 20];
    std::io::Read::read_exact(
        &mut std::fs::File::open("/dev/urandom").unwrap(),
        &mut noise,
    )
    .unwrap();
    std::fs::write(ctx.path().join("noise"), &noise).unwrap();
    write(
        ctx.path(),
        &[("Dockerfile", &format!("FROM {IMAGE}\nCOPY noise /noise\n"))],
    );
    let name = format!("localhost:5000/berth-stored-{}:t", std::process::id());
    let p = ctx.path().to_str().unwrap();
    berth_ok(&d, &["build", "-q", "-t", &name, p]);
    berth_ok(&d, &["push", &name]);
    let docker = |args: &[&str]| {
        Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", "unix:///var/run/docker.sock")
            .output()
            .unwrap()
    };
    let pulled = docker(&["pull", "-q", &name]);
    let run = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        &name,
        "md5sum",
        "/noise",
    ]);
    let _ = docker(&["rmi", "-f", &name]);
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    let sum = Command::new("md5sum")
        .arg(ctx.path().join("noise"))
        .output()
        .unwrap();
    let want = String::from_utf8_lossy(&sum.stdout);
    let got = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        got.split_whitespace().next(),
        want.split_whitespace().next(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    d.finish();
}
