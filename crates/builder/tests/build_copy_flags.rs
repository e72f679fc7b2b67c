//! COPY/ADD flags (root, the busybox fixture; see common/): `--link`
//! (a layer made without the base, reused across bases), `--parents`, and
//! the directories a copy creates.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, lchown, symlink};
use std::path::Path;

use common::*;

/// (kind, mode, uid, gid) of a path in a mounted image, not following links.
fn stat(root: &Path, p: &str) -> (&'static str, u32, u32, u32) {
    let m = fs::symlink_metadata(root.join(p.trim_start_matches('/')))
        .unwrap_or_else(|e| panic!("{p}: {e}"));
    let kind = if m.file_type().is_symlink() {
        "link"
    } else if m.is_dir() {
        "dir"
    } else {
        "file"
    };
    (kind, m.mode() & 0o7777, m.uid(), m.gid())
}

fn exists(root: &Path, p: &str) -> bool {
    fs::symlink_metadata(root.join(p.trim_start_matches('/'))).is_ok()
}

/// The same `COPY --link` after different steps (and on another base)
/// is one layer: same blob, answered from the cache, and a change to the
/// copied file does make a new one.
#[test]
fn link_layer_is_independent_of_what_is_below() {
    let e = env();
    let ctx = e.context("ctx");
    fs::write(ctx.join("a.txt"), "A\n").unwrap();
    fs::write(ctx.join("b.txt"), "B\n").unwrap();
    fs::write(ctx.join("app.txt"), "app v1\n").unwrap();
    let last = |df: &str| {
        let (r, out) = e.build(&ctx, df, |_| {});
        let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
        (rec, r, out)
    };
    let (a, _, _) = last("FROM busybox\nCOPY a.txt /a\nCOPY --link app.txt /srv/app/\n");
    let (b, rb, out) = last("FROM busybox\nCOPY b.txt /b\nCOPY --link app.txt /srv/app/\n");
    let (la, lb) = (a.layers.last().unwrap(), b.layers.last().unwrap());
    assert_eq!(la.blob, lb.blob, "same files, same layer blob");
    assert_eq!(la.diff_id, lb.diff_id);
    assert_ne!(la.chain_id, lb.chain_id, "each on its own parent");
    let copy_vertex = out
        .lines()
        .find(|l| l.ends_with("COPY app.txt /srv/app/"))
        .and_then(|l| l.split(' ').next())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out.contains(&format!("{copy_vertex} CACHED")), "{out}");
    assert_eq!(rb.cached_steps, 1, "only the linked COPY is cached: {out}");
    // On scratch too (no parent at all).
    let (s, _, _) = last("FROM scratch\nCOPY --link app.txt /srv/app/\n");
    assert_eq!(s.layers.len(), 1);
    assert_eq!(s.layers[0].blob, la.blob);
    assert_eq!(s.layers[0].chain_id, la.diff_id);
    // The relinked layer is a real layer of image b.
    let m = Mounted::new(&e.store, &b, e.dir.path().join("mnt-b"));
    assert_eq!(
        fs::read(m.dir.join("srv/app/app.txt")).unwrap(),
        b"app v1\n"
    );
    assert!(m.dir.join("b").exists() && !m.dir.join("a").exists());
    drop(m);
    // The layer holds only what was copied and its parents.
    let mut names = layer_entries(&e.store, lb);
    names.sort();
    assert_eq!(names, ["srv", "srv/app", "srv/app/app.txt"]);
    // The entry outlives the layer dir it was first stored as: the blob
    // is enough to store it again.
    e.store.layers.remove(&la.chain_id).unwrap();
    e.store.layers.remove(&lb.chain_id).unwrap();
    let (d, rd, out) = last("FROM busybox\nCOPY a.txt /a\nCOPY --link app.txt /srv/app/\n");
    assert_eq!(rd.cached_steps, 2, "{out}");
    assert_eq!(d.layers.last().unwrap().blob, la.blob);
    assert!(e.store.layers.exists(&la.chain_id));
    // A changed file is a new layer.
    fs::write(ctx.join("app.txt"), "app v2\n").unwrap();
    let (c, _, _) = last("FROM busybox\nCOPY a.txt /a\nCOPY --link app.txt /srv/app/\n");
    assert_ne!(c.layers.last().unwrap().blob, la.blob);
}

