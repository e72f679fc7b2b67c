//! `run`/`create` flags and their translation into the body of
//! `POST /containers/create` (Docker's Config + HostConfig shapes).

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

#[derive(clap::Args, Debug, Default)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Keep STDIN open even if not attached.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Set meta data on a container (key=value).
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Bind mount a volume (src:dst[:opts], or an anonymous volume path).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=,target=,readonly).
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory (path[:options]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 64m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 for unlimited swap.
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Ulimit options (name=soft[:hard]).
    #[arg(long)]
    pub ulimit: Vec<String>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options.
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Run an init inside the container that forwards signals and reaps processes.
    #[arg(long)]
    pub init: bool,
    /// Restart policy (no, always, unless-stopped, on-failure[:max-retries]).
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container.
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Connect a container to a network.
    #[arg(long, alias = "net")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container.
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// Publish a container's port(s) to the host.
    #[arg(short, long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports.
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports.
    #[arg(long)]
    pub expose: Vec<String>,
    /// Pull image before running (always, missing, never).
    #[arg(long, default_value = "missing", value_parser = ["always", "missing", "never"])]
    pub pull: String,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress the pull output.
    #[arg(short, long)]
    pub quiet: bool,
    /// IMAGE [COMMAND] [ARG...]: one list, so that options after the image
    /// belong to the command (`run img ls -l`), as with docker.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG...]",
        required = true,
        trailing_var_arg = true
    )]
    pub args: Vec<String>,
}

/// Docker's `RAMInBytes`: a number with an optional b/k/m/g/t suffix
/// (binary units).
pub fn parse_bytes(s: &str) -> Result<i64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| *n >= 0.0)
        .with_context(|| format!("invalid size: '{s}'"))?;
    Ok((n * mult as f64) as i64)
}

/// `KEY=VALUE`, or `KEY` taken from our environment (dropped when unset).
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn read_env_file(path: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("open {path}"))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split('=').next().unwrap_or("");
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("{path}:{}: variable '{key}' contains whitespaces", i + 1);
        }
        out.extend(env_entry(l));
    }
    Ok(out)
}

/// `-p [ip:][hostPort:]containerPort[/proto]` (ranges allowed) into
/// (exposed port keys, bindings).
pub fn parse_publish(spec: &str) -> Result<Vec<(String, Value)>> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p),
        None => (spec, "tcp"),
    };
    if !["tcp", "udp", "sctp"].contains(&proto) {
        bail!("invalid proto: {proto} in {spec}");
    }
    // An IPv6 address in brackets holds colons of its own.
    let (ip, rest) = if let Some(r) = rest.strip_prefix('[') {
        let (ip, r) = r
            .split_once("]:")
            .with_context(|| format!("invalid IP address in {spec}"))?;
        (ip.to_string(), r)
    } else {
        let parts: Vec<&str> = rest.split(':').collect();
        match parts.len() {
            1 | 2 => (String::new(), rest),
            3 => (parts[0].to_string(), &rest[parts[0].len() + 1..]),
            _ => bail!("invalid port format: {spec}"),
        }
    };
    let (host, ctr) = match rest.split_once(':') {
        Some((h, c)) => (h, c),
        None => ("", rest),
    };
    let range = |s: &str| -> Result<(u16, u16)> {
        let (a, b) = s.split_once('-').unwrap_or((s, s));
        let p = |x: &str| {
            x.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| format!("invalid port '{x}' in {spec}"))
        };
        let (a, b) = (p(a)?, p(b)?);
        if b < a {
            bail!("invalid port range {s} in {spec}");
        }
        Ok((a, b))
    };
    let (c0, c1) = range(ctr)?;
    let hosts = if host.is_empty() {
        None
    } else {
        Some(range(host)?)
    };
    if let Some((h0, h1)) = hosts
        && h1 - h0 != c1 - c0
        && h0 != h1
    {
        bail!("invalid ranges: host {host} and container {ctr} differ in size in {spec}");
    }
    let mut out = Vec::new();
    for (i, cp) in (c0..=c1).enumerate() {
        let host_port = match hosts {
            None => String::new(),
            Some((h0, h1)) if h0 == h1 => h0.to_string(),
            Some((h0, _)) => (h0 + i as u16).to_string(),
        };
        out.push((
            format!("{cp}/{proto}"),
            json!({"HostIp": ip, "HostPort": host_port}),
        ));
    }
    Ok(out)
}

