//! Root-only: Berth's nftables table against the real kernel, each test in a
//! private network namespace (see common/mod.rs).

mod common;

use std::net::Ipv4Addr;

use berth_network::firewall::{BridgeNetwork, DesiredState, Firewall, PortForward};
use berth_network::ipam::Subnet;
use berth_network::ports::Protocol;
use common::*;

fn net(bridge: &str, subnet: [u8; 4], internal: bool) -> BridgeNetwork {
    BridgeNetwork::new(bridge, Subnet::new(Ipv4Addr::from(subnet), 24), internal)
}

#[test]
fn sync_is_idempotent_and_clear_leaves_nothing() {
    in_private_netns(|| {
        let fw = Firewall::new("berth").unwrap();
        fw.probe().unwrap();
        assert_eq!(fw.list().unwrap(), None);
        // Someone else's table and rule, which Berth must not touch.
        sh("nft add table ip other && nft add chain ip other c && nft add rule ip other c counter");
        let state = DesiredState {
            networks: vec![
                net("br-a", [10, 1, 1, 0], false),
                net("br-b", [10, 1, 2, 0], true),
            ],
            forwards: vec![PortForward {
                proto: Protocol::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: Ipv4Addr::new(10, 1, 1, 2),
                container_port: 80,
                bridge: "br-a".into(),
            }],
        };
        // A new namespace copies the host's setting; start from 0 here.
        sh("echo 0 > /proc/sys/net/ipv4/ip_forward");
        let report = fw.sync(&state).unwrap();
        assert!(report.enabled_ip_forward, "ip_forward was 0");
        assert_eq!(sh("cat /proc/sys/net/ipv4/ip_forward").trim(), "1");
        let first = fw.list().unwrap().expect("table exists");
        assert!(
            first.contains("tcp dport 8080 dnat to 10.1.1.2:80"),
            "{first}"
        );
        assert!(first.contains("masquerade"), "{first}");
        let again = fw.sync(&state).unwrap();
        assert!(!again.enabled_ip_forward);
        assert_eq!(fw.list().unwrap().unwrap(), first, "sync is idempotent");

        // A container goes away: its rule goes, the rest stays.
        let fewer = DesiredState {
            forwards: vec![],
            ..state.clone()
        };
        fw.sync(&fewer).unwrap();
        let now = fw.list().unwrap().unwrap();
        assert!(!now.contains("dport 8080"), "{now}");
        assert!(now.contains("masquerade"), "{now}");

        let report = fw.clear().unwrap();
        assert!(report.table_removed);
        assert_eq!(fw.list().unwrap(), None);
        assert_eq!(
            fw.clear().unwrap().iptables_rules_added,
            0,
            "clear twice is fine"
        );
        let all = sh("nft list ruleset");
        assert!(!all.contains("table ip berth"), "{all}");
        assert!(
            all.contains("table ip other"),
            "other tables are left alone: {all}"
        );
    })
}

#[test]
fn forward_policy_drop_gets_only_marked_accepts() {
    in_private_netns(|| {
        // As Docker leaves it: policy DROP plus rules of its own.
        sh("iptables -P FORWARD DROP && iptables -A FORWARD -i docker0 -j ACCEPT");
        let fw = Firewall::new("berth").unwrap();
        let state = DesiredState {
            networks: vec![
                net("br-a", [10, 1, 1, 0], false),
                net("br-i", [10, 1, 3, 0], true),
            ],
            forwards: vec![],
        };
        let report = fw.sync(&state).unwrap();
        // 3 for the bridged network, 1 (intra-bridge only) for the internal one.
        assert_eq!(report.iptables_rules_added, 4, "{report:?}");
        let ours = fw.iptables_rules().unwrap();
        assert_eq!(ours.len(), 4, "{ours:?}");
        assert!(
            ours.iter()
                .all(|r| r.contains("berth:berth") && r.ends_with("-j ACCEPT"))
        );
        assert!(
            ours.iter().any(|r| r.contains("-i br-i -o br-i")),
            "{ours:?}"
        );
        assert!(
            !ours.iter().any(|r| r.starts_with("-A FORWARD -i br-i -m")),
            "{ours:?}"
        );
        assert_eq!(
            fw.sync(&state).unwrap().iptables_rules_added,
            0,
            "idempotent"
        );

        let report = fw.clear().unwrap();
        assert_eq!(report.iptables_rules_removed, 4);
        let left = sh("iptables -S FORWARD");
        assert_eq!(
            left.trim(),
            "-P FORWARD DROP\n-A FORWARD -i docker0 -j ACCEPT",
            "{left}"
        );
    })
}

