//! Container commands over the API: run, create, start, stop, kill,
//! restart, rm, ps, logs, exec, attach, wait, top, stats, pause, unpause,
//! diff, commit, export, rename, update, port, container prune.

use std::io::{self, IsTerminal, Write};

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
        Err(ClientError::Api { status: 404, message })
            if a.pull == "missing" && message.contains("No such image") =>
        {
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

pub fn run(c: &Client, a: RunArgs) -> Result<()> {
    let attach = !a.detach;
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
    if tty {
        forward_resize(c, format!("/containers/{id}/resize"));
    }
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

/// SIGWINCH → POST resize, on a connection of its own.
fn forward_resize(c: &Client, path: String) {
    let socket = c.socket().to_path_buf();
    session::watch_resize(move |h, w| {
        if let Ok(c) = Client::new(socket.clone(), None) {
            let _ = c.call(Method::POST, &format!("{path}?h={h}&w={w}"), None);
        }
    });
}

pub fn create_cmd(c: &Client, a: CreateArgs) -> Result<()> {
    let id = create(c, &a, false, false).map_err(daemon_err)?;
    println!("{id}");
    Ok(())
}

/// Runs `op` on each name, printing the name on success and the error on
/// failure; fails at the end if any did (docker's multi-container style).
pub fn each(names: &[String], mut op: impl FnMut(&str) -> Result<()>) -> Result<()> {
    let mut failed = false;
    for n in names {
        match op(n) {
            Ok(()) => println!("{n}"),
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
    if tty {
        forward_resize(c, format!("/containers/{id}/resize"));
    }
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
        Ok(c.call(Method::POST, &format!("/containers/{}/{op}{q}", seg(n)), None)?)
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
        Ok(c.call(Method::POST, &format!("/containers/{}/kill{q}", seg(n)), None)?)
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
    let mut failed = false;
    for n in &a.names {
        let r = c
            .request(
                Method::POST,
                &format!("/containers/{}/wait", seg(n)),
                vec![],
                empty_body(),
            )
            .map_err(anyhow::Error::from)
            .and_then(|resp| wait_code(c, resp));
        match r {
            Ok(code) => println!("{code}"),
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
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid time value {s:?}: use unix seconds, RFC 3339 or a duration like 10m"))?;
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
            ("since", a.since.as_deref().map(time_arg).transpose()?.unwrap_or_default()),
            ("until", a.until.as_deref().map(time_arg).transpose()?.unwrap_or_default()),
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
        .post(&format!("/containers/{}/exec", seg(&a.args[0])), Some(&body))
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
    if a.tty {
        forward_resize(c, format!("/exec/{id}/resize"));
    }
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
    let interactive = session::interactive_tty(tty, stdin);
    let raw = if interactive {
        Some(RawMode::enter()?)
    } else {
        None
    };
    if tty {
        forward_resize(c, format!("/containers/{id}/resize"));
    }
    let ended = session::run(h, stdin, interactive);
    drop(raw);
    if ended? == Ended::Detached {
        eprintln!("read escape sequence");
        return Ok(());
    }
    let info: Value = c.get(&format!("/containers/{id}/json"))?;
    let code = info["State"]["ExitCode"].as_i64().unwrap_or(0) as i32;
    if code != 0 {
        return Err(Exit::code(code).into());
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct TopArgs {
    container: String,
    /// ps options.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub fn top(c: &Client, a: TopArgs) -> Result<()> {
    let v: Value = c.get(&format!(
        "/containers/{}/top{}",
        seg(&a.container),
        query(&[("ps_args", a.ps_args.join(" "))])
    ))?;
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut rows = vec![strs(&v["Titles"])];
    for p in v["Processes"].as_array().into_iter().flatten() {
        rows.push(strs(p));
    }
    // docker top's tabwriter has a minimum cell width of 20.
    print!("{}", crate::format::align(rows, 20));
    Ok(())
}

#[derive(clap::Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    all: bool,
    /// Disable streaming stats and only pull the first result.
    #[arg(long)]
    no_stream: bool,
    /// Format output using a template.
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    containers: Vec<String>,
}

/// One `docker stats` row from a stats sample (with its `precpu_stats`).
pub fn stats_row(name: &str, id: &str, s: &Value) -> Value {
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let cpu_delta = f(&cpu["cpu_usage"]["total_usage"]) - f(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = f(&cpu["system_cpu_usage"]) - f(&pre["system_cpu_usage"]);
    let ncpu = cpu["online_cpus"]
        .as_f64()
        .filter(|n| *n > 0.0)
        .unwrap_or_else(|| {
            cpu["cpu_usage"]["percpu_usage"]
                .as_array()
                .map_or(1.0, |a| a.len().max(1) as f64)
        });
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * ncpu * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    // cgroup v2 reports inactive_file, v1 total_inactive_file; docker
    // subtracts it from usage.
    let cache = mem["stats"]["inactive_file"]
        .as_f64()
        .or(mem["stats"]["total_inactive_file"].as_f64())
        .unwrap_or(0.0);
    let used = (f(&mem["usage"]) - cache).max(0.0);
    let limit = f(&mem["limit"]);
    let mem_pct = if limit > 0.0 { used / limit * 100.0 } else { 0.0 };
    let (mut rx, mut tx) = (0u64, 0u64);
    for n in s["networks"].as_object().into_iter().flatten() {
        rx += n.1["rx_bytes"].as_u64().unwrap_or(0);
        tx += n.1["tx_bytes"].as_u64().unwrap_or(0);
    }
    let (mut rd, mut wr) = (0u64, 0u64);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += e["value"].as_u64().unwrap_or(0),
            Some("write") => wr += e["value"].as_u64().unwrap_or(0),
            _ => {}
        }
    }
    json!({
        "Container": name,
        "ID": id,
        "Name": name,
        "CPUPerc": format!("{cpu_pct:.2}%"),
        "MemUsage": format!("{} / {}", bin_size(used), bin_size(limit)),
        "MemPerc": format!("{mem_pct:.2}%"),
        "NetIO": format!("{} / {}", human_size(rx), human_size(tx)),
        "BlockIO": format!("{} / {}", human_size(rd), human_size(wr)),
        "PIDs": s["pids_stats"]["current"].as_u64().unwrap_or(0),
    })
}

/// Docker's binary sizes (`units.BytesSize`): KiB, MiB, GiB with 2 decimals
/// at most, trailing zeros dropped.
pub fn bin_size(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}{}", units[i])
}

pub fn stats(c: &Client, a: StatsArgs) -> Result<()> {
    let format = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}".into()
    });
    let header = |f: &str| -> String {
        match f {
            "ID" => "CONTAINER ID",
            "Name" => "NAME",
            "Container" => "CONTAINER",
            "CPUPerc" => "CPU %",
            "MemUsage" => "MEM USAGE / LIMIT",
            "MemPerc" => "MEM %",
            "NetIO" => "NET I/O",
            "BlockIO" => "BLOCK I/O",
            "PIDs" => "PIDS",
            other => other,
        }
        .to_string()
    };
    loop {
        let targets: Vec<String> = if a.containers.is_empty() {
            let list: Vec<Value> = c.get(&format!(
                "/containers/json{}",
                query(&[("all", if a.all { "1" } else { "" }.into())])
            ))?;
            list.iter()
                .filter_map(|s| s["Id"].as_str().map(String::from))
                .collect()
        } else {
            a.containers.clone()
        };
        let mut rows = Vec::new();
        for t in &targets {
            let s: Value = c.get(&format!(
                "/containers/{}/stats?stream=false&one-shot=false",
                seg(t)
            ))?;
            let id = s["id"].as_str().unwrap_or(t);
            let id = if a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let name = s["name"].as_str().unwrap_or(t).trim_start_matches('/');
            rows.push(stats_row(name, &id, &s));
        }
        let text = tmpl::render_list(&format, &rows, &header)?;
        if a.no_stream {
            print!("{text}");
            return Ok(());
        }
        // Redraw in place, as docker does on a terminal.
        if io::stdout().is_terminal() {
            print!("\x1b[2J\x1b[H");
        }
        print!("{text}");
        io::stdout().flush()?;
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

pub fn diff(c: &Client, container: &str) -> Result<()> {
    let changes: Vec<Value> = c.get(&format!("/containers/{}/changes", seg(container)))?;
    for ch in changes {
        let kind = match ch["Kind"].as_i64() {
            Some(0) => "C",
            Some(1) => "A",
            Some(2) => "D",
            _ => "?",
        };
        println!("{kind} {}", ch["Path"].as_str().unwrap_or(""));
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>").
    #[arg(short, long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Commit message.
    #[arg(short, long)]
    message: Option<String>,
    /// Pause container during commit.
    #[arg(short, long, default_value_t = true, action = clap::ArgAction::Set)]
    pause: bool,
    container: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

pub fn commit(c: &Client, a: CommitArgs) -> Result<()> {
    let (repo, tag) = match &a.reference {
        Some(r) => {
            let (repo, tag) = crate::format::split_repo_tag(r);
            (repo, tag)
        }
        None => (String::new(), String::new()),
    };
    let mut pairs = vec![
        ("container", a.container.clone()),
        ("repo", repo),
        ("tag", tag),
        ("comment", a.message.clone().unwrap_or_default()),
        ("author", a.author.clone().unwrap_or_default()),
        ("pause", if a.pause { "1" } else { "0" }.into()),
    ];
    for ch in &a.change {
        pairs.push(("changes", ch.clone()));
    }
    let v: Value = c.post(&format!("/commit{}", query(&pairs)), Some(&json!({})))?;
    println!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<std::path::PathBuf>,
    container: String,
}

pub fn export(c: &Client, a: ExportArgs) -> Result<()> {
    let resp = c.request(
        Method::GET,
        &format!("/containers/{}/export", seg(&a.container)),
        vec![],
        empty_body(),
    );
    crate::images::body_to_output(c, a.output.as_deref(), || resp.map_err(Into::into))
}

pub fn rename(c: &Client, old: &str, new: &str) -> Result<()> {
    c.call(
        Method::POST,
        &format!("/containers/{}/rename{}", seg(old), query(&[("name", new.into())])),
        None,
    )?;
    Ok(())
}

#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Number of CPUs.
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    cpuset_cpus: Option<String>,
    /// Memory limit.
    #[arg(short, long)]
    memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    memory_swap: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pids_limit: Option<i64>,
    /// Restart policy to apply when a container exits.
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub fn update(c: &Client, a: UpdateArgs) -> Result<()> {
    let mut body = json!({});
    if let Some(v) = a.cpus {
        body["NanoCpus"] = json!((v * 1e9) as i64);
    }
    if let Some(v) = a.cpu_shares {
        body["CpuShares"] = json!(v);
    }
    if let Some(v) = &a.cpuset_cpus {
        body["CpusetCpus"] = json!(v);
    }
    if let Some(v) = &a.memory {
        body["Memory"] = json!(crate::runopts::parse_bytes(v)?);
    }
    if let Some(v) = &a.memory_swap {
        body["MemorySwap"] = json!(if v == "-1" {
            -1
        } else {
            crate::runopts::parse_bytes(v)?
        });
    }
    if let Some(v) = a.pids_limit {
        body["PidsLimit"] = json!(v);
    }
    if let Some(r) = &a.restart {
        let (name, n) = r.split_once(':').unwrap_or((r, "0"));
        body["RestartPolicy"] = json!({"Name": name, "MaximumRetryCount": n.parse::<i64>()
            .with_context(|| format!("invalid --restart {r}"))?});
    }
    if body.as_object().is_some_and(|o| o.is_empty()) {
        bail!("you must provide one or more flags when using this command");
    }
    each(&a.containers, |n| {
        let v: Value = c.post(&format!("/containers/{}/update", seg(n)), Some(&body))?;
        for w in v["Warnings"].as_array().into_iter().flatten() {
            eprintln!("WARNING: {}", w.as_str().unwrap_or(""));
        }
        Ok(())
    })
}

pub fn port(c: &Client, container: &str, private: Option<&str>) -> Result<()> {
    let info: Value = c.get(&format!("/containers/{}/json", seg(container)))?;
    let ports = info["NetworkSettings"]["Ports"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let want = private.map(|p| {
        if p.contains('/') {
            p.to_string()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    let mut found = false;
    for k in keys {
        if want.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports[k].as_array().into_iter().flatten() {
            let ip = b["HostIp"].as_str().unwrap_or("");
            let ip = if ip.contains(':') {
                format!("[{ip}]")
            } else {
                ip.to_string()
            };
            let hp = b["HostPort"].as_str().unwrap_or("");
            found = true;
            if want.is_some() {
                println!("{ip}:{hp}");
            } else {
                println!("{k} -> {ip}:{hp}");
            }
        }
    }
    if let (Some(w), false) = (want, found) {
        bail!("No public port '{w}' published for {container}");
    }
    Ok(())
}

/// Asks before a destructive prune unless `force`.
pub fn confirm(warning: &str, force: bool) -> Result<bool> {
    if force {
        return Ok(true);
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    if !confirm("WARNING! This will remove all stopped containers.", a.force)? {
        return Ok(());
    }
    let v: Value = c.post(
        &format!("/containers/prune{}", query(&[("filters", filters_json(&a.filter)?)])),
        None,
    )?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:");
    Ok(())
}

/// `Deleted …:` list and `Total reclaimed space`.
pub fn print_pruned(v: &Value, key: &str, title: &str) {
    let items: Vec<&str> = v[key]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !items.is_empty() {
        println!("{title}");
        for i in items {
            println!("{i}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
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
        assert_eq!(bin_size(1536.0), "1.5KiB");
        assert_eq!(bin_size(0.0), "0B");
        assert_eq!(bin_size(64.0 * 1024.0 * 1024.0), "64MiB");
        assert_eq!(
            filters_json(&["status=exited".into(), "name=a".into()]).unwrap(),
            r#"{"name":["a"],"status":["exited"]}"#
        );
        assert!(filters_json(&["oops".into()]).is_err());
    }

    #[test]
    fn stats_math() {
        let s = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 300}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2097152, "limit": 4194304, "stats": {"inactive_file": 1048576}},
            "pids_stats": {"current": 3},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 1000}, {"op": "write", "value": 2000}]}
        });
        let r = stats_row("web", "abc", &s);
        assert_eq!(r["CPUPerc"], "40.00%");
        assert_eq!(r["MemUsage"], "1MiB / 4MiB");
        assert_eq!(r["MemPerc"], "25.00%");
        assert_eq!(r["BlockIO"], "1kB / 2kB");
        assert_eq!(r["PIDs"], 3);
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
