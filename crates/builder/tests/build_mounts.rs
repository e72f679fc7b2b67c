//! RUN --mount (root, the busybox fixture; see common/): cache, bind,
//! tmpfs and secret mounts, none of which leaves a trace in a layer.

mod common;

use std::sync::{Arc, Mutex};

use berth_builder::build::{self, BuildOptions, DockerfileSource};
use common::*;

fn all_layer_entries(e: &Env, id: &berth_image::Digest, from: usize) -> Vec<String> {
    let rec = e.store.resolve(&id.to_string()).unwrap();
    rec.layers[from..]
        .iter()
        .flat_map(|l| layer_entries(&e.store, l))
        .collect()
}

fn blobs_contain(e: &Env, id: &berth_image::Digest, needle: &[u8]) -> bool {
    use std::io::Read;
    let rec = e.store.resolve(&id.to_string()).unwrap();
    rec.layers.iter().any(|l| {
        let f = e.store.content.open_blob(&l.blob).unwrap();
        let mut data = Vec::new();
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut data)
            .unwrap();
        data.windows(needle.len()).any(|w| w == needle)
    })
}

#[test]
fn run_mounts_cache_bind_tmpfs_secret() {
    let e = env();
    let ctx = e.context("ctx");
    std::fs::write(ctx.join("a.txt"), "from-context\n").unwrap();
    let secret = e.dir.path().join("tok");
    std::fs::write(&secret, "s3cret-value").unwrap();
    let base_layers = e.store.resolve("busybox").unwrap().layers.len();
    let df = "FROM busybox AS gen\nRUN echo from-stage > /g\n\
              FROM busybox\n\
              RUN --mount=type=cache,target=/cache,id=c1 echo x >> /cache/log && wc -l < /cache/log > /n\n\
              RUN --mount=target=/ctx cat /ctx/a.txt > /out && ! touch /ctx/new 2>/dev/null\n\
              RUN --mount=type=bind,from=gen,source=/g,target=/mnt/g cat /mnt/g >> /out\n\
              RUN --mount=type=tmpfs,target=/t echo hi > /t/f && grep -q ' /t tmpfs' /proc/mounts\n\
              RUN --mount=type=secret,id=tok test \"$(cat /run/secrets/tok)\" = s3cret-value && echo used > /used\n";
    let with_secret = |o: &mut BuildOptions| {
        o.secrets.insert("tok".into(), secret.clone());
    };
    let (r1, out) = e.build(&ctx, df, with_secret);
    let entries = all_layer_entries(&e, &r1.image_id, base_layers);
    for gone in ["cache", "ctx", "mnt", "t", "run"] {
        assert!(
            !entries
                .iter()
                .any(|n| n.trim_end_matches('/') == gone || n.starts_with(&format!("{gone}/"))),
            "mount point {gone} left in a layer: {entries:?}\n{out}"
        );
    }
    assert!(!blobs_contain(&e, &r1.image_id, b"s3cret-value"));
    let rec = e.store.resolve(&r1.image_id.to_string()).unwrap();
    {
        let m = Mounted::new(&e.store, &rec, e.dir.path().join("m1"));
        assert_eq!(
            std::fs::read_to_string(m.dir.join("n")).unwrap().trim(),
            "1"
        );
        assert_eq!(
            std::fs::read_to_string(m.dir.join("out")).unwrap(),
            "from-context\nfrom-stage\n"
        );
        assert!(m.dir.join("used").exists());
    }
    // The cache dir outlives the build: a rebuild without the step cache
    // sees the first build's file.
    let (r2, _) = e.build(&ctx, df, |o| {
        with_secret(o);
        o.no_cache = true;
    });
    let rec = e.store.resolve(&r2.image_id.to_string()).unwrap();
    {
        let m = Mounted::new(&e.store, &rec, e.dir.path().join("m2"));
        assert_eq!(
            std::fs::read_to_string(m.dir.join("n")).unwrap().trim(),
            "2"
        );
    }
    // A secret's content is not part of the cache key.
    std::fs::write(&secret, "other-value").unwrap();
    let (r3, out3) = e.build(&ctx, df, with_secret);
    assert_eq!(r3.executed_steps, 0, "{out3}");
    // A required secret the build lacks is a clear error.
    let mut o = BuildOptions::new(&ctx);
    o.dockerfile = DockerfileSource::Text(
        "FROM busybox\nRUN --mount=type=secret,id=nope,required true\n".into(),
    );
    let err = build::build(&e.store, &o, Arc::new(Mutex::new(Vec::<u8>::new())))
        .expect_err("missing required secret");
    assert!(err.to_string().contains("secret nope"), "{err}");
}
