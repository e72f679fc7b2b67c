//! A small NETLINK_ROUTE client: the link, address and route operations a
//! bridge network needs, over a raw socket. Every request asks for an ack
//! and a kernel error comes back as a message naming the operation and the
//! link ("create veth vethab12 (peer eth0): File exists").
//!
//! A socket talks to the network namespace it was opened in, so work inside
//! a container's namespace goes through [`in_netns`], which opens the socket
//! on a throwaway thread that has setns()ed there.

use std::fs::File;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use crate::error::{NetworkError, Result};

// rtnetlink message types and flags (linux/rtnetlink.h, linux/netlink.h).
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const RTM_NEWROUTE: u16 = 24;
const RTM_GETROUTE: u16 = 26;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_TABLE: u16 = 15;
const RTM_F_LOOKUP_TABLE: u32 = 0x1000;
const RT_TABLE_MAIN: u8 = 254;
const RTPROT_BOOT: u8 = 3;
const RTN_UNICAST: u8 = 1;

const IFF_UP: u32 = 0x1;
const IFINFOMSG_LEN: usize = 16;
const NLMSG_HDR_LEN: usize = 16;

/// What [`Netlink::link`] reports about a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub index: i32,
    pub name: String,
    pub up: bool,
    pub mtu: u32,
    /// The bridge it is enslaved to (ifindex), if any.
    pub master: Option<i32>,
    pub mac: Option<[u8; 6]>,
    /// The link's alias (`ip link set X alias Y`), if set.
    pub alias: Option<String>,
    /// Its type (IFLA_INFO_KIND: `bridge`, `veth`, `dummy`…); None for
    /// plain devices such as lo or a physical NIC.
    pub kind: Option<String>,
}

/// An IPv4 route from the main table: `dst/prefix` (0.0.0.0/0 for default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub oif: Option<i32>,
}

/// What [`Netlink::route_get`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteLookup {
    pub oif: Option<i32>,
    pub gateway: Option<Ipv4Addr>,
    pub table: u32,
    /// rtm_type: 1 unicast, 2 local, 6 blackhole, 7 unreachable…
    pub kind: u8,
}

/// Builds one request: header, fixed part, then attributes (with nesting).
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = vec![0u8; NLMSG_HDR_LEN];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        Msg {
            buf,
            nests: Vec::new(),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self.buf.resize(align4(self.buf.len()), 0);
        self
    }
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        let mut b = [0u8; IFINFOMSG_LEN];
        b[0] = libc::AF_UNSPEC as u8;
        b[4..8].copy_from_slice(&index.to_ne_bytes());
        b[8..12].copy_from_slice(&flags.to_ne_bytes());
        b[12..16].copy_from_slice(&change.to_ne_bytes());
        self.bytes(&b)
    }
    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.bytes(data)
    }
    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d)
    }
    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.attr(kind, &v.to_ne_bytes())
    }
    fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }
    fn end(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("balanced nesting");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }
    fn finish(&mut self, seq: u32) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        &self.buf
    }
}

