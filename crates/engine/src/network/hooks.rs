//! Where the packet side plugs in: nftables rules (masquerade, isolation,
//! internal networks), published ports and the embedded DNS. The plumbing
//! (bridge, veth, address, routes) is done by the time the `*_up` hooks
//! run, and is still in place when the `*_down` hooks run.
//!
//! The bodies live in [`super::packet`] (over `berth_network::{firewall,
//! ports, dns}`); this file is the contract between the two sides.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::Network;
use crate::error::Result;
use crate::{Engine, PortBinding};

/// One container's endpoint on one network.
#[derive(Clone, Debug)]
pub struct EndpointInfo {
    pub container_id: String,
    /// Without the leading slash.
    pub container_name: String,
    /// `--network-alias` values (user networks only).
    pub aliases: Vec<String>,
    pub network: Network,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    /// Host end of the veth pair.
    pub host_veth: String,
    /// `-p` as the client sent it (`"80/tcp"` → bindings).
    pub port_bindings: BTreeMap<String, Option<Vec<PortBinding>>>,
    /// `-P`: publish every exposed port.
    pub publish_all: bool,
    /// `"80/tcp"` keys of the image's and `--expose`'s ports.
    pub exposed_ports: Vec<String>,
}

impl Engine {
    /// A bridge network exists and its bridge is up (daemon start, network
    /// create): install its rules, start its DNS.
    pub(crate) fn network_up_hook(&self, net: &Network) -> Result<()> {
        self.packet_network_up(net)
    }

    /// A network is about to be removed (its bridge follows).
    pub(crate) fn network_down_hook(&self, net: &Network) {
        self.packet_network_down(net)
    }

    /// An endpoint is plumbed, the container's process has not started
    /// yet: publish its ports and add its names to the network's DNS. The
    /// returned map becomes `NetworkSettings.Ports` (`"80/tcp"` → host
    /// bindings, None for exposed but unpublished).
    pub(crate) fn endpoint_up_hook(
        &self,
        ep: &EndpointInfo,
    ) -> Result<BTreeMap<String, Option<Vec<PortBinding>>>> {
        self.packet_endpoint_up(ep)
    }

    /// The endpoint is about to go (exit, stop, rm, disconnect): withdraw
    /// its ports and names. Must not fail; cleanup goes on regardless.
    pub(crate) fn endpoint_down_hook(&self, ep: &EndpointInfo) {
        self.packet_endpoint_down(ep)
    }
}
