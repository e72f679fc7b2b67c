//! Root-only: volumes and container mounts through the real docker CLI
//! against a private berthd.

mod common;

use common::*;

fn inspect(d: &Daemon, fmt: &str, what: &str) -> String {
    d.ok(&["inspect", "--format", fmt, what]).trim().to_string()
}

#[test]
fn volume_create_ls_inspect_rm_prune() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let named = unique("data");
    d.ok(&["volume", "create", "--label", "env=test", &named]);
    // Same name again answers with the existing volume.
    assert_eq!(d.ok(&["volume", "create", &named]).trim(), named);
    let anon = d.ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    assert!(anon.chars().all(|c| c.is_ascii_hexdigit()));

    let v: serde_json::Value = serde_json::from_str(&d.ok(&["volume", "inspect", &named])).unwrap();
    let v = &v[0];
    let mp = d.root.path().join("volumes").join(&named).join("_data");
    assert_eq!(v["Mountpoint"], mp.display().to_string());
    assert!(mp.is_dir());
    assert_eq!(
        (v["Driver"].as_str(), v["Scope"].as_str()),
        (Some("local"), Some("local"))
    );
    assert_eq!(v["Labels"]["env"], "test");
    assert!(v["CreatedAt"].as_str().unwrap().starts_with("20"), "{v}");

    let o = d.docker(&["volume", "create", "-d", "nfsplugin", "x1"]);
    assert!(
        o.code != 0 && o.stderr.contains("nfsplugin"),
        "{}",
        o.stderr
    );
    let o = d.docker(&["volume", "create", "--opt", "device=/x", "x2"]);
    assert!(o.code != 0 && o.stderr.contains("type"), "{}", o.stderr);
    let o = d.docker(&["volume", "inspect", "nosuchvol"]);
    assert!(
        o.code != 0 && o.stderr.contains("no such volume"),
        "{}",
        o.stderr
    );

    let ls = |f: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        args.extend_from_slice(f);
        let mut v: Vec<String> = d.ok(&args).lines().map(String::from).collect();
        v.sort();
        v
    };
    let mut both = vec![named.clone(), anon.clone()];
    both.sort();
    assert_eq!(ls(&[]), both);
    assert_eq!(ls(&["--filter", "label=env=test"]), [named.as_str()]);
    assert_eq!(
        ls(&["--filter", &format!("name={}", &anon[..10])]),
        [anon.as_str()]
    );

    // A stopped container still holds its volumes.
    let c = unique("user");
    d.ok(&[
        "run",
        "--name",
        &c,
        "-v",
        &format!("{named}:/data"),
        "-v",
        "/anon",
        IMAGE,
        "true",
    ]);
    let o = d.docker(&["volume", "rm", &named]);
    assert!(
        o.code != 0 && o.stderr.contains("volume is in use"),
        "{}",
        o.stderr
    );
    let (status, _) = d.http("DELETE", &format!("/v1.45/volumes/{named}"));
    assert_eq!(status, 409);
    assert_eq!(ls(&["--filter", "dangling=true"]), [anon.as_str()]);
    let anon2 = inspect(
        &d,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        &c,
    );
    assert_eq!(anon2.len(), 64);
    // rm -v: the anonymous volume goes, the named one stays.
    d.ok(&["rm", "-v", &c]);
    let mut all = vec![named.clone(), anon.clone()];
    all.sort();
    assert_eq!(ls(&[]), all);

    // Prune: anonymous only by default, named too with --all.
    let out = d.ok(&["volume", "prune", "-f"]);
    assert!(out.contains(&anon) && !out.contains(&named), "{out}");
    assert_eq!(ls(&[]), [named.as_str()]);
    let out = d.ok(&[
        "volume",
        "prune",
        "-f",
        "--all",
        "--filter",
        "label=env=test",
    ]);
    assert!(out.contains(&named), "{out}");
    assert!(ls(&[]).is_empty());
    d.ok(&["volume", "rm", "-f", "nosuchvol"]);
    // `--until` has second granularity: let the last second pass.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let ev = d.ok(&[
        "events",
        "--since",
        "0",
        "--until",
        "0s",
        "--filter",
        "type=volume",
        "--format",
        "{{.Action}} {{.Actor.ID}}",
    ]);
    for want in [
        format!("create {named}"),
        format!("destroy {named}"),
        format!("create {anon}"),
        format!("destroy {anon}"),
    ] {
        assert!(ev.lines().any(|l| l == want), "{want} not in {ev}");
    }
    d.finish();
}

