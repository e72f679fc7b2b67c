//! Docker's port publishing vocabulary: `-p` specs, the `"80/tcp"` keys of
//! ExposedPorts and PortBindings, and choosing host ports (fixed, from a range,
//! or ephemeral for `-P`) without colliding with ports already published or in
//! use on the host.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = NetworkError;
    fn from_str(s: &str) -> Result<Protocol> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(NetworkError::InvalidArgument(format!(
                "protocol {s:?}: expected tcp, udp or sctp"
            ))),
        }
    }
}

/// A container port with its protocol: the `"80/tcp"` of ExposedPorts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContainerPort {
    pub port: u16,
    pub proto: Protocol,
}

impl fmt::Display for ContainerPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

impl FromStr for ContainerPort {
    type Err = NetworkError;
    /// `80`, `80/tcp`, `53/udp` (a missing protocol means tcp, as in Docker).
    fn from_str(s: &str) -> Result<ContainerPort> {
        let (port, proto) = match s.split_once('/') {
            Some((p, proto)) => (p, proto.parse()?),
            None => (s, Protocol::Tcp),
        };
        Ok(ContainerPort {
            port: parse_port(port, s)?,
            proto,
        })
    }
}

/// Which host port a binding asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostPort {
    /// Any free ephemeral port.
    Any,
    Fixed(u16),
    /// Any free port in `start..=end`.
    Range(u16, u16),
}

impl HostPort {
    /// PortBindings' `HostPort` string: `""`, `"8080"`, `"8000-8010"`.
    pub fn parse(s: &str) -> Result<HostPort> {
        let s = s.trim();
        if s.is_empty() || s == "0" {
            return Ok(HostPort::Any);
        }
        match s.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (parse_port(a, s)?, parse_port(b, s)?);
                if a > b {
                    return Err(NetworkError::InvalidArgument(format!(
                        "host port range {s:?}: start above end"
                    )));
                }
                Ok(if a == b {
                    HostPort::Fixed(a)
                } else {
                    HostPort::Range(a, b)
                })
            }
            None => Ok(HostPort::Fixed(parse_port(s, s)?)),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostPort::Any => Ok(()),
            HostPort::Fixed(p) => write!(f, "{p}"),
            HostPort::Range(a, b) => write!(f, "{a}-{b}"),
        }
    }
}

/// One requested publication (before host ports are chosen).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortRequest {
    /// `None`: all addresses.
    pub host_ip: Option<IpAddr>,
    pub host_port: HostPort,
    pub container: ContainerPort,
}

/// PortBindings' element: `{"HostIp": "127.0.0.1", "HostPort": "8080"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp", default)]
    pub host_ip: String,
    #[serde(rename = "HostPort", default)]
    pub host_port: String,
}

/// Parses one `-p` value: `[ip:][hostPort[-end]:]containerPort[-end][/proto]`;
/// IPv6 host addresses in brackets (`[::1]:80:80`). Ranges on both sides must
/// have the same length; a host range with a single container port means "any
/// free port of that range".
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>> {
    let bad =
        |why: &str| NetworkError::InvalidArgument(format!("invalid port spec {spec:?}: {why}"));
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (
            r,
            p.parse::<Protocol>()
                .map_err(|_| bad("protocol must be tcp, udp or sctp"))?,
        ),
        None => (spec, Protocol::Tcp),
    };
    // Split off a bracketed IPv6 address first; it contains colons.
    let (ip_part, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, after) = r.split_once(']').ok_or_else(|| bad("unclosed '['"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| bad("expected ':' after ']'"))?;
        (Some(ip), after)
    } else {
        (None, rest)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip_part, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [ip, h, c]) => (Some(*ip), *h, *c),
        (Some(ip), [h, c]) => (Some(ip), *h, *c),
        _ => return Err(bad("too many ':'")),
    };
    let host_ip = match ip {
        None | Some("") => None,
        Some(ip) => Some(
            ip.parse::<IpAddr>()
                .map_err(|_| bad(&format!("host address {ip:?} is not an IP address")))?,
        ),
    };
    if container.is_empty() {
        return Err(bad("no container port"));
    }
    let (c0, c1) = parse_range(container).map_err(|e| bad(&e))?;
    let (h0, h1) = if host.is_empty() {
        (0, 0)
    } else {
        parse_range(host).map_err(|e| bad(&e))?
    };
    let clen = c1 - c0;
    let mut out = Vec::new();
    for (i, cport) in (c0..=c1).enumerate() {
        let host_port = if host.is_empty() {
            HostPort::Any
        } else if h0 == h1 {
            if clen != 0 {
                return Err(bad(
                    "a container port range needs a host port range of the same length",
                ));
            }
            HostPort::Fixed(h0)
        } else if clen == 0 {
            HostPort::Range(h0, h1)
        } else if h1 - h0 == clen {
            HostPort::Fixed(h0 + i as u16)
        } else {
            return Err(bad("host and container port ranges differ in length"));
        };
        out.push(PortRequest {
            host_ip,
            host_port,
            container: ContainerPort { port: cport, proto },
        });
    }
    Ok(out)
}

