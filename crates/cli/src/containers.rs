//! Container commands over the API: run, create, start, stop, kill,
//! restart, rm, ps, logs, exec, attach, wait, top, stats, pause, unpause,
//! diff, commit, export, rename, update, port, container prune.

use std::io::{self, Write};

use anyhow::{Context, Result, bail};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Client, ClientError, empty_body, query, seg};
use crate::format::{ago, ellipsis, human_size, short_id};
use crate::runopts::CreateArgs;
use crate::session::{self, Ended, RawMode};
use crate::stdcopy::Demux;
use crate::{Exit, images, tmpl};

#[derive(clap::Args)]
pub struct RunArgs {
    /// Run container in background and print container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Automatically remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    #[command(flatten)]
    pub create: CreateArgs,
}

/// Creates the container, pulling its image when missing (as --pull says).
fn create(c: &Client, a: &CreateArgs, attach: bool, auto_remove: bool) -> Result<String> {
    let console = if a.tty { session::term_size() } else { None };
    let mut body = a.body(attach, console)?;
    if auto_remove {
        body["HostConfig"]["AutoRemove"] = json!(true);
    }
    let image = images::with_default_tag(a.image());
    if a.pull == "always" {
        images::pull_image(c, &image, a.platform.as_deref(), a.quiet, true)?;
    }
    let path = format!(
        "/containers/create{}",
        query(&[
            ("name", a.name.clone().unwrap_or_default()),
            ("platform", a.platform.clone().unwrap_or_default()),
        ])
    );
    let resp: Value = match c.post(&path, Some(&body)) {
        Err(ClientError::Api {
            status: 404,
            message,
        }) if a.pull == "missing" && message.contains("No such image") => {
            eprintln!("Unable to find image '{image}' locally");
            images::pull_image(c, &image, a.platform.as_deref(), a.quiet, true)?;
            c.post(&path, Some(&body))?
        }
        r => r?,
    };
    for w in resp["Warnings"].as_array().into_iter().flatten() {
        if let Some(w) = w.as_str() {
            eprintln!("WARNING: {w}");
        }
    }
    resp["Id"]
        .as_str()
        .map(String::from)
        .context("the daemon's create answer has no Id")
}

/// Docker's exit codes for a start that failed: 127 when the command is not
/// found, 126 when it cannot be executed, 125 otherwise.
fn start_failure(e: ClientError) -> anyhow::Error {
    let msg = e.to_string();
    Exit::msg(exec_failure_code(&msg).unwrap_or(125), msg).into()
}

/// Errors before the container runs are the daemon's (125), as docker
/// run's; a command that cannot be found or executed is 127/126 even when
/// the runtime already fails at create.
fn daemon_err(e: anyhow::Error) -> anyhow::Error {
    let msg = match e.downcast_ref::<Exit>() {
        Some(Exit { msg: Some(m), .. }) => m.clone(),
        Some(Exit { msg: None, .. }) => return e,
        None => crate::error_text(&e),
    };
    let code = exec_failure_code(&msg).unwrap_or(125);
    Exit::msg(code, msg).into()
}

/// 127 for a command that is not there, 126 for one that cannot run.
fn exec_failure_code(msg: &str) -> Option<i32> {
    let lower = msg.to_lowercase();
    if !lower.contains("exec") {
        return None;
    }
    if lower.contains("not found") || lower.contains("no such file") {
        Some(127)
    } else if lower.contains("permission denied") || lower.contains("cannot execute") {
        Some(126)
    } else {
        None
    }
}

/// docker refuses `-it` when stdin is no terminal (a pipe): the raw
/// session would make no sense.
fn check_tty_input(tty: bool, interactive: bool, detach: bool) -> Result<()> {
    use std::io::IsTerminal;
    if tty && interactive && !detach && !io::stdin().is_terminal() {
        bail!("the input device is not a TTY");
    }
    Ok(())
}

