//! Real clients against the registry (root; CI): skopeo in and out, Berth's own
//! push/pull with the pulled busybox run by berth-runtime, and podman when present.
//! Images come from the OCI-layout fixtures (`scripts/setup.sh` builds them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use reqwest::Method;

const FIXTURES: &str = "/var/tmp/berth-fixtures";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A workspace binary, built on demand (integration tests only get their own crate's).
fn bin(pkg: &str, name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let p = target.join("debug").join(name);
    if !p.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "-p", pkg, "--bin", name])
            .current_dir(workspace())
            .status()
            .unwrap()
            .success();
        assert!(ok, "building {name}");
    }
    p
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

fn fixture_manifest(name: &str) -> String {
    layout_manifest(&Path::new(FIXTURES).join(name))
}

fn layout_manifest(dir: &Path) -> String {
    let idx: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    idx["manifests"][0]["digest"].as_str().unwrap().to_string()
}

fn skopeo_in(addr: &str, fixture: &str, dest: &str) {
    run(Command::new("skopeo").args([
        "copy",
        "--dest-tls-verify=false",
        &format!("oci:{FIXTURES}/{fixture}"),
        &format!("docker://{addr}/{dest}"),
    ]));
}

async fn manifest_digest(r: &Reg, repo: &str, tag: &str) -> String {
    let resp = r
        .req(Method::HEAD, &format!("/v2/{repo}/manifests/{tag}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{repo}:{tag} {}", resp.status());
    resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}

fn blob_names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_copy_in_and_out_is_byte_identical() {
    assert!(have("skopeo"), "skopeo is installed by scripts/setup.sh");
    let r = start().await;
    let out = tempfile::tempdir().unwrap();
    for (fixture, dest) in [
        ("busybox", "library/busybox:latest"),
        ("multilayer", "multi/layer:v1"),
    ] {
        skopeo_in(&r.addr, fixture, dest);
        let (repo, tag) = dest.split_once(':').unwrap();
        assert_eq!(
            manifest_digest(&r, repo, tag).await,
            fixture_manifest(fixture)
        );
        let back = out.path().join(fixture);
        run(Command::new("skopeo").args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/{dest}", r.addr),
            &format!("oci:{}", back.display()),
        ]));
        // Same manifest digest, and every blob (config, layers) byte for byte.
        assert_eq!(layout_manifest(&back), fixture_manifest(fixture));
        let want = blob_names(&Path::new(FIXTURES).join(fixture));
        assert_eq!(blob_names(&back), want);
        for b in want {
            let p = back.join("blobs/sha256").join(&b);
            assert_eq!(digest(&std::fs::read(p).unwrap()), format!("sha256:{b}"));
        }
    }
    // The busybox layer is shared by both images: stored once.
    let layer = "sha256:c6bd998760cf75b160e1cbb6d75c3df8dabe4985d84f1c8403f61741c76a3536";
    let n = r
        .app
        .store
        .content
        .list()
        .unwrap()
        .iter()
        .filter(|d| d.to_string() == layer)
        .count();
    assert_eq!(n, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn berth_push_pull_and_run_busybox() {
    assert!(have("skopeo"));
    let r = start().await;
    skopeo_in(&r.addr, "busybox", "library/busybox:latest");
    let berth = bin("berth-cli", "berth");
    let runtime = bin("berth-runtime", "berth-runtime");
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("berth");
    let b = |args: &[&str]| {
        let mut c = Command::new(&berth);
        c.arg("--root").arg(&root).args(args);
        c
    };
    let src = format!("{}/library/busybox:latest", r.addr);
    // `--root` without `-H` starts that store's own berthd: stopped (with
    // its bridge and packet rules) when the test ends, whatever happens.
    let started = Command::new(&berth)
        .arg("--root")
        .arg(&root)
        .args(["pull", "-q", &src])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&started.stderr).into_owned();
    let pid = stderr
        .split("Started berthd (pid ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .and_then(|p| p.parse::<i32>().ok());
    // "Started berthd (pid N, log /run/berth-<hash>/berthd.log)": its exec root goes too.
    let exec_root = stderr
        .split("log ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .and_then(|l| std::path::Path::new(l).parent().map(|p| p.to_path_buf()));
    let _daemon = pid.map(|pid| RootDaemon::new(pid, &berth, &root, exec_root));
    assert!(started.status.success(), "pull: {stderr}");
    let dst = format!("{}/berth/copy:v1", r.addr);
    run(&mut b(&["tag", &src, &dst]));
    run(&mut b(&["push", "-q", &dst]));
    let want = fixture_manifest("busybox");
    assert_eq!(manifest_digest(&r, "berth/copy", "v1").await, want);
    // Pull it back after removing every local copy, and run it.
    run(&mut b(&["rmi", &src, &dst]));
    run(&mut b(&["pull", "-q", &dst]));
    let root2 = root.clone();
    let bundle = t.path().join("bundle");
    run(Command::new(&berth)
        .arg("--root")
        .arg(&root2)
        .args(["image", "bundle", &dst])
        .arg(&bundle));
    let cfg_path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
    cfg["process"]["args"] = serde_json::json!(["/bin/echo", "hello from the registry"]);
    cfg["process"]["terminal"] = false.into();
    std::fs::write(&cfg_path, serde_json::to_vec(&cfg).unwrap()).unwrap();
    let state = t.path().join("rt");
    let out = run(Command::new(&runtime)
        .arg("--root")
        .arg(&state)
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg("registry-test"));
    let _ = Command::new(&berth)
        .arg("--root")
        .arg(&root2)
        .args(["image", "umount"])
        .arg(&bundle)
        .status();
    assert!(out.contains("hello from the registry"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_push_pull() {
    if !have("podman") {
        eprintln!("podman not installed: skipped");
        return;
    }
    let r = start().await;
    skopeo_in(&r.addr, "busybox", "library/busybox:latest");
    let t = tempfile::tempdir().unwrap();
    let p = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(t.path().join("root"))
            .arg("--runroot")
            .arg(t.path().join("run"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        c
    };
    let src = format!("{}/library/busybox:latest", r.addr);
    run(&mut p(&["pull", "-q", "--tls-verify=false", &src]));
    let dst = format!("{}/podman/busybox:latest", r.addr);
    run(&mut p(&["tag", &src, &dst]));
    run(&mut p(&["push", "-q", "--tls-verify=false", &dst]));
    let d = manifest_digest(&r, "podman/busybox", "latest").await;
    let resp = r
        .req(Method::GET, &format!("/v2/podman/busybox/manifests/{d}"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    // Pull what podman pushed into a fresh storage.
    let t2 = tempfile::tempdir().unwrap();
    run(Command::new("podman")
        .arg("--root")
        .arg(t2.path().join("root"))
        .arg("--runroot")
        .arg(t2.path().join("run"))
        .args([
            "--storage-driver",
            "vfs",
            "pull",
            "-q",
            "--tls-verify=false",
            &dst,
        ]));
}

/// The berthd a `berth --root` command started: killed on drop, with the
/// bridge and nftables table of its default network (named after its root).
struct RootDaemon {
    pid: i32,
    bridge: Option<String>,
    exec_root: Option<std::path::PathBuf>,
}

impl RootDaemon {
    fn new(
        pid: i32,
        berth: &std::path::Path,
        root: &std::path::Path,
        exec_root: Option<std::path::PathBuf>,
    ) -> Self {
        let o = Command::new(berth)
            .arg("--root")
            .arg(root)
            .args([
                "network",
                "inspect",
                "-f",
                "{{index .Options \"com.docker.network.bridge.name\"}}",
                "bridge",
            ])
            .output()
            .ok();
        let bridge = o
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .filter(|b| b.starts_with("berth") && b != "berth0");
        RootDaemon {
            pid,
            bridge,
            exec_root,
        }
    }
}

impl Drop for RootDaemon {
    fn drop(&mut self) {
        // SAFETY: a plain kill of the daemon this test started.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        for _ in 0..250 {
            if !std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if let Some(b) = &self.bridge {
            let _ = Command::new("ip").args(["link", "del", b]).output();
            let _ = Command::new("nft")
                .args(["delete", "table", "ip", b])
                .output();
        }
        // Only a /run/berth-<hash> dir: never anything else the message might name.
        if let Some(d) = &self.exec_root
            && d.starts_with("/run")
            && d.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("berth-"))
        {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
