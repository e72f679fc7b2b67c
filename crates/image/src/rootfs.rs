//! Root filesystems from unpacked layers: an overlay of the layer dirs, and an
//! OCI runtime bundle (rootfs + config.json from the image config).

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use oci_spec::runtime::{ProcessBuilder, RootBuilder, Spec, UserBuilder};

use crate::error::{Error, IoContext, Result};
use crate::formats::ImageConfig;
use crate::lease::{Lease, LeaseKind, path_lease_id};
use crate::store::{ImageRecord, ImageStore};

/// Overlay's mount data is limited to one page; past this we switch to short
/// relative names (as docker's `l/` links do).
const MAX_MOUNT_DATA: usize = 4000;

/// Mounts the overlay of `lowers` (lowest first) at `target`. With `upper`
/// (upper, work) the mount is writable; without it, read-only.
pub fn mount_overlay(
    layers_root: &Path,
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
) -> Result<()> {
    mount_overlay_with(layers_root, lowers, upper, target, "")
}

/// A writable overlay whose upper dir is thrown away with it (a `--rm`
/// container's): mounted `volatile`, so neither the container's syncs nor
/// the unmount flush the upper filesystem — on a busy disk that flush took
/// ~20 ms of every `run --rm`. Such an overlay cannot be mounted again
/// after a crash (overlayfs refuses the leftover `work/incompat/volatile`),
/// which is fine for a directory nobody mounts twice. Kernels before 5.10
/// lack the option: then it is an ordinary overlay.
pub fn mount_overlay_volatile(
    layers_root: &Path,
    lowers: &[PathBuf],
    upper: (&Path, &Path),
    target: &Path,
) -> Result<()> {
    match mount_overlay_with(layers_root, lowers, Some(upper), target, ",volatile") {
        Err(Error::Io { source, .. }) if source.raw_os_error() == Some(libc::EINVAL) => {
            mount_overlay(layers_root, lowers, Some(upper), target)
        }
        r => r,
    }
}

/// `extra` is appended to the mount data of a writable overlay.
fn mount_overlay_with(
    layers_root: &Path,
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
    target: &Path,
    extra: &str,
) -> Result<()> {
    let ioerr = |op, e: nix::errno::Errno| Error::Io {
        op,
        path: target.to_path_buf(),
        source: e.into(),
    };
    if lowers.is_empty() {
        return Err(Error::NotFound("image has no layers".into()));
    }
    // A read-only single layer: overlay wants two lowers, a bind mount does it.
    if upper.is_none() && lowers.len() == 1 {
        mount(
            Some(&lowers[0]),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| ioerr("bind mount", e))?;
        return mount(
            None::<&str>,
            target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
            None::<&str>,
        )
        .map_err(|e| ioerr("remount ro", e));
    }
    let top_first: Vec<&PathBuf> = lowers.iter().rev().collect();
    let join = |v: Vec<String>| v.join(":");
    let mut data = format!(
        "lowerdir={}",
        join(top_first.iter().map(|p| p.display().to_string()).collect())
    );
    if let Some((u, w)) = upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}{extra}",
            u.display(),
            w.display()
        ));
    }
    if data.len() <= MAX_MOUNT_DATA {
        return mount(
            Some("overlay"),
            target,
            Some("overlay"),
            MsFlags::empty(),
            Some(data.as_str()),
        )
        .map_err(|e| ioerr("mount overlay", e));
    }
    // Too long: short symlinks `l/<n>` → layer diff, mounted relative to
    // layers_root from a child that chdirs there (cwd is process-wide).
    let links = layers_root.join("l");
    fs::create_dir_all(&links).ctx("create", &links)?;
    let mut short = Vec::new();
    for (i, p) in top_first.iter().enumerate() {
        let name = format!("{:x}{:x}", std::process::id(), i);
        let l = links.join(&name);
        let _ = fs::remove_file(&l);
        symlink(p, &l).ctx("symlink", &l)?;
        short.push(format!("l/{name}"));
    }
    let mut data = format!("lowerdir={}", join(short.clone()));
    if let Some((u, w)) = upper {
        data.push_str(&format!(
            ",upperdir={},workdir={}{extra}",
            u.display(),
            w.display()
        ));
    }
    let result = mount_in_dir(layers_root, target, &data);
    for s in short {
        let _ = fs::remove_file(layers_root.join(s));
    }
    result.map_err(|e| ioerr("mount overlay", e))
}

