//! The packet side of networks, as the engine keeps it: which bridge networks
//! and published ports Berth's nftables table must hold, the embedded DNS
//! server of each user-defined network and its names, and (where nftables is
//! unavailable) the userland proxies standing in for DNAT rules.
//!
//! The table is rebuilt from this state on every change ([`Firewall::sync`]);
//! after a daemon restart the state is rebuilt from the container records
//! first ([`Engine::packet_restore`]) and synced once, so the rules the kernel
//! kept are replaced by identical ones and none is missing in between.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use berth_network::dns::{DnsConfig, DnsServer};
use berth_network::firewall::{BridgeNetwork, DesiredState, Firewall, PortForward};
use berth_network::ports::{self, PortBinding, PortRequest, Protocol, PublishedPort};
use berth_network::proxy::{self, ProxySpec};
use serde_json::{Value, json};

use super::Network;
use super::hooks::EndpointInfo;
use crate::error::{EngineError, Result};
use crate::{Container, Engine, Paths};

pub(crate) type Ports = BTreeMap<String, Option<Vec<PortBinding>>>;

/// A container's published ports and where they lead.
#[derive(Debug, Clone)]
struct Published {
    network_id: String,
    forwards: Vec<PortForward>,
    /// Userland proxies (nftables unavailable): pids to stop.
    proxies: Vec<u32>,
}

pub(crate) struct PacketState {
    /// `None`: nftables unavailable (`fallback` says why); ports go through
    /// berth-proxy processes, and there is no masquerade or isolation.
    firewall: Option<Firewall>,
    pub(crate) fallback: Option<String>,
    proxy_bin: PathBuf,
    /// `<exec-root>/proxies/<container id>`: pids of its proxies, so a
    /// restarted daemon can still stop them.
    proxy_dir: PathBuf,
    /// Where the embedded DNS sends names it does not know: the host's
    /// resolvers with `BERTH_DNS_FORWARD=1`, else nowhere (REFUSED at once).
    dns_upstream: Vec<SocketAddr>,
    /// False while the daemon starts: hooks record, the sync waits for
    /// [`Engine::packet_restore`].
    ready: bool,
    /// By network id.
    networks: BTreeMap<String, BridgeNetwork>,
    /// By container id.
    published: BTreeMap<String, Published>,
    /// By network id (user-defined bridge networks).
    dns: HashMap<String, DnsServer>,
    /// Network id → container id → (names, address).
    names: HashMap<String, BTreeMap<String, (Vec<String>, Ipv4Addr)>>,
}

/// The nftables table of a daemon: `berth` for the usual root, the root's
/// default-bridge name otherwise, so test daemons never touch each other's rules.
pub fn table_name(root: &std::path::Path) -> String {
    let b = super::default_bridge_name(root);
    if b == "berth0" { "berth".into() } else { b }
}

