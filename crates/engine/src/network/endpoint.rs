//! Containers on networks: which networks a container asks for (at
//! create), plugging it in before its process starts and out when it exits,
//! `network connect/disconnect`, and the `/etc/hosts` and
//! `/etc/resolv.conf` the engine writes for it.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;

use berth_network::bridge::{self, AttachSpec};
use berth_network::netlink::{Netlink, in_netns, open_netns};

use super::Network;
use super::hooks::EndpointInfo;
use crate::error::{EngineError, Result, io_err};
use crate::util::random_id;
use crate::{Container, EndpointSettings, Engine, HostConfig, NetworkingConfig};

type Ports = BTreeMap<String, Option<Vec<crate::PortBinding>>>;

/// What `create` settled: the normalised mode and the endpoints to plumb
/// at start, keyed by network name.
pub(crate) struct NetPlan {
    pub mode: String,
    pub networks: BTreeMap<String, EndpointSettings>,
}

fn forbidden(m: String) -> EngineError {
    EngineError::Forbidden(m)
}

/// The container whose namespace `mode` (`container:<id>`) joins.
pub(crate) fn shared_with(mode: &str) -> Option<&str> {
    mode.strip_prefix("container:")
}

impl Engine {
    /// For `container:<x>`: x's full id and pid; x must be running.
    pub(crate) fn netns_owner(&self, mode: &str) -> Result<Option<(String, i32)>> {
        let Some(other) = shared_with(mode) else {
            return Ok(None);
        };
        let t = self.lock();
        let o = t.get(other)?;
        if !o.state.running {
            return Err(EngineError::Conflict(format!(
                "cannot join network namespace of a non running container: {}",
                o.id
            )));
        }
        Ok(Some((o.id.clone(), o.state.pid)))
    }

    /// Resolves `HostConfig.NetworkMode` and `NetworkingConfig` at create:
    /// unset/`default` is the default bridge; `container:<x>` must name a
    /// running container; `--ip` and `--network-alias` only on user networks.
    pub(crate) fn plan_networks(&self, hc: &HostConfig, nc: &NetworkingConfig) -> Result<NetPlan> {
        let mode = match hc.network_mode.as_deref().unwrap_or("") {
            "" | "default" => "bridge".to_string(),
            m => m.to_string(),
        };
        let requested = nc.endpoints_config.clone().unwrap_or_default();
        if let Some((other, _)) = self.netns_owner(&mode)? {
            if !requested.is_empty() {
                return Err(EngineError::InvalidArgument(
                    "conflicting options: networking configuration and container network mode"
                        .into(),
                ));
            }
            return Ok(NetPlan {
                mode: format!("container:{other}"),
                networks: BTreeMap::new(),
            });
        }
        let t = self.nets();
        let primary = t.find(&mode)?.clone();
        // `--network <id of host>` means host: the spec and the loopback
        // setup look at the name.
        let mode = if primary.predefined {
            primary.name.clone()
        } else {
            mode
        };
        let mut networks = BTreeMap::new();
        // The mode's own entry may be keyed by the name or the id the user typed.
        let mut primary_cfg = None;
        let mut others = Vec::new();
        for (key, cfg) in requested {
            // The CLI keys the unnamed default network "default".
            let n = if key == "default" {
                primary.clone()
            } else {
                t.find(&key)?.clone()
            };
            if n.id == primary.id {
                primary_cfg = Some(cfg);
            } else {
                others.push((n, cfg));
            }
        }
        if !primary.is_bridge() && !others.is_empty() {
            return Err(EngineError::InvalidArgument(format!(
                "container cannot be connected to network {} and to other networks",
                primary.name
            )));
        }
        for (n, cfg) in std::iter::once((primary, primary_cfg.unwrap_or_default())).chain(others) {
            let ep = endpoint_request(&n, cfg)?;
            networks.insert(n.name.clone(), ep);
        }
        Ok(NetPlan { mode, networks })
    }

