//! Root-only: netlink operations and bridge plumbing against the real
//! kernel. Each test runs its "host" side on a thread inside a fresh network
//! namespace, and its "containers" are `unshare -n sleep` processes, so
//! nothing touches the machine's own interfaces and parallel runs cannot
//! collide.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};

use berth_network::NetworkError;
use berth_network::bridge::{self, AttachSpec, BridgeSpec};
use berth_network::netlink::{Netlink, VethOptions, in_netns, open_netns};

fn require_root() {
    // SAFETY: geteuid cannot fail.
    assert_eq!(unsafe { libc::geteuid() }, 0, "these tests need root");
}

/// Runs `f` on a thread in a new, empty network namespace.
fn in_private_host<T: Send>(f: impl FnOnce(&mut Netlink) -> T + Send) -> T {
    require_root();
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: unshare affects only this thread, which ends after `f`.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let mut nl = Netlink::open().unwrap();
            f(&mut nl)
        })
        .join()
        .unwrap()
    })
}

/// A process in a network namespace of its own, killed on drop.
struct Ns(Child);

impl Ns {
    fn new() -> Ns {
        let c = Command::new("unshare")
            .args(["-n", "sleep", "60"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        // unshare(1) execs sleep after unshare(2): wait until the namespace
        // differs from this thread's.
        let mine = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
        for _ in 0..200 {
            if std::fs::read_link(format!("/proc/{}/ns/net", c.id())).is_ok_and(|l| l != mine) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ns(c)
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", self.pid()))
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn link_operations() {
    in_private_host(|nl| {
        assert!(nl.link("tbr0").unwrap().is_none());
        nl.create_bridge("tbr0", Some(1400)).unwrap();
        let e = nl.create_bridge("tbr0", None).unwrap_err();
        assert!(
            matches!(e, NetworkError::Conflict(_)) && e.to_string().contains("tbr0"),
            "{e}"
        );
        let l = nl.link("tbr0").unwrap().unwrap();
        assert_eq!(l.mtu, 1400);
        assert!(!l.up);
        nl.set_up("tbr0", true).unwrap();
        nl.set_mtu("tbr0", 1300).unwrap();
        let l = nl.link("tbr0").unwrap().unwrap();
        assert!(l.up);
        assert_eq!(l.mtu, 1300);

        nl.create_veth("tva", "tvb", &VethOptions::default())
            .unwrap();
        nl.set_master("tva", Some("tbr0")).unwrap();
        assert_eq!(nl.link("tva").unwrap().unwrap().master, Some(l.index));
        nl.set_master("tva", None).unwrap();
        assert_eq!(nl.link("tva").unwrap().unwrap().master, None);
        nl.rename("tvb", "tvc").unwrap();
        assert!(nl.link("tvb").unwrap().is_none());
        nl.set_mac("tvc", [2, 0x42, 1, 2, 3, 4]).unwrap();
        assert_eq!(
            nl.link("tvc").unwrap().unwrap().mac,
            Some([2, 0x42, 1, 2, 3, 4])
        );
        nl.add_address("tbr0", Ipv4Addr::new(10, 250, 0, 1), 24)
            .unwrap();
        assert_eq!(
            nl.addresses("tbr0").unwrap(),
            vec![(Ipv4Addr::new(10, 250, 0, 1), 24)]
        );
        let routes = nl.routes().unwrap();
        assert!(
            routes
                .iter()
                .any(|r| r.dst == Ipv4Addr::new(10, 250, 0, 0) && r.prefix == 24),
            "{routes:?}"
        );

        // Move into another namespace, configure there.
        let ns = Ns::new();
        let f = open_netns(ns.pid()).unwrap();
        nl.move_to_netns("tvc", &f).unwrap();
        assert!(nl.link("tvc").unwrap().is_none());
        in_netns(&f, |inner| {
            inner.set_up("tvc", true)?;
            inner.add_address("tvc", Ipv4Addr::new(10, 250, 0, 2), 24)?;
            inner.add_default_route("tvc", Ipv4Addr::new(10, 250, 0, 1))
        })
        .unwrap();
        let out = ns.run(&["ip", "-4", "route"]);
        let routes = String::from_utf8_lossy(&out.stdout);
        assert!(
            routes.contains("default via 10.250.0.1 dev tvc"),
            "{routes}"
        );

        nl.delete_link("tva").unwrap();
        assert!(nl.link("tva").unwrap().is_none());
        let e = nl.delete_link("tva").unwrap_err();
        assert!(
            matches!(e, NetworkError::NotFound(_)) && e.to_string().contains("tva"),
            "{e}"
        );
        let e = nl.set_up("nope0", true).unwrap_err();
        assert!(e.to_string().contains("nope0"), "{e}");
        assert!(nl.link("bad/name").is_err());
        // The peer went with the host end.
        let out = ns.run(&["ip", "-br", "link"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("tvc"));
    });
}

#[test]
fn bridge_attach_ping_detach() {
    in_private_host(|nl| {
        let spec = BridgeSpec {
            name: "tbr1".into(),
            gateway: Ipv4Addr::new(10, 251, 0, 1),
            prefix: 24,
            mtu: Some(1450),
            alias: "owner:/nonexistent/root".into(),
        };
        let e = bridge::check_ready(nl, "tbr1", spec.gateway).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        bridge::ensure(nl, &spec).unwrap();
        // A stale address from an earlier subnet goes; the gateway stays.
        nl.add_address("tbr1", Ipv4Addr::new(10, 252, 0, 1), 24)
            .unwrap();
        bridge::ensure(nl, &spec).unwrap();
        assert_eq!(nl.addresses("tbr1").unwrap(), vec![(spec.gateway, 24)]);
        bridge::check_ready(nl, "tbr1", spec.gateway).unwrap();
        let e = bridge::check_ready(nl, "tbr1", Ipv4Addr::new(10, 251, 0, 9)).unwrap_err();
        assert!(e.to_string().contains("gateway address 10.251.0.9"), "{e}");

        let (a, b) = (Ns::new(), Ns::new());
        let mut plug = |ns: &Ns, id: &str, last: u8| {
            let f = open_netns(ns.pid()).unwrap();
            let s = AttachSpec {
                bridge: "tbr1".into(),
                host_veth: bridge::host_veth_name(id),
                ifname: "eth0".into(),
                ip: Ipv4Addr::new(10, 251, 0, last),
                prefix: 24,
                gateway: spec.gateway,
                mtu: spec.mtu,
                default_route: true,
            };
            bridge::attach(nl, &f, &s).unwrap();
            s
        };
        let sa = plug(&a, "aaaaaaa1", 2);
        let sb = plug(&b, "bbbbbbb2", 3);
        let host = nl.link(&sa.host_veth).unwrap().unwrap();
        assert!(host.up);
        assert_eq!(host.mtu, 1450);
        let inside = String::from_utf8_lossy(&a.run(&["ip", "-o", "link", "show", "eth0"]).stdout)
            .into_owned();
        assert!(
            inside.contains("02:42:0a:fb:00:02") && inside.contains("mtu 1450"),
            "{inside}"
        );
        // Attaching the same endpoint again fails and leaves the first one.
        let f = open_netns(a.pid()).unwrap();
        assert!(bridge::attach(nl, &f, &sa).is_err());
        assert!(nl.link(&sa.host_veth).unwrap().is_some());

        bridge::check_ready(nl, "tbr1", spec.gateway).unwrap();
        let ping = a.run(&["busybox", "ping", "-c1", "-W2", "10.251.0.3"]);
        assert!(
            ping.status.success(),
            "ping over the bridge: {}",
            String::from_utf8_lossy(&ping.stdout)
        );

        bridge::detach(nl, &sa.host_veth, "tbr1").unwrap();
        bridge::detach(nl, &sa.host_veth, "tbr1").unwrap();
        assert!(nl.link(&sa.host_veth).unwrap().is_none());
        let out = a.run(&["ip", "-br", "link"]);
        assert!(!String::from_utf8_lossy(&out.stdout).contains("eth0"));
        drop(b);
        // The namespace's end died with it, taking the host end along.
        for _ in 0..100 {
            if nl.link(&sb.host_veth).unwrap().is_none() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(nl.link(&sb.host_veth).unwrap().is_none());
        assert_eq!(
            nl.link("tbr1").unwrap().unwrap().alias.as_deref(),
            Some("owner:/nonexistent/root")
        );
        // Owner alive: kept; owner gone: collected.
        let kept = bridge::remove_orphans(nl, "owner:", |_| false).unwrap();
        assert!(kept.is_empty());
        let gone = bridge::remove_orphans(nl, "owner:", |o| o == "/nonexistent/root").unwrap();
        assert_eq!(gone, ["tbr1"]);
        assert!(nl.link("tbr1").unwrap().is_none());
        bridge::remove(nl, "tbr1", "owner:/nonexistent/root").unwrap();
    });
}

/// `ip …` inside the test's private host namespace (a child inherits the
/// spawning thread's namespace).
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A link that merely has the name (Docker's docker0, an admin's br0, a
/// veth) is never configured or deleted: only a bridge with our mark.
#[test]
fn foreign_links_are_not_adopted_or_deleted() {
    in_private_host(|nl| {
        let spec = |name: &str| BridgeSpec {
            name: name.into(),
            gateway: Ipv4Addr::new(10, 254, 0, 1),
            prefix: 24,
            mtu: Some(1400),
            alias: "owner:/me".into(),
        };
        // Not a bridge at all.
        nl.create_veth("tfor0", "tfor1", &VethOptions::default())
            .unwrap();
        let e = bridge::ensure(nl, &spec("tfor0")).unwrap_err();
        assert!(
            matches!(e, NetworkError::Conflict(_))
                && e.to_string().contains("tfor0")
                && e.to_string().contains("not a bridge (kind veth)"),
            "{e}"
        );
        assert!(bridge::remove(nl, "tfor0", "owner:/me").is_err());
        let l = nl.link("tfor0").unwrap().unwrap();
        assert_eq!(l.kind.as_deref(), Some("veth"));
        assert!(!l.up && l.mtu == 1500 && nl.addresses("tfor0").unwrap().is_empty());

        // Someone else's bridge (no mark, or another owner's).
        nl.create_bridge("tdock0", None).unwrap();
        for alias in [None, Some("owner:/someone-else")] {
            if let Some(a) = alias {
                nl.set_alias("tdock0", a).unwrap();
            }
            let e = bridge::ensure(nl, &spec("tdock0")).unwrap_err();
            assert!(e.to_string().contains("not this Berth daemon's"), "{e}");
            let e = bridge::remove(nl, "tdock0", "owner:/me").unwrap_err();
            assert!(e.to_string().contains("tdock0"), "{e}");
            let l = nl.link("tdock0").unwrap().unwrap();
            assert!(!l.up && l.mtu == 1500 && nl.addresses("tdock0").unwrap().is_empty());
        }
        // Orphan collection skips non-bridges carrying a matching alias.
        nl.set_alias("tfor0", "owner:/gone").unwrap();
        assert!(bridge::remove_orphans(nl, "owner:", |_| true).unwrap() == ["tdock0"]);
        assert!(nl.link("tfor0").unwrap().is_some());

        // Ours: created with the mark, configured, removable.
        bridge::ensure(nl, &spec("tmine0")).unwrap();
        let l = nl.link("tmine0").unwrap().unwrap();
        assert_eq!(
            (l.kind.as_deref(), l.alias.as_deref()),
            (Some("bridge"), Some("owner:/me"))
        );
        bridge::ensure(nl, &spec("tmine0")).unwrap();

        // A veth of Docker's naming on another bridge is left alone; a
        // detached one too; ours goes.
        nl.create_bridge("tdock1", None).unwrap();
        for (veth, master) in [("veth0aaaaaa", Some("tdock1")), ("veth0bbbbbb", None)] {
            nl.create_veth(
                veth,
                &format!("p{}", &veth[4..]),
                &VethOptions {
                    master: master.map(str::to_string),
                    ..VethOptions::default()
                },
            )
            .unwrap();
            let e = bridge::detach(nl, veth, "tmine0").unwrap_err();
            assert!(e.to_string().contains(veth), "{e}");
            assert!(nl.link(veth).unwrap().is_some());
        }
        nl.create_veth(
            "veth0cccccc",
            "p0cccccc",
            &VethOptions {
                master: Some("tmine0".into()),
                ..VethOptions::default()
            },
        )
        .unwrap();
        bridge::detach(nl, "veth0cccccc", "tmine0").unwrap();
        assert!(nl.link("veth0cccccc").unwrap().is_none());
        bridge::remove(nl, "tmine0", "owner:/me").unwrap();
        assert!(nl.link("tmine0").unwrap().is_none());
    });
}

/// check_ready asks the kernel where the subnet's traffic goes: a more
/// specific route or a policy rule sending it elsewhere is an error that
/// names the route.
#[test]
fn check_ready_refuses_subnets_routed_elsewhere() {
    in_private_host(|nl| {
        let spec = BridgeSpec {
            name: "trt0".into(),
            gateway: Ipv4Addr::new(10, 253, 0, 1),
            prefix: 24,
            mtu: None,
            alias: "owner:/me".into(),
        };
        bridge::ensure(nl, &spec).unwrap();
        bridge::check_ready(nl, "trt0", spec.gateway).unwrap();
        nl.create_bridge("tup0", None).unwrap();
        nl.set_up("tup0", true).unwrap();
        nl.add_address("tup0", Ipv4Addr::new(10, 99, 0, 1), 24)
            .unwrap();

        ip(&["route", "add", "10.253.0.0/25", "dev", "tup0"]);
        let e = bridge::check_ready(nl, "trt0", spec.gateway)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10.253.0.2") && e.contains("to tup0") && e.contains("table 254"),
            "{e}"
        );
        ip(&["route", "del", "10.253.0.0/25", "dev", "tup0"]);
        bridge::check_ready(nl, "trt0", spec.gateway).unwrap();

        ip(&[
            "route",
            "add",
            "10.253.0.0/24",
            "dev",
            "tup0",
            "table",
            "77",
        ]);
        ip(&[
            "rule",
            "add",
            "to",
            "10.253.0.0/24",
            "lookup",
            "77",
            "pref",
            "100",
        ]);
        let e = bridge::check_ready(nl, "trt0", spec.gateway)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("10.253.0.2") && e.contains("to tup0") && e.contains("table 77"),
            "{e}"
        );
        ip(&["rule", "del", "pref", "100"]);
        bridge::check_ready(nl, "trt0", spec.gateway).unwrap();

        // A blackhole route for part of the subnet is no better.
        ip(&["route", "add", "blackhole", "10.253.0.254/32"]);
        let e = bridge::check_ready(nl, "trt0", spec.gateway)
            .unwrap_err()
            .to_string();
        assert!(e.contains("10.253.0.254") && e.contains("trt0"), "{e}");
    });
}
