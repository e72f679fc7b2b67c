//! Build lifecycle (root, the busybox fixture; see common/): a killed
//! build's leftovers are cleaned by the next build.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_builder::build::{self, BuildOptions, DockerfileSource};
use berth_image::ImageStore;
use common::*;

const CHILD_ENV: &str = "BERTH_TEST_KILLED_BUILD_DIR";

fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let d = d.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&d))
        .map(String::from)
        .collect()
}

fn entries_of(dir: &Path, pid: u32) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .unwrap()
                        .to_string_lossy()
                        .contains(&format!("-{pid}-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn killed_build_is_cleaned_up_by_the_next() {
    // The child half: a build whose RUN sleeps until the parent kills us.
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let dir = PathBuf::from(dir);
        let store = Arc::new(ImageStore::open(dir.join("store")).unwrap());
        let mut o = BuildOptions::new(dir.join("ctx"));
        o.dockerfile = DockerfileSource::Text("FROM busybox\nRUN sleep 60\n".into());
        let _ = build::build(&store, &o, build::stderr_sink());
        std::process::exit(1);
    }
    let e = env();
    let ctx = e.context("ctx");
    let builder = e.store.root().join("builder");
    // Whatever happens below, the killed build's container and mount go.
    struct Sweep(PathBuf);
    impl Drop for Sweep {
        fn drop(&mut self) {
            let _ = build::cleanup_stale(&self.0);
        }
    }
    let _sweep = Sweep(e.store.root().to_path_buf());
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "killed_build_is_cleaned_up_by_the_next",
            "--exact",
            "--nocapture",
        ])
        .env(CHILD_ENV, e.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait for the RUN: its container's state and its step mount exist.
    let end = Instant::now() + Duration::from_secs(30);
    let running = || {
        let c = entries_of(&builder.join("runtime"), pid);
        !c.is_empty()
            && c.iter().all(|d| d.join("state.json").exists())
            && !mounts_under(&builder.join("tmp")).is_empty()
    };
    while !running() {
        assert!(Instant::now() < end, "the child's RUN never started");
        assert!(child.try_wait().unwrap().is_none(), "the child build ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !mounts_under(&builder.join("tmp")).is_empty(),
        "SIGKILL should leave the step mount (else this test shows nothing)"
    );

    let (r, _) = e.build(&ctx, "FROM busybox\nRUN echo after > /after\n", |_| {});
    assert_eq!(r.executed_steps, 1);
    assert_eq!(
        mounts_under(&builder.join("tmp")),
        Vec::<String>::new(),
        "step mounts left"
    );
    assert_eq!(entries_of(&builder.join("tmp"), pid), Vec::<PathBuf>::new());
    assert_eq!(
        entries_of(&builder.join("runtime"), pid),
        Vec::<PathBuf>::new()
    );
}

#[test]
fn independent_stages_build_in_parallel() {
    let e = env();
    let ctx = e.context("ctx");
    let df = "FROM busybox AS a\nRUN sleep 2 && echo A > /a\n\
              FROM busybox AS b\nRUN sleep 2 && echo B > /b\n\
              FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n";
    let t = Instant::now();
    let (r, out) = e.build(&ctx, df, |_| {});
    let took = t.elapsed();
    assert_eq!(r.executed_steps, 4, "{out}");
    // Both sleeps started before either finished...
    let lines: Vec<&str> = out.lines().collect();
    let pos = |p: &dyn Fn(&str) -> bool| lines.iter().position(|l| p(l)).unwrap();
    let start_a = pos(&|l| l.contains("[a 2/2] RUN"));
    let start_b = pos(&|l| l.contains("[b 2/2] RUN"));
    let run_ids: Vec<String> = [start_a, start_b]
        .iter()
        .map(|&i| lines[i].split(' ').next().unwrap().to_string())
        .collect();
    let first_done = pos(&|l| {
        run_ids
            .iter()
            .any(|id| l.starts_with(&format!("{id} DONE")))
    });
    assert!(start_a.max(start_b) < first_done, "{out}");
    // ...and the build took about one sleep, not two.
    assert!(took < Duration::from_millis(3500), "took {took:?}\n{out}");
    let (_, again) = e.build(&ctx, df, |_| {});
    assert_eq!(again.matches("CACHED").count(), 4, "{again}");
}

fn xattr_names(p: &Path) -> Vec<String> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = [0u8; 1024];
    // SAFETY: a valid C string and a buffer of the given length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf[..n as usize]
        .split(|&b| b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

#[test]
fn step_layers_are_stored_in_layer_form() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let e = env();
    let ctx = e.context("ctx");
    std::fs::write(ctx.join("big"), vec![7u8; 100_000]).unwrap();
    // A copy-up (origin/impure xattrs in the upper dir), a deletion
    // (whiteout), an opaque dir, a hard link, a COPY.
    let df = "FROM busybox\n\
              RUN echo more >> /etc/profile && rm /bin/ls && rm -rf /home && mkdir /home && touch /home/x \
                  && echo h > /h1 && ln /h1 /h2\n\
              COPY big /big\n";
    let (r, out) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let n = rec.layers.len();
    let run = &rec.layers[n - 2];
    let copy = &rec.layers[n - 1];
    let mut saw_whiteout = false;
    for l in [run, copy] {
        let dir = e.store.layers.diff_dir(&l.chain_id);
        let mut todo = vec![dir.clone()];
        while let Some(d) = todo.pop() {
            for x in xattr_names(&d) {
                assert!(
                    !x.starts_with("trusted.overlay.") || x == "trusted.overlay.opaque",
                    "{x} on {}\n{out}",
                    d.display()
                );
            }
            if !d.is_dir() || d.is_symlink() {
                continue;
            }
            for ent in std::fs::read_dir(&d).unwrap().flatten() {
                let m = ent.path().symlink_metadata().unwrap();
                assert!(
                    m.mtime() <= EPOCH,
                    "{} mtime {}",
                    ent.path().display(),
                    m.mtime()
                );
                saw_whiteout |= m.file_type().is_char_device() && m.rdev() == 0;
                todo.push(ent.path());
            }
        }
    }
    assert!(saw_whiteout, "rm /bin/ls left a whiteout");
    let opq = e.store.layers.diff_dir(&run.chain_id).join("home");
    assert!(xattr_names(&opq).contains(&"trusted.overlay.opaque".to_string()));
    assert_eq!(e.store.layers.meta(&copy.chain_id).unwrap().size, 100_000);
    // The image reads back right through those dirs.
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert!(!m.dir.join("bin/ls").exists());
    assert!(m.dir.join("home/x").exists());
    assert!(
        std::fs::read_to_string(m.dir.join("etc/profile"))
            .unwrap()
            .ends_with("more\n")
    );
    assert_eq!(std::fs::read(m.dir.join("big")).unwrap().len(), 100_000);
    assert_eq!(
        m.dir.join("h1").metadata().unwrap().ino(),
        m.dir.join("h2").metadata().unwrap().ino()
    );
}

#[test]
fn platform_args_and_foreign_run() {
    let e = env();
    let ctx = e.context("ctx");
    let df = "FROM --platform=$BUILDPLATFORM busybox\nARG TARGETARCH\nARG BUILDPLATFORM\n\
              RUN echo $TARGETARCH $BUILDPLATFORM > /p\n";
    let (r, out) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("m"));
    let host = berth_image::formats::Platform::host();
    assert_eq!(
        std::fs::read_to_string(m.dir.join("p")).unwrap().trim(),
        format!("{} {host}", host.architecture),
        "{out}"
    );
    drop(m);
    // A foreign stage can be assembled, not run.
    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Text("FROM --platform=linux/s390x scratch\nRUN true\n".into());
    let err = build::build(
        &e.store,
        &o,
        Arc::new(std::sync::Mutex::new(Vec::<u8>::new())),
    )
    .expect_err("RUN in a foreign stage");
    assert!(
        err.to_string().contains("RUN in a linux/s390x stage"),
        "{err}"
    );
}