    /// Plugs a created container (its init process is `pid`) into its
    /// bridge networks before the process runs, then writes its hosts and
    /// resolv.conf. On failure, what was done is undone.
    pub(crate) fn network_attach_all(&self, c: &mut Container, pid: i32) -> Result<()> {
        let mode = c.host_config.network_mode.clone().unwrap_or_default();
        let mut order: Vec<String> = c.network_settings.networks.keys().cloned().collect();
        // The mode's network is eth0 and carries the default route.
        let primary = self.nets().find(&mode).ok().map(|n| n.name.clone());
        order.sort_by_key(|k| Some(k) != primary.as_ref());
        let bridged: Vec<String> = order
            .into_iter()
            .filter(|k| {
                let id = &c.network_settings.networks[k].network_id;
                self.nets().networks.get(id).is_none_or(Network::is_bridge)
            })
            .collect();
        if !bridged.is_empty() {
            let ns = open_netns(pid)?;
            for (i, key) in bridged.iter().enumerate() {
                let mut ep = c.network_settings.networks[key].clone();
                let r = self.attach_endpoint(c, &mut ep, &ns, &format!("eth{i}"), i == 0);
                c.network_settings.networks.insert(key.clone(), ep);
                match r {
                    Ok(ports) => {
                        c.network_settings.ports.extend(ports);
                        self.emit_endpoint(c, &c.network_settings.networks[key], "connect");
                    }
                    Err(e) => {
                        self.network_detach_all(c);
                        return Err(e);
                    }
                }
            }
            c.network_settings.sandbox_key = format!("/proc/{pid}/ns/net");
        }
        c.network_settings.sandbox_id = c.id.clone();
        self.mirror_default_bridge(c);
        if let Err(e) = self.write_net_files(c) {
            self.network_detach_all(c);
            return Err(e);
        }
        Ok(())
    }

    /// One endpoint: an address, the bridge checked (or made) ready, the
    /// veth pair, then the packet-side hook. Fills `ep`'s address fields;
    /// returns the hook's published ports.
    fn attach_endpoint(
        &self,
        c: &Container,
        ep: &mut EndpointSettings,
        ns: &File,
        ifname: &str,
        default_route: bool,
    ) -> Result<Ports> {
        let want = requested_ip(ep)?;
        let (net, ip) = {
            let mut t = self.nets();
            let net = t.networks.get(&ep.network_id).cloned().ok_or_else(|| {
                EngineError::NotFound(format!("network {} not found", ep.network_id))
            })?;
            let a = t.ipam.get_mut(&net.id).ok_or_else(|| {
                EngineError::Internal(format!("network {} has no address allocator", net.name))
            })?;
            let ip = a.allocate(&c.id, want)?;
            (net, ip)
        };
        let release = || {
            if let Some(a) = self.nets().ipam.get_mut(&net.id) {
                let _ = a.release(ip);
            }
        };
        let pool = net.pool.clone().expect("bridge network has a pool");
        let endpoint_id = random_id();
        let spec = AttachSpec {
            bridge: net.bridge.clone(),
            host_veth: bridge::host_veth_name(&endpoint_id),
            ifname: ifname.to_string(),
            ip,
            prefix: pool.prefix(),
            gateway: pool.gateway,
            mtu: net.mtu,
            // An --internal network has no way out, not even a route (as in
            // Docker); its subnet and gateway (DNS) stay reachable.
            default_route: default_route && !net.internal,
        };
        let plumbed = Netlink::open().and_then(|mut nl| {
            if bridge::check_ready(&mut nl, &net.bridge, pool.gateway).is_err() {
                // Deleted or downed behind our back: put it back, check again.
                let spec = net.bridge_spec(&self.paths.root).expect("pool");
                bridge::ensure(&mut nl, &spec)?;
                bridge::check_ready(&mut nl, &net.bridge, pool.gateway)?;
            }
            bridge::attach(&mut nl, ns, &spec)
        });
        if let Err(e) = plumbed {
            release();
            return Err(e.into());
        }
        ep.endpoint_id = endpoint_id;
        ep.ip_address = ip.to_string();
        ep.ip_prefix_len = pool.prefix();
        ep.gateway = pool.gateway.to_string();
        ep.mac_address = bridge::mac_string(ip);
        if !net.predefined {
            let mut names = vec![c.short_name().to_string(), c.id[..12].to_string()];
            names.extend(ep.aliases.clone().unwrap_or_default());
            ep.dns_names = Some(names);
        }
        let info = endpoint_info(c, &net, ep, ip);
        match self.endpoint_up_hook(&info) {
            Ok(ports) => Ok(ports),
            Err(e) => {
                let _ = Netlink::open()
                    .map(|mut nl| bridge::detach(&mut nl, &spec.host_veth, &spec.bridge));
                release();
                clear_address(ep);
                Err(e)
            }
        }
    }

