//! The container's filesystem view, built inside its new mount namespace:
//! config mounts, device nodes, pivot_root, masked and read-only paths.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, symlink};
use std::path::{Path, PathBuf};

use berth_cgroups::Hierarchy;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::{Mode, SFlag, makedev, mknod, umask};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};

use crate::error::{IoContext, Result, RuntimeError};
use crate::mount_options::{MountOptions, parse_propagation};
use crate::secure_path::secure_join;
use crate::sys;

/// Everything the rootfs setup needs besides the spec.
pub struct RootfsPlan<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// The container has its own user namespace: device nodes are bind mounts.
    pub in_user_ns: bool,
    /// The container has its own cgroup namespace.
    pub own_cgroup_ns: bool,
    pub cgroup_hierarchies: &'a [Hierarchy],
    pub no_pivot: bool,
    /// The container has its own mount namespace. Without one (runc allows
    /// it) every mount lands in the caller's namespace under the rootfs, so
    /// nothing may touch `/`'s propagation and the root is entered by chroot.
    pub own_mount_ns: bool,
    /// A detached (idmapped) copy of the rootfs to attach instead of a bind.
    pub rootfs_tree: Option<&'a std::os::fd::OwnedFd>,
}

const DEFAULT_DEVICES: &[(&str, u64, u64)] = &[
    ("/dev/null", 1, 3),
    ("/dev/zero", 1, 5),
    ("/dev/full", 1, 7),
    ("/dev/random", 1, 8),
    ("/dev/urandom", 1, 9),
    ("/dev/tty", 5, 0),
];

fn nix_ctx<T>(r: nix::Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    r.ctx(what)
}

/// Step 1, before any config mount: make the host's mounts invisible to
/// propagation and turn the rootfs into a mount point of its own.
pub fn prepare_root(plan: &RootfsPlan) -> Result<()> {
    if !plan.own_mount_ns {
        // A bind of the rootfs onto itself still gives `delete` one mount to
        // detach (with everything under it) and root.readonly a mount of its own.
        return nix_ctx(
            mount(
                Some(plan.rootfs),
                plan.rootfs,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            ),
            || format!("bind rootfs {}", plan.rootfs.display()),
        );
    }
    let linux = plan.spec.linux().as_ref();
    let propagation = match linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        Some(p) => parse_propagation(p).map_err(RuntimeError::InvalidArgument)?,
        None => MsFlags::MS_SLAVE | MsFlags::MS_REC,
    };
    nix_ctx(
        mount(None::<&str>, "/", None::<&str>, propagation, None::<&str>),
        || "set propagation of /".into(),
    )?;
    // pivot_root refuses a shared parent mount; the rootfs parent may be shared
    // when rootfsPropagation asked for it.
    if let Some(parent) = mount_point_of(plan.rootfs) {
        let _ = mount(
            None::<&str>,
            &parent,
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        );
    }
    if let Some(tree) = plan.rootfs_tree {
        return crate::idmap::attach(tree, plan.rootfs)
            .ctx(|| format!("attach idmapped rootfs {}", plan.rootfs.display()));
    }
    nix_ctx(
        mount(
            Some(plan.rootfs),
            plan.rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
        || format!("bind rootfs {}", plan.rootfs.display()),
    )
}

/// Step 2: the config's mounts (or a slice of them), in order.
pub fn mount_range(plan: &RootfsPlan, mounts: &[Mount]) -> Result<()> {
    for m in mounts {
        mount_entry(plan, m).map_err(|e| match e {
            RuntimeError::Io { context, source } => RuntimeError::Io {
                context: format!("mount {}: {context}", m.destination().display()),
                source,
            },
            other => other,
        })?;
    }
    Ok(())
}