/// BuildKit's documented --link semantics: the destination's parents are
/// made fresh (0755, owned by the --chown user), so a symlink in the base
/// at the destination is replaced by a directory instead of followed, and
/// a differently-owned directory gets the new owner and mode while its
/// other files stay. Without --link (or with --chmod, which turns --link
/// off in BuildKit) the link is followed and owners are kept.
#[test]
fn link_does_not_follow_or_keep_the_base_destination() {
    let e = env();
    let ctx = e.context("ctx");
    let base = ctx.join("base");
    fs::create_dir_all(base.join("real")).unwrap();
    fs::create_dir_all(base.join("real2")).unwrap();
    fs::create_dir_all(base.join("real3")).unwrap();
    fs::create_dir_all(base.join("owned/keep")).unwrap();
    fs::write(base.join("owned/keep/old"), "old\n").unwrap();
    symlink("/real", base.join("dst")).unwrap();
    symlink("/real2", base.join("dst2")).unwrap();
    symlink("/real3", base.join("dst3")).unwrap();
    fs::set_permissions(base.join("owned"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(ctx.join("f.txt"), "F\n").unwrap();
    let df = "FROM busybox\n\
              COPY --chown=7:8 base/ /\n\
              COPY --link f.txt /dst/\n\
              COPY --link --chown=5:6 f.txt /owned/new/\n\
              COPY f.txt /dst2/\n\
              COPY --link --chmod=600 f.txt /dst3/\n";
    let (r, _) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let root = m.dir.as_path();
    // --link: /dst is now a directory; the link's target is untouched.
    assert_eq!(stat(root, "/dst"), ("dir", 0o755, 0, 0));
    assert_eq!(stat(root, "/dst/f.txt"), ("file", 0o644, 0, 0));
    assert!(!exists(root, "/real/f.txt"));
    assert_eq!(stat(root, "/real"), ("dir", 0o755, 7, 8));
    // --link --chown: the existing dir takes the layer's owner and mode,
    // its contents stay (the layer is merged over it).
    assert_eq!(stat(root, "/owned"), ("dir", 0o755, 5, 6));
    assert_eq!(stat(root, "/owned/new"), ("dir", 0o755, 5, 6));
    assert_eq!(stat(root, "/owned/new/f.txt"), ("file", 0o644, 5, 6));
    assert_eq!(stat(root, "/owned/keep/old"), ("file", 0o644, 7, 8));
    // Plain COPY follows the base's link.
    assert_eq!(stat(root, "/dst2").0, "link");
    assert_eq!(stat(root, "/real2/f.txt"), ("file", 0o644, 0, 0));
    // --chmod turns --link off (BuildKit): the link is followed too.
    assert_eq!(stat(root, "/dst3").0, "link");
    assert_eq!(stat(root, "/real3/f.txt"), ("file", 0o600, 0, 0));
}

#[test]
fn link_chown_by_name_is_refused() {
    let e = env();
    let ctx = e.context("ctx");
    fs::write(ctx.join("f"), "f").unwrap();
    let (err, _) = e.build_err(&ctx, "FROM busybox\nCOPY --link --chown=nobody f /x/\n");
    assert!(
        err.contains("line 2:") && err.contains("--chown=nobody") && err.contains("numeric"),
        "{err}"
    );
    // Names still work without --link (looked up in the base).
    let (r, _) = e.build(&ctx, "FROM busybox\nCOPY --chown=nobody f /x/\n", |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(stat(&m.dir, "/x/f"), ("file", 0o644, 65534, 65534));
}

/// Directories a COPY creates belong to the --chown user (BuildKit's
/// behaviour, checked against dockerd 20.10's BuildKit); existing ones
/// (here the WORKDIR) are left alone, and a copied directory's own mode
/// does not reach the destination.
#[test]
fn created_parents_take_the_chown_owner() {
    let e = env();
    let ctx = e.context("ctx");
    fs::write(ctx.join("a.txt"), "A\n").unwrap();
    fs::create_dir_all(ctx.join("d700/sub")).unwrap();
    fs::set_permissions(ctx.join("d700"), fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(ctx.join("d700/sub"), fs::Permissions::from_mode(0o700)).unwrap();
    let df = "FROM busybox\n\
              COPY d700 /copied/\n\
              COPY --chown=5:6 a.txt /newdir/sub/\n\
              COPY --chown=7:8 a.txt /newdir/other/b.txt\n\
              WORKDIR /w\n\
              COPY --chown=9:9 a.txt rel/\n\
              COPY a.txt /plain/deep/\n";
    let (r, _) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let root = m.dir.as_path();
    assert_eq!(stat(root, "/newdir"), ("dir", 0o755, 5, 6));
    assert_eq!(stat(root, "/newdir/sub"), ("dir", 0o755, 5, 6));
    assert_eq!(stat(root, "/newdir/other"), ("dir", 0o755, 7, 8));
    assert_eq!(stat(root, "/newdir/other/b.txt"), ("file", 0o644, 7, 8));
    assert_eq!(stat(root, "/w"), ("dir", 0o755, 0, 0));
    assert_eq!(stat(root, "/w/rel"), ("dir", 0o755, 9, 9));
    assert_eq!(stat(root, "/w/rel/a.txt"), ("file", 0o644, 9, 9));
    assert_eq!(stat(root, "/plain/deep"), ("dir", 0o755, 0, 0));
    // A directory's contents are copied: the destination is a new 0755
    // directory, its subdirectories keep their modes.
    assert_eq!(stat(root, "/copied"), ("dir", 0o755, 0, 0));
    assert_eq!(stat(root, "/copied/sub"), ("dir", 0o700, 0, 0));
}

/// COPY --parents, after the Dockerfile reference's examples: parents
/// from the context root, a `/./` pivot, globs (that may match nothing),
/// directories, .dockerignore, and --from.
#[test]
fn parents_keep_the_source_directories() {
    let e = env();
    let ctx = e.context("ctx");
    for f in [
        "x/a.txt",
        "y/a.txt",
        "x/y/a.txt",
        "x/y/b.txt",
        "x/y/c.md",
        "src/dir1/file1-1.py",
        "src/dir1/file1-2.go",
        "src/dir2/subdir2/file2-1.go",
        "src/dir2/subdir2/file2-2.js",
        "src/dir2/subdir2/file2-3.go",
        "tree/deep/f",
        "tree/ignored.log",
    ] {
        let p = ctx.join(f);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, f).unwrap();
    }
    fs::set_permissions(ctx.join("src/dir2"), fs::Permissions::from_mode(0o750)).unwrap();
    lchown(ctx.join("src/dir2"), Some(3), Some(4)).unwrap();
    fs::write(ctx.join(".dockerignore"), "tree/*.log\n").unwrap();
    let df = "FROM busybox AS other\n\
              RUN mkdir -p /opt/p/q && echo q > /opt/p/q/file\n\
              FROM busybox\n\
              COPY ./x/a.txt ./y/a.txt /no_parents/\n\
              COPY --parents ./x/a.txt ./y/a.txt /parents/\n\
              COPY --parents ./x/./y/*.txt /pivot/\n\
              COPY --parents ./src/*/*/*.go /dst2/\n\
              COPY --parents nothing-here*.txt /empty/\n\
              COPY --parents tree /t/\n\
              COPY --parents --chown=5:6 src/dir2/subdir2/file2-2.js /own\n\
              COPY --parents --from=other /opt/./p/q/file /from/\n\
              COPY --parents src/**/*.go /deep/\n\
              COPY --parents ./src/./**/file1-* /piv2/\n";
    let (r, _) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let root = m.dir.as_path();
    let files = |dir: &str| {
        let mut out = Vec::new();
        let base = root.join(dir.trim_start_matches('/'));
        let mut todo = vec![base.clone()];
        while let Some(d) = todo.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    todo.push(p);
                } else {
                    out.push(p.strip_prefix(&base).unwrap().display().to_string());
                }
            }
        }
        out.sort();
        out
    };
    assert_eq!(files("/no_parents"), ["a.txt"]);
    assert_eq!(files("/parents"), ["x/a.txt", "y/a.txt"]);
    assert_eq!(files("/pivot"), ["y/a.txt", "y/b.txt"]);
    assert_eq!(
        files("/dst2"),
        ["src/dir2/subdir2/file2-1.go", "src/dir2/subdir2/file2-3.go"]
    );
    assert!(
        !exists(root, "/empty"),
        "a glob matching nothing copies nothing"
    );
    assert_eq!(files("/t"), ["tree/deep/f"]);
    assert_eq!(files("/own"), ["src/dir2/subdir2/file2-2.js"]);
    assert_eq!(files("/from"), ["p/q/file"]);
    assert_eq!(
        files("/deep"),
        [
            "src/dir1/file1-2.go",
            "src/dir2/subdir2/file2-1.go",
            "src/dir2/subdir2/file2-3.go"
        ]
    );
    assert_eq!(files("/piv2"), ["dir1/file1-1.py", "dir1/file1-2.go"]);
    assert_eq!(fs::read(root.join("parents/y/a.txt")).unwrap(), b"y/a.txt");
    // Parent dirs are copied like the context's (mode; root unless --chown).
    assert_eq!(stat(root, "/dst2/src/dir2"), ("dir", 0o750, 0, 0));
    assert_eq!(stat(root, "/own/src/dir2"), ("dir", 0o750, 5, 6));
    assert_eq!(
        stat(root, "/own/src/dir2/subdir2/file2-2.js"),
        ("file", 0o644, 5, 6)
    );
    drop(m);
    // A plain path that is missing is an error, naming it.
    let (err, _) = e.build_err(&ctx, "FROM busybox\nCOPY --parents x/nope.txt /p/\n");
    assert!(
        err.contains("line 2:") && err.contains("x/nope.txt"),
        "{err}"
    );
}