    /// Unplugs every endpoint of `c` and gives its addresses back; safe to
    /// call again, and on a container whose namespace is already gone.
    pub(crate) fn network_detach_all(&self, c: &mut Container) {
        let keys: Vec<String> = c.network_settings.networks.keys().cloned().collect();
        for k in keys {
            let mut ep = c.network_settings.networks[&k].clone();
            if !ep.endpoint_id.is_empty() {
                self.emit_endpoint(c, &ep, "disconnect");
            }
            self.detach_endpoint(c, &mut ep);
            c.network_settings.networks.insert(k, ep);
        }
        c.network_settings.sandbox_key.clear();
        c.network_settings.ports.clear();
        self.mirror_default_bridge(c);
    }

    /// Docker's network event for a container joining or leaving at its
    /// start and exit.
    fn emit_endpoint(&self, c: &Container, ep: &EndpointSettings, action: &str) {
        let net = self.nets().networks.get(&ep.network_id).cloned();
        if let Some(n) = net {
            self.emit_network(&n.id, action, &n.name, &n.driver, Some(&c.id));
        }
    }

    fn detach_endpoint(&self, c: &Container, ep: &mut EndpointSettings) {
        if ep.endpoint_id.is_empty() {
            return;
        }
        let net = self.nets().networks.get(&ep.network_id).cloned();
        if let (Some(net), Ok(ip)) = (&net, ep.ip_address.parse::<Ipv4Addr>()) {
            self.endpoint_down_hook(&endpoint_info(c, net, ep, ip));
        }
        // Only a veth on this network's bridge is ours to delete: Docker
        // names its veths the same way. Without the network there is no
        // bridge left that the veth could be on.
        if let (Some(net), Ok(mut nl)) = (&net, Netlink::open()) {
            let _ = bridge::detach(
                &mut nl,
                &bridge::host_veth_name(&ep.endpoint_id),
                &net.bridge,
            );
        }
        if let Some(a) = self.nets().ipam.get_mut(&ep.network_id)
            && let Ok(ip) = ep.ip_address.parse::<Ipv4Addr>()
        {
            let _ = a.release(ip);
        }
        clear_address(ep);
    }

    /// Docker's top-level address fields are the default bridge's.
    fn mirror_default_bridge(&self, c: &mut Container) {
        let s = &mut c.network_settings;
        let ep = s.networks.get("bridge").cloned().unwrap_or_default();
        s.endpoint_id = ep.endpoint_id;
        s.ip_address = ep.ip_address;
        s.ip_prefix_len = ep.ip_prefix_len;
        s.gateway = ep.gateway;
        s.mac_address = ep.mac_address;
    }

