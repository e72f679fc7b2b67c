//! Each endpoint of the distribution API, including its error codes, against a
//! registry on a random loopback port.

mod common;

use common::*;
use reqwest::{Method, StatusCode};

#[tokio::test(flavor = "multi_thread")]
async fn ping_and_error_codes() {
    let r = start().await;
    let resp = r.req(Method::GET, "/v2/").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );
    let zero = format!("sha256:{}", "0".repeat(64));
    let resp = r
        .req(Method::GET, &format!("/v2/a/blobs/{zero}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(resp).await, "BLOB_UNKNOWN");
    let resp = r
        .req(Method::GET, "/v2/a/manifests/latest")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(resp).await, "MANIFEST_UNKNOWN");
    let resp = r.req(Method::GET, "/v2/a/tags/list").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(resp).await, "NAME_UNKNOWN");
    let resp = r
        .req(Method::GET, "/v2/a/blobs/sha256:xyz")
        .send()
        .await
        .unwrap();
    assert_eq!(code(resp).await, "DIGEST_INVALID");
    let resp = r
        .req(Method::GET, "/v2/a/blobs/uploads/0123456789abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(code(resp).await, "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn path_tricks_in_names_are_name_invalid() {
    let r = start().await;
    for p in [
        "/v2/../../etc/manifests/latest",
        "/v2/%2e%2e/blobs/uploads/",
        "/v2/a/%2e%2e/%2e%2e/tags/list",
        "/v2/Upper/tags/list",
        "/v2/a/..%2f..%2fb/manifests/x",
        "/v2/_x/tags/list",
        "/v2/a//b/tags/list",
    ] {
        // Raw bytes on the wire: an HTTP client library would normalise `..` away.
        let resp = raw_request(&r.addr, "POST", p).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{p}: {resp}");
        assert!(resp.contains("\"NAME_INVALID\""), "{p}: {resp}");
    }
    // Nothing was created outside the repositories dir.
    assert!(!r.root.join("etc").exists() && !r.root.parent().unwrap().join("etc").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn blobs_get_head_range_delete() {
    let r = start().await;
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = r.push_blob("x/y", &data).await;
    let path = format!("/v2/x/y/blobs/{d}");
    let resp = r.req(Method::HEAD, &path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-length"], "100000");
    assert_eq!(resp.headers()["docker-content-digest"], d.as_str());
    let resp = r.req(Method::GET, &path).send().await.unwrap();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[..]);
    let resp = r
        .req(Method::GET, &path)
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(resp.headers()["content-range"], "bytes 10-19/100000");
    assert_eq!(resp.bytes().await.unwrap().as_ref(), &data[10..20]);
    let resp = r
        .req(Method::GET, &path)
        .header("range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Linked to x/y only: another repository does not serve it.
    let resp = r
        .req(Method::GET, &format!("/v2/other/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = r.req(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let resp = r.req(Method::HEAD, &path).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_offsets_status_and_digest_check() {
    let r = start().await;
    let data = b"0123456789abcdefghij".to_vec();
    let resp = r
        .req(Method::POST, "/v2/c/blobs/uploads/")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = r
        .req(Method::PATCH, &loc)
        .header("content-range", "0-9")
        .body(data[..10].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_eq!(resp.headers()["range"], "0-9");
    // Out of order (a gap) and a retried chunk are both 416.
    for cr in ["15-19", "0-9"] {
        let resp = r
            .req(Method::PATCH, &loc)
            .header("content-range", cr)
            .body(vec![0u8; 10])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{cr}");
    }
    let resp = r.req(Method::GET, &loc).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(resp.headers()["range"], "0-9");
    assert_eq!(resp.headers()["location"], loc.as_str());
    let resp = r
        .req(Method::PATCH, &loc)
        .header("content-range", "10-19")
        .body(data[10..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    // Wrong digest: 400 DIGEST_INVALID, nothing stored.
    let wrong = digest(b"something else");
    let resp = r
        .req(Method::PUT, &format!("{loc}?digest={wrong}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(resp).await, "DIGEST_INVALID");
    assert!(!r.app.store.content.exists(&wrong.parse().unwrap()));
    let d = digest(&data);
    let resp = r
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["docker-content-digest"], d.as_str());
    let got = r
        .req(Method::GET, &format!("/v2/c/blobs/{d}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), &data[..]);
    // The session is gone.
    let resp = r.req(Method::GET, &loc).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    // Cancel: 204, then unknown.
    let resp = r
        .req(Method::POST, "/v2/c/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let resp = r.req(Method::DELETE, &loc).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = r.req(Method::GET, &loc).send().await.unwrap();
    assert_eq!(code(resp).await, "BLOB_UPLOAD_UNKNOWN");
    // A session belongs to its repository.
    let resp = r
        .req(Method::POST, "/v2/c/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let other = loc.replace("/v2/c/", "/v2/d/");
    let resp = r.req(Method::GET, &other).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread")]
async fn monolithic_wrong_digest_is_rejected() {
    let r = start().await;
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/m/blobs/uploads/?digest={}", digest(b"good")),
        )
        .body("evil")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(resp).await, "DIGEST_INVALID");
    assert_eq!(
        std::fs::read_dir(r.root.join("uploads")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn manifests_validation_and_lifecycle() {
    let r = start().await;
    let (md, m, blobs) = r.push_image("app", "v1", "a").await;
    for p in [
        "/v2/app/manifests/v1".to_string(),
        format!("/v2/app/manifests/{md}"),
    ] {
        let resp = r.req(Method::GET, &p).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(resp.headers()["content-type"], OCI_MANIFEST);
        assert_eq!(resp.headers()["docker-content-digest"], md.as_str());
        assert_eq!(resp.bytes().await.unwrap().as_ref(), &m[..]);
        let resp = r.req(Method::HEAD, &p).send().await.unwrap();
        assert_eq!(
            resp.headers()["content-length"],
            m.len().to_string().as_str()
        );
    }
    // PUT by digest whose body hashes to something else.
    let resp = r
        .put_manifest("app", &digest(b"nope"), OCI_MANIFEST, &m)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code(resp).await, "DIGEST_INVALID");
    // Unknown layer.
    let csize = r
        .app
        .store
        .content
        .size(&blobs[0].parse().unwrap())
        .unwrap() as usize;
    let bad = manifest(&blobs[0], csize, &[(&digest(b"missing"), 7)], None);
    let resp = r.put_manifest("app", "bad", OCI_MANIFEST, &bad).await;
    assert_eq!(code(resp).await, "MANIFEST_BLOB_UNKNOWN");
    // Blobs of another repository don't count.
    let resp = r.put_manifest("elsewhere", "v1", OCI_MANIFEST, &m).await;
    assert_eq!(code(resp).await, "MANIFEST_BLOB_UNKNOWN");
    // Not JSON; Content-Type contradicting mediaType.
    let resp = r
        .put_manifest("app", "bad", OCI_MANIFEST, b"{not json")
        .await;
    assert_eq!(code(resp).await, "MANIFEST_INVALID");
    let resp = r.put_manifest("app", "bad", OCI_INDEX, &m).await;
    assert_eq!(code(resp).await, "MANIFEST_INVALID");
    // Oversized (> 4 MiB): 413 before the body is read whole.
    let huge = vec![b' '; 4 * 1024 * 1024 + 1];
    let resp = r.put_manifest("app", "huge", OCI_MANIFEST, &huge).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code(resp).await, "MANIFEST_INVALID");
    // Index: children must exist; Docker list type accepted.
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": md, "size": m.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}]
    }))
    .unwrap();
    let resp = r.put_manifest("app", "multi", OCI_INDEX, &index).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let resp = r.put_manifest("other", "multi", OCI_INDEX, &index).await;
    assert_eq!(code(resp).await, "MANIFEST_BLOB_UNKNOWN");
    // Delete by tag, then by digest (which also drops the remaining tags).
    let resp = r
        .req(Method::DELETE, "/v2/app/manifests/multi")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    r.put_manifest("app", "v2", OCI_MANIFEST, &m).await;
    let resp = r
        .req(Method::DELETE, &format!("/v2/app/manifests/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    for p in ["/v2/app/manifests/v1", "/v2/app/manifests/v2"] {
        let resp = r.req(Method::GET, p).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{p}");
    }
    let resp = r
        .req(Method::DELETE, &format!("/v2/app/manifests/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(code(resp).await, "MANIFEST_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_and_catalog_paginate() {
    let r = start().await;
    let (_, m, _) = r.push_image("p", "b", "p").await;
    for t in ["a", "d", "c"] {
        r.put_manifest("p", t, OCI_MANIFEST, &m).await;
    }
    let v: serde_json::Value = r
        .req(Method::GET, "/v2/p/tags/list")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["tags"], serde_json::json!(["a", "b", "c", "d"]));
    let resp = r
        .req(Method::GET, "/v2/p/tags/list?n=2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["link"],
        "</v2/p/tags/list?n=2&last=b>; rel=\"next\""
    );
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["a", "b"]));
    let resp = r
        .req(Method::GET, "/v2/p/tags/list?n=2&last=b")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("link").is_none());
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["tags"], serde_json::json!(["c", "d"]));
    for repo in ["z/z", "m"] {
        r.push_blob(repo, b"x").await;
    }
    let resp = r.req(Method::GET, "/v2/_catalog?n=2").send().await.unwrap();
    assert!(resp.headers()["link"].to_str().unwrap().contains("last=p"));
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["m", "p"]));
    let v: serde_json::Value = r
        .req(Method::GET, "/v2/_catalog?last=p")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["repositories"], serde_json::json!(["z/z"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_and_subject() {
    let r = start().await;
    let (md, m, blobs) = r.push_image("s", "v1", "s").await;
    let empty = r.push_blob("s", b"{}").await;
    let mut sigs = Vec::new();
    for (i, at) in [
        "application/vnd.example.sig",
        "application/vnd.example.sbom",
    ]
    .iter()
    .enumerate()
    {
        let art = manifest(
            &empty,
            2,
            &[(&blobs[1], 1000)],
            Some(serde_json::json!({
                "artifactType": at,
                "subject": {"mediaType": OCI_MANIFEST, "digest": md, "size": m.len()},
                "annotations": {"n": i.to_string()},
            })),
        );
        let resp = r.put_manifest("s", &digest(&art), OCI_MANIFEST, &art).await;
        assert_eq!(
            resp.status(),
            StatusCode::CREATED,
            "{:?}",
            resp.text().await
        );
        sigs.push(digest(&art));
    }
    let resp = r.put_manifest("s", &sigs[0], OCI_MANIFEST, b"").await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = r
        .req(Method::GET, &format!("/v2/s/referrers/{md}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], OCI_INDEX);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    let resp = r
        .req(
            Method::GET,
            &format!("/v2/s/referrers/{md}?artifactType=application/vnd.example.sbom"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["oci-filters-applied"], "artifactType");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(v["manifests"][0]["digest"], sigs[1].as_str());
    assert_eq!(v["manifests"][0]["annotations"]["n"], "1");
    // Deleting a referrer removes it from the list; unknown subject: empty list.
    r.req(Method::DELETE, &format!("/v2/s/manifests/{}", sigs[1]))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r
        .req(Method::GET, &format!("/v2/s/referrers/{md}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["manifests"].as_array().unwrap().len(), 1);
    let zero = format!("sha256:{}", "0".repeat(64));
    let resp = r
        .req(Method::GET, &format!("/v2/s/referrers/{zero}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn oci_subject_header_on_put() {
    let r = start().await;
    let (md, m, blobs) = r.push_image("h", "v1", "h").await;
    let art = manifest(
        &blobs[0],
        serde_json::to_vec(&serde_json::json!({})).unwrap().len() + 50,
        &[],
        Some(
            serde_json::json!({"subject": {"mediaType": OCI_MANIFEST, "digest": md, "size": m.len()}}),
        ),
    );
    // Config size is wrong on purpose: sizes are checked.
    let resp = r.put_manifest("h", "art", OCI_MANIFEST, &art).await;
    assert_eq!(code(resp).await, "MANIFEST_INVALID");
    let size = r
        .app
        .store
        .content
        .size(&blobs[0].parse().unwrap())
        .unwrap() as usize;
    let art = manifest(
        &blobs[0],
        size,
        &[],
        Some(
            serde_json::json!({"subject": {"mediaType": OCI_MANIFEST, "digest": md, "size": m.len()}}),
        ),
    );
    let resp = r.put_manifest("h", "art", OCI_MANIFEST, &art).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(resp.headers()["oci-subject"], md.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn mount_links_without_copying() {
    let r = start().await;
    let d = r.push_blob("src", &vec![9u8; 50_000]).await;
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={d}&from=src"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        resp.headers()["location"],
        format!("/v2/dst/blobs/{d}").as_str()
    );
    let resp = r
        .req(Method::HEAD, &format!("/v2/dst/blobs/{d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // Unknown in `from`: an upload session instead.
    let other = digest(b"other");
    let resp = r
        .req(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={other}&from=src"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/v2/dst/blobs/uploads/")
    );
    // One copy in the content store, however many repositories hold it.
    r.push_blob("third", &vec![9u8; 50_000]).await;
    assert_eq!(r.app.store.content.list().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_upload_is_resumed() {
    let r = start().await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let resp = r
        .req(Method::POST, "/v2/big/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    // A client that dies after 2 MB of its PATCH body.
    let first = data[..2_000_000].to_vec();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = first
        .chunks(100_000)
        .map(|c| Ok(c.to_vec()))
        .chain(std::iter::once(Err(std::io::Error::other("client died"))))
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let _ = r.req(Method::PATCH, &loc).body(body).send().await;
    // Ask where to resume, then send the rest.
    let mut offset = 0u64;
    for _ in 0..50 {
        let resp = r.req(Method::GET, &loc).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        let range = resp.headers()["range"].to_str().unwrap().to_string();
        offset = range.split('-').nth(1).unwrap().parse::<u64>().unwrap() + 1;
        if offset >= 2_000_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(offset > 0 && offset <= 2_000_000, "{offset}");
    let rest = data[offset as usize..].to_vec();
    let resp = r
        .req(Method::PATCH, &loc)
        .header("content-range", format!("{offset}-{}", data.len() - 1))
        .body(rest)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let d = digest(&data);
    let resp = r
        .req(Method::PUT, &format!("{loc}?digest={d}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(r.app.store.content.read(&d.parse().unwrap()).unwrap(), data);
}