fn mount_entry(plan: &RootfsPlan, m: &Mount) -> Result<()> {
    let opts = MountOptions::parse(m.options().as_deref().unwrap_or_default()).map_err(|e| {
        RuntimeError::InvalidArgument(format!("mount {}: {e}", m.destination().display()))
    })?;
    let typ = m.typ().as_deref().unwrap_or("");
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroups(plan, m, &opts);
    }
    let dest = secure_join(plan.rootfs, m.destination()).ctx(|| "resolve destination".into())?;
    if opts.bind || typ == "bind" {
        let src = bind_source(plan, m)?;
        let src_meta = fs::metadata(&src).ctx(|| format!("stat bind source {}", src.display()))?;
        create_mount_target(&dest, src_meta.is_dir())?;
        let rec = opts.flags & MsFlags::MS_REC;
        nix_ctx(
            mount(
                Some(&src),
                &dest,
                None::<&str>,
                MsFlags::MS_BIND | rec,
                None::<&str>,
            ),
            || format!("bind {}", src.display()),
        )?;
        let extra = opts.remount_flags();
        if !extra.is_empty() {
            remount_bind(&dest, extra)?;
        }
    } else {
        create_mount_target(&dest, true)?;
        let source = m
            .source()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| typ.to_string());
        let data = opts.data_string();
        let res = mount(
            Some(source.as_str()),
            &dest,
            Some(typ),
            opts.flags,
            data.as_deref(),
        );
        match res {
            Ok(()) => {}
            // Without its own network (or user) namespace the kernel refuses a new
            // sysfs/mqueue instance: show the host's, as runc does.
            Err(nix::errno::Errno::EPERM) if typ == "sysfs" || typ == "mqueue" => {
                let host = if typ == "sysfs" {
                    "/sys"
                } else {
                    "/dev/mqueue"
                };
                nix_ctx(
                    mount(
                        Some(host),
                        &dest,
                        None::<&str>,
                        MsFlags::MS_BIND | MsFlags::MS_REC,
                        None::<&str>,
                    ),
                    || format!("bind {host} (fallback)"),
                )?;
                let extra = opts.remount_flags();
                if !extra.is_empty() {
                    remount_bind(&dest, extra)?;
                }
            }
            Err(e) => {
                return Err(RuntimeError::io(
                    format!(
                        "mount {typ} {source} (options {:?})",
                        data.unwrap_or_default()
                    ),
                    e.into(),
                ));
            }
        }
    }
    for p in &opts.propagation {
        nix_ctx(
            mount(None::<&str>, &dest, None::<&str>, *p, None::<&str>),
            || "set propagation".into(),
        )?;
    }
    Ok(())
}

fn bind_source(plan: &RootfsPlan, m: &Mount) -> Result<PathBuf> {
    let src = m.source().as_ref().ok_or_else(|| {
        RuntimeError::InvalidArgument(format!(
            "mount {}: a bind mount needs a source",
            m.destination().display()
        ))
    })?;
    Ok(if src.is_absolute() {
        src.clone()
    } else {
        plan.bundle.join(src)
    })
}

/// Re-applies flags a bind mount ignored at first (ro, nosuid...). The kernel
/// refuses to clear flags it locked on the source mount, so on EPERM the
/// source's own flags are kept as well.
fn remount_bind(dest: &Path, extra: MsFlags) -> Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, dest, None::<&str>, base | extra, None::<&str>) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(dest)?;
            nix_ctx(
                mount(
                    None::<&str>,
                    dest,
                    None::<&str>,
                    base | extra | locked,
                    None::<&str>,
                ),
                || format!("remount {} with {extra:?}", dest.display()),
            )
        }
        Err(e) => Err(RuntimeError::io(
            format!("remount {} with {extra:?}", dest.display()),
            e.into(),
        )),
    }
}

fn locked_flags(path: &Path) -> Result<MsFlags> {
    let st = nix::sys::statvfs::statvfs(path).ctx(|| format!("statvfs {}", path.display()))?;
    use nix::sys::statvfs::FsFlags;
    let f = st.flags();
    let mut out = MsFlags::empty();
    for (fs_flag, ms) in [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ] {
        if f.contains(fs_flag) {
            out |= ms;
        }
    }
    Ok(out)
}

