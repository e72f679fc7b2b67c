//! Registry configuration (a JSON file; command-line flags override it).
//!
//! ```json
//! {
//!   "addr": "127.0.0.1:5001",
//!   "root": "/var/lib/berth-registry",
//!   "tls": {"cert": "cert.pem", "key": "key.pem"},
//!   "auth": {
//!     "htpasswd": "/etc/berth/htpasswd",
//!     "token": {"realm": "https://reg.example/token", "service": "berth-registry",
//!               "issuer": "berth-registry", "secret": "...", "expiry_secs": 300},
//!     "access": [
//!       {"account": "alice", "repository": "team/*", "actions": ["pull", "push", "delete"]},
//!       {"account": "anonymous", "repository": "public/*", "actions": ["pull"]}
//!     ]
//!   },
//!   "gc": {"interval_secs": 3600, "grace_secs": 3600, "upload_max_age_secs": 86400},
//!   "max_manifest_bytes": 4194304
//! }
//! ```
//!
//! Without `auth` anyone may do anything. With it, every request needs an
//! access rule that allows it (deny by default): `htpasswd` alone gives basic
//! auth; `token` adds the token endpoint and bearer challenges. `/v2/` always
//! challenges a caller without credentials, as distribution does (clients
//! ping it to learn how to log in); `anonymous` rules cover repositories.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_addr")]
    pub addr: String,
    #[serde(default)]
    pub root: Option<PathBuf>,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    #[serde(default)]
    pub auth: Option<AuthConfig>,
    #[serde(default)]
    pub gc: GcConfig,
    #[serde(default = "default_max_manifest")]
    pub max_manifest_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: default_addr(),
            root: None,
            tls: None,
            auth: None,
            gc: GcConfig::default(),
            max_manifest_bytes: default_max_manifest(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    #[serde(default)]
    pub token: Option<TokenConfig>,
    #[serde(default)]
    pub access: Vec<AccessRule>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Where clients fetch tokens; default `<scheme>://<Host header>/token`.
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default = "default_service")]
    pub service: String,
    #[serde(default = "default_service")]
    pub issuer: String,
    /// HMAC key; a random one per start when absent (tokens die with the process).
    #[serde(default)]
    pub secret: Option<String>,
    #[serde(default = "default_expiry")]
    pub expiry_secs: u64,
}

/// `account`: a user name, `*` (any authenticated user) or `anonymous`.
/// `repository`: a name, `prefix/*`, or `*`. `actions`: pull, push, delete, `*`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    pub account: String,
    pub repository: String,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Online GC period; 0 disables it.
    #[serde(default)]
    pub interval_secs: u64,
    /// Unreferenced blobs younger than this are kept (a push may be about to reference them).
    #[serde(default = "default_grace")]
    pub grace_secs: u64,
    #[serde(default = "default_upload_age")]
    pub upload_max_age_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            interval_secs: 0,
            grace_secs: default_grace(),
            upload_max_age_secs: default_upload_age(),
        }
    }
}

fn default_addr() -> String {
    "127.0.0.1:5001".into()
}
fn default_max_manifest() -> u64 {
    4 << 20
}
fn default_service() -> String {
    "berth-registry".into()
}
fn default_expiry() -> u64 {
    300
}
fn default_grace() -> u64 {
    3600
}
fn default_upload_age() -> u64 {
    24 * 3600
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }
}

impl AccessRule {
    pub fn matches(&self, account: Option<&str>, repo: &str, action: &str) -> bool {
        let who = match (self.account.as_str(), account) {
            ("anonymous", None) => true,
            ("*", Some(_)) => true,
            (a, Some(u)) => a == u,
            _ => false,
        };
        let what = match self.repository.strip_suffix('*') {
            Some(prefix) => repo.starts_with(prefix),
            None => self.repository == repo,
        };
        who && what && self.actions.iter().any(|a| a == "*" || a == action)
    }
}
