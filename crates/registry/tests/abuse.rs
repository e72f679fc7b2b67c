//! Abuse suite (issue #13): traversal through digests, upload ids and mount
//! parameters, the probes the adversarial review tried against
//! `berth registry serve` and that held. Names with `..` are in api.rs
//! (`path_tricks_in_names_are_name_invalid`).

mod common;

use common::*;
use reqwest::{Method, StatusCode};

/// The status line's code of a raw response.
fn status(resp: &str) -> u16 {
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Every file under `dir` with its length: what must not change.
fn tree(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            if m.is_dir() {
                stack.push(e.path());
            }
            out.push((e.path().display().to_string(), m.len()));
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn abuse_traversal_in_digests_upload_ids_and_mounts() {
    let r = start().await;
    let (_, _, blobs) = r.push_image("a", "v1", "abuse").await;
    // A file beside the registry's root, and one in another repository's
    // upload, that no request may reach.
    let outside = r.root.parent().unwrap();
    std::fs::write(outside.join("victim"), b"precious").unwrap();
    let resp = r
        .req(Method::POST, "/v2/other/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let other_upload = resp.headers()["location"].to_str().unwrap().to_string();
    let other_id = other_upload.rsplit('/').next().unwrap().to_string();
    let before = tree(outside);

    let dotdot = format!("sha256:../../../../victim{}", "0".repeat(40));
    let cases: Vec<(&str, String, &[u16])> = vec![
        // Upload ids: hex only; `/`, `..` and other repositories' ids are unknown.
        ("GET", "/v2/a/blobs/uploads/../../../victim".into(), &[404]),
        (
            "PATCH",
            "/v2/a/blobs/uploads/..%2f..%2fvictim".into(),
            &[404],
        ),
        (
            "PUT",
            format!(
                "/v2/a/blobs/uploads/0a/../../{other_id}?digest={}",
                blobs[0]
            ),
            &[400, 404],
        ),
        (
            "DELETE",
            "/v2/a/blobs/uploads/../../../../victim".into(),
            &[404],
        ),
        ("DELETE", format!("/v2/a/blobs/uploads/{other_id}"), &[404]),
        (
            "PUT",
            format!("/v2/a/blobs/uploads/{other_id}?digest={}", blobs[0]),
            &[404],
        ),
        (
            "DELETE",
            format!("/v2/a/blobs/uploads/{}", "f".repeat(65)),
            &[404],
        ),
        // Digests: the grammar refuses `..` and `/` before any path is built.
        ("GET", format!("/v2/a/blobs/{dotdot}"), &[400, 404]),
        (
            "GET",
            "/v2/a/blobs/sha256:..%2f..%2f..%2fvictim".into(),
            &[400],
        ),
        (
            "DELETE",
            "/v2/a/blobs/sha256:..%2f..%2fvictim".into(),
            &[400, 405],
        ),
        (
            "GET",
            "/v2/a/manifests/sha256:..%2f..%2fvictim".into(),
            &[400],
        ),
        // An invalid tag is an unknown manifest (404), as in distribution.
        ("DELETE", "/v2/a/manifests/..%2f..%2fvictim".into(), &[404]),
        ("DELETE", "/v2/a/manifests/..".into(), &[404]),
        ("GET", "/v2/a/manifests/..".into(), &[404]),
        ("GET", "/v2/a/referrers/sha256:..%2fvictim".into(), &[400]),
        (
            "POST",
            "/v2/a/blobs/uploads/?digest=sha256:..%2f..%2fvictim".into(),
            &[400],
        ),
        // Cross-repository mounts from a name with `..` are plain uploads.
        (
            "POST",
            format!("/v2/a/blobs/uploads/?mount={}&from=..%2fother", blobs[0]),
            &[202],
        ),
        (
            "POST",
            "/v2/a/blobs/uploads/?mount=sha256:..%2fvictim&from=other".into(),
            &[202, 400],
        ),
    ];
    for (method, path, want) in &cases {
        let resp = raw_request(&r.addr, method, path).await;
        assert!(
            want.contains(&status(&resp)),
            "{method} {path}: want one of {want:?}, got {resp}"
        );
    }
    // Nothing outside the registry changed, the other repository's upload
    // is still there and the image is whole.
    let after = tree(outside);
    let changed: Vec<_> = after
        .iter()
        .filter(|(p, _)| !p.contains("/reg/uploads/"))
        .filter(|e| !before.contains(e))
        .collect();
    assert!(changed.is_empty(), "changed by the probes: {changed:?}");
    assert_eq!(std::fs::read(outside.join("victim")).unwrap(), b"precious");
    let resp = r
        .req(
            Method::GET,
            other_upload.strip_prefix(&r.url).unwrap_or(&other_upload),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT, "other's upload lost");
    for b in &blobs {
        let resp = r
            .req(Method::HEAD, &format!("/v2/a/blobs/{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{b}");
    }
}