/// Creates the directory or empty file a mount goes onto.
fn create_mount_target(dest: &Path, dir: bool) -> Result<()> {
    if dir {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.is_dir() => Ok(()),
            Ok(_) => Err(RuntimeError::InvalidArgument(format!(
                "mount target {} exists and is not a directory",
                dest.display()
            ))),
            Err(_) => fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dest)
                .ctx(|| format!("mkdir {}", dest.display())),
        }
    } else {
        if let Some(parent) = dest.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .ctx(|| format!("mkdir {}", parent.display()))?;
        }
        if fs::symlink_metadata(dest).is_err() {
            fs::File::create(dest).ctx(|| format!("create {}", dest.display()))?;
        }
        Ok(())
    }
}

/// `cgroup` mounts: a tmpfs with one directory per v1 hierarchy, or the
/// cgroup2 tree. With a cgroup namespace the kernel roots each mount at the
/// container's cgroup; without one, the container's cgroup directories are
/// bind-mounted, so the host's tree stays invisible either way.
fn mount_cgroups(plan: &RootfsPlan, m: &Mount, opts: &MountOptions) -> Result<()> {
    let dest = secure_join(plan.rootfs, m.destination()).ctx(|| "resolve destination".into())?;
    create_mount_target(&dest, true)?;
    let flags = (opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC)
        & !(MsFlags::MS_BIND | MsFlags::MS_REC);
    let hierarchies = plan.cgroup_hierarchies;
    let pure_v2 = hierarchies.len() == 1 && hierarchies[0].unified;
    if pure_v2 {
        return mount_one_hierarchy(plan, &hierarchies[0], &dest, flags);
    }
    nix_ctx(
        mount(
            Some("tmpfs"),
            &dest,
            Some("tmpfs"),
            flags & !MsFlags::MS_RDONLY,
            Some("mode=755"),
        ),
        || "mount tmpfs for cgroups".into(),
    )?;
    for h in hierarchies {
        let name = if h.unified {
            "unified".to_string()
        } else {
            h.options.trim_start_matches("name=").to_string()
        };
        let target = dest.join(&name);
        create_mount_target(&target, true)?;
        mount_one_hierarchy(plan, h, &target, flags)?;
        // Combined hierarchies (cpu,cpuacct) get a link per controller, as on hosts.
        if name.contains(',') {
            for part in name.split(',') {
                let _ = symlink(&name, dest.join(part));
            }
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        remount_bind(&dest, MsFlags::MS_RDONLY)?;
        // tmpfs is not a bind mount; a plain remount keeps the other flags.
        let _ = mount(
            None::<&str>,
            &dest,
            None::<&str>,
            MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        );
    }
    Ok(())
}

fn mount_one_hierarchy(
    plan: &RootfsPlan,
    h: &Hierarchy,
    target: &Path,
    flags: MsFlags,
) -> Result<()> {
    if plan.own_cgroup_ns {
        let (fstype, data) = if h.unified {
            ("cgroup2", None)
        } else {
            ("cgroup", Some(h.options.as_str()))
        };
        if mount(Some(fstype), target, Some(fstype), flags, data).is_ok() {
            return Ok(());
        }
    }
    nix_ctx(
        mount(
            Some(&h.dir),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        ),
        || format!("bind cgroup {}", h.dir.display()),
    )?;
    remount_bind(target, flags & !MsFlags::MS_REMOUNT)
}

/// Step 3: device nodes and the standard /dev links, unless /dev is the host's.
pub fn setup_dev(plan: &RootfsPlan) -> Result<()> {
    let dev_is_bind = plan
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|m| {
            m.destination() == Path::new("/dev")
                && m.options()
                    .as_deref()
                    .unwrap_or_default()
                    .iter()
                    .any(|o| o == "bind" || o == "rbind")
        });
    if dev_is_bind {
        return Ok(());
    }
    let old_umask = umask(Mode::empty());
    let res = create_devices(plan);
    umask(old_umask);
    res?;
    let dev = secure_join(plan.rootfs, Path::new("/dev")).ctx(|| "resolve /dev".into())?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if Path::new("/proc/kcore").exists() {
        links.push(("/proc/kcore", "core"));
    }
    for (target, name) in links {
        let link = dev.join(name);
        match symlink(target, &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(RuntimeError::io(format!("symlink {}", link.display()), e)),
        }
    }
    // /dev/ptmx must be the container's devpts instance.
    let ptmx = dev.join("ptmx");
    if dev.join("pts/ptmx").exists() {
        let _ = fs::remove_file(&ptmx);
        symlink("pts/ptmx", &ptmx).ctx(|| format!("symlink {}", ptmx.display()))?;
    }
    Ok(())
}

