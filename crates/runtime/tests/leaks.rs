//! A thousand containers through the whole lifecycle leave nothing behind:
//! no mount, cgroup, process or state file.

mod common;

use common::*;

fn berth_cgroups(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for h in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        if let Ok(rd) = std::fs::read_dir(h.path().join("berth")) {
            for e in rd.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with(prefix) {
                    out.push(e.path().display().to_string());
                }
            }
        }
    }
    out
}

/// Host mounts that belong to these containers: under their bundle or state
/// root. (A total count would see other tests, which run in parallel.)
fn mounts_under(paths: &[&str]) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| paths.iter().any(|p| l.contains(p)))
        .map(str::to_string)
        .collect()
}

/// Processes whose command line mentions the bundle (container inits) or
/// that are children of this test process.
fn related_processes(bundle: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let ppid = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .nth(1)
            .unwrap_or("");
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        // A zombie is dead already; reaping it is its adopter's business
        // (this machine's pid 1 can take seconds).
        let zombie = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z');
        if !zombie && (ppid == me || String::from_utf8_lossy(&cmd).contains(bundle)) {
            out.push(format!("{pid}: {stat}"));
        }
    }
    out
}

#[test]
fn thousand_containers_leave_nothing_behind() {
    let n: usize = std::env::var("BERTH_LEAK_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rt = Runtime::new();
    let b = Bundle::busybox(&["true"]);
    b.write();
    let bundle = b.path().to_str().unwrap().to_string();
    let prefix = format!("leak-{}-", std::process::id());
    for i in 0..n {
        let id = format!("{prefix}{i}");
        if i % 2 == 0 {
            let (code, _, err) = rt.run(&b, &id);
            assert_eq!(code, 0, "run {i}: {err}");
        } else {
            rt.ok(&["create", "--bundle", &bundle, &id]);
            rt.ok(&["start", &id]);
            assert!(
                wait_until(5000, || rt.status(&id) == "stopped"),
                "container {i} did not stop"
            );
            rt.ok(&["delete", &id]);
        }
    }
    let root = rt.root.path().to_str().unwrap().to_string();
    assert_eq!(
        mounts_under(&[&bundle, &root]),
        Vec::<String>::new(),
        "mounts leaked"
    );
    assert_eq!(
        berth_cgroups(&prefix),
        Vec::<String>::new(),
        "cgroups leaked"
    );
    let entries: Vec<_> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        // The runtime's caches (compiled seccomp filters), not container state.
        .filter(|n| !n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(entries.is_empty(), "state left: {entries:?}");
    // Stopped inits are reaped by whoever adopted them; give that a moment.
    assert!(
        wait_until(3000, || related_processes(&bundle).is_empty()),
        "processes left: {:?}",
        related_processes(&bundle)
    );
}
