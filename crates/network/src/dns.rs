//! The embedded DNS server of a user-defined network.
//!
//! Where it listens: on the network's gateway address, port 53, UDP and TCP (as
//! Podman's aardvark-dns does), and containers on the network get that address
//! as their only `nameserver`. Docker instead answers at 127.0.0.11 inside every
//! container's namespace, which needs a socket and NAT rules per container; one
//! server per network on an address the host already owns is simpler, costs
//! nothing at container start, and its records are per network by construction.
//! Queries from outside the network's subnet are REFUSED, so a container on
//! another network that guesses the gateway address learns nothing.
//!
//! What it answers: A for container names, short ids and aliases of containers
//! on this network (case-insensitive), AAAA with no data (NOERROR, empty) for the
//! same names so resolvers do not wait for it, PTR for their addresses. Anything
//! else is forwarded to the configured upstream resolvers, if the daemon was
//! given any; otherwise it is REFUSED at once (no packet leaves the host, and the
//! client's resolver moves on instead of timing out).
//!
//! The message codec is hand-written and small; malformed packets get FORMERR
//! (when there is a header to answer) or are dropped, never a panic.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::error::{NetworkError, Result};
use crate::ipam::Subnet;

pub const TYPE_A: u16 = 1;
pub const TYPE_PTR: u16 = 12;
pub const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

pub const RCODE_NOERROR: u8 = 0;
pub const RCODE_FORMERR: u8 = 1;
pub const RCODE_SERVFAIL: u8 = 2;
pub const RCODE_NXDOMAIN: u8 = 3;
pub const RCODE_NOTIMP: u8 = 4;
pub const RCODE_REFUSED: u8 = 5;

/// Short: containers come and go, and a stale answer points at a reused address.
const TTL: u32 = 10;
const MAX_NAME: usize = 255;

/// The question of a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    /// Lower case, without the trailing dot.
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
}

/// A parsed query: header fields we echo, the question, and where the question
/// ends (answers repeat the question bytes verbatim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub id: u16,
    pub opcode: u8,
    pub rd: bool,
    pub question: Question,
    question_end: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not even a header: nothing to answer.
    TooShort,
    /// A response, not a query: never answer (would loop between servers).
    NotAQuery,
    /// Answer FORMERR (or NOTIMP) to this id.
    Malformed { id: u16, rcode: u8 },
}

/// Parses a DNS query (RFC 1035 §4.1). Exactly one question is accepted.
pub fn parse_query(buf: &[u8]) -> std::result::Result<Query, ParseError> {
    if buf.len() < 12 {
        return Err(ParseError::TooShort);
    }
    let id = u16::from_be_bytes([buf[0], buf[1]]);
    let flags = u16::from_be_bytes([buf[2], buf[3]]);
    if flags & 0x8000 != 0 {
        return Err(ParseError::NotAQuery);
    }
    let formerr = ParseError::Malformed {
        id,
        rcode: RCODE_FORMERR,
    };
    let opcode = ((flags >> 11) & 0xf) as u8;
    if opcode != 0 {
        return Err(ParseError::Malformed {
            id,
            rcode: RCODE_NOTIMP,
        });
    }
    let qdcount = u16::from_be_bytes([buf[4], buf[5]]);
    if qdcount != 1 {
        return Err(formerr);
    }
    let mut pos = 12;
    let mut name = String::new();
    loop {
        let len = *buf.get(pos).ok_or(ParseError::Malformed {
            id,
            rcode: RCODE_FORMERR,
        })? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        // Compression pointers (0xC0) and the reserved label types have no
        // business in a query's only question.
        if len & 0xC0 != 0 {
            return Err(ParseError::Malformed {
                id,
                rcode: RCODE_FORMERR,
            });
        }
        let label = buf.get(pos..pos + len).ok_or(ParseError::Malformed {
            id,
            rcode: RCODE_FORMERR,
        })?;
        pos += len;
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            // Names we serve are ASCII; anything else cannot match, but stays
            // distinct so it is not mistaken for a served name.
            name.push(if b.is_ascii_graphic() && b != b'.' {
                b.to_ascii_lowercase() as char
            } else {
                '?'
            });
        }
        if name.len() > MAX_NAME {
            return Err(ParseError::Malformed {
                id,
                rcode: RCODE_FORMERR,
            });
        }
    }
    let tail = buf.get(pos..pos + 4).ok_or(ParseError::Malformed {
        id,
        rcode: RCODE_FORMERR,
    })?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    Ok(Query {
        id,
        opcode,
        rd: flags & 0x0100 != 0,
        question: Question {
            name,
            qtype,
            qclass,
        },
        question_end: pos + 4,
    })
}