pub fn run(c: &Client, a: RunArgs) -> Result<()> {
    let attach = !a.detach;
    check_tty_input(a.create.tty, a.create.interactive, a.detach)?;
    let id = create(c, &a.create, attach, a.rm).map_err(daemon_err)?;
    if a.detach {
        c.call(Method::POST, &format!("/containers/{id}/start"), None)
            .map_err(start_failure)?;
        println!("{id}");
        return Ok(());
    }
    let stdin = a.create.interactive;
    let hijacked = c
        .hijack(
            &format!(
                "/containers/{id}/attach{}",
                query(&[
                    ("stream", "1".into()),
                    ("stdin", if stdin { "1" } else { "" }.into()),
                    ("stdout", "1".into()),
                    ("stderr", "1".into()),
                ])
            ),
            None,
        )
        .map_err(|e| daemon_err(e.into()))?;
    // Registered before the start, so even an instant exit is seen.
    let cond = if a.rm { "removed" } else { "next-exit" };
    let wait = c
        .request(
            Method::POST,
            &format!("/containers/{id}/wait?condition={cond}"),
            vec![],
            empty_body(),
        )
        .map_err(|e| daemon_err(e.into()))?;
    let tty = a.create.tty;
    let interactive = session::interactive_tty(tty, stdin);
    let raw = if interactive {
        Some(RawMode::enter()?)
    } else {
        None
    };
    if let Err(e) = c.call(Method::POST, &format!("/containers/{id}/start"), None) {
        drop(raw);
        if a.rm {
            let _ = c.call(Method::DELETE, &format!("/containers/{id}?force=1"), None);
        }
        return Err(start_failure(e));
    }
    forward_signals(
        c,
        tty.then(|| format!("/containers/{id}/resize")),
        Some(&id),
    );
    let ended = session::run(hijacked, stdin, interactive);
    drop(raw);
    if ended? == Ended::Detached {
        return Ok(());
    }
    let code = wait_code(c, wait)?;
    if code != 0 {
        return Err(Exit::code(code).into());
    }
    Ok(())
}

fn wait_code(c: &Client, resp: hyper::Response<hyper::body::Incoming>) -> Result<i32> {
    let body = c.bytes(resp)?;
    let v: Value = serde_json::from_slice(&body)
        .with_context(|| format!("wait answer: {}", String::from_utf8_lossy(&body)))?;
    if let Some(m) = v["Error"]["Message"].as_str().filter(|m| !m.is_empty()) {
        bail!("{m}");
    }
    Ok(v["StatusCode"].as_i64().unwrap_or(-1) as i32)
}

/// SIGWINCH → POST resize (when `tty`); SIGINT, SIGTERM… → POST kill
/// (when `proxy_to` names a container, as docker's --sig-proxy); each on a
/// connection of its own.
fn forward_signals(c: &Client, resize_path: Option<String>, proxy_to: Option<&str>) {
    let client = |socket: &std::path::Path| Client::new(socket.to_path_buf(), None).ok();
    let socket = c.socket().to_path_buf();
    let resize = resize_path.map(|path| {
        let socket = socket.clone();
        Box::new(move |h: u16, w: u16| {
            if let Some(c) = client(&socket) {
                let _ = c.call(Method::POST, &format!("{path}?h={h}&w={w}"), None);
            }
        }) as Box<dyn Fn(u16, u16) + Send>
    });
    let forward = proxy_to.map(|id| {
        let id = id.to_string();
        Box::new(move |sig: libc::c_int| {
            if let Some(c) = client(&socket) {
                let _ = c.call(
                    Method::POST,
                    &format!("/containers/{id}/kill?signal={sig}"),
                    None,
                );
            }
        }) as Box<dyn Fn(libc::c_int) + Send>
    });
    let proxied: &[libc::c_int] = if forward.is_some() {
        &session::PROXIED
    } else {
        &[]
    };
    session::watch_signals(resize, proxied, forward);
}

pub fn create_cmd(c: &Client, a: CreateArgs) -> Result<()> {
    let id = create(c, &a, false, false).map_err(daemon_err)?;
    println!("{id}");
    Ok(())
}