/// Globs count by what they match: one file to a destination without a
/// slash is that file, none is no error (both as BuildKit does), several
/// go into a directory (BuildKit 20.10 instead writes each over one file;
/// the Dockerfile reference asks for a directory).
#[test]
fn globs_count_what_they_match() {
    let e = env();
    let ctx = e.context("ctx");
    for f in ["g1.txt", "g2.txt", "x.md"] {
        fs::write(ctx.join(f), f).unwrap();
    }
    let df = "FROM busybox\n\
              COPY *.md /md\n\
              COPY nothing* /none/\n\
              COPY *.txt /txt\n\
              COPY x.md nothing* /one\n";
    let (r, _) = e.build(&ctx, df, |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let root = m.dir.as_path();
    assert_eq!(fs::read(root.join("md")).unwrap(), b"x.md");
    assert!(!exists(root, "/none"));
    assert_eq!(fs::read(root.join("txt/g1.txt")).unwrap(), b"g1.txt");
    assert_eq!(fs::read(root.join("txt/g2.txt")).unwrap(), b"g2.txt");
    assert_eq!(fs::read(root.join("one")).unwrap(), b"x.md");
}

/// Everything below `dir` (relative paths), for "nothing was written here".
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
            if fs::symlink_metadata(&p).unwrap().is_dir() {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A base image's (or an earlier source's) symlinks in the destination
/// never make a COPY/ADD write outside the rootfs, which the daemon does
/// as root on the host. As in BuildKit, the destination path itself
/// follows its links *inside* the rootfs (`/app/sub -> /<host>/dir` puts
/// files at `<rootfs>/<host>/dir`), a file replaces a link in its place,
/// and a directory merged onto a link is refused ("cannot copy to
/// non-directory", what dockerd 20.10's BuildKit answers).
#[test]
fn destination_links_stay_in_the_rootfs() {
    let e = env();
    // The host directory the links name; it must stay empty.
    let victim = e.dir.path().join("victim");
    fs::create_dir_all(victim.join("dir")).unwrap();
    fs::create_dir_all(victim.join("q")).unwrap();
    let v = victim.to_str().unwrap();
    let ctx = e.context("ctx");
    let app = ctx.join("base/app");
    fs::create_dir_all(&app).unwrap();
    symlink(format!("{v}/dir"), app.join("sub")).unwrap();
    // Relative and escaping: `..` stops at the rootfs's `/`.
    symlink(format!("../../../../../../..{v}/up"), app.join("up")).unwrap();
    symlink(format!("{v}/h.txt"), app.join("EOF")).unwrap();
    symlink(format!("{v}/q"), app.join("q")).unwrap();
    symlink(format!("../../../../../..{v}/plain"), app.join("plainf")).unwrap();
    fs::create_dir_all(ctx.join("pdir/sub")).unwrap();
    fs::write(ctx.join("pdir/sub/pwned.txt"), "P\n").unwrap();
    fs::create_dir_all(ctx.join("q")).unwrap();
    fs::write(ctx.join("q/x.txt"), "X\n").unwrap();
    fs::write(ctx.join("f.txt"), "F\n").unwrap();
    // An earlier source of the same COPY brings the link.
    fs::create_dir_all(ctx.join("early")).unwrap();
    symlink(format!("{v}/dir"), ctx.join("early/sub")).unwrap();
    let tar_of = |entries: &[(&str, tar::EntryType)]| {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(*kind);
            let body: &[u8] = if *kind == tar::EntryType::Regular {
                b"T\n"
            } else {
                b""
            };
            h.set_size(body.len() as u64);
            h.set_mode(0o777);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_600_000_000);
            h.set_cksum();
            b.append_data(&mut h, name, body).unwrap();
        }
        b.into_inner().unwrap()
    };
    fs::write(
        ctx.join("in.tar"),
        tar_of(&[("t.txt", tar::EntryType::Regular)]),
    )
    .unwrap();
    // A directory entry over the base's `/app/sub` link: tar would chmod
    // (and chown) the link's target; Docker replaces the link.
    fs::write(
        ctx.join("over.tar"),
        tar_of(&[
            ("sub/", tar::EntryType::Directory),
            ("sub/in.txt", tar::EntryType::Regular),
        ]),
    )
    .unwrap();
    let base = "FROM scratch AS evil\nCOPY base/ /\nFROM evil\n";
    let (r, _) = e.build(
        &ctx,
        &format!(
            "{base}COPY f.txt /app/sub/\n\
             COPY f.txt /app/up/\n\
             COPY f.txt /app/plainf\n\
             ADD in.tar /app/sub/\n\
             COPY <<EOF /app/\nhello\nEOF\n"
        ),
        |_| {},
    );
    assert_eq!(tree(&victim), ["dir", "q"], "written on the host");
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    let inside = m.dir.join(v.trim_start_matches('/'));
    assert_eq!(fs::read(inside.join("dir/f.txt")).unwrap(), b"F\n");
    assert_eq!(fs::read(inside.join("up/f.txt")).unwrap(), b"F\n");
    assert_eq!(fs::read(inside.join("plain")).unwrap(), b"F\n");
    assert_eq!(fs::read(inside.join("dir/t.txt")).unwrap(), b"T\n");
    assert_eq!(stat(&m.dir, "/app/EOF"), ("file", 0o644, 0, 0));
    assert_eq!(fs::read(m.dir.join("app/EOF")).unwrap(), b"hello\n");
    assert_eq!(stat(&m.dir, "/app/sub").0, "link");
    drop(m);
    let (r, _) = e.build(&ctx, &format!("{base}ADD over.tar /app/\n"), |_| {});
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(stat(&m.dir, "/app/sub"), ("dir", 0o777, 0, 0));
    assert_eq!(fs::read(m.dir.join("app/sub/in.txt")).unwrap(), b"T\n");
    drop(m);
    assert_eq!(
        tree(&victim),
        ["dir", "q"],
        "ADD over.tar wrote on the host"
    );
    for step in ["COPY pdir/ /app/", "COPY --parents q/x.txt /app/"] {
        let (err, _) = e.build_err(&ctx, &format!("{base}{step}\n"));
        assert!(
            err.contains("cannot copy to non-directory"),
            "{step}: {err}"
        );
        assert_eq!(tree(&victim), ["dir", "q"], "{step} wrote on the host");
    }
    // A file where a directory must be (merged into, or made below) is
    // an error too, never replaced (BuildKit: "not a directory").
    for step in [
        "COPY pdir/ /x/",
        "COPY f.txt /x/y",
        // Berth makes the WORKDIR at the next step that needs it.
        "WORKDIR /x/y\nCOPY f.txt z",
        "COPY pdir/ /",
    ] {
        let df = format!("FROM scratch\nCOPY f.txt /x\nCOPY f.txt /sub\n{step}\n");
        let (err, _) = e.build_err(&ctx, &df);
        assert!(err.contains("is not a directory"), "{step}: {err}");
    }
    let (err, _) = e.build_err(&ctx, "FROM scratch\nCOPY early/ pdir/ /app2/\n");
    assert!(err.contains("cannot copy to non-directory"), "{err}");
    assert_eq!(tree(&victim), ["dir", "q"]);
    assert_eq!(
        fs::metadata(victim.join("dir")).unwrap().mode() & 0o777,
        0o755
    );
}