/// One answer record's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    A(Ipv4Addr),
    Ptr(String),
}

/// Builds the response to `query` (whose wire bytes are `raw`).
pub fn build_response(raw: &[u8], query: &Query, rcode: u8, answers: &[Rdata]) -> Vec<u8> {
    let mut out = Vec::with_capacity(query.question_end + answers.len() * 16 + 16);
    out.extend_from_slice(&query.id.to_be_bytes());
    // QR=1, opcode, AA=1, RD echoed, RA=0 (we recurse for nobody but our names).
    let flags: u16 = 0x8000
        | ((query.opcode as u16) << 11)
        | 0x0400
        | if query.rd { 0x0100 } else { 0 }
        | rcode as u16;
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&raw[12..query.question_end]);
    for a in answers {
        out.extend_from_slice(&[0xC0, 0x0C]); // the question's name
        let (rtype, data) = match a {
            Rdata::A(ip) => (TYPE_A, ip.octets().to_vec()),
            Rdata::Ptr(name) => (TYPE_PTR, encode_name(name)),
        };
        out.extend_from_slice(&rtype.to_be_bytes());
        out.extend_from_slice(&CLASS_IN.to_be_bytes());
        out.extend_from_slice(&TTL.to_be_bytes());
        out.extend_from_slice(&(data.len() as u16).to_be_bytes());
        out.extend_from_slice(&data);
    }
    out
}

/// A header-only error response (FORMERR/NOTIMP for what we could not parse).
pub fn error_response(id: u16, rcode: u8) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&(0x8000u16 | rcode as u16).to_be_bytes());
    out.extend_from_slice(&[0; 8]);
    out
}

/// Encodes a dotted name (labels over 63 bytes are cut; names here are ours).
pub fn encode_name(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name
        .trim_end_matches('.')
        .split('.')
        .filter(|l| !l.is_empty())
    {
        let l = &label.as_bytes()[..label.len().min(63)];
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.push(0);
    out
}

/// Encodes a query (for tests, probes and forwarding checks).
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&encode_name(name));
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    out
}

/// Reads the rcode and the A records of a response (for tests and probes).
pub fn parse_response_a(buf: &[u8]) -> Option<(u8, Vec<Ipv4Addr>)> {
    if buf.len() < 12 || buf[2] & 0x80 == 0 {
        return None;
    }
    let rcode = buf[3] & 0x0f;
    let qd = u16::from_be_bytes([buf[4], buf[5]]);
    let an = u16::from_be_bytes([buf[6], buf[7]]);
    let mut pos = 12;
    let skip_name = |mut pos: usize| -> Option<usize> {
        loop {
            let len = *buf.get(pos)? as usize;
            if len & 0xC0 == 0xC0 {
                return Some(pos + 2);
            }
            pos += 1 + len;
            if len == 0 {
                return Some(pos);
            }
        }
    };
    for _ in 0..qd {
        pos = skip_name(pos)? + 4;
    }
    let mut ips = Vec::new();
    for _ in 0..an {
        pos = skip_name(pos)?;
        let h = buf.get(pos..pos + 10)?;
        let rtype = u16::from_be_bytes([h[0], h[1]]);
        let len = u16::from_be_bytes([h[8], h[9]]) as usize;
        let data = buf.get(pos + 10..pos + 10 + len)?;
        if rtype == TYPE_A && len == 4 {
            ips.push(Ipv4Addr::new(data[0], data[1], data[2], data[3]));
        }
        pos += 10 + len;
    }
    Some((rcode, ips))
}

/// The names of one network: name (container name, short id, alias) → addresses.
#[derive(Debug, Clone, Default)]
struct Records {
    forward: HashMap<String, Vec<Ipv4Addr>>,
    reverse: HashMap<Ipv4Addr, String>,
}

