//! Access control: htpasswd (bcrypt) basic auth, bearer tokens (HS256 JWTs in the
//! shape of docker's token spec) from the registry's own `/token` endpoint, and
//! per-repository, per-action rules. Deny by default once auth is configured.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use hmac::{Hmac, Mac};
use hyper::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::config::{AccessRule, AuthConfig, TokenConfig};
use crate::error::{Error, Result};
use crate::upload::{now_secs, random_bytes, random_hex};

/// What a request needs: an action on a repository, or the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// Any authenticated caller, never anonymous (the `/v2/` ping).
    Login,
    Catalog,
    Repo(String, &'static str),
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Access {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    sub: String,
    aud: String,
    exp: u64,
    nbf: u64,
    iat: u64,
    jti: String,
    access: Vec<Access>,
}

/// Who is asking, once authenticated; answers later per-repository questions
/// (a mount's source repository).
#[derive(Clone, Debug)]
pub enum Identity {
    Open,
    Account(Option<String>),
    Token {
        account: Option<String>,
        access: Vec<Access>,
    },
}

pub struct Auth {
    cfg: Option<AuthConfig>,
    users: HashMap<String, String>,
    key: Vec<u8>,
    /// sha256(user:password) of credentials bcrypt already accepted: bcrypt is
    /// deliberately slow, and clients send basic auth on every request.
    verified: Mutex<HashSet<[u8; 32]>>,
}

impl Auth {
    pub fn new(cfg: Option<AuthConfig>) -> Result<Auth> {
        let mut users = HashMap::new();
        if let Some(p) = cfg.as_ref().and_then(|c| c.htpasswd.as_ref()) {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Config(format!("htpasswd {}: {e}", p.display())))?;
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                if let Some((u, h)) = line.split_once(':') {
                    users.insert(u.to_string(), h.to_string());
                }
            }
        }
        let key = match cfg.as_ref().and_then(|c| c.token.as_ref()) {
            Some(TokenConfig {
                secret: Some(s), ..
            }) => s.as_bytes().to_vec(),
            _ => random_bytes(32),
        };
        Ok(Auth {
            cfg,
            users,
            key,
            verified: Mutex::new(HashSet::new()),
        })
    }

    pub fn enabled(&self) -> bool {
        self.cfg.is_some()
    }

    fn token_cfg(&self) -> Option<&TokenConfig> {
        self.cfg.as_ref().and_then(|c| c.token.as_ref())
    }

    fn rules(&self) -> &[AccessRule] {
        self.cfg
            .as_ref()
            .map(|c| c.access.as_slice())
            .unwrap_or(&[])
    }

    pub fn can(&self, id: &Identity, repo: &str, action: &str) -> bool {
        match id {
            Identity::Open => true,
            Identity::Account(a) => self
                .rules()
                .iter()
                .any(|r| r.matches(a.as_deref(), repo, action)),
            Identity::Token { access, .. } => access.iter().any(|a| {
                a.kind == "repository"
                    && a.name == repo
                    && a.actions.iter().any(|x| x == action || x == "*")
            }),
        }
    }

    /// May this caller see `repo` in the catalog? By the rules, not the token's
    /// scopes (a catalog token names no repositories).
    pub fn may_list(&self, id: &Identity, repo: &str) -> bool {
        match id {
            Identity::Open => true,
            Identity::Account(a) | Identity::Token { account: a, .. } => self
                .rules()
                .iter()
                .any(|r| r.matches(a.as_deref(), repo, "pull")),
        }
    }

    /// Authenticates the request and checks it may do everything in `needs`.
    pub async fn authorize(
        &self,
        headers: &HeaderMap,
        realm: &str,
        needs: &[Need],
    ) -> Result<Identity> {
        if !self.enabled() {
            return Ok(Identity::Open);
        }
        let authz = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(tc) = self.token_cfg() {
            let challenge = |error: Option<&str>| {
                let mut c = format!("Bearer realm=\"{realm}\",service=\"{}\"", tc.service);
                if let Some(scope) = scope_of(needs) {
                    c.push_str(&format!(",scope=\"{scope}\""));
                }
                if let Some(e) = error {
                    c.push_str(&format!(",error=\"{e}\""));
                }
                Error::Unauthorized { challenge: c }
            };
            let Some(token) = authz.strip_prefix("Bearer ") else {
                return Err(challenge(None));
            };
            let claims = self
                .verify(token.trim(), tc)
                .ok_or_else(|| challenge(Some("invalid_token")))?;
            let account = (!claims.sub.is_empty()).then(|| claims.sub.clone());
            let id = Identity::Token {
                account,
                access: claims.access.clone(),
            };
            let ok = needs.iter().all(|n| match n {
                Need::Login => true,
                Need::Catalog => claims
                    .access
                    .iter()
                    .any(|a| a.kind == "registry" && a.name == "catalog"),
                Need::Repo(r, act) => self.can(&id, r, act),
            });
            return if ok {
                Ok(id)
            } else {
                Err(challenge(Some("insufficient_scope")))
            };
        }
        let account = self.basic(authz).await?;
        let id = Identity::Account(account.clone());
        let ok = needs.iter().all(|n| match n {
            // As distribution: `/v2/` challenges whoever sends no
            // credentials, whatever anonymous may do to repositories.
            // Clients ping it to learn how to authenticate; a 200 there
            // makes docker skip sending (and checking) credentials at all.
            Need::Login | Need::Catalog => account.is_some(),
            Need::Repo(r, act) => self.can(&id, r, act),
        });
        match (ok, &account) {
            (true, _) => Ok(id),
            (false, None) => Err(Error::Unauthorized {
                challenge: format!("Basic realm=\"{realm}\""),
            }),
            (false, Some(_)) => Err(Error::Denied),
        }
    }

    /// The account named by a Basic header (None if there is no header); wrong
    /// credentials are an error, never silently anonymous.
    async fn basic(&self, authz: &str) -> Result<Option<String>> {
        let bad = || Error::Unauthorized {
            challenge: "Basic realm=\"berth-registry\"".into(),
        };
        let Some(b64) = authz.strip_prefix("Basic ") else {
            return Ok(None);
        };
        let raw = B64.decode(b64.trim()).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (user, pass) = text.split_once(':').ok_or_else(bad)?;
        // What a client with no credentials sends when a Basic challenge
        // leaves it no choice (containers/image, so skopeo and podman):
        // no claim to be anyone, so anonymous, as with no header.
        if user.is_empty() && pass.is_empty() {
            return Ok(None);
        }
        let hash = self.users.get(user).ok_or_else(bad)?.clone();
        let key: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        if self.verified.lock().unwrap().contains(&key) {
            return Ok(Some(user.to_string()));
        }
        let pass = pass.to_string();
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if !ok {
            return Err(bad());
        }
        self.verified.lock().unwrap().insert(key);
        Ok(Some(user.to_string()))
    }

    /// `GET /token?service=&scope=...`: a JWT granting the requested scopes as
    /// far as the rules allow the (basic-authenticated or anonymous) caller.
    pub async fn issue_token(&self, headers: &HeaderMap, query: &str) -> Result<serde_json::Value> {
        let tc = self
            .token_cfg()
            .ok_or_else(|| Error::Unsupported("token auth is not configured".into()))?;
        let authz = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let account = self.basic(authz).await?;
        let id = Identity::Account(account.clone());
        let mut access = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            if k != "scope" {
                continue;
            }
            for scope in v.split(' ') {
                let mut parts = scope.splitn(3, ':');
                let (Some(kind), Some(name), Some(actions)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let granted: Vec<String> = match kind {
                    "repository" => actions
                        .split(',')
                        .filter(|a| self.can(&id, name, a))
                        .map(str::to_string)
                        .collect(),
                    "registry" if name == "catalog" && account.is_some() => vec!["*".into()],
                    _ => continue,
                };
                if !granted.is_empty() {
                    access.push(Access {
                        kind: kind.into(),
                        name: name.into(),
                        actions: granted,
                    });
                }
            }
        }
        let now = now_secs();
        let claims = Claims {
            iss: tc.issuer.clone(),
            sub: account.unwrap_or_default(),
            aud: tc.service.clone(),
            exp: now + tc.expiry_secs,
            nbf: now.saturating_sub(5),
            iat: now,
            jti: random_hex(12),
            access,
        };
        let token = self.sign(&claims);
        Ok(serde_json::json!({
            "token": token,
            "access_token": token,
            "expires_in": tc.expiry_secs,
            "issued_at": rfc3339(now),
        }))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("hmac takes any key length")
    }

    fn sign(&self, claims: &Claims) -> String {
        let header = B64URL.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = B64URL.encode(serde_json::to_vec(claims).expect("claims serialise"));
        let signing_input = format!("{header}.{body}");
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        let sig = B64URL.encode(mac.finalize().into_bytes());
        format!("{signing_input}.{sig}")
    }

    fn verify(&self, token: &str, tc: &TokenConfig) -> Option<Claims> {
        let (signing_input, sig) = token.rsplit_once('.')?;
        let (header, body) = signing_input.split_once('.')?;
        let header: serde_json::Value =
            serde_json::from_slice(&B64URL.decode(header).ok()?).ok()?;
        if header.get("alg")?.as_str()? != "HS256" {
            return None;
        }
        let mut mac = self.mac();
        mac.update(signing_input.as_bytes());
        mac.verify_slice(&B64URL.decode(sig).ok()?).ok()?;
        let claims: Claims = serde_json::from_slice(&B64URL.decode(body).ok()?).ok()?;
        let now = now_secs();
        (claims.aud == tc.service
            && claims.iss == tc.issuer
            && claims.exp > now
            && claims.nbf <= now + 5)
            .then_some(claims)
    }
}