impl PacketState {
    pub(crate) fn new(paths: &Paths) -> PacketState {
        let proxy_bin = paths
            .shim
            .parent()
            .map(|d| d.join("berth-proxy"))
            .unwrap_or_else(|| PathBuf::from("berth-proxy"));
        let (firewall, fallback) = if std::env::var("BERTH_NFTABLES").as_deref() == Ok("0") {
            (
                None,
                Some("nftables disabled (BERTH_NFTABLES=0)".to_string()),
            )
        } else {
            match Firewall::new(&table_name(&paths.root)).and_then(|fw| fw.probe().map(|()| fw)) {
                Ok(fw) => (Some(fw), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        if let Some(why) = &fallback {
            eprintln!(
                "berthd: {why}; published ports use the userland proxy, and bridge networks get no masquerade or isolation rules"
            );
        }
        PacketState {
            firewall,
            fallback,
            proxy_bin,
            proxy_dir: paths.exec_root.join("proxies"),
            dns_upstream: if std::env::var("BERTH_DNS_FORWARD").as_deref() == Ok("1") {
                host_resolvers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
            } else {
                Vec::new()
            },
            ready: false,
            networks: BTreeMap::new(),
            published: BTreeMap::new(),
            dns: HashMap::new(),
            names: HashMap::new(),
        }
    }

    fn desired(&self) -> DesiredState {
        DesiredState {
            networks: self.networks.values().cloned().collect(),
            forwards: self
                .published
                .values()
                .flat_map(|p| p.forwards.iter().cloned())
                .collect(),
        }
    }

    fn sync(&self) -> Result<()> {
        let Some(fw) = &self.firewall else {
            return Ok(());
        };
        if !self.ready {
            return Ok(());
        }

        let report = fw.sync(&self.desired())?;
        if report.enabled_ip_forward {
            eprintln!(
                "berthd: set net.ipv4.ip_forward=1 (bridged containers need it to reach out)"
            );
        }
        if report.iptables_rules_added > 0 {
            eprintln!(
                "berthd: iptables FORWARD policy is DROP: added {} accept rule(s) for Berth's bridges (comment berth:{})",
                report.iptables_rules_added,
                fw.table()
            );
        }
        Ok(())
    }

    /// Before our rules claim a subnet (startup, a new network): a dead
    /// daemon's table may still claim the same one for a bridge that is gone.
    fn remove_stale_tables(&self) {
        let Some(fw) = &self.firewall else { return };
        match fw.remove_stale_tables() {
            Ok(gone) if !gone.is_empty() => {
                eprintln!("berthd: removed stale nftables tables of dead Berth daemons: {gone:?}")
            }
            Ok(_) => {}
            Err(e) => eprintln!("berthd: looking for stale Berth tables: {e}"),
        }
    }

    fn taken(&self) -> HashSet<(Protocol, u16)> {
        self.published
            .values()
            .flat_map(|p| p.forwards.iter().map(|f| (f.proto, f.host_port)))
            .collect()
    }

    fn update_dns(&self, net_id: &str) {
        let Some(srv) = self.dns.get(net_id) else {
            return;
        };
        let mut map: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for (names, ip) in self.names.get(net_id).into_iter().flat_map(|m| m.values()) {
            for n in names {
                map.entry(n.to_ascii_lowercase()).or_default().push(*ip);
            }
        }
        srv.set_records(map);
    }

    fn withdraw(&mut self, container_id: &str) {
        if let Some(p) = self.published.remove(container_id) {
            stop_proxies(&p.proxies);
            if !p.proxies.is_empty() {
                let _ = std::fs::remove_file(self.proxy_dir.join(container_id));
            }
        }
    }

    fn save_proxies(&self, container_id: &str, pids: &[u32]) -> Result<()> {
        let text: Vec<String> = pids.iter().map(u32::to_string).collect();
        let path = self.proxy_dir.join(container_id);
        std::fs::create_dir_all(&self.proxy_dir)
            .and_then(|()| std::fs::write(&path, text.join(" ")))
            .map_err(|e| crate::error::io_err("write", &path, e))
    }

    /// Proxy pids recorded by an earlier daemon, by container id.
    fn saved_proxies(&self) -> BTreeMap<String, Vec<u32>> {
        let mut out = BTreeMap::new();
        for e in std::fs::read_dir(&self.proxy_dir)
            .into_iter()
            .flatten()
            .flatten()
        {
            let pids = std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            out.insert(e.file_name().to_string_lossy().into_owned(), pids);
        }
        out
    }
}

/// `nameserver` lines of a resolv.conf, port 53. Loopback ones included: the
/// DNS server runs on the host, where they answer.
fn host_resolvers(resolv: &str) -> Vec<SocketAddr> {
    resolv
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Stops proxies by pid, only if the pid still is a berth-proxy (pids get reused).
fn stop_proxies(pids: &[u32]) {
    for pid in pids {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "berth-proxy" {
            // SAFETY: kill on a pid checked just above to be one of our proxies.
            unsafe { libc::kill(*pid as i32, libc::SIGTERM) };
        }
    }
}

/// The requested publications of a container: `-p`, plus every exposed port
/// for `-P`. IPv6 host addresses are refused (Berth's rules are IPv4).
fn requests(
    bindings: &Ports,
    publish_all: bool,
    exposed: &[String],
) -> Result<(Vec<PortRequest>, Vec<ports::ContainerPort>)> {
    let mut reqs = ports::parse_port_bindings(bindings)?;
    let exposed = ports::parse_exposed(exposed)?;
    if publish_all {
        let all = ports::publish_all(&exposed, &reqs);
        reqs.extend(all);
    }
    if let Some(r) = reqs
        .iter()
        .find(|r| matches!(r.host_ip, Some(IpAddr::V6(_))))
    {
        return Err(EngineError::InvalidArgument(format!(
            "publishing {} on IPv6 host address {}: Berth publishes on IPv4 only",
            r.container,
            r.host_ip.expect("checked")
        )));
    }
    Ok((reqs, exposed))
}

/// `NetworkSettings.Ports`: published ports with their bindings, exposed but
/// unpublished ones as null (what `docker port` and `docker ps` read).
fn ports_map(published: &[PublishedPort], exposed: &[ports::ContainerPort]) -> Ports {
    let mut map = Ports::new();
    for c in exposed {
        map.insert(c.to_string(), None);
    }
    for p in published {
        let key = format!("{}/{}", p.container_port, p.proto);
        let b = PortBinding {
            host_ip: p
                .host_ip
                .map_or_else(|| "0.0.0.0".into(), |i| i.to_string()),
            host_port: p.host_port.to_string(),
        };
        map.entry(key)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(b);
    }
    map
}

/// `GET /containers/json`'s `Ports`: one entry per binding, `{PrivatePort,
/// Type}` for exposed ports nobody published.
pub fn summary_ports(ports: &Ports) -> Vec<Value> {
    let mut out = Vec::new();
    for (key, bindings) in ports {
        let Ok(c) = key.parse::<ports::ContainerPort>() else {
            continue;
        };
        match bindings {
            Some(list) if !list.is_empty() => {
                for b in list {
                    let public: u16 = b.host_port.parse().unwrap_or(0);
                    out.push(json!({"IP": b.host_ip, "PrivatePort": c.port, "PublicPort": public, "Type": c.proto.as_str()}));
                }
            }
            _ => out.push(json!({"PrivatePort": c.port, "Type": c.proto.as_str()})),
        }
    }
    out
}

/// Rebuilds the forwards of a running container from its record.
fn forwards_from_record(c: &Container, net: &Network, ip: Ipv4Addr) -> Vec<PortForward> {
    let mut out = Vec::new();
    for (key, bindings) in &c.network_settings.ports {
        let Ok(cp) = key.parse::<ports::ContainerPort>() else {
            continue;
        };
        for b in bindings.iter().flatten() {
            let (Ok(host_port), Ok(host_ip)) =
                (b.host_port.parse::<u16>(), b.host_ip.parse::<Ipv4Addr>())
            else {
                continue;
            };
            out.push(PortForward {
                proto: cp.proto,
                host_ip: (!host_ip.is_unspecified()).then_some(host_ip),
                host_port,
                container_ip: ip,
                container_port: cp.port,
                bridge: net.bridge.clone(),
            });
        }
    }
    out
}

impl Engine {
    pub(crate) fn packet(&self) -> std::sync::MutexGuard<'_, PacketState> {
        self.packet.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn packet_network_up(&self, net: &Network) -> Result<()> {
        let Some(pool) = net.pool.as_ref().filter(|_| net.is_bridge()) else {
            return Ok(());
        };
        let mut p = self.packet();
        p.networks.insert(
            net.id.clone(),
            BridgeNetwork::new(&net.bridge, pool.subnet, net.internal),
        );
        if !net.predefined && !p.dns.contains_key(&net.id) {
            let cfg = DnsConfig {
                allowed: Some(pool.subnet),
                upstream: p.dns_upstream.clone(),
            };
            match DnsServer::start(SocketAddr::new(IpAddr::V4(pool.gateway), 53), cfg) {
                Ok(srv) => {
                    p.dns.insert(net.id.clone(), srv);
                    p.update_dns(&net.id);
                }
                // At startup a network without DNS beats no daemon at all.
                Err(e) if !p.ready => {
                    eprintln!("berthd: network {}: no embedded DNS: {e}", net.name)
                }
                Err(e) => {
                    p.networks.remove(&net.id);
                    return Err(EngineError::Conflict(format!(
                        "network {}: embedded DNS on {}:53: {e}",
                        net.name, pool.gateway
                    )));
                }
            }
        }
        if p.ready {
            p.remove_stale_tables();
        }
        p.sync()
    }

    pub(crate) fn packet_network_down(&self, net: &Network) {
        let mut p = self.packet();
        p.networks.remove(&net.id);
        p.dns.remove(&net.id);
        p.names.remove(&net.id);
        if let Err(e) = p.sync() {
            eprintln!("berthd: removing rules of network {}: {e}", net.name);
        }
    }

    pub(crate) fn packet_endpoint_up(&self, ep: &EndpointInfo) -> Result<Ports> {
        let (reqs, exposed) = requests(&ep.port_bindings, ep.publish_all, &ep.exposed_ports)?;
        let mut p = self.packet();
        if !ep.network.predefined {
            let mut names = vec![
                ep.container_name.clone(),
                ep.container_id[..12.min(ep.container_id.len())].to_string(),
            ];
            names.extend(ep.aliases.iter().cloned());
            p.names
                .entry(ep.network.id.clone())
                .or_default()
                .insert(ep.container_id.clone(), (names, ep.ip));
            p.update_dns(&ep.network.id);
        }
        // Ports are published once per container, on its first (primary)
        // endpoint; a later endpoint adds nothing (the map it returns would
        // overwrite the published one).
        if p.published.contains_key(&ep.container_id) {
            return Ok(Ports::new());
        }
        // An internal network publishes nothing, as in Docker.
        if reqs.is_empty() || ep.network.internal {
            return Ok(ports_map(&[], &exposed));
        }
        let chosen = ports::allocate(&reqs, &p.taken())?;
        let forwards: Vec<PortForward> = chosen
            .iter()
            .map(|c| PortForward {
                proto: c.proto,
                host_ip: match c.host_ip {
                    Some(IpAddr::V4(ip)) if !ip.is_unspecified() => Some(ip),
                    _ => None,
                },
                host_port: c.host_port,
                container_ip: ep.ip,
                container_port: c.container_port,
                bridge: ep.network.bridge.clone(),
            })
            .collect();
        let mut proxies = Vec::new();
        if p.firewall.is_none() {
            for f in &forwards {
                let spec = ProxySpec {
                    proto: f.proto,
                    host: SocketAddr::new(
                        IpAddr::V4(f.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)),
                        f.host_port,
                    ),
                    container: SocketAddr::new(IpAddr::V4(f.container_ip), f.container_port),
                };
                match proxy::spawn(&p.proxy_bin, &spec) {
                    Ok(pid) => proxies.push(pid),
                    Err(e) => {
                        stop_proxies(&proxies);
                        return Err(e.into());
                    }
                }
            }
            if let Err(e) = p.save_proxies(&ep.container_id, &proxies) {
                stop_proxies(&proxies);
                return Err(e);
            }
        }
        p.published.insert(
            ep.container_id.clone(),
            Published {
                network_id: ep.network.id.clone(),
                forwards,
                proxies,
            },
        );
        if let Err(e) = p.sync() {
            p.withdraw(&ep.container_id);
            return Err(e);
        }
        Ok(ports_map(&chosen, &exposed))
    }

    pub(crate) fn packet_endpoint_down(&self, ep: &EndpointInfo) {
        let mut p = self.packet();
        if let Some(m) = p.names.get_mut(&ep.network.id)
            && m.remove(&ep.container_id).is_some()
        {
            p.update_dns(&ep.network.id);
        }
        if p.published
            .get(&ep.container_id)
            .is_some_and(|x| x.network_id == ep.network.id)
        {
            p.withdraw(&ep.container_id);
            if let Err(e) = p.sync() {
                eprintln!(
                    "berthd: removing published ports of {}: {e}",
                    ep.container_name
                );
            }
        }
    }

    /// After a restart (containers restored): the names and published ports of
    /// the running containers, then one sync.
    pub(crate) fn packet_restore(&self) -> Result<()> {
        let running = self.running_containers();
        let nets: BTreeMap<String, Network> = self.nets().networks.clone();
        let mut p = self.packet();
        let mut saved = p.saved_proxies();
        for c in &running {
            let mode = c.host_config.network_mode.clone().unwrap_or_default();
            let mut primary_done = false;
            // The mode's network first: ports were published on it.
            let mut eps: Vec<_> = c.network_settings.networks.iter().collect();
            eps.sort_by_key(|(k, e)| !(**k == mode || e.network_id == mode));
            for (_, e) in eps {
                let (Some(net), Ok(ip)) =
                    (nets.get(&e.network_id), e.ip_address.parse::<Ipv4Addr>())
                else {
                    continue;
                };
                if e.endpoint_id.is_empty() {
                    continue;
                }
                if let Some(names) = e.dns_names.clone().filter(|_| !net.predefined) {
                    p.names
                        .entry(net.id.clone())
                        .or_default()
                        .insert(c.id.clone(), (names, ip));
                }
                if !primary_done && !net.internal {
                    primary_done = true;
                    let forwards = forwards_from_record(c, net, ip);
                    if !forwards.is_empty() {
                        p.published.insert(
                            c.id.clone(),
                            Published {
                                network_id: net.id.clone(),
                                forwards,
                                // Proxies outlive the daemon: take them over.
                                proxies: saved.remove(&c.id).unwrap_or_default(),
                            },
                        );
                    }
                }
            }
        }
        // Containers that stopped while the daemon was down: their proxies go.
        for (id, pids) in saved {
            stop_proxies(&pids);
            let _ = std::fs::remove_file(p.proxy_dir.join(id));
        }
        let ids: Vec<String> = p.names.keys().cloned().collect();
        for id in ids {
            p.update_dns(&id);
        }
        p.ready = true;
        p.remove_stale_tables();
        p.sync()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_map_and_summary() {
        let bindings: Ports =
            serde_json::from_str(r#"{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}]}"#)
                .unwrap();
        let (reqs, exposed) =
            requests(&bindings, true, &["80/tcp".into(), "53/udp".into()]).unwrap();
        assert_eq!(reqs.len(), 2, "-P adds 53/udp only");
        let published = vec![PublishedPort {
            host_ip: Some("127.0.0.1".parse().unwrap()),
            host_port: 8080,
            container_port: 80,
            proto: Protocol::Tcp,
        }];
        let map = ports_map(&published, &exposed);
        assert_eq!(
            serde_json::to_value(&map).unwrap(),
            json!({"53/udp": null, "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]})
        );
        let s = summary_ports(&map);
        assert_eq!(
            s,
            vec![
                json!({"PrivatePort": 53, "Type": "udp"}),
                json!({"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}),
            ]
        );
        let v6: Ports =
            serde_json::from_str(r#"{"80/tcp":[{"HostIp":"::1","HostPort":"8080"}]}"#).unwrap();
        let e = requests(&v6, false, &[]).unwrap_err().to_string();
        assert!(e.contains("IPv6"), "{e}");
    }

    #[test]
    fn host_resolvers_from_resolv_conf() {
        let r = host_resolvers(
            "# x\nnameserver 127.0.0.53\nnameserver  192.0.2.1 \nsearch a\nnameserver bad\n",
        );
        assert_eq!(
            r,
            vec![
                "127.0.0.53:53".parse().unwrap(),
                "192.0.2.1:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn table_names() {
        assert_eq!(table_name(std::path::Path::new("/var/lib/berth")), "berth");
        let t = table_name(std::path::Path::new("/var/tmp/x"));
        assert!(t.starts_with("berth") && t != "berth", "{t}");
        Firewall::new(&t).unwrap();
    }
}
