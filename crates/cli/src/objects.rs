//! `volume …`, `network …` and the generic `inspect`.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use hyper::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::client::{Client, ClientError, query, seg};
use crate::container_ops::{confirm, print_deleted, print_pruned};
use crate::containers::{each, filters_json};
use crate::format::short_id;
use crate::{Exit, tmpl};

#[derive(clap::Subcommand)]
pub enum VolumeCmd {
    /// Create a volume.
    Create {
        name: Option<String>,
        /// Specify volume driver name.
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set driver specific options.
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Set metadata for a volume.
        #[arg(long = "label")]
        label: Vec<String>,
    },
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(short, long)]
        filter: Vec<String>,
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on one or more volumes.
    Inspect(InspectArgs),
    /// Remove one or more volumes.
    #[command(alias = "remove")]
    Rm {
        /// Force the removal of one or more volumes.
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused local volumes.
    Prune {
        /// Remove all unused volumes, not just anonymous ones.
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        #[arg(long)]
        filter: Vec<String>,
    },
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Format output using a Go template.
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes (containers).
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of this type (container, image, volume, network).
    #[arg(long = "type")]
    pub kind: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

fn kv_map(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| {
            let (k, v) = s.split_once('=').unwrap_or((s, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

pub fn volume(c: &Client, cmd: VolumeCmd) -> Result<()> {
    match cmd {
        VolumeCmd::Create {
            name,
            driver,
            opt,
            label,
        } => {
            let v: Value = c.post(
                "/volumes/create",
                Some(&json!({"Name": name.unwrap_or_default(), "Driver": driver,
                             "DriverOpts": kv_map(&opt), "Labels": kv_map(&label)})),
            )?;
            println!("{}", v["Name"].as_str().unwrap_or(""));
            Ok(())
        }
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let v: Value = c.get(&format!(
                "/volumes{}",
                query(&[("filters", filters_json(&filter)?)])
            ))?;
            let mut vols = v["Volumes"].as_array().cloned().unwrap_or_default();
            vols.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            if quiet {
                for x in &vols {
                    println!("{}", x["Name"].as_str().unwrap_or(""));
                }
                return Ok(());
            }
            let format = list_format(format, "table {{.Driver}}\t{{.Name}}");
            let header = |f: &str| match f {
                "Name" => "VOLUME NAME".to_string(),
                o => o.to_uppercase(),
            };
            print!("{}", tmpl::render_list(&format, &vols, &header)?);
            for w in v["Warnings"].as_array().into_iter().flatten() {
                eprintln!("{}", tmpl::display(w));
            }
            Ok(())
        }
        VolumeCmd::Inspect(a) => inspect_kind(c, a, Some("volume")),
        VolumeCmd::Rm { force, names } => each(&names, |n| {
            Ok(c.call(
                Method::DELETE,
                &format!(
                    "/volumes/{}{}",
                    seg(n),
                    query(&[("force", if force { "1" } else { "" }.into())])
                ),
                None,
            )?)
        }),
        VolumeCmd::Prune { all, force, filter } => {
            let warning = if all {
                "WARNING! This will remove all local volumes not used by at least one container."
            } else {
                "WARNING! This will remove anonymous local volumes not used by at least one container."
            };
            if !confirm(warning, force)? {
                return Ok(());
            }
            let mut filter = filter;
            if all {
                filter.push("all=true".into());
            }
            let v: Value = c.post(
                &format!(
                    "/volumes/prune{}",
                    query(&[("filters", filters_json(&filter)?)])
                ),
                None,
            )?;
            print_pruned(&v, "VolumesDeleted", "Deleted Volumes:");
            Ok(())
        }
    }
}

#[derive(clap::Subcommand)]
pub enum NetworkCmd {
    /// Create a network.
    Create {
        name: String,
        /// Driver to manage the Network.
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Subnet in CIDR format that represents a network segment.
        #[arg(long)]
        subnet: Vec<String>,
        /// IPv4 or IPv6 Gateway for the master subnet.
        #[arg(long)]
        gateway: Vec<String>,
        /// Allocate container ip from a sub-range.
        #[arg(long)]
        ip_range: Vec<String>,
        /// Restrict external access to the network.
        #[arg(long)]
        internal: bool,
        /// Enable manual container attachment.
        #[arg(long)]
        attachable: bool,
        /// Enable or disable IPv6 networking.
        #[arg(long)]
        ipv6: bool,
        /// Set driver specific options.
        #[arg(short, long = "opt")]
        opt: Vec<String>,
        /// Set metadata on a network.
        #[arg(long = "label")]
        label: Vec<String>,
    },
    /// List networks.
    #[command(alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        #[arg(short, long)]
        filter: Vec<String>,
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks.
    Inspect(InspectArgs),
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove all unused networks.
    Prune {
        #[arg(short, long)]
        force: bool,
        #[arg(long)]
        filter: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        network: String,
        container: String,
        /// Add network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// IPv4 address (e.g., "172.30.100.104").
        #[arg(long)]
        ip: Option<String>,
    },
    /// Disconnect a container from a network.
    Disconnect {
        network: String,
        container: String,
        /// Force the container to disconnect from a network.
        #[arg(short, long)]
        force: bool,
    },
}

fn list_format(format: Option<String>, default: &str) -> String {
    match format.as_deref() {
        Some("json") => "{{json .}}".into(),
        Some("table") | None => default.into(),
        Some(f) => f.into(),
    }
}

pub fn network(c: &Client, cmd: NetworkCmd) -> Result<()> {
    match cmd {
        NetworkCmd::Create {
            name,
            driver,
            subnet,
            gateway,
            ip_range,
            internal,
            attachable,
            ipv6,
            opt,
            label,
        } => {
            let mut config = Vec::new();
            for (i, s) in subnet.iter().enumerate() {
                let mut cfg = json!({"Subnet": s});
                if let Some(g) = gateway.get(i) {
                    cfg["Gateway"] = json!(g);
                }
                if let Some(r) = ip_range.get(i) {
                    cfg["IPRange"] = json!(r);
                }
                config.push(cfg);
            }
            if subnet.is_empty() && !gateway.is_empty() {
                anyhow::bail!("every ip-range or gateway must have a corresponding subnet");
            }
            let v: Value = c.post(
                "/networks/create",
                Some(&json!({
                    "Name": name, "Driver": driver, "Internal": internal,
                    "Attachable": attachable, "EnableIPv6": ipv6,
                    "IPAM": {"Driver": "default", "Config": config},
                    "Options": kv_map(&opt), "Labels": kv_map(&label),
                })),
            )?;
            if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
                eprintln!("WARNING: {w}");
            }
            println!("{}", v["Id"].as_str().unwrap_or(""));
            Ok(())
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            format,
            no_trunc,
        } => {
            let list: Vec<Value> = c.get(&format!(
                "/networks{}",
                query(&[("filters", filters_json(&filter)?)])
            ))?;
            let mut rows: Vec<Value> = list
                .iter()
                .map(|n| {
                    let id = n["Id"].as_str().unwrap_or("");
                    json!({
                        "ID": if no_trunc { id.to_string() } else { short_id(id) },
                        "Name": n["Name"], "Driver": n["Driver"], "Scope": n["Scope"],
                        "IPv6": n["EnableIPv6"], "Internal": n["Internal"],
                        "Labels": n["Labels"], "CreatedAt": n["Created"],
                    })
                })
                .collect();
            rows.sort_by(|a, b| a["Name"].as_str().cmp(&b["Name"].as_str()));
            if quiet {
                for r in &rows {
                    println!("{}", r["ID"].as_str().unwrap_or(""));
                }
                return Ok(());
            }
            let format = list_format(format, "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}");
            let header = |f: &str| match f {
                "ID" => "NETWORK ID".to_string(),
                o => o.to_uppercase(),
            };
            print!("{}", tmpl::render_list(&format, &rows, &header)?);
            Ok(())
        }
        NetworkCmd::Inspect(a) => inspect_kind(c, a, Some("network")),
        NetworkCmd::Rm { names } => {
            // docker prints the names of removed networks.
            each(&names, |n| {
                Ok(c.call(Method::DELETE, &format!("/networks/{}", seg(n)), None)?)
            })
        }
        NetworkCmd::Prune { force, filter } => {
            if !confirm(
                "WARNING! This will remove all custom networks not used by at least one container.",
                force,
            )? {
                return Ok(());
            }
            let v: Value = c.post(
                &format!(
                    "/networks/prune{}",
                    query(&[("filters", filters_json(&filter)?)])
                ),
                None,
            )?;
            print_deleted(&v, "NetworksDeleted", "Deleted Networks:");
            Ok(())
        }
        NetworkCmd::Connect {
            network,
            container,
            alias,
            ip,
        } => {
            let mut ep = json!({"Aliases": alias});
            if let Some(ip) = ip {
                ep["IPAMConfig"] = json!({"IPv4Address": ip});
            }
            c.call(
                Method::POST,
                &format!("/networks/{}/connect", seg(&network)),
                Some(&json!({"Container": container, "EndpointConfig": ep})),
            )?;
            Ok(())
        }
        NetworkCmd::Disconnect {
            network,
            container,
            force,
        } => {
            c.call(
                Method::POST,
                &format!("/networks/{}/disconnect", seg(&network)),
                Some(&json!({"Container": container, "Force": force})),
            )?;
            Ok(())
        }
    }
}

/// Docker indents inspect output by four spaces.
pub fn pretty<T: Serialize>(v: &T) -> Result<String> {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)?;
    String::from_utf8(out).context("inspect output")
}

/// Re-indents raw JSON by four spaces, keeping the daemon's key order (as
/// docker's `inspect` does; a parsed map would sort the keys). `depth` is
/// the nesting level the text starts at.
pub fn reindent(raw: &[u8], depth: usize) -> String {
    let mut out = String::with_capacity(raw.len() * 2);
    let text = String::from_utf8_lossy(raw);
    let mut level = depth;
    let mut in_str = false;
    let mut escaped = false;
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.push_str(&"    ".repeat(level));
    };
    let mut chars = text.trim().chars().peekable();
    while let Some(ch) = chars.next() {
        if in_str {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
            }
            continue;
        }
        match ch {
            '"' => {
                in_str = true;
                out.push(ch);
            }
            '{' | '[' => {
                let close = if ch == '{' { '}' } else { ']' };
                // Empty containers stay on one line.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(ch);
                    out.push(close);
                } else {
                    out.push(ch);
                    level += 1;
                    newline(&mut out, level);
                }
            }
            '}' | ']' => {
                level = level.saturating_sub(1);
                newline(&mut out, level);
                out.push(ch);
            }
            ',' => {
                out.push(ch);
                newline(&mut out, level);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// Looks `name` up as each kind in docker's order; the first that exists,
/// parsed and as the daemon's raw text.
fn lookup(
    c: &Client,
    name: &str,
    kind: Option<&str>,
    size: bool,
) -> Result<Option<(Value, bytes::Bytes, &'static str)>> {
    const KINDS: [&str; 4] = ["container", "image", "network", "volume"];
    let kinds: Vec<&'static str> = match kind {
        Some(k) => match KINDS.iter().find(|x| **x == k) {
            Some(x) => vec![*x],
            None => anyhow::bail!("\"{k}\" is not a valid value for --type"),
        },
        None => KINDS.to_vec(),
    };
    for k in kinds {
        let path = match k {
            "container" => format!(
                "/containers/{}/json{}",
                seg(name),
                if size { "?size=1" } else { "" }
            ),
            "image" => format!("/images/{}/json", seg(name)),
            "network" => format!("/networks/{}", seg(name)),
            "volume" => format!("/volumes/{}", seg(name)),
            other => anyhow::bail!("\"{other}\" is not a valid value for --type"),
        };
        match c.request(
            hyper::Method::GET,
            &path,
            vec![],
            crate::client::empty_body(),
        ) {
            Ok(resp) => {
                let raw = c.bytes(resp)?;
                let v: Value = serde_json::from_slice(&raw)
                    .with_context(|| format!("decoding the daemon's answer for {name}"))?;
                return Ok(Some((v, raw, k)));
            }
            // 404: not that kind (or, with an older daemon, no such route).
            Err(ClientError::Api { status: 404, .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(None)
}

pub fn inspect_kind(c: &Client, a: InspectArgs, kind: Option<&str>) -> Result<()> {
    let kind = kind.or(a.kind.as_deref());
    let template = a
        .format
        .as_deref()
        .filter(|f| *f != "json")
        .map(tmpl::Template::parse)
        .transpose()?;
    let mut found = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match lookup(c, n, kind, a.size)? {
            Some(v) => found.push(v),
            None => {
                let what = match kind {
                    Some("container") => "container",
                    Some("image") => "image",
                    Some("volume") => "volume",
                    Some("network") => "network",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {n}");
                failed = true;
            }
        }
    }
    match template {
        Some(t) => {
            for (v, _, _) in &found {
                println!("{}", t.render(v)?);
            }
        }
        None if found.is_empty() => println!("[]"),
        None => {
            let items = found
                .iter()
                .map(|(v, raw, found_as)| {
                    // `docker volume inspect` decodes into its struct:
                    // fields in its order (alphabetical), empty
                    // Status/UsageData left out. Everything else (the
                    // generic inspect too) shows what the daemon sent.
                    if *found_as == "volume" && kind == Some("volume") {
                        let mut v = v.clone();
                        if let Some(o) = v.as_object_mut() {
                            o.retain(|k, x| !(x.is_null() && (k == "Status" || k == "UsageData")));
                        }
                        pretty(&v).map(|p| format!("    {}", p.replace('\n', "\n    ")))
                    } else {
                        Ok(format!("    {}", reindent(raw, 1)))
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            println!("[\n{}\n]", items.join(",\n"));
        }
    }
    if failed {
        return Err(Exit::code(1).into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reindent_keeps_order() {
        let raw = br#"{"Id":"x","B":{"z":1,"a":[1,2]},"E":{},"L":[],"S":"a,b:{\"c\"}"}"#;
        assert_eq!(
            reindent(raw, 0),
            "{\n    \"Id\": \"x\",\n    \"B\": {\n        \"z\": 1,\n        \"a\": [\n            1,\n            2\n        ]\n    },\n    \"E\": {},\n    \"L\": [],\n    \"S\": \"a,b:{\\\"c\\\"}\"\n}"
        );
        // Same layout as a pretty printer for the same (sorted) input.
        let v = json!({"a": [1, {"b": null}], "c": "d"});
        assert_eq!(reindent(v.to_string().as_bytes(), 0), pretty(&v).unwrap());
    }

    #[test]
    fn four_space_json() {
        assert_eq!(
            pretty(&json!([{"A": 1}])).unwrap(),
            "[\n    {\n        \"A\": 1\n    }\n]"
        );
        assert_eq!(pretty(&Vec::<Value>::new()).unwrap(), "[]");
    }
}