#[test]
fn mounts_seed_binds_tmpfs_and_rm() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let vol = unique("etc");
    // Seeded from the image at first use: busybox's /etc.
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/etc"),
        IMAGE,
        "sh",
        "-c",
        "grep -c root /etc/passwd; echo kept > /etc/mine",
    ]);
    assert_eq!(o.trim(), "1", "{o}");
    let data = d.root.path().join("volumes").join(&vol).join("_data");
    assert!(data.join("passwd").is_file() && data.join("group").is_file());
    // --rm kept the named volume, with what the container wrote.
    let o = d.ok(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=volume,src={vol},dst=/v,readonly"),
        IMAGE,
        "sh",
        "-c",
        "cat /v/mine; touch /v/x 2>/dev/null || echo ro",
    ]);
    assert_eq!(o, "kept\nro\n");
    // nocopy: an empty new volume stays empty.
    let empty = unique("empty");
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{empty}:/etc:nocopy"),
        IMAGE,
        "ls",
        "/etc",
    ]);
    assert_eq!(o.trim(), "", "{o}");
    // Seeding keeps owners and modes (busybox /tmp is 1777).
    let t = unique("tmpvol");
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{t}:/tmp"),
        IMAGE,
        "stat",
        "-c",
        "%a %u",
        "/tmp",
    ]);
    assert_eq!(o.trim(), "1777 0");

    // -v creates a missing host dir; --mount refuses it.
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    let missing = host.path().join("made/by/v");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/m", missing.display()),
        IMAGE,
        "touch",
        "/m/f",
    ]);
    assert!(missing.join("f").is_file());
    let other = host.path().join("absent");
    let o = d.docker(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/m", other.display()),
        IMAGE,
        "true",
    ]);
    assert!(
        o.code != 0 && o.stderr.contains("bind source path does not exist"),
        "{}",
        o.stderr
    );
    let o = d.docker(&["run", "--rm", "-v", "/a:/x", "-v", "/b:/x", IMAGE, "true"]);
    assert!(
        o.code != 0 && o.stderr.contains("Duplicate mount point"),
        "{}",
        o.stderr
    );

    // tmpfs by --mount (size, mode) and a tmpfs-typed local volume.
    let o = d.ok(&[
        "run",
        "--rm",
        "--mount",
        "type=tmpfs,dst=/t,tmpfs-size=1048576,tmpfs-mode=1770",
        IMAGE,
        "sh",
        "-c",
        "grep ' /t ' /proc/mounts; stat -c %a /t",
    ]);
    assert!(
        o.contains("tmpfs /t tmpfs") && o.contains("size=1024k") && o.ends_with("1770\n"),
        "{o}"
    );
    let tv = unique("tmpfsvol");
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=tmpfs",
        "--opt",
        "device=tmpfs",
        "--opt",
        "o=size=2m",
        &tv,
    ]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{tv}:/s"),
        IMAGE,
        "sh",
        "-c",
        "echo shared > /s/f",
    ]);
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{tv}:/s"),
        IMAGE,
        "sh",
        "-c",
        "cat /s/f; grep ' /s ' /proc/mounts",
    ]);
    assert!(
        o.starts_with("shared\n") && o.contains("tmpfs /s tmpfs") && o.contains("size=2048k"),
        "{o}"
    );

    // A local volume that binds a host dir (type=none, o=bind).
    let bv = unique("bindvol");
    let bdir = host.path().join("bound");
    std::fs::create_dir(&bdir).unwrap();
    d.ok(&[
        "volume",
        "create",
        "--opt",
        "type=none",
        "--opt",
        &format!("device={}", bdir.display()),
        "--opt",
        "o=bind",
        &bv,
    ]);
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{bv}:/b"),
        IMAGE,
        "sh",
        "-c",
        "echo via-volume > /b/f",
    ]);
    assert_eq!(
        std::fs::read_to_string(bdir.join("f")).unwrap(),
        "via-volume\n"
    );
    d.ok(&["volume", "rm", &bv]);
    assert!(
        bdir.join("f").exists(),
        "removing the volume must not touch the bound dir"
    );
    let o = d.docker(&["run", "--rm", "-v", "a$b:/x", IMAGE, "true"]);
    assert!(
        o.code != 0 && o.stderr.contains("\"a$b\" includes invalid characters"),
        "{}",
        o.stderr
    );

    // Inspect's Mounts, in Docker's shape.
    let c = unique("mounts");
    d.ok(&[
        "create",
        "--name",
        &c,
        "-v",
        &format!("{vol}:/data:ro"),
        "-v",
        &format!("{}:/h", host.path().display()),
        IMAGE,
        "true",
    ]);
    let m: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .Mounts}}", &c)).unwrap();
    let by = |dst: &str| {
        m.as_array()
            .unwrap()
            .iter()
            .find(|x| x["Destination"] == dst)
            .unwrap()
            .clone()
    };
    let v = by("/data");
    assert_eq!(
        (v["Type"].as_str(), v["Name"].as_str(), v["Driver"].as_str()),
        (Some("volume"), Some(vol.as_str()), Some("local"))
    );
    assert_eq!(
        (v["RW"].as_bool(), v["Mode"].as_str()),
        (Some(false), Some("ro"))
    );
    assert_eq!(v["Source"], data.display().to_string());
    let b = by("/h");
    assert_eq!(
        (
            b["Type"].as_str(),
            b["RW"].as_bool(),
            b["Propagation"].as_str()
        ),
        (Some("bind"), Some(true), Some("rprivate"))
    );
    assert_eq!(b["Source"], host.path().display().to_string());
    // --volumes-from: the same volumes and binds, read-only on request.
    let from = unique("from");
    d.ok(&[
        "run",
        "--name",
        &from,
        "-v",
        "/anon",
        "-v",
        &format!("{vol}:/data"),
        IMAGE,
        "sh",
        "-c",
        "echo a > /anon/f",
    ]);
    let o = d.ok(&[
        "run",
        "--rm",
        "--volumes-from",
        &format!("{from}:ro"),
        IMAGE,
        "sh",
        "-c",
        "cat /anon/f /data/mine; touch /data/z 2>/dev/null || echo ro",
    ]);
    assert_eq!(o, "a\nkept\nro\n");
    let o = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "nosuchcontainer",
        IMAGE,
        "true",
    ]);
    assert!(
        o.code != 0 && o.stderr.contains("No such container"),
        "{}",
        o.stderr
    );
    let anon_of_from = inspect(
        &d,
        "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}",
        &from,
    );
    // The --rm container did not take the shared anonymous volume with it.
    d.ok(&["volume", "inspect", &anon_of_from]);
    d.ok(&["rm", "-v", &from]);
    let o = d.docker(&["volume", "inspect", &anon_of_from]);
    assert_ne!(o.code, 0);
    // ps: the volume filter and the Mounts column.
    let ps = d.ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("volume={vol}"),
        "--format",
        "{{.Names}} {{.Mounts}}",
    ]);
    assert_eq!(ps.lines().count(), 1, "{ps}");
    assert!(
        ps.starts_with(&format!("{c} ")) && ps.contains(&vol),
        "{ps}"
    );
    d.ok(&["rm", "-v", &c]);
    // Named volumes outlive every container.
    d.ok(&["volume", "inspect", &vol]);
    for v in [&vol, &empty, &t, &tv] {
        d.ok(&["volume", "rm", v]);
    }
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
    d.finish();
}