/// Attributes of a message body: (type without flags, payload).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let kind = u16::from_ne_bytes([b[2], b[3]]) & 0x3fff;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((kind, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn u32_of(b: &[u8]) -> u32 {
    b.get(..4)
        .map_or(0, |x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

fn ipv4_of(b: &[u8]) -> Option<Ipv4Addr> {
    (b.len() >= 4).then(|| Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// The one interface-name check for names Berth creates or is given (a
/// network's bridge, a container's ifname): 1-15 bytes of ASCII letters,
/// digits, '-', '_' and '.', not "." or "..". The kernel accepts more
/// (quotes, braces, ';'), but such a name would break the nftables ruleset
/// that names the bridge, so the firewall uses this same check.
pub fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty()
        || name.len() > 15
        || name == "."
        || name == ".."
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(NetworkError::InvalidArgument(format!(
            "invalid interface name {name:?}: 1-15 characters of letters, digits, '-', '_', '.'"
        )));
    }
    Ok(())
}

/// A NETLINK_ROUTE socket in the namespace it was opened in.
pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        // SAFETY: plain socket(2); the fd is owned right away.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(NetworkError::os(
                "open netlink socket",
                io::Error::last_os_error(),
            ));
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // Extended acks would give the kernel's text too; errno is enough
        // with our own context, so the socket stays plain.
        Ok(Netlink { fd, seq: 0 })
    }

    fn send(&mut self, msg: &mut Msg) -> Result<u32, io::Error> {
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let data = msg.finish(seq);
        // SAFETY: a sockaddr_nl aimed at the kernel (pid 0) and a buffer we own.
        let r = unsafe {
            let mut sa: libc::sockaddr_nl = std::mem::zeroed();
            sa.nl_family = libc::AF_NETLINK as u16;
            libc::sendto(
                self.fd.as_raw_fd(),
                data.as_ptr().cast(),
                data.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(seq)
    }

    /// Reads replies to `seq` until the ack (or DONE for dumps); returns
    /// the (type, body) of every data message.
    fn recv(&mut self, seq: u32) -> Result<Vec<(u16, Vec<u8>)>, io::Error> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reading into a buffer we own, bounded by its length.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut b = &buf[..n as usize];
            while b.len() >= NLMSG_HDR_LEN {
                let len = u32_of(&b[0..4]) as usize;
                let kind = u16::from_ne_bytes([b[4], b[5]]);
                let mseq = u32_of(&b[8..12]);
                if len < NLMSG_HDR_LEN || len > b.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "truncated netlink message",
                    ));
                }
                let body = &b[NLMSG_HDR_LEN..len];
                b = &b[align4(len).min(b.len())..];
                if mseq != seq {
                    continue;
                }
                match kind {
                    NLMSG_ERROR => {
                        let errno = u32_of(body) as i32;
                        return if errno == 0 {
                            Ok(out)
                        } else {
                            Err(io::Error::from_raw_os_error(-errno))
                        };
                    }
                    NLMSG_DONE => return Ok(out),
                    _ => out.push((kind, body.to_vec())),
                }
            }
        }
    }

    /// One request with an ack; a kernel error is put in `what`'s words.
    fn call(&mut self, msg: &mut Msg, what: impl FnOnce() -> String) -> Result<()> {
        let flags = u16::from_ne_bytes([msg.buf[6], msg.buf[7]]) | NLM_F_ACK;
        msg.buf[6..8].copy_from_slice(&flags.to_ne_bytes());
        self.send(msg)
            .and_then(|seq| self.recv(seq))
            .map(|_| ())
            .map_err(|e| classify(what(), e))
    }

    fn dump(&mut self, msg: &mut Msg, what: &str) -> Result<Vec<(u16, Vec<u8>)>> {
        self.send(msg)
            .and_then(|seq| self.recv(seq))
            .map_err(|e| NetworkError::os(what, e))
    }

    /// The link called `name`, or None when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<LinkInfo>> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_GETLINK, NLM_F_ACK);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        let res = self.send(&mut m).and_then(|seq| self.recv(seq));
        match res {
            Ok(msgs) => Ok(msgs
                .iter()
                .find(|(k, _)| *k == RTM_NEWLINK)
                .and_then(|(_, b)| parse_link(b))),
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
            Err(e) => Err(NetworkError::os(format!("query link {name}"), e)),
        }
    }

    /// Every link in this namespace.
    pub fn links(&mut self) -> Result<Vec<LinkInfo>> {
        let mut m = Msg::new(RTM_GETLINK, NLM_F_DUMP);
        m.ifinfo(0, 0, 0);
        Ok(self
            .dump(&mut m, "list links")?
            .iter()
            .filter(|(k, _)| *k == RTM_NEWLINK)
            .filter_map(|(_, b)| parse_link(b))
            .collect())
    }

    fn index(&mut self, name: &str) -> Result<i32> {
        self.link(name)?
            .map(|l| l.index)
            .ok_or_else(|| NetworkError::NotFound(format!("no link named {name}")))
    }

    /// Creates a bridge (down); `EEXIST` is a Conflict.
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<()> {
        check_ifname(name)?;
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, name);
        if let Some(mtu) = mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.call(&mut m, || format!("create bridge {name}"))
    }

    /// Creates a veth pair. The host end `host` is created here, enslaved
    /// to `master` and brought up when given; the `peer` end goes straight
    /// into the namespace `peer_ns` (an open /proc/<pid>/ns/net) when given,
    /// with `peer_mac`. Doing it in one request saves a move and a rename.
    pub fn create_veth(&mut self, host: &str, peer: &str, opts: &VethOptions<'_>) -> Result<()> {
        check_ifname(host)?;
        check_ifname(peer)?;
        let master = match &opts.master {
            Some(b) => Some(self.index(b)?),
            None => None,
        };
        let up = if opts.up { IFF_UP } else { 0 };
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, up, IFF_UP).attr_str(IFLA_IFNAME, host);
        if let Some(mtu) = opts.mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(idx) = master {
            m.attr_u32(IFLA_MASTER, idx as u32);
        }
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, peer);
        if let Some(mtu) = opts.mtu {
            m.attr_u32(IFLA_MTU, mtu);
        }
        if let Some(mac) = opts.peer_mac {
            m.attr(IFLA_ADDRESS, &mac);
        }
        if let Some(ns) = opts.peer_ns {
            m.attr_u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        }
        m.end().end().end();
        self.call(&mut m, || format!("create veth {host} (peer {peer})"))
    }

    fn set(&mut self, name: &str, what: &str, f: impl FnOnce(&mut Msg)) -> Result<()> {
        let idx = self.index(name)?;
        let mut m = Msg::new(RTM_NEWLINK, 0);
        f(&mut m);
        // The fixed part's index is patched in: ifinfo comes first.
        m.buf[NLMSG_HDR_LEN + 4..NLMSG_HDR_LEN + 8].copy_from_slice(&idx.to_ne_bytes());
        self.call(&mut m, || format!("{what} {name}"))
    }

    pub fn set_up(&mut self, name: &str, up: bool) -> Result<()> {
        let what = if up { "set up" } else { "set down" };
        self.set(name, what, |m| {
            m.ifinfo(0, if up { IFF_UP } else { 0 }, IFF_UP);
        })
    }

    pub fn set_mtu(&mut self, name: &str, mtu: u32) -> Result<()> {
        self.set(name, &format!("set mtu {mtu} on"), |m| {
            m.ifinfo(0, 0, 0).attr_u32(IFLA_MTU, mtu);
        })
    }

    /// Enslaves `name` to the bridge `master` (None releases it).
    pub fn set_master(&mut self, name: &str, master: Option<&str>) -> Result<()> {
        let idx = match master {
            Some(b) => self.index(b)?,
            None => 0,
        };
        self.set(
            name,
            &format!("set master {} of", master.unwrap_or("-")),
            |m| {
                m.ifinfo(0, 0, 0).attr_u32(IFLA_MASTER, idx as u32);
            },
        )
    }

    /// Moves `name` into the namespace open as `ns`.
    pub fn move_to_netns(&mut self, name: &str, ns: &File) -> Result<()> {
        self.set(name, "move to netns", |m| {
            m.ifinfo(0, 0, 0)
                .attr_u32(IFLA_NET_NS_FD, ns.as_raw_fd() as u32);
        })
    }

    /// Renames a (down) link.
    pub fn rename(&mut self, name: &str, new: &str) -> Result<()> {
        check_ifname(new)?;
        self.set(name, &format!("rename to {new}"), |m| {
            m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, new);
        })
    }

    pub fn set_mac(&mut self, name: &str, mac: [u8; 6]) -> Result<()> {
        self.set(name, &format!("set mac {} on", format_mac(&mac)), |m| {
            m.ifinfo(0, 0, 0).attr(IFLA_ADDRESS, &mac);
        })
    }

    /// Sets the link's alias: a free-text label (up to 255 bytes) other
    /// tools show and we use to mark links as ours.
    pub fn set_alias(&mut self, name: &str, alias: &str) -> Result<()> {
        if alias.len() > 255 {
            return Err(NetworkError::InvalidArgument(format!(
                "alias for {name} is longer than 255 bytes"
            )));
        }
        self.set(name, "set alias of", |m| {
            m.ifinfo(0, 0, 0).attr(IFLA_IFALIAS, alias.as_bytes());
        })
    }

    /// Deletes a link (a veth takes its peer with it). Missing is NotFound.
    pub fn delete_link(&mut self, name: &str) -> Result<()> {
        let idx = self.index(name)?;
        let mut m = Msg::new(RTM_DELLINK, 0);
        m.ifinfo(idx, 0, 0);
        self.call(&mut m, || format!("delete link {name}"))
    }

    /// Adds `addr/prefix` to `name` (with the subnet's broadcast address).
    pub fn add_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let idx = self.index(name)?;
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&ifaddrmsg(prefix, idx))
            .attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        if prefix < 31 {
            let host_bits = u32::MAX.checked_shr(prefix as u32).unwrap_or(0);
            let bcast = Ipv4Addr::from(u32::from(addr) | host_bits);
            m.attr(IFA_BROADCAST, &bcast.octets());
        }
        self.call(&mut m, || format!("add address {addr}/{prefix} to {name}"))
    }

    /// Removes `addr/prefix` from `name`.
    pub fn delete_address(&mut self, name: &str, addr: Ipv4Addr, prefix: u8) -> Result<()> {
        let idx = self.index(name)?;
        let mut m = Msg::new(RTM_DELADDR, 0);
        m.bytes(&ifaddrmsg(prefix, idx))
            .attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        self.call(&mut m, || {
            format!("delete address {addr}/{prefix} from {name}")
        })
    }

    /// IPv4 addresses on `name`, as (address, prefix length).
    pub fn addresses(&mut self, name: &str) -> Result<Vec<(Ipv4Addr, u8)>> {
        let idx = self.index(name)?;
        let mut m = Msg::new(RTM_GETADDR, NLM_F_DUMP);
        m.bytes(&ifaddrmsg(0, 0));
        let msgs = self.dump(&mut m, &format!("list addresses of {name}"))?;
        Ok(msgs
            .iter()
            .filter(|(_, b)| b.len() >= 8 && u32_of(&b[4..8]) as i32 == idx)
            .filter_map(|(_, b)| {
                let prefix = b[1];
                let a = attrs(&b[8..]);
                let addr = a
                    .iter()
                    .find(|(k, _)| *k == IFA_LOCAL)
                    .or_else(|| a.iter().find(|(k, _)| *k == IFA_ADDRESS))
                    .and_then(|(_, v)| ipv4_of(v))?;
                Some((addr, prefix))
            })
            .collect())
    }

    /// Adds the default route via `gateway` (reached through `dev`).
    pub fn add_default_route(&mut self, dev: &str, gateway: Ipv4Addr) -> Result<()> {
        let idx = self.index(dev)?;
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&rtmsg(0))
            .attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, idx as u32);
        self.call(&mut m, || {
            format!("add default route via {gateway} dev {dev}")
        })
    }

    /// The route the kernel would use for traffic to `dst` from this host
    /// (`ip route get`): a real lookup, so policy rules and more specific
    /// routes count. `table` is the table it came from.
    pub fn route_get(&mut self, dst: Ipv4Addr) -> Result<RouteLookup> {
        // The ack ends the answer (a single reply has no NLMSG_DONE).
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_ACK);
        let mut rt = rtmsg(32);
        // Report the table the route came from, not "main" (`ip route get`
        // sets it too): a policy rule's table is the useful part.
        rt[8..12].copy_from_slice(&RTM_F_LOOKUP_TABLE.to_ne_bytes());
        m.bytes(&rt).attr(RTA_DST, &dst.octets());
        let what = format!("look up the route to {dst}");
        let msgs = self
            .send(&mut m)
            .and_then(|seq| self.recv(seq))
            .map_err(|e| NetworkError::os(what.clone(), e))?;
        let (_, b) = msgs
            .iter()
            .find(|(k, b)| *k == RTM_NEWROUTE && b.len() >= 12)
            .ok_or_else(|| NetworkError::os(what, io::Error::other("no route in the answer")))?;
        let a = attrs(&b[12..]);
        let get = |k| a.iter().find(|(t, _)| *t == k).map(|(_, v)| *v);
        Ok(RouteLookup {
            oif: get(RTA_OIF).map(|v| u32_of(v) as i32),
            gateway: get(RTA_GATEWAY).and_then(ipv4_of),
            table: get(RTA_TABLE).map_or(b[4] as u32, u32_of),
            kind: b[7],
        })
    }

    /// The main table's IPv4 routes (for overlap checks).
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        let mut m = Msg::new(RTM_GETROUTE, NLM_F_DUMP);
        m.bytes(&rtmsg(0));
        let msgs = self.dump(&mut m, "list routes")?;
        Ok(msgs
            .iter()
            .filter(|(_, b)| b.len() >= 12 && b[0] == libc::AF_INET as u8 && b[4] == RT_TABLE_MAIN)
            .map(|(_, b)| {
                let a = attrs(&b[12..]);
                let get = |k| a.iter().find(|(t, _)| *t == k).map(|(_, v)| *v);
                Route {
                    dst: get(RTA_DST)
                        .and_then(ipv4_of)
                        .unwrap_or(Ipv4Addr::UNSPECIFIED),
                    prefix: b[1],
                    gateway: get(RTA_GATEWAY).and_then(ipv4_of),
                    oif: get(RTA_OIF).map(|v| u32_of(v) as i32),
                }
            })
            .collect())
    }
}

