//! A distribution-spec registry client: auth, retries, manifests and blobs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use berth_image::Digest;
use berth_image::formats::media;
use bytes::Bytes;
use reqwest::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, LOCATION, RANGE,
    WWW_AUTHENTICATE,
};
use reqwest::{Method, RequestBuilder, Response, StatusCode};

use crate::auth::{Challenge, Credentials, IDENTITY_TOKEN_USER, parse_challenge};
use crate::error::{Error, Result};
use crate::policy::RegistryPolicy;
pub use crate::policy::is_local;

const ATTEMPTS: u32 = 4;

#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// Decides `http://` or `https://` (the default: HTTPS but for
    /// loopback registries).
    pub policy: RegistryPolicy,
    /// The only credentials the client sends. Never taken from this
    /// process's own config.json: a daemon acts for its API client, and
    /// lends it nothing (the CLI reads its config with [`crate::auth`]).
    pub credentials: Option<Credentials>,
}

/// A client for one registry host.
pub struct RegistryClient {
    http: reqwest::Client,
    host: String,
    base: String,
    creds: Option<Credentials>,
    /// Bearer tokens by scope; `None` scope key "" holds a basic-auth marker.
    tokens: Mutex<HashMap<String, String>>,
    use_basic: std::sync::atomic::AtomicBool,
    /// Blob GETs sent (tests use it to prove layers were skipped).
    pub blob_gets: AtomicU64,
}

pub enum Access {
    Pull,
    Push,
}

