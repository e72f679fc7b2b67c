//! berth-network: what a container needs to be on a network, without HTTP or
//! container knowledge. The engine decides *which* network a container joins;
//! this crate does the kernel work (links, addresses, routes, nftables rules)
//! and serves the per-network DNS.
//!
//! Module owners while the crate is young: `netlink`, `ipam`, `bridge` carry the
//! plumbing (links, addresses, allocation); `firewall`, `ports`, `proxy`, `dns`
//! carry the packet rules, port publishing and name resolution.

pub mod bridge;
pub mod dns;
pub mod error;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod ports;
pub mod proxy;

pub use error::{NetworkError, Result};
