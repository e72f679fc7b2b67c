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