impl Records {
    fn new(map: HashMap<String, Vec<Ipv4Addr>>) -> Records {
        let mut forward = HashMap::new();
        let mut reverse = HashMap::new();
        let mut names: Vec<_> = map.into_iter().collect();
        // Deterministic PTR choice: the shortest, then alphabetically first name.
        names.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
        for (name, ips) in names {
            let key = name.trim_end_matches('.').to_ascii_lowercase();
            if key.is_empty() {
                continue;
            }
            for ip in &ips {
                reverse.entry(*ip).or_insert_with(|| key.clone());
            }
            forward.entry(key).or_insert_with(Vec::new).extend(ips);
        }
        Records { forward, reverse }
    }
}

/// How a server is set up.
#[derive(Debug, Clone, Default)]
pub struct DnsConfig {
    /// Only clients in this subnet are answered (the network's); `None`: anyone.
    pub allowed: Option<Subnet>,
    /// Resolvers to forward unknown names to; empty: REFUSED.
    pub upstream: Vec<SocketAddr>,
}

/// Decides the reply to one packet from `client`; `None` drops it.
fn handle_packet(
    buf: &[u8],
    client: IpAddr,
    records: &RwLock<Records>,
    config: &DnsConfig,
) -> Option<Vec<u8>> {
    let query = match parse_query(buf) {
        Ok(q) => q,
        Err(ParseError::Malformed { id, rcode }) => return Some(error_response(id, rcode)),
        Err(_) => return None,
    };
    if let Some(subnet) = config.allowed {
        let inside = match client {
            IpAddr::V4(ip) => subnet.contains(ip),
            IpAddr::V6(_) => false,
        };
        if !inside {
            return Some(build_response(buf, &query, RCODE_REFUSED, &[]));
        }
    }
    let q = &query.question;
    if q.qclass != CLASS_IN {
        return Some(build_response(buf, &query, RCODE_REFUSED, &[]));
    }
    {
        let rec = records.read().unwrap_or_else(|e| e.into_inner());
        if let Some(ips) = rec.forward.get(&q.name) {
            let answers: Vec<Rdata> = match q.qtype {
                TYPE_A => ips.iter().map(|ip| Rdata::A(*ip)).collect(),
                // Known name, no data of that type: NOERROR, no answers.
                _ => Vec::new(),
            };
            return Some(build_response(buf, &query, RCODE_NOERROR, &answers));
        }
        let ptr_name = (q.qtype == TYPE_PTR)
            .then(|| ptr_address(&q.name))
            .flatten()
            .and_then(|ip| rec.reverse.get(&ip));
        if let Some(name) = ptr_name {
            let answer = [Rdata::Ptr(name.clone())];
            return Some(build_response(buf, &query, RCODE_NOERROR, &answer));
        }
    }
    if !config.upstream.is_empty() {
        if let Some(reply) = forward(buf, &config.upstream) {
            return Some(reply);
        }
        return Some(build_response(buf, &query, RCODE_SERVFAIL, &[]));
    }
    Some(build_response(buf, &query, RCODE_REFUSED, &[]))
}

/// Asks each upstream once over UDP (2 s each); the reply is passed through.
fn forward(buf: &[u8], upstream: &[SocketAddr]) -> Option<Vec<u8>> {
    for server in upstream {
        let bind: SocketAddr = if server.is_ipv4() {
            "0.0.0.0:0".parse().ok()?
        } else {
            "[::]:0".parse().ok()?
        };
        let Ok(sock) = UdpSocket::bind(bind) else {
            continue;
        };
        let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
        if sock.connect(server).is_err() || sock.send(buf).is_err() {
            continue;
        }
        let mut reply = vec![0u8; 4096];
        if let Ok(n) = sock.recv(&mut reply)
            && n >= 2
            && reply[..2] == buf[..2]
        {
            reply.truncate(n);
            return Some(reply);
        }
    }
    None
}

/// `4.3.2.1.in-addr.arpa` → 1.2.3.4.
fn ptr_address(name: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let parts: Vec<u8> = rest
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    if parts.len() != 4 {
        return None;
    }
    Some(Ipv4Addr::new(parts[3], parts[2], parts[1], parts[0]))
}