fn create_devices(plan: &RootfsPlan) -> Result<()> {
    let configured: &[LinuxDevice] = plan
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default();
    for (path, major, minor) in DEFAULT_DEVICES {
        if configured.iter().any(|d| d.path() == Path::new(path)) {
            continue;
        }
        create_device(
            plan,
            Path::new(path),
            SFlag::S_IFCHR,
            *major,
            *minor,
            0o666,
            0,
            0,
        )?;
    }
    for d in configured {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => SFlag::S_IFCHR,
            LinuxDeviceType::B => SFlag::S_IFBLK,
            LinuxDeviceType::P => SFlag::S_IFIFO,
            LinuxDeviceType::A => {
                return Err(RuntimeError::InvalidArgument(format!(
                    "linux.devices {}: type \"a\" is only valid in cgroup rules",
                    d.path().display()
                )));
            }
        };
        let (major, minor) = (d.major().max(0) as u64, d.minor().max(0) as u64);
        let mode = d.file_mode().unwrap_or(0o666) & 0o7777;
        create_device(
            plan,
            d.path(),
            kind,
            major,
            minor,
            mode,
            d.uid().unwrap_or(0),
            d.gid().unwrap_or(0),
        )?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn create_device(
    plan: &RootfsPlan,
    path: &Path,
    kind: SFlag,
    major: u64,
    minor: u64,
    mode: u32,
    uid: u32,
    gid: u32,
) -> Result<()> {
    let dest = secure_join(plan.rootfs, path).ctx(|| format!("resolve {}", path.display()))?;
    if let Some(parent) = dest.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .ctx(|| format!("mkdir {}", parent.display()))?;
    }
    if plan.in_user_ns {
        // mknod is not allowed in a user namespace: bind the host's node.
        create_mount_target(&dest, false)?;
        return nix_ctx(
            mount(
                Some(path),
                &dest,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            ),
            || format!("bind device {}", path.display()),
        );
    }
    match fs::symlink_metadata(&dest) {
        Ok(m) if m.file_type().is_char_device() || m.file_type().is_block_device() => {
            fs::remove_file(&dest).ctx(|| format!("replace {}", dest.display()))?;
        }
        Ok(m) if m.is_file() || m.file_type().is_symlink() || m.file_type().is_fifo() => {
            fs::remove_file(&dest).ctx(|| format!("replace {}", dest.display()))?;
        }
        _ => {}
    }
    nix_ctx(
        mknod(
            &dest,
            kind,
            Mode::from_bits_truncate(mode),
            makedev(major, minor),
        ),
        || format!("mknod {}", path.display()),
    )?;
    nix_ctx(
        nix::unistd::chown(
            &dest,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
        ),
        || format!("chown {}", path.display()),
    )
}

