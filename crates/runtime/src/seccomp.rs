//! The OCI `linux.seccomp` section compiled to a BPF filter with libseccomp.

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

/// Loads a compiled filter into the calling process.
pub fn install(ctx: &ScmpFilterContext) -> Result<()> {
    ctx.load().map_err(|e| err(format!("load filter: {e}")))
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
