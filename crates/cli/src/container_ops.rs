//! Container commands that inspect or change a container in place: top,
//! stats, diff, commit, export, rename, update, port, container prune.

use std::io::{self, IsTerminal, Write};

use anyhow::{Context, Result, bail};
use hyper::Method;
use serde_json::{Value, json};

use crate::client::{Client, empty_body, query, seg};
use crate::containers::{each, filters_json};
use crate::format::{human_size, short_id};
use crate::tmpl;

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
    let mem_pct = if limit > 0.0 {
        used / limit * 100.0
    } else {
        0.0
    };
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
        &format!(
            "/containers/{}/rename{}",
            seg(old),
            query(&[("name", new.into())])
        ),
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
    if let (Some(p), false) = (private, found) {
        bail!("No public port '{p}' published for {container}");
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
        &format!(
            "/containers/prune{}",
            query(&[("filters", filters_json(&a.filter)?)])
        ),
        None,
    )?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:");
    Ok(())
}

/// The `Deleted …:` list of a prune answer.
pub fn print_deleted(v: &Value, key: &str, title: &str) {
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
}

/// `Deleted …:` list and `Total reclaimed space`.
pub fn print_pruned(v: &Value, key: &str, title: &str) {
    print_deleted(v, key, title);
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn binary_sizes() {
        assert_eq!(bin_size(1536.0), "1.5KiB");
        assert_eq!(bin_size(0.0), "0B");
        assert_eq!(bin_size(64.0 * 1024.0 * 1024.0), "64MiB");
    }
}
