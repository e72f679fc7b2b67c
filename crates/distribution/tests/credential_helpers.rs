//! Credentials from docker credential helpers (`credsStore`, `credHelpers`):
//! a fake `docker-credential-berthtest` keeps secrets in a file, and a small
//! token-auth registry accepts only what the helper holds.
//!
//! Each test sets DOCKER_CONFIG and PATH for its own process (nextest runs
//! every test in a process of its own).

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use berth_distribution::auth::{self, Credentials, StoredIn};
use berth_distribution::{ClientOptions, RegistryClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const REFRESH: &str = "refresh-abc";
const TOKEN: &str = "good-token";

/// A registry that wants `Bearer good-token`, handed out by its token
/// endpoint for basic `user:pass` (GET) or the refresh token (POST).
async fn token_registry() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let realm = format!("http://{addr}/token");
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let realm = realm.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let header = |name: &str| {
                    head.lines().find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                    })
                };
                let len: usize = header("content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => buf.extend_from_slice(&chunk[..k]),
                    }
                }
                let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let auth = header("authorization").unwrap_or_default();
                let basic_ok = format!("Basic {}", b64("user:pass"));
                let token_json = format!(r#"{{"access_token":"{TOKEN}"}}"#);
                let (status, extra, body) = if path == "/v2/" {
                    if auth == format!("Bearer {TOKEN}") {
                        ("200 OK", String::new(), "{}".to_string())
                    } else {
                        (
                            "401 Unauthorized",
                            format!(
                                "WWW-Authenticate: Bearer realm=\"{realm}\",service=\"test\"\r\n"
                            ),
                            "{}".to_string(),
                        )
                    }
                } else if path.starts_with("/token")
                    && ((method == "GET" && auth == basic_ok)
                        || (method == "POST"
                            && body.contains("grant_type=refresh_token")
                            && body.contains(&format!("refresh_token={REFRESH}"))))
                {
                    ("200 OK", String::new(), token_json)
                } else {
                    ("401 Unauthorized", String::new(), "{}".to_string())
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Installs `docker-credential-berthtest` in `dir`, storing secrets as
/// `<dir>/store/<server>.json`, and puts `dir` first on PATH.
fn install_helper(dir: &Path) {
    let script = format!(
        r#"#!/bin/sh
store={dir}/store
mkdir -p "$store"
read -r input || true
case "$1" in
get)
  f="$store/$(echo "$input" | tr '/:' '__').json"
  [ -f "$f" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
  cat "$f" ;;
store)
  server=$(echo "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
  echo "$input" > "$store/$(echo "$server" | tr '/:' '__').json" ;;
erase)
  f="$store/$(echo "$input" | tr '/:' '__').json"
  [ -f "$f" ] || {{ echo "credentials not found in native keychain"; exit 1; }}
  rm "$f" ;;
list)
  printf '{{'; sep=''
  for f in "$store"/*.json; do
    [ -f "$f" ] || continue
    s=$(sed 's/.*"ServerURL":"\([^"]*\)".*/\1/' "$f")
    u=$(sed 's/.*"Username":"\([^"]*\)".*/\1/' "$f")
    printf '%s"%s":"%s"' "$sep" "$s" "$u"; sep=','
  done
  echo '}}' ;;
*) echo "unknown verb $1"; exit 1 ;;
esac
"#,
        dir = dir.display()
    );
    let path = dir.join("docker-credential-berthtest");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(script.as_bytes()).unwrap();
    drop(f);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let old = std::env::var("PATH").unwrap_or_default();
    // SAFETY: single-threaded at this point; each test is its own process.
    unsafe {
        std::env::set_var("PATH", format!("{}:{old}", dir.display()));
        std::env::set_var("DOCKER_CONFIG", dir);
    }
}

fn preload(dir: &Path, server: &str, user: &str, secret: &str) {
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join(format!("{}.json", server.replace(['/', ':'], "_"))),
        format!(r#"{{"ServerURL":"{server}","Username":"{user}","Secret":"{secret}"}}"#),
    )
    .unwrap();
}

/// `GET /v2/` with what `opts` carries.
fn ping_with(addr: &str, opts: ClientOptions) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = RegistryClient::new(addr, opts).map_err(|e| e.to_string())?;
        c.ping().await.map_err(|e| e.to_string())
    })
}

