//! The CLI's tests drive `berth` against a private berthd: the daemon
//! helpers are the API tests' own (one copy), plus runners for `berth`.

#![allow(dead_code)]

#[path = "../../../api/tests/common/mod.rs"]
pub mod common;

use std::io::Write;
use std::process::{Command, Stdio};

pub use common::*;

pub const BERTH: &str = env!("CARGO_BIN_EXE_berth");

/// `berth` aimed at `d`: its socket, and its dirs should it need starting.
pub fn berth_cmd(d: &Daemon, args: &[&str]) -> Command {
    let mut c = Command::new(BERTH);
    c.arg("-H")
        .arg(format!("unix://{}", d.socket().display()))
        .arg("--root")
        .arg(d.root.path())
        .arg("--exec-root")
        .arg(d.exec_root.path())
        .args(args)
        .env("DOCKER_CONFIG", d.docker_config.path())
        .env_remove("BERTH_HOST")
        .env_remove("DOCKER_HOST");
    c
}

pub fn berth(d: &Daemon, args: &[&str]) -> Output {
    berth_stdin(d, args, None)
}

/// `berth` with `input` on stdin (None: stdin is /dev/null).
pub fn berth_stdin(d: &Daemon, args: &[&str], input: Option<&[u8]>) -> Output {
    let mut c = berth_cmd(d, args);
    c.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    if let Some(i) = input {
        child.stdin.take().unwrap().write_all(i).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `berth` that must succeed; returns stdout.
pub fn berth_ok(d: &Daemon, args: &[&str]) -> String {
    let o = berth(d, args);
    assert_eq!(
        o.code,
        0,
        "berth {args:?} failed ({}): {}\n--- berthd log:\n{}",
        o.code,
        o.stderr,
        d.log()
    );
    o.stdout
}

/// The header line of a table.
pub fn header(table: &str) -> &str {
    table.lines().next().unwrap_or("")
}

/// A table's column titles, whatever their widths (which follow values
/// that change between two calls, such as "Up 1 second").
pub fn header_cols(table: &str) -> Vec<String> {
    header(table)
        .split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(String::from)
        .collect()
}

/// xorshift64 for kill instants; seeded from `var` (to replay a run) or
/// the clock. Print [`Rng::seed`] so a failure can be replayed.
pub struct Rng {
    state: u64,
    pub seed: u64,
}

impl Rng {
    pub fn from_env(var: &str) -> Rng {
        let seed = std::env::var(var)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        Rng { state: seed, seed }
    }

    pub fn next(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Uniform enough in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A loopback address with a port free a moment ago (for a server the
/// test starts).
pub fn free_loopback_addr() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}
