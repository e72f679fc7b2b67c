//! Root-only helpers: a berthd per test on its own socket, --root and
//! --exec-root, driven by the real docker CLI; a guard that leaves no daemon,
//! shim, container, mount or directory behind.

#![allow(dead_code)]

pub mod net;
pub mod registry;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// berthd: cargo names it for this crate's tests; other crates' tests
/// (the CLI's include this file) find it in the same target directory.
pub static BERTHD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    if let Some(p) = option_env!("CARGO_BIN_EXE_berthd") {
        return p.to_string();
    }
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> -> target/<profile>/berthd
    let dir = exe.parent().unwrap().parent().unwrap();
    dir.join("berthd").display().to_string()
});
pub const DOCKER: &str = "/usr/local/bin/docker";
pub const IMAGE: &str = "localhost:5000/busybox";

pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// berth-shim, berth-runtime and berth-proxy beside berthd (built if this
/// crate was built alone).
fn ensure_helpers() {
    let dir = Path::new(BERTHD.as_str()).parent().unwrap();
    if ["berthd", "berth-shim", "berth-runtime", "berth-proxy"]
        .iter()
        .all(|b| dir.join(b).is_file())
    {
        return;
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "-p",
        "berth-api",
        "-p",
        "berth-shim",
        "-p",
        "berth-runtime",
        "-p",
        "berth-network",
    ]);
    if dir.ends_with("release") {
        cmd.arg("--release");
    }
    assert!(
        cmd.status().unwrap().success(),
        "building berth-shim/berth-runtime/berth-proxy failed"
    );
}

fn require_registry() {
    if std::net::TcpStream::connect("127.0.0.1:5000").is_err() {
        panic!(
            "no registry on localhost:5000: run scripts/setup.sh (it starts the reference registry with the busybox fixture)"
        );
    }
}

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub struct Daemon {
    pub child: Option<Child>,
    pub root: tempfile::TempDir,
    pub exec_root: tempfile::TempDir,
    pub docker_config: tempfile::TempDir,
    /// Extra environment for berthd (e.g. BERTH_NFTABLES=0).
    pub env: Vec<(String, String)>,
}

impl Daemon {
    pub fn start() -> Daemon {
        Daemon::start_with_env(&[])
    }

