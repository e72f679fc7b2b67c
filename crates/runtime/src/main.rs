//! `berth-runtime`: runc's command line over the berth_runtime library.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;

use berth_runtime::{CreateOptions, Runtime};
use clap::{Parser, Subcommand};
use nix::sys::signal::Signal;

mod cli_extra;

#[derive(Parser, Debug)]
#[command(
    name = "berth-runtime",
    version,
    about = "OCI container runtime (runc-compatible command line)"
)]
struct Cli {
    /// Directory for container state (tmpfs recommended).
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    root: PathBuf,
    /// Also write errors to this file.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    /// Format of --log: text or json.
    #[arg(long = "log-format", global = true, default_value = "text")]
    log_format: String,
    /// Log debug information.
    #[arg(long, global = true)]
    debug: bool,
    /// Accepted for runc compatibility: cgroups are managed as cgroupfs paths.
    #[arg(long = "systemd-cgroup", global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility (criu is not supported).
    #[arg(long, global = true, hide = true)]
    criu: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Path to the bundle (directory holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    /// Write the container's pid here.
    #[arg(long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Unix socket that receives the pty master when process.terminal is true.
    #[arg(long = "console-socket")]
    console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (for ramdisk roots).
    #[arg(long = "no-pivot")]
    no_pivot: bool,
    /// Keep the caller's session keyring.
    #[arg(long = "no-new-keyring")]
    no_new_keyring: bool,
    /// Pass this many extra descriptors (from 3 on) to the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    preserve_fds: i32,
    container_id: String,
}

impl CreateArgs {
    fn options(&self) -> CreateOptions {
        CreateOptions {
            id: self.container_id.clone(),
            bundle: self.bundle.clone(),
            pid_file: self.pid_file.clone(),
            console_socket: self.console_socket.clone(),
            no_pivot: self.no_pivot,
            no_new_keyring: self.no_new_keyring,
            preserve_fds: self.preserve_fds,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a container (it waits for `start`).
    Create(CreateArgs),
    /// Run the created container's process.
    Start { container_id: String },
    /// Create, start and wait; exits with the container's exit code.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return after start instead of waiting.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long = "keep")]
        keep: bool,
    },
    /// Print the container's OCI state as JSON.
    State { container_id: String },
    /// Send a signal (default SIGTERM) to the container's init.
    Kill {
        /// Send to every process in the container.
        #[arg(short, long)]
        all: bool,
        container_id: String,
        signal: Option<String>,
    },
    /// Delete a container's resources and state.
    Delete {
        /// Kill the container first if it is running.
        #[arg(short, long)]
        force: bool,
        container_id: String,
    },
    /// List containers.
    #[command(alias = "ls")]
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for an unprivileged user (user namespace).
        #[arg(long)]
        rootless: bool,
    },
    /// Print the features this runtime supports as JSON.
    Features,
    /// Print the Docker-equivalent default seccomp profile (linux.seccomp
    /// JSON) for a container with the given capabilities (default: Docker's
    /// default set).
    DefaultSeccomp {
        #[arg(long = "cap")]
        caps: Vec<String>,
    },
    /// Run a new process inside a running container.
    Exec(cli_extra::ExecArgs),
    /// List the processes in a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        container_id: String,
        /// Options passed to ps(1) for the table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Suspend every process in a container (cgroup freezer).
    Pause { container_id: String },
    /// Resume a paused container.
    Resume { container_id: String },
    /// Change the resources of a running container.
    Update(cli_extra::UpdateArgs),
    /// Print resource usage (--stats once, or every --interval).
    Events {
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s")]
        interval: String,
        container_id: String,
    },
}

fn main() {
    let cli = Cli::parse();
    if cli.debug && !berth_runtime::sealed_exe::is_sealed() {
        let args: Vec<String> = std::env::args().collect();
        log_line(&cli, "debug", &format!("command: {}", args.join(" ")));
    }
    // CVE-2019-5736: while the runtime's image is inside a container, code
    // there must not reach the binary through /proc/<pid>/exe. A
    // non-dumpable process is out of reach of anything without
    // CAP_SYS_PTRACE in the host's user namespace; containers that hold it
    // get the runtime re-executed from a read-only image as well.
    // BERTH_UNSEALED=1 skips the re-exec (measurements only).
    if let Some(needs_sealed) = enters_container(&cli) {
        // SAFETY: prctl with integer arguments; inherited by our children
        // until they exec the container's process.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if needs_sealed
            && !berth_runtime::sealed_exe::is_sealed()
            && std::env::var_os("BERTH_UNSEALED").is_none()
        {
            let e = berth_runtime::sealed_exe::reexec_sealed();
            report_error(
                &cli,
                &anyhow::anyhow!("re-exec from a sealed image of the runtime: {e}"),
            );
            std::process::exit(1);
        }
    }
    let code = match dispatch(&cli) {
        Ok(code) => code,
        Err(e) => {
            report_error(&cli, &e);
            1
        }
    };
    std::process::exit(code);
}

/// `Some(needs_sealed_image)` for commands that put a process of ours into
/// a container.
fn enters_container(cli: &Cli) -> Option<bool> {
    use berth_runtime::sealed_exe::can_ptrace_host;
    match &cli.command {
        Command::Create(a) | Command::Run { create: a, .. } => Some(
            berth_runtime::load_spec(&a.bundle)
                .map(|s| can_ptrace_host(&s, None))
                .unwrap_or(true),
        ),
        Command::Exec(a) => {
            let rt = Runtime::new(&cli.root);
            Some(
                a.adds_capabilities()
                    || rt
                        .saved_spec(a.container_id())
                        .map(|s| can_ptrace_host(&s, None))
                        .unwrap_or(true),
            )
        }
        _ => None,
    }
}

fn report_error(cli: &Cli, e: &anyhow::Error) {
    // Our errors already carry their causes in their messages.
    let msg = format!("{e}");
    let _ = writeln!(std::io::stderr(), "berth-runtime: {msg}");
    log_line(cli, "error", &msg);
}

/// Appends one line to `--log` in runc's text or json format; debug lines go
/// to stderr too when there is no log file.
fn log_line(cli: &Cli, level: &str, msg: &str) {
    let Some(path) = &cli.log else {
        if level == "debug" {
            let _ = writeln!(std::io::stderr(), "berth-runtime: debug: {msg}");
        }
        return;
    };
    let time = berth_runtime::sys::now_rfc3339();
    let line = if cli.log_format == "json" {
        serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
    } else {
        format!("time=\"{time}\" level={level} msg={msg:?}")
    };
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    let rt = Runtime::new(&cli.root);
    match &cli.command {
        Command::Create(args) => {
            rt.create(&args.options())?;
        }
        Command::Start { container_id } => rt.start(container_id)?,
        Command::Run {
            create,
            detach,
            keep,
        } => {
            let code = rt.run(&create.options(), *detach, *keep)?;
            return Ok(code);
        }
        Command::State { container_id } => {
            let st = rt.state(container_id)?;
            println!("{}", serde_json::to_string_pretty(&st.to_oci_json())?);
        }
        Command::Kill {
            all,
            container_id,
            signal,
        } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(container_id, sig, *all)?;
        }
        Command::Delete {
            force,
            container_id,
        } => rt.delete(container_id, *force)?,
        Command::List { format, quiet } => cli_extra::list(&rt, format, *quiet)?,
        Command::Spec { bundle, rootless } => cli_extra::write_default_spec(bundle, *rootless)?,
        Command::Features => println!("{}", serde_json::to_string_pretty(&cli_extra::features())?),
        Command::Exec(args) => return cli_extra::exec(&rt, args),
        Command::DefaultSeccomp { caps } => {
            let caps = if caps.is_empty() {
                berth_runtime::seccomp_profile::DOCKER_DEFAULT_CAPS
                    .iter()
                    .map(|c| c.to_string())
                    .collect()
            } else {
                caps.clone()
            };
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &berth_runtime::seccomp_profile::default_profile_json(&caps)
                )?
            );
        }
        Command::Ps {
            format,
            container_id,
            ps_args,
        } => cli_extra::ps(&rt, container_id, format, ps_args)?,
        Command::Pause { container_id } => rt.pause(container_id)?,
        Command::Resume { container_id } => rt.resume(container_id)?,
        Command::Update(args) => cli_extra::update(&rt, args)?,
        Command::Events {
            stats,
            interval,
            container_id,
        } => cli_extra::events(&rt, container_id, *stats, interval)?,
    }
    Ok(0)
}

/// Accepts `KILL`, `SIGKILL` and `9`.
fn parse_signal(s: &str) -> anyhow::Result<Signal> {
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| anyhow::anyhow!("invalid signal number {n}"));
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).map_err(|_| anyhow::anyhow!("unknown signal {s:?}"))
}
