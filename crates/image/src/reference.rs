//! Image references (`[domain/]path[:tag][@digest]`), normalised like docker:
//! no domain means docker.io, and a one-part docker.io path means `library/…`.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, Result};

pub const DEFAULT_DOMAIN: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Reference {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// `domain/path`, the repository as stored.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short name docker prints (`busybox`, `localhost:5000/busybox`).
    /// `library/` goes only before a one-part name, as in docker's
    /// familiarizeName: `docker.io/library/a/b` shown as `a/b` would name
    /// `docker.io/a/b`.
    /// A docker.io path whose first part looks like a host (`a.b/c`) keeps
    /// its domain: shown bare, it would name the registry `a.b`.
    pub fn familiar_repository(&self) -> String {
        let first = self.path.split('/').next().unwrap_or("");
        let looks_like_host = self.path.contains('/')
            && (first.contains('.') || first.contains(':') || first == "localhost");
        if self.domain == DEFAULT_DOMAIN && !looks_like_host {
            self.path
                .strip_prefix("library/")
                .filter(|rest| !rest.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.repository()
        }
    }

    /// The tag, defaulting to `latest` when neither tag nor digest was given.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, None) => Some("latest"),
            (None, Some(_)) => None,
        }
    }

    /// What to ask the registry for: the digest if pinned, else the tag.
    pub fn registry_reference(&self) -> String {
        match &self.digest {
            Some(d) => d.to_string(),
            None => self.tag_or_latest().unwrap_or("latest").to_string(),
        }
    }

    /// `domain/path:tag` — the key under which tags are stored.
    pub fn tagged(&self) -> Option<String> {
        self.tag_or_latest()
            .map(|t| format!("{}:{}", self.repository(), t))
    }

    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }
}

/// The distribution/reference grammar's `path-component`:
/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        match &b[sep..i] {
            b"." | b"_" | b"__" => {}
            s if s.iter().all(|&x| x == b'-') => {}
            _ => return false,
        }
    }
}

/// `host[:port]`: dot-separated `[a-zA-Z0-9]` labels with inner `-`, or a
/// bracketed IPv6 address; the port all digits.
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rfind(':') {
        Some(i) if !d[i..].contains(']') => (&d[..i], Some(&d[i + 1..])),
        _ => (d, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"._-".contains(&x))
}

/// docker's words for a name the grammar refuses.
const FORMAT: &str = "invalid reference format";
/// distribution/reference's NameTotalLengthMax.
const NAME_MAX: usize = 255;

impl FromStr for Reference {
    type Err = Error;
    /// Strict to the distribution/reference grammar, as dockerd parses
    /// names where they enter (pull, tag, build -t, commit, create).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why| Error::InvalidReference(s.to_string(), why);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|_| bad(FORMAT))?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad(FORMAT));
        }
        if name.len() > NAME_MAX {
            return Err(bad(
                "invalid reference format: repository name must not be more than 255 characters",
            ));
        }
        // docker's splitDockerDomain: a first component with `.` or `:`,
        // `localhost`, or capitals names a registry.
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if !valid_domain(&domain) {
            return Err(bad(FORMAT));
        }
        if !path.split('/').all(valid_path_component) {
            let lower = path.to_ascii_lowercase();
            return Err(
                if lower != path && lower.split('/').all(valid_path_component) {
                    bad("invalid reference format: repository name must be lowercase")
                } else {
                    bad(FORMAT)
                },
            );
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.familiar_repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        if self.tag.is_none() && self.digest.is_none() {
            write!(f, ":latest")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn familiar_names_parse_back_to_the_same_repository() {
        // Found by fuzz/ (target reference): shown as "a/b", it named
        // docker.io/a/b.
        let r: Reference = "docker.io/library/a/b:1".parse().unwrap();
        assert_eq!(r.familiar_repository(), "library/a/b");
        let back: Reference = r.to_string().parse().unwrap();
        assert_eq!(back.repository(), "docker.io/library/a/b");
        let r: Reference = "docker.io/library/a".parse().unwrap();
        assert_eq!(r.to_string(), "a:latest");
        // Also found by fuzz/: a first part like a host keeps docker.io.
        for name in ["docker.io/a.b/c", "docker.io/localhost/c"] {
            let r: Reference = name.parse().unwrap();
            assert_eq!(r.familiar_repository(), name);
            let back: Reference = r.to_string().parse().unwrap();
            assert_eq!(back.repository(), name);
        }
        let r: Reference = "docker.io/ab/c".parse().unwrap();
        assert_eq!(r.familiar_repository(), "ab/c");
    }

    #[test]
    fn normalisation() {
        let r: Reference = "busybox".parse().unwrap();
        assert_eq!(r.repository(), "docker.io/library/busybox");
        assert_eq!(r.tagged().unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(r.to_string(), "busybox:latest");
        let r: Reference = "localhost:5000/berth-test/busybox:x".parse().unwrap();
        assert_eq!(r.domain, "localhost:5000");
        assert_eq!(r.path, "berth-test/busybox");
        assert_eq!(r.tag.as_deref(), Some("x"));
        assert_eq!(r.familiar_repository(), "localhost:5000/berth-test/busybox");
        let d = Digest::sha256_of(b"x");
        let r: Reference = format!("127.0.0.1:5000/a@{d}").parse().unwrap();
        assert_eq!(r.registry_reference(), d.to_string());
        assert_eq!(r.tag_or_latest(), None);
        for bad in ["UPPER", "a//b", "x:", "x:-bad", "/x", "a@sha256:12"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_distribution_grammar_is_enforced() {
        for good in [
            "a",
            "a.b_c__d---e",
            "x/a.b_c__d---e/f-g",
            "localhost/x",
            "Registry.Example:443/x/y:T_1.2-3",
            "[::1]:5000/x",
            "127.0.0.1:5000/a/b",
            "ubuntu:22.04",
        ] {
            assert!(good.parse::<Reference>().is_ok(), "{good}");
        }
        for bad in [
            "ok:../bad:latest",
            "ok:../bad",
            "../bad",
            "a/../b",
            "a..b",
            "a___b",
            "a.-b",
            "-a",
            "a-",
            "a/.b",
            "host:port/x",
            "host:/x",
            "-host.com/x",
            "host-.com/x",
            "a.b./x",
            "[zz]:5000/x",
            "a/b:.tag",
            "a b",
            "a\nb",
            "a:b:c",
        ] {
            let e = bad.parse::<Reference>().unwrap_err();
            assert!(
                e.to_string().contains("invalid reference format"),
                "{bad}: {e}"
            );
        }
        let e = "Busybox".parse::<Reference>().unwrap_err().to_string();
        assert!(e.contains("repository name must be lowercase"), "{e}");
        let long = "a".repeat(256);
        let e = long.parse::<Reference>().unwrap_err().to_string();
        assert!(e.contains("must not be more than 255"), "{e}");
    }
}
