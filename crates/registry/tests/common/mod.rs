//! Test helpers: a registry on a random loopback port, raw HTTP helpers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use berth_registry::{App, Config, Server};
use reqwest::{Client, Method, Response, StatusCode};
use sha2::{Digest as _, Sha256};

pub struct Reg {
    pub url: String,
    pub addr: String,
    pub root: PathBuf,
    pub app: Arc<App>,
    pub http: Client,
    _dir: tempfile::TempDir,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Reg {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start() -> Reg {
    start_with(Config::default()).await
}

pub async fn start_with(mut cfg: Config) -> Reg {
    let dir = tempfile::tempdir().unwrap();
    cfg.addr = "127.0.0.1:0".into();
    let root = dir.path().join("reg");
    let server = Server::bind(cfg, root.clone()).await.unwrap();
    let addr = server.local_addr().to_string();
    let app = server.app.clone();
    let task = tokio::spawn(async move {
        server.run().await.unwrap();
    });
    Reg {
        url: format!("http://{addr}"),
        addr,
        root,
        app,
        http: Client::new(),
        _dir: dir,
        task,
    }
}

pub fn digest(data: &[u8]) -> String {
    let h = Sha256::digest(data);
    format!(
        "sha256:{}",
        h.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// A request written byte for byte on a new connection (an HTTP client
/// library would normalise `..` away); returns the whole response.
pub async fn raw_request(addr: &str, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// The `errors[0].code` of a spec error body.
pub async fn code(r: Response) -> String {
    let v: serde_json::Value = r.json().await.unwrap();
    v["errors"][0]["code"].as_str().unwrap_or("").to_string()
}

impl Reg {
    pub fn req(&self, m: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(m, format!("{}{path}", self.url))
    }

    /// Monolithic upload; returns the digest.
    pub async fn push_blob(&self, repo: &str, data: &[u8]) -> String {
        let d = digest(data);
        let r = self
            .req(
                Method::POST,
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            )
            .body(data.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        d
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        mt: &str,
        body: &[u8],
    ) -> Response {
        self.req(Method::PUT, &format!("/v2/{repo}/manifests/{reference}"))
            .header("content-type", mt)
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    /// Pushes a config + one layer and a manifest tagged `tag`; returns
    /// (manifest digest, manifest bytes, [config, layer] digests).
    pub async fn push_image(
        &self,
        repo: &str,
        tag: &str,
        seed: &str,
    ) -> (String, Vec<u8>, Vec<String>) {
        let config = format!("{{\"architecture\":\"amd64\",\"os\":\"linux\",\"seed\":\"{seed}\"}}");
        let layer = format!("layer of {seed}").repeat(100);
        let c = self.push_blob(repo, config.as_bytes()).await;
        let l = self.push_blob(repo, layer.as_bytes()).await;
        let m = manifest(&c, config.len(), &[(&l, layer.len())], None);
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &m).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
        (digest(&m), m, vec![c, l])
    }
}

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

pub fn manifest(
    config: &str,
    config_size: usize,
    layers: &[(&str, usize)],
    extra: Option<serde_json::Value>,
) -> Vec<u8> {
    let mut v = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s
        })).collect::<Vec<_>>(),
    });
    if let Some(serde_json::Value::Object(m)) = extra {
        for (k, x) in m {
            v[k] = x;
        }
    }
    serde_json::to_vec(&v).unwrap()
}
