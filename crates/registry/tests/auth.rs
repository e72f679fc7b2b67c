//! Auth: htpasswd basic, bearer tokens from /token, per-repository rules, TLS.

mod common;

use std::path::Path;

use berth_registry::Config;
use berth_registry::config::{AccessRule, AuthConfig, TlsConfig, TokenConfig};
use common::*;
use reqwest::{Method, StatusCode};

fn rule(account: &str, repo: &str, actions: &[&str]) -> AccessRule {
    AccessRule {
        account: account.into(),
        repository: repo.into(),
        actions: actions.iter().map(|a| a.to_string()).collect(),
    }
}

fn auth_config(dir: &Path, token: bool) -> Config {
    let hp = dir.join("htpasswd");
    let line = |u: &str, p: &str| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap());
    std::fs::write(&hp, line("alice", "wonder") + &line("bob", "builder")).unwrap();
    Config {
        auth: Some(AuthConfig {
            htpasswd: Some(hp),
            token: token.then(|| TokenConfig {
                service: "reg".into(),
                issuer: "reg".into(),
                expiry_secs: 60,
                ..Default::default()
            }),
            access: vec![
                rule("alice", "team/*", &["pull", "push", "delete"]),
                rule("bob", "team/*", &["pull"]),
                rule("anonymous", "public/*", &["pull"]),
            ],
        }),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn htpasswd_basic_auth_denies_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let r = start_with(auth_config(dir.path(), false)).await;
    let resp = r
        .req(Method::GET, "/v2/team/app/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    assert_eq!(code(resp).await, "UNAUTHORIZED");
    let resp = r
        .req(Method::GET, "/v2/team/app/tags/list")
        .basic_auth("alice", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // bob may pull but not push.
    let resp = r
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .basic_auth("bob", Some("builder"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(code(resp).await, "DENIED");
    let resp = r
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .basic_auth("alice", Some("wonder"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Outside her rules alice is denied too.
    let resp = r
        .req(Method::GET, "/v2/other/tags/list")
        .basic_auth("alice", Some("wonder"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    // Anonymous pull where a rule allows it.
    let resp = r
        .req(Method::GET, "/v2/public/x/tags/list")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::NOT_FOUND,
        "unknown repo, but allowed"
    );
}

async fn token(r: &Reg, user: Option<(&str, &str)>, scope: &str) -> String {
    let mut req = r.req(Method::GET, &format!("/token?service=reg&scope={scope}"));
    if let Some((u, p)) = user {
        req = req.basic_auth(u, Some(p));
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["token"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn bearer_tokens_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let r = start_with(auth_config(dir.path(), true)).await;
    let resp = r
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let ch = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(
        ch,
        format!(
            "Bearer realm=\"{}/token\",service=\"reg\",scope=\"repository:team/app:pull,push\"",
            r.url
        )
    );
    let scope = "repository:team/app:pull,push";
    let alice = token(&r, Some(("alice", "wonder")), scope).await;
    let resp = r
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // bob's token only carries pull: push gets a new challenge.
    let bob = token(&r, Some(("bob", "builder")), scope).await;
    let resp = r
        .req(Method::POST, "/v2/team/app/blobs/uploads/")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(
        resp.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"insufficient_scope\"")
    );
    let resp = r
        .req(Method::GET, "/v2/team/app/tags/list")
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // A token for one repository is no good for another.
    let resp = r
        .req(Method::GET, "/v2/team/other/tags/list")
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Anonymous tokens get nothing outside public/*; tampered tokens nothing at all.
    let anon = token(&r, None, scope).await;
    let resp = r
        .req(Method::GET, "/v2/team/app/tags/list")
        .bearer_auth(&anon)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let mut forged = alice.clone();
    forged.insert(forged.len() - 3, 'x');
    let resp = r
        .req(Method::GET, "/v2/team/app/tags/list")
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // Wrong password at the token endpoint.
    let resp = r
        .req(Method::GET, &format!("/token?service=reg&scope={scope}"))
        .basic_auth("alice", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_from_cert_and_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "openssl is needed to make a test certificate");
    let r = start_with(Config {
        tls: Some(TlsConfig { cert, key }),
        ..Config::default()
    })
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let resp = client
        .get(format!("https://{}/v2/", r.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Plain HTTP to a TLS port gets nothing useful.
    assert!(r.req(Method::GET, "/v2/").send().await.is_err());
}
