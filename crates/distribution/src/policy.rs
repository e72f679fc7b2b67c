//! Which registries may be reached over plain HTTP: the one place that
//! decides `http://` or `https://` for pull, push, build and login alike.
//!
//! As dockerd: HTTPS everywhere, except loopback registries (localhost,
//! 127.0.0.0/8, ::1) and the registries the operator named insecure
//! (`--insecure-registry host[:port]` or a CIDR). A CIDR matches only a
//! registry named by an IP address: dockerd also resolves names to test
//! them against its CIDRs, but then whoever answers DNS decides whether
//! credentials go out in the clear.

use std::net::IpAddr;
use std::str::FromStr;

/// One `--insecure-registry` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsecureRegistry {
    /// `host` or `host:port`, matched exactly as a reference names it.
    Host(String),
    /// `addr/prefix`: registries named by an IP address in it (any port).
    Net { addr: IpAddr, prefix: u8 },
}

/// A `--insecure-registry` value that is neither `host[:port]` nor a CIDR.
#[derive(Debug, thiserror::Error)]
#[error("insecure registry {value} is not valid: {reason}")]
pub struct InvalidInsecureRegistry {
    pub value: String,
    pub reason: String,
}

impl FromStr for InsecureRegistry {
    type Err = InvalidInsecureRegistry;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| InvalidInsecureRegistry {
            value: s.to_string(),
            reason: reason.to_string(),
        };
        // dockerd drops an http:// or https:// prefix (with a warning) and
        // refuses any other scheme.
        let lower = s.to_ascii_lowercase();
        let v = if lower.starts_with("http://") {
            &s[7..]
        } else if lower.starts_with("https://") {
            &s[8..]
        } else if s.contains("://") {
            return Err(bad("it should not contain '://'"));
        } else {
            s
        };
        let v = v.trim_end_matches('/');
        if v.is_empty() {
            return Err(bad("empty"));
        }
        if let Some((addr, prefix)) = v.split_once('/') {
            let addr: IpAddr = addr
                .parse()
                .map_err(|_| bad("a CIDR must start with an IP address"))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 = prefix
                .parse()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| bad("bad CIDR prefix length"))?;
            return Ok(InsecureRegistry::Net { addr, prefix });
        }
        let (host, port) = split_host_port(v);
        if let Some(p) = port
            && p.parse::<u16>().is_err()
        {
            return Err(bad("invalid port"));
        }
        let host_ok = host.parse::<IpAddr>().is_ok()
            || (!host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                }));
        if !host_ok {
            return Err(bad("invalid host"));
        }
        Ok(InsecureRegistry::Host(v.to_ascii_lowercase()))
    }
}

/// `host[:port]` or `[v6]:port` into host (without brackets) and port.
fn split_host_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((h, tail)) => (h, tail.strip_prefix(':')),
            None => (rest, None),
        };
    }
    // A bare IPv6 address has several colons and no port.
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p)),
        _ => (s, None),
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Is this a loopback registry, which needs no TLS?
pub fn is_local(host: &str) -> bool {
    let name = split_host_port(host).0;
    name == "localhost"
        || name
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.to_canonical().is_loopback())
}

/// The registry policy of a daemon (or of a CLI working on its own store).
/// The default is the secure one: plain HTTP for loopback registries only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegistryPolicy {
    insecure: Vec<InsecureRegistry>,
}

impl RegistryPolicy {
    pub fn with_insecure(insecure: Vec<InsecureRegistry>) -> RegistryPolicy {
        RegistryPolicy { insecure }
    }

    pub fn insecure_registries(&self) -> &[InsecureRegistry] {
        &self.insecure
    }

    /// May `host` (`host[:port]`, as a reference's domain) be spoken to
    /// over plain HTTP?
    pub fn plain_http(&self, host: &str) -> bool {
        if is_local(host) {
            return true;
        }
        let host = host.to_ascii_lowercase();
        let ip = split_host_port(&host).0.parse::<IpAddr>().ok();
        self.insecure.iter().any(|r| match r {
            InsecureRegistry::Host(h) => *h == host,
            InsecureRegistry::Net { addr, prefix } => {
                ip.is_some_and(|ip| in_net(ip.to_canonical(), *addr, *prefix))
            }
        })
    }

    /// `http` or `https` for `host`.
    pub fn scheme(&self, host: &str) -> &'static str {
        if self.plain_http(host) {
            "http"
        } else {
            "https"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(specs: &[&str]) -> RegistryPolicy {
        RegistryPolicy::with_insecure(specs.iter().map(|s| s.parse().unwrap()).collect())
    }

    #[test]
    fn secure_by_default() {
        let p = RegistryPolicy::default();
        for h in ["registry-1.docker.io", "10.0.0.5:5000", "reg.example:443"] {
            assert_eq!(p.scheme(h), "https", "{h}");
        }
        for h in [
            "localhost:5000",
            "127.0.0.1:5000",
            "127.9.9.9",
            "[::1]:5000",
        ] {
            assert_eq!(p.scheme(h), "http", "{h}");
        }
        // Looks local only by prefix.
        assert_eq!(p.scheme("127.example.com"), "https");
        assert_eq!(p.scheme("localhost.example.com:5000"), "https");
    }

    #[test]
    fn insecure_hosts_and_cidrs() {
        let p = policy(&[
            "reg.example:5000",
            "10.1.0.0/16",
            "http://Other.example",
            "fd00::/8",
        ]);
        assert!(p.plain_http("reg.example:5000"));
        assert!(!p.plain_http("reg.example"), "the port is part of the name");
        assert!(!p.plain_http("reg.example:5001"));
        assert!(p.plain_http("other.example"));
        assert!(p.plain_http("10.1.200.3:5000"));
        assert!(p.plain_http("10.1.0.1"));
        assert!(!p.plain_http("10.2.0.1:5000"));
        assert!(p.plain_http("[fd12::1]:5000"));
        assert!(!p.plain_http("[fe80::1]:5000"));
        // A CIDR never matches a name (no DNS decides the scheme).
        assert!(!policy(&["0.0.0.0/0"]).plain_http("reg.example"));
        assert!(policy(&["0.0.0.0/0"]).plain_http("192.0.2.1:5000"));
    }

    #[test]
    fn bad_values_are_refused_with_dockerds_words() {
        for bad in [
            "",
            "ftp://reg",
            "reg.example:port",
            "reg.example:70000",
            "10.0.0.0/33",
            "reg.example/16",
            "bad host",
            "-reg.example",
        ] {
            let e = bad.parse::<InsecureRegistry>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("insecure registry {bad} is not valid")),
                "{bad}: {e}"
            );
        }
        assert_eq!(
            "10.0.0.0/8".parse::<InsecureRegistry>().unwrap(),
            InsecureRegistry::Net {
                addr: "10.0.0.0".parse().unwrap(),
                prefix: 8
            }
        );
    }
}
