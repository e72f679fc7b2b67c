//! `.dockerignore`: one pattern a line, `#` comments, `!` exceptions, the
//! last matching pattern wins, and a pattern that matches a directory
//! excludes everything under it.

use super::glob;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ignore {
    /// (pattern, is exception), in file order.
    pub patterns: Vec<(String, bool)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') {
                continue;
            }
            let mut p = line.trim();
            let exception = p.starts_with('!');
            if exception {
                p = p[1..].trim();
            }
            let p = clean(p);
            if p.is_empty() {
                continue;
            }
            patterns.push((p, exception));
        }
        Ignore { patterns }
    }

    /// Is the context-relative `path` excluded?
    pub fn excluded(&self, path: &str) -> bool {
        let path = clean(path);
        let mut out = false;
        for (pat, exception) in &self.patterns {
            let hit = glob::matches(pat, &path) || parents(&path).any(|d| glob::matches(pat, d));
            if hit {
                out = !exception;
            }
        }
        out
    }

    /// Could anything under dir `path` be re-included by an exception?
    /// (Then the walk must descend into an excluded directory.)
    pub fn may_include_under(&self, path: &str) -> bool {
        let path = clean(path);
        self.patterns.iter().any(|(p, ex)| {
            *ex && (p.starts_with(&format!("{path}/"))
                || p.starts_with("**")
                || !p.contains('/') && glob::is_pattern(p))
        })
    }
}

fn parents(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Docker's filepath.Clean for patterns: no leading `/` or `./`, no `.`
/// segments, `..` resolved, no trailing `/`.
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    out.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore() {
        let i = Ignore::parse(
            "# comment\n*.log\n!keep.log\nbuild/\n**/*.tmp\n/abs\n./dot\n\n  spaced  \nsecret*\n!secret-ok\n",
        );
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(!i.excluded("d/a.log"));
        assert!(i.excluded("build"));
        assert!(i.excluded("build/x/y"));
        assert!(i.excluded("x/y/z.tmp"));
        assert!(i.excluded("z.tmp"));
        assert!(i.excluded("abs"));
        assert!(i.excluded("dot/f"));
        assert!(i.excluded("spaced"));
        assert!(i.excluded("secret-key"));
        assert!(!i.excluded("secret-ok"));
        assert!(!i.excluded("# comment"));
        assert!(!i.excluded("src/main.rs"));
    }

    #[test]
    fn order_matters() {
        let i = Ignore::parse("!a.txt\n*.txt\n");
        assert!(i.excluded("a.txt"));
        let i = Ignore::parse("docs\n!docs/keep.md\n");
        assert!(i.excluded("docs/x.md"));
        assert!(!i.excluded("docs/keep.md"));
        assert!(i.may_include_under("docs"));
    }
}
