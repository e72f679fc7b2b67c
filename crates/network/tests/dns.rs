//! Root-only: the embedded DNS server on a bridge's gateway address, asked by
//! busybox nslookup from "containers" (namespaces) on and off the network.

mod common;

use std::collections::HashMap;
use std::net::Ipv4Addr;

use berth_network::dns::{
    DnsConfig, DnsServer, TYPE_A, encode_query, exchange_tcp, parse_response_a,
};
use berth_network::ipam::Subnet;
use common::*;

#[test]
fn names_and_aliases_resolve_on_the_network_only() {
    in_private_netns(|| {
        bridge("br-d", "10.1.5.1/24");
        bridge("br-o", "10.1.6.1/24");
        let c = Ns::new("br-d", "10.1.5.2/24", "10.1.5.1");
        let other = Ns::new("br-o", "10.1.6.2/24", "10.1.6.1");
        assert_bridge_ready("br-d", "10.1.5.1");
        assert_bridge_ready("br-o", "10.1.6.1");
        sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
        let srv = DnsServer::start(
            "10.1.5.1:53".parse().unwrap(),
            DnsConfig {
                allowed: Some(Subnet::new(Ipv4Addr::new(10, 1, 5, 0), 24)),
                upstream: vec![],
            },
        )
        .unwrap();
        srv.set_records(HashMap::from([
            ("web".to_string(), vec![Ipv4Addr::new(10, 1, 5, 7)]),
            ("webalias".to_string(), vec![Ipv4Addr::new(10, 1, 5, 7)]),
            ("0123456789ab".to_string(), vec![Ipv4Addr::new(10, 1, 5, 7)]),
        ]));
        for name in ["web", "WebAlias", "0123456789ab"] {
            let out = c.output(&format!("busybox nslookup -type=a {name} 10.1.5.1"));
            assert!(out.contains("10.1.5.7"), "{name}: {out}");
        }
        // TCP too (from the host side: its gateway address is in the subnet).
        let mut tcp = std::net::TcpStream::connect("10.1.5.1:53").unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let r = exchange_tcp(&mut tcp, &encode_query(1, "webalias", TYPE_A)).unwrap();
        assert_eq!(
            parse_response_a(&r).unwrap(),
            (0, vec![Ipv4Addr::new(10, 1, 5, 7)])
        );
        // Unknown names: refused at once, nothing forwarded.
        let t = std::time::Instant::now();
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &c.name, "busybox", "nslookup", "-type=a", "nothere", "10.1.5.1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("REFUSED"), "{text}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(3),
            "{:?}",
            t.elapsed()
        );
        // A client from another network (routed to the gateway) gets nothing.
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &other.name,
                "busybox",
                "nslookup",
                "-type=a",
                "web",
                "10.1.5.1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("10.1.5.7"), "{text}");
        // Updates take effect.
        srv.set_records(HashMap::new());
        let out = std::process::Command::new("ip")
            .args([
                "netns", "exec", &c.name, "busybox", "nslookup", "-type=a", "web", "10.1.5.1",
            ])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("10.1.5.7"));
    })
}
