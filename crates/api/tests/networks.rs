//! Root-only: networks through the docker CLI against a private berthd —
//! `network create/ls/inspect/rm/prune/connect/disconnect`, addresses from
//! the subnet, container-to-container traffic over a bridge, and nothing
//! left behind after `rm -f`, `network rm` and a daemon restart.
//!
//! Subnets are 10.x ranges derived from the test process's pid, so parallel
//! runs do not overlap; traffic goes only between containers the test made,
//! after checking their bridge exists, is up and holds the gateway.

mod common;

use std::time::{Duration, Instant};

use common::net::{assert_bridge_ready, bridge_of, inspect, ip_of, network, run_on, subnet};
use common::{Daemon, IMAGE, link_exists, links_on_bridge, unique};

#[test]
fn network_commands_and_cleanup() {
    let mut d = Daemon::start();
    let (cidr, prefix) = subnet(0);
    let net = unique("nc-net");
    let ls = d.ok(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]);
    for want in ["bridge bridge", "host host", "none null"] {
        assert!(ls.contains(want), "{ls}");
    }
    let id = d.ok(&[
        "network",
        "create",
        "--subnet",
        &cidr,
        "--gateway",
        &format!("{prefix}.254"),
        "--ip-range",
        &format!("{prefix}.128/25"),
        "--label",
        "team=net",
        "-o",
        "com.docker.network.driver.mtu=1400",
        &net,
    ]);
    let id = id.trim();
    let n = network(&d, &net);
    assert_eq!(n["Id"], id);
    assert_eq!(n["IPAM"]["Config"][0]["Subnet"], cidr.as_str());
    assert_eq!(n["IPAM"]["Config"][0]["Gateway"], format!("{prefix}.254"));
    assert_eq!(
        n["IPAM"]["Config"][0]["IPRange"],
        format!("{prefix}.128/25")
    );
    assert_eq!(n["Labels"]["team"], "net");
    let bridge = bridge_of(&n);
    assert_bridge_ready(&bridge, &format!("{prefix}.254"));

    // Filters as `docker network ls` sends them.
    let f = d.ok(&["network", "ls", "-q", "--filter", "label=team=net"]);
    assert_eq!(f.trim(), &id[..12]);
    let f = d.ok(&[
        "network",
        "ls",
        "--filter",
        "type=custom",
        "--format",
        "{{.Name}}",
    ]);
    assert_eq!(f.trim(), net);

    // Mistakes are named.
    let o = d.docker(&["network", "create", "--subnet", &cidr, &unique("nc-dup")]);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("overlaps"), "{}", o.stderr);
    let o = d.docker(&["network", "create", &net]);
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    let o = d.docker(&["network", "create", "--subnet", "10.1.2.0/33", "x1"]);
    assert!(o.stderr.contains("10.1.2.0/33"), "{}", o.stderr);
    let o = d.docker(&[
        "network",
        "create",
        "--subnet",
        "10.250.9.0/24",
        "--gateway",
        "10.250.8.1",
        "x2",
    ]);
    assert!(o.stderr.contains("10.250.8.1"), "{}", o.stderr);
    let o = d.docker(&["network", "rm", "bridge"]);
    assert!(o.stderr.contains("pre-defined"), "{}", o.stderr);

    // Addresses come from the range; --ip from the subnet.
    run_on(&d, "nc-a", &net, "60");
    d.ok(&[
        "run",
        "-d",
        "--name",
        "nc-b",
        "--network",
        &net,
        "--ip",
        &format!("{prefix}.7"),
        "--network-alias",
        "bee",
        IMAGE,
        "sleep",
        "60",
    ]);
    let a_ip = ip_of(&d, "nc-a", &net);
    assert_eq!(a_ip, format!("{prefix}.128"));
    assert_eq!(ip_of(&d, "nc-b", &net), format!("{prefix}.7"));
    let b = inspect(&d, &["nc-b"]);
    let ep = &b["NetworkSettings"]["Networks"][&net];
    assert_eq!(ep["NetworkID"], id);
    assert_eq!(ep["Gateway"], format!("{prefix}.254"));
    assert_eq!(ep["IPPrefixLen"], 24);
    assert_eq!(ep["Aliases"][0], "bee");
    assert!(ep["MacAddress"].as_str().unwrap().starts_with("02:42:0a:"));
    assert_eq!(b["HostConfig"]["NetworkMode"], net.as_str());
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        &net,
        "--ip",
        &format!("{prefix}.7"),
        IMAGE,
        "true",
    ]);
    assert!(o.stderr.contains("already in use"), "{}", o.stderr);
    let o = d.docker(&["run", "--rm", "--ip", "172.30.0.9", IMAGE, "true"]);
    assert!(o.stderr.contains("user defined networks"), "{}", o.stderr);

    // The container sees its address, MTU and routes.
    let inside = d.ok(&[
        "exec",
        "nc-a",
        "sh",
        "-c",
        "ip -o -4 addr show eth0; ip -o link show eth0; ip route",
    ]);
    assert!(inside.contains(&format!("inet {a_ip}/24")), "{inside}");
    assert!(inside.contains("mtu 1400"), "{inside}");
    assert!(
        inside.contains(&format!("default via {prefix}.254")),
        "{inside}"
    );
    let resolv = d.ok(&["exec", "nc-a", "cat", "/etc/resolv.conf"]);
    assert!(
        resolv.starts_with(&format!("nameserver {prefix}.254\n")),
        "{resolv}"
    );

    // Two containers on one network reach each other.
    assert_bridge_ready(&bridge, &format!("{prefix}.254"));
    d.ok(&["exec", "nc-a", "ping", "-c1", "-W2", &format!("{prefix}.7")]);

    // Network inspect lists both; rm refuses while they are attached.
    let n = network(&d, &net);
    assert_eq!(n["Containers"].as_object().unwrap().len(), 2, "{n}");
    let o = d.docker(&["network", "rm", &net]);
    assert!(o.stderr.contains("active endpoints"), "{}", o.stderr);

    // Hot-plug into the default bridge and out again.
    d.ok(&["network", "connect", "bridge", "nc-a"]);
    let eth1 = d.ok(&["exec", "nc-a", "ip", "-o", "-4", "addr", "show", "eth1"]);
    let bridge_ip = ip_of(&d, "nc-a", "bridge");
    assert!(eth1.contains(&format!("inet {bridge_ip}/")), "{eth1}");
    assert_eq!(
        inspect(&d, &["nc-a"])["NetworkSettings"]["IPAddress"],
        bridge_ip.as_str()
    );
    let o = d.docker(&["network", "connect", "bridge", "nc-a"]);
    assert!(o.stderr.contains("already exists"), "{}", o.stderr);
    d.ok(&["network", "disconnect", "bridge", "nc-a"]);
    let o = d.docker(&["exec", "nc-a", "ip", "link", "show", "eth1"]);
    assert_ne!(o.code, 0, "eth1 still there");
    assert_eq!(links_on_bridge(&bridge).len(), 2);

    // A stopped container keeps its network but not its address.
    d.ok(&["stop", "-t", "0", "nc-b"]);
    assert_eq!(ip_of(&d, "nc-b", &net), "");
    assert_eq!(links_on_bridge(&bridge).len(), 1);
    d.ok(&["start", "nc-b"]);
    assert_eq!(ip_of(&d, "nc-b", &net), format!("{prefix}.7"));

    // Connected while stopped: plugged in at start, the mode's network first.
    d.ok(&[
        "create",
        "--name",
        "nc-m",
        "--network",
        &net,
        IMAGE,
        "sleep",
        "60",
    ]);
    d.ok(&["network", "connect", "bridge", "nc-m"]);
    d.ok(&["start", "nc-m"]);
    let m = d.ok(&["exec", "nc-m", "sh", "-c", "ip -o -4 addr; ip route"]);
    let m_ip = ip_of(&d, "nc-m", &net);
    let m_bridge_ip = ip_of(&d, "nc-m", "bridge");
    assert!(m.contains(&format!("eth0    inet {m_ip}/24")), "{m}");
    assert!(m.contains(&format!("eth1    inet {m_bridge_ip}/")), "{m}");
    assert!(
        m.contains(&format!("default via {prefix}.254 dev eth0")),
        "{m}"
    );
    let o = d.docker(&["network", "connect", "host", "nc-m"]);
    assert!(o.stderr.contains("host network"), "{}", o.stderr);

    d.ok(&["rm", "-f", "nc-a", "nc-b", "nc-m"]);
    assert!(links_on_bridge(&bridge).is_empty());
    d.ok(&["network", "rm", &net]);
    assert!(!link_exists(&bridge), "bridge {bridge} left behind");
    let o = d.docker(&["network", "inspect", &net]);
    assert_ne!(o.code, 0);

    // Prune takes unused user networks only.
    let (cidr2, _) = subnet(1);
    let keep = unique("nc-keep");
    let gone = unique("nc-gone");
    d.ok(&["network", "create", "--subnet", &cidr2, &keep]);
    d.ok(&["network", "create", &gone]);
    d.ok(&[
        "create",
        "--name",
        "nc-c",
        "--network",
        &keep,
        IMAGE,
        "true",
    ]);
    // A network made just now is younger than 24h: kept; an unknown
    // filter key is refused rather than ignored.
    let out = d.ok(&["network", "prune", "-f", "--filter", "until=24h"]);
    assert!(!out.contains(&gone), "{out}");
    let o = d.docker(&["network", "prune", "-f", "--filter", "driver=bridge"]);
    assert!(o.code != 0 && o.stderr.contains("driver"), "{}", o.stderr);
    let out = d.ok(&["network", "prune", "-f"]);
    assert!(out.contains(&gone) && !out.contains(&keep), "{out}");
    d.ok(&["rm", "nc-c"]);
    d.ok(&["network", "rm", &keep]);
    d.finish();
}

