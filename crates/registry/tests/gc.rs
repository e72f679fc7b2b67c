//! Garbage collection: what is swept and what is kept, and GC racing pushes.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use berth_registry::config::GcConfig;
use berth_registry::gc;
use common::*;
use reqwest::{Method, StatusCode};

fn age(path: &std::path::Path, secs: u64) {
    let t = SystemTime::now() - Duration::from_secs(secs);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

fn cfg(grace: u64) -> GcConfig {
    GcConfig {
        interval_secs: 0,
        grace_secs: grace,
        upload_max_age_secs: 3600,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sweeps_unreferenced_and_abandoned_keeps_referenced() {
    let r = start().await;
    let (md, _, blobs) = r.push_image("g", "v1", "g").await;
    let orphan = r.push_blob("g", b"orphan blob").await;
    let fresh = r.push_blob("g", b"fresh orphan").await;
    let store = &r.app.store;
    for d in [&md, &blobs[0], &blobs[1], &orphan] {
        age(&store.content.blob_path(&d.parse().unwrap()), 7200);
    }
    // An upload idle for two hours, and one in progress.
    let resp = r
        .req(Method::POST, "/v2/g/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let old = resp.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let resp = r
        .req(Method::POST, "/v2/g/blobs/uploads/")
        .send()
        .await
        .unwrap();
    let live = resp.headers()["location"].to_str().unwrap().to_string();
    let old_dir = r.root.join("uploads").join(&old);
    for f in ["data", "state.json"] {
        age(&old_dir.join(f), 7200);
    }
    let report = tokio::task::spawn_blocking({
        let app = r.app.clone();
        move || gc::collect(&app.store, &app.uploads, &cfg(3600))
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.blobs_deleted, 1, "{report:?}");
    assert_eq!(report.uploads_purged, 1, "{report:?}");
    assert_eq!(report.links_removed, 1, "{report:?}");
    assert!(!store.content.exists(&orphan.parse().unwrap()));
    assert!(store.content.exists(&fresh.parse().unwrap()));
    for d in &blobs {
        let resp = r
            .req(Method::GET, &format!("/v2/g/blobs/{d}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = r
        .req(Method::GET, "/v2/g/manifests/v1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = r
        .req(Method::HEAD, &format!("/v2/g/blobs/{orphan}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(!old_dir.exists());
    let resp = r.req(Method::GET, &live).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // Deleting the manifest makes its blobs collectable.
    r.req(Method::DELETE, &format!("/v2/g/manifests/{md}"))
        .send()
        .await
        .unwrap();
    let report = gc::collect(&r.app.store, &r.app.uploads, &cfg(3600)).unwrap();
    assert_eq!(report.blobs_deleted, 3, "{report:?}");
}

/// Pushers and a GC loop at once. With any grace period nothing a manifest
/// references is ever deleted; with a real one every push also succeeds.
async fn race(grace: u64, must_all_succeed: bool) {
    let r = Arc::new(start().await);
    let stop = Arc::new(AtomicBool::new(false));
    let gc_task = {
        let (app, stop) = (r.app.clone(), stop.clone());
        tokio::task::spawn_blocking(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) || runs == 0 {
                gc::collect(&app.store, &app.uploads, &cfg(grace)).unwrap();
                runs += 1;
            }
            runs
        })
    };
    let mut pushers = Vec::new();
    for p in 0..4 {
        let r = r.clone();
        pushers.push(tokio::spawn(async move {
            let mut ok = 0;
            for i in 0..15 {
                let repo = format!("race/{p}");
                let config = format!("{{\"p\":{p},\"i\":{i}}}");
                let layer = format!("layer {p} {i} ").repeat(500);
                let c = r.push_blob(&repo, config.as_bytes()).await;
                let l = r.push_blob(&repo, layer.as_bytes()).await;
                let m = manifest(&c, config.len(), &[(&l, layer.len())], None);
                let resp = r
                    .put_manifest(&repo, &format!("t{i}"), OCI_MANIFEST, &m)
                    .await;
                match resp.status() {
                    StatusCode::CREATED => ok += 1,
                    StatusCode::BAD_REQUEST => {
                        assert_eq!(code(resp).await, "MANIFEST_BLOB_UNKNOWN")
                    }
                    s => panic!("unexpected {s}"),
                }
            }
            ok
        }));
    }
    let mut ok = 0;
    for p in pushers {
        ok += p.await.unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let runs = gc_task.await.unwrap();
    assert!(runs > 1, "gc ran {runs} times");
    if must_all_succeed {
        assert_eq!(ok, 60);
    }
    // Every tagged manifest is whole.
    for p in 0..4 {
        let repo = format!("race/{p}");
        let tags: serde_json::Value = r
            .req(Method::GET, &format!("/v2/{repo}/tags/list"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for t in tags["tags"].as_array().into_iter().flatten() {
            let m: serde_json::Value = r
                .req(
                    Method::GET,
                    &format!("/v2/{repo}/manifests/{}", t.as_str().unwrap()),
                )
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let mut refs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
            refs.extend(
                m["layers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|l| l["digest"].as_str().unwrap().to_string()),
            );
            for d in refs {
                let resp = r
                    .req(Method::GET, &format!("/v2/{repo}/blobs/{d}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), StatusCode::OK, "{repo}:{t} lost {d}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_racing_push_with_grace_period() {
    race(300, true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_racing_push_without_grace_never_breaks_a_manifest() {
    race(0, false).await;
}