fn mount_in_dir(dir: &Path, target: &Path, data: &str) -> nix::Result<()> {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, chdir, fork};
    let target = target
        .canonicalize()
        .map_err(|_| nix::errno::Errno::ENOENT)?;
    // SAFETY: the child only makes raw syscalls (chdir, mount) and _exits.
    match unsafe { fork() }? {
        ForkResult::Child => {
            let ok = chdir(dir).is_ok()
                && mount(
                    Some("overlay"),
                    &target,
                    Some("overlay"),
                    MsFlags::empty(),
                    Some(data),
                )
                .is_ok();
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => match waitpid(child, None)? {
            WaitStatus::Exited(_, 0) => Ok(()),
            _ => Err(nix::errno::Errno::EINVAL),
        },
    }
}

pub fn unmount(target: &Path) -> Result<()> {
    umount2(target, MntFlags::MNT_DETACH).map_err(|e| Error::Io {
        op: "umount",
        path: target.to_path_buf(),
        source: e.into(),
    })
}

/// Mounts an image read-only at `target`, under a lease that keeps its
/// layers until [`unmount_image`].
pub fn mount_image(store: &ImageStore, rec: &ImageRecord, target: &Path) -> Result<()> {
    let lease = lease_for(LeaseKind::Mount, target, rec);
    store.leases.put(&lease)?;
    let res = store
        .layer_dirs(rec)
        .and_then(|lowers| mount_overlay(store.layers.root(), &lowers, None, target));
    if res.is_err() {
        let _ = store.leases.remove(&lease.id);
    }
    res
}

fn lease_for(kind: LeaseKind, target: &Path, rec: &ImageRecord) -> Lease {
    let chains: Vec<_> = rec.layers.iter().map(|l| l.chain_id.clone()).collect();
    let mut l = Lease::for_path(kind, target, &rec.id, &chains);
    l.blobs = rec.blobs().cloned().collect();
    l
}

/// Unmounts an image mount or a bundle's rootfs (`dir` holding config.json)
/// and releases its lease.
pub fn unmount_image(store: &ImageStore, dir: &Path) -> Result<()> {
    // A bundle is leased by its directory: accept the bundle dir or its rootfs.
    let bundle_of_rootfs = dir
        .parent()
        .filter(|p| dir.file_name() == Some("rootfs".as_ref()) && p.join("config.json").is_file());
    let (target, lease_dir) = if dir.join("config.json").is_file() {
        (dir.join("rootfs"), dir)
    } else if let Some(bundle) = bundle_of_rootfs {
        (dir.to_path_buf(), bundle)
    } else {
        (dir.to_path_buf(), dir)
    };
    let canon = lease_dir.canonicalize().ctx("resolve", lease_dir)?;
    unmount(&target)?;
    let id = path_lease_id(&canon);
    if let Some(lease) = store.leases.get(&id)? {
        store.leases.remove(&id)?;
        // What only this lease kept (an image removed while mounted) goes now.
        store.collect(Some((&lease.blobs, &lease.chain_ids)))?;
    }
    Ok(())
}

/// Makes an OCI bundle in `dir`: `rootfs/` (writable overlay, upper and work
/// dirs beside it in `dir`) and `config.json` from the image config. The
/// bundle holds a lease on the image's layers until [`unmount_image`].
pub fn make_bundle(store: &ImageStore, rec: &ImageRecord, dir: &Path) -> Result<()> {
    let rootfs = dir.join("rootfs");
    let upper = dir.join("upper");
    let work = dir.join("work");
    for d in [&rootfs, &upper, &work] {
        fs::create_dir_all(d).ctx("create", d)?;
    }
    let lease = lease_for(LeaseKind::Bundle, dir, rec);
    store.leases.put(&lease)?;
    let res = (|| {
        let lowers = store.layer_dirs(rec)?;
        mount_overlay(store.layers.root(), &lowers, Some((&upper, &work)), &rootfs)?;
        let config = crate::formats::parse_config(&store.content.read(&rec.id)?)?;
        let spec = bundle_spec(&config, &rootfs)?;
        let p = dir.join("config.json");
        let json = serde_json::to_vec_pretty(&spec).expect("spec serialises");
        fs::write(&p, json).ctx("write", &p)
    })();
    if res.is_err() {
        let _ = unmount(&rootfs);
        let _ = store.leases.remove(&lease.id);
    }
    res
}

