//! Leases: references that keep layers and blobs alive while something uses
//! them outside the image records (a mounted rootfs, a bundle, a container, a
//! pull in progress). Garbage collection deletes only what no image record and
//! no live lease references — containerd's reference-based GC, on files.
//!
//! One JSON file per lease in `<root>/leases/`, written by temp + fsync +
//! rename. Creating a lease and collecting garbage both hold `<root>/gc.lock`
//! exclusively, so a collector never deletes a layer that a lease taken after
//! its scan has just checked for.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::content::sync_dir;
use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LeaseKind {
    /// A read-only image mount; released by unmounting it through Berth.
    Mount,
    /// A bundle's writable rootfs overlay.
    Bundle,
    /// A container's rootfs (the engine's).
    Container,
    /// A pull, load or import in progress: dies with its process.
    Process,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Lease {
    pub id: String,
    pub kind: LeaseKind,
    /// The mount point or bundle dir this lease stands for.
    #[serde(default)]
    pub target: Option<PathBuf>,
    /// For `Process` leases: the holder, whose death ends the lease.
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub image: Option<Digest>,
    #[serde(default)]
    pub chain_ids: Vec<Digest>,
    #[serde(default)]
    pub blobs: Vec<Digest>,
    pub created: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Is `pid` a running process (or one we may not signal, which still exists)?
pub(crate) fn pid_alive(pid: u32) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence.
    let r = unsafe { libc::kill(pid as i32, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Lease {
    /// A lease for a mount point or bundle dir, named after its canonical path
    /// so unmounting finds it again.
    pub fn for_path(kind: LeaseKind, target: &Path, image: &Digest, chains: &[Digest]) -> Lease {
        let canon = target
            .canonicalize()
            .unwrap_or_else(|_| target.to_path_buf());
        Lease {
            id: path_lease_id(&canon),
            kind,
            target: Some(canon),
            pid: None,
            image: Some(image.clone()),
            chain_ids: chains.to_vec(),
            blobs: Vec::new(),
            created: now(),
        }
    }

    /// A lease held by this process until it is dropped (or the process dies).
    pub fn for_process(what: &str) -> Lease {
        let pid = std::process::id();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Lease {
            id: format!("{what}-{pid}-{nanos:x}"),
            kind: LeaseKind::Process,
            target: None,
            pid: Some(pid),
            image: None,
            chain_ids: Vec::new(),
            blobs: Vec::new(),
            created: now(),
        }
    }

    /// Process leases end with their process; the others need an explicit release.
    pub fn is_live(&self) -> bool {
        match (&self.kind, self.pid) {
            (LeaseKind::Process, Some(pid)) => pid_alive(pid),
            (LeaseKind::Process, None) => false,
            _ => true,
        }
    }
}

/// Whether `p` was last written before this boot. Only durable leases
/// (a container's) are fsynced; the others are written without, because
/// what they stand for (a process, a mount, a `--rm` container) cannot
/// outlive a reboot. A power cut can leave such a file empty or torn; it
/// then protects nothing, and must not stop every later GC. A torn file of
/// this boot cannot come from a power cut (the page cache is intact), so
/// that one still counts as corruption.
pub fn written_before_boot(p: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(boot) = boot_time() else {
        return false;
    };
    fs::metadata(p).is_ok_and(|m| m.mtime() < boot)
}

/// The kernel's boot time in Unix seconds (`btime` in /proc/stat).
fn boot_time() -> Option<i64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

pub fn path_lease_id(canonical: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let d = Digest::sha256_of(canonical.as_os_str().as_bytes());
    format!("path-{}", &d.hex()[..24])
}

/// The lease directory plus the GC lock.
#[derive(Clone, Debug)]
pub struct Leases {
    dir: PathBuf,
    lock_path: PathBuf,
}

/// Holds `gc.lock` exclusively until dropped.
pub struct GcLock(#[allow(dead_code)] File);

impl Leases {
    pub fn open(root: &Path) -> Result<Leases> {
        let dir = root.join("leases");
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        Ok(Leases {
            dir,
            lock_path: root.join("gc.lock"),
        })
    }

    pub fn lock(&self) -> Result<GcLock> {
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .ctx("open", &self.lock_path)?;
        // SAFETY: flock on an fd we own; released when the file closes.
        if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx("flock", &self.lock_path);
        }
        Ok(GcLock(f))
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Writes (or replaces) a lease. Takes the GC lock: once this returns, no
    /// collector that has not yet seen the lease is deleting anything.
    pub fn put(&self, lease: &Lease) -> Result<()> {
        let _g = self.lock()?;
        self.put_locked(lease)
    }

    /// [`Leases::put`] for a lease whose holder does not outlive a reboot
    /// either (a `--rm` container's): never fsynced, like process and mount
    /// leases — two fsyncs cost 4–10 ms of a `run --rm` on a busy disk.
    pub fn put_volatile(&self, lease: &Lease) -> Result<()> {
        let _g = self.lock()?;
        self.write(lease, false)
    }

    pub(crate) fn put_locked(&self, lease: &Lease) -> Result<()> {
        // Only a container's lease must outlive a power cut: processes and
        // mounts do not survive a reboot, so neither need their leases. Saves
        // a few fsyncs on every pull's critical path.
        self.write(lease, lease.kind == LeaseKind::Container)
    }

    fn write(&self, lease: &Lease, durable: bool) -> Result<()> {
        let p = self.path(&lease.id);
        let tmp = self.dir.join(format!(".{}.tmp", lease.id));
        {
            let mut f = File::create(&tmp).ctx("create", &tmp)?;
            f.write_all(&serde_json::to_vec_pretty(lease).expect("lease serialises"))
                .ctx("write", &tmp)?;
            if durable {
                f.sync_all().ctx("fsync", &tmp)?;
            }
        }
        fs::rename(&tmp, &p).ctx("rename", &p)?;
        if durable {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    pub fn remove(&self, id: &str) -> Result<bool> {
        let p = self.path(id);
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).ctx("remove", p),
        }
    }

    pub fn get(&self, id: &str) -> Result<Option<Lease>> {
        let p = self.path(id);
        match fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| Error::Json {
                    what: p.display().to_string(),
                    source: e,
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).ctx("read", p),
        }
    }

    /// Every lease on disk. Unreadable files are returned as errors by
    /// `system check`, not here: a torn lease must not make GC skip its refs,
    /// so it counts as unparsable and GC refuses to run (see `live`).
    pub fn list(&self) -> Result<Vec<std::result::Result<Lease, PathBuf>>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("read dir", &self.dir)? {
            let p = e.ctx("read dir", &self.dir)?.path();
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let bytes = match fs::read(&p) {
                Ok(b) => b,
                // Released since the listing (a guard removes its lease
                // without the GC lock): gone, not torn.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(_) => {
                    out.push(Err(p));
                    continue;
                }
            };
            match serde_json::from_slice::<Lease>(&bytes) {
                Ok(l) => out.push(Ok(l)),
                Err(_) => out.push(Err(p)),
            }
        }
        Ok(out)
    }

    /// Live leases; fails if any lease file of this boot is unreadable (GC
    /// must not guess). One written before the last boot is dead whatever it
    /// said (see [`written_before_boot`]).
    pub fn live(&self) -> Result<Vec<Lease>> {
        let mut out = Vec::new();
        for l in self.list()? {
            match l {
                Ok(l) if l.is_live() => out.push(l),
                Ok(_) => {}
                Err(p) if written_before_boot(&p) => {}
                Err(p) => {
                    return Err(Error::Hostile {
                        path: p.display().to_string(),
                        reason: "unreadable lease file; run `berth system check --repair`".into(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Removes process leases whose process is gone, and temp files of
    /// interrupted lease writes.
    pub fn clean_dead(&self) -> Result<usize> {
        let mut n = 0;
        for l in self.list()? {
            match l {
                Ok(l) if !l.is_live() && self.remove(&l.id)? => n += 1,
                Ok(_) => {}
                Err(p) if written_before_boot(&p) => {
                    fs::remove_file(&p).ctx("remove", &p)?;
                    n += 1;
                }
                Err(_) => {}
            }
        }
        Ok(n)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Removes its process lease when dropped (a killed process leaves the file,
/// which is dead by pid and ignored/cleaned later).
pub struct LeaseGuard {
    leases: Leases,
    id: String,
}

impl LeaseGuard {
    pub fn new(leases: Leases, id: String) -> Self {
        LeaseGuard { leases, id }
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        let _ = self.leases.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A torn lease file from before the last boot (a power cut during an
    /// unsynced write) is ignored and collected; a torn one written in this
    /// boot still stops GC, because that is corruption, not a power cut.
    #[test]
    fn torn_lease_from_a_previous_boot_is_dead() {
        let t = tempfile::tempdir().unwrap();
        let ls = Leases::open(t.path()).unwrap();
        let torn = ls.dir().join("pull-1-abc.json");
        fs::write(&torn, b"").unwrap();
        assert!(ls.live().is_err(), "a torn lease of this boot must stop GC");
        let before_boot = boot_time().unwrap() - 3600;
        let c = std::ffi::CString::new(torn.as_os_str().as_encoded_bytes()).unwrap();
        let times = [
            libc::timespec {
                tv_sec: before_boot,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: before_boot,
                tv_nsec: 0,
            },
        ];
        // SAFETY: utimensat on a NUL-terminated path with two timespecs.
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) },
            0
        );
        assert!(written_before_boot(&torn));
        assert_eq!(ls.live().unwrap(), vec![]);
        assert_eq!(ls.clean_dead().unwrap(), 1);
        assert!(!torn.exists());
    }

    #[test]
    fn process_and_path_leases() {
        let t = tempfile::tempdir().unwrap();
        let ls = Leases::open(t.path()).unwrap();
        let d = Digest::sha256_of(b"x");
        let mut l = Lease::for_process("pull");
        l.chain_ids.push(d.clone());
        ls.put(&l).unwrap();
        assert_eq!(ls.live().unwrap(), vec![l.clone()]);
        // A lease whose process is gone no longer counts.
        let mut dead = Lease::for_process("pull");
        dead.id = "dead".into();
        dead.pid = Some(i32::MAX as u32 - 1);
        ls.put(&dead).unwrap();
        assert_eq!(ls.live().unwrap().len(), 1);
        assert_eq!(ls.clean_dead().unwrap(), 1);
        let p = Lease::for_path(LeaseKind::Mount, t.path(), &d, std::slice::from_ref(&d));
        ls.put(&p).unwrap();
        assert_eq!(
            p.id,
            path_lease_id(&t.path().canonicalize().unwrap()),
            "found again by path"
        );
        assert_eq!(ls.live().unwrap().len(), 2);
        fs::write(ls.dir().join("torn.json"), b"{").unwrap();
        assert!(ls.live().is_err(), "GC must refuse to guess");
    }

    /// A lease released while a collector lists them (a build's guard
    /// drops it without the GC lock) is gone, not torn: GC goes on.
    #[test]
    fn a_lease_released_during_a_listing_is_not_torn() {
        let t = tempfile::tempdir().unwrap();
        let ls = Leases::open(t.path()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (ls, stop) = (Leases::open(t.path()).unwrap(), stop.clone());
            std::thread::spawn(move || {
                let l = Lease::for_process("build");
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    ls.put(&l).unwrap();
                    ls.remove(&l.id).unwrap();
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(300);
        while std::time::Instant::now() < deadline {
            if let Err(e) = ls.live() {
                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                panic!("{e}");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
    }
}
