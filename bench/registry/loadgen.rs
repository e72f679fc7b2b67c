//! Minimal HTTP/1.1 blob-pull load generator (std only; `rustc -O loadgen.rs`).
//! Usage: loadgen ADDR CONNS SECONDS PATH...
//! CONNS threads, each with one keep-alive connection, GET the PATHs round-robin
//! (each thread starts at a different offset) until SECONDS have passed; every body is
//! read in full and discarded. Prints one line:
//! `reqs=R bytes=B secs=S mbps=M rps=Q p50_ms=X p99_ms=Y errors=E`.
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn one(r: &mut BufReader<TcpStream>, w: &mut TcpStream, req: &[u8], buf: &mut [u8]) -> std::io::Result<u64> {
    w.write_all(req)?;
    let mut line = String::new();
    let mut len: Option<u64> = None;
    let mut status = 0u16;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("eof in headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if status == 0 {
            status = l.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        } else if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
    }
    if status != 200 {
        return Err(std::io::Error::other(format!("status {status}")));
    }
    let mut left = len.ok_or_else(|| std::io::Error::other("no content-length"))?;
    let total = left;
    let cap = buf.len() as u64;
    while left > 0 {
        let n = r.read(&mut buf[..(left.min(cap)) as usize])?;
        if n == 0 {
            return Err(std::io::Error::other("eof in body"));
        }
        left -= n as u64;
    }
    Ok(total)
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let addr = a[1].clone();
    let conns: usize = a[2].parse().unwrap();
    let secs: f64 = a[3].parse().unwrap();
    let paths: Vec<String> = a[4..].to_vec();
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(secs);
    let hs: Vec<_> = (0..conns)
        .map(|t| {
            let addr = addr.clone();
            let paths = paths.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let (mut bytes, mut errs) = (0u64, 0u64);
                let mut buf = vec![0u8; 256 * 1024];
                let reqs: Vec<Vec<u8>> = paths
                    .iter()
                    .map(|p| format!("GET {p} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: berth-loadgen\r\n\r\n").into_bytes())
                    .collect();
                let mut i = t;
                let mut conn: Option<(BufReader<TcpStream>, TcpStream)> = None;
                while Instant::now() < deadline {
                    if conn.is_none() {
                        match TcpStream::connect(&addr) {
                            Ok(s) => {
                                s.set_nodelay(true).ok();
                                conn = Some((BufReader::with_capacity(64 * 1024, s.try_clone().unwrap()), s));
                            }
                            Err(_) => {
                                errs += 1;
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                        }
                    }
                    let (r, w) = conn.as_mut().unwrap();
                    let t0 = Instant::now();
                    match one(r, w, &reqs[i % reqs.len()], &mut buf) {
                        Ok(n) => {
                            bytes += n;
                            lat.push(t0.elapsed().as_secs_f64() * 1e3);
                        }
                        Err(_) => {
                            errs += 1;
                            conn = None;
                        }
                    }
                    i += 1;
                }
                (lat, bytes, errs)
            })
        })
        .collect();
    let (mut lat, mut bytes, mut errs) = (Vec::new(), 0u64, 0u64);
    for h in hs {
        let (l, b, e) = h.join().unwrap();
        lat.extend(l);
        bytes += b;
        errs += e;
    }
    let el = start.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| if lat.is_empty() { 0.0 } else { lat[((lat.len() as f64 - 1.0) * p).round() as usize] };
    println!(
        "reqs={} bytes={} secs={:.2} mbps={:.1} rps={:.1} p50_ms={:.2} p99_ms={:.2} errors={}",
        lat.len(),
        bytes,
        el,
        bytes as f64 / el / 1e6,
        lat.len() as f64 / el,
        pct(0.50),
        pct(0.99),
        errs
    );
}