/// Reads HostConfig.PortBindings (`{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`).
pub fn parse_port_bindings(
    bindings: &BTreeMap<String, Option<Vec<PortBinding>>>,
) -> Result<Vec<PortRequest>> {
    let mut out = Vec::new();
    for (key, list) in bindings {
        let container: ContainerPort = key
            .parse()
            .map_err(|e| NetworkError::InvalidArgument(format!("PortBindings key {key:?}: {e}")))?;
        let list = match list {
            Some(l) if !l.is_empty() => l.clone(),
            // `"80/tcp": null` or `[]`: publish on any address, any port.
            _ => vec![PortBinding::default()],
        };
        for b in list {
            let host_ip = if b.host_ip.is_empty() {
                None
            } else {
                Some(b.host_ip.parse::<IpAddr>().map_err(|_| {
                    NetworkError::InvalidArgument(format!(
                        "PortBindings {key}: HostIp {:?} is not an IP address",
                        b.host_ip
                    ))
                })?)
            };
            let host_port = HostPort::parse(&b.host_port).map_err(|e| {
                NetworkError::InvalidArgument(format!("PortBindings {key}: HostPort: {e}"))
            })?;
            out.push(PortRequest {
                host_ip,
                host_port,
                container,
            });
        }
    }
    Ok(out)
}

/// Reads Config.ExposedPorts keys (`{"80/tcp": {}}`).
pub fn parse_exposed<'a>(keys: impl IntoIterator<Item = &'a String>) -> Result<Vec<ContainerPort>> {
    keys.into_iter()
        .map(|k| {
            k.parse()
                .map_err(|e| NetworkError::InvalidArgument(format!("ExposedPorts key {k:?}: {e}")))
        })
        .collect()
}

/// `-P`: every exposed port not already requested, on an ephemeral host port.
pub fn publish_all(exposed: &[ContainerPort], requested: &[PortRequest]) -> Vec<PortRequest> {
    exposed
        .iter()
        .filter(|c| !requested.iter().any(|r| r.container == **c))
        .map(|c| PortRequest {
            host_ip: None,
            host_port: HostPort::Any,
            container: *c,
        })
        .collect()
}

/// A publication with its host port chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    #[serde(with = "proto_serde")]
    pub proto: Protocol,
}