/// `--mount type=bind,source=/a,target=/b,readonly` into Docker's Mount.
pub fn parse_mount(spec: &str) -> Result<Value> {
    let mut m = Map::new();
    let mut kind = "volume".to_string();
    let mut bind = Map::new();
    let mut vol = Map::new();
    let mut tmpfs = Map::new();
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k.to_ascii_lowercase().as_str() {
            "type" => kind = v.to_string(),
            "source" | "src" => {
                m.insert("Source".into(), v.into());
            }
            "target" | "destination" | "dst" => {
                m.insert("Target".into(), v.into());
            }
            "readonly" | "ro" => {
                let ro = matches!(v, "" | "1" | "true");
                if !ro && !matches!(v, "0" | "false") {
                    bail!("invalid value for readonly in --mount {spec}: {v}");
                }
                m.insert("ReadOnly".into(), ro.into());
            }
            "bind-propagation" => {
                bind.insert("Propagation".into(), v.into());
            }
            "volume-nocopy" => {
                vol.insert("NoCopy".into(), true.into());
            }
            "tmpfs-size" => {
                tmpfs.insert("SizeBytes".into(), parse_bytes(v)?.into());
            }
            "tmpfs-mode" => {
                let mode = u32::from_str_radix(v, 8)
                    .with_context(|| format!("invalid tmpfs-mode in --mount {spec}: {v}"))?;
                tmpfs.insert("Mode".into(), mode.into());
            }
            other => bail!("unexpected key '{other}' in '{spec}'"),
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&kind.as_str()) {
        bail!("invalid mount type {kind:?} in --mount {spec}");
    }
    if !m.contains_key("Target") {
        bail!("target is required in --mount {spec}");
    }
    m.insert("Type".into(), kind.clone().into());
    match kind.as_str() {
        "bind" if !bind.is_empty() => {
            m.insert("BindOptions".into(), bind.into());
        }
        "volume" if !vol.is_empty() => {
            m.insert("VolumeOptions".into(), vol.into());
        }
        "tmpfs" if !tmpfs.is_empty() => {
            m.insert("TmpfsOptions".into(), tmpfs.into());
        }
        _ => {}
    }
    Ok(Value::Object(m))
}