    pub fn start_with_env(env: &[(&str, &str)]) -> Daemon {
        require_root();
        require_registry();
        ensure_helpers();
        let tmp = |prefix: &str, dir: &str| {
            tempfile::Builder::new()
                .prefix(prefix)
                .tempdir_in(dir)
                .unwrap()
        };
        // Short: the shim socket path is <exec-root>/containers/<64 hex>/shim.sock.
        let mut d = Daemon {
            child: None,
            root: tmp("berthd-root-", "/var/tmp"),
            exec_root: tmp("bd", "/run"),
            docker_config: tmp("berthd-dcfg-", "/tmp"),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        d.spawn();
        d
    }

    pub fn socket(&self) -> PathBuf {
        self.exec_root.path().join("berth.sock")
    }

    /// Starts berthd (again) on the same dirs and waits for its socket.
    pub fn spawn(&mut self) {
        self.spawn_with(&[]);
    }

    /// [`Daemon::spawn`] with more berthd arguments (`--runtime ...`).
    pub fn spawn_with(&mut self, extra: &[&str]) {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(self.root.path().join("berthd.log"))
            .unwrap();
        let child = Command::new(BERTHD.as_str())
            .arg("--host")
            .arg(format!("unix://{}", self.socket().display()))
            .arg("--root")
            .arg(self.root.path())
            .arg("--exec-root")
            .arg(self.exec_root.path())
            .args(extra)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(self.socket()).is_err() {
            assert!(
                Instant::now() < end,
                "berthd did not come up: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("berthd.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        let out = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.docker_config.path())
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// docker with `input` on its stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = Command::new(DOCKER)
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.docker_config.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// docker that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.docker(args);
        assert_eq!(
            o.code,
            0,
            "docker {args:?} failed: {}\n--- berthd log:\n{}",
            o.stderr,
            self.log()
        );
        o.stdout
    }

    /// The running berthd's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("berthd runs").id()
    }

    /// A raw HTTP/1.0 request on the socket: (status, body).
    pub fn http(&self, method: &str, path: &str) -> (u16, String) {
        self.http_json(method, path, "")
    }

    /// A raw HTTP/1.0 request with a JSON body: (status, body).
    pub fn http_json(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = UnixStream::connect(self.socket()).unwrap();
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: berth\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = resp.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
        (status, body)
    }

    fn container_ids(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("containers"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Removes every container through the daemon, then checks nothing is
    /// left: no shim or container process, no mount, no state.
    pub fn finish(&mut self) {
        for id in self.container_ids() {
            self.ok(&["rm", "-f", &id]);
        }
        assert!(self.ok(&["ps", "-aq"]).trim().is_empty());
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let me = self.child.as_ref().map(|c| c.id() as i32);
            let procs: Vec<i32> = processes_mentioning(self.exec_root.path())
                .into_iter()
                .filter(|p| Some(*p) != me)
                .collect();
            let mounts = mounts_under(self.root.path());
            if procs.is_empty() && mounts.is_empty() {
                break;
            }
            assert!(
                Instant::now() < end,
                "left behind: processes {procs:?}, mounts {mounts:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let left: Vec<_> = std::fs::read_dir(self.exec_root.path().join("containers"))
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "state left: {left:?}");
        // The runtime's compiled-seccomp cache is shared, not a container's.
        let rt: Vec<_> = std::fs::read_dir(self.exec_root.path().join("runtime"))
            .map(|rd| {
                rd.flatten()
                    .filter(|e| e.file_name() != ".seccomp-cache")
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default();
        assert!(rt.is_empty(), "runtime state left: {rt:?}");
        for b in self.bridges() {
            let ports = links_on_bridge(&b);
            assert!(ports.is_empty(), "veths left on {b}: {ports:?}");
        }
        let rules = self.nft_rules();
        assert!(
            !rules.contains("dnat to"),
            "published-port rules left: {rules}"
        );
    }

    /// This daemon's nftables table: named after its default bridge
    /// (`berth` for the usual root's `berth0`), as berthd names it.
    pub fn firewall(&self) -> Option<berth_network::firewall::Firewall> {
        let dir = self.root.path().join("networks");
        let default = std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            (v["name"] == "bridge").then(|| v["bridge"].as_str().map(String::from))?
        })?;
        let table = if default == "berth0" {
            "berth".to_string()
        } else {
            default
        };
        berth_network::firewall::Firewall::new(&table).ok()
    }

    /// The daemon's nftables rules ("" without a table).
    pub fn nft_rules(&self) -> String {
        self.firewall()
            .and_then(|f| f.list().unwrap())
            .unwrap_or_default()
    }

    /// The bridge devices of this daemon's networks (from its records).
    pub fn bridges(&self) -> Vec<String> {
        std::fs::read_dir(self.root.path().join("networks"))
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| {
                        let v: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
                        v["bridge"]
                            .as_str()
                            .filter(|b| !b.is_empty())
                            .map(String::from)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Links enslaved to `bridge` (empty when it does not exist).
pub fn links_on_bridge(bridge: &str) -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or("").to_string())
        .collect()
}

/// Whether a link of that name exists on the host.
pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", name])
        .output()
        .unwrap()
        .status
        .success()
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
        // Whatever a failed test left: shims (by their pid files), runtime
        // state, overlay mounts — of removed containers whose background
        // teardown the kill cut short (their dirs are in the trash) too.
        let trashed: Vec<String> = std::fs::read_dir(self.root.path().join("trash"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        for id in self.container_ids().into_iter().chain(trashed) {
            let state = self.exec_root.path().join("containers").join(&id);
            if let Ok(mut c) = berth_shim::ShimClient::connect(&state.join("shim.sock")) {
                let _ = c.kill(libc::SIGKILL, true);
            }
            if let Some(pid) = std::fs::read_to_string(state.join("shim.pid"))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
                // SAFETY: plain kill of our own shim.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let runtime = Path::new(BERTHD.as_str())
                .parent()
                .unwrap()
                .join("berth-runtime");
            let _ = Command::new(runtime)
                .arg("--root")
                .arg(self.exec_root.path().join("runtime"))
                .args(["delete", "--force", &id])
                .output();
        }
        for m in mounts_under(self.root.path()) {
            let _ = Command::new("umount").arg("-l").arg(&m).status();
        }
        // Bridges stay with a daemon (as docker0 does); a test daemon's go
        // with its temp root, else every test run would leave one behind.
        for b in self.bridges() {
            for port in links_on_bridge(&b) {
                let _ = Command::new("ip").args(["link", "delete", &port]).output();
            }
            let _ = Command::new("ip").args(["link", "delete", &b]).output();
            // The packet rules' table is named after the default bridge;
            // left behind, its rules drop traffic for a subnet another
            // test's daemon may take next.
            if b.starts_with("berth") {
                let _ = Command::new("nft")
                    .args(["delete", "table", "ip", &b])
                    .output();
            }
        }
        // And its nftables table (and marked iptables rules, if any).
        if let Some(fw) = self.firewall() {
            let _ = fw.clear();
        }
    }
}

/// Processes whose command line names `dir` (shims get their state dir).
pub fn processes_mentioning(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit(')')
                .next()
                .is_some_and(|s| s.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmd).contains(&needle)
        })
        .collect()
}

pub fn mounts_under(dir: &Path) -> Vec<String> {
    let d = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let d = d.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&d))
        .map(String::from)
        .collect()
}