#[test]
fn default_bridge_none_host_and_container_modes() {
    let mut d = Daemon::start();
    let bridge = network(&d, "bridge");
    let gw = bridge["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let dev = bridge_of(&bridge);
    assert_bridge_ready(&dev, &gw);

    d.ok(&[
        "run",
        "-d",
        "--name",
        "nc-web",
        "--hostname",
        "web",
        "--add-host",
        "db:10.9.9.9",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "example.test",
        IMAGE,
        "sleep",
        "60",
    ]);
    let c = inspect(&d, &["nc-web"]);
    let ip = c["NetworkSettings"]["IPAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(c["NetworkSettings"]["Gateway"], gw.as_str());
    assert_eq!(
        c["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
        ip.as_str()
    );
    assert_eq!(c["HostConfig"]["NetworkMode"], "bridge");
    let hosts = d.ok(&["exec", "nc-web", "cat", "/etc/hosts"]);
    assert!(hosts.contains("10.9.9.9\tdb\n"), "{hosts}");
    assert!(hosts.contains(&format!("{ip}\tweb\n")), "{hosts}");
    let resolv = d.ok(&["exec", "nc-web", "cat", "/etc/resolv.conf"]);
    assert_eq!(resolv, "nameserver 192.0.2.53\nsearch example.test\n");
    assert_eq!(d.ok(&["exec", "nc-web", "hostname"]).trim(), "web");

    // container:<x> shares x's interfaces and address.
    let shared = d.ok(&[
        "run",
        "--rm",
        "--network",
        "container:nc-web",
        IMAGE,
        "ip",
        "-o",
        "-4",
        "addr",
        "show",
        "eth0",
    ]);
    assert!(shared.contains(&format!("inet {ip}/")), "{shared}");

    // none: loopback only, up.
    let none = d.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        IMAGE,
        "ip",
        "-o",
        "link",
    ]);
    assert!(none.contains("lo:") && !none.contains("eth0"), "{none}");
    assert!(none.contains("UP"), "{none}");

    // The default bridge carries traffic between its containers.
    assert_bridge_ready(&dev, &gw);
    d.ok(&["run", "--rm", IMAGE, "ping", "-c1", "-W2", &ip]);

    // host: the host's interfaces.
    let host = d.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        IMAGE,
        "ip",
        "-o",
        "link",
        "show",
        &dev,
    ]);
    assert!(host.contains(&dev), "{host}");

    d.ok(&["rm", "-f", "nc-web"]);
    assert!(links_on_bridge(&dev).is_empty());
    d.finish();
}

