//! Integration tests against the reference registry on localhost:5000 (start
//! it with `bash shared/fixtures/registry.sh start`; CI does). Root only:
//! they mount overlays. Network: loopback only.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use berth_distribution::{
    ClientOptions, NoProgress, PullOptions, PushOptions, RegistryClient, pull, push,
};
use berth_image::{Digest, ImageStore, Reference};

const REGISTRY: &str = "localhost:5000";

fn require_env() {
    assert!(
        nix_is_root(),
        "these integration tests need root (they mount overlays); run them as root"
    );
    assert!(
        TcpStream::connect("127.0.0.1:5000").is_ok(),
        "the reference registry is not running on 127.0.0.1:5000: \
         start it with `bash shared/fixtures/registry.sh start`"
    );
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(domain: &str) -> Arc<RegistryClient> {
    Arc::new(RegistryClient::new(domain, ClientOptions::default()).unwrap())
}

fn pull_ref(
    rt: &tokio::runtime::Runtime,
    store: &Arc<ImageStore>,
    c: &Arc<RegistryClient>,
    name: &str,
) -> berth_image::ImageRecord {
    let r: Reference = name.parse().unwrap();
    rt.block_on(pull(
        store.clone(),
        c.clone(),
        &r,
        &PullOptions::default(),
        Arc::new(NoProgress),
    ))
    .unwrap_or_else(|e| panic!("pull {name}: {e}"))
}

/// Unmounts through the store so the mount's lease is released.
struct Mounted<'a>(&'a ImageStore, &'a Path);
impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = berth_image::rootfs::unmount_image(self.0, self.1);
    }
}

#[test]
fn pull_multilayer_rootfs_is_correct_and_shared_base_is_not_refetched() {
    require_env();
    let rt = rt();
    let t = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(t.path().join("root")).unwrap());
    let c = client(REGISTRY);
    let bb = pull_ref(&rt, &store, &c, "localhost:5000/busybox:latest");
    assert_eq!(bb.layers.len(), 1);
    // config + 1 layer
    assert_eq!(c.blob_gets.swap(0, Ordering::SeqCst), 2);
    let ml = pull_ref(&rt, &store, &c, "localhost:5000/multilayer:latest");
    assert_eq!(ml.layers.len(), 6);
    assert_eq!(ml.layers[0].chain_id, bb.layers[0].chain_id);
    // config + the 5 layers that busybox does not have
    assert_eq!(
        c.blob_gets.load(Ordering::SeqCst),
        6,
        "shared base layer was downloaded again"
    );
    assert_eq!(store.layers.list().unwrap().len(), 6);

    let mnt = t.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    berth_image::rootfs::mount_image(&store, &ml, &mnt).unwrap();
    let _guard = Mounted(&store, &mnt);
    let st = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(mnt.join("data"))
        .status()
        .unwrap();
    assert!(st.success(), "sha256sum -c failed in the multilayer rootfs");
    let absent = std::fs::read_to_string(mnt.join("data/ABSENT")).unwrap();
    for p in absent.split_whitespace() {
        let p = mnt.join(p.trim_start_matches('/'));
        assert!(
            std::fs::symlink_metadata(&p).is_err(),
            "{} should be absent",
            p.display()
        );
    }
    drop(_guard);

    // Pulling again downloads nothing.
    c.blob_gets.store(0, Ordering::SeqCst);
    pull_ref(&rt, &store, &c, "localhost:5000/multilayer:latest");
    assert_eq!(c.blob_gets.load(Ordering::SeqCst), 0);

    // rmi: multilayer's own layers go, busybox's shared one stays.
    store
        .remove("localhost:5000/multilayer:latest", false)
        .unwrap();
    assert_eq!(
        store.layers.list().unwrap(),
        vec![bb.layers[0].chain_id.clone()]
    );
    assert!(store.content.exists(&bb.layers[0].blob));
    assert!(!store.content.exists(&ml.layers[5].blob));
    store.remove("localhost:5000/busybox", false).unwrap();
    assert!(store.layers.list().unwrap().is_empty());
    assert!(store.content.list().unwrap().is_empty());
}

#[test]
fn push_then_skopeo_pulls_same_layers() {
    require_env();
    let rt = rt();
    let t = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(t.path().join("root")).unwrap());
    let c = client(REGISTRY);
    let bb = pull_ref(&rt, &store, &c, "localhost:5000/busybox:latest");
    let targets = [
        (
            "localhost:5000/berth-test/busybox:x",
            PushOptions::default(),
            true,
        ),
        (
            "localhost:5000/berth-test/chunked:y",
            PushOptions {
                chunk_size: Some(300_000),
                ..PushOptions::default()
            },
            false,
        ),
    ];
    for (name, opts, allow_mount) in targets {
        store.tag("localhost:5000/busybox:latest", name).unwrap();
        let mut rec = store.resolve(name).unwrap();
        if !allow_mount {
            // No known source repo: forces a real (chunked) upload.
            rec.repo_digests.clear();
            rec.repo_tags.clear();
        }
        let target: Reference = name.parse().unwrap();
        let d = rt
            .block_on(push(
                store.clone(),
                c.clone(),
                &rec,
                &target,
                &opts,
                Arc::new(NoProgress),
            ))
            .unwrap_or_else(|e| panic!("push {name}: {e}"));
        assert_eq!(d, bb.manifest);
        let out = t
            .path()
            .join(format!("oci-{}", target.tag.as_deref().unwrap()));
        let st = Command::new("skopeo")
            .args(["copy", "-q", "--src-tls-verify=false"])
            .arg(format!("docker://{name}"))
            .arg(format!("oci:{}:t", out.display()))
            .status()
            .unwrap();
        assert!(st.success(), "skopeo could not pull {name}");
        let idx: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
        let mdigest: Digest = idx["manifests"][0]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join("blobs/sha256").join(mdigest.hex())).unwrap(),
        )
        .unwrap();
        let layers: Vec<String> = m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string())
            .collect();
        let ours: Vec<String> = bb.layers.iter().map(|l| l.blob.to_string()).collect();
        assert_eq!(layers, ours);
    }
}

