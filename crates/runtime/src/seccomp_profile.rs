//! Berth's default seccomp profile, as data.
//!
//! This is the same policy as Docker's default profile (moby
//! `profiles/seccomp/default_linux.go`, as of the kernel 6.13 / libseccomp 2.6
//! update): deny with `EPERM` by default, allow a large set of ordinary
//! syscalls, allow a few more only with restricted arguments, and allow the
//! privileged ones only when the container's bounding set holds the
//! capability that the kernel would check anyway.
//!
//! Docker resolves its profile template (`includes`/`excludes` on caps,
//! arches and kernel version) when it creates a container. We do the same
//! here: [`default_profile`] takes the bounding capability set and returns a
//! plain OCI `linux.seccomp` object with the filters already applied, ready
//! for the seccomp compiler in `seccomp.rs`.
//!
//! Two deliberate differences from a literal rendering of Docker's template:
//!
//! * A name that is already allowed unconditionally is not repeated in a later
//!   unconditional ALLOW rule (Docker repeats e.g. `ptrace` in its base 4.8+
//!   rule and in its `CAP_SYS_PTRACE` rule). The resulting filter is the same.
//! * The `ptrace`/`process_vm_*` rule that Docker gates on kernel >= 4.8 is
//!   always included: Berth needs cgroup v2 and modern namespaces, so it never
//!   runs on kernels older than that.

use std::collections::BTreeSet;

use oci_spec::runtime::LinuxSeccomp;
use serde_json::{Value, json};

/// errno returned for everything the profile does not allow (EPERM).
pub const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

/// errno returned for `clone3` without `CAP_SYS_ADMIN` (ENOSYS), so that libc
/// falls back to `clone`, whose flags the filter *can* inspect.
pub const CLONE3_ERRNO: u32 = libc::ENOSYS as u32;

/// The `CLONE_NEW*` flags that create namespaces. Without `CAP_SYS_ADMIN`,
/// `clone` is allowed only when none of these bits is set (0x7E020000).
pub const CLONE_NAMESPACE_FLAGS: u64 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u64;

/// `socket(AF_VSOCK, ...)` is refused: vsock is not namespaced.
const AF_VSOCK: u64 = libc::AF_VSOCK as u64;

/// The `personality(2)` arguments allowed: PER_LINUX (0x0), PER_LINUX32
/// (0x8), UNAME26 (0x20000), PER_LINUX32|UNAME26 (0x20008) and the query
/// value 0xffffffff. Anything else (e.g. ADDR_NO_RANDOMIZE) is refused.
const PERSONALITY_ALLOWED: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

// ---------------------------------------------------------------------------
// Base allowlist: allowed for every container, whatever its capabilities.
// Many names exist only on some architectures (e.g. the `*32` uid calls and
// the `*_time64` calls only on 32-bit ABIs); the compiler skips names the
// target does not know, exactly as runc does.
// ---------------------------------------------------------------------------

/// Paths, file metadata and directory entries.
const BASE_FILES: &[&str] = &[
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "creat",
    "faccessat",
    "faccessat2",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2", // kernel 6.6
    "fchown",
    "fchown32",
    "fchownat",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "name_to_handle_at",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "readlink",
    "readlinkat",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
];

/// Extended attributes.
const BASE_XATTR: &[&str] = &[
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "getxattrat", // kernel 6.13
    "lgetxattr",
    "listxattr",
    "listxattrat", // kernel 6.13
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "removexattrat", // kernel 6.13
    "setxattr",
    "setxattrat", // kernel 6.13
];

/// File descriptors and data transfer.
const BASE_FD_IO: &[&str] = &[
    "_llseek",
    "cachestat", // kernel 6.5
    "close",
    "close_range",
    "copy_file_range",
    "dup",
    "dup2",
    "dup3",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "ioctl",
    "lseek",
    "pipe",
    "pipe2",
    "pread64",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readv",
    "sendfile",
    "sendfile64",
    "splice",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "vmsplice",
    "write",
    "writev",
];

