//! `docker build` (legacy builder protocol: POST /build) against a private
//! berthd. Root only: RUN steps run in containers.

mod common;

use common::{Daemon, IMAGE};

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

    // builder prune empties the cache: the next build runs the step again.
    let p = d.ok(&["builder", "prune", "-f"]);
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