mod proto_serde {
    use super::Protocol;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(p: &Protocol, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(p.as_str())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Protocol, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Chooses host ports for `requests`. `taken` holds (proto, port) pairs already
/// published by other containers; a chosen port must also be bindable on the host
/// right now (nothing else listening), since a DNAT rule would silently steal
/// traffic from a host service. Fixed ports that are taken fail the way Docker's
/// do ("port is already allocated"); `Any` draws from the kernel's ephemeral range.
pub fn allocate(
    requests: &[PortRequest],
    taken: &HashSet<(Protocol, u16)>,
) -> Result<Vec<PublishedPort>> {
    let mut taken = taken.clone();
    let (lo, hi) = ephemeral_range();
    let mut out = Vec::new();
    // Start where the kernel would not look first, spread by pid, so parallel
    // daemons do not race for the same port every time.
    let mut cursor = lo + (std::process::id() as u16 % (hi - lo).max(1));
    for r in requests {
        let proto = r.container.proto;
        let free = |port: u16, taken: &HashSet<(Protocol, u16)>| {
            !taken.contains(&(proto, port)) && bindable(r.host_ip, port, proto)
        };
        let port = match r.host_port {
            HostPort::Fixed(p) => {
                if !free(p, &taken) {
                    let ip = r
                        .host_ip
                        .map(|i| i.to_string())
                        .unwrap_or_else(|| "0.0.0.0".into());
                    return Err(NetworkError::Conflict(format!(
                        "Bind for {ip}:{p} failed: port is already allocated"
                    )));
                }
                p
            }
            HostPort::Range(a, b) => (a..=b).find(|p| free(*p, &taken)).ok_or_else(|| {
                NetworkError::Conflict(format!("no free host port in {a}-{b} for {}", r.container))
            })?,
            HostPort::Any => {
                let span = (hi - lo) as u32 + 1;
                let mut found = None;
                for _ in 0..span {
                    let p = cursor;
                    cursor = if cursor >= hi { lo } else { cursor + 1 };
                    if free(p, &taken) {
                        found = Some(p);
                        break;
                    }
                }
                found.ok_or_else(|| {
                    NetworkError::Conflict(format!(
                        "no free ephemeral host port for {}",
                        r.container
                    ))
                })?
            }
        };
        taken.insert((proto, port));
        out.push(PublishedPort {
            host_ip: r.host_ip,
            host_port: port,
            container_port: r.container.port,
            proto,
        });
    }
    Ok(out)
}

fn bindable(ip: Option<IpAddr>, port: u16, proto: Protocol) -> bool {
    let addr = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), port);
    match proto {
        Protocol::Tcp => TcpListener::bind(addr).is_ok(),
        Protocol::Udp => UdpSocket::bind(addr).is_ok(),
        // No std SCTP socket; the taken set is all we can check.
        Protocol::Sctp => true,
    }
}

/// The kernel's ephemeral range (`ip_local_port_range`), Docker's fallback
/// 49153-60999 if unreadable.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .filter(|(a, b)| a < b && *a > 0)
        .unwrap_or((49153, 60999))
}

fn parse_port(s: &str, whole: &str) -> Result<u16> {
    match s.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(NetworkError::InvalidArgument(format!(
            "port {s:?} in {whole:?}: expected a number 1-65535"
        ))),
    }
}