#[test]
fn no_accepts_added_when_forward_policy_is_accept() {
    in_private_netns(|| {
        let fw = Firewall::new("berth").unwrap();
        let state = DesiredState {
            networks: vec![net("br-a", [10, 1, 1, 0], false)],
            forwards: vec![],
        };
        assert_eq!(fw.sync(&state).unwrap().iptables_rules_added, 0);
        assert!(fw.iptables_rules().unwrap().is_empty());
        fw.clear().unwrap();
    })
}

#[test]
fn networks_are_isolated_from_each_other() {
    in_private_netns(|| {
        bridge("br-a", "10.1.1.1/24");
        bridge("br-b", "10.1.2.1/24");
        let a = Ns::new("br-a", "10.1.1.2/24", "10.1.1.1");
        let b = Ns::new("br-b", "10.1.2.2/24", "10.1.2.1");
        assert_bridge_ready("br-a", "10.1.1.1");
        assert_bridge_ready("br-b", "10.1.2.1");
        sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
        // Without Berth's rules the host routes between them: the test can fail.
        assert!(
            a.exec("busybox ping -c1 -W1 10.1.2.2"),
            "routing works before the rules"
        );

        let fw = Firewall::new("berth").unwrap();
        fw.sync(&DesiredState {
            networks: vec![
                net("br-a", [10, 1, 1, 0], false),
                net("br-b", [10, 1, 2, 0], false),
            ],
            forwards: vec![],
        })
        .unwrap();
        assert!(
            !a.exec("busybox ping -c1 -W1 10.1.2.2"),
            "a reaches b across networks"
        );
        assert!(
            !b.exec("busybox ping -c1 -W1 10.1.1.2"),
            "b reaches a across networks"
        );
        // Each still reaches its gateway (the host).
        assert!(a.exec("busybox ping -c1 -W1 10.1.1.1"));
        assert!(b.exec("busybox ping -c1 -W1 10.1.2.1"));
        fw.clear().unwrap();
        assert!(
            a.exec("busybox ping -c1 -W1 10.1.2.2"),
            "clear removed the isolation rules"
        );
    })
}

#[test]
fn internal_network_cannot_leave_its_bridge() {
    in_private_netns(|| {
        bridge("br-i", "10.1.3.1/24");
        let c = Ns::new("br-i", "10.1.3.2/24", "10.1.3.1");
        let c2 = Ns::new("br-i", "10.1.3.3/24", "10.1.3.1");
        // Another local namespace outside the network, reached through the host.
        let outside = Ns::direct("10.1.9.1/24", "10.1.9.2/24", "10.1.9.1");
        assert_bridge_ready("br-i", "10.1.3.1");
        let fw = Firewall::new("berth").unwrap();
        // As a normal network it gets out (masqueraded)…
        fw.sync(&DesiredState {
            networks: vec![net("br-i", [10, 1, 3, 0], false)],
            forwards: vec![],
        })
        .unwrap();
        assert!(
            c.exec("busybox ping -c1 -W1 10.1.9.2"),
            "bridged egress works"
        );
        // …as an internal one it does not, and nothing is masqueraded.
        fw.sync(&DesiredState {
            networks: vec![net("br-i", [10, 1, 3, 0], true)],
            forwards: vec![],
        })
        .unwrap();
        let table = fw.list().unwrap().unwrap();
        assert!(!table.contains("masquerade"), "{table}");
        assert!(
            !c.exec("busybox ping -c1 -W1 10.1.9.2"),
            "internal network got out"
        );
        assert!(
            !outside.exec("busybox ping -c1 -W1 10.1.3.2"),
            "outside got in"
        );
        assert!(
            c.exec("busybox ping -c1 -W1 10.1.3.3"),
            "same network still works"
        );
        assert!(c2.exec("busybox ping -c1 -W1 10.1.3.2"));
        fw.clear().unwrap();
    })
}

