//! ADD <http(s) url>: the download, as BuildKit's HTTP source does it. The
//! file is named after the URL path's last segment, gets mode 0600 and the
//! server's Last-Modified as its mtime (else 0), and is never unpacked. No
//! proxy from the environment. Redirects are followed (up to 10) to any host,
//! as BuildKit does (a GitHub release URL redirects to
//! objects.githubusercontent.com), but never from https to http: the
//! Dockerfile asked for a verified transfer. A server that stops answering
//! fails the step (connect and idle read timeouts); there is no size cap,
//! as in BuildKit: the download goes to the daemon's disk, not memory.

use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_image::Digest;
use berth_image::digest::{Algorithm, Hasher};

use crate::error::{Error, IoContext, Result};

/// A downloaded file.
#[derive(Debug)]
pub struct Fetched {
    pub path: PathBuf,
    /// The name it gets at the destination.
    pub name: String,
    pub digest: Digest,
    /// From Last-Modified; without a valid one 0, as BuildKit does.
    pub mtime: i64,
}

/// A private download directory (made on the first download), removed
/// on drop.
pub struct Downloads {
    dir: PathBuf,
    n: usize,
}

impl Downloads {
    pub fn new(tmp: &Path) -> Downloads {
        Downloads {
            dir: tmp.join(super::run::unique("add")),
            n: 0,
        }
    }

