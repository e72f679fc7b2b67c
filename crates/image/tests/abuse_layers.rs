//! Abuse suite (issue #13): hostile layers the adversarial review tried and
//! the unpacker withstood, kept so they stay withstood. The basic escapes
//! (`../`, absolute names, write through a symlink, hard links out) are in
//! src/unpack_tests.rs; these are the ones routed through whiteouts,
//! directory entries, PAX and GNU long names, and hard links inside the layer.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use berth_image::Error;
use berth_image::unpack::unpack;
use tar::{EntryType, Header};

/// A header with a raw name and link name (the tar Builder would refuse `..`).
fn raw(b: &mut tar::Builder<Vec<u8>>, name: &[u8], kind: EntryType, link: &[u8], data: &[u8]) {
    let mut h = Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(0o755);
    h.set_mtime(1_600_000_000);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A PAX extended header (`x`) carrying `records` for the next entry.
fn pax(b: &mut tar::Builder<Vec<u8>>, records: &[(&str, &[u8])]) {
    let mut data = Vec::new();
    for (k, v) in records {
        let body_len = 1 + k.len() + 1 + v.len() + 1;
        // The length counts its own digits.
        let mut len = body_len + 1;
        while (len.to_string().len() + body_len) != len {
            len += 1;
        }
        data.extend_from_slice(format!("{len} {k}=").as_bytes());
        data.extend_from_slice(v);
        data.push(b'\n');
    }
    raw(b, b"././@PaxHeader", EntryType::XHeader, b"", &data);
}

/// A GNU long-name header (`L`) naming the next entry.
fn gnu_long_name(b: &mut tar::Builder<Vec<u8>>, name: &[u8]) {
    let mut data = name.to_vec();
    data.push(0);
    raw(b, b"././@LongLink", EntryType::GNULongName, b"", &data);
}

fn tarball(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

/// `<tmp>/layer` to unpack into, `<tmp>/outside/victim` that must survive
/// unchanged, with no new names beside it.
struct Sandbox {
    _tmp: tempfile::TempDir,
    layer: PathBuf,
    outside: PathBuf,
}

impl Sandbox {
    fn new() -> Sandbox {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        fs::create_dir(&layer).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("victim"), b"precious").unwrap();
        Sandbox {
            _tmp: tmp,
            layer,
            outside,
        }
    }

    fn outside_link(&self) -> Vec<u8> {
        self.outside.as_os_str().as_encoded_bytes().to_vec()
    }

    fn assert_outside_untouched(&self, what: &str) {
        let names: Vec<_> = fs::read_dir(&self.outside)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["victim"], "{what}: names appeared outside");
        let victim = self.outside.join("victim");
        assert_eq!(fs::read(&victim).unwrap(), b"precious", "{what}");
        assert_eq!(fs::metadata(&victim).unwrap().nlink(), 1, "{what}");
        let top: Vec<_> = fs::read_dir(self.layer.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(top.len(), 2, "{what}: {top:?}");
        // No opaque marker set on the outside directory through a link.
        assert!(
            xattr(&self.outside, "trusted.overlay.opaque").is_none(),
            "{what}: outside dir marked opaque"
        );
    }
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = [0u8; 64];
    // SAFETY: valid C strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (r >= 0).then(|| buf[..r as usize].to_vec())
}

fn assert_hostile(r: berth_image::Result<berth_image::unpack::UnpackStats>, what: &str) {
    match r {
        Err(Error::Hostile { .. }) => {}
        other => panic!("{what}: expected a hostile-layer error, got {other:?}"),
    }
}

#[test]
fn abuse_whiteouts_and_opaque_markers_through_a_symlink() {
    // A layer is root's work; a whiteout or an opaque marker routed through a
    // symlink would delete or hide host files.
    for (what, entries) in [
        ("whiteout", vec![(&b"s/.wh.victim"[..], EntryType::Regular)]),
        ("opaque", vec![(&b"s/.wh..wh..opq"[..], EntryType::Regular)]),
        ("directory", vec![(&b"s/newdir/"[..], EntryType::Directory)]),
        (
            "file-in-new-dir",
            vec![(&b"s/newdir/f"[..], EntryType::Regular)],
        ),
        ("fifo", vec![(&b"s/fifo"[..], EntryType::Fifo)]),
    ] {
        let sb = Sandbox::new();
        let link = sb.outside_link();
        let tar = tarball(|b| {
            raw(b, b"s", EntryType::Symlink, &link, b"");
            for (name, kind) in &entries {
                raw(b, name, *kind, b"", b"");
            }
        });
        assert_hostile(unpack(&tar[..], &sb.layer), what);
        sb.assert_outside_untouched(what);
    }
}

#[test]
fn abuse_pax_and_gnu_long_names_cannot_escape() {
    let long_up = format!("{}/../../../outside/x", "d".repeat(120));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "pax-path-dotdot",
            tarball(|b| {
                pax(b, &[("path", b"../outside/x")]);
                raw(b, b"innocent", EntryType::Regular, b"", b"p");
            }),
        ),
        (
            "pax-path-absolute",
            tarball(|b| {
                pax(b, &[("path", b"/etc/berth-abuse-pax")]);
                raw(b, b"innocent", EntryType::Regular, b"", b"p");
            }),
        ),
        (
            "pax-linkpath-up",
            tarball(|b| {
                pax(b, &[("linkpath", b"../outside/victim")]);
                raw(b, b"h", EntryType::Link, b"innocent", b"");
            }),
        ),
        (
            "gnu-long-name-up",
            tarball(|b| {
                gnu_long_name(b, long_up.as_bytes());
                raw(b, b"innocent", EntryType::Regular, b"", b"p");
            }),
        ),
    ];
    for (what, tar) in cases {
        let sb = Sandbox::new();
        assert_hostile(unpack(&tar[..], &sb.layer), what);
        sb.assert_outside_untouched(what);
        assert!(!Path::new("/etc/berth-abuse-pax").exists(), "{what}");
    }
}

