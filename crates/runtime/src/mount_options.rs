//! Parsing of OCI mount options into mount(2) flags, propagation and data.

use nix::mount::MsFlags;

/// A mount's options, split the way the kernel wants them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags for the first mount(2) call.
    pub flags: MsFlags,
    /// Flags that must be cleared (an explicit `rw`, `suid`, ... after a default).
    pub cleared: MsFlags,
    /// Propagation changes, applied one by one after the mount.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific data (`size=64m,mode=755`).
    pub data: Vec<String>,
    /// `bind` or `rbind` was given.
    pub bind: bool,
    /// `tmpcopyup`: copy the underlying directory into a new tmpfs.
    pub tmpcopyup: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            bind: false,
            tmpcopyup: false,
        }
    }
}

impl MountOptions {
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Result<MountOptions, String> {
        let mut o = MountOptions::default();
        for opt in options {
            let opt = opt.as_ref();
            let (set, clear): (MsFlags, MsFlags) = match opt {
                "defaults" => (MsFlags::empty(), MsFlags::empty()),
                "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
                "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
                "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
                "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
                "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
                "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
                "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
                "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
                "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
                "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
                "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
                "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
                "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
                "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
                "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
                "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
                "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
                "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
                "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
                "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
                "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
                "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
                "lazytime" => (MsFlags::MS_LAZYTIME, MsFlags::empty()),
                "nolazytime" => (MsFlags::empty(), MsFlags::MS_LAZYTIME),
                "silent" => (MsFlags::MS_SILENT, MsFlags::empty()),
                "loud" => (MsFlags::empty(), MsFlags::MS_SILENT),
                "iversion" => (MsFlags::MS_I_VERSION, MsFlags::empty()),
                "noiversion" => (MsFlags::empty(), MsFlags::MS_I_VERSION),
                "bind" => {
                    o.bind = true;
                    (MsFlags::MS_BIND, MsFlags::empty())
                }
                "rbind" => {
                    o.bind = true;
                    (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty())
                }
                "tmpcopyup" => {
                    o.tmpcopyup = true;
                    continue;
                }
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                | "unbindable" | "runbindable" => {
                    o.propagation
                        .push(propagation_flag(opt).expect("listed above"));
                    continue;
                }
                "idmap" | "ridmap" => {
                    return Err(format!(
                        "mount option {opt:?} (id-mapped mounts) is not supported"
                    ));
                }
                // Recursive attribute options (rro, rnosuid, ...) need mount_setattr.
                _ if opt.starts_with('r') && recursive_attr(opt).is_some() => {
                    o.flags |= recursive_attr(opt).expect("checked");
                    continue;
                }
                "" => continue,
                other => {
                    o.data.push(other.to_string());
                    continue;
                }
            };
            o.flags.insert(set);
            o.flags.remove(clear);
            o.cleared.insert(clear);
            o.cleared.remove(set);
        }
        Ok(o)
    }

    /// Flags to re-apply on a bind mount with MS_REMOUNT (bind ignores them at first).
    pub fn remount_flags(&self) -> MsFlags {
        self.flags
            & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT | MsFlags::MS_SILENT)
    }

    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

fn propagation_flag(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "private" => MsFlags::MS_PRIVATE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rslave" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        _ => return None,
    })
}

/// `rro`, `rnosuid`, `rnodev`, `rnoexec`: applied like their plain forms on the
/// top mount (sub-mounts keep theirs).
fn recursive_attr(opt: &str) -> Option<MsFlags> {
    Some(match opt {
        "rro" => MsFlags::MS_RDONLY,
        "rnosuid" => MsFlags::MS_NOSUID,
        "rnodev" => MsFlags::MS_NODEV,
        "rnoexec" => MsFlags::MS_NOEXEC,
        "rnoatime" => MsFlags::MS_NOATIME,
        "rrelatime" => MsFlags::MS_RELATIME,
        _ => return None,
    })
}

/// Parses `rootfsPropagation`.
pub fn parse_propagation(value: &str) -> Result<MsFlags, String> {
    propagation_flag(value).ok_or_else(|| {
        format!(
            "linux.rootfsPropagation: unknown value {value:?} (expected private, rprivate, shared, rshared, slave, rslave, unbindable or runbindable)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_data_and_propagation_are_separated() {
        let o = MountOptions::parse(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "rslave",
            "ro",
        ])
        .unwrap();
        assert_eq!(
            o.flags,
            MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME | MsFlags::MS_RDONLY
        );
        assert_eq!(o.data_string().as_deref(), Some("mode=755,size=65536k"));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert!(!o.bind);
    }

    #[test]
    fn later_option_wins() {
        let o = MountOptions::parse(&["ro", "rw"]).unwrap();
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
        assert!(o.cleared.contains(MsFlags::MS_RDONLY));
        let o = MountOptions::parse(&["rw", "ro"]).unwrap();
        assert!(o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn rbind_is_recursive_bind() {
        let o = MountOptions::parse(&["rbind", "ro", "nodev"]).unwrap();
        assert!(o.bind);
        assert!(o.flags.contains(MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(o.remount_flags(), MsFlags::MS_RDONLY | MsFlags::MS_NODEV);
    }

    #[test]
    fn idmap_is_refused_clearly() {
        let e = MountOptions::parse(&["idmap"]).unwrap_err();
        assert!(e.contains("idmap"), "{e}");
    }

    #[test]
    fn rootfs_propagation_values() {
        assert_eq!(
            parse_propagation("rshared").unwrap(),
            MsFlags::MS_SHARED | MsFlags::MS_REC
        );
        assert!(parse_propagation("bogus").unwrap_err().contains("bogus"));
    }
}
