//! Content digests of context files for the cache key, remembered per file
//! by what any change to it alters: device and inode, size, and mtime and
//! ctime to the nanosecond (ctime cannot be set back by anyone). A rebuild
//! of an unchanged context then costs a stat per file instead of reading
//! and hashing all of it (32 MB of sha256 per build in bench/build).
//!
//! As git's index does, a file whose ctime is within [`RACY_SECS`] of the
//! hash is not remembered: a write in the same clock tick as the read
//! would leave every stamp as it was.

use std::collections::HashMap;
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{LazyLock, Mutex};

use berth_image::Digest;
use berth_image::digest::{Algorithm, Hasher};

use crate::error::{IoContext, Result};

/// Files remembered at most; past that the table starts over (a daemon
/// building many large contexts must not grow without bound).
const MAX_ENTRIES: usize = 1 << 19;
/// How old a file's last change must be (seconds) for its digest to be kept.
const RACY_SECS: i64 = 2;

/// What any change to a file alters (the inode aside).
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Stamp {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    pub(super) fn of(m: &Metadata) -> Stamp {
        Stamp {
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }
}

/// (device, inode) → the stamp the digest was taken at, and the digest.
type Table = HashMap<(u64, u64), (Stamp, Digest)>;

static KNOWN: LazyLock<Mutex<Table>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The sha256 of the regular file at `path` (whose lstat is `m`).
pub fn digest(path: &Path, m: &Metadata) -> Result<Digest> {
    let id = (m.dev(), m.ino());
    let stamp = Stamp::of(m);
    if let Some((s, d)) = KNOWN.lock().expect("file hash table").get(&id)
        && *s == stamp
    {
        return Ok(d.clone());
    }
    let mut f = File::open(path).ctx("open", path)?;
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).ctx("read", path)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let d = h.finish();
    // Remembered only if the file is the one stat'ed, unchanged while read,
    // and not changed just now.
    let after = f.metadata().ctx("stat", path)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.as_secs() as i64);
    if (after.dev(), after.ino()) == id
        && Stamp::of(&after) == stamp
        && stamp.ctime.0 < now - RACY_SECS
    {
        let mut known = KNOWN.lock().expect("file hash table");
        if known.len() >= MAX_ENTRIES {
            known.clear();
        }
        known.insert(id, (stamp, d.clone()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn known(p: &Path) -> bool {
        let m = fs::metadata(p).unwrap();
        KNOWN
            .lock()
            .unwrap()
            .get(&(m.dev(), m.ino()))
            .is_some_and(|(s, _)| *s == Stamp::of(&m))
    }

    fn set_times(p: &Path, t: &nix::sys::time::TimeSpec) {
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            p,
            t,
            t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )
        .unwrap();
    }

    #[test]
    fn remembered_until_the_file_changes() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        fs::write(&p, "one").unwrap();
        let m = fs::metadata(&p).unwrap();
        // Just written: hashed but not remembered (racy).
        assert_eq!(digest(&p, &m).unwrap(), Digest::sha256_of(b"one"));
        assert!(!known(&p));
        // An old change is remembered...
        let old = nix::sys::time::TimeSpec::new(1_000_000, 0);
        set_times(&p, &old);
        // (ctime is now; only a file untouched for RACY_SECS is kept)
        std::thread::sleep(std::time::Duration::from_millis(
            (RACY_SECS as u64 + 1) * 1000,
        ));
        let m = fs::metadata(&p).unwrap();
        assert_eq!(digest(&p, &m).unwrap(), Digest::sha256_of(b"one"));
        assert!(known(&p));
        // ...and a write with the same size and mtime is still seen: ctime moved.
        fs::write(&p, "two").unwrap();
        set_times(&p, &old);
        let m = fs::metadata(&p).unwrap();
        assert_eq!(digest(&p, &m).unwrap(), Digest::sha256_of(b"two"));
    }
}
