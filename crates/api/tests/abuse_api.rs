//! Root-only abuse suite for the API (issue #13): what a client sends that
//! dockerd refuses must be refused here too, where it enters, with dockerd's
//! status and words. `cargo nextest run abuse_` selects the suite.

mod common;

use common::*;

/// A 400 whose message says `word`.
#[track_caller]
fn refused(d: &Daemon, method: &str, path: &str, body: &str, word: &str) {
    let (code, resp) = d.http_json(method, path, body);
    assert_eq!(code, 400, "{method} {path} {body}: {resp}");
    assert!(resp.contains(word), "{method} {path}: {resp}");
}

#[test]
fn abuse_api_versions_out_of_range_are_400() {
    let d = Daemon::start();
    refused(
        &d,
        "GET",
        "/v9.99/info",
        "",
        "client version 9.99 is too new. Maximum supported API version is 1.45",
    );
    refused(
        &d,
        "GET",
        "/v1.0/containers/json",
        "",
        "client version 1.0 is too old. Minimum supported API version is 1.24",
    );
    assert_eq!(d.http("GET", "/v1.45/_ping").0, 200);
}

#[test]
fn abuse_bad_references_are_refused_where_they_enter() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let bad = "invalid reference format";
    refused(
        &d,
        "POST",
        "/images/localhost:5000/busybox/tag?repo=ok:../bad&tag=latest",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/images/localhost:5000/busybox/tag?repo=ok&tag=../bad",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/images/create?fromImage=ok:../bad&tag=latest",
        "",
        bad,
    );
    refused(
        &d,
        "POST",
        "/containers/create",
        r#"{"Image":"ok:../bad:latest"}"#,
        bad,
    );
    refused(&d, "GET", "/images/ok:..%2Fbad:latest/json", "", bad);
    refused(&d, "POST", "/build?t=ok:../bad:latest", "", bad);
    let id = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    refused(
        &d,
        "POST",
        &format!("/commit?container={id}&repo=ok:../bad&tag=latest"),
        "{}",
        bad,
    );
    // Nothing of it was stored.
    let (code, list) = d.http("GET", "/images/json");
    assert_eq!(code, 200);
    assert!(!list.contains("bad"), "{list}");
    // A name that is merely unknown is still 404.
    assert_eq!(d.http("GET", "/images/no-such-image:1/json").0, 404);
    d.finish();
}

/// `docker images` with filters through the docker CLI: IDs, one a line.
fn image_ids(d: &Daemon, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["images", "-q", "--no-trunc"];
    for f in filters {
        args.extend(["-f", f]);
    }
    let mut ids: Vec<String> = d.ok(&args).lines().map(String::from).collect();
    ids.dedup();
    ids
}

