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
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix("library/")
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

fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"._-".contains(&x))
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why| Error::InvalidReference(s.to_string(), why);
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>()?)),
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
            return Err(bad("invalid tag"));
        }
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        if domain.is_empty()
            || !domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        {
            return Err(bad("invalid registry host"));
        }
        if !path.split('/').all(valid_path_component) {
            return Err(bad(
                "invalid repository name (lowercase letters, digits, . _ -)",
            ));
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
}
