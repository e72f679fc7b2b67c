//! A tiny loopback HTTP registry for fault tests: a wrong layer digest, a
//! connection dropped mid-layer.

use std::io::Write;
use std::sync::{Arc, Mutex};

use berth_image::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn tar_of(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    b.append_data(&mut h, "file.bin", content).unwrap();
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// One image: a config, the layer its manifest names, and the bytes served.
pub struct Image {
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
    pub served_layer: Vec<u8>,
}

impl Image {
    pub fn config_digest(&self) -> Digest {
        Digest::sha256_of(&self.config)
    }

    /// `served` = None serves the true layer; Some(bytes) serves impostor bytes.
    pub fn new(content: &[u8], impostor: Option<&[u8]>) -> Image {
        let tar = tar_of(content);
        let layer = gz(&tar);
        let served_layer = match impostor {
            Some(other) => {
                let l = gz(&tar_of(other));
                assert_eq!(
                    l.len(),
                    layer.len(),
                    "same size, so only the digest can tell"
                );
                l
            }
            None => layer.clone(),
        };
        let config = format!(
            r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"#,
            Digest::sha256_of(&tar)
        )
        .into_bytes();
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
            Digest::sha256_of(&config),
            config.len(),
            Digest::sha256_of(&layer),
            layer.len()
        )
        .into_bytes();
        Image {
            config,
            manifest,
            served_layer,
        }
    }
}

/// Serves `img` as repository `test`. With `drop_first_layer_at`, the first
/// layer GET is cut off after that many bytes; later GETs honour `Range`.
/// Returns the address and the log of layer requests' Range headers.
pub async fn serve(
    img: Image,
    drop_first_layer_at: Option<usize>,
) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let img = Arc::new(img);
    let log = Arc::new(Mutex::new(Vec::new()));
    let log2 = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (img, log) = (img.clone(), log2.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => n += k,
                    }
                }
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let range = head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("range")
                        .then(|| v.trim().to_string())
                });
                let cd = img.config_digest().to_string();
                let mut status = "200 OK";
                let mut extra = String::new();
                let mut cut = None;
                let (ct, body): (&str, Vec<u8>) = if path == "/v2/" {
                    ("application/json", b"{}".to_vec())
                } else if path.starts_with("/v2/test/manifests/") {
                    (
                        "application/vnd.oci.image.manifest.v1+json",
                        img.manifest.clone(),
                    )
                } else if path == format!("/v2/test/blobs/{cd}") {
                    ("application/octet-stream", img.config.clone())
                } else if path.starts_with("/v2/test/blobs/") {
                    let first = {
                        let mut l = log.lock().unwrap();
                        l.push(range.clone());
                        l.len() == 1
                    };
                    let full = img.served_layer.clone();
                    let start = range
                        .as_deref()
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
                    if first {
                        cut = drop_first_layer_at;
                    }
                    match start {
                        Some(s) => {
                            status = "206 Partial Content";
                            extra = format!(
                                "Content-Range: bytes {s}-{}/{}\r\n",
                                full.len() - 1,
                                full.len()
                            );
                            ("application/octet-stream", full[s..].to_vec())
                        }
                        None => ("application/octet-stream", full),
                    }
                } else {
                    status = "404 Not Found";
                    ("text/plain", b"nope".to_vec())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let body = match cut {
                    Some(c) => &body[..c.min(body.len())],
                    None => &body[..],
                };
                let _ = sock.write_all(body).await;
                let _ = sock.flush().await;
                // Dropping the socket mid-body is the fault under test.
            });
        }
    });
    (addr, log)
}