#[test]
fn abuse_image_list_filters_as_dockerd() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let base = d
        .ok(&["image", "inspect", "-f", "{{.Id}}", IMAGE])
        .trim()
        .to_string();
    let c1 = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    let one = d
        .ok(&["commit", "-c", "LABEL team=a", &c1, "abuse/one:1"])
        .trim()
        .to_string();
    d.ok(&["tag", "abuse/one:1", "abuse/other:x"]);
    let c2 = d.ok(&["create", IMAGE, "sh"]).trim().to_string();
    let dangling = d.ok(&["commit", &c2]).trim().to_string();
    let all = image_ids(&d, &[]);
    assert_eq!(all.len(), 3, "{all:?}");

    assert_eq!(image_ids(&d, &["dangling=true"]), [dangling.as_str()]);
    let named = image_ids(&d, &["dangling=false"]);
    assert!(named.contains(&base) && named.contains(&one) && named.len() == 2);
    assert_eq!(image_ids(&d, &["label=team"]), [one.as_str()]);
    assert_eq!(image_ids(&d, &["label=team=a"]), [one.as_str()]);
    assert!(image_ids(&d, &["label=team=b"]).is_empty());
    assert!(image_ids(&d, &["label=team", "label=other"]).is_empty());
    assert_eq!(image_ids(&d, &["reference=*/busybox"]), [base.as_str()]);
    assert_eq!(image_ids(&d, &["reference=abuse/*:1"]), [one.as_str()]);
    assert!(image_ids(&d, &["reference=busybox"]).is_empty());
    assert_eq!(image_ids(&d, &["before=abuse/one:1"]), [base.as_str()]);
    let since = image_ids(&d, &["since=abuse/one:1"]);
    assert_eq!(since, [dangling.as_str()]);
    assert_eq!(
        image_ids(&d, &["until=2024-01-01T00:00:00Z"]),
        [base.as_str()]
    );
    // A reference filter lists only the names it matched.
    let (code, body) = d.http(
        "GET",
        "/images/json?filters=%7B%22reference%22%3A%5B%22abuse%2Fother%22%5D%7D",
    );
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list[0]["RepoTags"], serde_json::json!(["abuse/other:x"]));
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Refused, not ignored.
    refused(
        &d,
        "GET",
        "/images/json?filters=%7B%22nosuch%22%3A%5B%22x%22%5D%7D",
        "",
        "invalid filter 'nosuch'",
    );
    refused(
        &d,
        "GET",
        "/images/json?filters=%7B%22dangling%22%3A%5B%22maybe%22%5D%7D",
        "",
        "invalid filter 'dangling=maybe'",
    );
    let (code, _) = d.http(
        "GET",
        "/images/json?filters=%7B%22before%22%3A%5B%22no-such%3A1%22%5D%7D",
    );
    assert_eq!(code, 404);
    // The usual clean-up removes the dangling image and nothing else.
    d.ok(&["rm", &c1, &c2]);
    d.ok(&["rmi", &dangling]);
    let left = image_ids(&d, &[]);
    assert!(
        left.contains(&base) && left.contains(&one) && left.len() == 2,
        "{left:?}"
    );
    d.finish();
}

#[test]
fn abuse_host_config_is_checked_at_create_and_update() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let ncpu = std::thread::available_parallelism().unwrap().get();
    let cases: &[(&str, String)] = &[
        (
            r#""Memory":-1"#,
            "Minimum memory limit allowed is 6MB".into(),
        ),
        (
            r#""Memory":-5"#,
            "Minimum memory limit allowed is 6MB".into(),
        ),
        (
            r#""Memory":1"#,
            "Minimum memory limit allowed is 6MB".into(),
        ),
        (
            r#""NanoCpus":-1"#,
            format!(
                "Range of CPUs is from 0.01 to {ncpu}.00, as there are only {ncpu} CPUs available"
            ),
        ),
        (
            r#""NanoCpus":1000000000000"#,
            format!("as there are only {ncpu} CPUs available"),
        ),
        (
            r#""NanoCpus":500000000,"CpuPeriod":100000"#,
            "Conflicting options: Nano CPUs and CPU Period cannot both be set".into(),
        ),
        (
            r#""OomScoreAdj":5000"#,
            "Invalid value 5000, range for oom score adj is [-1000, 1000]".into(),
        ),
        (
            r#""MemorySwappiness":500"#,
            "Invalid value: 500, valid memory swappiness range is 0-100".into(),
        ),
        (
            r#""CpuPeriod":1"#,
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        ),
        (
            r#""CpuQuota":1"#,
            "CPU cfs quota can not be less than 1ms (i.e. 1000)".into(),
        ),
        (
            r#""CpusetCpus":"0-99999""#,
            "Requested CPUs are not available - requested 0-99999, available: ".into(),
        ),
        (
            r#""CpusetMems":"0-99999""#,
            "Requested memory nodes are not available - requested 0-99999, available: ".into(),
        ),
        (r#""ShmSize":-1"#, "SHM size can not be less than 0".into()),
    ];
    for (hc, msg) in cases {
        let body = format!(r#"{{"Image":"{IMAGE}","Cmd":["true"],"HostConfig":{{{hc}}}}}"#);
        refused(&d, "POST", "/containers/create", &body, msg);
    }
    assert!(
        d.ok(&["ps", "-aq"]).trim().is_empty(),
        "a refused create left a container"
    );

    // In range: applied and shown, as dockerd does.
    let out = d.ok(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "500",
        IMAGE,
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert_eq!(out.trim(), "500");
    // Positive only: lowering a score needs CAP_SYS_RESOURCE, which some
    // hosts (this VM) withhold even from root.
    let id = d
        .ok(&[
            "create",
            "--oom-score-adj",
            "300",
            "--pids-limit",
            "-5",
            IMAGE,
            "true",
        ])
        .trim()
        .to_string();
    let shown = d.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.OomScoreAdj}} {{.HostConfig.PidsLimit}}",
        &id,
    ]);
    assert_eq!(shown.trim(), "300 <nil>", "negative PidsLimit is unlimited");
    let plain = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    let shown = d.ok(&["inspect", "-f", "{{.HostConfig.OomScoreAdj}}", &plain]);
    assert_eq!(shown.trim(), "0");

    // update checks its own values.
    refused(
        &d,
        "POST",
        &format!("/containers/{id}/update"),
        r#"{"Memory":1}"#,
        "Minimum memory limit allowed is 6MB",
    );
    refused(
        &d,
        "POST",
        &format!("/containers/{id}/update"),
        r#"{"CpusetCpus":"0-99999"}"#,
        "Requested CPUs are not available - requested 0-99999",
    );
    refused(
        &d,
        "POST",
        &format!("/containers/{id}/update"),
        r#"{"CpuPeriod":1}"#,
        "CPU cfs period can not be less than 1ms",
    );
    d.finish();
}

