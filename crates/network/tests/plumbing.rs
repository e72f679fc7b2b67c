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
            alias: Some("owner:/nonexistent/root".into()),
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

        bridge::detach(nl, &sa.host_veth).unwrap();
        bridge::detach(nl, &sa.host_veth).unwrap();
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
        bridge::remove(nl, "tbr1").unwrap();
    });
}