/// The cache key is made from the context as it was hashed, and the copy
/// reads the files again: a file replaced in between (an in-place context
/// being edited) must not leave key(old) → layer(new) in the cache. Builds
/// with --no-cache copy (and store an entry) while a file keeps flipping
/// between two contents; a cached build of each content afterwards must
/// give exactly that content.
#[test]
fn a_context_changing_during_the_copy_is_not_cached_wrongly() {
    let e = env();
    let ctx = e.context("ctx");
    let size = 2 << 20;
    let (a, b) = (vec![b'A'; size], vec![b'B'; size]);
    let put = |p: &Path, data: &[u8], tmp: &str| {
        let t = p.with_file_name(tmp);
        fs::write(&t, data).unwrap();
        fs::rename(&t, p).unwrap();
    };
    let f = ctx.join("f");
    put(&f, &a, ".t");
    let df = "FROM scratch\nCOPY f /f\n";
    let content = |r: &berth_builder::build::BuildResult| {
        let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
        let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
        fs::read(m.dir.join("f")).unwrap()
    };
    for round in 0..4 {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flipper = {
            let (f, a, b, stop) = (f.clone(), a.clone(), b.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut flip = false;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let t = f.with_file_name(".flip");
                    fs::write(&t, if flip { &a } else { &b }).unwrap();
                    fs::rename(&t, &f).unwrap();
                    flip = !flip;
                }
            })
        };
        e.build(&ctx, df, |o| o.no_cache = true);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        flipper.join().unwrap();
        for (name, data) in [("A", &a), ("B", &b)] {
            put(&f, data, ".t");
            let (r, _) = e.build(&ctx, df, |_| {});
            assert!(
                content(&r) == *data,
                "round {round}: the cached layer for {name} holds other content"
            );
        }
    }
}

