//! Root-only: published ports, embedded DNS and isolation through the docker
//! CLI against a private berthd (its own nftables table, bridge and subnets).
//! Traffic goes only to containers the test made and to the host's loopback,
//! after checking their bridge exists, is up and holds the gateway.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::net::{assert_bridge_ready, bridge_of, inspect, ip_of, network, subnet};
use common::{Daemon, IMAGE, unique};

/// An httpd container serving `body`.
const HTTPD: &str = "echo $BODY > /tmp/index.html; exec httpd -f -p 80 -h /tmp";

/// `docker run -d --name NAME -e BODY=BODY EXTRA... busybox httpd`.
fn run_httpd(d: &Daemon, name: &str, body: &str, extra: &[&str]) {
    let env = format!("BODY={body}");
    let mut args = vec!["run", "-d", "--name", name, "-e", &env];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[IMAGE, "sh", "-c", HTTPD]);
    d.ok(&args);
}

/// A host port nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GNU wget on the host (the brief's check); Some(body) on success.
fn wget(url: &str) -> Option<String> {
    let out = Command::new("wget")
        .args(["-qO-", "-T", "3", "-t", "1", url])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// wget until it answers (httpd starting) or 5 s pass.
fn wget_when_up(url: &str) -> Option<String> {
    for _ in 0..50 {
        if let Some(body) = wget(url) {
            return Some(body);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}

fn rules(d: &Daemon) -> String {
    d.nft_rules()
}

/// The default bridge's device and gateway, checked ready.
fn default_bridge(d: &Daemon) -> (String, String) {
    let net = network(d, "bridge");
    let gw = net["IPAM"]["Config"][0]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    let br = bridge_of(&net);
    assert_bridge_ready(&br, &gw);
    (br, gw)
}

#[test]
fn published_ports_from_host_and_containers_survive_restart_and_go_with_rm() {
    let mut d = Daemon::start();
    let (p1, p2) = (free_port(), free_port());
    let web = unique("web");
    run_httpd(
        &d,
        &web,
        "hello-berth",
        &[
            "-p",
            &format!("127.0.0.1:{p1}:80"),
            "-p",
            &format!("{p2}:80"),
        ],
    );
    let (_, gw) = default_bridge(&d);
    let url1 = format!("http://127.0.0.1:{p1}/");
    let body = wget_when_up(&url1);
    assert_eq!(body.as_deref(), Some("hello-berth"), "{}", rules(&d));
    assert_eq!(
        wget(&format!("http://127.0.0.1:{p2}/")).as_deref(),
        Some("hello-berth")
    );

    // What docker port, ps and inspect show.
    let port = d.ok(&["port", &web]);
    assert!(
        port.contains(&format!("80/tcp -> 127.0.0.1:{p1}")),
        "{port}"
    );
    assert!(port.contains(&format!("80/tcp -> 0.0.0.0:{p2}")), "{port}");
    let ps = d.ok(&["ps", "--format", "{{.Ports}}"]);
    assert!(ps.contains(&format!("127.0.0.1:{p1}->80/tcp")), "{ps}");
    let ports = &inspect(&d, &[&web])["NetworkSettings"]["Ports"]["80/tcp"];
    assert_eq!(ports.as_array().map(Vec::len), Some(2), "{ports}");

    // From another container, through the host's address (hairpin).
    let get = format!("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {gw} {p2}");
    let out = d.ok(&["run", "--rm", IMAGE, "sh", "-c", &get]);
    assert!(out.contains("hello-berth"), "{out}");

    // A taken host port is refused, naming it.
    let again = d.docker(&[
        "run",
        "-d",
        "-p",
        &format!("127.0.0.1:{p1}:80"),
        IMAGE,
        "true",
    ]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains(&format!("{p1}")), "{}", again.stderr);

    // The daemon dies and comes back: same rules, same answers.
    let before = rules(&d);
    d.kill9();
    assert_eq!(
        wget(&url1).as_deref(),
        Some("hello-berth"),
        "rules live in the kernel"
    );
    d.spawn();
    assert_eq!(rules(&d), before);
    assert_eq!(wget(&url1).as_deref(), Some("hello-berth"));

    // -P: every exposed port on an ephemeral host port.
    let auto = unique("auto");
    run_httpd(&d, &auto, "auto", &["--expose", "80", "-P"]);
    let line = d.ok(&["port", &auto, "80/tcp"]);
    let host_port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let lo: u16 = range.split_whitespace().next().unwrap().parse().unwrap();
    assert!(host_port >= lo, "{line}");
    let body = wget_when_up(&format!("http://127.0.0.1:{host_port}/"));
    assert_eq!(body.as_deref(), Some("auto"), "-P port {host_port}");

    d.ok(&["rm", "-f", &web, &auto]);
    let after = rules(&d);
    assert!(!after.contains("dnat to"), "{after}");
    assert_eq!(wget(&url1), None, "still answering after rm -f");
    d.finish();
}

#[test]
fn names_and_aliases_resolve_on_their_network_only_and_after_restart() {
    let mut d = Daemon::start();
    let (na, nb) = (unique("dns-a"), unique("dns-b"));
    let (ca, gwa) = subnet(0);
    let (cb, _) = subnet(1);
    d.ok(&["network", "create", "--subnet", &ca, &na]);
    d.ok(&["network", "create", "--subnet", &cb, &nb]);
    let web = unique("web");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &web,
        "--network",
        &na,
        "--network-alias",
        "webalias",
        IMAGE,
        "sleep",
        "300",
    ]);
    let ip = ip_of(&d, &web, &na);
    let id12 = d.ok(&["inspect", "-f", "{{.Id}}", &web])[..12].to_string();
    let gateway = format!("{gwa}.1");
    assert_bridge_ready(&bridge_of(&network(&d, &na)), &gateway);
    let resolve = |d: &Daemon, net: &str, name: &str| {
        d.docker(&["run", "--rm", "--network", net, IMAGE, "nslookup", name])
    };
    for name in [web.as_str(), "webalias", "WEBALIAS", id12.as_str()] {
        let o = resolve(&d, &na, name);
        assert!(
            o.stdout.contains(&format!("Address: {ip}")),
            "{name}: {}{}",
            o.stdout,
            o.stderr
        );
    }
    let ping = d.docker(&[
        "run",
        "--rm",
        "--network",
        &na,
        IMAGE,
        "ping",
        "-c1",
        "-W2",
        "webalias",
    ]);
    assert_eq!(ping.code, 0, "{}{}", ping.stdout, ping.stderr);
    let conf = d.ok(&[
        "run",
        "--rm",
        "--network",
        &na,
        IMAGE,
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(conf.contains(&format!("nameserver {gateway}")), "{conf}");

    // Another network does not see the name.
    let o = resolve(&d, &nb, &web);
    assert!(!o.stdout.contains(&ip), "{}", o.stdout);

    // connect/disconnect add and withdraw names.
    let late = unique("late");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &late,
        "--network",
        &nb,
        IMAGE,
        "sleep",
        "300",
    ]);
    d.ok(&["network", "connect", "--alias", "latealias", &na, &late]);
    let late_ip = ip_of(&d, &late, &na);
    let o = resolve(&d, &na, "latealias");
    assert!(
        o.stdout.contains(&format!("Address: {late_ip}")),
        "{}{}",
        o.stdout,
        o.stderr
    );
    d.ok(&["network", "disconnect", &na, &late]);
    let o = resolve(&d, &na, "latealias");
    assert!(!o.stdout.contains(&late_ip), "{}", o.stdout);
    d.ok(&["rm", "-f", &late]);

    d.kill9();
    d.spawn();
    let o = resolve(&d, &na, "webalias");
    assert!(
        o.stdout.contains(&format!("Address: {ip}")),
        "after restart: {}{}",
        o.stdout,
        o.stderr
    );

    // Gone with the container.
    d.ok(&["rm", "-f", &web]);
    let o = resolve(&d, &na, &web);
    assert!(!o.stdout.contains(&ip), "{}", o.stdout);
    d.ok(&["network", "rm", &na, &nb]);
    d.finish();
}

#[test]
fn user_networks_are_isolated_and_internal_ones_closed() {
    let mut d = Daemon::start();
    let (na, nb, ni) = (unique("iso-a"), unique("iso-b"), unique("iso-i"));
    let (ca, ga) = subnet(0);
    let (cb, gb) = subnet(1);
    let (ci, gi) = subnet(2);
    d.ok(&["network", "create", "--subnet", &ca, &na]);
    d.ok(&["network", "create", "--subnet", &cb, &nb]);
    d.ok(&["network", "create", "--internal", "--subnet", &ci, &ni]);
    let b = unique("b");
    d.ok(&[
        "run",
        "-d",
        "--name",
        &b,
        "--network",
        &nb,
        IMAGE,
        "sleep",
        "300",
    ]);
    let b_ip = ip_of(&d, &b, &nb);
    for (net, gw) in [(&na, &ga), (&nb, &gb), (&ni, &gi)] {
        assert_bridge_ready(&bridge_of(&network(&d, net)), &format!("{gw}.1"));
    }
    let ping = |net: &str, target: &str| {
        d.docker(&[
            "run",
            "--rm",
            "--network",
            net,
            IMAGE,
            "ping",
            "-c1",
            "-W1",
            target,
        ])
        .code
    };
    assert_eq!(ping(&nb, &b_ip), 0, "same network");
    assert_ne!(ping(&na, &b_ip), 0, "across user networks");
    assert_ne!(ping(&ni, &b_ip), 0, "out of an internal network");
    // An internal network's containers get no default route at all.
    let routes = d.ok(&["run", "--rm", "--network", &ni, IMAGE, "ip", "route"]);
    assert!(!routes.contains("default"), "{routes}");
    let table = rules(&d);
    let bi = bridge_of(&network(&d, &ni));
    assert!(
        table.contains(&format!("iifname \"{bi}\" oifname != \"{bi}\" drop")),
        "{table}"
    );
    assert!(
        !table.contains(&format!("ip saddr {ci} ")),
        "internal is masqueraded: {table}"
    );
    let bridges: Vec<String> = [&na, &nb, &ni]
        .iter()
        .map(|n| bridge_of(&network(&d, n)))
        .collect();
    d.ok(&["rm", "-f", &b]);
    d.ok(&["network", "rm", &na, &nb, &ni]);
    let table = rules(&d);
    for br in &bridges {
        assert!(!table.contains(br.as_str()), "{table}");
    }
    d.finish();
}

/// berth-proxy processes publishing `port` (by their argv).
fn proxies_for(port: u16) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let argv: Vec<&[u8]> = argv.split(|b| *b == 0).collect();
            argv.first().is_some_and(|a| a.ends_with(b"berth-proxy"))
                && argv
                    .windows(2)
                    .any(|w| w[0] == b"-host-port" && w[1] == port.to_string().as_bytes())
        })
        .collect()
}

