//! Helpers for the root-only shim tests: busybox bundles, a shim per test in
//! private dirs, and a guard that leaves no process, container or file behind.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use berth_shim::{Options, ShimClient, Started};
use serde_json::{Value, json};

pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");

pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// berth-runtime from the same target dir (built here if this crate's tests
/// were built alone).
pub fn berth_runtime() -> PathBuf {
    if let Some(p) = std::env::var_os("BERTH_RUNTIME") {
        return p.into();
    }
    let p = Path::new(SHIM).parent().unwrap().join("berth-runtime");
    if !p.is_file() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-p", "berth-runtime", "--bin", "berth-runtime"])
            .status()
            .unwrap();
        assert!(st.success(), "building berth-runtime failed");
    }
    p
}

fn fixtures_dir() -> PathBuf {
    std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/berth-fixtures"))
}

/// Unpacks the busybox fixture's layers with GNU tar.
fn unpack_busybox(dest: &Path) {
    let layout = fixtures_dir().join("busybox");
    let read = |p: PathBuf| -> Value {
        serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run ../shared/fixtures/make-images.sh)",
                p.display()
            )
        }))
        .unwrap()
    };
    let blob = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.trim_start_matches("sha256:"))
    };
    let index = read(layout.join("index.json"));
    let manifest = read(blob(index["manifests"][0]["digest"].as_str().unwrap()));
    std::fs::create_dir_all(dest).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        let st = Command::new("tar")
            .arg("-xzf")
            .arg(blob(l["digest"].as_str().unwrap()))
            .arg("-C")
            .arg(dest)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

pub fn bundle_config(args: &[&str], tty: bool) -> Value {
    let caps = json!([
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FOWNER",
        "CAP_KILL",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT"
    ]);
    json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "shim-test",
        "process": {
            "terminal": tty,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "resources": {"devices": [{"allow": false, "access": "rwm"}]}
        }
    })
}

/// One shim under test, with its own bundle, state dir and runtime root.
pub struct ShimUnderTest {
    pub opts: Options,
    pub started: Option<Started>,
    pub bundle: tempfile::TempDir,
    pub state: tempfile::TempDir,
    pub rt_root: tempfile::TempDir,
}

pub fn unique_id(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shim-{name}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl ShimUnderTest {
    /// A bundle running `args`, and options with a log; nothing started yet.
    pub fn new(name: &str, args: &[&str], tty: bool) -> ShimUnderTest {
        require_root();
        let tmp = |prefix: &str, dir: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(dir)
                .unwrap()
        };
        let bundle = tmp("berth-shim-bundle-", "/var/tmp");
        unpack_busybox(&bundle.path().join("rootfs"));
        std::fs::write(
            bundle.path().join("config.json"),
            serde_json::to_vec_pretty(&bundle_config(args, tty)).unwrap(),
        )
        .unwrap();
        let state = tmp("bshim-", "/run");
        let rt_root = tmp("bshim-rt-", "/run");
        let opts = Options {
            id: unique_id(name),
            bundle: bundle.path().into(),
            state_dir: state.path().join("s"),
            runtime: Some(berth_runtime()),
            runtime_root: Some(rt_root.path().into()),
            log_path: Some(bundle.path().join("log/json.log")),
            log_max_files: 1,
            tty,
            start: true,
            ..Options::default()
        };
        ShimUnderTest {
            opts,
            started: None,
            bundle,
            state,
            rt_root,
        }
    }

    pub fn launch(&mut self) -> &Started {
        let s = berth_shim::launch(Path::new(SHIM), &self.opts)
            .unwrap_or_else(|e| panic!("shim failed to start: {e}"));
        self.started = Some(s);
        self.started.as_ref().unwrap()
    }

    pub fn client(&self) -> ShimClient {
        ShimClient::connect(&self.opts.socket_path()).unwrap()
    }

    pub fn shim_pid(&self) -> i32 {
        self.started.as_ref().unwrap().pid
    }

    pub fn log_entries(&self) -> Vec<Value> {
        read_log(self.opts.log_path.as_ref().unwrap())
    }

    /// Deletes the container and checks that the shim then exits leaving
    /// nothing: no shim, no init, no cgroup, no runtime state, no state file.
    pub fn finish_and_check_clean(&mut self) {
        let s = self.started.clone().unwrap();
        let cgroups = cgroup_dirs(s.container_pid);
        let mut c = self.client();
        c.wait(None).unwrap();
        c.delete().unwrap();
        drop(c);
        assert!(
            wait_until(Duration::from_secs(10), || !alive(s.pid)),
            "shim {} still running after delete + wait",
            s.pid
        );
        assert!(!alive(s.container_pid), "container init survived");
        for d in cgroups {
            assert!(!d.exists(), "cgroup {} left behind", d.display());
        }
        let left: Vec<_> = std::fs::read_dir(&self.opts.state_dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "files left in the state dir: {left:?}");
        // Dot entries are the runtime's caches (compiled seccomp filters), not state.
        let rt: Vec<_> = std::fs::read_dir(self.rt_root.path())
            .unwrap()
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .map(|e| e.path())
            .collect();
        assert!(rt.is_empty(), "runtime state left: {rt:?}");
    }
}

impl Drop for ShimUnderTest {
    fn drop(&mut self) {
        if let Some(s) = &self.started
            && alive(s.pid)
        {
            // SAFETY: kill with plain integers; the pid is our shim's.
            unsafe { libc::kill(s.pid, libc::SIGKILL) };
        }
        let rt = self.opts.runtime.clone().unwrap_or_else(berth_runtime);
        let _ = Command::new(&rt)
            .arg("--root")
            .arg(self.rt_root.path())
            .args(["delete", "--force", &self.opts.id])
            .output();
    }
}

pub fn read_log(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad log line {l:?}: {e}")))
        .collect()
}

/// Alive and not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The host cgroup directories of a process (every hierarchy).
pub fn cgroup_dirs(pid: i32) -> Vec<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrl, path) = (
            f.next().unwrap(),
            f.next().unwrap_or(""),
            f.next().unwrap_or("/"),
        );
        if path == "/" {
            continue;
        }
        let ctrl = ctrl
            .split(',')
            .find(|c| !c.starts_with("name="))
            .unwrap_or("");
        let base = if ctrl.is_empty() { "unified" } else { ctrl };
        for root in [
            format!("/sys/fs/cgroup/{base}"),
            "/sys/fs/cgroup".to_string(),
        ] {
            let d = Path::new(&root).join(path.trim_start_matches('/'));
            if d.exists() {
                out.push(d);
                break;
            }
        }
    }
    out
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

pub fn vm_rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}