mod fake_registry;

#[test]
fn wrong_layer_digest_is_rejected_and_nothing_kept() {
    require_env();
    let rt = rt();
    let img = fake_registry::Image::new(b"good", Some(b"evil"));
    let cfg = img.config_digest();
    let (addr, _log) = rt.block_on(fake_registry::serve(img, None));
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let store = Arc::new(ImageStore::open(&root).unwrap());
    let r: Reference = format!("{addr}/test:latest").parse().unwrap();
    let err = rt
        .block_on(pull(
            store.clone(),
            client(&addr),
            &r,
            &PullOptions::default(),
            Arc::new(NoProgress),
        ))
        .expect_err("a layer with the wrong digest must be rejected");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert!(store.list().unwrap().is_empty());
    assert!(store.layers.list().unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(root.join("layers/tmp")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(root.join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
    // Only the (valid) config blob may remain; no layer blob.
    for d in store.content.list().unwrap() {
        assert_eq!(d, cfg, "unexpected blob {d} kept");
    }
}

#[test]
fn dropped_connection_mid_layer_resumes_with_range() {
    require_env();
    let rt = rt();
    // Hex of hashes: gzip can at best halve it, so the blob is big enough
    // to cut in the middle.
    let content: Vec<u8> = (0..6_000u32)
        .flat_map(|i| {
            Digest::sha256_of(&i.to_le_bytes())
                .hex()
                .as_bytes()
                .to_vec()
        })
        .collect();
    let img = fake_registry::Image::new(&content, None);
    let (addr, log) = rt.block_on(fake_registry::serve(img, Some(150_000)));
    let t = tempfile::tempdir().unwrap();
    let store = Arc::new(ImageStore::open(t.path().join("root")).unwrap());
    let r: Reference = format!("{addr}/test:latest").parse().unwrap();
    let rec = rt
        .block_on(pull(
            store.clone(),
            client(&addr),
            &r,
            &PullOptions::default(),
            Arc::new(NoProgress),
        ))
        .unwrap();
    let got = std::fs::read(
        store
            .layers
            .diff_dir(&rec.layers[0].chain_id)
            .join("file.bin"),
    )
    .unwrap();
    assert!(got == content, "resumed layer content differs");
    let log = log.lock().unwrap().clone();
    assert!(rec.layers[0].blob_size > 150_000);
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0], None);
    let resumed_at: u64 = log[1]
        .as_deref()
        .unwrap()
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    assert!(resumed_at > 0 && resumed_at <= 150_000, "{log:?}");
}

/// A pull killed after a layer's last byte reached the ingest file but
/// before the blob was committed leaves a complete partial: the next pull
/// must use it, not ask the registry for `bytes=<size>-` (the reference
/// registry answers 416 to that). A partial longer than the blob is thrown
/// away and downloaded again.
#[test]
fn complete_or_overlong_partial_download_is_used_or_restarted() {
    require_env();
    let rt = rt();
    let c = client(REGISTRY);
    // The blobs, from a pull into a scratch store.
    let scratch = tempfile::tempdir_in("/var/tmp").unwrap();
    let scratch_store = Arc::new(ImageStore::open(scratch.path().join("root")).unwrap());
    let rec = pull_ref(
        &rt,
        &scratch_store,
        &c,
        &format!("{REGISTRY}/multilayer:latest"),
    );
    let (first, second) = (&rec.layers[0].blob, &rec.layers[1].blob);

    let t = tempfile::tempdir_in("/var/tmp").unwrap();
    let store = Arc::new(ImageStore::open(t.path().join("root")).unwrap());
    // Layer 0: its whole blob in the ingest file, not committed.
    let bytes = scratch_store.content.read(first).unwrap();
    let mut w = store.content.writer(first).unwrap();
    std::io::Write::write_all(&mut w, &bytes).unwrap();
    drop(w);
    // Layer 1: its blob plus garbage after it.
    let mut long = scratch_store.content.read(second).unwrap();
    long.extend_from_slice(b"bytes that are not part of the blob");
    let mut w = store.content.writer(second).unwrap();
    std::io::Write::write_all(&mut w, &long).unwrap();
    drop(w);

    let rec2 = pull_ref(&rt, &store, &c, &format!("{REGISTRY}/multilayer:latest"));
    assert_eq!(rec2.id, rec.id);
    for l in &rec2.layers {
        assert!(
            store.layers.exists(&l.chain_id),
            "layer {} missing",
            l.chain_id
        );
    }
    assert_eq!(
        store.content.read(second).unwrap().len() as u64,
        rec.layers[1].blob_size
    );
    assert!(store.content.ingest_entries().unwrap().is_empty());
}