/// Waiting for events: poll/select/epoll, inotify, fanotify marks, eventfd,
/// signalfd, timerfd.
const BASE_EVENTS: &[&str] = &[
    "_newselect",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
];

/// Asynchronous I/O (legacy AIO and io_uring).
const BASE_AIO: &[&str] = &[
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
];

/// Memory management of the caller's own address space.
const BASE_MEMORY: &[&str] = &[
    "brk",
    "madvise",
    "map_shadow_stack", // kernel 6.6
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "mseal", // kernel 6.9
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
];

/// Processes and threads: creation (not `clone`/`clone3`, see below),
/// execution, exit, waiting, sessions and resource limits.
const BASE_PROCESS: &[&str] = &[
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "get_robust_list",
    "get_thread_area",
    "getcpu",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrlimit",
    "getrusage",
    "getsid",
    "gettid",
    "ioprio_get",
    "ioprio_set",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "set_robust_list",
    "set_thread_area",
    "set_tid_address",
    "setpgid",
    "setpriority",
    "setrlimit",
    "setsid",
    "ugetrlimit",
    "uretprobe", // kernel 6.11
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
];

/// Signals.
const BASE_SIGNALS: &[&str] = &[
    "kill",
    "pause",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
];

/// Futexes.
const BASE_FUTEX: &[&str] = &[
    "futex",
    "futex_requeue", // kernel 6.7
    "futex_time64",
    "futex_wait", // kernel 6.7
    "futex_waitv",
    "futex_wake", // kernel 6.7
];

/// Scheduling of the caller's own tasks.
const BASE_SCHED: &[&str] = &[
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
];

/// Clocks, timers and sleeping. `adjtimex`/`clock_adjtime` only *read* the
/// clock without CAP_SYS_TIME, so they are safe here.
const BASE_TIME: &[&str] = &[
    "adjtimex",
    "alarm",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getitimer",
    "gettimeofday",
    "nanosleep",
    "setitimer",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "times",
];

/// User and group identity, and capabilities (the kernel checks these).
const BASE_IDENTITY: &[&str] = &[
    "capget",
    "capset",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getuid",
    "getuid32",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setuid",
    "setuid32",
];

/// System V and POSIX IPC (namespaced by the IPC namespace).
const BASE_IPC: &[&str] = &[
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
];

/// Sockets (except `socket` itself, which is allowed with a condition).
/// `recv`/`send` exist as syscalls only on some arches; on x86 they are
/// `socketcall` multiplexed calls, which libseccomp handles by name.
const BASE_NET: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socketcall",
    "socketpair",
];

/// Everything else: system information, randomness, sandboxing the caller.
const BASE_MISC: &[&str] = &[
    "getrandom",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "listmount", // kernel 6.8
    "seccomp",
    "statmount", // kernel 6.8
    "sysinfo",
    "uname",
];

/// All base groups, in the order they are emitted.
const BASE_GROUPS: &[&[&str]] = &[
    BASE_FILES,
    BASE_XATTR,
    BASE_FD_IO,
    BASE_EVENTS,
    BASE_AIO,
    BASE_MEMORY,
    BASE_PROCESS,
    BASE_SIGNALS,
    BASE_FUTEX,
    BASE_SCHED,
    BASE_TIME,
    BASE_IDENTITY,
    BASE_IPC,
    BASE_NET,
    BASE_MISC,
];

/// Tracing the caller's own children and reading/writing their memory. Since
/// kernel 4.8 seccomp is re-checked after a tracer changes a syscall, so
/// ptrace can no longer be used to escape the filter; Docker allows these on
/// kernels >= 4.8.
const PTRACE_SAFE: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

// ---------------------------------------------------------------------------
// Architecture-specific syscalls (keyed by Rust's `target_arch` spelling).
// ---------------------------------------------------------------------------