/// Runs `op` on each name, printing the name on success and the error on
/// failure; fails at the end if any did (docker's multi-container style).
pub fn each(names: &[String], mut op: impl FnMut(&str) -> Result<()>) -> Result<()> {
    each_line(names, |n| op(n).map(|()| n.to_string()))
}

/// Like [`each`], printing the line `op` returns for each name.
pub fn each_line(names: &[String], mut op: impl FnMut(&str) -> Result<String>) -> Result<()> {
    let mut failed = false;
    for n in names {
        match op(n) {
            Ok(line) if line.is_empty() => {}
            Ok(line) => println!("{line}"),
            Err(e) => {
                eprintln!("{}", crate::error_text(&e));
                failed = true;
            }
        }
    }
    if failed {
        return Err(Exit::code(1).into());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    attach: bool,
    /// Attach container's STDIN.
    #[arg(short, long)]
    interactive: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn start(c: &Client, a: StartArgs) -> Result<()> {
    if !a.attach && !a.interactive {
        return each(&a.containers, |n| {
            Ok(c.call(Method::POST, &format!("/containers/{}/start", seg(n)), None)?)
        });
    }
    if a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let name = &a.containers[0];
    let info: Value = c.get(&format!("/containers/{}/json", seg(name)))?;
    let id = info["Id"].as_str().unwrap_or(name).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let h = c.hijack(
        &format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if a.interactive { "&stdin=1" } else { "" }
        ),
        None,
    )?;
    let wait = c.request(
        Method::POST,
        &format!("/containers/{id}/wait?condition=next-exit"),
        vec![],
        empty_body(),
    )?;
    let interactive = session::interactive_tty(tty, a.interactive);
    let raw = if interactive {
        Some(RawMode::enter()?)
    } else {
        None
    };
    c.call(Method::POST, &format!("/containers/{id}/start"), None)
        .map_err(start_failure)?;
    forward_signals(
        c,
        tty.then(|| format!("/containers/{id}/resize")),
        Some(&id),
    );
    let ended = session::run(h, a.interactive, interactive);
    drop(raw);
    if ended? == Ended::Detached {
        return Ok(());
    }
    let code = wait_code(c, wait)?;
    if code != 0 {
        return Err(Exit::code(code).into());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short, long = "time", alias = "timeout")]
    time: Option<i64>,
    /// Signal to send to the container.
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn stop(c: &Client, a: StopArgs, op: &str) -> Result<()> {
    let q = query(&[
        ("t", a.time.map(|t| t.to_string()).unwrap_or_default()),
        ("signal", a.signal.clone().unwrap_or_default()),
    ]);
    each(&a.containers, |n| {
        Ok(c.call(
            Method::POST,
            &format!("/containers/{}/{op}{q}", seg(n)),
            None,
        )?)
    })
}

#[derive(clap::Args)]
pub struct KillArgs {
    /// Signal to send to the container.
    #[arg(short, long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn kill(c: &Client, a: KillArgs) -> Result<()> {
    let q = query(&[("signal", a.signal.clone().unwrap_or_default())]);
    each(&a.containers, |n| {
        Ok(c.call(
            Method::POST,
            &format!("/containers/{}/kill{q}", seg(n)),
            None,
        )?)
    })
}

#[derive(clap::Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    force: bool,
    /// Remove anonymous volumes associated with the container.
    #[arg(short, long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn rm(c: &Client, a: RmArgs) -> Result<()> {
    let q = query(&[
        ("force", if a.force { "1" } else { "" }.into()),
        ("v", if a.volumes { "1" } else { "" }.into()),
    ]);
    each(&a.containers, |n| {
        Ok(c.call(Method::DELETE, &format!("/containers/{}{q}", seg(n)), None)?)
    })
}

/// Names or IDs, one per argument; shared by pause, unpause, wait…
#[derive(clap::Args)]
pub struct Names {
    #[arg(required = true)]
    pub names: Vec<String>,
}

pub fn simple(c: &Client, a: Names, op: &str) -> Result<()> {
    each(&a.names, |n| {
        Ok(c.call(Method::POST, &format!("/containers/{}/{op}", seg(n)), None)?)
    })
}

