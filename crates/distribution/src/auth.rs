//! Registry authentication: `www-authenticate` challenges, bearer tokens and
//! credentials from a docker-style `config.json`, including credential
//! helpers (`credsStore`, `credHelpers`: the `docker-credential-<name>`
//! programs that keep secrets in a keychain instead of the file).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        format!(
            "Basic {}",
            B64.encode(format!("{}:{}", self.username, self.password))
        )
    }
}

/// A parsed `www-authenticate` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let (scheme, rest) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    Some(Challenge::Bearer {
        realm: params.get("realm")?.clone(),
        service: params.get("service").cloned(),
        scope: params.get("scope").cloned(),
    })
}

/// `k="v", k2=v2` with commas allowed inside quotes (scopes contain them).
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let key = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            match q.find('"') {
                Some(end) => (&q[..end], &q[end + 1..]),
                None => (q, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    /// Helper for every registry not named in `credHelpers`.
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
    /// Helper per registry host.
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
}

impl DockerConfig {
    /// The credential helper that holds `host`'s secret, if any.
    fn helper_for(&self, host: &str) -> Option<&str> {
        let key = config_key(host);
        self.cred_helpers
            .get(host)
            .or_else(|| self.cred_helpers.get(&key))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }
}

/// Username a credential helper returns for an identity (refresh) token
/// instead of a password, as docker's helpers do.
pub const IDENTITY_TOKEN_USER: &str = "<token>";

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
}

/// Credentials for `host` from `$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`; failures of a credential helper count as none
/// (use [`lookup_credentials`] to see them).
pub fn credentials_for(host: &str) -> Option<Credentials> {
    lookup_credentials(host).ok().flatten()
}

/// Like [`credentials_for`] but a broken config.json or a failing credential
/// helper is an error that names the file or the helper.
pub fn lookup_credentials(host: &str) -> std::io::Result<Option<Credentials>> {
    let Some(cfg) = read_config()? else {
        return Ok(None);
    };
    if let Some(helper) = cfg.helper_for(host) {
        return helper_get(helper, &config_key(host));
    }
    Ok(from_auths(&cfg, host))
}

/// config.json, if there is one; errors name the file.
fn read_config() -> std::io::Result<Option<DockerConfig>> {
    let Some(path) = docker_config_path() else {
        return Ok(None);
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.display()),
            ));
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))
}

/// Credentials stored inline in a config.json (helpers not consulted).
pub fn credentials_from(config_json: &[u8], host: &str) -> Option<Credentials> {
    let cfg: DockerConfig = serde_json::from_slice(config_json).ok()?;
    from_auths(&cfg, host)
}

fn from_auths(cfg: &DockerConfig, host: &str) -> Option<Credentials> {
    let keys: Vec<String> = if host == "docker.io" || host == "registry-1.docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "index.docker.io".into(),
            "docker.io".into(),
        ]
    } else {
        vec![
            host.into(),
            format!("https://{host}"),
            format!("http://{host}"),
        ]
    };
    let entry = keys
        .iter()
        .find_map(|k| cfg.auths.get(k).or_else(|| cfg.auths.get(&format!("{k}/"))))?;
    entry.credentials()
}

impl AuthEntry {
    fn credentials(&self) -> Option<Credentials> {
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            return Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            });
        }
        decode_auth(self.auth.as_ref()?)
    }
}

/// An `auth` value: base64 of `user:password`.
pub fn decode_auth(auth: &str) -> Option<Credentials> {
    let decoded = B64.decode(auth.trim()).ok()?;
    let (u, p) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
    Some(Credentials {
        username: u.into(),
        password: p.into(),
    })
}

/// Credentials by registry, as a build request carries them
/// (`X-Registry-Config`), keyed as docker's config.json keys them.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AuthMap(BTreeMap<String, Credentials>);

impl std::fmt::Debug for AuthMap {
    /// Registries only: the map travels in build options that get logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

impl AuthMap {
    pub fn insert(&mut self, key: impl Into<String>, c: Credentials) {
        self.0.insert(key.into(), c);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Credentials)> {
        self.0.iter()
    }