/// The scope string a challenge asks for.
fn scope_of(needs: &[Need]) -> Option<String> {
    let mut per_repo: Vec<(String, Vec<&str>)> = Vec::new();
    let mut catalog = false;
    for n in needs {
        match n {
            Need::Login => {}
            Need::Catalog => catalog = true,
            Need::Repo(r, a) => match per_repo.iter_mut().find(|(x, _)| x == r) {
                Some((_, acts)) => acts.push(a),
                None => per_repo.push((r.clone(), vec![a])),
            },
        }
    }
    let mut scopes: Vec<String> = per_repo
        .into_iter()
        .map(|(r, mut acts)| {
            // Pushers pull too (HEAD before upload); ask for both at once.
            if acts.contains(&"push") && !acts.contains(&"pull") {
                acts.insert(0, "pull");
            }
            format!("repository:{r}:{}", acts.join(","))
        })
        .collect();
    if catalog {
        scopes.push("registry:catalog:*".into());
    }
    (!scopes.is_empty()).then(|| scopes.join(" "))
}

/// Seconds since the epoch as RFC 3339 UTC.
fn rfc3339(secs: u64) -> String {
    berth_image::history::rfc3339(secs as i64, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn token_roundtrip_and_tamper() {
        let cfg = AuthConfig {
            token: Some(TokenConfig {
                service: "s".into(),
                issuer: "s".into(),
                expiry_secs: 60,
                ..Default::default()
            }),
            ..Default::default()
        };
        let a = Auth::new(Some(cfg)).unwrap();
        let tc = a.token_cfg().unwrap().clone();
        let c = Claims {
            iss: "s".into(),
            sub: "u".into(),
            aud: "s".into(),
            exp: now_secs() + 60,
            nbf: now_secs(),
            iat: now_secs(),
            jti: "j".into(),
            access: vec![],
        };
        let t = a.sign(&c);
        assert!(a.verify(&t, &tc).is_some());
        let mut forged = t.clone();
        forged.pop();
        forged.push(if t.ends_with('A') { 'B' } else { 'A' });
        assert!(a.verify(&forged, &tc).is_none());
        let other = Auth::new(a.cfg.clone()).unwrap();
        assert!(other.verify(&t, &tc).is_none(), "different key");
    }

    #[test]
    fn scopes() {
        let s = scope_of(&[Need::Repo("a".into(), "push")]).unwrap();
        assert_eq!(s, "repository:a:pull,push");
        assert_eq!(scope_of(&[Need::Login]), None);
    }
}