#[test]
fn restart_keeps_connectivity_and_reconciles() {
    let mut d = Daemon::start();
    let (cidr, prefix) = subnet(2);
    let net = unique("nc-rs");
    d.ok(&["network", "create", "--subnet", &cidr, &net]);
    let bridge = bridge_of(&network(&d, &net));
    run_on(&d, "nc-x", &net, "60");
    run_on(&d, "nc-y", &net, "60");
    // Exits while the daemon is down.
    run_on(&d, "nc-short", &net, "1");
    let y_ip = ip_of(&d, "nc-y", &net);
    let short_ip = ip_of(&d, "nc-short", &net);
    assert_eq!(links_on_bridge(&bridge).len(), 3);

    d.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    d.spawn();
    // The restored daemon collects the exit (from the shim, which kept it).
    let end = Instant::now() + Duration::from_secs(5);
    while !ip_of(&d, "nc-short", &net).is_empty() || links_on_bridge(&bridge).len() != 2 {
        assert!(
            Instant::now() < end,
            "exit not collected: {:?}",
            links_on_bridge(&bridge)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Running}}", "nc-short"])
            .trim(),
        "false"
    );
    // The running ones still talk; the network and its records survived.
    assert_bridge_ready(&bridge, &format!("{prefix}.1"));
    d.ok(&["exec", "nc-x", "ping", "-c1", "-W2", &y_ip]);
    assert_eq!(
        network(&d, &net)["IPAM"]["Config"][0]["Subnet"],
        cidr.as_str()
    );
    // The address the exited container held is free again.
    d.ok(&[
        "run",
        "-d",
        "--name",
        "nc-z",
        "--network",
        &net,
        "--ip",
        &short_ip,
        IMAGE,
        "sleep",
        "60",
    ]);

    d.ok(&["rm", "-f", "nc-x", "nc-y", "nc-z", "nc-short"]);
    assert!(links_on_bridge(&bridge).is_empty());
    d.ok(&["network", "rm", &net]);
    assert!(!link_exists(&bridge));
    d.finish();
}

