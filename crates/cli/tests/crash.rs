//! Crash safety of pull (root + the localhost:5000 registry; CI starts it
//! with scripts/setup.sh): berthd SIGKILLed at random instants in the
//! middle of a `berth pull` leaves a store that `system check` finds sound,
//! and the next pull (after the daemon restarts) completes with a rootfs
//! that verifies.

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::*;

const IMAGES: [&str; 2] = [
    "localhost:5000/debian:bookworm",
    "localhost:5000/multilayer:latest",
];

/// `system check` is local: it reads the store with no daemon involved.
fn check_sound(d: &Daemon) -> String {
    let out = berth(d, &["system", "check"]);
    assert_eq!(
        out.code, 0,
        "system check found problems:\n{}{}",
        out.stdout, out.stderr
    );
    assert!(out.stdout.contains(" 0 problems"), "{}", out.stdout);
    out.stdout
}

fn local(d: &Daemon, args: &[&str]) -> bool {
    let o = berth(d, args);
    eprintln!("berth {args:?} -> {}\n{}{}", o.code, o.stdout, o.stderr);
    o.code == 0
}

#[test]
fn sigkill_mid_pull_leaves_a_sound_store() {
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    // Calibrate on a daemon of its own: how long a whole pull of each takes,
    // so kill instants spread over each image's own pull.
    let full: Vec<Duration> = {
        let calib = Daemon::start();
        IMAGES
            .iter()
            .map(|img| {
                let t = Instant::now();
                berth_ok(&calib, &["pull", "-q", img]);
                t.elapsed()
            })
            .collect()
    };
    let mut d = Daemon::start();
    let mut rng = Rng::from_env("BERTH_CRASH_SEED");
    eprintln!("full pulls {full:?}; BERTH_CRASH_SEED={}", rng.seed);
    for round in 0..8 {
        let img = IMAGES[round % 2];
        // Kill anywhere from start-up to the end of this image's pull.
        let span = full[round % 2].as_micros() as u64;
        let at = Duration::from_micros(rng.next() % span.max(1));
        // From nothing each round (layers another round left half-done
        // stay): a pull of an image already present ends at once and the
        // kill would land after it.
        let _ = berth(&d, &["rmi", "-f", img]);
        let mut client = berth_cmd(&d, &["pull", "-q", img])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(at);
        d.kill9();
        let status = client.wait().unwrap();
        eprintln!("round {round}: berthd killed at {at:?} pulling {img} (client {status})");
        check_sound(&d);
        // The restarted daemon clears what the killed one left.
        d.spawn();
    }
    for img in IMAGES {
        berth_ok(&d, &["pull", "-q", img]);
    }
    let text = check_sound(&d);
    assert!(
        text.contains(" 0 garbage"),
        "a finished pull leaves no garbage:\n{text}"
    );

    // The rootfs verifies: multilayer's checksums and whiteouts, debian's
    // files against dpkg's md5sums.
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(local(
        &d,
        &["image", "mount", IMAGES[1], mnt.to_str().unwrap()]
    ));
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg("cd data && sha256sum -c --quiet SHA256SUMS && for p in $(cat ABSENT); do [ ! -e $p ]; done")
        .current_dir(&mnt)
        .status()
        .unwrap();
    assert!(local(&d, &["image", "umount", mnt.to_str().unwrap()]));
    assert!(ok.success(), "multilayer rootfs does not verify");
    assert!(local(
        &d,
        &["image", "mount", IMAGES[0], mnt.to_str().unwrap()]
    ));
    let out = std::process::Command::new("chroot")
        .arg(&mnt)
        .args(["dpkg", "--verify"])
        .output()
        .unwrap();
    assert!(local(&d, &["image", "umount", mnt.to_str().unwrap()]));
    let report = String::from_utf8_lossy(&out.stdout);
    // The fixture itself lacks this one directory (debootstrap removed it).
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| !l.ends_with("/var/lib/apt/lists/partial"))
        .collect();
    assert!(
        out.status.success() && bad.is_empty(),
        "dpkg --verify: {report}"
    );
    check_sound(&d);
}
