//! Helpers for the build integration tests. They need root (overlay
//! mounts, containers) and the busybox fixture: the OCI layout
//! /var/tmp/berth-fixtures/busybox (scripts/setup.sh / make-images.sh),
//! loaded into a fresh store per test. Each test has its own temp store;
//! guards unmount and remove everything.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use berth_builder::build::{self, BuildOptions, BuildResult, DockerfileSource, Sink};
use berth_image::{ImageRecord, ImageStore};

pub const FIXTURE: &str = "/var/tmp/berth-fixtures/busybox";
pub const EPOCH: i64 = 1_700_000_000;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub store: Arc<ImageStore>,
}

pub fn env() -> Env {
    assert!(
        nix::unistd::geteuid().is_root(),
        "build tests need root (overlay mounts and containers); CI runs them as root"
    );
    assert!(
        Path::new(FIXTURE).join("index.json").exists(),
        "missing {FIXTURE}: run scripts/setup.sh (or /work/shared/fixtures/make-images.sh)"
    );
    let dir = tempfile::Builder::new()
        .prefix("berth-build-test")
        .tempdir()
        .unwrap();
    let store = Arc::new(ImageStore::open(dir.path().join("store")).unwrap());
    // The fixture layout → a tar → `load`, then tagged as `busybox`.
    let tar_path = dir.path().join("busybox.tar");
    {
        let mut b = tar::Builder::new(fs::File::create(&tar_path).unwrap());
        b.append_dir_all(".", FIXTURE).unwrap();
        b.finish().unwrap();
    }
    let loaded = store.load_archive(&tar_path).unwrap();
    store
        .tag(&loaded[0].id.to_string(), "busybox:latest")
        .unwrap();
    Env { dir, store }
}

impl Env {
    pub fn context(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        fs::create_dir_all(&p).unwrap();
        p
    }

    pub fn build(
        &self,
        ctx: &Path,
        dockerfile: &str,
        f: impl FnOnce(&mut BuildOptions),
    ) -> (BuildResult, String) {
        let mut o = BuildOptions::new(ctx);
        o.dockerfile = DockerfileSource::Text(dockerfile.to_string());
        o.source_date_epoch = Some(EPOCH);
        f(&mut o);
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink: Sink = buf.clone();
        let r = build::build(&self.store, &o, sink);
        let out = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
        match r {
            Ok(r) => (r, out),
            Err(e) => panic!("build failed: {e}\n--- output ---\n{out}"),
        }
    }

    /// A build expected to fail: its error and output.
    pub fn build_err(&self, ctx: &Path, dockerfile: &str) -> (String, String) {
        let mut o = BuildOptions::new(ctx);
        o.dockerfile = DockerfileSource::Text(dockerfile.to_string());
        o.source_date_epoch = Some(EPOCH);
        let buf = Arc::new(Mutex::new(Vec::<u8>::new()));
        let sink: Sink = buf.clone();
        let r = build::build(&self.store, &o, sink);
        let out = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
        match r {
            Ok(_) => panic!("build succeeded, expected an error\n--- output ---\n{out}"),
            Err(e) => (e.to_string(), out),
        }
    }

    pub fn config(&self, rec: &ImageRecord) -> serde_json::Value {
        serde_json::from_slice(&self.store.content.read(&rec.id).unwrap()).unwrap()
    }
}

/// A read-only mount of an image, unmounted on drop.
pub struct Mounted<'a> {
    pub store: &'a ImageStore,
    pub dir: PathBuf,
}

impl<'a> Mounted<'a> {
    pub fn new(store: &'a ImageStore, rec: &ImageRecord, dir: PathBuf) -> Self {
        fs::create_dir_all(&dir).unwrap();
        berth_image::rootfs::mount_image(store, rec, &dir).unwrap();
        Mounted { store, dir }
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = berth_image::rootfs::unmount_image(self.store, &self.dir);
    }
}

/// Entry names of a layer blob (gzip tar).
pub fn layer_entries(store: &ImageStore, rec: &berth_image::LayerRecord) -> Vec<String> {
    let f = store.content.open_blob(&rec.blob).unwrap();
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(f));
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Did a RUN print `marker` (a step output line `#N marker`, not the
/// step's title, which shows the command)?
pub fn ran(out: &str, marker: &str) -> bool {
    out.lines()
        .any(|l| l.split_once(' ').map(|x| x.1) == Some(marker))
}
