use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::*;

/// A tar entry with a raw name, bypassing the Builder's own path checks so we
/// can craft hostile archives.
fn raw_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name.as_bytes());
        gnu.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_device_major(0).unwrap();
    h.set_device_minor(0).unwrap();
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tarball(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

/// A sandbox: `target/` to unpack into and `outside/` that must stay empty.
fn sandbox() -> (tempfile::TempDir, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("a/b/target");
    fs::create_dir_all(&target).unwrap();
    fs::create_dir_all(t.path().join("a/b/outside")).unwrap();
    (t, target)
}

fn assert_nothing_outside(t: &Path) {
    assert_eq!(fs::read_dir(t.join("a/b/outside")).unwrap().count(), 0);
    let names: Vec<_> = fs::read_dir(t.join("a/b"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    for p in ["x", "a/x", "etc", "a/etc", "a/b/x"] {
        assert!(!t.join(p).exists(), "{p} written outside");
    }
}

#[test]
fn hostile_entries_are_refused() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dotdot",
            tarball(|b| raw_entry(b, "../x", EntryType::Regular, "", b"pwned")),
        ),
        (
            "dotdot-deep",
            tarball(|b| raw_entry(b, "ok/../../outside/x", EntryType::Regular, "", b"p")),
        ),
        (
            "absolute",
            tarball(|b| raw_entry(b, "/etc/berth-pwned-abs", EntryType::Regular, "", b"p")),
        ),
        (
            "symlink-root",
            tarball(|b| {
                raw_entry(b, "a", EntryType::Symlink, "/", b"");
                raw_entry(b, "a/etc/berth-pwned-sym", EntryType::Regular, "", b"p");
            }),
        ),
        (
            "symlink-up",
            tarball(|b| {
                raw_entry(b, "s", EntryType::Symlink, "../outside", b"");
                raw_entry(b, "s/x", EntryType::Regular, "", b"p");
            }),
        ),
        (
            "symlink-dir-chain",
            tarball(|b| {
                raw_entry(b, "d", EntryType::Directory, "", b"");
                raw_entry(b, "d/up", EntryType::Symlink, "../..", b"");
                raw_entry(b, "d/up/outside/x", EntryType::Regular, "", b"p");
            }),
        ),
        (
            "hardlink-up",
            tarball(|b| raw_entry(b, "h", EntryType::Link, "../../etc/shadow", b"")),
        ),
        (
            "hardlink-abs",
            tarball(|b| raw_entry(b, "h", EntryType::Link, "/etc/shadow", b"")),
        ),
        (
            "hardlink-through-symlink",
            tarball(|b| {
                raw_entry(b, "l", EntryType::Symlink, "/etc", b"");
                raw_entry(b, "h", EntryType::Link, "l/shadow", b"");
            }),
        ),
        (
            "whiteout-up",
            tarball(|b| raw_entry(b, "../.wh.outside", EntryType::Regular, "", b"")),
        ),
    ];
    for (what, tar) in cases {
        let (t, target) = sandbox();
        let err = unpack(&tar[..], &target).expect_err(what);
        assert!(matches!(err, Error::Hostile { .. }), "{what}: {err}");
        assert_nothing_outside(t.path());
        assert!(!Path::new("/etc/berth-pwned-abs").exists());
        assert!(!Path::new("/etc/berth-pwned-sym").exists());
    }
}