impl RegistryClient {
    pub fn new(domain: &str, opts: ClientOptions) -> Result<Self> {
        // docker.io's API lives elsewhere.
        let host = if domain == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            domain.to_string()
        };
        let scheme = opts.policy.scheme(&host);
        let http = reqwest::Client::builder()
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| Error::Http {
                method: "build".into(),
                url: host.clone(),
                source: e,
            })?;
        Ok(RegistryClient {
            http,
            base: format!("{scheme}://{host}"),
            host,
            creds: opts.credentials,
            tokens: Mutex::new(HashMap::new()),
            use_basic: false.into(),
            blob_gets: AtomicU64::new(0),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Resolves a `Location` header (absolute or relative) to a URL.
    pub fn resolve_location(&self, loc: &str) -> String {
        if loc.starts_with("http://") || loc.starts_with("https://") {
            loc.to_string()
        } else {
            self.url(loc)
        }
    }

    fn scope(repo: &str, access: &Access) -> String {
        match access {
            Access::Pull => format!("repository:{repo}:pull"),
            Access::Push => format!("repository:{repo}:pull,push"),
        }
    }

    /// Sends a request (rebuilt per attempt), answering auth challenges and
    /// retrying connection errors, 429 and 5xx with exponential backoff.
    pub async fn send(
        &self,
        method: Method,
        url: &str,
        scope: &str,
        build: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Response> {
        let mut authed_once = false;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = build(self.http.request(method.clone(), url));
            if let Some(tok) = self.tokens.lock().expect("token cache").get(scope) {
                req = req.header(AUTHORIZATION, format!("Bearer {tok}"));
            } else if self.use_basic.load(Ordering::Relaxed)
                && let Some(c) = &self.creds
            {
                req = req.header(AUTHORIZATION, c.basic_header());
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e)
                    if attempt < ATTEMPTS
                        && (e.is_connect() || e.is_timeout() || e.is_request()) =>
                {
                    backoff(attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(Error::Http {
                        method: method.to_string(),
                        url: url.into(),
                        source: e,
                    });
                }
            };
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !authed_once {
                authed_once = true;
                let challenge = resp
                    .headers()
                    .get(WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_challenge);
                match challenge {
                    Some(Challenge::Basic) if self.creds.is_some() => {
                        self.use_basic.store(true, Ordering::Relaxed);
                        continue;
                    }
                    Some(Challenge::Basic) => {
                        return Err(Error::NoCredentials {
                            method: go_method(&method),
                            url: url.into(),
                        });
                    }
                    Some(Challenge::Bearer { realm, service, .. }) => {
                        let token = self.fetch_token(&realm, service.as_deref(), scope).await?;
                        self.tokens
                            .lock()
                            .expect("token cache")
                            .insert(scope.to_string(), token);
                        continue;
                    }
                    _ => {}
                }
            }
            if (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
                && attempt < ATTEMPTS
            {
                backoff(attempt).await;
                continue;
            }
            return Ok(resp);
        }
    }

    async fn fetch_token(&self, realm: &str, service: Option<&str>, scope: &str) -> Result<String> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if !scope.is_empty() {
            query.push(("scope", scope));
        }
        if let Some(s) = service {
            query.push(("service", s));
        }
        let req = match &self.creds {
            // An identity token from a credential helper is an OAuth2
            // refresh token: exchanged by POST, as docker does.
            Some(c) if c.username == IDENTITY_TOKEN_USER => {
                let mut form = form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token")
                    .append_pair("refresh_token", &c.password)
                    .append_pair("client_id", "berth");
                for (k, v) in &query {
                    form.append_pair(k, v);
                }
                self.http
                    .post(realm)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.finish())
            }
            Some(c) => self
                .http
                .get(realm)
                .query(&query)
                .header(AUTHORIZATION, c.basic_header()),
            None => self.http.get(realm).query(&query),
        };
        let auth_err = |m: String| Error::Auth(self.host.clone(), m);
        let resp = req.send().await.map_err(|e| auth_err(e.to_string()))?;
        if !resp.status().is_success() {
            return Err(auth_err(format!(
                "token endpoint answered {}",
                resp.status()
            )));
        }
        #[derive(serde::Deserialize)]
        struct Tok {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp.bytes().await.map_err(|e| auth_err(e.to_string()))?;
        let tok: Tok = serde_json::from_slice(&body).map_err(|e| auth_err(e.to_string()))?;
        tok.token
            .or(tok.access_token)
            .ok_or_else(|| auth_err("no token in answer".into()))
    }

    /// `GET /v2/` with the client's credentials: what `login` checks. A
    /// registry without auth accepts anyone, as with docker.
    pub async fn ping(&self) -> Result<()> {
        let url = self.url("/v2/");
        let resp = self.send(Method::GET, &url, "", |r| r).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::Auth(
                self.host.clone(),
                "unauthorized: incorrect username or password".into(),
            ));
        }
        check(resp, "GET", &url).await.map(drop)
    }

    /// Fetches a manifest by tag or digest: (bytes, content type, digest).
    /// A digest reference is verified against the bytes.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, Option<String>, Digest)> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(Method::GET, &url, &Self::scope(repo, &Access::Pull), |r| {
                r.header(ACCEPT, media::MANIFEST_TYPES.join(", "))
            })
            .await?;
        let resp = check(resp, "GET", &url).await?;
        let ct = header(resp.headers(), CONTENT_TYPE);
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| http_err("GET", &url, e))?
            .to_vec();
        let digest = match reference.parse::<Digest>() {
            Ok(want) => {
                let mut h = berth_image::digest::Hasher::new(want.algorithm());
                h.update(&bytes);
                let got = h.finish();
                if got != want {
                    return Err(berth_image::Error::DigestMismatch {
                        expected: want.to_string(),
                        actual: got.to_string(),
                    }
                    .into());
                }
                want
            }
            Err(_) => Digest::sha256_of(&bytes),
        };
        Ok((bytes, ct, digest))
    }

    /// Starts a blob download at byte `offset`. Returns the response and
    /// whether the registry honoured the range (206) — if not, the body
    /// starts at byte 0.
    pub async fn get_blob(
        &self,
        repo: &str,
        digest: &Digest,
        offset: u64,
    ) -> Result<(Response, bool)> {
        self.blob_gets.fetch_add(1, Ordering::Relaxed);
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(Method::GET, &url, &Self::scope(repo, &Access::Pull), |r| {
                if offset > 0 {
                    r.header(RANGE, format!("bytes={offset}-"))
                } else {
                    r
                }
            })
            .await?;
        let resp = check(resp, "GET", &url).await?;
        let ranged = resp.status() == StatusCode::PARTIAL_CONTENT;
        Ok((resp, ranged))
    }

    pub async fn get_blob_bytes(&self, repo: &str, digest: &Digest) -> Result<Vec<u8>> {
        let (resp, _) = self.get_blob(repo, digest, 0).await?;
        let url = resp.url().to_string();
        Ok(resp
            .bytes()
            .await
            .map_err(|e| http_err("GET", &url, e))?
            .to_vec())
    }

    pub async fn has_blob(&self, repo: &str, digest: &Digest) -> Result<bool> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(Method::HEAD, &url, &Self::scope(repo, &Access::Push), |r| r)
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => check(resp, "HEAD", &url).await.map(|_| false),
        }
    }

    /// Starts an upload, or mounts `digest` from `from_repo` (same registry).
    /// Returns `None` when mounted, else the upload URL.
    pub async fn start_upload(
        &self,
        repo: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Option<String>> {
        let mut path = format!("/v2/{repo}/blobs/uploads/");
        if let Some((d, from)) = mount {
            path.push_str(&format!("?mount={d}&from={from}"));
        }
        let url = self.url(&path);
        let resp = self
            .send(Method::POST, &url, &Self::scope(repo, &Access::Push), |r| {
                r.header(CONTENT_LENGTH, "0")
            })
            .await?;
        let resp = check(resp, "POST", &url).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(None);
        }
        let loc = header(resp.headers(), LOCATION)
            .ok_or_else(|| Error::Protocol("upload started without a Location".into()))?;
        Ok(Some(self.resolve_location(&loc)))
    }

    /// Uploads `data` at `location` as one PATCH chunk starting at `start`;
    /// returns the next location.
    pub async fn patch_chunk(
        &self,
        repo: &str,
        location: &str,
        start: u64,
        data: Bytes,
    ) -> Result<String> {
        let end = start + data.len() as u64 - 1;
        let resp = self
            .send(
                Method::PATCH,
                location,
                &Self::scope(repo, &Access::Push),
                |r| {
                    r.header(CONTENT_TYPE, "application/octet-stream")
                        .header("Content-Range", format!("{start}-{end}"))
                        .header(CONTENT_LENGTH, data.len().to_string())
                        .body(data.clone())
                },
            )
            .await?;
        let resp = check(resp, "PATCH", location).await?;
        let loc = header(resp.headers(), LOCATION).unwrap_or_else(|| location.to_string());
        Ok(self.resolve_location(&loc))
    }

    /// Finishes an upload (with the last bytes, or all of them: monolithic).
    pub async fn finish_upload(
        &self,
        repo: &str,
        location: &str,
        digest: &Digest,
        data: Bytes,
    ) -> Result<()> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let resp = self
            .send(Method::PUT, &url, &Self::scope(repo, &Access::Push), |r| {
                r.header(CONTENT_TYPE, "application/octet-stream")
                    .header(CONTENT_LENGTH, data.len().to_string())
                    .body(data.clone())
            })
            .await?;
        check(resp, "PUT", &url).await.map(drop)
    }

    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: Vec<u8>,
    ) -> Result<()> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let body = Bytes::from(body);
        let resp = self
            .send(Method::PUT, &url, &Self::scope(repo, &Access::Push), |r| {
                r.header(CONTENT_TYPE, media_type).body(body.clone())
            })
            .await?;
        check(resp, "PUT", &url).await.map(drop)
    }
}

/// `GET` as Go's `url.Error` spells it (`Get`), so messages read as dockerd's.
fn go_method(m: &Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_ascii_lowercase());
    out
}

async fn backoff(attempt: u32) {
    tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub(crate) fn http_err(method: &str, url: &str, e: reqwest::Error) -> Error {
    Error::Http {
        method: method.into(),
        url: url.into(),
        source: e,
    }
}

async fn check(resp: Response, method: &str, url: &str) -> Result<Response> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    Err(Error::Status {
        method: method.into(),
        url: url.into(),
        status,
        body: body.chars().take(300).collect(),
    })
}