#[test]
fn without_nftables_ports_go_through_the_userland_proxy() {
    let mut d = Daemon::start_with_env(&[("BERTH_NFTABLES", "0")]);
    let warnings = d.ok(&["info", "--format", "{{json .Warnings}}"]);
    assert!(warnings.contains("nftables disabled"), "{warnings}");
    let port = free_port();
    let web = unique("web");
    run_httpd(
        &d,
        &web,
        "via-proxy",
        &["-p", &format!("127.0.0.1:{port}:80")],
    );
    default_bridge(&d);
    let url = format!("http://127.0.0.1:{port}/");
    assert_eq!(wget_when_up(&url).as_deref(), Some("via-proxy"));
    assert_eq!(proxies_for(port).len(), 1);
    assert_eq!(rules(&d), "", "no nftables table in proxy mode");

    // The proxy is its own process: a daemon restart does not interrupt it,
    // and the new daemon still stops it with the container.
    d.kill9();
    assert_eq!(wget(&url).as_deref(), Some("via-proxy"));
    d.spawn();
    d.ok(&["rm", "-f", &web]);
    let mut gone = false;
    for _ in 0..50 {
        gone = proxies_for(port).is_empty();
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone, "berth-proxy for {port} outlived its container");
    assert_eq!(wget(&url), None);
    d.finish();
}
