//! Packet rules for Berth's bridge networks, in Berth's own nftables table.
//!
//! The engine describes what it wants ([`DesiredState`]: its bridge networks
//! and the ports published into them) and [`Firewall::sync`] rebuilds the whole
//! table from that in one nft transaction (`delete table` + `table {...}` in one
//! script, so there is no moment without rules). The rules live in the kernel, so
//! they outlive berthd; a restarted daemon syncs the same state again and gets
//! the same table. When no network remains, the table is deleted.
//!
//! What the table does, per bridge network:
//! - masquerades the subnet going out of any other interface (not `internal`);
//! - drops forwarding between two Berth bridges (isolation), and anything that
//!   would leave an `internal` bridge or enter it from elsewhere;
//! - drops any packet for the subnet that would leave through an interface other
//!   than its bridge (if the bridge vanished, the default route would otherwise
//!   carry container-subnet traffic out of the uplink);
//! - DNATs published ports: in prerouting for traffic from outside and from
//!   containers (hairpin through a host address), in output for the host itself,
//!   127.0.0.1 included. Loopback-sourced packets may only leave through the bridge
//!   with `route_localnet` set on it and are masqueraded to the gateway, which is
//!   what Docker does with `--userland-proxy=false` and netavark does by default;
//!   packets arriving *on* the bridge for 127.0.0.0/8 are dropped so
//!   `route_localnet` opens nothing to the containers (CVE-2020-8558).
//!
//! Other firewalls: iptables rules and policies that are not Berth's are never
//! touched. If the iptables FORWARD policy is DROP (Docker sets it), bridged
//! traffic would die there, so Berth appends narrow ACCEPT rules for its own
//! bridges, commented `berth:<table>`, and deletes exactly those on cleanup.
//! `net.ipv4.ip_forward` is set to 1 when a non-internal network exists (bridged
//! egress needs it) and, like Docker, never set back: other users of the host may
//! rely on it by then. [`SyncReport`] says what was changed.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{NetworkError, Result};
use crate::ipam::Subnet;
use crate::ports::Protocol;

/// The table Berth's daemon uses; tests and private daemons pick their own.
pub const DEFAULT_TABLE: &str = "berth";

/// One Berth bridge network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeNetwork {
    pub bridge: String,
    pub subnet: Subnet,
    pub internal: bool,
}

impl BridgeNetwork {
    pub fn new(bridge: &str, subnet: Subnet, internal: bool) -> BridgeNetwork {
        BridgeNetwork {
            bridge: bridge.into(),
            subnet,
            internal,
        }
    }
}

/// One published port: host `host_ip:host_port` → `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortForward {
    pub proto: Protocol,
    /// `None`: every host address (Docker's 0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
    /// The bridge the container sits on (for hairpin masquerade and route_localnet).
    pub bridge: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    pub networks: Vec<BridgeNetwork>,
    pub forwards: Vec<PortForward>,
}

/// What a sync changed outside Berth's own table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// `net.ipv4.ip_forward` was 0 and is now 1.
    pub enabled_ip_forward: bool,
    /// iptables FORWARD accept rules Berth added (the FORWARD policy was DROP).
    pub iptables_rules_added: usize,
    /// Berth's iptables rules deleted because no longer wanted.
    pub iptables_rules_removed: usize,
    /// The table was deleted (no networks left).
    pub table_removed: bool,
}

/// Berth's nftables table, driven through the `nft` binary.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
    nft: PathBuf,
    iptables: Option<PathBuf>,
}

