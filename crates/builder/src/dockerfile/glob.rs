//! Path globs: `*` and `?` within one path segment, `[a-z]`/`[^a]` classes,
//! `\` escapes, and (for .dockerignore) `**` across segments.

/// Does `pat` match all of `path` (both `/`-separated, no leading `/`)?
pub fn matches(pat: &str, path: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let s: Vec<char> = path.chars().collect();
    m(&p, &s)
}

/// Whether `s` has glob metacharacters at all (else it's a plain path).
pub fn is_pattern(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn m(p: &[char], s: &[char]) -> bool {
    let Some(&c) = p.first() else {
        return s.is_empty();
    };
    match c {
        '*' if p.get(1) == Some(&'*') => {
            // `**/` also matches zero directories.
            let rest = if p.get(2) == Some(&'/') {
                &p[3..]
            } else {
                &p[2..]
            };
            if m(rest, s) {
                return true;
            }
            (0..s.len()).any(|i| (s[i] == '/' || p.get(2) != Some(&'/')) && m(rest, &s[i + 1..]))
                || m(&p[2..], s)
        }
        '*' => {
            for i in 0..=s.len() {
                if m(&p[1..], &s[i..]) {
                    return true;
                }
                if i < s.len() && s[i] == '/' {
                    return false;
                }
            }
            false
        }
        '?' => !s.is_empty() && s[0] != '/' && m(&p[1..], &s[1..]),
        '[' => {
            let Some((ok, used)) = class(&p[1..], s.first().copied()) else {
                return !s.is_empty() && s[0] == '[' && m(&p[1..], &s[1..]);
            };
            ok && m(&p[1 + used..], &s[1..])
        }
        '\\' if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&p[2..], &s[1..]),
        _ => !s.is_empty() && s[0] == c && m(&p[1..], &s[1..]),
    }
}

/// A `[...]` class after the `[`: (matches, chars consumed incl. `]`).
fn class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let c = c?;
    if c == '/' {
        return Some((false, p.iter().position(|&x| x == ']')? + 1));
    }
    let mut i = 0;
    let negate = matches!(p.first(), Some('^' | '!'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    loop {
        let a = *p.get(i)?;
        if a == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        let a = if a == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            a
        };
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&b| b != ']') {
            let b = p[i + 2];
            hit |= a <= c && c <= b;
            i += 3;
        } else {
            hit |= a == c;
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn globs() {
        assert!(matches("*.txt", "a.txt"));
        assert!(!matches("*.txt", "d/a.txt"));
        assert!(matches("d/*.txt", "d/a.txt"));
        assert!(matches("**/*.txt", "a.txt"));
        assert!(matches("**/*.txt", "x/y/a.txt"));
        assert!(matches("x/**", "x/y/z"));
        assert!(matches("x/**/z", "x/z"));
        assert!(matches("x/**/z", "x/a/b/z"));
        assert!(matches("?.md", "a.md"));
        assert!(!matches("?.md", "ab.md"));
        assert!(matches("[a-c]x", "bx"));
        assert!(!matches("[^a-c]x", "bx"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "a"));
        assert!(matches("[", "["));
    }
}