/// A build's layers are leased before they are stored (and a cache hit's
/// before it is used): a collect running all the time (a prune, another
/// build's teardown) never deletes one under the build.
#[test]
fn layers_survive_a_concurrent_collect() {
    let e = env();
    let ctx = e.context("ctx");
    let mut df = String::from("FROM scratch\n");
    for i in 0..6 {
        fs::write(ctx.join(format!("f{i}")), format!("{i}\n")).unwrap();
        df.push_str(&format!("COPY f{i} /f{i}\n"));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (store, stop) = (e.store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                store.collect(None).unwrap();
                n += 1;
            }
            n
        })
    };
    let mut o = berth_builder::build::BuildOptions::new(&ctx);
    o.dockerfile = berth_builder::build::DockerfileSource::Text(df.clone());
    let results: Vec<_> = (0..3)
        .map(|i| {
            o.no_cache = i == 0;
            let sink: berth_builder::build::Sink =
                std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            berth_builder::build::build(&e.store, &o, sink).map(|r| r.image_id)
        })
        .collect();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = collector.join().unwrap();
    assert!(rounds > 3, "the collector ran {rounds} times");
    for r in results {
        let id = r.unwrap_or_else(|e| panic!("build failed under a collect: {e}"));
        let rec = e.store.resolve(&id.to_string()).unwrap();
        for l in &rec.layers {
            assert!(
                e.store.layers.exists(&l.chain_id),
                "layer {} gone",
                l.chain_id
            );
            assert!(e.store.content.exists(&l.blob), "blob {} gone", l.blob);
        }
    }
}