/// A running server; dropping it stops it.
pub struct DnsServer {
    addr: SocketAddr,
    records: Arc<RwLock<Records>>,
    stop: Arc<AtomicBool>,
    tcp_fd: i32,
    threads: Vec<JoinHandle<()>>,
}

/// UDP and TCP on the same port. With port 0 the kernel picks the UDP
/// port, and that number may be taken on TCP by an unrelated socket: then
/// another UDP port is drawn (a few times) instead of failing.
fn bind_pair(listen: SocketAddr) -> Result<(UdpSocket, TcpListener, SocketAddr)> {
    let mut attempts = 0;
    loop {
        let udp = UdpSocket::bind(listen)
            .map_err(|e| NetworkError::os(format!("DNS server: bind udp {listen}"), e))?;
        let addr = udp
            .local_addr()
            .map_err(|e| NetworkError::os("DNS server: local address", e))?;
        match TcpListener::bind(addr) {
            Ok(tcp) => return Ok((udp, tcp, addr)),
            Err(e)
                if listen.port() == 0
                    && e.kind() == std::io::ErrorKind::AddrInUse
                    && attempts < 8 =>
            {
                attempts += 1;
            }
            Err(e) => {
                return Err(NetworkError::os(format!("DNS server: bind tcp {addr}"), e));
            }
        }
    }
}