/// How [`Netlink::create_veth`] sets the pair up.
#[derive(Default)]
pub struct VethOptions<'a> {
    pub mtu: Option<u32>,
    /// Bridge for the host end.
    pub master: Option<String>,
    /// Bring the host end up.
    pub up: bool,
    pub peer_ns: Option<&'a File>,
    pub peer_mac: Option<[u8; 6]>,
}

fn ifaddrmsg(prefix: u8, index: i32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = libc::AF_INET as u8;
    b[1] = prefix;
    b[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
    b
}

fn rtmsg(dst_len: u8) -> [u8; 12] {
    [
        libc::AF_INET as u8,
        dst_len,
        0,
        0,
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        0, // RT_SCOPE_UNIVERSE
        RTN_UNICAST,
        0,
        0,
        0,
        0,
    ]
}

fn parse_link(b: &[u8]) -> Option<LinkInfo> {
    if b.len() < IFINFOMSG_LEN {
        return None;
    }
    let index = u32_of(&b[4..8]) as i32;
    let flags = u32_of(&b[8..12]);
    let mut l = LinkInfo {
        index,
        name: String::new(),
        up: flags & IFF_UP != 0,
        mtu: 0,
        master: None,
        mac: None,
        alias: None,
        kind: None,
    };
    for (k, v) in attrs(&b[IFINFOMSG_LEN..]) {
        match k {
            IFLA_IFNAME => l.name = cstr(v),
            IFLA_MTU => l.mtu = u32_of(v),
            IFLA_MASTER => l.master = Some(u32_of(v) as i32).filter(|i| *i != 0),
            IFLA_ADDRESS if v.len() == 6 => l.mac = Some(v.try_into().ok()?),
            IFLA_IFALIAS => l.alias = Some(cstr(v)).filter(|a| !a.is_empty()),
            IFLA_LINKINFO => {
                l.kind = attrs(v)
                    .iter()
                    .find(|(k, _)| *k == IFLA_INFO_KIND)
                    .map(|(_, v)| cstr(v));
            }
            _ => {}
        }
    }
    Some(l)
}

/// EEXIST → Conflict, ENODEV → NotFound, else an OS error; all naming `what`.
fn classify(what: String, e: io::Error) -> NetworkError {
    match e.raw_os_error() {
        Some(libc::EEXIST) => NetworkError::Conflict(format!("{what}: {e}")),
        Some(libc::ENODEV) => NetworkError::NotFound(format!("{what}: {e}")),
        _ => NetworkError::os(what, e),
    }
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Runs `f` with a netlink socket inside the network namespace open as
/// `ns`, on a thread of its own (setns changes only the calling thread, and
/// that thread is then discarded rather than returned to anyone's pool).
pub fn in_netns<T: Send>(ns: &File, f: impl FnOnce(&mut Netlink) -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on a descriptor we hold open for the call.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(NetworkError::os(
                    "enter network namespace",
                    io::Error::last_os_error(),
                ));
            }
            let mut nl = Netlink::open()?;
            f(&mut nl)
        })
        .join()
        .unwrap_or_else(|_| {
            Err(NetworkError::os(
                "network namespace worker",
                io::Error::other("thread panicked"),
            ))
        })
    })
}