/// x86_64 (and x32): `arch_prctl` sets FS/GS; `modify_ldt` for 32-bit code.
const ARCH_X86_64: &[&str] = &["arch_prctl", "modify_ldt"];
/// 32-bit x86.
const ARCH_X86: &[&str] = &["modify_ldt"];
/// arm and arm64 (arm64 containers may run 32-bit arm binaries).
const ARCH_ARM: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];
/// ppc64le.
const ARCH_PPC64LE: &[&str] = &["swapcontext", "sync_file_range2"];
/// s390x.
const ARCH_S390X: &[&str] = &[
    "s390_pci_mmio_read",
    "s390_pci_mmio_write",
    "s390_runtime_instr",
];
/// riscv64.
const ARCH_RISCV64: &[&str] = &["riscv_flush_icache", "riscv_hwprobe"];

// ---------------------------------------------------------------------------
// Capability-gated groups: allowed only when the bounding set holds the cap.
// ---------------------------------------------------------------------------

/// `CAP_SYS_ADMIN`: mounts (old and new API), namespaces, host/domain name,
/// quotas, plus some calls Docker lets CAP_SYS_ADMIN stand in for a finer cap
/// (bpf, perf_event_open, syslog), and the LSM attribute calls. `clone` and
/// `clone3` become unrestricted.
const CAP_SYS_ADMIN_CALLS: &[&str] = &[
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "lsm_get_self_attr", // kernel 6.8
    "lsm_list_modules",  // kernel 6.8
    "lsm_set_self_attr", // kernel 6.8
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
];

/// (capability, syscalls it unlocks), in emission order. `CAP_SYS_ADMIN` is
/// handled separately because it also changes the `clone`/`clone3` rules.
const CAP_GROUPS: &[(&str, &[&str])] = &[
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "finit_module", "init_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    (
        "CAP_SYS_TIME",
        &["clock_settime", "clock_settime64", "settimeofday", "stime"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Docker's default capability set for containers (moby oci/caps).
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Docker-equivalent default seccomp profile as an OCI `LinuxSeccomp`,
/// for a container whose bounding capability set is `caps` (names like
/// "CAP_SYS_ADMIN"), on the architecture this binary was built for.
pub fn default_profile(caps: &[String]) -> LinuxSeccomp {
    default_profile_for_arch(caps, std::env::consts::ARCH)
}

/// The same as JSON (what `berth-runtime features`/the engine can print or save).
pub fn default_profile_json(caps: &[String]) -> Value {
    default_profile_json_for_arch(caps, std::env::consts::ARCH)
}

/// [`default_profile`] for an explicit architecture, spelled like Rust's
/// `std::env::consts::ARCH` ("x86_64", "aarch64", "riscv64", ...).
pub fn default_profile_for_arch(caps: &[String], arch: &str) -> LinuxSeccomp {
    serde_json::from_value(default_profile_json_for_arch(caps, arch))
        .expect("the built-in seccomp profile is a valid LinuxSeccomp")
}

/// [`default_profile_json`] for an explicit architecture.
pub fn default_profile_json_for_arch(caps: &[String], arch: &str) -> Value {
    let has = |cap: &str| caps.iter().any(|c| cap_matches(c, cap));
    let sys_admin = has("CAP_SYS_ADMIN");
    let mut rules = Rules::default();

    rules.allow(BASE_GROUPS.iter().flat_map(|g| g.iter().copied()));
    rules.allow(PTRACE_SAFE.iter().copied());
    rules.allow_with_args(
        "socket",
        vec![arg(0, AF_VSOCK, None, "SCMP_CMP_NE")],
        "socket: any family but AF_VSOCK",
    );
    for value in PERSONALITY_ALLOWED {
        rules.allow_with_args(
            "personality",
            vec![arg(0, value, None, "SCMP_CMP_EQ")],
            "personality: only the harmless personas",
        );
    }
    rules.allow(arch_syscalls(arch).iter().copied());

    if has("CAP_DAC_READ_SEARCH") {
        rules.allow(["open_by_handle_at"]);
    }
    if sys_admin {
        rules.allow(CAP_SYS_ADMIN_CALLS.iter().copied());
    } else {
        // clone's flags are argument 0, except on s390 where the first two
        // arguments are swapped.
        let flags_index = if arch == "s390x" { 1 } else { 0 };
        rules.allow_with_args(
            "clone",
            vec![arg(
                flags_index,
                CLONE_NAMESPACE_FLAGS,
                Some(0),
                "SCMP_CMP_MASKED_EQ",
            )],
            "clone: no new namespaces without CAP_SYS_ADMIN",
        );
        // clone3 passes its flags in memory, which seccomp cannot read:
        // claim it does not exist so libc falls back to clone.
        rules.errno(["clone3"], CLONE3_ERRNO);
    }
    for (cap, names) in CAP_GROUPS {
        if has(cap) {
            rules.allow(names.iter().copied());
        }
    }

    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": DEFAULT_ERRNO,
        "architectures": architectures(arch),
        "syscalls": rules.list,
    })
}