    /// The entry for a reference's registry (`docker.io` or
    /// `host[:port]`), chosen as dockerd's `ResolveAuthConfig` does: the
    /// exact key first (Docker Hub's is `https://index.docker.io/v1/` and
    /// it has no other), then any key whose host part is the registry.
    pub fn for_registry(&self, domain: &str) -> Option<&Credentials> {
        let key = config_key(domain);
        if let Some(c) = self.0.get(&key) {
            return Some(c);
        }
        if key == config_key("docker.io") {
            return None;
        }
        self.0.iter().find_map(|(k, c)| {
            let host = k
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("");
            (host == key).then_some(c)
        })
    }
}

/// Everything config.json holds (its inline `auths`, or every entry of
/// the `credsStore` helper's `list`, then the `credHelpers` registries),
/// as docker's CLI sends it with a build. A helper failing for one
/// registry costs that entry only; the reasons come back beside the map.
pub fn all_credentials() -> std::io::Result<(AuthMap, Vec<String>)> {
    let Some(cfg) = read_config()? else {
        return Ok((AuthMap::default(), Vec::new()));
    };
    let mut map = AuthMap::default();
    let mut failed = Vec::new();
    let from_helper =
        |map: &mut AuthMap, failed: &mut Vec<String>, helper: &str, server: &str| match helper_get(
            helper, server,
        ) {
            Ok(Some(c)) => map.insert(server, c),
            Ok(None) => {}
            Err(e) => failed.push(e.to_string()),
        };
    match cfg.creds_store.as_deref().filter(|s| !s.is_empty()) {
        Some(store) => match run_helper(store, "list", b"")? {
            Ok(out) => {
                let servers: BTreeMap<String, String> =
                    serde_json::from_slice(&out).map_err(|e| {
                        std::io::Error::other(format!(
                            "credential helper docker-credential-{store} list answered bad JSON: {e}"
                        ))
                    })?;
                for server in servers.keys() {
                    from_helper(&mut map, &mut failed, store, server);
                }
            }
            Err(msg) => failed.push(format!(
                "credential helper docker-credential-{store} list: {msg}"
            )),
        },
        None => {
            for (k, e) in &cfg.auths {
                if let Some(c) = e.credentials() {
                    map.insert(k.clone(), c);
                }
            }
        }
    }
    for (server, helper) in &cfg.cred_helpers {
        from_helper(&mut map, &mut failed, helper, server);
    }
    Ok((map, failed))
}

/// Runs `docker-credential-<helper> <verb>` with `input` on stdin: the
/// protocol of docker's credential helpers. Returns stdout on success.
fn run_helper(helper: &str, verb: &str, input: &[u8]) -> std::io::Result<Result<Vec<u8>, String>> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(verb)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("credential helper {program} (from config.json): {e}"),
            )
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives EPIPE; its exit status
        // says what went wrong.
        let _ = stdin.write_all(input);
    }
    let out = child.wait_with_output()?;
    if out.status.success() {
        return Ok(Ok(out.stdout));
    }
    let mut msg = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if msg.is_empty() {
        msg = String::from_utf8_lossy(&out.stderr).trim().to_string();
    }
    Ok(Err(msg))
}

fn helper_get(helper: &str, server: &str) -> std::io::Result<Option<Credentials>> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    match run_helper(helper, "get", server.as_bytes())? {
        Ok(out) => {
            let a: Answer = serde_json::from_slice(&out).map_err(|e| {
                std::io::Error::other(format!(
                    "credential helper docker-credential-{helper} answered bad JSON: {e}"
                ))
            })?;
            if a.secret.is_empty() {
                return Ok(None);
            }
            Ok(Some(Credentials {
                username: a.username,
                password: a.secret,
            }))
        }
        // The helpers' agreed message for "nothing stored".
        Err(msg) if msg.contains("credentials not found") => Ok(None),
        Err(msg) => Err(std::io::Error::other(format!(
            "credential helper docker-credential-{helper} get {server}: {msg}"
        ))),
    }
}

/// The key docker uses for a registry in `auths`.
pub fn config_key(server: &str) -> String {
    match server {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".into()
        }
        s => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
    }
}

fn config_path() -> std::io::Result<PathBuf> {
    docker_config_path()
        .ok_or_else(|| std::io::Error::other("neither DOCKER_CONFIG nor HOME is set"))
}

/// Rewrites config.json through `f`, keeping every other key (credential
/// helpers, proxies...) as it was; temp + rename, mode 0600.
fn edit_config(
    f: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>) -> bool,
) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = config_path()?;
    let mut doc: serde_json::Value = match std::fs::read(&path) {
        Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(e),
    };
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| std::io::Error::other("config.json is not an object"))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}))
        .as_object_mut()
        .ok_or_else(|| std::io::Error::other("config.json auths is not an object"))?;
    if !f(auths) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&serde_json::to_vec_pretty(&doc).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