#[test]
fn bridges_of_deleted_roots_are_collected() {
    let mut a = Daemon::start();
    let bridge = bridge_of(&network(&a, "bridge"));
    assert!(link_exists(&bridge));
    // A daemon killed and its root gone (as a test daemon's temp dir goes).
    a.kill9();
    let root = a.root.path().to_path_buf();
    let moved = root.with_extension("moved");
    std::fs::rename(&root, &moved).unwrap();
    let mut b = Daemon::start();
    let left = link_exists(&bridge);
    std::fs::rename(&moved, &root).unwrap();
    assert!(
        !left,
        "bridge {bridge} of a deleted root survived another daemon's start"
    );
    // A live daemon's bridge is left alone.
    assert!(link_exists(&bridge_of(&network(&b, "bridge"))));
    b.finish();
}

/// `ip …` on the host (names are unique to this test process).
fn ip(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A link Berth did not create is never taken over: not at network create,
/// not at startup (the bridge was replaced by someone else's link while the
/// daemon was down, as docker0 would be), not by network rm. And a lost
/// address table (empty after a power cut) does not stop the daemon nor
/// hand out a running container's address again.
#[test]
fn foreign_links_and_lost_address_tables() {
    let mut d = Daemon::start();
    let foreign = format!("nfx{:x}", std::process::id());
    let peer = format!("{foreign}p");
    // Deleted however the test ends (a panic included).
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["link", "del", &self.0])
                .output();
        }
    }
    let _gone = Gone(foreign.clone());
    // A veth pair: the dummy module may be missing.
    ip(&[
        "link", "add", &foreign, "type", "veth", "peer", "name", &peer,
    ]);
    let opt = format!("com.docker.network.bridge.name={foreign}");
    let o = d.docker(&["network", "create", "-o", &opt, &unique("nf-a")]);
    assert!(
        o.code != 0 && o.stderr.contains(&foreign) && o.stderr.contains("already exists"),
        "{}",
        o.stderr
    );
    ip(&["link", "del", &foreign]);

    let (cidr, _) = subnet(3);
    let net = unique("nf-b");
    d.ok(&["network", "create", "-o", &opt, "--subnet", &cidr, &net]);
    let id = network(&d, &net)["Id"].as_str().unwrap().to_string();
    run_on(&d, "nf-x", &net, "60");
    let x_ip = ip_of(&d, "nf-x", &net);
    d.kill9();
    // While the daemon is down: its table is lost, and its (now empty)
    // bridge is deleted and the name taken by another program's link.
    let table = d.root.path().join(format!("networks/ipam/{id}.json"));
    std::fs::write(&table, b"").unwrap();
    ip(&["link", "del", &foreign]);
    ip(&[
        "link", "add", &foreign, "type", "veth", "peer", "name", &peer,
    ]);
    d.spawn();
    assert!(table.with_extension("json.corrupt").exists());
    // The network is unusable (its bridge is not ours) and says why.
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "nf-y",
        "--network",
        &net,
        IMAGE,
        "sleep",
        "60",
    ]);
    assert!(
        o.code != 0 && o.stderr.contains(&foreign) && o.stderr.contains("not a bridge"),
        "{}",
        o.stderr
    );
    let link = std::fs::read_to_string(format!("/sys/class/net/{foreign}/operstate")).unwrap();
    assert_eq!(link.trim(), "down", "the foreign link was brought up");
    // The running container's address was registered again.
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&table).unwrap()).unwrap();
    assert!(t["allocated"][&x_ip].is_string(), "{t}");
    d.ok(&["rm", "-f", "nf-x", "nf-y"]);
    d.ok(&["network", "rm", &net]);
    assert!(
        link_exists(&foreign),
        "network rm deleted a link it does not own"
    );
    ip(&["link", "del", &foreign]);
    d.finish();
}
