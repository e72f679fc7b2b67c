//! Request paths → routes, with the spec's name, tag and digest grammars. Names
//! become directories, so validation is what keeps `..` and friends out.

use berth_image::Digest;

use crate::error::{Error, Result};

/// A validated repository name (`[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/...)*`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<RepoName> {
        if s.is_empty() || s.len() > 255 || !s.split('/').all(component_ok) {
            return Err(Error::NameInvalid(s.chars().take(300).collect()));
        }
        Ok(RepoName(s.to_string()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RepoName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One path component: alphanumerics joined by `.`, `_`, `__` or runs of `-`.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Tag grammar: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn tag_ok(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains(':') {
            return parse_digest(s).map(Reference::Digest);
        }
        if !tag_ok(s) {
            return Err(Error::ManifestInvalid(format!("invalid tag {s:?}")));
        }
        Ok(Reference::Tag(s.to_string()))
    }
}

pub fn parse_digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|_| Error::DigestInvalid(format!("invalid digest {s:?}")))
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Ping,
    Catalog,
    Token,
    Tags(RepoName),
    Manifest(RepoName, String),
    Blob(RepoName, String),
    Uploads(RepoName),
    Upload(RepoName, String),
    Referrers(RepoName, String),
}

impl Route {
    /// Parses the raw (still percent-encoded) path: an encoded `..` stays `%2e%2e`
    /// and so fails the name grammar.
    pub fn parse(path: &str) -> Result<Route> {
        if path == "/token" {
            return Ok(Route::Token);
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return if path == "/v2" {
                Ok(Route::Ping)
            } else {
                Err(Error::RouteNotFound)
            };
        };
        if rest.is_empty() {
            return Ok(Route::Ping);
        }
        if rest == "_catalog" {
            return Ok(Route::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Ok(Route::Tags(RepoName::parse(name)?));
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Ok(Route::Uploads(RepoName::parse(name)?));
        }
        if let Some(i) = rest.rfind("/blobs/uploads/") {
            let id = &rest[i + "/blobs/uploads/".len()..];
            return Ok(Route::Upload(RepoName::parse(&rest[..i])?, id.to_string()));
        }
        let (head, last) = rest.rsplit_once('/').ok_or(Error::RouteNotFound)?;
        let (name, kind) = head.rsplit_once('/').ok_or(Error::RouteNotFound)?;
        let make: fn(RepoName, String) -> Route = match kind {
            "manifests" => Route::Manifest,
            "blobs" => Route::Blob,
            "referrers" => Route::Referrers,
            _ => return Err(Error::RouteNotFound),
        };
        Ok(make(RepoName::parse(name)?, last.to_string()))
    }

    pub fn repo(&self) -> Option<&RepoName> {
        match self {
            Route::Ping | Route::Catalog | Route::Token => None,
            Route::Tags(r)
            | Route::Manifest(r, _)
            | Route::Blob(r, _)
            | Route::Uploads(r)
            | Route::Upload(r, _)
            | Route::Referrers(r, _) => Some(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["a", "library/busybox", "a-b__c.d/e--f", "x/y/z", "a0_1"] {
            assert!(RepoName::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            "a/../b",
            "%2e%2e/a",
            "A",
            "a/",
            "/a",
            "a//b",
            "a___b",
            "-a",
            "a.",
            "a_.b",
            "a/.hidden",
            "a b",
        ] {
            assert!(RepoName::parse(bad).is_err(), "{bad}");
        }
        assert!(RepoName::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn routes() {
        let n = |s: &str| RepoName::parse(s).unwrap();
        assert_eq!(Route::parse("/v2/").unwrap(), Route::Ping);
        assert_eq!(Route::parse("/v2/_catalog").unwrap(), Route::Catalog);
        assert_eq!(
            Route::parse("/v2/a/b/manifests/latest").unwrap(),
            Route::Manifest(n("a/b"), "latest".into())
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/").unwrap(),
            Route::Uploads(n("a"))
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/uploads/xyz").unwrap(),
            Route::Upload(n("a"), "xyz".into())
        );
        assert_eq!(
            Route::parse("/v2/a/b/tags/list").unwrap(),
            Route::Tags(n("a/b"))
        );
        assert!(matches!(
            Route::parse("/v2/../etc/manifests/x"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(
            Route::parse("/v2/%2e%2e/blobs/sha256:00"),
            Err(Error::NameInvalid(_))
        ));
        assert!(matches!(Route::parse("/v1/x"), Err(Error::RouteNotFound)));
        assert!(tag_ok("v1.0_rc-2") && !tag_ok(".x") && !tag_ok(&"a".repeat(129)));
    }
}