    /// `POST /networks/{id}/connect`: recorded for a stopped container,
    /// plugged in at once (another ethN) for a running one.
    pub fn network_connect(
        &self,
        net_key: &str,
        container_key: &str,
        cfg: EndpointSettings,
    ) -> Result<()> {
        let net = self.nets().find(net_key)?.clone();
        let c = self.inspect(container_key)?;
        let mode = c.host_config.network_mode.clone().unwrap_or_default();
        if !net.is_bridge() {
            return Err(forbidden(format!(
                "container cannot be disconnected from host network or connected to {} network",
                net.name
            )));
        }
        if mode == "host" || shared_with(&mode).is_some() {
            return Err(forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            ));
        }
        if mode == "none" {
            return Err(forbidden(
                "container cannot be connected to multiple networks with one of the networks in private (none) mode".into(),
            ));
        }
        if c.network_settings.networks.contains_key(&net.name) {
            return Err(forbidden(format!(
                "endpoint with name {} already exists in network {}",
                c.short_name(),
                net.name
            )));
        }
        let mut ep = endpoint_request(&net, cfg)?;
        let mut ports = Ports::new();
        if c.state.running {
            let ns = open_netns(c.state.pid)?;
            let ifname = in_netns(&ns, |nl| {
                for i in 0..64 {
                    let n = format!("eth{i}");
                    if nl.link(&n)?.is_none() {
                        return Ok(n);
                    }
                }
                Err(berth_network::NetworkError::Conflict(
                    "no free ethN name in the container".into(),
                ))
            })?;
            let first = !c
                .network_settings
                .networks
                .values()
                .any(|e| !e.endpoint_id.is_empty());
            ports = self.attach_endpoint(&c, &mut ep, &ns, &ifname, first)?;
        }
        let mut t = self.lock();
        let Some(cur) = t.containers.get_mut(&c.id) else {
            drop(t);
            self.detach_endpoint(&c, &mut ep);
            return Err(crate::container::no_such(container_key));
        };
        cur.network_settings.networks.insert(net.name.clone(), ep);
        cur.network_settings.ports.extend(ports);
        self.mirror_default_bridge(cur);
        self.persist(cur)?;
        let snapshot = cur.clone();
        drop(t);
        self.emit_network(&net.id, "connect", &net.name, &net.driver, Some(&c.id));
        self.write_net_files(&snapshot)
    }

    /// `POST /networks/{id}/disconnect`.
    pub fn network_disconnect(
        &self,
        net_key: &str,
        container_key: &str,
        force: bool,
    ) -> Result<()> {
        let c = self.inspect(container_key)?;
        let net = match self.nets().find(net_key) {
            Ok(n) => Some(n.clone()),
            Err(e) if !force => return Err(e),
            Err(_) => None,
        };
        let key = match &net {
            Some(n) => n.name.clone(),
            None => net_key.to_string(),
        };
        if net.as_ref().is_some_and(|n| !n.is_bridge()) {
            return Err(forbidden(format!(
                "container cannot be disconnected from {key} network"
            )));
        }
        let Some(mut ep) = c.network_settings.networks.get(&key).cloned() else {
            return Err(forbidden(format!(
                "container {} is not connected to network {key}",
                c.id
            )));
        };
        self.detach_endpoint(&c, &mut ep);
        let mut t = self.lock();
        let cur = t
            .containers
            .get_mut(&c.id)
            .ok_or_else(|| crate::container::no_such(container_key))?;
        cur.network_settings.networks.remove(&key);
        self.mirror_default_bridge(cur);
        self.persist(cur)?;
        let snapshot = cur.clone();
        drop(t);
        if let Some(n) = &net {
            self.emit_network(&n.id, "disconnect", &n.name, &n.driver, Some(&c.id));
        }
        self.write_net_files(&snapshot)
    }

    /// Writes `hosts` and `resolv.conf` in the container's dir (bind-mounted
    /// over the image's). In place, not by rename: the bind mount holds the
    /// inode.
    pub(crate) fn write_net_files(&self, c: &Container) -> Result<()> {
        let dir = self.paths.container_dir(&c.id);
        let mode = c.host_config.network_mode.clone().unwrap_or_default();
        let (hosts, resolv) = if let Some(other) = shared_with(&mode) {
            // Same namespace, same view: the other container's files.
            let od = self.paths.container_dir(other);
            (
                std::fs::read(od.join("hosts")).unwrap_or_default(),
                std::fs::read(od.join("resolv.conf")).unwrap_or_default(),
            )
        } else if mode == "host" {
            (
                std::fs::read("/etc/hosts").unwrap_or_default(),
                std::fs::read("/etc/resolv.conf").unwrap_or_default(),
            )
        } else {
            let host_gateway = self
                .nets()
                .networks
                .values()
                .find(|n| n.name == "bridge")
                .and_then(|n| n.pool.as_ref().map(|p| p.gateway));
            let user_gw = c
                .network_settings
                .networks
                .values()
                .filter(|e| !e.gateway.is_empty())
                .find(|e| {
                    self.nets()
                        .networks
                        .get(&e.network_id)
                        .is_some_and(|n| !n.predefined)
                })
                .and_then(|e| e.gateway.parse().ok());
            let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            (
                hosts_file(c, host_gateway)?.into_bytes(),
                resolv_conf(&host_resolv, &c.host_config, user_gw).into_bytes(),
            )
        };
        for (f, data) in [("hosts", hosts), ("resolv.conf", resolv)] {
            let p = dir.join(f);
            std::fs::write(&p, data).map_err(|e| io_err("write", &p, e))?;
        }
        Ok(())
    }
}

/// The address `--ip` asked for, if any.
fn requested_ip(ep: &EndpointSettings) -> Result<Option<Ipv4Addr>> {
    match ep
        .ipam_config
        .as_ref()
        .and_then(|c| c.ipv4_address.as_deref())
        .filter(|s| !s.is_empty())
    {
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| EngineError::InvalidArgument(format!("invalid IPv4 address: {s}"))),
        None => Ok(None),
    }
}

