//! Build integration tests (root, the busybox fixture; see common/).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_builder::build::{self, BuildOptions, DockerfileSource};
use berth_image::ImageRecord;
use common::*;

const MAIN: &str = r#"FROM busybox
ENV GREETING=hello
WORKDIR /work
RUN echo MARKER-RUN-1 && echo "$GREETING" > made.txt && touch doomed && mkdir opq && touch opq/old
RUN echo MARKER-RUN-2 && rm doomed && rm -rf opq && mkdir opq && touch opq/new
COPY --chown=1000:1000 --chmod=640 a.txt /work/a.txt
COPY dir /work/dir/
COPY link /work/
COPY <<EOF /work/here.txt
greeting=$GREETING
EOF
USER 1000
EXPOSE 8080
LABEL org.test=yes
STOPSIGNAL SIGINT
CMD ["sh", "-c", "id"]
"#;

fn main_context(e: &Env) -> PathBuf {
    let ctx = e.context("ctx");
    fs::write(ctx.join("a.txt"), "A\n").unwrap();
    fs::create_dir_all(ctx.join("dir/sub")).unwrap();
    fs::write(ctx.join("dir/sub/b.txt"), "B\n").unwrap();
    fs::set_permissions(ctx.join("dir/sub/b.txt"), fs::Permissions::from_mode(0o755)).unwrap();
    symlink("a.txt", ctx.join("link")).unwrap();
    symlink("b.txt", ctx.join("dir/sub/lb")).unwrap();
    fs::write(ctx.join("ignored.txt"), "x").unwrap();
    fs::write(ctx.join(".dockerignore"), "ignored.txt\n").unwrap();
    ctx
}