fn parse_ulimit(s: &str) -> Result<Value> {
    let (name, vals) = s
        .split_once('=')
        .with_context(|| format!("invalid ulimit argument: {s}"))?;
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let n = |x: &str| {
        x.parse::<i64>()
            .with_context(|| format!("invalid ulimit value {x:?} in {s}"))
    };
    let (soft, hard) = (n(soft)?, n(hard)?);
    if soft > hard && hard >= 0 {
        bail!("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok(json!({"Name": name, "Soft": soft, "Hard": hard}))
}

fn parse_restart(s: &str) -> Result<Value> {
    let (name, count) = s.split_once(':').unwrap_or((s, ""));
    if !["no", "always", "unless-stopped", "on-failure"].contains(&name) {
        bail!("invalid restart policy {name:?}");
    }
    let count = if count.is_empty() {
        0
    } else {
        if name != "on-failure" {
            bail!("maximum retry count cannot be used with restart policy '{name}'");
        }
        count
            .parse::<i64>()
            .with_context(|| format!("invalid maximum retry count in --restart {s}"))?
    };
    Ok(json!({"Name": name, "MaximumRetryCount": count}))
}

/// Docker's CLI sends capabilities as `CAP_X` (upper case, prefixed, no
/// duplicates); `ALL` stays as it is.
fn normalize_caps(caps: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in caps {
        let c = c.trim().to_ascii_uppercase();
        let c = if c == "ALL" || c.starts_with("CAP_") {
            c
        } else {
            format!("CAP_{c}")
        };
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

fn key_value(s: &str) -> (String, String) {
    let (k, v) = s.split_once('=').unwrap_or((s, ""));
    (k.to_string(), v.to_string())
}

impl CreateArgs {
    pub fn image(&self) -> &str {
        &self.args[0]
    }

    pub fn command(&self) -> &[String] {
        &self.args[1..]
    }

    /// The create body; `attach` says whether the client will attach
    /// (run without -d), `console` the terminal size for -t.
    pub fn body(&self, attach: bool, console: Option<(u16, u16)>) -> Result<Value> {
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(read_env_file(f)?);
        }
        env.extend(self.env.iter().filter_map(|e| env_entry(e)));
        let labels: BTreeMap<String, String> = self.label.iter().map(|l| key_value(l)).collect();
        let mut cfg = json!({
            "Image": self.image(),
            "Tty": self.tty,
            "OpenStdin": self.interactive,
            "StdinOnce": self.interactive && attach,
            "AttachStdin": self.interactive && attach,
            "AttachStdout": attach,
            "AttachStderr": attach,
            "Env": env,
            "Labels": labels,
        });
        if !self.command().is_empty() {
            cfg["Cmd"] = json!(self.command());
        }
        if let Some(e) = &self.entrypoint {
            // An empty --entrypoint resets the image's.
            cfg["Entrypoint"] = json!([e]);
        }
        for (k, v) in [
            ("Hostname", &self.hostname),
            ("User", &self.user),
            ("WorkingDir", &self.workdir),
            ("StopSignal", &self.stop_signal),
        ] {
            if let Some(v) = v {
                cfg[k] = json!(v);
            }
        }
        if let Some(t) = self.stop_timeout {
            cfg["StopTimeout"] = json!(t);
        }
        let mut hc = json!({
            "Privileged": self.privileged,
            "ReadonlyRootfs": self.read_only,
            "PublishAllPorts": self.publish_all,
            "CapAdd": normalize_caps(&self.cap_add),
            "CapDrop": normalize_caps(&self.cap_drop),
            "SecurityOpt": self.security_opt,
        });
        if self.init {
            hc["Init"] = json!(true);
        }
        let mut binds = Vec::new();
        let mut anon = Map::new();
        for v in &self.volume {
            if v.starts_with('/') && !v.contains(':') {
                anon.insert(v.clone(), json!({}));
            } else if v.split(':').count() >= 2 {
                binds.push(v.clone());
            } else {
                bail!("invalid volume specification: '{v}'");
            }
        }
        if !binds.is_empty() {
            hc["Binds"] = json!(binds);
        }
        if !anon.is_empty() {
            cfg["Volumes"] = Value::Object(anon);
        }
        if !self.mount.is_empty() {
            hc["Mounts"] = Value::Array(
                self.mount
                    .iter()
                    .map(|m| parse_mount(m))
                    .collect::<Result<_>>()?,
            );
        }
        if !self.tmpfs.is_empty() {
            let t: BTreeMap<String, String> = self
                .tmpfs
                .iter()
                .map(|t| {
                    let (p, o) = t.split_once(':').unwrap_or((t, ""));
                    (p.to_string(), o.to_string())
                })
                .collect();
            hc["Tmpfs"] = json!(t);
        }
        if let Some(m) = &self.memory {
            hc["Memory"] = json!(parse_bytes(m)?);
        }
        if let Some(m) = &self.memory_swap {
            hc["MemorySwap"] = json!(if m == "-1" { -1 } else { parse_bytes(m)? });
        }
        if let Some(c) = self.cpus {
            if c < 0.0 {
                bail!("invalid value for --cpus: {c}");
            }
            hc["NanoCpus"] = json!((c * 1e9) as i64);
        }
        if let Some(s) = self.cpu_shares {
            hc["CpuShares"] = json!(s);
        }
        if let Some(s) = &self.cpuset_cpus {
            hc["CpusetCpus"] = json!(s);
        }
        if let Some(p) = self.pids_limit {
            hc["PidsLimit"] = json!(p);
        }
        if !self.ulimit.is_empty() {
            hc["Ulimits"] = Value::Array(
                self.ulimit
                    .iter()
                    .map(|u| parse_ulimit(u))
                    .collect::<Result<_>>()?,
            );
        }
        if let Some(r) = &self.restart {
            hc["RestartPolicy"] = parse_restart(r)?;
        }
        if let Some(n) = &self.network {
            hc["NetworkMode"] = json!(n);
        }
        let mut exposed = Map::new();
        let mut bindings: Map<String, Value> = Map::new();
        for p in &self.publish {
            for (port, b) in parse_publish(p)? {
                exposed.insert(port.clone(), json!({}));
                bindings
                    .entry(port)
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("array")
                    .push(b);
            }
        }
        for e in &self.expose {
            for (port, _) in parse_publish(e)? {
                exposed.insert(port, json!({}));
            }
        }
        if !exposed.is_empty() {
            cfg["ExposedPorts"] = Value::Object(exposed);
        }
        if !bindings.is_empty() {
            hc["PortBindings"] = Value::Object(bindings);
        }
        if let Some((h, w)) = console.filter(|_| self.tty) {
            hc["ConsoleSize"] = json!([h, w]);
        }
        cfg["HostConfig"] = hc;
        if let Some(n) = &self.network
            && !self.network_alias.is_empty()
        {
            cfg["NetworkingConfig"] =
                json!({"EndpointsConfig": {n: {"Aliases": self.network_alias}}});
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: CreateArgs,
    }

    fn body(args: &[&str]) -> Value {
        let mut v = vec!["run"];
        v.extend(args);
        T::try_parse_from(v)
            .unwrap()
            .a
            .body(true, Some((30, 100)))
            .unwrap()
    }

    #[test]
    fn flags_to_body() {
        let b = body(&[
            "-it",
            "--name",
            "web",
            "-e",
            "A=1",
            "-h",
            "box",
            "-w",
            "/tmp",
            "-u",
            "1:2",
            "-l",
            "k=v",
            "-v",
            "/h:/c:ro",
            "-v",
            "/anon",
            "--tmpfs",
            "/run:size=1m",
            "--read-only",
            "-m",
            "64m",
            "--memory-swap",
            "-1",
            "--cpus",
            "1.5",
            "--pids-limit",
            "10",
            "--ulimit",
            "nofile=10:20",
            "--cap-add",
            "NET_ADMIN",
            "--restart",
            "on-failure:3",
            "--stop-signal",
            "SIGUSR1",
            "--stop-timeout",
            "3",
            "--init",
            "-p",
            "127.0.0.1:8080:80",
            "-p",
            "53/udp",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            "echo hi",
        ]);
        assert_eq!(b["Image"], "busybox");
        assert_eq!(b["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(b["Tty"], true);
        assert_eq!(b["OpenStdin"], true);
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["Env"], json!(["A=1"]));
        assert_eq!(b["Hostname"], "box");
        assert_eq!(b["User"], "1:2");
        assert_eq!(b["Labels"]["k"], "v");
        assert_eq!(b["Volumes"], json!({"/anon": {}}));
        assert_eq!(b["StopTimeout"], 3);
        let hc = &b["HostConfig"];
        assert_eq!(hc["Binds"], json!(["/h:/c:ro"]));
        assert_eq!(hc["Tmpfs"]["/run"], "size=1m");
        assert_eq!(hc["Memory"], 64 << 20);
        assert_eq!(hc["MemorySwap"], -1);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(hc["PidsLimit"], 10);
        assert_eq!(
            hc["Ulimits"][0],
            json!({"Name": "nofile", "Soft": 10, "Hard": 20})
        );
        assert_eq!(
            hc["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(hc["Init"], true);
        assert_eq!(hc["CapAdd"], json!(["CAP_NET_ADMIN"]));
        assert_eq!(hc["ConsoleSize"], json!([30, 100]));
        assert_eq!(
            hc["PortBindings"]["80/tcp"],
            json!([{"HostIp": "127.0.0.1", "HostPort": "8080"}])
        );
        assert_eq!(
            hc["PortBindings"]["53/udp"],
            json!([{"HostIp": "", "HostPort": ""}])
        );
        assert_eq!(b["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(hc["NetworkMode"], "none");
    }

    #[test]
    fn bad_values_name_the_problem() {
        assert!(parse_bytes("12x").unwrap_err().to_string().contains("12x"));
        assert_eq!(parse_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("512").unwrap(), 512);
        assert!(
            parse_publish("80/xyz")
                .unwrap_err()
                .to_string()
                .contains("xyz")
        );
        assert!(parse_publish("0").is_err());
        assert_eq!(parse_publish("8000-8001:80-81").unwrap().len(), 2);
        assert!(
            parse_mount("type=bind,source=/a")
                .unwrap_err()
                .to_string()
                .contains("target")
        );
        assert!(
            parse_mount("type=x,target=/a")
                .unwrap_err()
                .to_string()
                .contains("\"x\"")
        );
        assert_eq!(
            parse_mount("type=bind,src=/a,dst=/b,readonly").unwrap(),
            json!({"Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": true})
        );
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("always:3").is_err());
        assert!(parse_ulimit("nofile=20:10").is_err());
    }
}