/// Validates a client's endpoint request against the network; keeps the
/// client's fields, clears the ones the engine fills.
fn endpoint_request(net: &Network, cfg: EndpointSettings) -> Result<EndpointSettings> {
    let mut ep = EndpointSettings {
        ipam_config: cfg.ipam_config,
        links: cfg.links,
        aliases: cfg.aliases.filter(|a| !a.is_empty()),
        driver_opts: cfg.driver_opts,
        network_id: net.id.clone(),
        ..EndpointSettings::default()
    };
    let ip = requested_ip(&ep)?;
    if net.predefined {
        if ip.is_some() {
            return Err(EngineError::InvalidArgument(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        if ep.aliases.is_some() {
            return Err(EngineError::InvalidArgument(
                "network-scoped alias is supported only for containers in user defined networks"
                    .into(),
            ));
        }
    }
    if let (Some(ip), Some(pool)) = (ip, &net.pool)
        && !pool.subnet.contains(ip)
    {
        return Err(EngineError::InvalidArgument(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    if !net.is_bridge() {
        ep.ipam_config = None;
    }
    clear_address(&mut ep);
    Ok(ep)
}

fn clear_address(ep: &mut EndpointSettings) {
    ep.endpoint_id.clear();
    ep.ip_address.clear();
    ep.ip_prefix_len = 0;
    ep.gateway.clear();
    ep.mac_address.clear();
    ep.dns_names = None;
}

fn endpoint_info(
    c: &Container,
    net: &Network,
    ep: &EndpointSettings,
    ip: Ipv4Addr,
) -> EndpointInfo {
    let pool = net.pool.clone();
    EndpointInfo {
        container_id: c.id.clone(),
        container_name: c.short_name().to_string(),
        aliases: ep.aliases.clone().unwrap_or_default(),
        network: net.clone(),
        ip,
        prefix: pool.as_ref().map_or(0, |p| p.prefix()),
        gateway: pool.map_or(Ipv4Addr::UNSPECIFIED, |p| p.gateway),
        host_veth: bridge::host_veth_name(&ep.endpoint_id),
        port_bindings: c.host_config.port_bindings.clone().unwrap_or_default(),
        publish_all: c.host_config.publish_all_ports.unwrap_or(false),
        exposed_ports: c
            .config
            .exposed_ports
            .as_ref()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
    }
}

/// Docker's /etc/hosts: localhost lines, `--add-host` entries, then the
/// container's own addresses with its hostname.
pub(crate) fn hosts_file(c: &Container, host_gateway: Option<Ipv4Addr>) -> Result<String> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in c.host_config.extra_hosts.iter().flatten() {
        // "name:ip" (the CLI's form) or "name=ip"; IPv6 keeps its colons.
        let (name, ip) = h
            .split_once('=')
            .or_else(|| h.split_once(':'))
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
            .ok_or_else(|| {
                EngineError::InvalidArgument(format!("invalid extra host {h:?}: want name:ip"))
            })?;
        let ip = if ip == "host-gateway" {
            host_gateway.map(|g| g.to_string()).ok_or_else(|| {
                EngineError::InvalidArgument("host-gateway needs the default bridge network".into())
            })?
        } else {
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| {
                    EngineError::InvalidArgument(format!("invalid IP address in add-host: {ip:?}"))
                })?
                .to_string()
        };
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    let hostname = c.config.hostname.clone().unwrap_or_default();
    let names = match c.config.domainname.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => format!("{hostname}.{d} {hostname}"),
        None => hostname,
    };
    let mut ips: Vec<&str> = c
        .network_settings
        .networks
        .values()
        .map(|e| e.ip_address.as_str())
        .filter(|i| !i.is_empty())
        .collect();
    ips.dedup();
    if ips.is_empty() {
        // No address (none network, not started yet): the name still resolves.
        s.push_str(&format!("127.0.0.1\t{names}\n"));
    }
    for ip in ips {
        s.push_str(&format!("{ip}\t{names}\n"));
    }
    Ok(s)
}

/// Docker's resolv.conf: on a user network the network's DNS (on its
/// gateway) is the only nameserver; elsewhere the host's nameservers minus
/// loopback ones (unreachable from the container), Google's as a last
/// resort. `--dns`, `--dns-search`, `--dns-option` replace their parts.
pub(crate) fn resolv_conf(host: &str, hc: &HostConfig, user_gateway: Option<Ipv4Addr>) -> String {
    let mut servers = Vec::new();
    let mut search = Vec::new();
    let mut options = Vec::new();
    for line in host.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("nameserver") => servers.extend(f.next().map(String::from)),
            Some("search") | Some("domain") => search = f.map(String::from).collect(),
            Some("options") => options.extend(f.map(String::from)),
            _ => {}
        }
    }
    servers.retain(|s| !s.starts_with("127.") && s != "::1");
    if let Some(d) = hc.dns.clone().filter(|d| !d.is_empty()) {
        servers = d;
    }
    if let Some(d) = hc.dns_search.clone().filter(|d| !d.is_empty()) {
        search = d.into_iter().filter(|s| s != ".").collect();
    }
    if let Some(o) = hc.dns_options.clone().filter(|o| !o.is_empty()) {
        options = o;
    }
    if let Some(gw) = user_gateway {
        servers = vec![gw.to_string()];
        if !options.iter().any(|o| o.starts_with("ndots:")) {
            options.push("ndots:0".into());
        }
    } else if servers.is_empty() {
        servers = vec!["8.8.8.8".into(), "8.8.4.4".into()];
    }
    let mut out = String::new();
    for s in &servers {
        out.push_str(&format!("nameserver {s}\n"));
    }
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !options.is_empty() {
        out.push_str(&format!("options {}\n", options.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_variants() {
        let host =
            "nameserver 127.0.0.53\nnameserver 192.0.2.53\nsearch corp.example\noptions edns0\n";
        let hc = HostConfig::default();
        assert_eq!(
            resolv_conf(host, &hc, None),
            "nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n"
        );
        assert!(resolv_conf("nameserver 127.0.0.53\n", &hc, None).contains("8.8.8.8"));
        let user = resolv_conf(host, &hc, Some(Ipv4Addr::new(10, 3, 0, 1)));
        assert_eq!(
            user,
            "nameserver 10.3.0.1\nsearch corp.example\noptions edns0 ndots:0\n"
        );
        let hc = HostConfig {
            dns: Some(vec!["9.9.9.9".into()]),
            dns_search: Some(vec!["a.example".into()]),
            dns_options: Some(vec!["ndots:2".into()]),
            ..HostConfig::default()
        };
        assert_eq!(
            resolv_conf(host, &hc, None),
            "nameserver 9.9.9.9\nsearch a.example\noptions ndots:2\n"
        );
    }

    #[test]
    fn hosts_with_extra_and_addresses() {
        let mut c = Container::default();
        c.config.hostname = Some("box".into());
        c.host_config.extra_hosts = Some(vec![
            "db:10.0.0.5".into(),
            "v6:::1".into(),
            "gw:host-gateway".into(),
        ]);
        c.network_settings.networks.insert(
            "n".into(),
            EndpointSettings {
                ip_address: "10.3.0.2".into(),
                ..EndpointSettings::default()
            },
        );
        let h = hosts_file(&c, Some(Ipv4Addr::new(172, 17, 0, 1))).unwrap();
        assert!(h.contains("10.0.0.5\tdb\n"), "{h}");
        assert!(h.contains("::1\tv6\n"), "{h}");
        assert!(h.contains("172.17.0.1\tgw\n"), "{h}");
        assert!(h.ends_with("10.3.0.2\tbox\n"), "{h}");
        c.host_config.extra_hosts = Some(vec!["bad".into()]);
        assert!(
            hosts_file(&c, None)
                .unwrap_err()
                .to_string()
                .contains("bad")
        );
        c.host_config.extra_hosts = Some(vec!["x:not-an-ip".into()]);
        assert!(hosts_file(&c, None).is_err());
    }

    #[test]
    fn endpoint_requests_are_checked() {
        let pool = berth_network::ipam::Pool::new("10.4.0.0/24", None, None).unwrap();
        let user = Network {
            id: "u".into(),
            name: "u".into(),
            driver: "bridge".into(),
            pool: Some(pool.clone()),
            ..Network::default()
        };
        let default = Network {
            predefined: true,
            ..user.clone()
        };
        let with_ip = |ip: &str| EndpointSettings {
            ipam_config: Some(crate::EndpointIpamConfig {
                ipv4_address: Some(ip.into()),
                ipv6_address: None,
            }),
            ..EndpointSettings::default()
        };
        assert!(endpoint_request(&user, with_ip("10.4.0.9")).is_ok());
        let e = endpoint_request(&user, with_ip("10.5.0.9")).unwrap_err();
        assert!(e.to_string().contains("10.5.0.9"), "{e}");
        assert!(endpoint_request(&user, with_ip("nope")).is_err());
        let e = endpoint_request(&default, with_ip("10.4.0.9")).unwrap_err();
        assert!(e.to_string().contains("user defined networks"), "{e}");
        let aliased = EndpointSettings {
            aliases: Some(vec!["a".into()]),
            ..EndpointSettings::default()
        };
        assert!(endpoint_request(&default, aliased.clone()).is_err());
        assert_eq!(
            endpoint_request(&user, aliased).unwrap().aliases,
            Some(vec!["a".to_string()])
        );
    }
}
