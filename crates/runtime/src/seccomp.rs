//! The OCI `linux.seccomp` section compiled to a BPF filter with libseccomp.
//!
//! Compiling Docker's default profile costs more CPU than the rest of a
//! container's create (a third of `berth-runtime`'s samples under perf), and
//! nearly every container uses the same profile. So the compiled program is
//! cached under the state root, keyed by a hash of the section, the
//! libseccomp version and the cache format, and loaded with the seccomp(2)
//! syscall directly. The state root is root-only and normally on tmpfs, so
//! the cache is as trusted as the container state next to it and goes away
//! at reboot (with any kernel change).

use std::io::{Read, Seek, Write};
use std::path::Path;
use std::str::FromStr;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

use crate::error::{Result, RuntimeError};

const EPERM: i32 = libc::EPERM;

fn err(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidArgument(format!("linux.seccomp: {}", msg.into()))
}

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.map_or(EPERM, |e| e as i32)),
        LinuxSeccompAction::ScmpActTrace => {
            ScmpAction::Trace(errno.map_or(EPERM as u16, |e| e as u16))
        }
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(err(
                "SCMP_ACT_NOTIFY needs a seccomp agent (listenerPath), which is not supported",
            ));
        }
    })
}

fn compare(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> Result<ScmpArgCompare> {
    if index > 5 {
        return Err(err(format!("argument index {index} out of range (0-5)")));
    }
    let idx = index as u32;
    Ok(match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpArgCompare::new(idx, ScmpCompareOp::NotEqual, value),
        LinuxSeccompOperator::ScmpCmpLt => ScmpArgCompare::new(idx, ScmpCompareOp::Less, value),
        LinuxSeccompOperator::ScmpCmpLe => {
            ScmpArgCompare::new(idx, ScmpCompareOp::LessOrEqual, value)
        }
        LinuxSeccompOperator::ScmpCmpEq => ScmpArgCompare::new(idx, ScmpCompareOp::Equal, value),
        LinuxSeccompOperator::ScmpCmpGe => {
            ScmpArgCompare::new(idx, ScmpCompareOp::GreaterEqual, value)
        }
        LinuxSeccompOperator::ScmpCmpGt => ScmpArgCompare::new(idx, ScmpCompareOp::Greater, value),
        // OCI: `value` is the mask, `valueTwo` the value to compare with.
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpArgCompare::new(
            idx,
            ScmpCompareOp::MaskedEqual(value),
            value_two.unwrap_or(0),
        ),
    })
}

/// Builds the filter (not yet loaded). Unknown syscall names are skipped, as
/// runc and crun do, so one profile serves kernels old and new.
pub fn compile(cfg: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let default = action(cfg.default_action(), cfg.default_errno_ret())?;
    let lib = |e: libseccomp::error::SeccompError| err(e.to_string());
    let mut ctx = ScmpFilterContext::new(default).map_err(lib)?;
    // The config decides no_new_privs, not libseccomp.
    ctx.set_ctl_nnp(false).map_err(lib)?;
    for arch in cfg.architectures().as_deref().unwrap_or_default() {
        let name = serde_json::to_value(arch)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let a =
            ScmpArch::from_str(&name).map_err(|_| err(format!("unknown architecture {name}")))?;
        ctx.add_arch(a).map_err(lib)?;
    }
    for flag in cfg.flags().as_deref().unwrap_or_default() {
        match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => ctx.set_ctl_log(true).map_err(lib)?,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                ctx.set_ctl_tsync(true).map_err(lib)?
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                ctx.set_ctl_ssb(true).map_err(lib)?
            }
        };
    }
    for (i, rule) in cfg
        .syscalls()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default {
            continue; // libseccomp refuses rules that repeat the default action
        }
        let args = rule.args().as_deref().unwrap_or_default();
        let comparisons = args
            .iter()
            .map(|a| compare(a.index(), a.op(), a.value(), a.value_two()))
            .collect::<Result<Vec<_>>>()?;
        // libseccomp takes one comparison per argument per rule: several on the
        // same argument become alternative rules, as runc does.
        let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
        indexes.sort_unstable();
        let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
        for name in rule.names() {
            let Ok(sc) = ScmpSyscall::from_name(name) else {
                continue;
            };
            let res = if comparisons.is_empty() {
                ctx.add_rule(act, sc).map(drop)
            } else if repeated {
                comparisons
                    .iter()
                    .try_for_each(|c| ctx.add_rule_conditional(act, sc, &[*c]).map(drop))
            } else {
                ctx.add_rule_conditional(act, sc, &comparisons).map(drop)
            };
            res.map_err(|e| err(format!("syscalls[{i}] {name}: {e}")))?;
        }
    }
    Ok(ctx)
}

/// A compiled filter ready to load: BPF instructions and seccomp(2) flags.
#[derive(Debug, Clone)]
pub struct Program {
    code: Vec<libc::sock_filter>,
    flags: libc::c_ulong,
}

