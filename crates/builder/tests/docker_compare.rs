//! Berth's build vs `docker build` of the same context on this machine:
//! the final filesystems (files, types, modes, owners, link targets,
//! contents) and the config fields must match.
//!
//! Opt-in: runs only with `BERTH_DOCKER_COMPARE=1` (CI may have no dockerd).
//! When set, it starts the shared dockerd with
//! `/work/shared/fixtures/dockerd.sh start` (busybox:latest loaded) and fails
//! loudly if that does not work. Needs root, like the other build tests.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use berth_builder::build::{self, BuildOptions, DockerfileSource};
use berth_image::{ImageRecord, ImageStore};

const DOCKERD: &str = "/work/shared/fixtures/dockerd.sh";
const DOCKER_CLI: &str = "/usr/bin/docker";
const FIXTURE: &str = "/var/tmp/berth-fixtures/busybox";

const DOCKERFILE: &str = r#"FROM busybox:latest
ENV APP=/app GREETING="hello world"
WORKDIR $APP
RUN mkdir -p data/sub && echo one > data/one && echo two > data/sub/two && ln -s one data/link \
    && touch gone && chmod 600 data/one && chown 1:2 data/sub/two && rm -f /etc/motd
RUN rm gone && rm -rf data/sub && mkdir data/sub && echo new > data/sub/new
COPY --chown=5:6 --chmod=640 a.txt ./
COPY tree/ /tree/
COPY lnk /app/
USER 1000:1000
EXPOSE 8080/tcp 53/udp
VOLUME /var/data
LABEL a=b c="d e"
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
"#;

#[derive(Debug, PartialEq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    /// File content or link target.
    data: Vec<u8>,
}

fn snapshot(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let m = fs::symlink_metadata(&p).unwrap();
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        let ft = m.file_type();
        let (kind, data) = if ft.is_symlink() {
            (
                "link",
                fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_dir() {
            ("dir", Vec::new())
        } else if ft.is_file() {
            ("file", fs::read(&p).unwrap())
        } else {
            ("other", Vec::new())
        };
        out.insert(
            rel,
            Node {
                kind,
                mode: m.mode() & 0o7777,
                uid: m.uid(),
                gid: m.gid(),
                data,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

struct Mounted<'a>(&'a ImageStore, PathBuf);
impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = berth_image::rootfs::unmount_image(self.0, &self.1);
    }
}

fn mount<'a>(store: &'a ImageStore, rec: &ImageRecord, dir: PathBuf) -> Mounted<'a> {
    fs::create_dir_all(&dir).unwrap();
    berth_image::rootfs::mount_image(store, rec, &dir).unwrap();
    Mounted(store, dir)
}

/// Removes the docker image on drop.
struct DockerImage(String);
impl Drop for DockerImage {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

#[test]
fn same_result_as_docker_build() {
    if std::env::var("BERTH_DOCKER_COMPARE").as_deref() != Ok("1") {
        eprintln!("skipped: set BERTH_DOCKER_COMPARE=1 to compare with docker build");
        return;
    }
    let st = Command::new(DOCKERD).arg("start").status();
    assert!(
        matches!(st, Ok(s) if s.success()),
        "BERTH_DOCKER_COMPARE=1 but `{DOCKERD} start` failed ({st:?}): no dockerd to compare with"
    );
    let dir = tempfile::Builder::new()
        .prefix("berth-docker-cmp")
        .tempdir()
        .unwrap();
    let ctx = dir.path().join("ctx");
    fs::create_dir_all(ctx.join("tree/deep")).unwrap();
    fs::write(ctx.join("a.txt"), "A\n").unwrap();
    fs::write(ctx.join("tree/deep/f"), "F\n").unwrap();
    fs::write(ctx.join("tree/x.sh"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(
        ctx.join("tree/x.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    symlink("a.txt", ctx.join("lnk")).unwrap();
    fs::write(ctx.join("Dockerfile"), DOCKERFILE).unwrap();

    // docker build + docker save, loaded into a Berth store.
    let tag = format!("berth-compare:{}", std::process::id());
    // Debian's docker 20.10 CLI reaches BuildKit (needed for --chmod); the
    // newer CLI without buildx only has the legacy builder. No network:
    // the shared dockerd has no bridge (and Berth's RUN has none either).
    let out = Command::new(DOCKER_CLI)
        .env("DOCKER_BUILDKIT", "1")
        .args(["build", "-q", "--network", "none", "-t", &tag])
        .arg(&ctx)
        .output()
        .unwrap();
    let _img = DockerImage(tag.clone());
    assert!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = dir.path().join("docker.tar");
    let st = Command::new("docker")
        .args(["save", "-o"])
        .arg(&saved)
        .arg(&tag)
        .status()
        .unwrap();
    assert!(st.success(), "docker save failed");

    let store = Arc::new(ImageStore::open(dir.path().join("store")).unwrap());
    let bb = dir.path().join("busybox.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&bb).unwrap());
        b.append_dir_all(".", FIXTURE).unwrap();
        b.finish().unwrap();
    }
    let loaded = store.load_archive(&bb).unwrap();
    store
        .tag(&loaded[0].id.to_string(), "busybox:latest")
        .unwrap();
    let docker_rec = store
        .resolve(&store.load_archive(&saved).unwrap()[0].id.to_string())
        .unwrap();

    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Path("Dockerfile".into());
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let r = build::build(&store, &o, buf.clone()).unwrap_or_else(|e| {
        panic!(
            "berth build: {e}\n{}",
            String::from_utf8_lossy(&buf.lock().unwrap())
        )
    });
    let berth_rec = store.resolve(&r.image_id.to_string()).unwrap();

    let a = mount(&store, &berth_rec, dir.path().join("berth"));
    let b = mount(&store, &docker_rec, dir.path().join("docker"));
    let (sa, sb) = (snapshot(&a.1), snapshot(&b.1));
    drop((a, b));
    let mut diffs = Vec::new();
    for k in sa
        .keys()
        .chain(sb.keys())
        .collect::<std::collections::BTreeSet<_>>()
    {
        match (sa.get(k), sb.get(k)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => diffs.push(format!("{k}: berth {x:?} / docker {y:?}")),
        }
    }
    assert!(
        diffs.is_empty(),
        "filesystems differ:\n{}",
        diffs.join("\n")
    );

    let cfg = |rec: &ImageRecord| -> serde_json::Value {
        let mut b = Vec::new();
        store
            .content
            .open_blob(&rec.id)
            .unwrap()
            .read_to_end(&mut b)
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&b).unwrap()["config"].clone()
    };
    let (ca, cb) = (cfg(&berth_rec), cfg(&docker_rec));
    for f in [
        "Env",
        "Cmd",
        "Entrypoint",
        "WorkingDir",
        "User",
        "ExposedPorts",
        "Volumes",
        "Labels",
        "StopSignal",
    ] {
        assert_eq!(
            ca[f], cb[f],
            "config field {f}: berth {} / docker {}",
            ca[f], cb[f]
        );
    }
}