fn parse_range(s: &str) -> std::result::Result<(u16, u16), String> {
    let one = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("port {p:?} is not a number 1-65535")),
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b {
                return Err(format!("range {s:?} starts above its end"));
            }
            Ok((a, b))
        }
        None => {
            let p = one(s)?;
            Ok((p, p))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(ip: Option<&str>, host: HostPort, port: u16, proto: Protocol) -> PortRequest {
        PortRequest {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container: ContainerPort { port, proto },
        }
    }

    #[test]
    fn publish_specs() {
        use HostPort::*;
        use Protocol::*;
        assert_eq!(parse_publish("80").unwrap(), vec![req(None, Any, 80, Tcp)]);
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![req(None, Fixed(8080), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            vec![req(Some("127.0.0.1"), Fixed(8080), 80, Udp)]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            vec![req(Some("127.0.0.1"), Any, 80, Tcp)]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            vec![req(Some("::1"), Fixed(8080), 80, Tcp)]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81/sctp").unwrap(),
            vec![
                req(None, Fixed(8000), 80, Sctp),
                req(None, Fixed(8001), 81, Sctp)
            ]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            vec![req(None, Range(8000, 8010), 80, Tcp)]
        );
        assert_eq!(parse_publish("80-81").unwrap().len(), 2);
    }

    #[test]
    fn bad_publish_specs_name_the_spec() {
        for bad in [
            "",
            "0",
            "70000",
            "80/icmp",
            "a:80",
            "1.2.3:80:80",
            "1:2:3:4",
            "8000-8001:80-82",
            "8080:80-81",
            "90-80",
            "[::1",
            "[::1]80:80",
            ":",
            "8080:",
        ] {
            let e = parse_publish(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn port_bindings_json() {
        let json = r#"{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],"53/udp":null,"443":[{"HostIp":"","HostPort":""}]}"#;
        let m: BTreeMap<String, Option<Vec<PortBinding>>> = serde_json::from_str(json).unwrap();
        let mut r = parse_port_bindings(&m).unwrap();
        r.sort_by_key(|r| r.container.port);
        assert_eq!(r[0], req(None, HostPort::Any, 53, Protocol::Udp));
        assert_eq!(
            r[1],
            req(Some("127.0.0.1"), HostPort::Fixed(8080), 80, Protocol::Tcp)
        );
        assert_eq!(r[2], req(None, HostPort::Any, 443, Protocol::Tcp));
        let bad: BTreeMap<String, Option<Vec<PortBinding>>> =
            serde_json::from_str(r#"{"80/tcp":[{"HostIp":"nope","HostPort":"1"}]}"#).unwrap();
        assert!(
            parse_port_bindings(&bad)
                .unwrap_err()
                .to_string()
                .contains("HostIp \"nope\"")
        );
        let bad: BTreeMap<String, Option<Vec<PortBinding>>> =
            serde_json::from_str(r#"{"80/xyz":[]}"#).unwrap();
        assert!(
            parse_port_bindings(&bad)
                .unwrap_err()
                .to_string()
                .contains("\"80/xyz\"")
        );
    }

    #[test]
    fn publish_all_skips_requested_ports() {
        let exposed = parse_exposed(&["80/tcp".to_string(), "53/udp".to_string()]).unwrap();
        let requested = vec![req(None, HostPort::Fixed(8080), 80, Protocol::Tcp)];
        let all = publish_all(&exposed, &requested);
        assert_eq!(all, vec![req(None, HostPort::Any, 53, Protocol::Udp)]);
    }

    #[test]
    fn allocation_avoids_taken_and_bound_ports() {
        // A port held by a listener here must not be chosen or accepted.
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let held_port = held.local_addr().unwrap().port();
        let e = allocate(
            &[req(
                Some("127.0.0.1"),
                HostPort::Fixed(held_port),
                80,
                Protocol::Tcp,
            )],
            &HashSet::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("already allocated"), "{e}");

        let mut taken = HashSet::new();
        let free = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        taken.insert((Protocol::Tcp, free));
        assert!(
            allocate(
                &[req(None, HostPort::Fixed(free), 80, Protocol::Tcp)],
                &taken
            )
            .is_err()
        );
        // The same number on udp is a different port.
        assert!(
            allocate(
                &[req(None, HostPort::Fixed(free), 80, Protocol::Udp)],
                &taken
            )
            .is_ok()
        );

        // Ephemeral ports: distinct, in range, not taken.
        let reqs: Vec<PortRequest> = (0..20)
            .map(|i| req(None, HostPort::Any, 80 + i, Protocol::Tcp))
            .collect();
        let got = allocate(&reqs, &taken).unwrap();
        let (lo, hi) = ephemeral_range();
        let set: HashSet<u16> = got.iter().map(|p| p.host_port).collect();
        assert_eq!(set.len(), 20);
        assert!(
            got.iter()
                .all(|p| p.host_port >= lo && p.host_port <= hi && p.host_port != free)
        );

        // Range: the held port is skipped.
        let got = allocate(
            &[req(
                None,
                HostPort::Range(held_port, held_port.saturating_add(5)),
                80,
                Protocol::Tcp,
            )],
            &HashSet::new(),
        );
        if let Ok(got) = got {
            assert_ne!(got[0].host_port, held_port);
        }
    }
}