/// Whether the capability name `given` (from the spec, e.g. "CAP_SYS_ADMIN";
/// "SYS_ADMIN" and any case are accepted too) is `want`.
fn cap_matches(given: &str, want: &str) -> bool {
    let given = given.trim();
    let bare = want.strip_prefix("CAP_").unwrap_or(want);
    given.eq_ignore_ascii_case(want) || given.eq_ignore_ascii_case(bare)
}

/// Seccomp architectures for a native arch: the arch plus the compat ABIs
/// its kernel also accepts, as Docker's arch map does. Empty (native only)
/// for architectures we do not know.
fn architectures(arch: &str) -> Vec<&'static str> {
    match arch {
        "x86_64" => vec!["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "x86" => vec!["SCMP_ARCH_X86"],
        "aarch64" => vec!["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
        "arm" => vec!["SCMP_ARCH_ARM"],
        "s390x" => vec!["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
        "riscv64" => vec!["SCMP_ARCH_RISCV64"],
        "powerpc64" => vec!["SCMP_ARCH_PPC64LE"],
        _ => Vec::new(),
    }
}

/// Extra syscalls allowed on one architecture family.
fn arch_syscalls(arch: &str) -> &'static [&'static str] {
    match arch {
        "x86_64" => ARCH_X86_64,
        "x86" => ARCH_X86,
        "aarch64" | "arm" => ARCH_ARM,
        "powerpc64" => ARCH_PPC64LE,
        "s390x" => ARCH_S390X,
        "riscv64" => ARCH_RISCV64,
        _ => &[],
    }
}

fn arg(index: u32, value: u64, value_two: Option<u64>, op: &str) -> Value {
    let mut a = json!({ "index": index, "value": value, "op": op });
    if let Some(v2) = value_two {
        a["valueTwo"] = json!(v2);
    }
    a
}

/// The rule list under construction. Unconditional ALLOW rules never repeat
/// a name that an earlier unconditional ALLOW rule already covers.
#[derive(Default)]
struct Rules {
    list: Vec<Value>,
    allowed: BTreeSet<&'static str>,
}

impl Rules {
    fn allow(&mut self, names: impl IntoIterator<Item = &'static str>) {
        let fresh: Vec<&str> = names
            .into_iter()
            .filter(|n| self.allowed.insert(n))
            .collect();
        if !fresh.is_empty() {
            self.list
                .push(json!({ "names": fresh, "action": "SCMP_ACT_ALLOW" }));
        }
    }

    fn allow_with_args(&mut self, name: &'static str, args: Vec<Value>, why: &str) {
        debug_assert!(!self.allowed.contains(name), "{name}: {why}");
        self.list
            .push(json!({ "names": [name], "action": "SCMP_ACT_ALLOW", "args": args }));
    }

    fn errno(&mut self, names: impl IntoIterator<Item = &'static str>, errno: u32) {
        let names: Vec<&str> = names.into_iter().collect();
        self.list.push(json!({
            "names": names,
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{Arch, LinuxSeccompAction, LinuxSeccompOperator, LinuxSyscall};
    use std::collections::{BTreeMap, HashSet};

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn docker_default_caps() -> Vec<String> {
        caps(DOCKER_DEFAULT_CAPS)
    }

    fn all_caps() -> Vec<String> {
        let mut c: Vec<String> = CAP_GROUPS.iter().map(|(c, _)| c.to_string()).collect();
        c.push("CAP_SYS_ADMIN".into());
        c.push("CAP_DAC_READ_SEARCH".into());
        c
    }

    fn rules(p: &LinuxSeccomp) -> &[LinuxSyscall] {
        p.syscalls().as_deref().expect("syscalls present")
    }

    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        rules(p)
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    /// Allowed whatever the arguments.
    fn plainly_allowed(p: &LinuxSeccomp, name: &str) -> bool {
        rules_for(p, name).iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().as_ref().is_none_or(|a| a.is_empty())
        })
    }

    fn any_allow(p: &LinuxSeccomp, name: &str) -> bool {
        rules_for(p, name)
            .iter()
            .any(|r| r.action() == LinuxSeccompAction::ScmpActAllow)
    }

    fn every_name(p: &LinuxSeccomp) -> BTreeSet<String> {
        rules(p)
            .iter()
            .flat_map(|r| r.names().iter().cloned())
            .collect()
    }

    #[test]
    fn deserializes_with_docker_defaults() {
        for c in [Vec::new(), docker_default_caps(), all_caps()] {
            let p = default_profile_for_arch(&c, "x86_64");
            assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
            assert_eq!(p.default_errno_ret(), Some(1));
            assert_eq!(
                p.architectures().as_deref(),
                Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
            );
            // Round-trips through oci-spec unchanged.
            let json = default_profile_json_for_arch(&c, "x86_64");
            assert_eq!(serde_json::to_value(&p).unwrap(), json);
        }
        // The native-arch entry points work too.
        let native = default_profile(&docker_default_caps());
        assert!(plainly_allowed(&native, "read"));
        assert!(default_profile_json(&[])["syscalls"].is_array());
        for arch in [
            "aarch64",
            "arm",
            "s390x",
            "riscv64",
            "powerpc64",
            "x86",
            "mips",
        ] {
            let p = default_profile_for_arch(&all_caps(), arch);
            assert!(plainly_allowed(&p, "write"), "{arch}");
        }
        let arm = default_profile_for_arch(&[], "aarch64");
        assert_eq!(
            arm.architectures().as_deref(),
            Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..])
        );
        assert!(plainly_allowed(&arm, "set_tls"));
        assert!(!any_allow(&arm, "arch_prctl"));
    }

    #[test]
    fn ordinary_syscalls_allowed() {
        let p = default_profile_for_arch(&[], "x86_64");
        for name in [
            "read",
            "write",
            "execve",
            "exit_group",
            "futex",
            "openat",
            "close_range",
            "rt_sigreturn",
            "epoll_pwait2",
            "faccessat2",
            "openat2",
            "pidfd_open",
            "pidfd_send_signal",
            "process_mrelease",
            "landlock_create_ruleset",
            "memfd_secret",
            "futex_waitv",
            "arch_prctl",
            "ptrace",
            "adjtimex",
        ] {
            assert!(plainly_allowed(&p, name), "{name} should be allowed");
        }
    }

    #[test]
    fn personality_and_socket_are_conditional() {
        let p = default_profile_for_arch(&all_caps(), "x86_64");
        let pers = rules_for(&p, "personality");
        assert_eq!(pers.len(), 5);
        let mut values: Vec<u64> = pers
            .iter()
            .map(|r| {
                let args = r.args().as_ref().unwrap();
                assert_eq!(args.len(), 1);
                assert_eq!(args[0].index(), 0);
                assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpEq);
                args[0].value()
            })
            .collect();
        values.sort();
        assert_eq!(values, [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]);

        let sock = rules_for(&p, "socket");
        assert_eq!(sock.len(), 1);
        let a = sock[0].args().as_ref().unwrap();
        assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpNe);
        assert_eq!(a[0].value(), 40);
    }

    #[test]
    fn clone_and_clone3_follow_cap_sys_admin() {
        assert_eq!(CLONE_NAMESPACE_FLAGS, 0x7E02_0000);

        let p = default_profile_for_arch(&docker_default_caps(), "x86_64");
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].action(), LinuxSeccompAction::ScmpActAllow);
        let a = clone[0].args().as_ref().unwrap();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].index(), 0);
        assert_eq!(a[0].value(), 0x7E02_0000);
        assert_eq!(a[0].value_two(), Some(0));
        assert_eq!(a[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));

        let s390 = default_profile_for_arch(&[], "s390x");
        let a = rules_for(&s390, "clone")[0].args().clone().unwrap();
        assert_eq!(a[0].index(), 1);

        let p = default_profile_for_arch(&caps(&["CAP_SYS_ADMIN"]), "x86_64");
        for name in ["clone", "clone3"] {
            let r = rules_for(&p, name);
            assert_eq!(r.len(), 1, "{name}");
            assert!(plainly_allowed(&p, name), "{name}");
        }
    }

    #[test]
    fn sys_admin_gates_mounts_and_namespaces() {
        let without = default_profile_for_arch(&docker_default_caps(), "x86_64");
        let with = default_profile_for_arch(&caps(&["CAP_SYS_ADMIN"]), "x86_64");
        for name in CAP_SYS_ADMIN_CALLS {
            if *name == "clone" || *name == "clone3" {
                continue;
            }
            assert!(
                !any_allow(&without, name),
                "{name} allowed without SYS_ADMIN"
            );
            assert!(
                plainly_allowed(&with, name),
                "{name} refused with SYS_ADMIN"
            );
        }
        // Accepts the short spelling too.
        let short = default_profile_for_arch(&caps(&["sys_admin"]), "x86_64");
        assert!(plainly_allowed(&short, "mount"));
    }

    #[test]
    fn capability_groups() {
        let none = default_profile_for_arch(&[], "x86_64");
        for (cap, names) in CAP_GROUPS {
            let with = default_profile_for_arch(&caps(&[cap]), "x86_64");
            for name in *names {
                assert!(plainly_allowed(&with, name), "{name} with {cap}");
                let in_base = PTRACE_SAFE.contains(name);
                assert_eq!(any_allow(&none, name), in_base, "{name} without caps");
            }
        }
        assert!(!any_allow(&none, "reboot"));
        assert!(plainly_allowed(
            &default_profile_for_arch(&caps(&["CAP_SYS_BOOT"]), "x86_64"),
            "reboot"
        ));
        assert!(!any_allow(&none, "open_by_handle_at"));
        assert!(plainly_allowed(
            &default_profile_for_arch(&caps(&["CAP_DAC_READ_SEARCH"]), "x86_64"),
            "open_by_handle_at"
        ));
        // Never allowed, whatever the caps.
        let all = default_profile_for_arch(&all_caps(), "x86_64");
        for name in [
            "kexec_load",
            "kexec_file_load",
            "add_key",
            "keyctl",
            "request_key",
            "userfaultfd",
            "swapon",
            "swapoff",
            "pivot_root",
            "uselib",
            "nfsservctl",
            "move_pages",
            "migrate_pages",
        ] {
            assert!(!any_allow(&all, name), "{name}");
        }
    }

    #[test]
    fn no_duplicate_plain_allows() {
        for arch in ["x86_64", "aarch64", "s390x", "riscv64", "powerpc64"] {
            for c in [Vec::new(), docker_default_caps(), all_caps()] {
                let p = default_profile_for_arch(&c, arch);
                let mut seen = HashSet::new();
                for r in rules(&p) {
                    if r.action() == LinuxSeccompAction::ScmpActAllow && r.args().is_none() {
                        for n in r.names() {
                            assert!(seen.insert(n.clone()), "{n} twice ({arch})");
                        }
                    }
                }
                // No conditional rule for a name that is plainly allowed.
                for r in rules(&p) {
                    if r.args().is_some() || r.action() != LinuxSeccompAction::ScmpActAllow {
                        for n in r.names() {
                            assert!(!seen.contains(n), "{n} plain and conditional ({arch})");
                        }
                    }
                }
            }
        }
        // The constant groups themselves hold no duplicates.
        let mut seen = HashSet::new();
        for n in BASE_GROUPS.iter().flat_map(|g| g.iter()) {
            assert!(seen.insert(n), "{n} twice in the base groups");
        }
    }

    /// Syscalls the profile names that are newer than the kernel headers a
    /// build host may have, with the kernel that added them.
    const NEWER_THAN_HEADERS: &[(&str, &str)] = &[
        ("set_mempolicy_home_node", "5.17"),
        ("cachestat", "6.5"),
        ("fchmodat2", "6.6"),
        ("map_shadow_stack", "6.6"),
        ("futex_wake", "6.7"),
        ("futex_wait", "6.7"),
        ("futex_requeue", "6.7"),
        ("listmount", "6.8"),
        ("statmount", "6.8"),
        ("lsm_get_self_attr", "6.8"),
        ("lsm_set_self_attr", "6.8"),
        ("lsm_list_modules", "6.8"),
        ("mseal", "6.9"),
        ("uretprobe", "6.11"),
        ("getxattrat", "6.13"),
        ("listxattrat", "6.13"),
        ("removexattrat", "6.13"),
        ("setxattrat", "6.13"),
    ];

    /// `socketcall(2)` sub-calls with no syscall number on x86; libseccomp
    /// maps them onto `socketcall`.
    const SOCKETCALL_ONLY: &[&str] = &["recv", "send"];

    /// `__NR_*` names from the x86 unistd headers (64-bit, 32-bit and x32).
    fn header_syscalls() -> Option<BTreeMap<&'static str, BTreeSet<String>>> {
        let dirs = ["/usr/include/x86_64-linux-gnu/asm", "/usr/include/asm"];
        let mut out = BTreeMap::new();
        for (abi, file) in [
            ("64", "unistd_64.h"),
            ("32", "unistd_32.h"),
            ("x32", "unistd_x32.h"),
        ] {
            let text = dirs
                .iter()
                .find_map(|d| std::fs::read_to_string(format!("{d}/{file}")).ok())?;
            let names = text
                .lines()
                .filter_map(|l| l.strip_prefix("#define __NR_"))
                .filter_map(|rest| rest.split_whitespace().next())
                .map(str::to_string)
                .collect::<BTreeSet<_>>();
            out.insert(abi, names);
        }
        Some(out)
    }

    #[test]
    fn every_name_is_an_x86_syscall() {
        let Some(headers) = header_syscalls() else {
            eprintln!("x86 unistd headers not installed; skipping the syscall-name check");
            return;
        };
        assert!(headers["64"].contains("read") && headers["32"].contains("_llseek"));
        let known = |n: &str| headers.values().any(|s| s.contains(n));

        let p = default_profile_for_arch(&all_caps(), "x86_64");
        let mut names = every_name(&p);
        names.extend(
            default_profile_for_arch(&[], "x86_64")
                .syscalls()
                .iter()
                .flatten()
                .flat_map(|r| r.names().iter().cloned()),
        );
        let mut unknown = Vec::new();
        for n in &names {
            let newer = NEWER_THAN_HEADERS.iter().any(|(m, _)| m == n);
            if !known(n) && !newer && !SOCKETCALL_ONLY.contains(&n.as_str()) {
                unknown.push(n.clone());
            }
        }
        assert!(unknown.is_empty(), "not x86 syscalls: {unknown:?}");
        // The listed exceptions really are named by the profile.
        for (n, _) in NEWER_THAN_HEADERS {
            assert!(names.contains(*n), "{n}");
        }
    }

    #[test]
    fn base_allowlist_size() {
        let n: usize = BASE_GROUPS.iter().map(|g| g.len()).sum();
        // Docker's base list (kernel 6.13 profile) without `socket`
        // (conditional) and the 4.8+ ptrace trio (a separate rule).
        assert_eq!(n, 363);
    }
}
