//! Root-only: the shim outlives the process that started it (the daemon),
//! keeps logging, records the exit with no client, and serves a new client.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use berth_shim::Started;
use common::*;

#[test]
fn survives_starter_death_and_serves_a_new_client() {
    let mut t = ShimUnderTest::new(
        "survive",
        &[
            "sh",
            "-c",
            "i=0; while [ ! -e /stop ]; do echo tick-$i; i=$((i+1)); sleep 0.05; done; exit 5",
        ],
        false,
    );
    // The "daemon": starts the shim, then lingers until we kill it.
    let out = t.state.path().join("started.json");
    let mut daemon = Command::new("sh")
        .arg("-c")
        .arg("\"$0\" \"$@\" > \"$STARTED_OUT\"; exec sleep 600")
        .arg(SHIM)
        .args(t.opts.to_args())
        .env("STARTED_OUT", &out)
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let ready = wait_until(Duration::from_secs(30), || {
        std::fs::read(&out).is_ok_and(|b| serde_json::from_slice::<Started>(&b).is_ok())
    });
    if !ready {
        let _ = daemon.kill();
        let _ = daemon.wait();
        panic!("shim did not report");
    }
    t.started = Some(serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap());
    let shim = t.shim_pid();
    let rss = vm_rss_kib(shim);
    println!("berth-shim VmRSS with a running container: {rss} KiB");
    daemon.kill().unwrap();
    daemon.wait().unwrap();

    assert!(alive(shim), "shim died with its starter");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(t.opts.socket_path())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "control socket is root-only");
    let count = |t: &ShimUnderTest| t.log_entries().len();
    let before = count(&t);
    assert!(
        wait_until(Duration::from_secs(20), || count(&t) > before + 10),
        "log stopped growing after the starter died"
    );
    // A new client attaches to the live output.
    let mut a = t
        .client()
        .into_stream(&berth_shim::Request::Attach {
            stdin: false,
            stdout: true,
            stderr: true,
            exec_id: None,
        })
        .unwrap();
    a.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let (stream, data) = a.read_frame().unwrap().expect("live output");
    assert_eq!(stream, 1);
    assert!(
        data.starts_with(b"tick-"),
        "{:?}",
        String::from_utf8_lossy(&data)
    );
    std::fs::write(t.bundle.path().join("rootfs/stop"), b"").unwrap();
    assert!(
        wait_until(Duration::from_secs(20), || t.opts.exit_path().exists()),
        "exit not recorded without a client"
    );
    let exit: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.opts.exit_path()).unwrap()).unwrap();
    assert_eq!(exit["exit_code"], 5);
    // A new "daemon" reconnects.
    let mut c = t.client();
    let st = c.state().unwrap();
    assert_eq!(
        (st.status.as_str(), st.exit.unwrap().exit_code),
        ("stopped", 5)
    );
    assert_eq!(c.wait(None).unwrap().exit_code, 5);
    let entries = t.log_entries();
    assert!(entries.iter().all(|e| e["stream"] == "stdout"));
    assert!(entries.len() > before + 10);
    // The stream ended with the container.
    while a.read_frame().unwrap().is_some() {}
    drop(c);
    t.finish_and_check_clean();
}

#[test]
fn auto_remove_and_linger_exit_without_a_client() {
    let mut t = ShimUnderTest::new("linger", &["sh", "-c", "exit 2"], false);
    t.opts.auto_remove = true;
    t.opts.linger = Some(Duration::from_millis(500));
    let s = t.launch().clone();
    assert!(
        wait_until(Duration::from_secs(20), || !alive(s.pid)),
        "shim did not exit after its linger"
    );
    assert!(!t.opts.state_dir.join("shim.sock").exists());
    let rt: Vec<_> = std::fs::read_dir(t.rt_root.path())
        .unwrap()
        .flatten()
        .collect();
    assert!(
        rt.is_empty(),
        "auto-remove left the container in the runtime"
    );
}