impl Firewall {
    /// `table`: the nftables table name (letters, digits, `_`; up to 32).
    pub fn new(table: &str) -> Result<Firewall> {
        if table.is_empty()
            || table.len() > 32
            || !table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || table.as_bytes()[0].is_ascii_digit()
        {
            return Err(NetworkError::InvalidArgument(format!(
                "nftables table name {table:?}: letters, digits and '_', not starting with a digit, at most 32"
            )));
        }
        Ok(Firewall {
            table: table.to_string(),
            nft: find_binary("nft").unwrap_or_else(|| PathBuf::from("nft")),
            iptables: find_binary("iptables"),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Checks that `nft` exists and the kernel accepts a Berth table (creates and
    /// deletes a scratch table). The error says which, so the caller can fall back
    /// to the userland proxy and tell the user why.
    pub fn probe(&self) -> Result<()> {
        let scratch = format!("{}_probe", &self.table[..self.table.len().min(26)]);
        let script = format!(
            "table ip {scratch} {{\n  chain c {{\n    type nat hook output priority -100; policy accept;\n  }}\n}}\ndelete table ip {scratch}\n"
        );
        self.run_nft(&script).map_err(|e| match e {
            NetworkError::Os { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                NetworkError::NotFound(
                    "nftables unavailable: no `nft` binary (install the nftables package)".into(),
                )
            }
            other => NetworkError::NotFound(format!("nftables unavailable: {other}")),
        })
    }

    /// The nft script that replaces Berth's table with `state` (pure; tested).
    pub fn render(&self, state: &DesiredState) -> Result<String> {
        validate(state)?;
        let t = &self.table;
        // `table ... {}` first so `delete` never fails on a fresh host.
        let mut s = format!("table ip {t} {{}}\ndelete table ip {t}\n");
        if state.networks.is_empty() {
            return Ok(s);
        }
        let internal: Vec<&BridgeNetwork> = state.networks.iter().filter(|n| n.internal).collect();
        let bridges: Vec<&str> = state.networks.iter().map(|n| n.bridge.as_str()).collect();
        let _ = writeln!(s, "table ip {t} {{");

        // Forwarding: isolation between bridges, internal networks closed.
        s.push_str("  chain filter_forward {\n    type filter hook forward priority filter; policy accept;\n");
        for n in &state.networks {
            let b = &n.bridge;
            let others: Vec<&str> = bridges.iter().copied().filter(|o| *o != b).collect();
            if !others.is_empty() {
                let _ = writeln!(s, "    iifname \"{b}\" oifname {} drop", set_of(&others));
            }
        }
        for n in &internal {
            let b = &n.bridge;
            let _ = writeln!(s, "    iifname \"{b}\" oifname != \"{b}\" drop");
            let _ = writeln!(s, "    oifname \"{b}\" iifname != \"{b}\" drop");
        }
        s.push_str("  }\n");

        // Packets for a subnet leave only through its bridge, forwarded or local.
        // In postrouting the output device is final (in the output hook it is
        // the one routed before DNAT, e.g. lo for 127.0.0.1).
        s.push_str("  chain filter_postrouting {\n    type filter hook postrouting priority 100; policy accept;\n");
        for n in &state.networks {
            let _ = writeln!(
                s,
                "    ip daddr {} oifname != \"{}\" drop",
                cidr(n),
                n.bridge
            );
        }
        s.push_str("  }\n");

        // route_localnet must not let containers address the host's loopback.
        s.push_str("  chain filter_prerouting {\n    type filter hook prerouting priority raw; policy accept;\n");
        let _ = writeln!(
            s,
            "    iifname {} ip daddr 127.0.0.0/8 drop",
            set_of(&bridges)
        );
        s.push_str("  }\n");

        // Published ports.
        s.push_str("  chain ports {\n");
        for f in forwards(state) {
            let proto = f.proto.as_str();
            let daddr = match f.host_ip {
                Some(ip) => format!("ip daddr {ip} "),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "    {daddr}{proto} dport {} dnat to {}:{}",
                f.host_port, f.container_ip, f.container_port
            );
        }
        s.push_str("  }\n");
        s.push_str("  chain nat_prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    fib daddr type local jump ports\n  }\n");
        s.push_str("  chain nat_output {\n    type nat hook output priority -100; policy accept;\n    fib daddr type local jump ports\n  }\n");

        s.push_str("  chain nat_postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n");
        for n in state.networks.iter().filter(|n| !n.internal) {
            let b = &n.bridge;
            let _ = writeln!(s, "    ip saddr {} oifname != \"{b}\" masquerade", cidr(n));
            // Host loopback → container (DNAT in output): reply to the gateway.
            let _ = writeln!(s, "    oifname \"{b}\" ip saddr 127.0.0.0/8 masquerade");
            // Container → host address → container on the same bridge: without
            // this the reply would go straight back, un-NATed, and be dropped.
            let _ = writeln!(
                s,
                "    oifname \"{b}\" iifname \"{b}\" ct status dnat masquerade"
            );
        }
        s.push_str("  }\n}\n");
        Ok(s)
    }

    /// Makes the kernel's rules match `state` (idempotent); see the module docs
    /// for what it changes outside the table.
    pub fn sync(&self, state: &DesiredState) -> Result<SyncReport> {
        let script = self.render(state)?;
        self.run_nft(&script)?;
        let mut report = SyncReport {
            table_removed: state.networks.is_empty(),
            ..SyncReport::default()
        };
        if state.networks.iter().any(|n| !n.internal) {
            report.enabled_ip_forward = enable_ip_forward()?;
        }
        for f in forwards(state) {
            // The bridge may be gone (the engine removes it just after); the
            // rules are harmless then and the next sync drops them.
            let path = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", f.bridge);
            if std::path::Path::new(&path).exists() {
                std::fs::write(&path, "1")
                    .map_err(|e| NetworkError::os(format!("write {path}"), e))?;
            }
        }
        let (added, removed) = self.sync_iptables(state)?;
        report.iptables_rules_added = added;
        report.iptables_rules_removed = removed;
        Ok(report)
    }

    /// Removes everything Berth put in: its table and its iptables rules.
    pub fn clear(&self) -> Result<SyncReport> {
        self.sync(&DesiredState::default())
    }

    /// The table as `nft list` prints it, or `None` when it does not exist.
    pub fn list(&self) -> Result<Option<String>> {
        let out = Command::new(&self.nft)
            .args(["list", "table", "ip", &self.table])
            .output()
            .map_err(|e| NetworkError::os(format!("run {}", self.nft.display()), e))?;
        if out.status.success() {
            return Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()));
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("No such file or directory") {
            return Ok(None);
        }
        Err(NetworkError::os(
            format!("nft list table ip {}", self.table),
            std::io::Error::other(err.trim().to_string()),
        ))
    }

    /// Deletes other Berth tables (`berth*`) none of whose bridges exists any
    /// more: left by a daemon that died with its bridges removed (test hosts run
    /// many daemons). Such a table would still hold "this subnet leaves only
    /// through bridge X" and black-hole the subnet for the next daemon that
    /// picks it. A live daemon always has its default bridge, so its table is
    /// never touched; non-Berth tables are never looked at. Returns the names.
    pub fn remove_stale_tables(&self) -> Result<Vec<String>> {
        let out = Command::new(&self.nft)
            .args(["list", "tables", "ip"])
            .output()
            .map_err(|e| NetworkError::os(format!("run {}", self.nft.display()), e))?;
        let mut removed = Vec::new();
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(name) = line.trim().strip_prefix("table ip ") else {
                continue;
            };
            if name == self.table || !name.starts_with("berth") || name.ends_with("_probe") {
                continue;
            }
            let Ok(other) = Firewall::new(name) else {
                continue;
            };
            let Some(text) = other.list()? else { continue };
            let bridges = quoted_names(&text);
            if bridges.is_empty() || bridges.iter().any(|b| link_exists(b)) {
                continue;
            }
            other.clear()?;
            removed.push(name.to_string());
        }
        Ok(removed)
    }

    /// Berth's iptables FORWARD rules now present (as `iptables -S` prints them).
    pub fn iptables_rules(&self) -> Result<Vec<String>> {
        let Some(ipt) = &self.iptables else {
            return Ok(Vec::new());
        };
        let (_, rules) = iptables_forward(ipt)?;
        let mark = self.mark();
        Ok(rules
            .into_iter()
            .filter(|r| r.split_whitespace().any(|w| w.trim_matches('"') == mark))
            .collect())
    }

    fn mark(&self) -> String {
        format!("berth:{}", self.table)
    }

    fn sync_iptables(&self, state: &DesiredState) -> Result<(usize, usize)> {
        let Some(ipt) = &self.iptables else {
            return Ok((0, 0));
        };
        let (policy_drop, _) = iptables_forward(ipt)?;
        let mark = self.mark();
        let mut wanted: Vec<Vec<String>> = Vec::new();
        if policy_drop {
            for n in &state.networks {
                let b = n.bridge.as_str();
                let mut rules: Vec<Vec<&str>> = vec![vec!["-i", b, "-o", b]];
                if !n.internal {
                    rules.push(vec!["-i", b]);
                    rules.push(vec![
                        "-o",
                        b,
                        "-m",
                        "conntrack",
                        "--ctstate",
                        "RELATED,ESTABLISHED,DNAT",
                    ]);
                }
                for r in rules {
                    let mut v: Vec<String> = vec!["-A".into(), "FORWARD".into()];
                    v.extend(r.into_iter().map(String::from));
                    v.extend(
                        ["-m", "comment", "--comment", &mark, "-j", "ACCEPT"].map(String::from),
                    );
                    wanted.push(v);
                }
            }
        }
        let present = self.iptables_rules()?;
        let present: Vec<Vec<String>> = present
            .iter()
            // Our comment has no spaces, so splitting on whitespace is exact once
            // iptables' quotes are dropped.
            .map(|r| {
                r.split_whitespace()
                    .map(|w| w.trim_matches('"').to_string())
                    .collect()
            })
            .collect();
        let mut removed = 0;
        for rule in &present {
            if !wanted.iter().any(|w| same_rule(w, rule)) {
                let mut args = rule.clone();
                args[0] = "-D".into();
                run_iptables(ipt, &args)?;
                removed += 1;
            }
        }
        let mut added = 0;
        for rule in &wanted {
            if !present.iter().any(|p| same_rule(rule, p)) {
                run_iptables(ipt, rule)?;
                added += 1;
            }
        }
        Ok((added, removed))
    }

    fn run_nft(&self, script: &str) -> Result<()> {
        let mut child = Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| NetworkError::os(format!("run {}", self.nft.display()), e))?;
        child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(script.as_bytes())
            .map_err(|e| NetworkError::os("write nft script", e))?;
        let out = child
            .wait_with_output()
            .map_err(|e| NetworkError::os("wait for nft", e))?;
        if !out.status.success() {
            return Err(NetworkError::os(
                format!("nft rules for table ip {}", self.table),
                std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
            ));
        }
        Ok(())
    }
}

/// In the calling thread's network namespace (not /sys, which shows the
/// namespace sysfs was mounted from).
fn link_exists(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: a NUL-terminated name; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(c.as_ptr()) != 0 }
}

