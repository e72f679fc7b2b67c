//! Image commands over the API: images, pull, push, tag, rmi, save, load,
//! import, history, login, logout, image prune.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use hyper::Method;
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::client::{Client, empty_body, query, reader_body, seg};
use crate::container_ops::confirm;
use crate::containers::filters_json;
use crate::format::{ago, ellipsis, human_size, short_id, split_repo_tag};
use crate::progress::JsonStream;
use crate::{Exit, tmpl};

/// `name` with `:latest` when it names no tag or digest.
pub fn with_default_tag(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

/// The `X-Registry-Auth` header for `image`'s registry from the stored
/// credentials (docker's config.json); `{}` when there are none.
fn registry_auth(image: &str) -> String {
    let first = image.split('/').next().unwrap_or("");
    let host = if image.contains('/')
        && (first.contains('.') || first.contains(':') || first == "localhost")
    {
        first.to_string()
    } else {
        "docker.io".to_string()
    };
    // As docker's CLI: a broken config.json or a failing helper is a
    // warning, and the request goes out anonymous.
    let v = match berth_distribution::auth::lookup_credentials(&host) {
        Ok(Some(c)) => auth_config(&c, &host),
        Ok(None) => json!({}),
        Err(e) => {
            eprintln!("WARNING: {e}");
            json!({})
        }
    };
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// Stored credentials as the Engine API's AuthConfig (an identity token
/// goes as `identitytoken`, as docker's CLI sends it).
fn auth_config(c: &berth_distribution::auth::Credentials, server: &str) -> Value {
    if c.username == berth_distribution::auth::IDENTITY_TOKEN_USER {
        json!({"identitytoken": c.password, "serveraddress": server})
    } else {
        json!({"username": c.username, "password": c.password, "serveraddress": server})
    }
}

/// The `X-Registry-Config` header of a build: every stored credential,
/// keyed by registry, as docker's CLI sends it (the daemon picks the one
/// each `FROM` needs); a helper that fails costs its registry only.
pub fn registry_config(creds: &berth_distribution::auth::AuthMap) -> String {
    let m: serde_json::Map<String, Value> = creds
        .iter()
        .map(|(k, c)| (k.clone(), auth_config(c, k)))
        .collect();
    base64::engine::general_purpose::URL_SAFE.encode(Value::Object(m).to_string())
}

/// Everything config.json holds, warning (as docker does) about helpers
/// that failed.
pub fn stored_credentials() -> Result<berth_distribution::auth::AuthMap> {
    let (map, failed) =
        berth_distribution::auth::all_credentials().context("reading stored credentials")?;
    for f in failed {
        eprintln!("WARNING: {f}");
    }
    Ok(map)
}

/// Renders a JSON progress stream; a message with an error fails the command.
fn progress(
    c: &Client,
    resp: hyper::Response<Incoming>,
    quiet: bool,
    to_stderr: bool,
) -> Result<Vec<Value>> {
    let (w, term): (Box<dyn Write>, bool) = if to_stderr {
        (Box::new(io::stderr()), io::stderr().is_terminal())
    } else {
        (Box::new(io::stdout()), io::stdout().is_terminal())
    };
    let mut s = JsonStream::new(quiet, term, w);
    c.each_chunk(resp, |d| {
        s.feed(d)?;
        Ok(true)
    })?;
    s.finish()?;
    if let Some(e) = s.error.take() {
        return Err(Exit::msg(1, e).into());
    }
    Ok(s.aux)
}

/// Pulls through the daemon, rendering its progress (to stderr when the
/// pull is part of `run`/`create`, as docker does).
pub fn pull_image(
    c: &Client,
    name: &str,
    platform: Option<&str>,
    quiet: bool,
    for_run: bool,
) -> Result<()> {
    let name = with_default_tag(name);
    let (image, tag) = if let Some((repo, digest)) = name.split_once('@') {
        (repo.to_string(), digest.to_string())
    } else {
        split_repo_tag(&name)
    };
    let path = format!(
        "/images/create{}",
        query(&[
            ("fromImage", image),
            ("tag", tag),
            ("platform", platform.unwrap_or("").to_string()),
        ])
    );
    let resp = c.request(
        Method::POST,
        &path,
        vec![("x-registry-auth", registry_auth(&name))],
        empty_body(),
    )?;
    progress(c, resp, quiet, for_run)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct PullArgs {
    name: String,
    /// Set platform if server is multi-platform capable (os/arch[/variant]).
    #[arg(long)]
    platform: Option<String>,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
    /// Download all tagged images in the repository (not supported).
    #[arg(short, long)]
    all_tags: bool,
}

pub fn pull(c: &Client, a: PullArgs) -> Result<()> {
    if a.all_tags {
        bail!("--all-tags is not supported by berth");
    }
    pull_image(c, &a.name, a.platform.as_deref(), a.quiet, false)?;
    println!("{}", full_name(&with_default_tag(&a.name)));
    Ok(())
}

/// docker prints the fully qualified name after a pull.
fn full_name(name: &str) -> String {
    let first = name.split('/').next().unwrap_or("");
    if name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost") {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    }
}

#[derive(clap::Args)]
pub struct PushArgs {
    name: String,
    /// Suppress verbose output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn push(c: &Client, a: PushArgs) -> Result<()> {
    let name = with_default_tag(&a.name);
    if name.contains('@') {
        bail!("push takes a tag, not a digest: {}", a.name);
    }
    let (repo, tag) = split_repo_tag(&name);
    let resp = c.request(
        Method::POST,
        &format!("/images/{}/push{}", seg(&repo), query(&[("tag", tag)])),
        vec![("x-registry-auth", registry_auth(&name))],
        empty_body(),
    )?;
    let aux = progress(c, resp, a.quiet, false)?;
    if a.quiet {
        println!("{name}");
    }
    let _ = aux;
    Ok(())
}

#[derive(clap::Args)]
pub struct ImagesArgs {
    /// REPOSITORY[:TAG] to list.
    reference: Option<String>,
    /// Show all images (default hides intermediate images).
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Filter output based on conditions provided (dangling=, reference=, label=).
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a template (or `table TEMPLATE`, `json`).
    #[arg(long)]
    format: Option<String>,
}

/// Glob match with `*` and `?` (filters' reference patterns).
fn glob(pat: &str, s: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pat.chars().collect(), s.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) && p[pi] != '*' {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The rows of `docker images`: one per tag (or one `<none>` row).
pub fn image_rows(list: &[Value], no_trunc: bool) -> Vec<Value> {
    let mut rows = Vec::new();
    for img in list {
        let id = img["Id"].as_str().unwrap_or("");
        let id_text = if no_trunc {
            id.to_string()
        } else {
            short_id(id)
        };
        let digests: Vec<String> = img["RepoDigests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        let mut tags: Vec<(String, String)> = img["RepoTags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|t| *t != "<none>:<none>")
            .map(split_repo_tag)
            .collect();
        if tags.is_empty() {
            // Untagged but pulled by digest: the repository is still known.
            let repo = digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map_or("<none>".to_string(), |(r, _)| r.to_string());
            tags.push((repo, "<none>".into()));
        }
        let created = img["Created"].as_i64().unwrap_or(0);
        for (repo, tag) in tags {
            let digest = digests
                .iter()
                .find_map(|d| d.strip_prefix(&format!("{repo}@")))
                .unwrap_or("<none>");
            rows.push(json!({
                "ID": id_text,
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": ago(created),
                "CreatedAt": crate::format::unix_to_text(created),
                "Size": human_size(img["Size"].as_u64().unwrap_or(0)),
                "Containers": img["Containers"].as_i64().map_or("N/A".into(), |n| if n < 0 { "N/A".into() } else { n.to_string() }),
                "Labels": img["Labels"].clone(),
            }));
        }
    }
    rows
}

fn image_header(f: &str) -> String {
    match f {
        "ID" => "IMAGE ID".into(),
        "CreatedSince" => "CREATED".into(),
        "CreatedAt" => "CREATED AT".into(),
        other => other.to_uppercase(),
    }
}

pub fn images(c: &Client, a: ImagesArgs) -> Result<()> {
    let mut filters = a.filter.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let list: Vec<Value> = c.get(&format!(
        "/images/json{}",
        query(&[
            ("all", if a.all { "1" } else { "" }.into()),
            ("filters", filters_json(&filters)?),
        ])
    ))?;
    let mut rows = image_rows(&list, a.no_trunc);
    // Applied here too, so results are right whatever the daemon filters.
    for f in &filters {
        let (k, v) = f.split_once('=').unwrap_or((f, ""));
        match k {
            "dangling" => {
                let want = matches!(v, "true" | "1");
                rows.retain(|r| (r["Tag"] == "<none>") == want);
            }
            "reference" => rows.retain(|r| {
                let repo = r["Repository"].as_str().unwrap_or("");
                let tag = r["Tag"].as_str().unwrap_or("");
                glob(v, repo) || glob(v, &format!("{repo}:{tag}"))
            }),
            "label" => rows.retain(|r| {
                let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
                r["Labels"]
                    .get(lk)
                    .is_some_and(|x| lv.is_empty() || x.as_str() == Some(lv))
            }),
            "before" | "since" | "until" => {}
            other => bail!("invalid filter '{other}'"),
        }
    }
    if a.quiet {
        let mut seen = Vec::new();
        for r in &rows {
            let id = r["ID"].as_str().unwrap_or("").to_string();
            if !seen.contains(&id) {
                println!("{id}");
                seen.push(id);
            }
        }
        return Ok(());
    }
    let format = match a.format.as_deref() {
        Some("json") => "{{json .}}".to_string(),
        Some("table") | None => {
            if a.digests {
                "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
            } else {
                "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
            }
        }
        Some(f) => f.to_string(),
    };
    print!("{}", tmpl::render_list(&format, &rows, &image_header)?);
    Ok(())
}

pub fn tag(c: &Client, source: &str, target: &str) -> Result<()> {
    let (repo, tag) = split_repo_tag(target);
    c.call(
        Method::POST,
        &format!(
            "/images/{}/tag{}",
            seg(source),
            query(&[("repo", repo), ("tag", tag)])
        ),
        None,
    )?;
    Ok(())
}

#[derive(clap::Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
}

pub fn rmi(c: &Client, a: RmiArgs) -> Result<()> {
    let q = query(&[
        ("force", if a.force { "1" } else { "" }.into()),
        ("noprune", if a.no_prune { "1" } else { "" }.into()),
    ]);
    crate::containers::each_line(&a.names, |n| {
        let v: Vec<Value> = c.get_with(Method::DELETE, &format!("/images/{}{q}", seg(n)))?;
        let lines: Vec<String> = v
            .iter()
            .flat_map(|r| {
                [
                    r["Untagged"].as_str().map(|t| format!("Untagged: {t}")),
                    r["Deleted"].as_str().map(|d| format!("Deleted: {d}")),
                ]
            })
            .flatten()
            .collect();
        Ok(lines.join("\n"))
    })
}

/// Writes a body (a tar) to `output` (temp + rename, so a failure leaves
/// no truncated file) or to stdout, which must not be a terminal.
pub fn body_to_output(
    c: &Client,
    output: Option<&Path>,
    resp: impl FnOnce() -> Result<hyper::Response<Incoming>>,
) -> Result<()> {
    match output {
        Some(path) => {
            let tmp = PathBuf::from(format!("{}.berth-tmp", path.display()));
            let mut f =
                File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let res = resp().and_then(|r| {
                c.each_chunk(r, |d| {
                    f.write_all(d)?;
                    Ok(true)
                })?;
                f.sync_all()?;
                Ok(())
            });
            if let Err(e) = res {
                let _ = fs::remove_file(&tmp);
                return Err(e);
            }
            fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let mut out = io::stdout().lock();
            if out.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            let r = resp()?;
            c.each_chunk(r, |d| {
                out.write_all(d)?;
                Ok(true)
            })?;
            out.flush()?;
        }
    }
    Ok(())
}

#[derive(clap::Args)]
pub struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub fn save(c: &Client, a: SaveArgs) -> Result<()> {
    let pairs: Vec<(&str, String)> = a.images.iter().map(|i| ("names", i.clone())).collect();
    let path = format!("/images/get{}", query(&pairs));
    body_to_output(c, a.output.as_deref(), || {
        Ok(c.request(Method::GET, &path, vec![], empty_body())?)
    })
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

pub fn load(c: &Client, a: LoadArgs) -> Result<()> {
    let body = match &a.input {
        Some(p) => reader_body(File::open(p).with_context(|| format!("open {}", p.display()))?),
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            reader_body(io::stdin())
        }
    };
    let resp = c.request(
        Method::POST,
        &format!(
            "/images/load{}",
            query(&[("quiet", if a.quiet { "1" } else { "" }.into())])
        ),
        vec![("content-type", "application/x-tar".into())],
        body,
    )?;
    // The "Loaded image" lines come as `stream` messages; always shown.
    progress(c, resp, false, false)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The tarball (plain, gzip or zstd), or - for STDIN.
    file: String,
    /// REPOSITORY[:TAG] to tag the image with.
    reference: Option<String>,
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
}

pub fn import(c: &Client, a: ImportArgs) -> Result<()> {
    let (repo, tag) = match &a.reference {
        Some(r) => {
            if r.contains('@') {
                bail!("import takes REPOSITORY[:TAG], not a digest: {r}");
            }
            split_repo_tag(r)
        }
        None => (String::new(), String::new()),
    };
    let body = if a.file == "-" {
        reader_body(io::stdin())
    } else if a.file.starts_with("http://") || a.file.starts_with("https://") {
        bail!("importing from a URL is not supported; download it and import the file");
    } else {
        reader_body(File::open(&a.file).with_context(|| format!("open {}", a.file))?)
    };
    let mut pairs = vec![
        ("fromSrc", "-".to_string()),
        ("repo", repo),
        ("tag", tag),
        ("message", a.message.clone().unwrap_or_default()),
        ("platform", a.platform.clone().unwrap_or_default()),
    ];
    for ch in &a.change {
        pairs.push(("changes", ch.clone()));
    }
    let resp = c.request(
        Method::POST,
        &format!("/images/create{}", query(&pairs)),
        vec![("content-type", "application/x-tar".into())],
        body,
    )?;
    // The answer is one status message: the new image's ID.
    progress(c, resp, false, false)?;
    Ok(())
}

#[derive(clap::Args)]
pub struct HistoryArgs {
    image: String,
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set)]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Format output using a template.
    #[arg(long)]
    format: Option<String>,
}

pub fn history(c: &Client, a: HistoryArgs) -> Result<()> {
    let list: Vec<Value> = c.get(&format!("/images/{}/history", seg(&a.image)))?;
    let rows: Vec<Value> = list
        .iter()
        .map(|h| {
            let id = h["Id"].as_str().unwrap_or("<missing>");
            let id = if id == "<missing>" || a.no_trunc {
                id.to_string()
            } else {
                short_id(id)
            };
            let created = h["Created"].as_i64().unwrap_or(0);
            let by = h["CreatedBy"].as_str().unwrap_or("").replace(['\t', '\n'], " ");
            json!({
                "ID": id,
                "CreatedSince": if a.human { ago(created) } else { crate::format::unix_to_text(created) },
                "CreatedAt": crate::format::unix_to_text(created),
                "CreatedBy": if a.no_trunc { by } else { ellipsis(&by, 45) },
                "Size": if a.human { human_size(h["Size"].as_u64().unwrap_or(0)) } else { h["Size"].as_u64().unwrap_or(0).to_string() },
                "Comment": h["Comment"].as_str().unwrap_or(""),
            })
        })
        .collect();
    if a.quiet {
        for r in rows {
            println!("{}", r["ID"].as_str().unwrap_or(""));
        }
        return Ok(());
    }
    let format = a.format.clone().unwrap_or_else(|| {
        "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
    });
    let header = |f: &str| -> String {
        match f {
            "ID" => "IMAGE".into(),
            "CreatedSince" => "CREATED".into(),
            "CreatedBy" => "CREATED BY".into(),
            "CreatedAt" => "CREATED AT".into(),
            o => o.to_uppercase(),
        }
    };
    print!("{}", tmpl::render_list(&format, &rows, &header)?);
    Ok(())
}

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>").
    #[arg(long)]
    pub filter: Vec<String>,
}

