//! The informational commands: list, spec, features.

use std::path::Path;

use berth_runtime::Runtime;

pub fn list(rt: &Runtime, format: &str, quiet: bool) -> anyhow::Result<()> {
    let containers = rt.list()?;
    if quiet {
        for c in &containers {
            println!("{}", c.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = containers.iter().map(|c| c.to_oci_json()).collect();
            println!("{}", serde_json::to_string(&v)?);
        }
        "table" => {
            println!(
                "{:<24} {:<8} {:<10} {:<40} {:<32} OWNER",
                "ID", "PID", "STATUS", "BUNDLE", "CREATED"
            );
            for c in &containers {
                let pid = if c.status == berth_runtime::Status::Stopped {
                    0
                } else {
                    c.pid
                };
                println!(
                    "{:<24} {:<8} {:<10} {:<40} {:<32} {}",
                    c.id,
                    pid,
                    c.status,
                    c.bundle.display(),
                    c.created,
                    if c.owner.is_empty() { "root" } else { &c.owner }
                );
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(())
}

pub fn write_default_spec(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        anyhow::bail!("{} already exists; remove it first", path.display());
    }
    let spec = if rootless {
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        oci_spec::runtime::Spec::rootless(uid, gid)
    } else {
        oci_spec::runtime::Spec::default()
    };
    let text = serde_json::to_string_pretty(&spec)?;
    std::fs::write(&path, text + "\n")
        .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
    Ok(())
}

pub fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": [
            "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime",
            "noexec", "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime",
            "nosuid", "private", "rbind", "relatime", "remount", "ro", "rprivate", "rshared",
            "rslave", "runbindable", "rw", "shared", "silent", "slave", "strictatime",
            "suid", "sync", "unbindable", "rro", "rnosuid", "rnodev", "rnoexec"
        ],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
            "capabilities": caps::all().iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "cgroup": { "v1": true, "v2": true, "systemd": false, "systemdUser": false },
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_ARM", "SCMP_ARCH_AARCH64"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false },
            "intelRdt": { "enabled": false },
            "mountExtensions": { "idmap": { "enabled": false } }
        },
        "annotations": {
            "org.opencontainers.runc.version": "berth-runtime",
        }
    })
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// process.json describing the process (`-` for stdin); replaces the arguments.
    #[arg(short, long)]
    process: Option<std::path::PathBuf>,
    #[arg(short, long)]
    tty: bool,
    #[arg(long)]
    cwd: Option<std::path::PathBuf>,
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    additional_gids: Vec<u32>,
    /// Add a capability (to every set).
    #[arg(short, long = "cap")]
    cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    no_new_privs: bool,
    #[arg(short, long)]
    detach: bool,
    #[arg(long = "pid-file")]
    pid_file: Option<std::path::PathBuf>,
    #[arg(long = "console-socket")]
    console_socket: Option<std::path::PathBuf>,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    /// Accepted for runc compatibility.
    #[arg(long = "process-label", hide = true)]
    process_label: Option<String>,
    /// Accepted for runc compatibility.
    #[arg(long, hide = true)]
    apparmor: Option<String>,
    container_id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

impl ExecArgs {
    pub fn container_id(&self) -> &str {
        &self.container_id
    }

    /// The process may hold capabilities beyond the container's config.
    pub fn adds_capabilities(&self) -> bool {
        !self.cap.is_empty() || self.process.is_some()
    }
}

pub fn exec(rt: &Runtime, a: &ExecArgs) -> anyhow::Result<i32> {
    let process = match &a.process {
        Some(p) => berth_runtime::exec::load_process(p)?,
        None => {
            if a.command.is_empty() {
                anyhow::bail!("exec needs a command or --process");
            }
            let spec = rt.saved_spec(&a.container_id)?;
            let mut v = serde_json::to_value(spec.process().clone().unwrap_or_default())?;
            v["args"] = serde_json::json!(a.command);
            v["terminal"] = serde_json::json!(a.tty);
            if !a.env.is_empty() {
                let env = v["env"]
                    .as_array_mut()
                    .map(std::mem::take)
                    .unwrap_or_default();
                let mut env: Vec<serde_json::Value> = env;
                env.extend(a.env.iter().map(|e| serde_json::json!(e)));
                v["env"] = serde_json::json!(env);
            }
            if let Some(cwd) = &a.cwd {
                v["cwd"] = serde_json::json!(cwd);
            }
            if let Some(user) = &a.user {
                let (uid, gid) = match user.split_once(':') {
                    Some((u, g)) => (u.parse::<u32>()?, g.parse::<u32>()?),
                    None => (
                        user.parse::<u32>().map_err(|_| {
                            anyhow::anyhow!("--user must be uid[:gid], got {user:?}")
                        })?,
                        0,
                    ),
                };
                v["user"]["uid"] = serde_json::json!(uid);
                v["user"]["gid"] = serde_json::json!(gid);
            }
            if !a.additional_gids.is_empty() {
                v["user"]["additionalGids"] = serde_json::json!(a.additional_gids);
            }
            for cap in &a.cap {
                for set in [
                    "bounding",
                    "effective",
                    "permitted",
                    "inheritable",
                    "ambient",
                ] {
                    if !v["capabilities"][set].is_array() {
                        v["capabilities"][set] = serde_json::json!([]);
                    }
                    v["capabilities"][set]
                        .as_array_mut()
                        .expect("array")
                        .push(serde_json::json!(cap));
                }
            }
            if a.no_new_privs {
                v["noNewPrivileges"] = serde_json::json!(true);
            }
            serde_json::from_value(v).map_err(|e| anyhow::anyhow!("exec process: {e}"))?
        }
    };
    let opts = berth_runtime::ExecOptions {
        id: a.container_id.clone(),
        process,
        detach: a.detach,
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        seccomp: rt
            .saved_spec(&a.container_id)?
            .linux()
            .as_ref()
            .and_then(|l| l.seccomp().clone()),
    };
    Ok(rt.exec(&opts)?)
}