#[test]
fn image_volumes_become_anonymous_volumes() {
    let mut d = Daemon::start();
    let image = busybox_with_volumes(&unique("berth-test-imgvol"), &["/etc", "/cache"]);
    d.ok(&["pull", "-q", &image]);
    let c = unique("imgvol");
    // /etc comes seeded from the image; /cache is covered by a bind, so
    // it gets no volume.
    let host = tempfile::tempdir_in("/var/tmp").unwrap();
    let bind = format!("{}:/cache", host.path().display());
    let o = d.ok(&[
        "run",
        "--name",
        &c,
        "-v",
        &bind,
        &image,
        "sh",
        "-c",
        "grep -c ^root: /etc/passwd; touch /cache/x",
    ]);
    assert_eq!(o.trim(), "1");
    assert!(host.path().join("x").exists());
    let m: serde_json::Value = serde_json::from_str(&inspect(&d, "{{json .Mounts}}", &c)).unwrap();
    let m = m.as_array().unwrap();
    assert_eq!(m.len(), 2, "{m:?}");
    let etc = m.iter().find(|x| x["Destination"] == "/etc").unwrap();
    assert_eq!(etc["Type"], "volume");
    let name = etc["Name"].as_str().unwrap().to_string();
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), name);
    // `rm` without -v leaves it (dangling now); prune takes it.
    d.ok(&["rm", &c]);
    assert_eq!(
        d.ok(&["volume", "ls", "-q", "--filter", "dangling=true"])
            .trim(),
        name
    );
    // --rm removes the anonymous volumes it made.
    d.ok(&["run", "--rm", &image, "true"]);
    assert_eq!(d.ok(&["volume", "ls", "-q"]).trim(), name);
    d.ok(&["volume", "prune", "-f"]);
    assert!(d.ok(&["volume", "ls", "-q"]).trim().is_empty());
    d.finish();
}

/// A volume a running container uses is never seeded: that container could
/// plant links in it while the daemon copies (`foo -> /etc/cron.d/x`). Once
/// nothing running uses it, the empty volume is seeded as before.
#[test]
fn volumes_in_use_by_a_running_container_are_not_seeded() {
    let mut d = Daemon::start();
    d.ok(&["pull", "-q", IMAGE]);
    let vol = unique("shared");
    let holder = unique("holder");
    // busybox's /mnt is empty: the holder leaves the volume empty.
    d.ok(&[
        "run",
        "-d",
        "--name",
        &holder,
        "-v",
        &format!("{vol}:/mnt"),
        IMAGE,
        "sleep",
        "1000",
    ]);
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/etc"),
        IMAGE,
        "ls",
        "/etc",
    ]);
    assert_eq!(o.trim(), "", "seeded while {holder} runs: {o}");
    d.ok(&["rm", "-f", &holder]);
    let o = d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{vol}:/etc"),
        IMAGE,
        "grep",
        "-c",
        "root",
        "/etc/passwd",
    ]);
    assert_eq!(o.trim(), "1", "{o}");
    d.ok(&["volume", "rm", &vol]);
    d.finish();
}