impl DnsServer {
    /// Binds `listen` on UDP and TCP and serves until dropped.
    pub fn start(listen: SocketAddr, config: DnsConfig) -> Result<DnsServer> {
        let (udp, tcp, addr) = bind_pair(listen)?;
        // The UDP loop checks `stop` between reads.
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .map_err(|e| NetworkError::os("DNS server: udp timeout", e))?;
        let records = Arc::new(RwLock::new(Records::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let config = Arc::new(config);
        let tcp_fd = tcp.as_raw_fd();
        let mut threads = Vec::new();
        {
            let (records, stop, config) = (records.clone(), stop.clone(), config.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-udp-{addr}"))
                    .spawn(move || serve_udp(udp, &records, &stop, &config))
                    .map_err(|e| NetworkError::os("DNS server: spawn", e))?,
            );
        }
        {
            let (records, stop, config) = (records.clone(), stop.clone(), config.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("dns-tcp-{addr}"))
                    .spawn(move || serve_tcp(tcp, records, stop, config))
                    .map_err(|e| NetworkError::os("DNS server: spawn", e))?,
            );
        }
        Ok(DnsServer {
            addr,
            records,
            stop,
            tcp_fd,
            threads,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the network's names (name, short id, alias → addresses).
    pub fn set_records(&self, map: HashMap<String, Vec<Ipv4Addr>>) {
        let new = Records::new(map);
        *self.records.write().unwrap_or_else(|e| e.into_inner()) = new;
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the blocking accept() (Linux returns EINVAL after shutdown).
        // SAFETY: the listener is still open: its thread closes it only after
        // seeing `stop`, and we join that thread below.
        unsafe { libc::shutdown(self.tcp_fd, libc::SHUT_RDWR) };
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_udp(sock: UdpSocket, records: &RwLock<Records>, stop: &AtomicBool, config: &DnsConfig) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::SeqCst) {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => continue,
        };
        if let Some(mut reply) = handle_packet(&buf[..n], from.ip(), records, config) {
            // Plain UDP without EDNS: 512 bytes, else TC so the client retries on TCP.
            if reply.len() > 512 {
                reply.truncate(12);
                reply[2] |= 0x02;
                reply[6..12].fill(0);
            }
            let _ = sock.send_to(&reply, from);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    records: Arc<RwLock<Records>>,
    stop: Arc<AtomicBool>,
    config: Arc<DnsConfig>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(conn) = conn else {
            // EMFILE and friends: do not spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let (records, config) = (records.clone(), config.clone());
        let _ = std::thread::Builder::new()
            .name("dns-tcp-conn".into())
            .spawn(move || serve_tcp_conn(conn, &records, &config));
    }
}

/// Length-prefixed messages (RFC 7766) until the client closes or idles 5 s.
fn serve_tcp_conn(mut conn: TcpStream, records: &RwLock<Records>, config: &DnsConfig) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(peer) = conn.peer_addr() else { return };
    while let Ok(buf) = read_frame(&mut conn) {
        let Some(reply) = handle_packet(&buf, peer.ip(), records, config) else {
            return;
        };
        if write_frame(&mut conn, &reply).is_err() {
            return;
        }
    }
}

fn read_frame(conn: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    conn.read_exact(&mut len)?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    conn.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_frame(conn: &mut TcpStream, msg: &[u8]) -> std::io::Result<()> {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    conn.write_all(&framed)
}

/// One query and its response over a DNS TCP connection (probes and tests).
pub fn exchange_tcp(conn: &mut TcpStream, query: &[u8]) -> std::io::Result<Vec<u8>> {
    write_frame(conn, query)?;
    read_frame(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(entries: &[(&str, [u8; 4])]) -> RwLock<Records> {
        let mut m: HashMap<String, Vec<Ipv4Addr>> = HashMap::new();
        for (n, ip) in entries {
            m.entry(n.to_string())
                .or_default()
                .push(Ipv4Addr::from(*ip));
        }
        RwLock::new(Records::new(m))
    }

    fn ask(rec: &RwLock<Records>, cfg: &DnsConfig, name: &str, qtype: u16) -> (u8, Vec<Ipv4Addr>) {
        let q = encode_query(0x1234, name, qtype);
        let r = handle_packet(&q, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), rec, cfg).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        parse_response_a(&r).unwrap()
    }

    #[test]
    fn answers_names_case_insensitively() {
        let rec = records(&[
            ("web", [10, 0, 0, 2]),
            ("Alias1", [10, 0, 0, 2]),
            ("db", [10, 0, 0, 3]),
        ]);
        let cfg = DnsConfig::default();
        assert_eq!(
            ask(&rec, &cfg, "web", TYPE_A),
            (0, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            ask(&rec, &cfg, "WEB.", TYPE_A),
            (0, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(
            ask(&rec, &cfg, "alias1", TYPE_A),
            (0, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
        assert_eq!(ask(&rec, &cfg, "web", TYPE_AAAA), (0, vec![]));
        assert_eq!(ask(&rec, &cfg, "nope", TYPE_A), (RCODE_REFUSED, vec![]));
    }

    #[test]
    fn ptr_for_known_addresses() {
        let rec = records(&[("web", [10, 0, 0, 2]), ("webalias", [10, 0, 0, 2])]);
        let q = encode_query(7, "2.0.0.10.in-addr.arpa", TYPE_PTR);
        let r = handle_packet(
            &q,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &rec,
            &DnsConfig::default(),
        )
        .unwrap();
        assert_eq!(r[3] & 0xf, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert!(r.ends_with(&encode_name("web")), "{r:?}");
        assert_eq!(
            ptr_address("1.0.0.10.in-addr.arpa"),
            Some(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(ptr_address("x.0.0.10.in-addr.arpa"), None);
        assert_eq!(ptr_address("0.0.10.in-addr.arpa"), None);
    }

    #[test]
    fn clients_outside_the_subnet_are_refused() {
        let rec = records(&[("web", [10, 0, 0, 2])]);
        let cfg = DnsConfig {
            allowed: Some(Subnet::new(Ipv4Addr::new(10, 0, 0, 0), 24)),
            upstream: vec![],
        };
        let q = encode_query(1, "web", TYPE_A);
        let r = handle_packet(&q, IpAddr::V4(Ipv4Addr::new(10, 0, 1, 2)), &rec, &cfg).unwrap();
        assert_eq!(parse_response_a(&r).unwrap(), (RCODE_REFUSED, vec![]));
        let r = handle_packet(&q, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 9)), &rec, &cfg).unwrap();
        assert_eq!(
            parse_response_a(&r).unwrap(),
            (0, vec![Ipv4Addr::new(10, 0, 0, 2)])
        );
    }

    #[test]
    fn malformed_packets_never_panic() {
        let rec = records(&[("web", [10, 0, 0, 2])]);
        let cfg = DnsConfig::default();
        let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
        assert_eq!(parse_query(&[]), Err(ParseError::TooShort));
        assert_eq!(parse_query(&[0; 11]), Err(ParseError::TooShort));
        let good = encode_query(9, "web", TYPE_A);
        // Every truncation, and every single-byte corruption.
        for n in 0..good.len() {
            let _ = handle_packet(&good[..n], client, &rec, &cfg);
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x3f, 0x40, 0xc0, 0xff] {
                let mut p = good.clone();
                p[i] = v;
                let _ = handle_packet(&p, client, &rec, &cfg);
            }
        }
        // Responses are ignored (no reply loops).
        let mut resp = good.clone();
        resp[2] |= 0x80;
        assert_eq!(handle_packet(&resp, client, &rec, &cfg), None);
        // Two questions: FORMERR.
        let mut two = good.clone();
        two[5] = 2;
        let r = handle_packet(&two, client, &rec, &cfg).unwrap();
        assert_eq!((r[3] & 0xf, &r[..2]), (RCODE_FORMERR, &[0u8, 9][..]));
        // Compression pointer in the question (incl. a self-loop): FORMERR.
        let mut ptr = good[..12].to_vec();
        ptr.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(
            parse_query(&ptr),
            Err(ParseError::Malformed {
                id: 9,
                rcode: RCODE_FORMERR
            })
        );
        // Label running past the end.
        let mut long = good[..12].to_vec();
        long.extend_from_slice(&[63, b'a', b'b']);
        assert!(matches!(
            parse_query(&long),
            Err(ParseError::Malformed { .. })
        ));
        // Name longer than 255.
        let mut huge = good[..12].to_vec();
        for _ in 0..6 {
            huge.push(60);
            huge.extend_from_slice(&[b'a'; 60]);
        }
        huge.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert!(matches!(
            parse_query(&huge),
            Err(ParseError::Malformed { .. })
        ));
        // Other opcodes: NOTIMP.
        let mut status = good.clone();
        status[2] = 0x10;
        let r = handle_packet(&status, client, &rec, &cfg).unwrap();
        assert_eq!(r[3] & 0xf, RCODE_NOTIMP);
    }

    #[test]
    fn server_over_udp_and_tcp_and_record_updates() {
        let srv = DnsServer::start("127.0.0.1:0".parse().unwrap(), DnsConfig::default()).unwrap();
        let addr = srv.local_addr();
        srv.set_records(HashMap::from([(
            "a".to_string(),
            vec![Ipv4Addr::new(10, 9, 0, 2)],
        )]));
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let ask_udp = |name: &str| {
            udp.send_to(&encode_query(3, name, TYPE_A), addr).unwrap();
            let mut b = [0u8; 512];
            let n = udp.recv(&mut b).unwrap();
            parse_response_a(&b[..n]).unwrap()
        };
        assert_eq!(ask_udp("a"), (0, vec![Ipv4Addr::new(10, 9, 0, 2)]));
        srv.set_records(HashMap::from([(
            "b".to_string(),
            vec![Ipv4Addr::new(10, 9, 0, 3)],
        )]));
        assert_eq!(ask_udp("a"), (RCODE_REFUSED, vec![]));

        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..2 {
            let r = exchange_tcp(&mut tcp, &encode_query(4, "B", TYPE_A)).unwrap();
            assert_eq!(
                parse_response_a(&r).unwrap(),
                (0, vec![Ipv4Addr::new(10, 9, 0, 3)])
            );
        }
        let t = std::time::Instant::now();
        drop(srv);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "stop took {:?}",
            t.elapsed()
        );
        // The port is free again.
        UdpSocket::bind(addr).unwrap();
    }

    #[test]
    fn unknown_names_go_upstream_only_when_configured() {
        // A fake upstream on loopback that answers everything with 1.2.3.4.
        let up = UdpSocket::bind("127.0.0.1:0").unwrap();
        let up_addr = up.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut b = [0u8; 512];
            if let Ok((n, from)) = up.recv_from(&mut b) {
                let q = parse_query(&b[..n]).unwrap();
                let r = build_response(&b[..n], &q, 0, &[Rdata::A(Ipv4Addr::new(1, 2, 3, 4))]);
                up.send_to(&r, from).unwrap();
            }
        });
        let rec = records(&[]);
        let cfg = DnsConfig {
            allowed: None,
            upstream: vec![up_addr],
        };
        assert_eq!(
            ask(&rec, &cfg, "example.org", TYPE_A),
            (0, vec![Ipv4Addr::new(1, 2, 3, 4)])
        );
    }
}
