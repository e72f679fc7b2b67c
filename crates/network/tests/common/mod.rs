//! Root-only helpers: each test runs in a private network namespace of its own
//! (its "host"), so its bridges, nftables table, iptables policy and
//! ip_forward touch nothing outside it, and no packet it sends can reach the
//! machine's uplink. "Containers" are further namespaces joined by veth pairs.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// Runs `f` on a thread that has its own, fresh network namespace (lo up).
/// Processes started from that thread inherit the namespace.
pub fn in_private_netns<F: FnOnce() + Send + 'static>(f: F) {
    require_root();
    let t = std::thread::spawn(move || {
        // SAFETY: unshare affects only this thread.
        assert_eq!(
            unsafe { libc::unshare(libc::CLONE_NEWNET) },
            0,
            "unshare(CLONE_NEWNET)"
        );
        sh("ip link set lo up");
        f();
    });
    if let Err(p) = t.join() {
        std::panic::resume_unwind(p);
    }
}

/// Runs a shell command, panicking with its output on failure.
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether a shell command succeeds.
pub fn ok(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", cmd])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

/// A unique short tag for names (netns names are global, under /run/netns).
pub fn tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{}{}",
        std::process::id() % 100000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A bridge with a gateway address in the current (private) namespace.
pub fn bridge(name: &str, gw_cidr: &str) {
    sh(&format!(
        "ip link add {name} type bridge && ip addr add {gw_cidr} dev {name} && ip link set {name} up"
    ));
}

/// A "container": named netns, veth to `bridge`, address, default route.
pub struct Ns {
    pub name: String,
}

impl Ns {
    pub fn new(bridge: &str, cidr: &str, gw: &str) -> Ns {
        Ns::joined(&format!("master {bridge} up"), cidr, gw)
    }

    /// A namespace joined to the current one by a plain veth (not a bridge);
    /// the host end gets `host_cidr`.
    pub fn direct(host_cidr: &str, cidr: &str, gw: &str) -> Ns {
        let ns = Ns::joined("up", cidr, gw);
        sh(&format!("ip addr add {host_cidr} dev v{}", ns.name));
        ns
    }

    /// veth host end `v<name>` (set up with `ip link set ... {host_end}`),
    /// container end eth0 with `cidr` and a default route via `gw`.
    fn joined(host_end: &str, cidr: &str, gw: &str) -> Ns {
        let name = format!("bt{}", tag());
        sh(&format!("ip netns add {name}"));
        let ns = Ns { name };
        let n = &ns.name;
        sh(&format!(
            "ip link add v{n} type veth peer name eth0 netns {n} && ip link set v{n} {host_end} && \
             ip -n {n} link set lo up && ip -n {n} link set eth0 up && \
             ip -n {n} addr add {cidr} dev eth0 && ip -n {n} route add default via {gw}"
        ));
        ns
    }

    pub fn exec(&self, cmd: &str) -> bool {
        ok(&format!("ip netns exec {} {cmd}", self.name))
    }

    pub fn output(&self, cmd: &str) -> String {
        sh(&format!("ip netns exec {} {cmd}", self.name))
    }

    /// `busybox httpd` on port 80 serving `body` at /index.html.
    pub fn httpd(&self, body: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("index.html"), body).unwrap();
        let child = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "busybox", "httpd", "-f", "-p", "80", "-h",
            ])
            .arg(dir.path())
            .spawn()
            .unwrap();
        // Wait until it listens.
        for _ in 0..50 {
            if self.exec("curl -sf -m 1 http://127.0.0.1/") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Server { child, _dir: dir }
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the veth, and with it ours.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub struct Server {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks what the safety rule demands before sending to a container address:
/// the bridge exists, is up and holds the gateway.
pub fn assert_bridge_ready(bridge: &str, gw: &str) {
    let out = sh(&format!("ip -o -4 addr show dev {bridge}"));
    assert!(
        out.contains(&format!("inet {gw}/")),
        "{bridge} lacks {gw}: {out}"
    );
    let link = sh(&format!("ip -o link show dev {bridge}"));
    assert!(
        link.contains(",UP") || link.contains("<UP"),
        "{bridge} down: {link}"
    );
}
