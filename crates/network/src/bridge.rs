//! Bridge networks on the host: the bridge with its gateway address, and
//! a veth pair per container endpoint (host end on the bridge, the other
//! end inside the container's namespace with its address and routes).
//!
//! Safety on shared hosts: a bridge that is missing, down or without its
//! gateway would send container-subnet traffic out through the default
//! route, so [`check_ready`] must pass before anything talks to a container
//! address, and the engine calls it before starting a bridged container.

use std::fs::File;
use std::net::Ipv4Addr;

use crate::error::{NetworkError, Result};
use crate::ipam::Subnet;
use crate::netlink::{LinkInfo, Netlink, VethOptions, format_mac, in_netns};

/// A bridge as a network wants it.
#[derive(Clone, Debug)]
pub struct BridgeSpec {
    pub name: String,
    pub gateway: Ipv4Addr,
    pub prefix: u8,
    pub mtu: Option<u32>,
    /// Berth's ownership marker, set as the link's alias when Berth creates
    /// the bridge: only a bridge carrying it is configured or deleted (see
    /// also [`remove_orphans`]).
    pub alias: String,
}

/// Fails unless `link` is a bridge carrying our `alias`. A name is not
/// proof of ownership: Docker's docker0 or an admin's br0 may have it, and
/// adopting one would re-address, bring up and later delete it.
fn check_owned(link: &LinkInfo, alias: &str) -> Result<()> {
    if link.kind.as_deref() != Some("bridge") {
        return Err(NetworkError::Conflict(format!(
            "link {} exists on the host and is not a bridge (kind {}): Berth will not use or delete it",
            link.name,
            link.kind.as_deref().unwrap_or("none")
        )));
    }
    if link.alias.as_deref() != Some(alias) {
        return Err(NetworkError::Conflict(format!(
            "bridge {} exists on the host but is not this Berth daemon's (alias {:?}, expected {alias:?}): Berth will not use or delete it",
            link.name,
            link.alias.as_deref().unwrap_or("")
        )));
    }
    Ok(())
}