pub fn prune(c: &Client, a: PruneArgs) -> Result<()> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them."
    } else {
        "WARNING! This will remove all dangling images."
    };
    if !confirm(warning, a.force)? {
        return Ok(());
    }
    prune_images(c, a.all, &a.filter)
}

pub fn prune_images(c: &Client, all: bool, filter: &[String]) -> Result<()> {
    let mut filters = filter.to_vec();
    filters.push(format!("dangling={}", !all));
    let v: Value = c.post(
        &format!(
            "/images/prune{}",
            query(&[("filters", filters_json(&filters)?)])
        ),
        None,
    )?;
    let deleted = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Images:");
        for d in deleted {
            if let Some(t) = d["Untagged"].as_str() {
                println!("untagged: {t}");
            }
            if let Some(t) = d["Deleted"].as_str() {
                println!("deleted: {t}");
            }
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        human_size(v["SpaceReclaimed"].as_u64().unwrap_or(0))
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Registry (default docker.io).
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long)]
    password: Option<String>,
    /// Take the password from STDIN.
    #[arg(long)]
    password_stdin: bool,
}

fn server_of(s: Option<&str>) -> String {
    s.map(|s| {
        s.trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    })
    .unwrap_or_else(|| "docker.io".into())
}

fn prompt(what: &str) -> Result<String> {
    eprint!("{what}: ");
    io::stderr().flush()?;
    let mut line = String::new();
    io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `login`: the daemon checks the credentials against the registry
/// (`POST /auth`); the CLI stores them in docker's config.json.
pub fn login(c: &Client, a: LoginArgs) -> Result<()> {
    let server = server_of(a.server.as_deref());
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let username = match a.username {
        Some(u) => u,
        None => prompt("Username")?,
    };
    let password = if a.password_stdin {
        let mut s = String::new();
        io::stdin().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if let Some(p) = a.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        p
    } else {
        if !io::stdin().is_terminal() {
            bail!("cannot prompt for a password without a terminal; use --password-stdin");
        }
        prompt("Password")?
    };
    if username.is_empty() || password.is_empty() {
        bail!("username and password are required");
    }
    let v: Value = c.post(
        "/auth",
        Some(&json!({"username": username, "password": password, "serveraddress": server})),
    )?;
    let creds = berth_distribution::auth::Credentials { username, password };
    match berth_distribution::auth::save_credentials(&server, &creds)
        .context("storing credentials")?
    {
        berth_distribution::auth::StoredIn::File(path) => eprintln!(
            "WARNING! Your password will be stored unencrypted in {}.",
            path.display()
        ),
        berth_distribution::auth::StoredIn::Helper(_) => {}
    }
    println!("{}", v["Status"].as_str().unwrap_or("Login Succeeded"));
    Ok(())
}

pub fn logout(server: Option<&str>) -> Result<()> {
    let server = server_of(server);
    let key = berth_distribution::auth::config_key(&server);
    if berth_distribution::auth::remove_credentials(&server).context("updating credentials")? {
        println!("Removing login credentials for {key}");
    } else {
        println!("Not logged in to {key}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_globs() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(
            with_default_tag("localhost:5000/busybox"),
            "localhost:5000/busybox:latest"
        );
        assert_eq!(
            with_default_tag("localhost:5000/busybox:1"),
            "localhost:5000/busybox:1"
        );
        assert_eq!(with_default_tag("a@sha256:00"), "a@sha256:00");
        assert_eq!(
            full_name("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(full_name("localhost:5000/b:1"), "localhost:5000/b:1");
        assert!(glob("localhost:5000/*", "localhost:5000/busybox"));
        assert!(glob("*box", "busybox"));
        assert!(!glob("*box", "debian"));
        assert!(glob("b?sybox", "busybox"));
    }

    #[test]
    fn rows_per_tag() {
        let list = vec![
            json!({
                "Id": "sha256:0123456789abcdef", "Created": 0, "Size": 2_150_000,
                "RepoTags": ["localhost:5000/busybox:latest", "mine:1"],
                "RepoDigests": ["localhost:5000/busybox@sha256:aa"], "Labels": null
            }),
            json!({
                "Id": "sha256:fedcba9876543210", "Created": 0, "Size": 1,
                "RepoTags": [], "RepoDigests": []
            }),
        ];
        let rows = image_rows(&list, false);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0]["Repository"], "localhost:5000/busybox");
        assert_eq!(rows[0]["Digest"], "sha256:aa");
        assert_eq!(rows[1]["Tag"], "1");
        assert_eq!(rows[1]["Digest"], "<none>");
        assert_eq!(rows[2]["Repository"], "<none>");
        assert_eq!(rows[0]["ID"], "0123456789ab");
        assert_eq!(rows[0]["Size"], "2.15MB");
    }
}