pub fn wait(c: &Client, a: Names) -> Result<()> {
    each_line(&a.names, |n| {
        let resp = c.request(
            Method::POST,
            &format!("/containers/{}/wait", seg(n)),
            vec![],
            empty_body(),
        )?;
        Ok(wait_code(c, resp)?.to_string())
    })
}

#[derive(clap::Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Display total file sizes.
    #[arg(short, long)]
    size: bool,
    /// Filter output based on conditions provided (key=value).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a template (or `table TEMPLATE`, `json`).
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states).
    #[arg(short = 'n', long)]
    last: Option<usize>,
    /// Show the latest created container (includes all states).
    #[arg(short, long)]
    latest: bool,
}

/// `--filter k=v` flags as the API's `filters` JSON (`{"k": ["v"]}`).
pub fn filters_json(filters: &[String]) -> Result<String> {
    if filters.is_empty() {
        return Ok(String::new());
    }
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("bad format of filter (expected name=value): {f}"))?;
        m.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.to_string());
    }
    Ok(serde_json::to_string(&m)?)
}

/// Docker's PORTS column.
pub fn ports_text(ports: &Value) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in ports.as_array().into_iter().flatten() {
        let private = p["PrivatePort"].as_u64().unwrap_or(0);
        let proto = p["Type"].as_str().unwrap_or("tcp");
        let s = match p["PublicPort"].as_u64() {
            Some(public) if public > 0 => {
                let ip = p["IP"].as_str().unwrap_or("");
                let ip = if ip.contains(':') {
                    format!("[{ip}]")
                } else {
                    ip.to_string()
                };
                format!("{ip}:{public}->{private}/{proto}")
            }
            _ => format!("{private}/{proto}"),
        };
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(", ")
}