#[test]
fn abuse_start_attach_reruns_an_exited_container() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let name = "again";
    let first = d.docker(&["run", "--name", name, IMAGE, "sh", "-c", "echo ran; exit 3"]);
    assert_eq!(
        (first.code, first.stdout.trim()),
        (3, "ran"),
        "{}",
        first.stderr
    );
    // dockerd reruns it and `start -a` shows this run's output and status.
    for _ in 0..2 {
        let again = d.docker(&["start", "-a", name]);
        assert_eq!(
            (again.code, again.stdout.trim()),
            (3, "ran"),
            "{}",
            again.stderr
        );
    }
    let logs = d.ok(&["logs", name]);
    assert_eq!(logs.lines().filter(|l| *l == "ran").count(), 3, "{logs}");
    // Without -a as well.
    assert_eq!(d.ok(&["start", name]).trim(), name);
    let code = d.ok(&["wait", name]);
    assert_eq!(code.trim(), "3");
    d.finish();
}

#[test]
fn abuse_unknown_socket_group_fails_before_anything_is_made() {
    require_root();
    let tmp = tempfile::Builder::new()
        .prefix("berthd-badgroup-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let exec = tempfile::Builder::new()
        .prefix("bdg")
        .tempdir_in("/run")
        .unwrap();
    let root = tmp.path().join("root");
    let sock = exec.path().join("berth.sock");
    let out = std::process::Command::new(BERTHD.as_str())
        .arg("--root")
        .arg(&root)
        .arg("--exec-root")
        .arg(exec.path().join("state"))
        .arg("-H")
        .arg(format!("unix://{}", sock.display()))
        .args(["-G", "nosuchgroup-berth"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "berthd started: {err}");
    assert!(err.contains("no group nosuchgroup-berth"), "{err}");
    // Nothing of a daemon was made: no store (so no bridge or nftables
    // table, which are recorded under it), no state, no socket.
    assert!(!root.exists(), "store made");
    assert!(!exec.path().join("state").exists(), "exec root made");
    assert!(!sock.exists(), "socket made");
}

/// Runs a shell command (fixtures made with the host's GNU tar).
#[track_caller]
fn sh(script: &str) {
    let out = std::process::Command::new("sh")
        .args(["-ec", script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The image's top layer dir must hold `p` as a FIFO.
#[track_caller]
fn has_fifo(d: &Daemon, image: &str) {
    use std::os::unix::fs::FileTypeExt;
    let lower = d.ok(&[
        "image",
        "inspect",
        "-f",
        "{{.GraphDriver.Data.LowerDir}}",
        image,
    ]);
    let top = lower.trim().split(':').next().unwrap().to_string();
    let m = std::fs::symlink_metadata(std::path::Path::new(&top).join("p")).unwrap();
    assert!(m.file_type().is_fifo(), "{top}/p: {m:?}");
}

#[test]
fn abuse_gnu_tar_fifos_with_blank_device_fields_import_and_load() {
    let mut d = Daemon::start();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    // GNU tar writes a FIFO's device major/minor as NULs.
    sh(&format!(
        "cd {t} && mkdir fs && mkfifo fs/p && echo hi > fs/f && \
         tar --format=gnu -C fs -cf layer.tar p f"
    ));
    let out = d.docker(&["import", &format!("{t}/layer.tar"), "abuse/fifo:imported"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    has_fifo(&d, "abuse/fifo:imported");

    // The same layer in a `docker save` archive, itself written by GNU tar.
    sh(&format!(
        r#"cd {t} && mkdir save && diff=$(sha256sum layer.tar | cut -d' ' -f1) && \
        mkdir save/$diff && cp layer.tar save/$diff/layer.tar && \
        printf '{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":["sha256:%s"]}}}}' $diff > cfg && \
        cfg=$(sha256sum cfg | cut -d' ' -f1) && mv cfg save/$cfg.json && \
        printf '[{{"Config":"%s.json","RepoTags":["abuse/fifo:loaded"],"Layers":["%s/layer.tar"]}}]' $cfg $diff > save/manifest.json && \
        tar --format=gnu -C save -cf image.tar ."#
    ));
    let out = d.docker(&["load", "-i", &format!("{t}/image.tar")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    has_fifo(&d, "abuse/fifo:loaded");
    d.finish();
}

#[test]
fn abuse_working_dir_through_an_image_symlink() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let c = d
        .ok(&[
            "create",
            IMAGE,
            "sh",
            "-c",
            "ln -s /srv/work /work && mkdir -p /srv/w2 && ln -s srv/w2 /w2 && ln -s ../../../../../etc /up",
        ])
        .trim()
        .to_string();
    d.ok(&["start", "-a", &c]);
    d.ok(&["commit", "-c", "WORKDIR /work", &c, "abuse/links:1"]);
    d.ok(&["rm", &c]);
    // The image's own WorkingDir is a link to a missing dir: made, as docker.
    let run = |args: &[&str]| {
        let mut a = vec!["run", "--rm"];
        a.extend_from_slice(args);
        a.extend(["abuse/links:1", "pwd", "-P"]);
        d.ok(&a).trim().to_string()
    };
    assert_eq!(run(&[]), "/srv/work");
    assert_eq!(run(&["-w", "/w2"]), "/srv/w2");
    assert_eq!(run(&["-w", "/work/sub/dir"]), "/srv/work/sub/dir");
    // `..` in a link stops at the container's root.
    assert_eq!(run(&["-w", "/up/made-by-w"]), "/etc/made-by-w");
    assert!(!std::path::Path::new("/etc/made-by-w").exists());
    d.finish();
}

#[test]
fn abuse_etc_files_that_are_links_still_get_the_containers_files() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    // The image's /etc files are links (made outside any container, where
    // they are mount points): exported, changed and imported again.
    let c = d.ok(&["create", IMAGE, "true"]).trim().to_string();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().display().to_string();
    d.ok(&["export", "-o", &format!("{t}/fs.tar"), &c]);
    d.ok(&["rm", &c]);
    sh(&format!(
        "cd {t} && mkdir fs && tar -C fs -xf fs.tar && \
         ln -sf /data/hosts fs/etc/hosts && ln -sf ../data/resolv.conf fs/etc/resolv.conf && \
         ln -sf ../../../../../../hostname-outside fs/etc/hostname && tar -C fs -cf links.tar ."
    ));
    d.ok(&["import", &format!("{t}/links.tar"), "abuse/etclinks:1"]);
    for extra in [&[][..], &["--read-only"][..]] {
        let mut args = vec![
            "run",
            "--rm",
            "--hostname",
            "linked",
            "--add-host",
            "extra.example:10.1.2.3",
            "--dns",
            "10.9.8.7",
        ];
        args.extend_from_slice(extra);
        args.extend([
            "abuse/etclinks:1",
            "sh",
            "-c",
            "cat /etc/hosts /etc/resolv.conf /etc/hostname",
        ]);
        let out = d.ok(&args);
        assert!(out.contains("10.1.2.3\textra.example"), "{extra:?}: {out}");
        assert!(out.contains("nameserver 10.9.8.7"), "{extra:?}: {out}");
        assert!(out.lines().any(|l| l == "linked"), "{extra:?}: {out}");
    }
    // A link pointing up and out lands inside the rootfs, never on the host.
    assert!(!std::path::Path::new("/hostname-outside").exists());
    d.finish();
}