#[test]
fn published_port_from_loopback_other_containers_and_gone_after_removal() {
    in_private_netns(|| {
        bridge("br-p", "10.1.4.1/24");
        let web = Ns::new("br-p", "10.1.4.2/24", "10.1.4.1");
        let client = Ns::new("br-p", "10.1.4.3/24", "10.1.4.1");
        assert_bridge_ready("br-p", "10.1.4.1");
        let _srv = web.httpd("hello-from-web");
        let network = net("br-p", [10, 1, 4, 0], false);
        let forward = |host_ip: Option<Ipv4Addr>, port: u16| PortForward {
            proto: Protocol::Tcp,
            host_ip,
            host_port: port,
            container_ip: Ipv4Addr::new(10, 1, 4, 2),
            container_port: 80,
            bridge: "br-p".into(),
        };
        let fw = Firewall::new("berth").unwrap();
        let get = |url: &str| ok(&format!("curl -sf -m 2 {url} | grep -q hello-from-web"));
        assert!(
            !get("http://127.0.0.1:8080/"),
            "nothing there before the rule"
        );
        fw.sync(&DesiredState {
            networks: vec![network.clone()],
            forwards: vec![
                forward(Some(Ipv4Addr::LOCALHOST), 8080),
                forward(None, 8081),
            ],
        })
        .unwrap();
        assert_eq!(
            sh("cat /proc/sys/net/ipv4/conf/br-p/route_localnet").trim(),
            "1"
        );
        assert!(
            get("http://127.0.0.1:8080/"),
            "loopback-bound port from the host"
        );
        assert!(
            get("http://127.0.0.1:8081/"),
            "any-address port via loopback"
        );
        assert!(
            get("http://10.1.4.1:8081/"),
            "any-address port via a host address"
        );
        // Another container, through the host address (hairpin).
        assert!(
            client.exec("sh -c 'curl -sf -m 2 http://10.1.4.1:8081/ | grep -q hello-from-web'"),
            "hairpin from another container"
        );
        // The loopback-only binding is not reachable on other addresses.
        assert!(!get("http://10.1.4.1:8080/"));
        // route_localnet opens nothing: 127/8 arriving on the bridge is dropped.
        let table = fw.list().unwrap().unwrap();
        assert!(table.contains("ip daddr 127.0.0.0/8 drop"), "{table}");
        fw.sync(&DesiredState {
            networks: vec![network],
            forwards: vec![],
        })
        .unwrap();
        assert!(!get("http://127.0.0.1:8080/"), "rule removed");
        fw.clear().unwrap();
    })
}

#[test]
fn stale_tables_of_dead_daemons_are_removed_live_ones_kept() {
    in_private_netns(|| {
        bridge("br-live", "10.1.7.1/24");
        let live = Firewall::new("berthlive").unwrap();
        live.sync(&DesiredState {
            networks: vec![net("br-live", [10, 1, 7, 0], false)],
            forwards: vec![],
        })
        .unwrap();
        let dead = Firewall::new("berthdead").unwrap();
        dead.sync(&DesiredState {
            networks: vec![net("br-gone", [10, 1, 8, 0], false)],
            forwards: vec![],
        })
        .unwrap();
        sh("nft add table ip notberth");
        let me = Firewall::new("berth").unwrap();
        assert_eq!(
            me.remove_stale_tables().unwrap(),
            vec!["berthdead".to_string()]
        );
        assert!(
            live.list().unwrap().is_some(),
            "a live daemon's table stays"
        );
        assert!(dead.list().unwrap().is_none());
        assert!(
            sh("nft list tables").contains("notberth"),
            "others' tables stay"
        );
        live.clear().unwrap();
    })
}