/// Step 4: make the rootfs `/` and drop the host's tree.
pub fn enter_root(plan: &RootfsPlan) -> Result<()> {
    if !plan.own_mount_ns {
        nix::unistd::chroot(plan.rootfs).ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    if plan.no_pivot {
        nix::unistd::chdir(plan.rootfs).ctx(|| "chdir rootfs".into())?;
        nix_ctx(
            mount(
                Some(plan.rootfs),
                "/",
                None::<&str>,
                MsFlags::MS_MOVE,
                None::<&str>,
            ),
            || "move rootfs to /".into(),
        )?;
        nix::unistd::chroot(".").ctx(|| "chroot".into())?;
        return nix::unistd::chdir("/").ctx(|| "chdir /".into());
    }
    // pivot_root(".", ".") stacks the old root on top of the new one; unmounting
    // "." afterwards drops it without needing a directory inside the rootfs.
    let old_root = fs::File::open("/").ctx(|| "open /".into())?;
    let new_root = fs::File::open(plan.rootfs).ctx(|| "open rootfs".into())?;
    nix::unistd::fchdir(&new_root).ctx(|| "fchdir rootfs".into())?;
    sys::pivot_root(Path::new("."), Path::new(".")).ctx(|| "pivot_root".into())?;
    nix::unistd::fchdir(&old_root).ctx(|| "fchdir old root".into())?;
    // Keep the detach from propagating back to the host.
    nix_ctx(
        mount(
            None::<&str>,
            ".",
            None::<&str>,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None::<&str>,
        ),
        || "make old root slave".into(),
    )?;
    nix_ctx(umount2(".", MntFlags::MNT_DETACH), || {
        "unmount old root".into()
    })?;
    nix::unistd::chdir("/").ctx(|| "chdir /".into())
}

/// Step 5, inside the new root: masked and read-only paths, read-only root,
/// and the final propagation of `/`.
pub fn finish(plan: &RootfsPlan) -> Result<()> {
    let Some(linux) = plan.spec.linux().as_ref() else {
        return remount_root_readonly(plan);
    };
    for p in linux.readonly_paths().as_deref().unwrap_or_default() {
        readonly_path(Path::new(p))?;
    }
    for p in linux.masked_paths().as_deref().unwrap_or_default() {
        mask_path(Path::new(p))?;
    }
    remount_root_readonly(plan)?;
    if !plan.own_mount_ns {
        return Ok(());
    }
    if let Some(p) = linux.rootfs_propagation().as_deref() {
        let flags = parse_propagation(p).map_err(RuntimeError::InvalidArgument)?;
        nix_ctx(
            mount(None::<&str>, "/", None::<&str>, flags, None::<&str>),
            || "set rootfs propagation".into(),
        )?;
    }
    Ok(())
}

fn remount_root_readonly(plan: &RootfsPlan) -> Result<()> {
    let readonly = plan
        .spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false);
    if readonly {
        remount_bind(Path::new("/"), MsFlags::MS_RDONLY)?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<()> {
    match mount(
        Some(p),
        p,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    ) {
        Ok(()) => remount_bind(p, MsFlags::MS_RDONLY | MsFlags::MS_REC),
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(RuntimeError::io(
            format!("readonly path {}", p.display()),
            e.into(),
        )),
    }
}

fn mask_path(p: &Path) -> Result<()> {
    let meta = match fs::metadata(p) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let res = if meta.is_dir() {
        mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0"),
        )
    } else {
        mount(
            Some("/dev/null"),
            p,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
    };
    match res {
        Ok(()) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(RuntimeError::io(format!("mask {}", p.display()), e.into())),
    }
}

/// Detaches a rootfs mounted in the caller's namespace (containers without
/// their own mount namespace) together with every mount beneath it.
pub fn detach_rootfs(rootfs: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mounted = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| Path::new(&unescape_mountinfo(mp)) == rootfs);
    if mounted {
        let _ = umount2(rootfs, MntFlags::MNT_DETACH);
    }
}

/// The mount point holding `path`, from /proc/self/mountinfo.
fn mount_point_of(path: &Path) -> Option<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").ok()?;
    longest_mount_prefix(&info, path)
}

fn longest_mount_prefix(mountinfo: &str, path: &Path) -> Option<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_mount_point_of_a_path() {
        let info = "22 1 0:21 / / rw shared:1 - ext4 /dev/vda rw\n\
                    30 22 0:25 / /var/lib rw shared:2 - ext4 /dev/vdb rw\n\
                    31 22 0:26 / /var/lib\\040x rw - tmpfs tmpfs rw\n";
        assert_eq!(
            longest_mount_prefix(info, Path::new("/var/lib/berth/rootfs")),
            Some(PathBuf::from("/var/lib"))
        );
        assert_eq!(
            longest_mount_prefix(info, Path::new("/var/lib x/r")),
            Some(PathBuf::from("/var/lib x"))
        );
        assert_eq!(
            longest_mount_prefix(info, Path::new("/srv")),
            Some(PathBuf::from("/"))
        );
    }
}