/// Opens `/proc/<pid>/ns/net`.
pub fn open_netns(pid: i32) -> Result<File> {
    let p = format!("/proc/{pid}/ns/net");
    File::open(&p).map_err(|e| NetworkError::os(format!("open {p}"), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attrs_have_their_lengths() {
        let mut m = Msg::new(RTM_NEWLINK, 0);
        m.ifinfo(0, 0, 0)
            .begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .end();
        let b = m.finish(7).to_vec();
        assert_eq!(u32_of(&b[0..4]) as usize, b.len());
        let a = attrs(&b[NLMSG_HDR_LEN + IFINFOMSG_LEN..]);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, IFLA_LINKINFO);
        let inner = attrs(a[0].1);
        assert_eq!(inner[0], (IFLA_INFO_KIND, &b"veth\0"[..]));
    }

    #[test]
    fn interface_names() {
        assert!(check_ifname("eth0").is_ok());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a-very-long-name0").is_err());
        assert!(check_ifname("a/b").is_err());
        // The kernel takes these; an nftables ruleset naming them breaks.
        for bad in ["br\"x", "br{x", "br;x", "br x", "..", "é"] {
            assert!(check_ifname(bad).is_err(), "{bad}");
        }
        assert!(check_ifname("br-0.a_b").is_ok());
        assert_eq!(format_mac(&[2, 0x42, 10, 0, 0, 2]), "02:42:0a:00:00:02");
    }
}