#[test]
fn build_config_history_layers_cache() {
    let e = env();
    let ctx = main_context(&e);
    let (r1, out) = e.build(&ctx, MAIN, |o| o.tags = vec!["test/main:1".into()]);
    assert!(
        ran(&out, "MARKER-RUN-1") && ran(&out, "MARKER-RUN-2"),
        "{out}"
    );
    assert!(
        out.contains("naming to docker.io/test/main:1 done"),
        "{out}"
    );
    assert!(out.contains("[2/7] RUN"), "{out}");
    assert_eq!(r1.executed_steps, 6);
    let rec = e.store.resolve("test/main:1").unwrap();
    assert_eq!(rec.id, r1.image_id);
    let cfg = e.config(&rec);
    let c = &cfg["config"];
    assert!(
        c["Env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "GREETING=hello")
    );
    assert_eq!(c["WorkingDir"], "/work");
    assert_eq!(c["User"], "1000");
    assert_eq!(c["Cmd"], serde_json::json!(["sh", "-c", "id"]));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(c["Labels"]["org.test"], "yes");
    assert_eq!(c["StopSignal"], "SIGINT");
    // History: the base's entries, then ours; metadata steps have no layer.
    let hist = cfg["history"].as_array().unwrap();
    let ours: Vec<(String, bool)> = hist[hist.len() - 13..]
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap().to_string(),
                h["empty_layer"] == true,
            )
        })
        .collect();
    let empties: Vec<bool> = ours.iter().map(|o| o.1).collect();
    assert_eq!(
        empties,
        [
            true, true, false, false, false, false, false, false, true, true, true, true, true
        ],
        "{ours:?}"
    );
    assert!(ours[0].0.starts_with("ENV GREETING=hello"), "{ours:?}");
    let non_empty = hist.iter().filter(|h| h["empty_layer"] != true).count();
    assert_eq!(non_empty, rec.layers.len());
    assert_eq!(
        cfg["rootfs"]["diff_ids"].as_array().unwrap().len(),
        rec.layers.len()
    );
    assert_eq!(rec.layers.len(), 1 + 6);
    // The deleting RUN's layer: a file whiteout and an opaque dir.
    let del = layer_entries(&e.store, &rec.layers[2]);
    assert!(del.iter().any(|p| p == "work/.wh.doomed"), "{del:?}");
    assert!(del.iter().any(|p| p == "work/opq/.wh..wh..opq"), "{del:?}");
    assert!(del.iter().any(|p| p == "work/opq/new"), "{del:?}");
    // The final filesystem.
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let root = &m.dir;
    assert_eq!(
        fs::read_to_string(root.join("work/made.txt")).unwrap(),
        "hello\n"
    );
    assert!(!root.join("work/doomed").exists());
    assert!(root.join("work/opq/new").exists());
    assert!(!root.join("work/opq/old").exists());
    let a = fs::metadata(root.join("work/a.txt")).unwrap();
    assert_eq!((a.mode() & 0o7777, a.uid(), a.gid()), (0o640, 1000, 1000));
    let b = fs::metadata(root.join("work/dir/sub/b.txt")).unwrap();
    assert_eq!((b.mode() & 0o7777, b.uid(), b.gid()), (0o755, 0, 0));
    // Links inside a copied dir stay links.
    assert_eq!(
        fs::read_link(root.join("work/dir/sub/lb")).unwrap(),
        Path::new("b.txt")
    );
    // A symlink named as a source is followed (docker does the same).
    assert_eq!(fs::read_to_string(root.join("work/link")).unwrap(), "A\n");
    let link = fs::symlink_metadata(root.join("work/link")).unwrap();
    assert!(!link.file_type().is_symlink());
    assert_eq!(
        fs::read_to_string(root.join("work/here.txt")).unwrap(),
        "greeting=hello\n"
    );
    assert!(!root.join("work/ignored.txt").exists());
    drop(m);

    // Same inputs: everything from the cache, no RUN executed, same image.
    let (r2, out2) = e.build(&ctx, MAIN, |_| {});
    assert_eq!(r2.executed_steps, 0, "{out2}");
    assert_eq!(r2.cached_steps, 6);
    assert!(
        !ran(&out2, "MARKER-RUN-1") && !ran(&out2, "MARKER-RUN-2"),
        "{out2}"
    );
    assert!(out2.contains("CACHED"));
    assert_eq!(r2.image_id, r1.image_id);

    // Touching a copied file's mtime is no change.
    let f = fs::File::options()
        .append(true)
        .open(ctx.join("a.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
        .unwrap();
    drop(f);
    let (r3, _) = e.build(&ctx, MAIN, |_| {});
    assert_eq!(r3.executed_steps, 0);

    // Changing its content re-runs that COPY and what follows, not the RUNs.
    fs::write(ctx.join("a.txt"), "changed\n").unwrap();
    let (r4, out4) = e.build(&ctx, MAIN, |_| {});
    assert!(
        !ran(&out4, "MARKER-RUN-1") && !ran(&out4, "MARKER-RUN-2"),
        "{out4}"
    );
    assert_eq!(r4.cached_steps, 2, "{out4}");
    assert_eq!(r4.executed_steps, 4, "{out4}");
    assert_ne!(r4.image_id, r1.image_id);

    // --no-cache runs everything again.
    let (r5, out5) = e.build(&ctx, MAIN, |o| o.no_cache = true);
    assert_eq!(r5.executed_steps, 6);
    assert!(ran(&out5, "MARKER-RUN-1"));
}

#[test]
fn multistage_target_skips_unneeded_stages() {
    let e = env();
    let ctx = e.context("ms");
    let df = r#"FROM busybox AS unneeded
RUN echo SHOULD-NOT-RUN && exit 1
FROM busybox AS builder
ARG WHAT=default
RUN echo "built $WHAT" > /out.txt
FROM scratch AS final
COPY --from=builder /out.txt /result/out.txt
COPY --from=busybox /bin/busybox /bin/
FROM final AS after
RUN false
"#;
    let mut args = BTreeMap::new();
    args.insert("WHAT".to_string(), "arg".to_string());
    let (r, out) = e.build(&ctx, df, |o| {
        o.target = Some("final".into());
        o.build_args = args;
    });
    assert!(
        !out.contains("SHOULD-NOT-RUN") && !out.contains("unneeded"),
        "{out}"
    );
    assert!(!out.contains("[after"), "{out}");
    assert!(out.contains("[builder 2/2] RUN"), "{out}");
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    assert_eq!(rec.layers.len(), 2);
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(
        fs::read_to_string(m.dir.join("result/out.txt")).unwrap(),
        "built arg\n"
    );
    assert!(m.dir.join("bin/busybox").is_file());
    drop(m);
    let hist = e.config(&rec)["history"].as_array().unwrap().len();
    assert_eq!(hist, 2);
    // The build arg is part of the RUN's cache key.
    let (r2, _) = e.build(&ctx, df, |o| o.target = Some("final".into()));
    assert_eq!(
        r2.executed_steps, 3,
        "different WHAT: the RUN and both COPYs after it"
    );
}

#[test]
fn reproducible_layers_with_source_date_epoch() {
    let e1 = env();
    let e2 = env();
    let df =
        "FROM busybox\nRUN mkdir -p /data && echo same > /data/f && ln -s f /data/l\nCOPY x /x\n";
    let build = |e: &Env| {
        let ctx = e.context("repro");
        fs::write(ctx.join("x"), "x\n").unwrap();
        let (r, _) = e.build(&ctx, df, |_| {});
        e.store.resolve(&r.image_id.to_string()).unwrap()
    };
    let a = build(&e1);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = build(&e2);
    let digests = |r: &ImageRecord| {
        r.layers
            .iter()
            .map(|l| l.blob.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(digests(&a), digests(&b));
    assert_eq!(a.id, b.id);
}

#[test]
fn run_failure_and_missing_source_are_clear() {
    let e = env();
    let ctx = e.context("fail");
    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Text("FROM busybox\nRUN echo about-to-fail; exit 3\n".into());
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let err = build::build(&e.store, &o, buf.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("exit code 3"), "{err}");
    assert!(String::from_utf8_lossy(&buf.lock().unwrap()).contains("about-to-fail"));
    o.dockerfile = DockerfileSource::Text("FROM busybox\nCOPY nope /x\n".into());
    let err = build::build(&e.store, &o, buf.clone())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`nope` not found in the build context"),
        "{err}"
    );
    // Nothing mounted or left in the builder's scratch dir.
    let tmp = e.dir.path().join("store/builder/tmp");
    assert_eq!(fs::read_dir(&tmp).unwrap().count(), 0);
    let mut mounts = String::new();
    fs::File::open("/proc/self/mountinfo")
        .unwrap()
        .read_to_string(&mut mounts)
        .unwrap();
    assert!(!mounts.contains(e.dir.path().to_str().unwrap()));
}

#[test]
fn instruction_semantics() {
    let e = env();
    let ctx = e.context("sem");
    // A tar.gz for ADD to unpack.
    {
        let f = fs::File::create(ctx.join("bundle.tar.gz")).unwrap();
        let gz = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o600);
        h.set_uid(7);
        h.set_gid(8);
        b.append_data(&mut h, "pkg/inner.txt", &b"in\n"[..])
            .unwrap();
        b.into_inner().unwrap().finish().unwrap();
    }
    fs::write(ctx.join("one.conf"), "1").unwrap();
    fs::write(ctx.join("two.conf"), "2").unwrap();
    fs::write(ctx.join("skip.txt"), "s").unwrap();
    let base = "FROM busybox\nONBUILD RUN echo TRIGGER-RAN > /trigger\nCMD [\"base-cmd\"]\n";
    let (b, _) = e.build(&ctx, base, |o| o.tags = vec!["sem/base".into()]);
    let bc = e.config(&e.store.resolve(&b.image_id.to_string()).unwrap());
    assert_eq!(
        bc["config"]["OnBuild"],
        serde_json::json!(["RUN echo TRIGGER-RAN > /trigger"])
    );
    let df = r#"ARG TAG=base
ARG UNUSED=meta
FROM sem/${TAG}
ARG TAG
RUN test "$TAG" = base && test -z "$UNUSED" && echo ARGS-OK
ADD bundle.tar.gz /opt/
COPY *.conf /etc/app/
WORKDIR /srv
WORKDIR sub
RUN pwd > /pwd
SHELL ["/bin/sh", "-ec"]
RUN <<EOT
echo heredoc-script > /heredoc
EOT
ENTRYPOINT ["/bin/echo"]
HEALTHCHECK --interval=5s --retries=2 CMD ["true"]
VOLUME ["/data"]
"#;
    let (r, out) = e.build(&ctx, df, |_| {});
    assert!(ran(&out, "ARGS-OK"), "{out}");
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let c = e.config(&rec);
    let cfg = &c["config"];
    // ENTRYPOINT drops the CMD inherited from the base; triggers are consumed.
    assert!(cfg["Cmd"].is_null(), "{cfg}");
    assert_eq!(cfg["Entrypoint"], serde_json::json!(["/bin/echo"]));
    assert!(cfg.get("OnBuild").is_none() || cfg["OnBuild"].is_null());
    assert_eq!(cfg["WorkingDir"], "/srv/sub");
    assert_eq!(cfg["Shell"], serde_json::json!(["/bin/sh", "-ec"]));
    assert_eq!(
        cfg["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "true"], "Interval": 5_000_000_000u64, "Retries": 2})
    );
    assert_eq!(cfg["Volumes"], serde_json::json!({"/data": {}}));
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(
        fs::read_to_string(m.dir.join("trigger")).unwrap(),
        "TRIGGER-RAN\n"
    );
    assert_eq!(fs::read_to_string(m.dir.join("pwd")).unwrap(), "/srv/sub\n");
    assert_eq!(
        fs::read_to_string(m.dir.join("heredoc")).unwrap(),
        "heredoc-script\n"
    );
    let inner = fs::metadata(m.dir.join("opt/pkg/inner.txt")).unwrap();
    assert_eq!(
        (inner.mode() & 0o7777, inner.uid(), inner.gid()),
        (0o600, 7, 8)
    );
    assert!(!m.dir.join("opt/bundle.tar.gz").exists());
    assert_eq!(
        fs::read_to_string(m.dir.join("etc/app/one.conf")).unwrap(),
        "1"
    );
    assert_eq!(
        fs::read_to_string(m.dir.join("etc/app/two.conf")).unwrap(),
        "2"
    );
    assert!(!m.dir.join("etc/app/skip.txt").exists());
    drop(m);

    // Out of scope, said clearly.
    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Text("FROM busybox\nADD git@example.com:o/r.git /x\n".into());
    let err = build::build(&e.store, &o, Arc::new(Mutex::new(Vec::<u8>::new())))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ADD from a git repository") && err.contains("not supported"),
        "{err}"
    );
}

/// `FROM` an image that is not local: pulled from the local registry
/// (scripts/setup.sh starts it on localhost:5000).
#[test]
fn from_pulls_missing_base_image() {
    let e = env();
    let ctx = e.context("pull");
    let (r, out) = e.build(
        &ctx,
        "FROM localhost:5000/busybox:latest\nRUN echo PULLED-AND-RAN\n",
        |o| o.pull = true,
    );
    assert!(
        out.contains("pulling localhost:5000/busybox:latest"),
        "{out}"
    );
    assert!(ran(&out, "PULLED-AND-RAN"), "{out}");
    assert!(e.store.resolve("localhost:5000/busybox:latest").is_ok());
    // The RUN wrote nothing: no layer, an empty_layer history entry.
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    assert_eq!(rec.layers.len(), 1);
    let c = e.config(&rec);
    assert_eq!(
        c["history"].as_array().unwrap().last().unwrap()["empty_layer"],
        true
    );
}

/// The context is the client's, the daemon's host is not: a link in a
/// source's leading components, or a Dockerfile that is a link, resolves
/// inside the context and never reads the host's files.
#[test]
fn context_links_never_reach_the_host() {
    let e = env();
    let host = e.dir.path().join("host-only");
    fs::create_dir_all(&host).unwrap();
    fs::write(host.join("secret"), "HOST\n").unwrap();
    fs::write(host.join("Dockerfile"), "FROM busybox\nLABEL leaked=yes\n").unwrap();
    let ctx = e.context("links");
    symlink(&host, ctx.join("sub")).unwrap();
    let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Text("FROM busybox\nCOPY sub/secret /s\n".into());
    let err = build::build(&e.store, &o, buf.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not found in the build context"), "{err}");
    // The same link inside the context is fine when it points inside.
    fs::create_dir_all(ctx.join(host.strip_prefix("/").unwrap())).unwrap();
    fs::write(
        ctx.join(host.strip_prefix("/").unwrap()).join("secret"),
        "CONTEXT\n",
    )
    .unwrap();
    o.dockerfile =
        DockerfileSource::Text("FROM busybox\nCOPY sub/secret /s\nRUN grep -q CONTEXT /s\n".into());
    build::build(&e.store, &o, buf.clone()).unwrap();

    symlink(host.join("Dockerfile"), ctx.join("Dockerfile")).unwrap();
    o.dockerfile = DockerfileSource::Path("Dockerfile".into());
    let err = build::build(&e.store, &o, buf.clone())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not in the build context"), "{err}");
}
