//! A tiny loopback HTTP registry serving one image whose layer bytes do not
//! match the layer digest in its manifest.

use std::io::Write;

use berth_image::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn layer_tar_gz(content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "file.txt", content).unwrap();
    let tar = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    gz.finish().unwrap()
}

fn good_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(4);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, "file.txt", &b"good"[..]).unwrap();
    b.into_inner().unwrap()
}

pub fn config() -> Vec<u8> {
    let diff = Digest::sha256_of(&good_tar());
    format!(
        r#"{{"architecture":"amd64","os":"linux","config":{{"Cmd":["sh"]}},"rootfs":{{"type":"layers","diff_ids":["{diff}"]}}}}"#
    )
    .into_bytes()
}

pub fn config_digest() -> Digest {
    Digest::sha256_of(&config())
}

/// Serves until the returned handle is dropped (the runtime ends it).
pub async fn serve_bad_layer() -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let good = layer_tar_gz(b"good");
    let evil = layer_tar_gz(b"evil");
    assert_eq!(
        good.len(),
        evil.len(),
        "same size, so only the digest can tell"
    );
    let cfg = config();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
        "config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},
        "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{}","size":{}}}]}}"#,
        config_digest(),
        cfg.len(),
        Digest::sha256_of(&good),
        good.len()
    );
    let handle = tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (manifest, cfg, evil) = (manifest.clone(), cfg.clone(), evil.clone());
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
                let cd = config_digest().to_string();
                let (status, ct, body): (&str, &str, Vec<u8>) = if path == "/v2/" {
                    ("200 OK", "application/json", b"{}".to_vec())
                } else if path.starts_with("/v2/bad/manifests/") {
                    (
                        "200 OK",
                        "application/vnd.oci.image.manifest.v1+json",
                        manifest.into_bytes(),
                    )
                } else if path == format!("/v2/bad/blobs/{cd}") {
                    ("200 OK", "application/octet-stream", cfg)
                } else if path.starts_with("/v2/bad/blobs/") {
                    ("200 OK", "application/octet-stream", evil)
                } else {
                    ("404 Not Found", "text/plain", b"nope".to_vec())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (addr, handle)
}