#[test]
fn symlinks_inside_the_layer_are_fine() {
    let (t, target) = sandbox();
    let tar = tarball(|b| {
        raw_entry(b, "usr/bin/", EntryType::Directory, "", b"");
        raw_entry(b, "bin", EntryType::Symlink, "usr/bin", b"");
        raw_entry(b, "bin/tool", EntryType::Regular, "", b"ok");
        raw_entry(b, "abs", EntryType::Symlink, "/etc/passwd", b"");
    });
    unpack(&tar[..], &target).unwrap();
    assert_eq!(fs::read(target.join("usr/bin/tool")).unwrap(), b"ok");
    assert_eq!(
        fs::read_link(target.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_nothing_outside(t.path());
}

#[test]
fn metadata_links_devices_whiteouts() {
    let (_t, target) = sandbox();
    let tar = tarball(|b| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Directory);
        h.set_mode(0o1777);
        h.set_uid(12);
        h.set_gid(34);
        h.set_mtime(1_500_000_000);
        h.set_size(0);
        b.append_data(&mut h, "tmp/", &[][..]).unwrap();

        let mut h = tar::Header::new_gnu();
        h.set_mode(0o4755);
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mtime(1_400_000_000);
        h.set_size(5);
        b.append_pax_extensions([("SCHILY.xattr.user.berth", &b"v1"[..])])
            .unwrap();
        b.append_data(&mut h, "tmp/file", &b"hello"[..]).unwrap();

        raw_entry(b, "tmp/hard", EntryType::Link, "tmp/file", b"");
        raw_entry(b, "dev/null", EntryType::Char, "", b"");
        raw_entry(b, "fifo", EntryType::Fifo, "", b"");
        raw_entry(b, "data/.wh.doomed", EntryType::Regular, "", b"");
        raw_entry(b, "olddir/.wh..wh..opq", EntryType::Regular, "", b"");
        raw_entry(b, "olddir/new", EntryType::Regular, "", b"n");
        // Later entries win, as in tar.
        raw_entry(b, "dup", EntryType::Regular, "", b"first");
        raw_entry(b, "dup", EntryType::Regular, "", b"second");
    });
    let stats = unpack(&tar[..], &target).unwrap();
    assert!(stats.entries >= 9);
    let m = fs::metadata(target.join("tmp")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.gid(), m.mtime()),
        (0o1777, 12, 34, 1_500_000_000)
    );
    let m = fs::metadata(target.join("tmp/file")).unwrap();
    assert_eq!(
        (m.mode() & 0o7777, m.uid(), m.mtime(), m.nlink()),
        (0o4755, 1000, 1_400_000_000, 2)
    );
    let mut v = [0u8; 8];
    let n = unsafe {
        let p = CString::new(target.join("tmp/file").as_os_str().as_bytes()).unwrap();
        libc::getxattr(
            p.as_ptr(),
            c"user.berth".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    // user xattrs need fs support (tmpfs lacks them on old kernels); check when present.
    if n >= 0 {
        assert_eq!(&v[..n as usize], b"v1");
    }
    assert!(
        fs::symlink_metadata(target.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let wh = fs::symlink_metadata(target.join("data/doomed")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    let p = CString::new(target.join("olddir").as_os_str().as_bytes()).unwrap();
    let n = unsafe {
        libc::getxattr(
            p.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    assert_eq!(&v[..n as usize], b"y");
    assert_eq!(fs::read(target.join("olddir/new")).unwrap(), b"n");
    assert_eq!(fs::read(target.join("dup")).unwrap(), b"second");
}

#[test]
fn copy_options_owner_plain_whiteout_names_and_dir_kinds() {
    let (_t, target) = sandbox();
    fs::create_dir(target.join("d")).unwrap();
    fs::write(target.join("f"), "old").unwrap();
    let tar = tarball(|b| {
        raw_entry(b, "new", EntryType::Regular, "", b"hi");
        raw_entry(b, ".wh.keep", EntryType::Regular, "", b"");
        raw_entry(b, "f", EntryType::Regular, "", b"new");
    });
    let opts = UnpackOptions {
        owner: Some((1234, 5678)),
        whiteouts: false,
        no_overwrite_dir_non_dir: true,
        ..Default::default()
    };
    unpack_with(&tar[..], &target, opts.clone()).unwrap();
    let m = fs::metadata(target.join("new")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1234, 5678));
    // A plain file named like a whiteout, and the existing file replaced.
    assert!(fs::metadata(target.join(".wh.keep")).unwrap().is_file());
    assert_eq!(fs::read_to_string(target.join("f")).unwrap(), "new");
    for (name, kind) in [("d", EntryType::Regular), ("f", EntryType::Directory)] {
        let tar = tarball(|b| raw_entry(b, name, kind, "", b""));
        let e = unpack_with(&tar[..], &target, opts.clone()).unwrap_err();
        assert!(e.to_string().contains("cannot overwrite"), "{e}");
    }
    assert!(target.join("d").is_dir() && target.join("f").is_file());
}

/// GNU tar leaves a FIFO's device fields blank (NULs); a char device with
/// blank fields is 0,0; garbage there is still an error.
#[test]
fn blank_device_numbers_are_zero() {
    let entry = |name: &str, kind: EntryType, dev: &[u8; 8]| {
        tarball(|b| {
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_entry_type(kind);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(1_600_000_000);
            let g = h.as_gnu_mut().unwrap();
            g.dev_major = *dev;
            g.dev_minor = *dev;
            h.set_cksum();
            b.append(&h, &[][..]).unwrap();
        })
    };
    let (_t, target) = sandbox();
    unpack(&entry("p", EntryType::Fifo, &[0; 8])[..], &target).unwrap();
    assert!(
        fs::symlink_metadata(target.join("p"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    unpack(&entry("c", EntryType::Char, b"       \0")[..], &target).unwrap();
    let m = fs::symlink_metadata(target.join("c")).unwrap();
    assert!(m.file_type().is_char_device());
    assert_eq!(m.rdev(), 0);
    assert!(unpack(&entry("x", EntryType::Fifo, b"zz\0\0\0\0\0\0")[..], &target).is_err());
}

/// A GNU sparse entry of apparent size `real` whose only data is `tail`
/// (512 bytes) at its very end: a few blocks of tar, any size on disk.
fn sparse_entry(b: &mut tar::Builder<Vec<u8>>, name: &str, real: u64, tail: &[u8; 512]) {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    h.set_size(512);
    let gnu = h.as_gnu_mut().unwrap();
    gnu.set_real_size(real);
    gnu.sparse[0].set_offset(real - 512);
    gnu.sparse[0].set_length(512);
    h.set_cksum();
    b.append(&h, &tail[..]).unwrap();
}

#[test]
fn abuse_sparse_bomb_is_refused_by_name_before_any_work() {
    let (_t, target) = sandbox();
    let tar = tarball(|b| {
        raw_entry(b, "ok", EntryType::Regular, "", b"fine");
        sparse_entry(b, "var/log/bomb", 1 << 40, &[7; 512]);
    });
    assert!(tar.len() < 10_000, "the bomb is {} bytes of tar", tar.len());
    let t0 = std::time::Instant::now();
    let e = unpack(&tar[..], &target).unwrap_err();
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        t0.elapsed()
    );
    match &e {
        Error::TooLarge { path, total, limit } => {
            assert_eq!(path, "var/log/bomb");
            assert_eq!((*total, *limit), (4 + (1 << 40), DEFAULT_MAX_SIZE));
        }
        e => panic!("not TooLarge: {e}"),
    }
    assert!(e.to_string().contains("var/log/bomb"), "{e}");
    assert!(!target.join("var/log/bomb").exists());
}

#[test]
fn abuse_sparse_file_within_the_limit_is_written_as_holes() {
    let (_t, target) = sandbox();
    let real: u64 = 64 << 20;
    let tar = tarball(|b| sparse_entry(b, "lastlog", real, &[9; 512]));
    let t0 = std::time::Instant::now();
    let stats = unpack(&tar[..], &target).unwrap();
    let took = t0.elapsed();
    let m = fs::metadata(target.join("lastlog")).unwrap();
    assert_eq!((m.len(), stats.bytes), (real, real));
    // Holes, not zeros on disk: at most a few blocks allocated.
    assert!(
        m.blocks() * 512 < (1 << 20),
        "{} blocks allocated",
        m.blocks()
    );
    let mut f = fs::File::open(target.join("lastlog")).unwrap();
    let mut tail = [0u8; 512];
    f.seek(SeekFrom::Start(real - 512)).unwrap();
    f.read_exact(&mut tail).unwrap();
    assert_eq!(tail, [9; 512]);
    eprintln!("64 MiB sparse file unpacked in {took:?}");
}

#[test]
fn abuse_layer_limit_counts_the_sum_of_entries() {
    let (_t, target) = sandbox();
    let tar = tarball(|b| {
        raw_entry(b, "a", EntryType::Regular, "", &[1; 600]);
        raw_entry(b, "b", EntryType::Regular, "", &[2; 600]);
    });
    let opts = UnpackOptions {
        max_size: 1000,
        ..Default::default()
    };
    let e = unpack_with(&tar[..], &target, opts).unwrap_err();
    assert!(
        matches!(&e, Error::TooLarge { path, total: 1200, limit: 1000 } if path == "b"),
        "{e}"
    );
    assert!(target.join("a").is_file() && !target.join("b").exists());
}

#[test]
fn abuse_cancel_stops_an_unpack_mid_file() {
    let (_t, target) = sandbox();
    // 200 GiB of holes would take the better part of a minute to expand.
    let tar = tarball(|b| sparse_entry(b, "big", 200 << 30, &[1; 512]));
    let cancel = Cancel::new();
    let c = cancel.clone();
    let t0 = std::time::Instant::now();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        c.cancel();
    });
    let opts = UnpackOptions {
        cancel: Some(cancel),
        ..Default::default()
    };
    let e = unpack_with(&tar[..], &target, opts).unwrap_err();
    stopper.join().unwrap();
    assert!(matches!(e, Error::Cancelled), "{e}");
    assert!(
        t0.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        t0.elapsed()
    );
}