#[test]
fn abuse_a_later_entry_replaces_a_hard_link_instead_of_writing_through_it() {
    // `h` is a hard link to `f`; a later regular entry `h` must get a new
    // inode (as tar does), not rewrite `f` through the shared one.
    let sb = Sandbox::new();
    let tar = tarball(|b| {
        raw(b, b"f", EntryType::Regular, b"", b"original");
        raw(b, b"h", EntryType::Link, b"f", b"");
        raw(b, b"h", EntryType::Regular, b"", b"replaced");
    });
    unpack(&tar[..], &sb.layer).unwrap();
    assert_eq!(fs::read(sb.layer.join("f")).unwrap(), b"original");
    assert_eq!(fs::read(sb.layer.join("h")).unwrap(), b"replaced");
    assert_eq!(fs::metadata(sb.layer.join("f")).unwrap().nlink(), 1);
    sb.assert_outside_untouched("replace");
}

#[test]
fn abuse_a_symlink_replaced_by_a_directory_is_not_followed() {
    // `s` first links outside, then a directory entry `s` and a file in it:
    // the link is replaced by a real directory inside the layer.
    let sb = Sandbox::new();
    let link = sb.outside_link();
    let tar = tarball(|b| {
        raw(b, b"s", EntryType::Symlink, &link, b"");
        raw(b, b"s/", EntryType::Directory, b"", b"");
        raw(b, b"s/victim", EntryType::Regular, b"", b"overwritten?");
    });
    unpack(&tar[..], &sb.layer).unwrap();
    let s = fs::symlink_metadata(sb.layer.join("s")).unwrap();
    assert!(s.is_dir(), "the link became a directory");
    assert_eq!(
        fs::read(sb.layer.join("s/victim")).unwrap(),
        b"overwritten?"
    );
    sb.assert_outside_untouched("symlink-then-dir");
}
