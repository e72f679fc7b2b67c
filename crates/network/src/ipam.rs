//! IPv4 address management for one network: its subnet, gateway and
//! optional allocation range, and the addresses handed out. The allocation
//! table is written (temp file + rename) before an address is returned, so
//! a daemon crash or restart never hands one out twice. There is no fsync:
//! it cost 1-10 ms per container start, and it would only matter if the
//! machine itself went down — which takes every container (and so every
//! address) with it; the engine's startup reconcile frees what the table
//! still lists for containers that are not running.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{NetworkError, Result};
use crate::netlink::Route;

/// An IPv4 prefix, stored in its canonical form (host bits zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Subnet {
        let mask = mask(prefix);
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask),
            prefix,
        }
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        let p = self.prefix.min(other.prefix);
        u32::from(self.addr) & mask(p) == u32::from(other.addr) & mask(p)
    }
    /// First and last address of the prefix.
    pub fn first(&self) -> u32 {
        u32::from(self.addr)
    }
    pub fn last(&self) -> u32 {
        u32::from(self.addr) | !mask(self.prefix)
    }
    /// The broadcast address (none for /31 and /32).
    pub fn broadcast(&self) -> Option<Ipv4Addr> {
        (self.prefix < 31).then(|| Ipv4Addr::from(self.last()))
    }
    /// The first usable host address (Docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(if self.prefix < 31 {
            self.first() + 1
        } else {
            self.first()
        })
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix as u32)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = NetworkError;
    /// `a.b.c.d/n`; host bits are cleared (Docker accepts 10.1.2.3/24 as
    /// 10.1.2.0/24 too).
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || NetworkError::InvalidArgument(format!("invalid CIDR address: {s}"));
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 || p.starts_with('+') {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Subnet, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// Prefixes that never work as a bridge subnet: the kernel treats them
/// specially (loopback, multicast, "this network") or they are link-local.
const RESERVED: [(&str, &str); 5] = [
    ("0.0.0.0/8", "\"this network\""),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("224.0.0.0/4", "multicast"),
    (
        "240.0.0.0/4",
        "reserved, with the limited broadcast address",
    ),
];

/// A network's address plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pool {
    pub subnet: Subnet,
    pub gateway: Ipv4Addr,
    /// Container addresses come from here (within the subnet) when set.
    pub range: Option<Subnet>,
}

impl Pool {
    /// Validates Docker's `IPAM.Config` entry; the gateway defaults to the
    /// subnet's first host address.
    pub fn new(subnet: &str, gateway: Option<&str>, range: Option<&str>) -> Result<Pool> {
        let subnet: Subnet = subnet.parse()?;
        if subnet.prefix > 30 {
            return Err(NetworkError::InvalidArgument(format!(
                "subnet {subnet} is too small: a bridge network needs at least a /30 (a /31 or /32 has no address besides the gateway and broadcast)"
            )));
        }
        if let Some((r, what)) = RESERVED
            .iter()
            .find(|(r, _)| subnet.overlaps(&r.parse().expect("valid reserved prefix")))
        {
            return Err(NetworkError::InvalidArgument(format!(
                "subnet {subnet} overlaps {r} ({what}): it cannot be a bridge network's"
            )));
        }
        let gateway = match gateway.filter(|g| !g.is_empty()) {
            Some(g) => {
                let ip: Ipv4Addr = g.parse().map_err(|_| {
                    NetworkError::InvalidArgument(format!("invalid gateway address: {g}"))
                })?;
                if !subnet.contains(ip) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "gateway {ip} is not in subnet {subnet}"
                    )));
                }
                if u32::from(ip) == subnet.first() || Some(ip) == subnet.broadcast() {
                    return Err(NetworkError::InvalidArgument(format!(
                        "gateway {ip} is the network or broadcast address of {subnet}"
                    )));
                }
                ip
            }
            None => subnet.first_host(),
        };
        let range = match range.filter(|r| !r.is_empty()) {
            Some(r) => {
                let r: Subnet = r
                    .parse()
                    .map_err(|_| NetworkError::InvalidArgument(format!("invalid ip-range: {r}")))?;
                if r.prefix < subnet.prefix || !subnet.contains(r.addr) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "ip-range {r} is not within subnet {subnet}"
                    )));
                }
                let probe = Pool {
                    subnet,
                    gateway,
                    range: None,
                };
                if !(r.first()..=r.last()).any(|a| probe.assignable(Ipv4Addr::from(a))) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "ip-range {r} holds no address a container can have in {subnet} (only the network, broadcast or gateway address {gateway})"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        Ok(Pool {
            subnet,
            gateway,
            range,
        })
    }

    pub fn prefix(&self) -> u8 {
        self.subnet.prefix
    }

    /// Whether `ip` may be given to a container: in the subnet, not the
    /// network, broadcast or gateway address.
    fn assignable(&self, ip: Ipv4Addr) -> bool {
        self.subnet.contains(ip)
            && u32::from(ip) != self.subnet.first()
            && Some(ip) != self.subnet.broadcast()
            && ip != self.gateway
    }
}