/// The interface names quoted in a listed table (`oifname "br-x"`).
fn quoted_names(table: &str) -> Vec<String> {
    let mut names: Vec<String> = table
        .split('"')
        .skip(1)
        .step_by(2)
        .filter(|n| !n.is_empty() && n.len() <= 15 && !n.contains(' '))
        .map(String::from)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Forwards whose network is known and not internal (Docker publishes nothing
/// from internal networks).
fn forwards(state: &DesiredState) -> impl Iterator<Item = &PortForward> {
    state.forwards.iter().filter(|f| {
        state
            .networks
            .iter()
            .any(|n| n.bridge == f.bridge && !n.internal)
    })
}

fn cidr(n: &BridgeNetwork) -> String {
    n.subnet.to_string()
}

fn set_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!("{{ {} }}", quoted.join(", "))
}

/// Interface names go into an nft script and iptables argv: the kernel's rules
/// (at most 15 bytes, no '/', whitespace or quotes) keep both safe.
fn validate(state: &DesiredState) -> Result<()> {
    // The same check network create applies (one rule, so a name that
    // passed there cannot fail every later sync here).
    let check_if = |name: &str| -> Result<()> {
        crate::netlink::check_ifname(name)
            .map_err(|e| NetworkError::InvalidArgument(format!("bridge name: {e}")))
    };
    for n in &state.networks {
        check_if(&n.bridge)?;
        // Subnet::new keeps host bits zero; a hand-made one could carry them.
        if n.subnet.prefix > 32 || Subnet::new(n.subnet.addr, n.subnet.prefix) != n.subnet {
            return Err(NetworkError::InvalidArgument(format!(
                "subnet {}/{} of bridge {}: host bits set or prefix above 32",
                n.subnet.addr, n.subnet.prefix, n.bridge
            )));
        }
    }
    for f in &state.forwards {
        check_if(&f.bridge)?;
        if f.host_port == 0 || f.container_port == 0 {
            return Err(NetworkError::InvalidArgument(format!(
                "published port {:?}: port 0",
                f
            )));
        }
    }
    Ok(())
}

/// Compares `-A FORWARD ...` argv with a rule as `iptables -S` prints it
/// (which may reorder nothing but may quote the comment).
fn same_rule(a: &[String], b: &[String]) -> bool {
    let norm = |v: &[String]| -> Vec<String> {
        v.iter()
            .skip(1)
            .map(|w| w.trim_matches('"').to_string())
            .collect()
    };
    norm(a) == norm(b)
}

/// (FORWARD policy is DROP, the FORWARD rules as `-A ...` lines).
fn iptables_forward(ipt: &PathBuf) -> Result<(bool, Vec<String>)> {
    let out = Command::new(ipt)
        .args(["-w", "5", "-S", "FORWARD"])
        .output()
        .map_err(|e| NetworkError::os(format!("run {}", ipt.display()), e))?;
    if !out.status.success() {
        return Err(NetworkError::os(
            "iptables -S FORWARD",
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let policy_drop = text.lines().any(|l| l.trim() == "-P FORWARD DROP");
    let rules = text
        .lines()
        .filter(|l| l.starts_with("-A FORWARD"))
        .map(String::from)
        .collect();
    Ok((policy_drop, rules))
}

fn run_iptables(ipt: &PathBuf, args: &[String]) -> Result<()> {
    let out = Command::new(ipt)
        .args(["-w", "5"])
        .args(args)
        .output()
        .map_err(|e| NetworkError::os(format!("run {}", ipt.display()), e))?;
    if !out.status.success() {
        return Err(NetworkError::os(
            format!("iptables {}", args.join(" ")),
            std::io::Error::other(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        ));
    }
    Ok(())
}

/// Returns whether it changed the setting.
fn enable_ip_forward() -> Result<bool> {
    const PATH: &str = "/proc/sys/net/ipv4/ip_forward";
    let now =
        std::fs::read_to_string(PATH).map_err(|e| NetworkError::os(format!("read {PATH}"), e))?;
    if now.trim() == "1" {
        return Ok(false);
    }
    std::fs::write(PATH, "1").map_err(|e| NetworkError::os(format!("write {PATH}"), e))?;
    Ok(true)
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(bridge: &str, subnet: [u8; 4], internal: bool) -> BridgeNetwork {
        BridgeNetwork::new(bridge, Subnet::new(Ipv4Addr::from(subnet), 24), internal)
    }

    #[test]
    fn empty_state_only_deletes_the_table() {
        let fw = Firewall::new("berth_t").unwrap();
        let s = fw.render(&DesiredState::default()).unwrap();
        assert_eq!(s, "table ip berth_t {}\ndelete table ip berth_t\n");
    }

    #[test]
    fn rules_for_two_networks_and_a_port() {
        let fw = Firewall::new("berth").unwrap();
        let state = DesiredState {
            networks: vec![
                net("br-a", [10, 1, 0, 0], false),
                net("br-b", [10, 2, 0, 0], true),
            ],
            forwards: vec![
                PortForward {
                    proto: Protocol::Tcp,
                    host_ip: Some(Ipv4Addr::LOCALHOST),
                    host_port: 8080,
                    container_ip: Ipv4Addr::new(10, 1, 0, 2),
                    container_port: 80,
                    bridge: "br-a".into(),
                },
                // On the internal network: not published.
                PortForward {
                    proto: Protocol::Udp,
                    host_ip: None,
                    host_port: 5353,
                    container_ip: Ipv4Addr::new(10, 2, 0, 2),
                    container_port: 53,
                    bridge: "br-b".into(),
                },
            ],
        };
        let s = fw.render(&state).unwrap();
        assert!(
            s.contains("iifname \"br-a\" oifname { \"br-b\" } drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"br-b\" oifname { \"br-a\" } drop"),
            "{s}"
        );
        assert!(
            s.contains("iifname \"br-b\" oifname != \"br-b\" drop"),
            "{s}"
        );
        assert!(
            !s.contains("iifname \"br-a\" oifname != \"br-a\" drop"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.1.0.0/24 oifname != \"br-a\" masquerade"),
            "{s}"
        );
        assert!(
            !s.contains("ip saddr 10.2.0.0/24"),
            "internal is not masqueraded: {s}"
        );
        assert!(
            s.contains("ip daddr 127.0.0.1 tcp dport 8080 dnat to 10.1.0.2:80"),
            "{s}"
        );
        assert!(!s.contains("5353"), "{s}");
        assert!(
            s.contains("ip daddr 10.2.0.0/24 oifname != \"br-b\" drop"),
            "{s}"
        );
    }

    #[test]
    fn bad_names_and_subnets_are_refused() {
        assert!(Firewall::new("bad name").is_err());
        assert!(Firewall::new("").is_err());
        assert!(Firewall::new("1abc").is_err());
        let fw = Firewall::new("berth").unwrap();
        let bad = DesiredState {
            networks: vec![net("br\"; flush ruleset", [10, 1, 0, 0], false)],
            forwards: vec![],
        };
        let e = fw.render(&bad).unwrap_err().to_string();
        assert!(e.contains("bridge name"), "{e}");
        let mut host_bits = net("br-a", [10, 1, 0, 0], false);
        host_bits.subnet.addr = Ipv4Addr::new(10, 1, 0, 1);
        let bad = DesiredState {
            networks: vec![host_bits],
            forwards: vec![],
        };
        let e = fw.render(&bad).unwrap_err().to_string();
        assert!(e.contains("host bits"), "{e}");
    }

    #[test]
    fn iptables_rule_comparison_ignores_quotes_and_verb() {
        let a: Vec<String> = "-A FORWARD -i br -m comment --comment berth:x -j ACCEPT"
            .split(' ')
            .map(String::from)
            .collect();
        let b: Vec<String> = "-A FORWARD -i br -m comment --comment \"berth:x\" -j ACCEPT"
            .split(' ')
            .map(String::from)
            .collect();
        assert!(same_rule(&a, &b));
        let c: Vec<String> = "-A FORWARD -o br -m comment --comment berth:x -j ACCEPT"
            .split(' ')
            .map(String::from)
            .collect();
        assert!(!same_rule(&a, &c));
    }
}