/// As the CLI does: credentials from config.json, looked up explicitly.
fn ping(addr: &str) -> Result<(), String> {
    let credentials = auth::lookup_credentials(addr).map_err(|e| e.to_string())?;
    ping_with(
        addr,
        ClientOptions {
            credentials,
            ..Default::default()
        },
    )
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn cred_helpers_entry_supplies_basic_credentials_for_the_token_endpoint() {
    let t = tempfile::tempdir().unwrap();
    let server = rt();
    let addr = server.block_on(token_registry());
    install_helper(t.path());
    std::fs::write(t.path().join("config.json"), "{}").unwrap();
    // No credentials anywhere: refused.
    let err = ping(&addr).unwrap_err();
    assert!(err.contains("authentication"), "{err}");

    std::fs::write(
        t.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{addr}":"berthtest"}}}}"#),
    )
    .unwrap();
    preload(t.path(), &addr, "user", "wrong");
    assert!(ping(&addr).is_err(), "a wrong secret must not pass");
    preload(t.path(), &addr, "user", "pass");
    ping(&addr).unwrap();
}

#[test]
fn identity_token_from_creds_store_is_exchanged_by_post() {
    let t = tempfile::tempdir().unwrap();
    let server = rt();
    let addr = server.block_on(token_registry());
    install_helper(t.path());
    std::fs::write(
        t.path().join("config.json"),
        r#"{"credsStore":"berthtest"}"#,
    )
    .unwrap();
    preload(t.path(), &addr, auth::IDENTITY_TOKEN_USER, REFRESH);
    ping(&addr).unwrap();
}

#[test]
fn login_stores_in_the_helper_and_logout_erases_it() {
    let t = tempfile::tempdir().unwrap();
    install_helper(t.path());
    std::fs::write(
        t.path().join("config.json"),
        r#"{"credsStore":"berthtest","proxies":{"keep":"me"}}"#,
    )
    .unwrap();
    let c = Credentials {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    let where_ = auth::save_credentials("registry.example:5000", &c).unwrap();
    assert_eq!(where_, StoredIn::Helper("berthtest".into()));
    let cfg = std::fs::read_to_string(t.path().join("config.json")).unwrap();
    assert!(
        !cfg.contains("s3cret"),
        "secret leaked into config.json: {cfg}"
    );
    assert!(
        cfg.contains("registry.example:5000") && cfg.contains("keep"),
        "{cfg}"
    );
    assert_eq!(
        auth::lookup_credentials("registry.example:5000").unwrap(),
        Some(c)
    );
    assert!(auth::remove_credentials("registry.example:5000").unwrap());
    assert_eq!(
        auth::lookup_credentials("registry.example:5000").unwrap(),
        None
    );
    assert!(!auth::remove_credentials("registry.example:5000").unwrap());
}

#[test]
fn a_failing_or_missing_helper_is_an_error_naming_it() {
    let t = tempfile::tempdir().unwrap();
    install_helper(t.path());
    std::fs::write(
        t.path().join("config.json"),
        r#"{"credHelpers":{"a.example":"nosuchhelper","b.example":"berthtest"}}"#,
    )
    .unwrap();
    let err = auth::lookup_credentials("a.example")
        .unwrap_err()
        .to_string();
    assert!(err.contains("docker-credential-nosuchhelper"), "{err}");
    // The client itself never runs helpers: it uses what it is given.
    assert!(RegistryClient::new("a.example", ClientOptions::default()).is_ok());
    // Not stored is not an error.
    assert_eq!(auth::lookup_credentials("b.example").unwrap(), None);
    // A broken config.json names the file.
    std::fs::write(t.path().join("config.json"), "{not json").unwrap();
    let err = auth::lookup_credentials("b.example")
        .unwrap_err()
        .to_string();
    assert!(err.contains("config.json"), "{err}");
}

/// Issue #13 defect 2: a registry client (what berthd pulls and pushes with)
/// sends only the credentials it is handed, never those of its own
/// process's config.json or credential helpers.
#[test]
fn abuse_client_never_lends_the_processes_own_credentials() {
    let t = tempfile::tempdir().unwrap();
    let server = rt();
    let addr = server.block_on(token_registry());
    install_helper(t.path());
    std::fs::write(
        t.path().join("config.json"),
        format!(r#"{{"credHelpers":{{"{addr}":"berthtest"}}}}"#),
    )
    .unwrap();
    preload(t.path(), &addr, "user", "pass");
    // The config works for whoever reads it...
    ping(&addr).unwrap();
    // ...but a client given no credentials stays anonymous.
    let err = ping_with(&addr, ClientOptions::default()).unwrap_err();
    assert!(err.contains("authentication"), "{err}");
}

/// What the CLI sends as a build's X-Registry-Config: everything the
/// credsStore lists, then the credHelpers registries; one failing helper
/// costs its entry only and is reported.
#[test]
fn all_credentials_from_the_store_and_per_registry_helpers() {
    let t = tempfile::tempdir().unwrap();
    install_helper(t.path());
    preload(t.path(), "a.example:5000", "alice", "a-secret");
    preload(
        t.path(),
        "https://index.docker.io/v1/",
        "hubuser",
        "hub-secret",
    );
    std::fs::write(
        t.path().join("config.json"),
        r#"{"credsStore":"berthtest","auths":{"inline.example":{"auth":"eDp5"}},
            "credHelpers":{"broken.example":"nosuchhelper"}}"#,
    )
    .unwrap();
    let (map, failed) = auth::all_credentials().unwrap();
    assert_eq!(
        map.for_registry("a.example:5000").unwrap().password,
        "a-secret"
    );
    assert_eq!(map.for_registry("docker.io").unwrap().username, "hubuser");
    // With a credsStore, inline entries are not docker's source either.
    assert!(map.for_registry("inline.example").is_none(), "{map:?}");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("docker-credential-nosuchhelper"),
        "{failed:?}"
    );
    // Without a store: the inline entries.
    std::fs::write(
        t.path().join("config.json"),
        r#"{"auths":{"inline.example":{"auth":"eDp5"}}}"#,
    )
    .unwrap();
    let (map, failed) = auth::all_credentials().unwrap();
    assert!(failed.is_empty());
    let c = map.for_registry("inline.example").unwrap();
    assert_eq!((c.username.as_str(), c.password.as_str()), ("x", "y"));
    assert!(
        !format!("{map:?}").contains('y'),
        "Debug shows no secret: {map:?}"
    );
}
