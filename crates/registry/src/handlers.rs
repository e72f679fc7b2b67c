//! The distribution API: routes → store calls. Nothing here knows about files;
//! errors bubble up as [`Error`] and become responses in [`respond`].

use std::io;
use std::sync::Arc;

use berth_image::Digest;
use berth_image::digest::Hasher;
use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::auth::{Identity, Need};
use crate::error::{Error, Result};
use crate::manifest;
use crate::route::{Reference, RepoName, Route, parse_digest};
use crate::server::App;
use crate::upload::Session;

pub type Body = BoxBody<Bytes, io::Error>;
pub type Resp = Response<Body>;

const DIGEST_HEADER: &str = "docker-content-digest";
const INDEX_TYPE: &str = "application/vnd.oci.image.index.v1+json";

pub async fn handle(app: Arc<App>, req: Request<Incoming>) -> Resp {
    let mut resp = match dispatch(&app, req).await {
        Ok(r) => r,
        Err(e) => respond(&e),
    };
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

/// The one place an error becomes a response.
pub fn respond(e: &Error) -> Resp {
    let (_, status) = e.code_and_status();
    let mut b = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Error::Unauthorized { challenge } = e {
        b = b.header(header::WWW_AUTHENTICATE, challenge);
    }
    b.body(full(e.body())).expect("valid response")
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn build(status: StatusCode) -> hyper::http::response::Builder {
    Response::builder().status(status)
}

fn q(query: &str, key: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

fn needs_for(route: &Route, method: &Method, query: &str) -> Vec<Need> {
    let action = match *method {
        Method::GET | Method::HEAD => "pull",
        Method::DELETE => "delete",
        _ => "push",
    };
    match route {
        Route::Ping | Route::Token => vec![Need::Login],
        Route::Catalog => vec![Need::Catalog],
        Route::Upload(r, _) if method == Method::GET => vec![Need::Repo(r.to_string(), "push")],
        Route::Upload(r, _) if method == Method::DELETE => vec![Need::Repo(r.to_string(), "push")],
        Route::Uploads(r) => {
            let _ = query;
            vec![Need::Repo(r.to_string(), "push")]
        }
        other => vec![Need::Repo(
            other.repo().expect("repo routes").to_string(),
            action,
        )],
    }
}

fn realm(app: &App, headers: &HeaderMap) -> String {
    if let Some(r) = app
        .cfg
        .auth
        .as_ref()
        .and_then(|a| a.token.as_ref())
        .and_then(|t| t.realm.clone())
    {
        return r;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if app.tls { "https" } else { "http" };
    format!("{scheme}://{host}/token")
}

async fn dispatch(app: &Arc<App>, req: Request<Incoming>) -> Result<Resp> {
    let route = Route::parse(req.uri().path())?;
    let method = req.method().clone();
    let query = req.uri().query().unwrap_or("").to_string();
    if route == Route::Token {
        let v = app.auth.issue_token(req.headers(), &query).await?;
        return Ok(build(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(full(v.to_string()))
            .expect("response"));
    }
    let needs = needs_for(&route, &method, &query);
    let id = app
        .auth
        .authorize(req.headers(), &realm(app, req.headers()), &needs)
        .await?;
    let head = method == Method::HEAD;
    match (route, method) {
        (Route::Ping, Method::GET | Method::HEAD) => Ok(build(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(if head { empty() } else { full("{}") })
            .expect("response")),
        (Route::Catalog, Method::GET) => catalog(app, &id, &query),
        (Route::Tags(repo), Method::GET) => tags(app, &repo, &query),
        (Route::Manifest(repo, r), Method::GET | Method::HEAD) => {
            get_manifest(app, &repo, &r, head).await
        }
        (Route::Manifest(repo, r), Method::PUT) => put_manifest(app, &repo, &r, req).await,
        (Route::Manifest(repo, r), Method::DELETE) => delete_manifest(app, &repo, &r),
        (Route::Blob(repo, d), Method::GET | Method::HEAD) => {
            get_blob(app, &repo, &d, head, req.headers()).await
        }
        (Route::Blob(repo, d), Method::DELETE) => {
            let d = parse_digest(&d)?;
            if !app.store.unlink_blob(&repo, &d)? {
                return Err(Error::BlobUnknown(d.to_string()));
            }
            Ok(build(StatusCode::ACCEPTED).body(empty()).expect("response"))
        }
        (Route::Uploads(repo), Method::POST) => start_upload(app, &repo, &id, &query, req).await,
        (Route::Upload(repo, uid), Method::GET) => {
            let s = app.uploads.get(&repo, &uid)?;
            let s = s.lock().await;
            check_repo(&s, &repo)?;
            Ok(upload_status(StatusCode::NO_CONTENT, &repo, &s))
        }
        (Route::Upload(repo, uid), Method::PATCH) => {
            let s = app.uploads.get(&repo, &uid)?;
            let mut s = s.lock().await;
            check_repo(&s, &repo)?;
            append_checked(&mut s, req).await?;
            Ok(upload_status(StatusCode::ACCEPTED, &repo, &s))
        }
        (Route::Upload(repo, uid), Method::PUT) => {
            let s = app.uploads.get(&repo, &uid)?;
            let mut s = s.lock().await;
            check_repo(&s, &repo)?;
            let digest = q(&query, "digest")
                .ok_or_else(|| Error::DigestInvalid("digest parameter missing".into()))?;
            append_checked(&mut s, req).await?;
            let d = commit(app, &mut s, &digest).await?;
            Ok(blob_created(&repo, &d))
        }
        (Route::Upload(repo, uid), Method::DELETE) => {
            let s = app.uploads.get(&repo, &uid)?;
            let s = s.lock().await;
            check_repo(&s, &repo)?;
            app.uploads.remove(&s.id);
            Ok(build(StatusCode::NO_CONTENT)
                .body(empty())
                .expect("response"))
        }
        (Route::Referrers(repo, d), Method::GET) => referrers(app, &repo, &d, &query),
        (_, m) => Err(Error::Unsupported(format!("method {m}"))),
    }
}

fn check_repo(s: &Session, repo: &RepoName) -> Result<()> {
    if &s.repo != repo {
        return Err(Error::BlobUploadUnknown(s.id.clone()));
    }
    Ok(())
}

/// `n`/`last` pagination over a sorted list, with the spec's `Link` header.
fn paginate(items: Vec<String>, query: &str, base: &str) -> Result<(Vec<String>, Option<String>)> {
    let last = q(query, "last");
    let n = match q(query, "n") {
        Some(n) => Some(
            n.parse::<usize>()
                .map_err(|_| Error::Unsupported(format!("invalid n {n:?}")))?,
        ),
        None => None,
    };
    let mut rest: Vec<String> = match &last {
        Some(l) => items.into_iter().filter(|t| t > l).collect(),
        None => items,
    };
    let mut link = None;
    if let Some(n) = n
        && rest.len() > n
    {
        rest.truncate(n);
        if let Some(l) = rest.last() {
            let l: String = form_urlencoded::byte_serialize(l.as_bytes()).collect();
            link = Some(format!("<{base}?n={n}&last={l}>; rel=\"next\""));
        }
    }
    Ok((rest, link))
}

fn json_page(body: serde_json::Value, link: Option<String>) -> Resp {
    let mut b = build(StatusCode::OK).header(header::CONTENT_TYPE, "application/json");
    if let Some(l) = link {
        b = b.header(header::LINK, l);
    }
    b.body(full(body.to_string())).expect("response")
}

fn catalog(app: &App, id: &Identity, query: &str) -> Result<Resp> {
    let repos: Vec<String> = app
        .store
        .repositories()?
        .into_iter()
        .filter(|r| app.auth.may_list(id, r))
        .collect();
    let (page, link) = paginate(repos, query, "/v2/_catalog")?;
    Ok(json_page(serde_json::json!({ "repositories": page }), link))
}

fn tags(app: &App, repo: &RepoName, query: &str) -> Result<Resp> {
    let all = app
        .store
        .tags(repo)?
        .ok_or_else(|| Error::NameUnknown(repo.to_string()))?;
    let (page, link) = paginate(all, query, &format!("/v2/{repo}/tags/list"))?;
    Ok(json_page(
        serde_json::json!({ "name": repo.as_str(), "tags": page }),
        link,
    ))
}

/// A reference to look up: a tag that can't exist is simply unknown.
fn lookup(r: &str) -> Result<Reference> {
    match Reference::parse(r) {
        Err(Error::ManifestInvalid(_)) => Err(Error::ManifestUnknown(r.to_string())),
        other => other,
    }
}

fn resolve(app: &App, repo: &RepoName, r: &str) -> Result<(Digest, String)> {
    let d = match lookup(r)? {
        Reference::Digest(d) => d,
        Reference::Tag(t) => app
            .store
            .resolve_tag(repo, &t)?
            .ok_or_else(|| Error::ManifestUnknown(format!("{repo}:{t}")))?,
    };
    let mt = app
        .store
        .manifest_type(repo, &d)?
        .ok_or_else(|| Error::ManifestUnknown(format!("{repo}@{d}")))?;
    Ok((d, mt))
}

async fn get_manifest(app: &Arc<App>, repo: &RepoName, r: &str, head: bool) -> Result<Resp> {
    let (d, mt) = resolve(app, repo, r)?;
    let b = build(StatusCode::OK)
        .header(header::CONTENT_TYPE, mt)
        .header(DIGEST_HEADER, d.to_string())
        .header(header::ETAG, format!("\"{d}\""));
    if head {
        let size = app.store.content.size(&d)?;
        return Ok(b
            .header(header::CONTENT_LENGTH, size)
            .body(empty())
            .expect("response"));
    }
    let store = app.store.clone();
    let bytes = tokio::task::spawn_blocking(move || store.content.read(&d))
        .await
        .map_err(|e| Error::Body(e.to_string()))??;
    Ok(b.header(header::CONTENT_LENGTH, bytes.len())
        .body(full(bytes))
        .expect("response"))
}

async fn put_manifest(
    app: &Arc<App>,
    repo: &RepoName,
    r: &str,
    req: Request<Incoming>,
) -> Result<Resp> {
    let reference = Reference::parse(r)?;
    let max = app.cfg.max_manifest_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if let Some(len) = declared.filter(|l| *l > max) {
        // Read and discard a moderately oversized body before answering, so
        // the client, still sending, gets the 413 instead of a broken pipe.
        // Memory stays bounded: frames are dropped as they arrive.
        if len <= 4 * max {
            let mut body = req.into_body();
            while let Some(frame) = body.frame().await {
                if frame.is_err() {
                    break;
                }
            }
        }
        return Err(Error::ManifestTooLarge(len));
    }
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = Limited::new(req.into_body(), max as usize)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                Error::ManifestTooLarge(max + 1)
            } else {
                Error::Body(e.to_string())
            }
        })?
        .to_bytes();
    let d = match &reference {
        Reference::Digest(want) => {
            let mut h = Hasher::new(want.algorithm());
            h.update(&body);
            let got = h.finish();
            if &got != want {
                return Err(Error::DigestInvalid(format!("body is {got}, not {want}")));
            }
            got
        }
        Reference::Tag(_) => Digest::sha256_of(&body),
    };
    let (store, repo2, d2) = (app.store.clone(), repo.clone(), d.clone());
    let checked = tokio::task::spawn_blocking(move || -> Result<manifest::Checked> {
        let _lock = store.lock(false)?;
        let c = manifest::check(&store, &repo2, &d2, &body, content_type.as_deref())?;
        for r in &c.references {
            store.touch(r);
        }
        store.content.write_all(&body, Some(&d2))?;
        store.touch(&d2);
        store.link_manifest(&repo2, &d2, &c.media_type)?;
        if let (Some(s), Some(desc)) = (&c.subject, &c.descriptor) {
            store.add_referrer(&repo2, s, &d2, desc)?;
        }
        if let Reference::Tag(t) = &reference {
            store.set_tag(&repo2, t, &d2)?;
        }
        Ok(c)
    })
    .await
    .map_err(|e| Error::Body(e.to_string()))??;
    let mut b = build(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/manifests/{d}"))
        .header(DIGEST_HEADER, d.to_string());
    if let Some(s) = &checked.subject {
        b = b.header("oci-subject", s.to_string());
    }
    Ok(b.body(empty()).expect("response"))
}

fn delete_manifest(app: &App, repo: &RepoName, r: &str) -> Result<Resp> {
    match lookup(r)? {
        Reference::Tag(t) => {
            if !app.store.delete_tag(repo, &t)? {
                return Err(Error::ManifestUnknown(format!("{repo}:{t}")));
            }
        }
        Reference::Digest(d) => {
            if app.store.manifest_type(repo, &d)?.is_none() {
                return Err(Error::ManifestUnknown(format!("{repo}@{d}")));
            }
            if let Ok(bytes) = app.store.content.read(&d) {
                let subject = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v["subject"]["digest"].as_str().and_then(|s| s.parse().ok()));
                if let Some(s) = subject {
                    app.store.remove_referrer(repo, &s, &d)?;
                }
            }
            for t in app.store.tags(repo)?.unwrap_or_default() {
                if app.store.resolve_tag(repo, &t)?.as_ref() == Some(&d) {
                    app.store.delete_tag(repo, &t)?;
                }
            }
            app.store.unlink_manifest(repo, &d)?;
        }
    }
    Ok(build(StatusCode::ACCEPTED).body(empty()).expect("response"))
}

/// Parses `Range: bytes=a-b` (single range) against `size`.
fn byte_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>> {
    let Some(v) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let bad = || Error::RangeInvalid(v.to_string());
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().map_err(|_| bad())?;
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (a, "") => (a.parse().map_err(|_| bad())?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().map_err(|_| bad())?,
            b.parse::<u64>()
                .map_err(|_| bad())?
                .min(size.saturating_sub(1)),
        ),
    };
    if start > end || start >= size {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

async fn get_blob(
    app: &Arc<App>,
    repo: &RepoName,
    d: &str,
    head: bool,
    headers: &HeaderMap,
) -> Result<Resp> {
    let d = parse_digest(d)?;
    if !app.store.blob_linked(repo, &d) {
        return Err(Error::BlobUnknown(d.to_string()));
    }
    let size = app.store.content.size(&d)?;
    let b = build(StatusCode::OK)
        .header(DIGEST_HEADER, d.to_string())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::ETAG, format!("\"{d}\""))
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if head {
        // A HEAD is how a pusher learns it can skip an upload: keep the blob fresh
        // (under the lock, so a sweep in progress either sees the touch or wins).
        let store = app.store.clone();
        let d2 = d.clone();
        tokio::task::spawn_blocking(move || -> Result<()> {
            let _l = store.lock(false)?;
            store.touch(&d2);
            Ok(())
        })
        .await
        .map_err(|e| Error::Body(e.to_string()))??;
        return Ok(b
            .header(header::CONTENT_LENGTH, size)
            .body(empty())
            .expect("response"));
    }
    let range = byte_range(headers, size)?;
    let mut file = tokio::fs::File::open(app.store.content.blob_path(&d))
        .await
        .map_err(|_| Error::BlobUnknown(d.to_string()))?;
    let (status, start, len) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        None => (StatusCode::OK, 0, size),
    };
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await?;
    }
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024);
    let body = StreamBody::new(stream.map_ok(Frame::data)).boxed();
    let mut b = b.status(status).header(header::CONTENT_LENGTH, len);
    if range.is_some() {
        b = b.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    Ok(b.body(body).expect("response"))
}

fn upload_status(status: StatusCode, repo: &RepoName, s: &Session) -> Resp {
    build(status)
        .header(
            header::LOCATION,
            format!("/v2/{repo}/blobs/uploads/{}", s.id),
        )
        .header(header::RANGE, s.range())
        .header("docker-upload-uuid", &s.id)
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .expect("response")
}

fn blob_created(repo: &RepoName, d: &Digest) -> Resp {
    build(StatusCode::CREATED)
        .header(header::LOCATION, format!("/v2/{repo}/blobs/{d}"))
        .header(DIGEST_HEADER, d.to_string())
        .header(header::CONTENT_LENGTH, 0)
        .body(empty())
        .expect("response")
}

/// Appends a PATCH/PUT body, enforcing that `Content-Range` continues at the
/// session's offset (out-of-order chunks get 416).
async fn append_checked(s: &mut Session, req: Request<Incoming>) -> Result<()> {
    if let Some(cr) = req.headers().get(header::CONTENT_RANGE) {
        let v = cr.to_str().unwrap_or("");
        let spec = v
            .trim()
            .trim_start_matches("bytes")
            .trim_start_matches(['=', ' ']);
        let spec = spec.split('/').next().unwrap_or("");
        let (a, b) = spec
            .split_once('-')
            .ok_or_else(|| Error::RangeInvalid(v.to_string()))?;
        let start: u64 = a
            .trim()
            .parse()
            .map_err(|_| Error::RangeInvalid(v.to_string()))?;
        let end: u64 = b
            .trim()
            .parse()
            .map_err(|_| Error::RangeInvalid(v.to_string()))?;
        if start != s.offset || end < start {
            return Err(Error::RangeInvalid(format!(
                "{v}: upload is at offset {}",
                s.offset
            )));
        }
    }
    s.append(req.into_body()).await?;
    Ok(())
}

/// Verifies the session's data against `digest` and moves it into the content
/// store, linked to the repository.
async fn commit(app: &Arc<App>, s: &mut Session, digest: &str) -> Result<Digest> {
    let want = parse_digest(digest)?;
    let got = s.digest(want.algorithm()).await?;
    if got != want {
        return Err(Error::DigestInvalid(format!(
            "uploaded {got}, expected {want}"
        )));
    }
    let (store, repo, data, d) = (
        app.store.clone(),
        s.repo.clone(),
        s.data_path(),
        want.clone(),
    );
    tokio::task::spawn_blocking(move || -> Result<()> {
        let _lock = store.lock(false)?;
        if store.content.exists(&d) {
            let _ = std::fs::remove_file(&data);
        } else {
            store.adopt(&data, &d)?;
        }
        store.touch(&d);
        store.link_blob(&repo, &d)
    })
    .await
    .map_err(|e| Error::Body(e.to_string()))??;
    app.uploads.remove(&s.id);
    Ok(want)
}

async fn start_upload(
    app: &Arc<App>,
    repo: &RepoName,
    id: &Identity,
    query: &str,
    req: Request<Incoming>,
) -> Result<Resp> {
    if let (Some(m), Some(from)) = (q(query, "mount"), q(query, "from")) {
        let d = parse_digest(&m)?;
        if let Ok(from) = RepoName::parse(&from)
            && app.auth.can(id, from.as_str(), "pull")
            && app.store.blob_linked(&from, &d)
        {
            let (store, repo2, d2) = (app.store.clone(), repo.clone(), d.clone());
            let linked = tokio::task::spawn_blocking(move || -> Result<bool> {
                let _lock = store.lock(false)?;
                if !store.content.exists(&d2) {
                    return Ok(false);
                }
                store.touch(&d2);
                store.link_blob(&repo2, &d2)?;
                Ok(true)
            })
            .await
            .map_err(|e| Error::Body(e.to_string()))??;
            if linked {
                return Ok(blob_created(repo, &d));
            }
        }
    }
    let sref = app.uploads.create(repo)?;
    let mut s = sref.lock().await;
    if let Some(digest) = q(query, "digest") {
        // Monolithic upload: the whole blob in this request.
        parse_digest(&digest)?;
        let res = async {
            s.append(req.into_body()).await?;
            commit(app, &mut s, &digest).await
        }
        .await;
        return match res {
            Ok(d) => Ok(blob_created(repo, &d)),
            Err(e) => {
                app.uploads.remove(&s.id);
                Err(e)
            }
        };
    }
    Ok(upload_status(StatusCode::ACCEPTED, repo, &s))
}

fn referrers(app: &App, repo: &RepoName, d: &str, query: &str) -> Result<Resp> {
    let d = parse_digest(d)?;
    let mut list = app.store.referrers(repo, &d)?;
    let filter = q(query, "artifactType");
    if let Some(at) = &filter {
        list.retain(|v| v["artifactType"].as_str() == Some(at.as_str()));
    }
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": INDEX_TYPE,
        "manifests": list,
    });
    let mut b = build(StatusCode::OK).header(header::CONTENT_TYPE, INDEX_TYPE);
    if filter.is_some() {
        b = b.header("oci-filters-applied", "artifactType");
    }
    Ok(b.body(full(body.to_string())).expect("response"))
}