/// A `docker ps` row as its `--format` fields.
fn ps_row(s: &Value, no_trunc: bool) -> Value {
    let id = s["Id"].as_str().unwrap_or("");
    let names: Vec<String> = s["Names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|n| n.trim_start_matches('/'))
        // Link aliases (other/name) are not names of their own.
        .filter(|n| !n.contains('/'))
        .map(String::from)
        .collect();
    let command = s["Command"].as_str().unwrap_or("");
    let size = match (s["SizeRw"].as_u64(), s["SizeRootFs"].as_u64()) {
        (rw, Some(root)) => format!(
            "{} (virtual {})",
            human_size(rw.unwrap_or(0)),
            human_size(root)
        ),
        (Some(rw), None) => human_size(rw),
        _ => String::new(),
    };
    let labels: Vec<String> = s["Labels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    let networks: Vec<String> = s["NetworkSettings"]["Networks"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let created = s["Created"].as_i64().unwrap_or(0);
    json!({
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Image": s["Image"],
        "Command": if no_trunc { format!("\"{command}\"") } else { format!("\"{}\"", ellipsis(command, 20)) },
        "CreatedAt": crate::format::unix_to_text(created),
        "RunningFor": ago(created),
        "Ports": ports_text(&s["Ports"]),
        "State": s["State"],
        "Status": s["Status"],
        "Size": size,
        "Names": names.join(","),
        "Labels": labels.join(","),
        "Mounts": s["Mounts"].as_array().into_iter().flatten()
            .filter_map(|m| m["Name"].as_str().or(m["Source"].as_str()).map(String::from))
            .collect::<Vec<_>>().join(","),
        "Networks": networks.join(","),
    })
}

pub fn ps_header(field: &str) -> String {
    match field {
        "ID" => "CONTAINER ID".into(),
        "RunningFor" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

pub fn ps(c: &Client, a: PsArgs) -> Result<()> {
    let limit = if a.latest { Some(1) } else { a.last };
    let all = a.all || limit.is_some();
    let path = format!(
        "/containers/json{}",
        query(&[
            ("all", if all { "1" } else { "" }.into()),
            ("size", if a.size { "1" } else { "" }.into()),
            ("filters", filters_json(&a.filter)?),
            ("limit", limit.map(|l| l.to_string()).unwrap_or_default()),
        ])
    );
    let mut list: Vec<Value> = c.get(&path)?;
    list.sort_by_key(|s| std::cmp::Reverse(s["Created"].as_i64().unwrap_or(0)));
    if let Some(n) = limit {
        list.truncate(n);
    }
    let rows: Vec<Value> = list.iter().map(|s| ps_row(s, a.no_trunc)).collect();
    if a.quiet {
        for r in &rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let format = match a.format.as_deref() {
        Some("json") => "{{json .}}".to_string(),
        Some("table") | None => {
            let mut f = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}".to_string();
            if a.size {
                f.push_str("\t{{.Size}}");
            }
            f
        }
        Some(f) => f.to_string(),
    };
    print!("{}", tmpl::render_list(&format, &rows, &ps_header)?);
    Ok(())
}

#[derive(clap::Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    follow: bool,
    /// Number of lines to show from the end of the logs (or "all").
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp (RFC 3339 or unix seconds) or relative (42m).
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative (42m).
    #[arg(long)]
    until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    timestamps: bool,
    container: String,
}

/// `--since`/`--until`: unix seconds, RFC 3339, or a duration before now.
pub fn time_arg(s: &str) -> Result<String> {
    if s.parse::<f64>().is_ok() {
        return Ok(s.to_string());
    }
    if let Some(t) = crate::format::parse_rfc3339(s) {
        return Ok(t.to_string());
    }
    let (num, unit) = s.split_at(s.find(|c: char| c.is_alphabetic()).unwrap_or(s.len()));
    let n: f64 = num.parse().with_context(|| {
        format!("invalid time value {s:?}: use unix seconds, RFC 3339 or a duration like 10m")
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "ms" => n / 1000.0,
        _ => bail!("invalid duration unit in {s:?} (s, m, h)"),
    };
    Ok(format!("{}", crate::format::now_secs() as f64 - secs))
}

pub fn logs(c: &Client, a: LogsArgs) -> Result<()> {
    let path = format!(
        "/containers/{}/logs{}",
        seg(&a.container),
        query(&[
            ("stdout", "1".into()),
            ("stderr", "1".into()),
            ("follow", if a.follow { "1" } else { "" }.into()),
            ("timestamps", if a.timestamps { "1" } else { "" }.into()),
            ("tail", a.tail.clone()),
            (
                "since",
                a.since
                    .as_deref()
                    .map(time_arg)
                    .transpose()?
                    .unwrap_or_default()
            ),
            (
                "until",
                a.until
                    .as_deref()
                    .map(time_arg)
                    .transpose()?
                    .unwrap_or_default()
            ),
        ])
    );
    let resp = c.request(Method::GET, &path, vec![], empty_body())?;
    copy_stream(c, resp)
}

/// Writes a logs/attach-like body to stdout/stderr: raw for a tty,
/// demultiplexed otherwise.
pub fn copy_stream(c: &Client, resp: hyper::Response<hyper::body::Incoming>) -> Result<()> {
    let raw = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/vnd.docker.raw-stream");
    let mut demux = Demux::default();
    let mut out = io::stdout().lock();
    let mut err = io::stderr();
    c.each_chunk(resp, |d| {
        if raw {
            out.write_all(d)?;
            out.flush()?;
        } else {
            demux.feed(d, &mut out, &mut err)?;
        }
        Ok(true)
    })?;
    Ok(())
}

#[derive(clap::Args)]
#[command(disable_help_flag = true)]
pub struct ExecArgs {
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Detached mode: run command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Set environment variables.
    #[arg(short, long)]
    env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]").
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// CONTAINER COMMAND [ARG...]
    #[arg(value_name = "CONTAINER COMMAND [ARG...]", num_args = 2.., required = true, trailing_var_arg = true)]
    args: Vec<String>,
}

pub fn exec(c: &Client, a: ExecArgs) -> Result<()> {
    let attach = !a.detach;
    check_tty_input(a.tty, a.interactive, a.detach)?;
    let mut body = json!({
        "AttachStdin": a.interactive && attach,
        "AttachStdout": attach,
        "AttachStderr": attach,
        "Tty": a.tty,
        "Cmd": &a.args[1..],
        "Privileged": a.privileged,
        "Env": a.env,
    });
    if let Some(u) = &a.user {
        body["User"] = json!(u);
    }
    if let Some(w) = &a.workdir {
        body["WorkingDir"] = json!(w);
    }
    if a.tty
        && let Some((h, w)) = session::term_size()
    {
        body["ConsoleSize"] = json!([h, w]);
    }
    let created: Value = c
        .post(
            &format!("/containers/{}/exec", seg(&a.args[0])),
            Some(&body),
        )
        .map_err(|e| Exit::msg(125, e.to_string()))?;
    let id = created["Id"]
        .as_str()
        .context("the daemon's exec answer has no Id")?
        .to_string();
    let start = json!({"Detach": a.detach, "Tty": a.tty});
    if a.detach {
        c.call(Method::POST, &format!("/exec/{id}/start"), Some(&start))
            .map_err(start_failure)?;
        return Ok(());
    }
    let interactive = session::interactive_tty(a.tty, a.interactive);
    let h = c
        .hijack(&format!("/exec/{id}/start"), Some(&start))
        .map_err(start_failure)?;
    let raw = if interactive {
        Some(RawMode::enter()?)
    } else {
        None
    };
    // docker exec forwards no signals, only the window size.
    forward_signals(c, a.tty.then(|| format!("/exec/{id}/resize")), None);
    let ended = session::run(h, a.interactive, interactive);
    drop(raw);
    if ended? == Ended::Detached {
        return Ok(());
    }
    let info: Value = c.get(&format!("/exec/{id}/json"))?;
    let code = info["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(Exit::code(code).into());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    no_stdin: bool,
    container: String,
}

pub fn attach(c: &Client, a: AttachArgs) -> Result<()> {
    let info: Value = c.get(&format!("/containers/{}/json", seg(&a.container)))?;
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    if !info["State"]["Running"].as_bool().unwrap_or(false) {
        bail!("You cannot attach to a stopped container, start it first");
    }
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let h = c.hijack(
        &format!(
            "/containers/{id}/attach?stream=1&stdout=1&stderr=1{}",
            if stdin { "&stdin=1" } else { "" }
        ),
        None,
    )?;
    // Registered now so an exit during the session is not missed; the
    // session's end can precede the daemon recording the exit.
    let wait = c.request(
        Method::POST,
        &format!("/containers/{id}/wait"),
        vec![],
        empty_body(),
    )?;
    let interactive = session::interactive_tty(tty, stdin);
    let raw = if interactive {
        Some(RawMode::enter()?)
    } else {
        None
    };
    forward_signals(
        c,
        tty.then(|| format!("/containers/{id}/resize")),
        Some(&id),
    );
    let ended = session::run(h, stdin, interactive);
    drop(raw);
    if ended? == Ended::Detached {
        eprintln!("read escape sequence");
        return Ok(());
    }
    let code = wait_code(c, wait)?;
    if code != 0 {
        return Err(Exit::code(code).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_sizes() {
        let p = json!([
            {"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
            {"PrivatePort": 53, "Type": "udp"}
        ]);
        assert_eq!(
            ports_text(&p),
            "0.0.0.0:8080->80/tcp, [::]:8080->80/tcp, 53/udp"
        );
        assert_eq!(
            filters_json(&["status=exited".into(), "name=a".into()]).unwrap(),
            r#"{"name":["a"],"status":["exited"]}"#
        );
        assert!(filters_json(&["oops".into()]).is_err());
    }

    #[test]
    fn times() {
        assert_eq!(time_arg("12.5").unwrap(), "12.5");
        assert_eq!(time_arg("1970-01-01T00:01:00Z").unwrap(), "60");
        let t: f64 = time_arg("10m").unwrap().parse().unwrap();
        assert!((crate::format::now_secs() as f64 - t - 600.0).abs() < 5.0);
        assert!(time_arg("10y").is_err());
    }
}