/// Creates the bridge if missing, gives it its MTU and gateway address,
/// and brings it up. Idempotent: a daemon restart finds it as it was. A
/// link of that name that is not our bridge is refused, untouched.
pub fn ensure(nl: &mut Netlink, spec: &BridgeSpec) -> Result<()> {
    let link = match nl.link(&spec.name)? {
        Some(l) => l,
        None => {
            match nl.create_bridge(&spec.name, spec.mtu) {
                Ok(()) => {
                    // Marked at once: the kernel takes no alias at creation.
                    nl.set_alias(&spec.name, &spec.alias)?;
                }
                // Someone got there first: ours if it gets our mark soon
                // (another thread of this daemon between create and alias).
                Err(NetworkError::Conflict(_)) => {
                    for _ in 0..50 {
                        if nl.link(&spec.name)?.is_none_or(|l| {
                            l.alias.is_some() || l.kind.as_deref() != Some("bridge")
                        }) {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
                Err(e) => return Err(e),
            }
            nl.link(&spec.name)?.ok_or_else(|| {
                NetworkError::NotFound(format!("bridge {} vanished after creation", spec.name))
            })?
        }
    };
    check_owned(&link, &spec.alias)?;
    if let Some(mtu) = spec.mtu.filter(|m| *m != link.mtu) {
        nl.set_mtu(&spec.name, mtu)?;
    }
    let addrs = nl.addresses(&spec.name)?;
    // Our bridge holds the gateway and nothing else: an address left from
    // an earlier subnet would keep a route (and traffic) for it here.
    for (a, p) in addrs.iter().filter(|x| **x != (spec.gateway, spec.prefix)) {
        nl.delete_address(&spec.name, *a, *p)?;
    }
    if !addrs.contains(&(spec.gateway, spec.prefix)) {
        match nl.add_address(&spec.name, spec.gateway, spec.prefix) {
            Ok(()) | Err(NetworkError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
    }
    if !link.up {
        nl.set_up(&spec.name, true)?;
    }
    Ok(())
}

/// Fails loudly unless `bridge` exists, is up, holds `gateway`, and the
/// kernel actually routes the subnet through it: only then does traffic
/// for the subnet stay on the bridge. A policy rule or a more specific
/// route elsewhere would send container-bound packets out of the uplink.
pub fn check_ready(nl: &mut Netlink, bridge: &str, gateway: Ipv4Addr) -> Result<()> {
    let link = nl.link(bridge)?.ok_or_else(|| {
        NetworkError::NotFound(format!(
            "bridge {bridge} is missing: container traffic would leave through the host's default route"
        ))
    })?;
    if !link.up {
        return Err(NetworkError::Conflict(format!(
            "bridge {bridge} is down: container traffic would leave through the host's default route"
        )));
    }
    let Some(prefix) = nl
        .addresses(bridge)?
        .iter()
        .find(|(a, _)| *a == gateway)
        .map(|(_, p)| *p)
    else {
        return Err(NetworkError::Conflict(format!(
            "bridge {bridge} does not hold the gateway address {gateway}"
        )));
    };
    let subnet = Subnet::new(gateway, prefix);
    for probe in route_probes(&subnet, gateway) {
        // Blackhole, unreachable and prohibit routes fail the lookup.
        let r = nl.route_get(probe).map_err(|e| {
            NetworkError::Conflict(format!(
                "the host has no route for {probe} (subnet {subnet} of bridge {bridge}) through the bridge: {e}"
            ))
        })?;
        if r.oif != Some(link.index) || r.kind != RTN_UNICAST {
            let dev = match r.oif {
                Some(i) => nl
                    .links()?
                    .into_iter()
                    .find(|l| l.index == i)
                    .map_or(format!("ifindex {i}"), |l| l.name),
                None => "no device".into(),
            };
            let via = r.gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            return Err(NetworkError::Conflict(format!(
                "the host routes {probe} (subnet {subnet} of bridge {bridge}) to {dev}{via} (table {}, route type {}), not to the bridge: container traffic would leave the host; remove the policy rule or more specific route",
                r.table, r.kind
            )));
        }
    }
    Ok(())
}

const RTN_UNICAST: u8 = 1;

/// Container addresses to look routes up for: the first and last ones of
/// the subnet (a more specific route usually covers one end), never the
/// gateway (a local address routes to lo).
fn route_probes(subnet: &Subnet, gateway: Ipv4Addr) -> Vec<Ipv4Addr> {
    let (lo, hi) = (subnet.first() + 1, subnet.last().saturating_sub(1));
    let mut v: Vec<Ipv4Addr> = [lo, lo + 1, hi, hi.saturating_sub(1)]
        .into_iter()
        .filter(|a| (lo..=hi).contains(a))
        .map(Ipv4Addr::from)
        .filter(|a| *a != gateway)
        .collect();
    v.dedup();
    v.truncate(2);
    v
}

/// Deletes the bridges whose alias starts with `prefix` and whose owner
/// (the rest of the alias) `gone` says no longer exists; returns their names.
/// A daemon killed with its temp root removed (a test) leaves its bridges
/// behind; the next daemon collects them instead of letting them pile up
/// and use up the address pools.
pub fn remove_orphans(
    nl: &mut Netlink,
    prefix: &str,
    gone: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for l in nl.links()? {
        if l.kind.as_deref() != Some("bridge") {
            continue;
        }
        let Some(owner) = l.alias.as_deref().and_then(|a| a.strip_prefix(prefix)) else {
            continue;
        };
        if gone(owner) {
            remove(nl, &l.name, l.alias.as_deref().unwrap_or_default())?;
            removed.push(l.name);
        }
    }
    Ok(removed)
}

/// Deletes our bridge `name` (marked with `alias`); a missing one is fine,
/// a link that is not ours is refused and left alone.
pub fn remove(nl: &mut Netlink, name: &str, alias: &str) -> Result<()> {
    let Some(link) = nl.link(name)? else {
        return Ok(());
    };
    check_owned(&link, alias)?;
    match nl.delete_link(name) {
        Ok(()) | Err(NetworkError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The host end's name for an endpoint: `veth` + 7 hex digits of its id,
/// like Docker's, stable so cleanup can find it from the record alone.
pub fn host_veth_name(endpoint_id: &str) -> String {
    let hex: String = endpoint_id
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .take(7)
        .collect();
    if hex.len() == 7 {
        format!("veth{hex}")
    } else {
        // Not a hex id: hash it (FNV-1a) so the name is still stable.
        let h = endpoint_id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        format!("veth{:07x}", h & 0xfff_ffff)
    }
}

/// Docker's MAC for an address: 02:42 then the four address bytes.
pub fn mac_for(ip: Ipv4Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

/// One container's place on a bridge.
#[derive(Clone, Debug)]
pub struct AttachSpec {
    pub bridge: String,
    /// Host end name (see [`host_veth_name`]).
    pub host_veth: String,
    /// Name inside the container: eth0, eth1…
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mtu: Option<u32>,
    /// Add the default route via the gateway. Docker sets it on internal
    /// networks too (the firewall drops what leaves); we follow, so a
    /// container sees the same routes under Berth as under Docker.
    pub default_route: bool,
}

/// Plugs a container (its namespace open as `netns`) into a bridge: a veth
/// pair whose host end is on the bridge and up, and whose other end is
/// created directly inside the container as `ifname` with its MAC, then
/// given the address, brought up (with lo) and the default route. On
/// failure nothing is left behind.
pub fn attach(nl: &mut Netlink, netns: &File, spec: &AttachSpec) -> Result<()> {
    let mac = mac_for(spec.ip);
    nl.create_veth(
        &spec.host_veth,
        &spec.ifname,
        &VethOptions {
            mtu: spec.mtu,
            master: Some(spec.bridge.clone()),
            up: true,
            peer_ns: Some(netns),
            peer_mac: Some(mac),
        },
    )?;
    let inside = in_netns(netns, |nl| {
        nl.add_address(&spec.ifname, spec.ip, spec.prefix)?;
        nl.set_up(&spec.ifname, true)?;
        if let Some(lo) = nl.link("lo")?
            && !lo.up
        {
            nl.set_up("lo", true)?;
        }
        if spec.default_route {
            match nl.add_default_route(&spec.ifname, spec.gateway) {
                // A second network: the first one's default route stays.
                Ok(()) | Err(NetworkError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    });
    if let Err(e) = inside {
        let _ = detach(nl, &spec.host_veth, &spec.bridge);
        return Err(e);
    }
    Ok(())
}

/// Unplugs an endpoint: deleting the host end removes its peer too. A veth
/// that is already gone (the namespace died and took the pair) is fine.
/// Only a veth enslaved to `bridge` is deleted: Docker names its veths
/// the same way (`veth` + 7 hex digits), so the name alone proves nothing.
pub fn detach(nl: &mut Netlink, host_veth: &str, bridge: &str) -> Result<()> {
    let Some(link) = nl.link(host_veth)? else {
        return Ok(());
    };
    let master = nl.link(bridge)?.map(|b| b.index);
    if link.master.is_none() || link.master != master {
        return Err(NetworkError::Conflict(format!(
            "link {host_veth} is not on bridge {bridge}: left alone (not this endpoint's)"
        )));
    }
    match nl.delete_link(host_veth) {
        Ok(()) | Err(NetworkError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `02:42:0a:00:00:02` for display.
pub fn mac_string(ip: Ipv4Addr) -> String {
    format_mac(&mac_for(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_probes_skip_gateway_and_edges() {
        let s = Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 24);
        assert_eq!(
            route_probes(&s, Ipv4Addr::new(10, 0, 0, 1)),
            [Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 254)]
        );
        let s = Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 30);
        assert_eq!(
            route_probes(&s, Ipv4Addr::new(10, 0, 0, 1)),
            [Ipv4Addr::new(10, 0, 0, 2)]
        );
    }

    #[test]
    fn names_and_macs() {
        assert_eq!(host_veth_name("0123456789abcdef"), "veth0123456");
        let n = host_veth_name("not-hex-at-all");
        assert!(n.starts_with("veth") && n.len() == 11, "{n}");
        assert_eq!(host_veth_name("not-hex-at-all"), n);
        assert_eq!(
            mac_string(Ipv4Addr::new(172, 17, 0, 2)),
            "02:42:ac:11:00:02"
        );
    }
}