pub fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

/// Pushes to the fixture registry a copy of busybox whose config has
/// `volumes` as `VOLUME`s, under a repo only this test uses; returns its
/// reference. (Layers are cross-mounted, so only the config is new.)
pub fn busybox_with_volumes(repo: &str, volumes: &[&str]) -> String {
    let reg = REGISTRY_API;
    let accept = "Accept: application/vnd.oci.image.manifest.v1+json";
    let mut manifest: serde_json::Value = serde_json::from_str(&registry_curl(&[
        "-H",
        accept,
        &format!("{reg}/busybox/manifests/latest"),
    ]))
    .unwrap();
    let cfg_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: serde_json::Value = serde_json::from_str(&registry_curl(&[&format!(
        "{reg}/busybox/blobs/{cfg_digest}"
    )]))
    .unwrap();
    let vols: serde_json::Map<String, serde_json::Value> = volumes
        .iter()
        .map(|v| (v.to_string(), serde_json::json!({})))
        .collect();
    cfg["config"]["Volumes"] = serde_json::Value::Object(vols);
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        let d = l["digest"].as_str().unwrap();
        registry_curl(&[
            "-X",
            "POST",
            &format!("{reg}/{repo}/blobs/uploads/?mount={d}&from=busybox"),
        ]);
    }
    let digest = push_blob(repo, &cfg_bytes);
    manifest["config"]["digest"] = serde_json::json!(digest);
    manifest["config"]["size"] = serde_json::json!(cfg_bytes.len());
    put_manifest(repo, &manifest)
}

/// The fixture registry's API.
pub const REGISTRY_API: &str = "http://127.0.0.1:5000/v2";

/// curl that must succeed; returns stdout.
pub fn registry_curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .arg("-sSf")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    let sum = Command::new("sha256sum").arg(f.path()).output().unwrap();
    format!(
        "sha256:{}",
        String::from_utf8_lossy(&sum.stdout)
            .split(' ')
            .next()
            .unwrap()
    )
}

/// Uploads `data` as a blob of `repo` in the fixture registry (one
/// monolithic upload); returns its digest.
pub fn push_blob(repo: &str, data: &[u8]) -> String {
    let reg = REGISTRY_API;
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), data).unwrap();
    let digest = sha256_digest(data);
    let headers = registry_curl(&[
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{reg}/{repo}/blobs/uploads/"),
    ]);
    let loc = headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or_else(|| l.strip_prefix("location: "))
        })
        .unwrap()
        .trim()
        .to_string();
    let loc = if loc.starts_with("http") {
        loc
    } else {
        format!("http://127.0.0.1:5000{loc}")
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    registry_curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/octet-stream",
        "--data-binary",
        &format!("@{}", file.path().display()),
        &format!("{loc}{sep}digest={digest}"),
    ]);
    digest
}

/// Puts an OCI manifest as `repo:latest`; returns the reference to pull.
pub fn put_manifest(repo: &str, manifest: &serde_json::Value) -> String {
    registry_curl(&[
        "-X",
        "PUT",
        "-H",
        "Content-Type: application/vnd.oci.image.manifest.v1+json",
        "--data-binary",
        &manifest.to_string(),
        &format!("{REGISTRY_API}/{repo}/manifests/latest"),
    ]);
    format!("localhost:5000/{repo}:latest")
}

/// (VmHWM, VmRSS) of a process, in KiB.
pub fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |k: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// Polls `ok` every 50 ms until it holds, failing the test after `limit`;
/// returns how long it took.
pub fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    t0.elapsed()
}

/// The status line's code and the whole response, read until the server
/// closes (0 when there is no status line).
pub fn read_response(s: &mut UnixStream) -> (u16, String) {
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, resp)
}
