//! `system` and daemon-wide commands: info, version, events, system df,
//! system prune; `system check` stays local (it verifies the store on disk
//! and must work with no daemon).

use anyhow::{Result, bail};
use berth_image::ImageStore;
use berth_image::check::Severity;
use serde_json::Value;

use crate::client::{Client, empty_body, query};
use crate::container_ops::{confirm, print_deleted, print_pruned};
use crate::containers::filters_json;
use crate::format::human_size;
use crate::tmpl;

#[derive(clap::Subcommand)]
pub enum SystemCmd {
    /// Verify the store: every blob re-hashed, layer dirs, image records,
    /// leftovers of interrupted commands. Exits 1 if the store has problems.
    /// Local: reads --root directly, no daemon needed.
    Check {
        /// Remove what the check finds (broken images lose their record).
        #[arg(long)]
        repair: bool,
    },
    /// Show docker disk usage.
    Df {
        /// Show detailed information on space usage.
        #[arg(short, long)]
        verbose: bool,
        /// Format output using a template.
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove unused data.
    Prune {
        /// Remove all unused images not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation.
        #[arg(short, long)]
        force: bool,
        /// Prune anonymous volumes.
        #[arg(long)]
        volumes: bool,
    },
    /// Display system-wide information.
    Info {
        #[arg(short, long)]
        format: Option<String>,
    },
    /// Get real time events from the server.
    Events(EventsArgs),
}

pub fn check(store: &ImageStore, repair: bool) -> Result<()> {
    let report = store.check()?;
    for f in &report.findings {
        let kind = match f.severity {
            Severity::Problem => "problem",
            Severity::Garbage => "garbage",
        };
        println!("{kind}: {}", f.what);
    }
    println!(
        "checked {} images, {} blobs, {} layers: {} problems, {} garbage{}",
        report.images_checked,
        report.blobs_checked,
        report.layers_checked,
        report.problems(),
        report.findings.len() - report.problems(),
        if report.busy > 0 {
            format!(" ({} in progress, left alone)", report.busy)
        } else {
            String::new()
        }
    );
    if repair && !report.findings.is_empty() {
        let n = store.repair(&report)?;
        let after = store.check()?;
        println!(
            "repaired {n} entries; now {} problems, {} garbage",
            after.problems(),
            after.findings.len() - after.problems()
        );
        if after.problems() > 0 {
            bail!("the store still has problems");
        }
        return Ok(());
    }
    if report.problems() > 0 {
        bail!("the store has problems; `berth system check --repair` removes them");
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp.
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp.
    #[arg(long)]
    until: Option<String>,
    /// Filter output based on conditions provided.
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format the output using the given Go template.
    #[arg(long)]
    format: Option<String>,
}

/// One event as `docker events` prints it.
pub fn event_line(e: &Value) -> String {
    let nanos = e["timeNano"]
        .as_i64()
        .unwrap_or(e["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let secs = nanos.div_euclid(1_000_000_000);
    let frac = nanos.rem_euclid(1_000_000_000);
    let when = berth_image::history::rfc3339(secs, None);
    let when = format!("{}.{frac:09}Z", when.trim_end_matches('Z'));
    let kind = e["Type"].as_str().unwrap_or("");
    let action = e["Action"]
        .as_str()
        .unwrap_or(e["status"].as_str().unwrap_or(""));
    let id = e["Actor"]["ID"]
        .as_str()
        .unwrap_or(e["id"].as_str().unwrap_or(""));
    let mut attrs: Vec<(String, String)> = e["Actor"]["Attributes"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    attrs.sort();
    let attrs: Vec<String> = attrs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    if attrs.is_empty() {
        format!("{when} {kind} {action} {id}")
    } else {
        format!("{when} {kind} {action} {id} ({})", attrs.join(", "))
    }
}

pub fn events(c: &Client, a: EventsArgs) -> Result<()> {
    let t = |s: &Option<String>| -> Result<String> {
        s.as_deref()
            .map(crate::containers::time_arg)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let path = format!(
        "/events{}",
        query(&[
            ("since", t(&a.since)?),
            ("until", t(&a.until)?),
            ("filters", filters_json(&a.filter)?),
        ])
    );
    let format = match a.format.as_deref() {
        Some("json") => Some(tmpl::Template::parse("{{json .}}")?),
        Some(f) => Some(tmpl::Template::parse(f)?),
        None => None,
    };
    let resp = c.request(hyper::Method::GET, &path, vec![], empty_body())?;
    let mut line = Vec::new();
    let mut failure = None;
    c.each_chunk(resp, |d| {
        line.extend_from_slice(d);
        while let Some(nl) = line.iter().position(|b| *b == b'\n') {
            let l: Vec<u8> = line.drain(..=nl).collect();
            let Ok(e) = serde_json::from_slice::<Value>(&l) else {
                continue;
            };
            let text = match &format {
                Some(t) => match t.render(&e) {
                    Ok(s) => s,
                    Err(err) => {
                        failure = Some(err);
                        return Ok(false);
                    }
                },
                None => event_line(&e),
            };
            println!("{text}");
        }
        Ok(true)
    })?;
    if let Some(e) = failure {
        return Err(e.into());
    }
    Ok(())
}

pub fn df(c: &Client, verbose: bool, format: Option<String>) -> Result<()> {
    let v: Value = c.get("/system/df")?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes, cache) = (
        arr("Images"),
        arr("Containers"),
        arr("Volumes"),
        arr("BuildCache"),
    );
    let u = |x: &Value, k: &str| x[k].as_i64().unwrap_or(0).max(0) as u64;
    let pct = |part: u64, whole: u64| (part * 100).checked_div(whole).unwrap_or(0);
    let mut rows = Vec::new();
    // Images: shared layers counted once (LayersSize), reclaimable = what
    // unused images hold alone.
    let img_size = v["LayersSize"]
        .as_u64()
        .unwrap_or_else(|| images.iter().map(|i| u(i, "Size")).sum());
    let img_active = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) > 0)
        .count();
    let img_reclaim: u64 = images
        .iter()
        .filter(|i| i["Containers"].as_i64().unwrap_or(0) <= 0)
        .map(|i| u(i, "Size").saturating_sub(u(i, "SharedSize")))
        .sum();
    rows.push(serde_json::json!({"Type": "Images", "TotalCount": images.len(), "Active": img_active,
        "Size": human_size(img_size), "Reclaimable": format!("{} ({}%)", human_size(img_reclaim), pct(img_reclaim, img_size))}));
    let c_size: u64 = containers.iter().map(|c| u(c, "SizeRw")).sum();
    let c_active = containers
        .iter()
        .filter(|c| c["State"] == "running")
        .count();
    let c_reclaim: u64 = containers
        .iter()
        .filter(|c| c["State"] != "running")
        .map(|c| u(c, "SizeRw"))
        .sum();
    rows.push(serde_json::json!({"Type": "Containers", "TotalCount": containers.len(), "Active": c_active,
        "Size": human_size(c_size), "Reclaimable": format!("{} ({}%)", human_size(c_reclaim), pct(c_reclaim, c_size))}));
    let vsize = |x: &Value| x["UsageData"]["Size"].as_i64().unwrap_or(0).max(0) as u64;
    let vref = |x: &Value| x["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    let v_size: u64 = volumes.iter().map(vsize).sum();
    let v_active = volumes.iter().filter(|x| vref(x) > 0).count();
    let v_reclaim: u64 = volumes.iter().filter(|x| vref(x) <= 0).map(vsize).sum();
    rows.push(serde_json::json!({"Type": "Local Volumes", "TotalCount": volumes.len(), "Active": v_active,
        "Size": human_size(v_size), "Reclaimable": format!("{} ({}%)", human_size(v_reclaim), pct(v_reclaim, v_size))}));
    let b_size: u64 = cache.iter().map(|b| u(b, "Size")).sum();
    let b_active = cache
        .iter()
        .filter(|b| b["InUse"].as_bool().unwrap_or(false))
        .count();
    let b_reclaim: u64 = cache
        .iter()
        .filter(|b| !b["InUse"].as_bool().unwrap_or(false))
        .map(|b| u(b, "Size"))
        .sum();
    rows.push(
        serde_json::json!({"Type": "Build Cache", "TotalCount": cache.len(), "Active": b_active,
        "Size": human_size(b_size), "Reclaimable": human_size(b_reclaim)}),
    );
    let format = format.unwrap_or_else(|| {
        "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}".into()
    });
    let header = |f: &str| match f {
        "TotalCount" => "TOTAL".to_string(),
        o => o.to_uppercase(),
    };
    print!("{}", tmpl::render_list(&format, &rows, &header)?);
    if verbose {
        println!("\nImages space usage:\n");
        let rows: Vec<Value> = crate::images::image_rows(&images, false);
        print!(
            "{}",
            tmpl::render_list(
                "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}",
                &rows,
                &|f: &str| match f {
                    "ID" => "IMAGE ID".into(),
                    "CreatedSince" => "CREATED".into(),
                    o => o.to_uppercase(),
                }
            )?
        );
        println!("\nContainers space usage:\n");
        let mut t = vec![
            [
                "CONTAINER ID",
                "IMAGE",
                "SIZE",
                "CREATED",
                "STATUS",
                "NAMES",
            ]
            .map(String::from)
            .to_vec(),
        ];
        for c in &containers {
            t.push(vec![
                crate::format::short_id(c["Id"].as_str().unwrap_or("")),
                c["Image"].as_str().unwrap_or("").into(),
                human_size(u(c, "SizeRw")),
                crate::format::ago(c["Created"].as_i64().unwrap_or(0)),
                c["Status"].as_str().unwrap_or("").into(),
                c["Names"][0]
                    .as_str()
                    .unwrap_or("")
                    .trim_start_matches('/')
                    .into(),
            ]);
        }
        print!("{}", crate::format::table(t));
        println!("\nLocal Volumes space usage:\n");
        let mut t = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
        for x in &volumes {
            t.push(vec![
                x["Name"].as_str().unwrap_or("").into(),
                vref(x).to_string(),
                human_size(vsize(x)),
            ]);
        }
        print!("{}", crate::format::table(t));
    }
    Ok(())
}

pub fn prune(c: &Client, all: bool, force: bool, volumes: bool) -> Result<()> {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - unused build cache\n"
    });
    if !confirm(warning.trim_end(), force)? {
        return Ok(());
    }
    let v: Value = c.post("/containers/prune", None)?;
    print_pruned(&v, "ContainersDeleted", "Deleted Containers:");
    let v: Value = c.post("/networks/prune", None)?;
    print_deleted(&v, "NetworksDeleted", "Deleted Networks:");
    if volumes {
        let v: Value = c.post("/volumes/prune", None)?;
        print_pruned(&v, "VolumesDeleted", "Deleted Volumes:");
    }
    crate::images::prune_images(c, all, &[])?;
    Ok(())
}

pub fn info(c: &Client, format: Option<String>) -> Result<()> {
    let v: Value = c.get("/info")?;
    if let Some(f) = format {
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        println!("{}", tmpl::Template::parse(&f)?.render(&v)?);
        return Ok(());
    }
    let s = |k: &str| tmpl::display(&v[k]);
    println!(
        "Client:\n Version:    {}\n Context:    default\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("Server:");
    println!(" Containers: {}", s("Containers"));
    println!("  Running: {}", s("ContainersRunning"));
    println!("  Paused: {}", s("ContainersPaused"));
    println!("  Stopped: {}", s("ContainersStopped"));
    println!(" Images: {}", s("Images"));
    println!(" Server Version: {}", s("ServerVersion"));
    println!(" Storage Driver: {}", s("Driver"));
    println!(" Logging Driver: {}", s("LoggingDriver"));
    println!(" Cgroup Driver: {}", s("CgroupDriver"));
    println!(" Cgroup Version: {}", s("CgroupVersion"));
    let plugins = &v["Plugins"];
    println!(" Plugins:");
    for k in ["Volume", "Network", "Log"] {
        let list: Vec<String> = plugins[k]
            .as_array()
            .into_iter()
            .flatten()
            .map(tmpl::display)
            .collect();
        println!("  {k}: {}", list.join(" "));
    }
    let runtimes: Vec<String> = v["Runtimes"]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    println!(" Runtimes: {}", runtimes.join(" "));
    println!(" Default Runtime: {}", s("DefaultRuntime"));
    println!(" Live Restore Enabled: {}", s("LiveRestoreEnabled"));
    println!(" Kernel Version: {}", s("KernelVersion"));
    println!(" Operating System: {}", s("OperatingSystem"));
    println!(" OSType: {}", s("OSType"));
    println!(" Architecture: {}", s("Architecture"));
    println!(" CPUs: {}", s("NCPU"));
    println!(
        " Total Memory: {}",
        crate::container_ops::bin_size(v["MemTotal"].as_f64().unwrap_or(0.0))
    );
    println!(" Name: {}", s("Name"));
    println!(" ID: {}", s("ID"));
    println!(" Docker Root Dir: {}", s("DockerRootDir"));
    println!(" Debug Mode: {}", s("Debug"));
    for w in v["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", tmpl::display(w));
    }
    Ok(())
}

pub fn version(c: &Client, format: Option<String>) -> Result<()> {
    let client = serde_json::json!({
        "Version": env!("CARGO_PKG_VERSION"), "ApiVersion": crate::client::API_VERSION,
        "Os": "linux", "Arch": std::env::consts::ARCH,
    });
    let server: Result<Value, _> = c.get("/version");
    if let Some(f) = format {
        let f = if f == "json" {
            "{{json .}}".to_string()
        } else {
            f
        };
        let server = server.as_ref().map_or(Value::Null, Clone::clone);
        println!(
            "{}",
            tmpl::Template::parse(&f)?
                .render(&serde_json::json!({"Client": client, "Server": server}))?
        );
        return Ok(());
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", crate::client::API_VERSION);
    println!(" OS/Arch:           linux/{}", crate::format::go_arch());
    println!(" Context:           default");
    let server = server?;
    let s = |k: &str| tmpl::display(&server[k]);
    println!(
        "\nServer: {}",
        server["Platform"]["Name"].as_str().unwrap_or("Berth")
    );
    println!(" Engine:");
    println!("  Version:          {}", s("Version"));
    println!(
        "  API version:      {} (minimum version {})",
        s("ApiVersion"),
        s("MinAPIVersion")
    );
    println!("  OS/Arch:          {}/{}", s("Os"), s("Arch"));
    println!("  Kernel Version:   {}", s("KernelVersion"));
    Ok(())
}

/// `system check` runs on the store directly.
pub fn check_local(root: &std::path::Path, repair: bool) -> Result<()> {
    let store = ImageStore::open(root)
        .map_err(|e| anyhow::anyhow!("opening store {}: {e}", root.display()))?;
    check(&store, repair)
}
