//! Helpers for network tests: private subnets, inspect, the bridge safety
//! check before any traffic to a container address.

#![allow(dead_code)]

use std::process::Command;

use serde_json::Value;

use super::{Daemon, IMAGE};

/// A /24 of our own: 10.(100+pid%100).(pid/100%64*4+k).0/24, k < 4.
pub fn subnet(k: u32) -> (String, String) {
    let pid = std::process::id();
    let (a, b) = (100 + pid % 100, (pid / 100 % 64) * 4 + k);
    (format!("10.{a}.{b}.0/24"), format!("10.{a}.{b}"))
}

pub fn inspect(d: &Daemon, args: &[&str]) -> Value {
    let mut a = vec!["inspect"];
    a.extend_from_slice(args);
    let v: Value = serde_json::from_str(&d.ok(&a)).unwrap();
    v[0].clone()
}

pub fn network(d: &Daemon, name: &str) -> Value {
    inspect(d, &["--type", "network", name])
}

/// The safety check before any traffic toward a container address.
pub fn assert_bridge_ready(bridge: &str, gateway: &str) {
    let link = Command::new("ip")
        .args(["-o", "link", "show", bridge])
        .output()
        .unwrap();
    let link = String::from_utf8_lossy(&link.stdout);
    assert!(
        link.contains(&format!(": {bridge}:")) && link.contains(",UP"),
        "bridge {bridge} missing or down: {link}"
    );
    let addr = Command::new("ip")
        .args(["-o", "-4", "addr", "show", "dev", bridge])
        .output()
        .unwrap();
    let addr = String::from_utf8_lossy(&addr.stdout);
    assert!(
        addr.contains(&format!("inet {gateway}/")),
        "bridge {bridge} lacks gateway {gateway}: {addr}"
    );
}

pub fn bridge_of(net: &Value) -> String {
    let id = net["Id"].as_str().unwrap();
    net["Options"]["com.docker.network.bridge.name"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| format!("br-{}", &id[..12]))
}

/// `docker run -d --name <name> --network <net> busybox sleep <secs>`.
pub fn run_on(d: &Daemon, name: &str, net: &str, secs: &str) {
    d.ok(&[
        "run",
        "-d",
        "--name",
        name,
        "--network",
        net,
        IMAGE,
        "sleep",
        secs,
    ]);
}

pub fn ip_of(d: &Daemon, container: &str, net: &str) -> String {
    inspect(d, &[container])["NetworkSettings"]["Networks"][net]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string()
}
