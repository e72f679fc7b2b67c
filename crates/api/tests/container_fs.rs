//! Root-only: a container's filesystem through the real docker CLI against
//! a private berthd — diff, export, commit (and the committed image runs).

mod common;

use std::process::Command;

use common::{Daemon, IMAGE, unique};

/// The names in a tar archive (via the host's tar).
fn tar_names(tar: &std::path::Path) -> Vec<String> {
    let out = Command::new("tar").arg("-tf").arg(tar).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim_end_matches('/').to_string())
        .collect()
}

#[test]
fn diff_export_commit() {
    let mut d = Daemon::start();
    d.ok(&["pull", IMAGE]);
    let name = unique("fs");
    d.ok(&[
        "run",
        "--name",
        &name,
        IMAGE,
        "sh",
        "-c",
        "mkdir -p /tmp/new && echo data > /tmp/new/file && echo x >> /etc/passwd && rm /bin/vi",
    ]);
    // Added, changed, deleted (a whiteout); nothing of the engine's own mounts.
    let diff = d.ok(&["diff", &name]);
    let lines: Vec<&str> = diff.lines().collect();
    assert_eq!(
        lines,
        [
            "C /bin",
            "D /bin/vi",
            "C /etc",
            "C /etc/passwd",
            "C /tmp",
            "A /tmp/new",
            "A /tmp/new/file"
        ],
        "{diff}"
    );

    // Export: the whole merged filesystem.
    let tmp = tempfile::tempdir().unwrap();
    let tar = tmp.path().join("export.tar");
    d.ok(&["export", "-o", tar.to_str().unwrap(), &name]);
    let names = tar_names(&tar);
    assert!(names.contains(&"tmp/new/file".to_string()), "{names:?}");
    assert!(names.contains(&"bin/sh".to_string()));
    assert!(!names.contains(&"bin/vi".to_string()));
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .arg("tmp/new/file")
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"data\n");

    // Commit with changes: a new image, one layer more, the config edited.
    let repo = format!("localhost:5000/{}", unique("committed"));
    let id = d.ok(&[
        "commit",
        "--change",
        "CMD [\"cat\", \"/tmp/new/file\"]",
        "--change",
        "ENV GREETING=hello",
        "--change",
        "LABEL team=ops",
        "--change",
        "EXPOSE 8080",
        "--change",
        "WORKDIR /tmp",
        "-m",
        "a comment",
        "-a",
        "someone",
        &name,
        &format!("{repo}:v1"),
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let base_layers = d.ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", IMAGE]);
    let layers = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{len .RootFS.Layers}}",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(
        layers.trim().parse::<usize>().unwrap(),
        base_layers.trim().parse::<usize>().unwrap() + 1
    );
    let cfg = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{json .Config.Cmd}} {{.Config.Labels.team}} {{.Config.WorkingDir}} {{json .Config.ExposedPorts}} {{.Author}} {{.Comment}}",
        &format!("{repo}:v1"),
    ]);
    assert_eq!(
        cfg.trim(),
        r#"["cat","/tmp/new/file"] ops /tmp {"8080/tcp":{}} someone a comment"#
    );
    // The image runs: its layer has the file, the whiteout hides vi.
    assert_eq!(d.ok(&["run", "--rm", &format!("{repo}:v1")]), "data\n");
    let o = d.ok(&[
        "run",
        "--rm",
        &format!("{repo}:v1"),
        "sh",
        "-c",
        "echo $GREETING; test -e /bin/vi || echo gone; tail -1 /etc/passwd",
    ]);
    assert_eq!(o, "hello\ngone\nx\n");
    // Bad change instructions are the client's fault.
    let o = d.docker(&["commit", "--change", "FROM x", &name]);
    assert_ne!(o.code, 0);
    assert!(
        o.stderr.contains("not a valid change command"),
        "{}",
        o.stderr
    );
    // Commit of a running container (paused meanwhile) keeps it running.
    let live = unique("live");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &live,
        IMAGE,
        "sh",
        "-c",
        "echo up > /up; sleep 1000",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    d.ok(&["commit", &live, &format!("{repo}:live")]);
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Status}}", &live]).trim(),
        "running"
    );
    assert_eq!(
        d.ok(&["run", "--rm", &format!("{repo}:live"), "cat", "/up"]),
        "up\n"
    );
    d.finish();
}