pub fn ps(rt: &Runtime, id: &str, format: &str, ps_args: &[String]) -> anyhow::Result<()> {
    let pids = rt.pids(id)?;
    match format {
        "json" => println!("{}", serde_json::to_string(&pids)?),
        "table" => {
            let args: Vec<String> = if ps_args.is_empty() {
                vec!["-ef".into()]
            } else {
                ps_args.to_vec()
            };
            let out = std::process::Command::new("ps").args(&args).output()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or_default();
            let pid_col = header
                .split_whitespace()
                .position(|c| c == "PID")
                .ok_or_else(|| anyhow::anyhow!("ps output has no PID column"))?;
            println!("{header}");
            for line in lines {
                let pid: i32 = line
                    .split_whitespace()
                    .nth(pid_col)
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(-1);
                if pids.contains(&pid) {
                    println!("{line}");
                }
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// JSON LinuxResources from a file, or `-` for stdin.
    #[arg(short, long)]
    resources: Option<std::path::PathBuf>,
    #[arg(short, long)]
    memory: Option<i64>,
    #[arg(long = "memory-reservation")]
    memory_reservation: Option<i64>,
    #[arg(long = "memory-swap")]
    memory_swap: Option<i64>,
    #[arg(long = "cpu-quota")]
    cpu_quota: Option<i64>,
    #[arg(long = "cpu-period")]
    cpu_period: Option<u64>,
    #[arg(long = "cpu-shares")]
    cpu_shares: Option<u64>,
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    #[arg(long = "cpuset-mems")]
    cpuset_mems: Option<String>,
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    #[arg(long = "blkio-weight")]
    blkio_weight: Option<u16>,
    container_id: String,
}

pub fn update(rt: &Runtime, a: &UpdateArgs) -> anyhow::Result<()> {
    use serde_json::json;
    let mut v = match &a.resources {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
            serde_json::from_str(&s)?
        }
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => json!({}),
    };
    let mut set = |path: &[&str], val: serde_json::Value| {
        let mut cur = &mut v;
        for k in &path[..path.len() - 1] {
            if !cur[*k].is_object() {
                cur[*k] = json!({});
            }
            cur = &mut cur[*k];
        }
        cur[path[path.len() - 1]] = val;
    };
    if let Some(x) = a.memory {
        set(&["memory", "limit"], json!(x));
    }
    if let Some(x) = a.memory_reservation {
        set(&["memory", "reservation"], json!(x));
    }
    if let Some(x) = a.memory_swap {
        set(&["memory", "swap"], json!(x));
    }
    if let Some(x) = a.cpu_quota {
        set(&["cpu", "quota"], json!(x));
    }
    if let Some(x) = a.cpu_period {
        set(&["cpu", "period"], json!(x));
    }
    if let Some(x) = a.cpu_shares {
        set(&["cpu", "shares"], json!(x));
    }
    if let Some(x) = &a.cpuset_cpus {
        set(&["cpu", "cpus"], json!(x));
    }
    if let Some(x) = &a.cpuset_mems {
        set(&["cpu", "mems"], json!(x));
    }
    if let Some(x) = a.pids_limit {
        set(&["pids", "limit"], json!(x));
    }
    if let Some(x) = a.blkio_weight {
        set(&["blockIO", "weight"], json!(x));
    }
    let res: oci_spec::runtime::LinuxResources =
        serde_json::from_value(v).map_err(|e| anyhow::anyhow!("resources: {e}"))?;
    rt.update(&a.container_id, &res)?;
    Ok(())
}

pub fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> anyhow::Result<()> {
    let secs: f64 = interval
        .strip_suffix("ms")
        .map(|v| v.parse::<f64>().map(|ms| ms / 1000.0))
        .or_else(|| interval.strip_suffix('s').map(str::parse))
        .unwrap_or_else(|| interval.parse())
        .map_err(|_| anyhow::anyhow!("bad --interval {interval:?} (like 5s or 500ms)"))?;
    loop {
        let stats = match rt.stats(id) {
            Ok(s) => s,
            Err(_) if !once => return Ok(()), // the container is gone
            Err(e) => return Err(e.into()),
        };
        println!("{}", berth_runtime::ops::stats_event(id, &stats));
        if once {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    }
}