    /// Downloads `url`; with `expected`, fails unless the content has that
    /// digest (naming both digests).
    pub fn get(&mut self, url: &str, expected: Option<&Digest>) -> Result<Fetched> {
        self.n += 1;
        let sub = self.dir.join(self.n.to_string());
        // create_dir_all: the first call also makes the directory itself.
        fs::create_dir_all(&sub).ctx("create", &sub)?;
        let name = file_name(url)?;
        let path = sub.join(&name);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ctx("start", "tokio runtime")?;
        let algo = expected.map_or(Algorithm::Sha256, |d| d.algorithm());
        let (digest, last_modified) = rt.block_on(download(url, &path, algo))?;
        if let Some(want) = expected
            && *want != digest
        {
            return Err(Error::Invalid(format!(
                "ADD {url}: checksum mismatch: expected {want}, got {digest}"
            )));
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).ctx("chmod", &path)?;
        let mtime = last_modified
            .and_then(|v| {
                httpdate::parse_http_date(&v)
                    .ok()?
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs() as i64)
            })
            .unwrap_or(0);
        super::copy::set_mtime(&path, mtime, 0)?;
        Ok(Fetched {
            path,
            name,
            digest,
            mtime,
        })
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        if self.n > 0 {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// The URL path's last segment, percent-decoded (BuildKit's
/// `path.Base(u.Path)`), or `__unnamed__` when the path has none.
pub fn file_name(url: &str) -> Result<String> {
    let u = reqwest::Url::parse(url).map_err(|e| Error::Invalid(format!("ADD {url}: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(Error::Invalid(format!(
            "ADD {url}: expected an http:// or https:// URL"
        )));
    }
    let path = percent_decode(u.path());
    let base = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    Ok(match base {
        "" | "." | ".." => "__unnamed__".to_string(),
        b => b.to_string(),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How long a download may wait: to connect, and for the next bytes.
#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    idle: Duration,
}

const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(30),
    idle: Duration::from_secs(120),
};

/// Whether a redirect from `prev` to `next` (the `hops`-th) is followed.
fn redirect_refused(prev: &reqwest::Url, next: &reqwest::Url, hops: usize) -> Option<String> {
    if hops >= 10 {
        Some("stopped after 10 redirects".into())
    } else if prev.scheme() == "https" && next.scheme() != "https" {
        Some(format!(
            "redirect from https to {next} refused (it would drop TLS)"
        ))
    } else {
        None
    }
}

async fn download(url: &str, dst: &Path, algo: Algorithm) -> Result<(Digest, Option<String>)> {
    download_with(url, dst, algo, TIMEOUTS).await
}

async fn download_with(
    url: &str,
    dst: &Path,
    algo: Algorithm,
    t: Timeouts,
) -> Result<(Digest, Option<String>)> {
    let err = |m: String| Error::Invalid(format!("ADD {url}: {m}"));
    let client = reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(t.connect)
        .read_timeout(t.idle)
        .redirect(reqwest::redirect::Policy::custom(|a| {
            let prev = a.previous().last().cloned();
            match prev.and_then(|p| redirect_refused(&p, a.url(), a.previous().len())) {
                Some(why) => a.error(why),
                None => a.follow(),
            }
        }))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let mut resp = client
        .get(url)
        .send()
        .await
        .map_err(|e| err(error_chain(&e)))?;
    if !resp.status().is_success() {
        return Err(err(format!("server answered {}", resp.status())));
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let mut f = File::create(dst).ctx("create", dst)?;
    let mut h = Hasher::new(algo);
    while let Some(chunk) = resp.chunk().await.map_err(|e| err(error_chain(&e)))? {
        h.update(&chunk);
        f.write_all(&chunk).ctx("write", dst)?;
    }
    f.sync_all().ctx("fsync", dst)?;
    Ok((h.finish(), last_modified))
}

/// reqwest's top-level message hides the cause (refused, reset…).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};

    #[test]
    fn redirects_go_anywhere_but_down_to_http() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        let gh = u("https://github.com/o/r/releases/download/v1/x.tar.gz");
        let objects = u("https://objects.githubusercontent.com/x?sig=1");
        assert_eq!(redirect_refused(&gh, &objects, 1), None);
        assert_eq!(
            redirect_refused(&u("http://a/x"), &u("https://b/y"), 1),
            None
        );
        assert_eq!(
            redirect_refused(&u("http://a/x"), &u("http://b/y"), 1),
            None
        );
        let e = redirect_refused(&gh, &u("http://github.com/o/r"), 1).unwrap();
        assert!(
            e.contains("from https to http://github.com/o/r refused"),
            "{e}"
        );
        assert!(redirect_refused(&u("http://a/1"), &u("http://a/2"), 9).is_none());
        let e = redirect_refused(&u("http://a/1"), &u("http://a/2"), 10).unwrap();
        assert!(e.contains("10 redirects"), "{e}");
    }

    /// A server that stops sending mid-body fails the download after the
    /// idle timeout instead of holding the build forever.
    #[test]
    fn a_stalled_download_times_out() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten..")
                .unwrap();
            // Hold the connection open, silent, until the client gives up.
            let _ = std::io::Read::read(&mut c, &mut [0u8; 1]);
        });
        let d = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let t = Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_millis(300),
        };
        let start = std::time::Instant::now();
        let url = format!("http://127.0.0.1:{port}/f");
        let e = rt
            .block_on(download_with(
                &url,
                &d.path().join("f"),
                Algorithm::Sha256,
                t,
            ))
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out") || e.contains("timeout"), "{e}");
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(rt);
        server.join().unwrap();
    }

    #[test]
    fn names_from_the_url_path() {
        assert_eq!(file_name("http://h/a/b.tar.gz").unwrap(), "b.tar.gz");
        assert_eq!(file_name("http://h/a/b%20c.txt?x=1").unwrap(), "b c.txt");
        assert_eq!(file_name("http://h/dir/").unwrap(), "dir");
        assert_eq!(file_name("http://h").unwrap(), "__unnamed__");
        assert_eq!(file_name("https://h/").unwrap(), "__unnamed__");
        // An encoded slash cannot smuggle a directory into the name.
        assert_eq!(file_name("http://h/x%2F..%2Fetc").unwrap(), "etc");
        assert!(file_name("ftp://h/x").is_err());
        assert!(file_name("http://[bad").is_err());
    }
}