/// The helper configured for `server` in config.json, if any.
fn configured_helper(server: &str) -> std::io::Result<Option<String>> {
    let path = config_path()?;
    match std::fs::read(&path) {
        Ok(b) => {
            let cfg: DockerConfig = serde_json::from_slice(&b)
                .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
            Ok(cfg.helper_for(server).map(str::to_string))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Where [`save_credentials`] put the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    /// Inline (base64) in this config.json.
    File(PathBuf),
    /// In `docker-credential-<name>`.
    Helper(String),
}

/// Stores credentials as docker does: in the configured credential helper
/// (config.json then keeps an empty `auths` entry), else inline as
/// `auths[server].auth = base64(user:pass)`.
pub fn save_credentials(server: &str, c: &Credentials) -> std::io::Result<StoredIn> {
    let key = config_key(server);
    if let Some(helper) = configured_helper(server)? {
        let input =
            serde_json::json!({"ServerURL": key, "Username": c.username, "Secret": c.password});
        if let Err(msg) = run_helper(&helper, "store", input.to_string().as_bytes())? {
            return Err(std::io::Error::other(format!(
                "credential helper docker-credential-{helper} store: {msg}"
            )));
        }
        edit_config(|auths| {
            auths.insert(key, serde_json::json!({}));
            true
        })?;
        return Ok(StoredIn::Helper(helper));
    }
    let auth = B64.encode(format!("{}:{}", c.username, c.password));
    edit_config(|auths| {
        auths.insert(key, serde_json::json!({ "auth": auth }));
        true
    })?;
    Ok(StoredIn::File(config_path()?))
}

/// Removes stored credentials (from the helper too); false if there were none.
pub fn remove_credentials(server: &str) -> std::io::Result<bool> {
    let key = config_key(server);
    let mut erased = false;
    if let Some(helper) = configured_helper(server)? {
        match run_helper(&helper, "erase", key.as_bytes())? {
            Ok(_) => erased = true,
            Err(msg) if msg.contains("credentials not found") => {}
            Err(msg) => {
                return Err(std::io::Error::other(format!(
                    "credential helper docker-credential-{helper} erase: {msg}"
                )));
            }
        }
    }
    Ok(edit_config(|auths| auths.remove(&key).is_some())? || erased)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_logout_round_trip() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("config.json"),
            br#"{"auths":{"other:1":{"auth":"eDp5"}},"currentContext":"none"}"#,
        )
        .unwrap();
        // SAFETY: this test is the only one in the binary touching DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", t.path()) };
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        save_credentials("localhost:5000", &c).unwrap();
        assert_eq!(credentials_for("localhost:5000"), Some(c));
        let text = std::fs::read_to_string(t.path().join("config.json")).unwrap();
        assert!(
            text.contains("currentContext") && text.contains("other:1"),
            "{text}"
        );
        assert!(remove_credentials("localhost:5000").unwrap());
        assert!(!remove_credentials("localhost:5000").unwrap());
        assert_eq!(credentials_for("localhost:5000"), None);
    }

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
    }

    #[test]
    fn auth_map_matches_registries_as_dockerd() {
        let c = |u: &str| Credentials {
            username: u.into(),
            password: "p".into(),
        };
        let mut m = AuthMap::default();
        m.insert("https://index.docker.io/v1/", c("hub"));
        m.insert("https://reg.example:5000/v1/", c("legacy"));
        m.insert("other.example", c("plain"));
        assert_eq!(m.for_registry("docker.io").unwrap().username, "hub");
        assert_eq!(
            m.for_registry("reg.example:5000").unwrap().username,
            "legacy"
        );
        assert_eq!(m.for_registry("other.example").unwrap().username, "plain");
        assert!(m.for_registry("reg.example").is_none());
        assert!(m.for_registry("other.example:5000").is_none());
        // Docker Hub has exactly one key.
        let mut hub = AuthMap::default();
        hub.insert("docker.io", c("x"));
        assert!(hub.for_registry("docker.io").is_none());
    }

    #[test]
    fn docker_config() {
        let cfg = br#"{"auths":{"localhost:5000":{"auth":"dXNlcjpwYXNz"},
            "https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#;
        assert_eq!(
            credentials_from(cfg, "localhost:5000"),
            Some(Credentials {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(credentials_from(cfg, "docker.io").unwrap().username, "u");
        assert_eq!(credentials_from(cfg, "other:5000"), None);
    }
}