/// Bumped whenever what is hashed or stored changes.
const CACHE_FORMAT: &str = "berth-seccomp-bpf-1";

fn filter_flags(cfg: &LinuxSeccomp) -> libc::c_ulong {
    let mut flags = 0;
    for flag in cfg.flags().as_deref().unwrap_or_default() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
        };
    }
    flags
}

fn cache_key(cfg: &LinuxSeccomp) -> Result<String> {
    use sha2::Digest;
    let v = libseccomp::ScmpVersion::current().map_err(|e| err(e.to_string()))?;
    let mut h = sha2::Sha256::new();
    h.update(CACHE_FORMAT);
    h.update(format!("{}.{}.{}", v.major, v.minor, v.micro));
    h.update(std::env::consts::ARCH);
    h.update(serde_json::to_vec(cfg).map_err(|e| err(e.to_string()))?);
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn decode(bytes: &[u8]) -> Option<Vec<libc::sock_filter>> {
    const INSN: usize = std::mem::size_of::<libc::sock_filter>();
    // The kernel takes at most BPF_MAXINSNS (4096) instructions.
    if bytes.is_empty() || !bytes.len().is_multiple_of(INSN) || bytes.len() / INSN > 4096 {
        return None;
    }
    Some(
        bytes
            .chunks_exact(INSN)
            .map(|c| libc::sock_filter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect(),
    )
}

/// Compiles `cfg` (or takes it from `cache_dir`, creating that dir and
/// filling it on a miss; a cache that can't be written is only slower).
pub fn prepare(cfg: &LinuxSeccomp, cache_dir: Option<&Path>) -> Result<Program> {
    let flags = filter_flags(cfg);
    let cached = match cache_dir {
        Some(dir) => Some(dir.join(format!("{}.bpf", cache_key(cfg)?))),
        None => None,
    };
    if let Some(path) = &cached
        && let Ok(bytes) = std::fs::read(path)
        && let Some(code) = decode(&bytes)
    {
        return Ok(Program { code, flags });
    }
    let ctx = compile(cfg)?;
    // SAFETY: plain syscall with a NUL-terminated name; the fd is owned below.
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(err(format!(
            "memfd for the compiled filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    // SAFETY: fd was just returned by memfd_create and is owned by nobody else.
    let mut out = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    ctx.export_bpf(&out)
        .map_err(|e| err(format!("export filter: {e}")))?;
    let mut bytes = Vec::new();
    out.rewind()
        .and_then(|_| out.read_to_end(&mut bytes))
        .map_err(|e| err(format!("read exported filter: {e}")))?;
    let code = decode(&bytes).ok_or_else(|| {
        err(format!(
            "compiled filter has an invalid size ({} bytes)",
            bytes.len()
        ))
    })?;
    if let (Some(path), Some(dir)) = (&cached, cache_dir) {
        let _ = store(dir, path, &bytes);
    }
    Ok(Program { code, flags })
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // Concurrent creates may race to fill the same entry: each writes its
    // own temp file and the renames replace one whole file with another.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let res = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

/// Loads the filter into the calling thread (all threads with TSYNC).
pub fn install(p: &Program) -> Result<()> {
    let prog = libc::sock_fprog {
        len: p.code.len() as u16,
        filter: p.code.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `prog` points at `p.code`, alive for the call; the kernel
    // copies the program.
    let r = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            p.flags,
            &prog as *const libc::sock_fprog,
        )
    };
    if r != 0 {
        return Err(err(format!(
            "load filter: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seccomp(v: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn compiles_actions_args_and_arches() {
        let cfg = seccomp(serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "flags": ["SECCOMP_FILTER_FLAG_LOG"],
            "syscalls": [
                {"names": ["mkdir", "no_such_syscall_xyz"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                    {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"},
                    {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}
                ]},
                {"names": ["clone"], "action": "SCMP_ACT_KILL", "args": [
                    {"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}
                ]},
                {"names": ["getpid"], "action": "SCMP_ACT_ALLOW"}
            ]
        }));
        let ctx = compile(&cfg).unwrap();
        let out = tempfile::tempfile().unwrap();
        ctx.export_bpf(&out).unwrap();
        let len = out.metadata().unwrap().len();
        // sock_filter instructions are 8 bytes; a handful of rules is dozens of them.
        assert!(len >= 8 * 10 && len.is_multiple_of(8), "{len}");
    }

    #[test]
    fn notify_and_bad_index_are_refused() {
        let cfg = seccomp(serde_json::json!({"defaultAction": "SCMP_ACT_NOTIFY"}));
        assert!(compile(&cfg).unwrap_err().to_string().contains("NOTIFY"));
        let cfg = seccomp(
            serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]}),
        );
        assert!(compile(&cfg).unwrap_err().to_string().contains("index 7"));
    }
}
