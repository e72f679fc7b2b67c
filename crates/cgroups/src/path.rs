//! Where a cgroup lives: the OCI `cgroupsPath` rules and the parsers for
//! `/proc/self/mountinfo` and `/proc/self/cgroup`. Parsers take `&str` so they
//! are tested without a host.

use std::path::{Component, Path, PathBuf};

use crate::{CgroupError, Result};

/// A `cgroupsPath` after the OCI rules, before it meets a hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupPath {
    /// Relative to each hierarchy's root (always starts with `/`).
    Absolute(PathBuf),
    /// Relative to the calling process's own cgroup in each hierarchy
    /// (never starts with `/`).
    Relative(PathBuf),
}

impl CgroupPath {
    /// The cgroup directory relative to a hierarchy's root (no leading `/`),
    /// given the caller's own cgroup there (as in `/proc/self/cgroup`, after
    /// [`strip_mount_root`]).
    pub fn within(&self, own: &Path) -> PathBuf {
        match self {
            CgroupPath::Absolute(p) => p.strip_prefix("/").unwrap_or(p).to_path_buf(),
            CgroupPath::Relative(p) => own.strip_prefix("/").unwrap_or(own).join(p),
        }
    }
}

/// Applies the OCI `cgroupsPath` rules:
/// - `None` or empty: `/berth/<id>`;
/// - systemd style `slice:prefix:name` (exactly two colons, no leading `/`):
///   `/<slice>/<prefix>-<name>.scope` (`system.slice` when the slice is empty;
///   no systemd is involved);
/// - absolute: as given; relative: as given, resolved later per hierarchy.
///
/// `..` components are rejected; `.` components and repeated slashes vanish.
pub fn resolve(cgroups_path: Option<&Path>, id: &str) -> Result<CgroupPath> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let invalid = |reason: &str| CgroupError::InvalidPath {
        path: raw.clone(),
        reason: reason.to_string(),
    };
    if raw.is_empty() {
        if id.is_empty() || id.contains('/') || id == "." || id == ".." {
            return Err(CgroupError::InvalidPath {
                path: raw.clone(),
                reason: format!("container id {id:?} cannot name a cgroup"),
            });
        }
        return Ok(CgroupPath::Absolute(Path::new("/berth").join(id)));
    }
    let text = if !raw.starts_with('/') && raw.matches(':').count() == 2 {
        let mut parts = raw.splitn(3, ':');
        let (slice, prefix, name) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        if name.is_empty() {
            return Err(invalid("systemd style path needs a unit name"));
        }
        if [slice, prefix, name].iter().any(|s| s.contains('/')) {
            return Err(invalid("systemd style path parts cannot contain '/'"));
        }
        let slice = if slice.is_empty() {
            "system.slice"
        } else {
            slice
        };
        let unit = if prefix.is_empty() {
            format!("{name}.scope")
        } else {
            format!("{prefix}-{name}.scope")
        };
        format!("/{slice}/{unit}")
    } else {
        raw.clone()
    };
    let mut clean = PathBuf::new();
    for c in Path::new(&text).components() {
        match c {
            Component::Normal(s) => clean.push(s),
            Component::ParentDir => return Err(invalid("'..' is not allowed")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    if text.starts_with('/') {
        Ok(CgroupPath::Absolute(Path::new("/").join(clean)))
    } else if clean.as_os_str().is_empty() {
        Err(invalid("relative path names no cgroup"))
    } else {
        Ok(CgroupPath::Relative(clean))
    }
}

/// One cgroup mount from `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    pub mount_point: PathBuf,
    /// The hierarchy's directory that is mounted (field 4; `/` unless a cgroup
    /// namespace or a bind mount is involved).
    pub root: PathBuf,
    /// `true` for cgroup2.
    pub unified: bool,
    /// Controllers and `name=` of a v1 hierarchy, e.g. `["cpu", "cpuacct"]`;
    /// empty for cgroup2.
    pub controllers: Vec<String>,
}

impl CgroupMount {
    /// Options as [`crate::Hierarchy::options`] shows them: `cpu,cpuacct`.
    pub fn options(&self) -> String {
        self.controllers.join(",")
    }
}

/// Super options of a v1 mount that are not controllers.
const NON_CONTROLLER_OPTIONS: &[&str] = &[
    "rw",
    "ro",
    "noprefix",
    "clone_children",
    "xattr",
    "cpuset_v2_mode",
    "favordynmods",
    "nsdelegate",
    "memory_localevents",
    "memory_recursiveprot",
];

/// The cgroup and cgroup2 mounts at or below `under`, in mountinfo order,
/// one per mount point, as they are visible: a later mount of any type at
/// the same point or at a parent hides the earlier ones (a tmpfs over
/// `/sys/fs/cgroup/unified` leaves no cgroup2 mount there).
pub fn parse_mountinfo(text: &str, under: &Path) -> Vec<CgroupMount> {
    let mut mounts: Vec<CgroupMount> = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if left.len() < 5 || right.len() < 3 {
            continue;
        }
        let mount_point = PathBuf::from(unescape(left[4]));
        mounts.retain(|m| !m.mount_point.starts_with(&mount_point));
        let unified = match right[0] {
            "cgroup" => false,
            "cgroup2" => true,
            _ => continue,
        };
        if !mount_point.starts_with(under) {
            continue;
        }
        let controllers = if unified {
            Vec::new()
        } else {
            right[2]
                .split(',')
                .filter(|o| !NON_CONTROLLER_OPTIONS.contains(o) && !o.starts_with("release_agent="))
                .map(str::to_string)
                .collect()
        };
        let mount = CgroupMount {
            mount_point,
            root: PathBuf::from(unescape(left[3])),
            unified,
            controllers,
        };
        mounts.push(mount);
    }
    mounts
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |c: u8| u32::from(c - b'0');
            let v = digit(b[i + 1]) * 64 + digit(b[i + 2]) * 8 + digit(b[i + 3]);
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/cgroup`: `id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcCgroup {
    pub hierarchy_id: u32,
    /// Empty for the cgroup2 line (`0::/...`).
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<ProcCgroup> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?.parse().ok()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroup {
                hierarchy_id: id,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

/// The caller's own cgroup in `mount`'s hierarchy, relative to the mounted
/// directory, from parsed `/proc/self/cgroup`. `/` when not listed.
pub fn own_cgroup(procs: &[ProcCgroup], mount: &CgroupMount) -> PathBuf {
    let found = procs.iter().find(|p| {
        if mount.unified {
            p.hierarchy_id == 0 && p.controllers.is_empty()
        } else {
            !p.controllers.is_empty()
                && p.controllers.len() == mount.controllers.len()
                && p.controllers.iter().all(|c| mount.controllers.contains(c))
        }
    });
    match found {
        Some(p) => strip_mount_root(&p.path, &mount.root),
        None => PathBuf::from("/"),
    }
}

/// A path from `/proc/self/cgroup` made relative to the mounted directory of
/// the hierarchy (they differ when a sub-tree is bind mounted).
pub fn strip_mount_root(path: &Path, mount_root: &Path) -> PathBuf {
    match path.strip_prefix(mount_root) {
        Ok(rest) => Path::new("/").join(rest),
        Err(_) => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn abs(s: &str) -> CgroupPath {
        CgroupPath::Absolute(PathBuf::from(s))
    }

    #[test]
    fn empty_path_defaults_to_berth_id() {
        assert_eq!(resolve(None, "abc").unwrap(), abs("/berth/abc"));
        assert_eq!(
            resolve(Some(Path::new("")), "abc").unwrap(),
            abs("/berth/abc")
        );
        assert!(resolve(None, "a/b").is_err());
        assert!(resolve(None, "..").is_err());
        assert!(resolve(None, "").is_err());
    }

    #[test]
    fn absolute_and_relative_paths() {
        assert_eq!(
            resolve(Some(Path::new("/a//b/./c")), "x").unwrap(),
            abs("/a/b/c")
        );
        assert_eq!(resolve(Some(Path::new("/")), "x").unwrap(), abs("/"));
        assert_eq!(
            resolve(Some(Path::new("foo/bar")), "x").unwrap(),
            CgroupPath::Relative(PathBuf::from("foo/bar"))
        );
        assert!(resolve(Some(Path::new(".")), "x").is_err());
    }

    #[test]
    fn dotdot_is_rejected() {
        for p in ["/a/../b", "../x", "a/..", "/.."] {
            let err = resolve(Some(Path::new(p)), "x").unwrap_err();
            assert!(err.to_string().contains("'..'"), "{p}: {err}");
        }
    }

    #[test]
    fn systemd_style() {
        assert_eq!(
            resolve(Some(Path::new("system.slice:berth:abc")), "x").unwrap(),
            abs("/system.slice/berth-abc.scope")
        );
        assert_eq!(
            resolve(Some(Path::new(":berth:abc")), "x").unwrap(),
            abs("/system.slice/berth-abc.scope")
        );
        assert_eq!(
            resolve(Some(Path::new("user.slice::abc")), "x").unwrap(),
            abs("/user.slice/abc.scope")
        );
        assert!(resolve(Some(Path::new("a:b:")), "x").is_err());
        assert!(resolve(Some(Path::new("a:..:b")), "x").is_ok()); // "..-b.scope" is a name
        assert!(resolve(Some(Path::new("a/b:c:d")), "x").is_err());
        // Leading '/' or another number of colons: a plain path.
        assert_eq!(
            resolve(Some(Path::new("/a:b:c")), "x").unwrap(),
            abs("/a:b:c")
        );
        assert_eq!(
            resolve(Some(Path::new("a:b")), "x").unwrap(),
            CgroupPath::Relative(PathBuf::from("a:b"))
        );
    }

    #[test]
    fn within_a_hierarchy() {
        assert_eq!(
            abs("/berth/x").within(Path::new("/user.slice")),
            PathBuf::from("berth/x")
        );
        assert_eq!(
            CgroupPath::Relative("c/d".into()).within(Path::new("/a/b")),
            PathBuf::from("a/b/c/d")
        );
        assert_eq!(
            CgroupPath::Relative("c".into()).within(Path::new("/")),
            PathBuf::from("c")
        );
    }

    const MOUNTINFO: &str = "\
24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 /inner /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,clone_children,devices,release_agent=/x
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:39 / /mnt/odd\\040dir rw,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_finds_v1_and_unified() {
        let m = parse_mountinfo(MOUNTINFO, Path::new("/sys/fs/cgroup"));
        let points: Vec<_> = m.iter().map(|m| m.mount_point.to_str().unwrap()).collect();
        assert_eq!(
            points,
            [
                "/sys/fs/cgroup/cpu,cpuacct",
                "/sys/fs/cgroup/memory",
                "/sys/fs/cgroup/devices",
                "/sys/fs/cgroup/systemd",
                "/sys/fs/cgroup/unified"
            ]
        );
        assert_eq!(m[0].controllers, ["cpu", "cpuacct"]);
        assert_eq!(m[0].options(), "cpu,cpuacct");
        assert_eq!(m[2].controllers, ["devices"]);
        assert_eq!(m[2].root, PathBuf::from("/inner"));
        assert_eq!(m[3].controllers, ["name=systemd"]);
        assert!(m[4].unified && m[4].controllers.is_empty());
        assert!(!m[0].unified);

        let odd = parse_mountinfo(MOUNTINFO, Path::new("/mnt"));
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0].mount_point, PathBuf::from("/mnt/odd dir"));
        assert!(parse_mountinfo(MOUNTINFO, Path::new("/nothing")).is_empty());
        assert!(parse_mountinfo("garbage\n\n1 2 3", Path::new("/")).is_empty());
    }

    #[test]
    fn abuse_later_mounts_hide_earlier_cgroup_mounts() {
        let over_unified = format!(
            "{MOUNTINFO}50 41 0:50 / /sys/fs/cgroup/unified rw,relatime - tmpfs tmpfs rw\n"
        );
        let m = parse_mountinfo(&over_unified, Path::new("/sys/fs/cgroup"));
        assert_eq!(m.len(), 4);
        assert!(!m.iter().any(|m| m.unified), "{m:?}");
        // A cgroup2 mount over it again is the one in effect.
        let again = format!(
            "{over_unified}51 50 0:38 /sub /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
        );
        let m = parse_mountinfo(&again, Path::new("/sys/fs/cgroup"));
        assert_eq!(m.len(), 5);
        assert_eq!(m[4].root, PathBuf::from("/sub"));
        // A mount over a parent hides every hierarchy below it.
        let over_parent =
            format!("{MOUNTINFO}50 24 0:50 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw\n");
        assert!(parse_mountinfo(&over_parent, Path::new("/sys/fs/cgroup")).is_empty());
        let over_sys = format!("{MOUNTINFO}50 1 0:50 / /sys rw - sysfs sysfs rw\n");
        assert!(parse_mountinfo(&over_sys, Path::new("/sys/fs/cgroup")).is_empty());
        // A mount beside or below a hierarchy hides nothing.
        let beside =
            format!("{MOUNTINFO}50 31 0:50 / /sys/fs/cgroup/memory-x rw - tmpfs tmpfs rw\n");
        assert_eq!(
            parse_mountinfo(&beside, Path::new("/sys/fs/cgroup")).len(),
            5
        );
    }

    #[test]
    fn proc_cgroup_and_own_cgroup() {
        let text = "9:name=systemd:/user.slice\n4:memory:/process_api/e77\n\
                    2:cpuacct,cpu:/\n5:devices:/inner/sub\n0::/init.scope\n";
        let procs = parse_proc_cgroup(text);
        assert_eq!(procs.len(), 5);
        assert_eq!(procs[2].controllers, ["cpuacct", "cpu"]);
        assert_eq!(procs[4].hierarchy_id, 0);
        assert!(procs[4].controllers.is_empty());

        let mounts = parse_mountinfo(MOUNTINFO, Path::new("/sys/fs/cgroup"));
        let own: Vec<_> = mounts.iter().map(|m| own_cgroup(&procs, m)).collect();
        assert_eq!(
            own,
            [
                PathBuf::from("/"),
                PathBuf::from("/process_api/e77"),
                PathBuf::from("/sub"),
                PathBuf::from("/user.slice"),
                PathBuf::from("/init.scope"),
            ]
        );
        // Not listed at all: the root.
        assert_eq!(own_cgroup(&[], &mounts[0]), PathBuf::from("/"));
    }
}