/// A .dockerignore exception below an excluded directory brings that file
/// (and its directories), as Docker's context does; an exception that
/// matches nothing below brings no empty directory (both checked against
/// dockerd 20.10's BuildKit).
#[test]
fn dockerignore_exceptions_reach_into_excluded_directories() {
    let e = env();
    let ctx = e.context("ctx");
    fs::create_dir_all(ctx.join("secret/deep")).unwrap();
    fs::create_dir_all(ctx.join("other")).unwrap();
    fs::create_dir_all(ctx.join("d/secret")).unwrap();
    fs::write(ctx.join("secret/keep"), "K\n").unwrap();
    fs::write(ctx.join("secret/drop"), "D\n").unwrap();
    fs::write(ctx.join("secret/deep/x"), "X\n").unwrap();
    fs::write(ctx.join("other/a.md"), "M\n").unwrap();
    fs::write(ctx.join("d/secret/n"), "N\n").unwrap();
    fs::write(
        ctx.join(".dockerignore"),
        "secret\n!secret/keep\nother\n!*.md\n",
    )
    .unwrap();
    let (r, _) = e.build(
        &ctx,
        "FROM scratch\nCOPY . /c/\nCOPY secret /s/\nCOPY sec* /g/\n",
        |_| {},
    );
    let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
    let m = Mounted::new(&e.store, &rec, e.dir.path().join("mnt"));
    assert_eq!(fs::read(m.dir.join("c/secret/keep")).unwrap(), b"K\n");
    assert_eq!(fs::read(m.dir.join("c/d/secret/n")).unwrap(), b"N\n");
    assert_eq!(fs::read(m.dir.join("s/keep")).unwrap(), b"K\n");
    assert_eq!(fs::read(m.dir.join("g/keep")).unwrap(), b"K\n");
    for gone in [
        "c/secret/drop",
        "c/secret/deep",
        "c/other",
        "s/drop",
        "g/drop",
    ] {
        assert!(!exists(&m.dir, gone), "{gone} was copied");
    }
}

