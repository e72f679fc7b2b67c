//! The one error type of this crate.
//!
//! Every filesystem error names the file and, for writes, the value, so a
//! failed limit reads like
//! `write 100000 to /sys/fs/cgroup/cpu/berth/x/cpu.cfs_quota_us: Invalid argument`.

use std::fmt;
use std::io;
use std::path::PathBuf;

pub type Result<T, E = CgroupError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("write {value} to {}: {}", path.display(), Errno(source))]
    Write {
        path: PathBuf,
        value: String,
        source: io::Error,
    },
    #[error("read {}: {}", path.display(), Errno(source))]
    Read { path: PathBuf, source: io::Error },
    #[error("create directory {}: {}", path.display(), Errno(source))]
    Create { path: PathBuf, source: io::Error },
    #[error("remove directory {}: {}", path.display(), Errno(source))]
    Remove { path: PathBuf, source: io::Error },
    #[error("statfs {}: {}", path.display(), Errno(source))]
    Statfs { path: PathBuf, source: io::Error },
    #[error("kill pid {pid} in {}: {}", path.display(), Errno(source))]
    Kill {
        pid: i32,
        path: PathBuf,
        source: io::Error,
    },
    /// A file held something we could not make sense of.
    #[error("parse {}: unexpected content {content:?}", path.display())]
    Parse { path: PathBuf, content: String },
    /// The OCI `cgroupsPath` cannot be used.
    #[error("invalid cgroups path {path:?}: {reason}")]
    InvalidPath { path: String, reason: String },
    /// A resource value the kernel would reject or that makes no sense.
    #[error("invalid resource {what}: {reason}")]
    InvalidResource { what: String, reason: String },
    /// Neither a cgroup2 root nor any cgroup v1 hierarchy under the root.
    #[error("no cgroup hierarchy mounted under {}", .0.display())]
    NoHierarchy(PathBuf),
    /// A requested limit needs a controller or file this host lacks (a
    /// controller not mounted, no blkio weight file without BFQ/CFQ, a huge
    /// page size the host does not have). Refused, as runc refuses it:
    /// running without the limit would break the caller's expectations.
    #[error("cannot set {what}: {missing}")]
    Unavailable { what: String, missing: String },
    /// A setting this host cannot honour and that is safe to skip (as runc
    /// skips it: kernelTCP without its file, cgroup v2 device rules, which
    /// need eBPF). `apply` still writes every other setting before returning
    /// this, so a caller may log it and go on.
    #[error("unsupported: {what}")]
    Unsupported { what: String },
    /// A state change did not complete in time (freezer, rmdir).
    #[error("timed out {what} {}", path.display())]
    Timeout { path: PathBuf, what: String },
}

impl CgroupError {
    /// `true` for [`CgroupError::Unsupported`], which callers may log and skip.
    pub fn is_unsupported(&self) -> bool {
        matches!(self, CgroupError::Unsupported { .. })
    }

    /// The OS error number behind the error, if any.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Write { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::Create { source, .. }
            | CgroupError::Remove { source, .. }
            | CgroupError::Statfs { source, .. }
            | CgroupError::Kill { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }

    pub(crate) fn unsupported(what: impl Into<String>) -> Self {
        CgroupError::Unsupported { what: what.into() }
    }

    pub(crate) fn unavailable(what: impl Into<String>, missing: impl Into<String>) -> Self {
        CgroupError::Unavailable {
            what: what.into(),
            missing: missing.into(),
        }
    }

    pub(crate) fn invalid(what: impl Into<String>, reason: impl Into<String>) -> Self {
        CgroupError::InvalidResource {
            what: what.into(),
            reason: reason.into(),
        }
    }
}

/// Shows an `io::Error` as the bare strerror text ("Invalid argument"),
/// without the "(os error 22)" suffix std adds.
struct Errno<'a>(&'a io::Error);

impl fmt::Display for Errno<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.raw_os_error() {
            Some(code) => f.write_str(nix::errno::Errno::from_raw(code).desc()),
            None => self.0.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_error_names_path_value_and_errno() {
        let e = CgroupError::Write {
            path: "/sys/fs/cgroup/cpu/berth/x/cpu.cfs_quota_us".into(),
            value: "100000".into(),
            source: io::Error::from_raw_os_error(libc::EINVAL),
        };
        assert_eq!(
            e.to_string(),
            "write 100000 to /sys/fs/cgroup/cpu/berth/x/cpu.cfs_quota_us: Invalid argument"
        );
        assert_eq!(e.raw_os_error(), Some(libc::EINVAL));
        assert!(!e.is_unsupported());
        assert!(CgroupError::unsupported("x").is_unsupported());
        let refused =
            CgroupError::unavailable("network classID", "the net_cls controller is not mounted");
        assert!(!refused.is_unsupported());
        assert_eq!(
            refused.to_string(),
            "cannot set network classID: the net_cls controller is not mounted"
        );
    }
}