/// The runtime spec for an image: runc's default spec with the image's
/// command, environment, working dir and user.
pub fn bundle_spec(config: &ImageConfig, rootfs: &Path) -> Result<Spec> {
    let c = config.config.clone().unwrap_or_default();
    let mut args: Vec<String> = c.entrypoint.clone().unwrap_or_default();
    args.extend(c.cmd.clone().unwrap_or_default());
    if args.is_empty() {
        args.push("sh".into());
    }
    let mut env = c.env.clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    let (uid, gid) = resolve_user(c.user.as_deref().unwrap_or(""), rootfs)?;
    let user = UserBuilder::default()
        .uid(uid)
        .gid(gid)
        .build()
        .map_err(|e| Error::InvalidReference(e.to_string(), "user"))?;
    let cwd = c
        .working_dir
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into());
    let mut spec = Spec::default();
    let base = spec.process().clone().unwrap_or_default();
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(args)
        .env(env)
        .cwd(cwd)
        .capabilities(base.capabilities().clone().unwrap_or_default())
        .rlimits(base.rlimits().clone().unwrap_or_default())
        .no_new_privileges(true)
        .build()
        .map_err(|e| Error::InvalidReference(e.to_string(), "process"))?;
    spec.set_process(Some(process));
    spec.set_hostname(Some("berth".into()));
    spec.set_root(Some(
        RootBuilder::default()
            .path("rootfs")
            .readonly(false)
            .build()
            .map_err(|e| Error::InvalidReference(e.to_string(), "root"))?,
    ));
    Ok(spec)
}

/// Resolves an image `User` (`name`, `uid`, `uid:gid`, `name:group`) against
/// the rootfs' /etc/passwd and /etc/group.
pub fn resolve_user(user: &str, rootfs: &Path) -> Result<(u32, u32)> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = read_etc(rootfs, "passwd")?.unwrap_or_default();
    let lookup = |text: &str, name: &str| -> Option<(u32, u32)> {
        text.lines().find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| {
                (
                    f[2].parse().unwrap_or(0),
                    f.get(3).and_then(|x| x.parse().ok()).unwrap_or(0),
                )
            })
        })
    };
    let bad = || Error::InvalidReference(user.to_string(), "unknown user in image");
    let (uid, mut gid) = match u.parse::<u32>() {
        Ok(n) => (n, lookup_by_uid(&passwd, n).unwrap_or(n)),
        Err(_) => lookup(&passwd, u).ok_or_else(bad)?,
    };
    if let Some(g) = g {
        gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => {
                let group = read_etc(rootfs, "group")?.unwrap_or_default();
                lookup(&group, g).map(|(gid, _)| gid).ok_or_else(bad)?
            }
        };
    }
    Ok((uid, gid))
}

/// The most an image's /etc/passwd or /etc/group may hold: real ones are
/// a few KiB; the cap keeps a hostile image from exhausting the daemon.
pub const ETC_FILE_MAX: u64 = 1 << 20;

/// The image's `/etc/<name>` (passwd, group), read inside `rootfs` (its
/// symlinks resolve in the image, never on the host), None when missing.
/// Anything but a regular file of at most [`ETC_FILE_MAX`] bytes — a link
/// to /dev/zero, a FIFO — is an error naming the file.
pub fn read_etc(rootfs: &Path, name: &str) -> Result<Option<String>> {
    let rel = Path::new("etc").join(name);
    match crate::fswalk::read_file_in_root(rootfs, &rel, ETC_FILE_MAX) {
        Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            op: "read the image's",
            path: Path::new("/").join(rel),
            source,
        }),
    }
}

fn lookup_by_uid(text: &str, uid: u32) -> Option<u32> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && f[2].parse() == Ok(uid)).then(|| f[3].parse().ok())?
    })
}