/// Files under `dir` (not following links) whose bytes are `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                todo.push(p);
            } else if m.is_file() && fs::read(&p).is_ok_and(|b| b == needle) {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// An in-place context can change while COPY reads it: a directory
/// swapped for a link to a host directory (and back, atomically, all the
/// time) is read through the fd the walk opened, so the host's files never
/// reach a layer.
#[test]
fn a_source_swapped_for_a_link_mid_copy_is_not_followed() {
    let e = env();
    let host = e.dir.path().join("host");
    fs::create_dir_all(&host).unwrap();
    let ctx = e.context("ctx");
    fs::create_dir_all(ctx.join("tree/d")).unwrap();
    for i in 0..3 {
        fs::write(host.join(format!("f{i}")), "HOST-SECRET").unwrap();
        fs::write(ctx.join(format!("tree/d/f{i}")), "ok").unwrap();
    }
    // Outside the copied tree, on the same filesystem: the other side of
    // each swap.
    symlink(&host, ctx.join("swap")).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flipper = {
        let (d, swap, stop) = (ctx.join("tree/d"), ctx.join("swap"), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                nix::fcntl::renameat2(
                    nix::fcntl::AT_FDCWD,
                    &d,
                    nix::fcntl::AT_FDCWD,
                    &swap,
                    nix::fcntl::RenameFlags::RENAME_EXCHANGE,
                )
                .unwrap();
                std::thread::sleep(std::time::Duration::from_micros(300));
            }
        })
    };
    let mut o = berth_builder::build::BuildOptions::new(&ctx);
    o.dockerfile =
        berth_builder::build::DockerfileSource::Text("FROM scratch\nCOPY tree/ /t/\n".into());
    o.no_cache = true;
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(2000);
    let mut built = 0;
    while std::time::Instant::now() < deadline {
        let sink: berth_builder::build::Sink =
            std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        // Errors (a name vanishing mid-copy) are fine; leaks are not.
        let r = match berth_builder::build::build(&e.store, &o, sink) {
            Ok(r) => r,
            Err(err) => {
                eprintln!("DBG {err}");
                continue;
            }
        };
        built += 1;
        let rec = e.store.resolve(&r.image_id.to_string()).unwrap();
        for l in &rec.layers {
            eprintln!(
                "DBG layer {}",
                files_holding(&e.store.layers.diff_dir(&l.chain_id), b"ok").len()
            );
            let leaked = files_holding(&e.store.layers.diff_dir(&l.chain_id), b"HOST-SECRET");
            if !leaked.is_empty() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("host files copied into a layer: {} of them", leaked.len());
            }
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    flipper.join().unwrap();
    assert!(built > 3, "only {built} builds succeeded");
}