/// Fails when `subnet` overlaps another network's subnet (`others`: name,
/// subnet) or a route on the host (the default route aside): traffic for it
/// would go somewhere else, or a container subnet would leak onto the uplink.
pub fn check_overlap(subnet: &Subnet, others: &[(String, Subnet)], routes: &[Route]) -> Result<()> {
    if let Some((name, s)) = others.iter().find(|(_, s)| s.overlaps(subnet)) {
        return Err(NetworkError::Conflict(format!(
            "invalid pool request: Pool overlaps with other one on this address space (subnet {subnet} overlaps {s} of network {name})"
        )));
    }
    if let Some(r) = routes
        .iter()
        .filter(|r| r.prefix > 0)
        .find(|r| Subnet::new(r.dst, r.prefix).overlaps(subnet))
    {
        return Err(NetworkError::Conflict(format!(
            "subnet {subnet} overlaps the host route {}/{}",
            r.dst, r.prefix
        )));
    }
    Ok(())
}

/// Docker's default address pools: 172.17-31.0.0/16, then 192.168.x.0/20.
pub fn default_pools() -> Vec<Subnet> {
    let mut v: Vec<Subnet> = (17..=31)
        .map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16))
        .collect();
    v.extend((0..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20)));
    v
}

/// The first pool that overlaps neither a network nor a host route.
pub fn pick_subnet(
    pools: &[Subnet],
    others: &[(String, Subnet)],
    routes: &[Route],
) -> Result<Subnet> {
    pools
        .iter()
        .find(|p| check_overlap(p, others, routes).is_ok())
        .copied()
        .ok_or_else(|| {
            NetworkError::Conflict(
                "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into(),
            )
        })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Table {
    /// address → owner (an endpoint or container id).
    allocated: BTreeMap<Ipv4Addr, String>,
    /// Allocation goes on from here, so a released address is not handed
    /// out again at once (stale ARP entries, connections).
    last: Option<Ipv4Addr>,
}

/// One network's allocations, persisted at `path`.
pub struct Allocator {
    path: PathBuf,
    pool: Pool,
    table: Table,
}

impl Allocator {
    /// Opens (or starts) the table at `path`. An empty or unparsable
    /// table (the table is not fsynced, so a power cut can leave one) means
    /// "no allocations": it is renamed aside and logged, and the engine
    /// registers the addresses of running containers again ([`claim`]) —
    /// refusing to start would keep every container down instead.
    ///
    /// [`claim`]: Allocator::claim
    pub fn open(path: &Path, pool: Pool) -> Result<Allocator> {
        let table = match std::fs::read(path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(t) => t,
                Err(e) => {
                    let aside = path.with_extension("json.corrupt");
                    let moved = std::fs::rename(path, &aside)
                        .map(|()| format!("moved to {}", aside.display()))
                        .unwrap_or_else(|e| format!("could not move it aside: {e}"));
                    eprintln!(
                        "berth: address table {} is unreadable ({e}); starting it empty, {moved}",
                        path.display()
                    );
                    Table::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
            Err(e) => return Err(NetworkError::os(format!("read {}", path.display()), e)),
        };
        Ok(Allocator {
            path: path.to_path_buf(),
            pool,
            table,
        })
    }

    /// Records that `owner` holds `ip` (a running container found at
    /// startup); a no-op when the table already says so.
    pub fn claim(&mut self, owner: &str, ip: Ipv4Addr) -> Result<()> {
        if self.table.allocated.get(&ip).map(String::as_str) == Some(owner) {
            return Ok(());
        }
        if let Some(o) = self.table.allocated.get(&ip) {
            return Err(NetworkError::Conflict(format!(
                "address {ip} is recorded for {o}, not {owner}"
            )));
        }
        self.table.allocated.insert(ip, owner.to_string());
        if let Err(e) = self.save() {
            self.table.allocated.remove(&ip);
            return Err(e);
        }
        Ok(())
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Addresses in use, with their owners.
    pub fn allocated(&self) -> impl Iterator<Item = (&Ipv4Addr, &String)> {
        self.table.allocated.iter()
    }

    /// Hands `owner` an address: `want` when given (it must be free and in
    /// the subnet; Docker takes `--ip` from the whole subnet, not just the
    /// range), else the next free one in the range after the last handed out.
    pub fn allocate(&mut self, owner: &str, want: Option<Ipv4Addr>) -> Result<Ipv4Addr> {
        let ip = match want {
            Some(ip) => {
                if !self.pool.assignable(ip) {
                    return Err(NetworkError::InvalidArgument(format!(
                        "address {ip} cannot be assigned in subnet {} (gateway {})",
                        self.pool.subnet, self.pool.gateway
                    )));
                }
                if let Some(o) = self.table.allocated.get(&ip) {
                    return Err(NetworkError::Conflict(format!(
                        "Address already in use: {ip} is assigned to {o}"
                    )));
                }
                ip
            }
            None => self.next_free().ok_or_else(|| {
                NetworkError::Conflict(format!(
                    "no available IPv4 addresses on this network's address pools: {}",
                    self.pool.range.unwrap_or(self.pool.subnet)
                ))
            })?,
        };
        self.table.allocated.insert(ip, owner.to_string());
        if want.is_none() {
            self.table.last = Some(ip);
        }
        if let Err(e) = self.save() {
            self.table.allocated.remove(&ip);
            return Err(e);
        }
        Ok(ip)
    }

    fn next_free(&self) -> Option<Ipv4Addr> {
        let r = self.pool.range.unwrap_or(self.pool.subnet);
        let (lo, hi) = (r.first(), r.last());
        let start = self
            .table
            .last
            .map(u32::from)
            .filter(|l| (lo..=hi).contains(l))
            .map_or(lo, |l| if l >= hi { lo } else { l + 1 });
        (start..=hi)
            .chain(lo..start)
            .map(Ipv4Addr::from)
            .find(|ip| self.pool.assignable(*ip) && !self.table.allocated.contains_key(ip))
    }

    /// Gives `ip` back; releasing a free address is fine.
    pub fn release(&mut self, ip: Ipv4Addr) -> Result<()> {
        if self.table.allocated.remove(&ip).is_some() {
            self.save()?;
        }
        Ok(())
    }

    /// Gives back every address `owner` holds.
    pub fn release_owner(&mut self, owner: &str) -> Result<()> {
        let before = self.table.allocated.len();
        self.table.allocated.retain(|_, o| o != owner);
        if self.table.allocated.len() != before {
            self.save()?;
        }
        Ok(())
    }

    fn save(&self) -> Result<()> {
        let data = serde_json::to_vec(&self.table).expect("table serialises");
        write_atomic(&self.path, &data)
    }
}

/// Temp file in the same directory, fsynced, then rename and fsync of the
/// directory: readers, a restarted daemon and a boot after a power cut see
/// the old or the new table, never a torn or empty one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let err = |op: &str, e| NetworkError::os(format!("{op} {}", path.display()), e);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| err("create dir for", e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| err("create temp for", e))?;
    f.write_all(data).map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("fsync temp for", e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| err("rename into", e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err("fsync dir of", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IPAM tables survive a power cut: the temp file is fsynced before the
    /// rename, the directory after it. Seen with strace: the test runs
    /// itself again under it, and that run only writes.
    #[test]
    fn abuse_write_atomic_fsyncs_file_and_directory() {
        const ENV: &str = "BERTH_TEST_WRITE_ATOMIC_DIR";
        if let Some(dir) = std::env::var_os(ENV) {
            write_atomic(&Path::new(&dir).join("t.json"), b"{}").unwrap();
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let (trace, dir) = (tmp.path().join("trace"), tmp.path().join("d"));
        let out = std::process::Command::new("strace")
            .args(["-f", "-y", "-e", "trace=fsync", "-o"])
            .arg(&trace)
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ipam::tests::abuse_write_atomic_fsyncs_file_and_directory",
            ])
            .env(ENV, &dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        assert_eq!(std::fs::read(dir.join("t.json")).unwrap(), b"{}");
        let t = std::fs::read_to_string(&trace).unwrap();
        // strace -y: `<pid> fsync(3</path>) = 0`.
        let fsynced = |fd_path: &str| {
            t.lines()
                .any(|l| l.contains("fsync(") && l.contains(fd_path) && l.ends_with("= 0"))
        };
        assert!(fsynced(&format!("<{}/t.tmp", dir.display())), "{t}");
        assert!(fsynced(&format!("<{}>", dir.display())), "{t}");
    }

    fn route(dst: &str, prefix: u8) -> Route {
        Route {
            dst: dst.parse().unwrap(),
            prefix,
            gateway: None,
            oif: None,
        }
    }

    #[test]
    fn subnets_parse_and_overlap() {
        let s: Subnet = "10.1.2.3/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.2.0/24");
        assert!(s.contains("10.1.2.200".parse().unwrap()));
        assert!(!s.contains("10.1.3.1".parse().unwrap()));
        assert!(s.overlaps(&"10.1.0.0/16".parse().unwrap()));
        assert!(!s.overlaps(&"10.1.3.0/24".parse().unwrap()));
        for bad in [
            "10.1.2.0",
            "10.1.2.0/33",
            "10.1.2/24",
            "x/24",
            "10.0.0.0/+8",
        ] {
            let e = bad.parse::<Subnet>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn pool_validation() {
        let p = Pool::new("10.5.0.0/24", None, None).unwrap();
        assert_eq!(p.gateway, Ipv4Addr::new(10, 5, 0, 1));
        let e = Pool::new("10.5.0.0/24", Some("10.6.0.1"), None).unwrap_err();
        assert!(e.to_string().contains("not in subnet 10.5.0.0/24"), "{e}");
        let e = Pool::new("10.5.0.0/24", Some("10.5.0.255"), None).unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");
        let e = Pool::new("10.5.0.0/24", None, Some("10.5.0.0/16")).unwrap_err();
        assert!(e.to_string().contains("ip-range"), "{e}");
        assert!(Pool::new("10.5.0.0/24", None, Some("10.5.0.128/25")).is_ok());
        assert!(Pool::new("10.5.0.0/31", None, None).is_err());
        assert!(Pool::new("bogus", None, None).is_err());
    }

    #[test]
    fn overlap_with_networks_and_routes() {
        let s: Subnet = "10.9.0.0/16".parse().unwrap();
        let others = vec![("a".to_string(), "10.9.4.0/24".parse().unwrap())];
        let e = check_overlap(&s, &others, &[]).unwrap_err().to_string();
        assert!(e.contains("network a"), "{e}");
        let e = check_overlap(&s, &[], &[route("10.0.0.0", 8)]).unwrap_err();
        assert!(e.to_string().contains("host route 10.0.0.0/8"), "{e}");
        // The default route overlaps everything and is no conflict.
        assert!(check_overlap(&s, &[], &[route("0.0.0.0", 0)]).is_ok());
        let picked = pick_subnet(&default_pools(), &[], &[route("172.17.0.0", 16)]).unwrap();
        assert_eq!(picked.to_string(), "172.18.0.0/16");
        let all: Vec<(String, Subnet)> = default_pools()
            .into_iter()
            .map(|s| ("x".to_string(), s))
            .collect();
        assert!(pick_subnet(&default_pools(), &all, &[]).is_err());
    }

    #[test]
    fn allocation_survives_reopen_and_never_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net.json");
        let pool = Pool::new("10.7.0.0/29", None, None).unwrap();
        let mut a = Allocator::open(&path, pool.clone()).unwrap();
        let ip1 = a.allocate("c1", None).unwrap();
        assert_eq!(ip1, Ipv4Addr::new(10, 7, 0, 2));
        let ip2 = a.allocate("c2", None).unwrap();
        assert_eq!(ip2, Ipv4Addr::new(10, 7, 0, 3));
        // A restart reads the same table back.
        let mut b = Allocator::open(&path, pool.clone()).unwrap();
        let ip3 = b.allocate("c3", None).unwrap();
        assert_eq!(ip3, Ipv4Addr::new(10, 7, 0, 4));
        let e = b.allocate("c4", Some(ip1)).unwrap_err().to_string();
        assert!(e.contains("already in use") && e.contains("c1"), "{e}");
        let e = b.allocate("c4", Some(pool.gateway)).unwrap_err();
        assert!(e.to_string().contains("cannot be assigned"), "{e}");
        // .5 and .6 are left, then the pool is full (.7 is broadcast).
        b.allocate("c5", None).unwrap();
        b.allocate("c6", None).unwrap();
        let e = b.allocate("c7", None).unwrap_err().to_string();
        assert!(e.contains("no available IPv4 addresses"), "{e}");
        // A released address comes back only after the others.
        b.release_owner("c1").unwrap();
        assert_eq!(b.allocate("c8", None).unwrap(), ip1);
        b.release(ip2).unwrap();
        let c = Allocator::open(&path, pool).unwrap();
        let owners: Vec<&String> = c.allocated().map(|(_, o)| o).collect();
        assert_eq!(owners, ["c8", "c3", "c5", "c6"]);
    }

    #[test]
    fn range_limits_dynamic_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new("10.8.0.0/24", None, Some("10.8.0.128/30")).unwrap();
        let mut a = Allocator::open(&dir.path().join("t.json"), pool).unwrap();
        let got: Vec<Ipv4Addr> = (0..4)
            .map(|i| a.allocate(&i.to_string(), None).unwrap())
            .collect();
        assert_eq!(got[0], Ipv4Addr::new(10, 8, 0, 128));
        assert_eq!(got[3], Ipv4Addr::new(10, 8, 0, 131));
        assert!(a.allocate("x", None).is_err());
        // --ip may still pick from the whole subnet.
        assert!(a.allocate("y", Some(Ipv4Addr::new(10, 8, 0, 9))).is_ok());
    }

    #[test]
    fn empty_or_corrupt_table_starts_empty_and_is_kept_aside() {
        let dir = tempfile::tempdir().unwrap();
        let pool = Pool::new("10.1.0.0/24", None, None).unwrap();
        for (name, data) in [("bad.json", &b"{not json"[..]), ("empty.json", b"")] {
            let p = dir.path().join(name);
            std::fs::write(&p, data).unwrap();
            let mut a = Allocator::open(&p, pool.clone()).unwrap();
            assert_eq!(a.allocated().count(), 0);
            let aside = p.with_extension("json.corrupt");
            assert_eq!(std::fs::read(&aside).unwrap(), data, "{name}");
            // A running container's address is registered again, and not
            // handed to anyone else.
            a.claim("c1", Ipv4Addr::new(10, 1, 0, 2)).unwrap();
            a.claim("c1", Ipv4Addr::new(10, 1, 0, 2)).unwrap();
            assert!(a.claim("c2", Ipv4Addr::new(10, 1, 0, 2)).is_err());
            assert_eq!(a.allocate("c2", None).unwrap(), Ipv4Addr::new(10, 1, 0, 3));
            let again = Allocator::open(&p, pool.clone()).unwrap();
            assert_eq!(again.allocated().count(), 2);
        }
    }

    #[test]
    fn special_purpose_subnets_are_refused() {
        for (s, why) in [
            ("127.0.0.0/16", "loopback"),
            ("169.254.0.0/24", "link-local"),
            ("224.1.0.0/24", "multicast"),
            ("0.0.0.0/24", "this network"),
            ("0.0.0.0/0", "this network"),
            ("250.0.0.0/24", "reserved"),
        ] {
            let e = Pool::new(s, None, None).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(s), "{s}: {e}");
        }
        let e = Pool::new("10.1.0.0/32", None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("too small"), "{e}");
        // A range with nothing but the gateway (or broadcast) in it.
        let e = Pool::new("10.1.0.0/24", None, Some("10.1.0.1/32"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no address"), "{e}");
        let e = Pool::new("10.1.0.0/24", None, Some("10.1.0.255/32"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no address"), "{e}");
        assert!(Pool::new("10.1.0.0/24", None, Some("10.1.0.7/32")).is_ok());
        assert!(Pool::new("10.1.0.0/30", None, None).is_ok());
    }
}
