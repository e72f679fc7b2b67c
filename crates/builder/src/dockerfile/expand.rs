//! Build-time word processing as Docker does it: quotes, the escape char,
//! and `$VAR`, `${VAR}`, `${VAR:-w}`, `${VAR-w}`, `${VAR:+w}`, `${VAR+w}`,
//! `${VAR:?msg}`, `${VAR?msg}`. Unset names expand to "".

/// Looks a name up; the engine records what was asked, for the cache key.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// One word: quotes removed, variables expanded, no splitting.
pub fn expand(word: &str, esc: char, vars: Lookup) -> Result<String, String> {
    let mut p = Proc::new(word, esc, vars, false);
    p.run(None)?;
    Ok(p.finish().join(""))
}

/// A list of words split on unquoted whitespace (COPY/EXPOSE/VOLUME shell form).
pub fn expand_words(text: &str, esc: char, vars: Lookup) -> Result<Vec<String>, String> {
    let mut p = Proc::new(text, esc, vars, true);
    p.run(None)?;
    Ok(p.finish())
}

/// Heredoc bodies: only `$` expansions and `\$`, no quote processing.
pub fn expand_heredoc(text: &str, vars: Lookup) -> Result<String, String> {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'$') {
            out.push('$');
            i += 2;
        } else if chars[i] == '$' {
            let mut p = Proc {
                chars: chars.clone(),
                i: i + 1,
                esc: '\\',
                vars,
                split: false,
                words: Vec::new(),
                cur: String::new(),
                has_word: false,
            };
            p.dollar(false)?;
            out.push_str(&p.cur);
            i = p.i;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    Ok(out)
}

struct Proc<'a> {
    chars: Vec<char>,
    i: usize,
    esc: char,
    vars: Lookup<'a>,
    split: bool,
    words: Vec<String>,
    cur: String,
    /// A word was started even if empty (`""` is a word).
    has_word: bool,
}

impl<'a> Proc<'a> {
    fn new(s: &str, esc: char, vars: Lookup<'a>, split: bool) -> Self {
        Proc {
            chars: s.chars().collect(),
            i: 0,
            esc,
            vars,
            split,
            words: Vec::new(),
            cur: String::new(),
            has_word: false,
        }
    }

    fn finish(mut self) -> Vec<String> {
        self.end_word();
        if !self.split && self.words.is_empty() {
            return vec![String::new()];
        }
        self.words
    }

    fn end_word(&mut self) {
        if self.has_word || !self.cur.is_empty() {
            self.words.push(std::mem::take(&mut self.cur));
        }
        self.has_word = false;
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    /// Processes until `stop` (unquoted) or the end.
    fn run(&mut self, stop: Option<char>) -> Result<(), String> {
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                return Ok(());
            }
            self.i += 1;
            if c == self.esc {
                match self.peek() {
                    Some(n) => {
                        self.cur.push(n);
                        self.i += 1;
                    }
                    None => self.cur.push(c),
                }
            } else if c == '\'' {
                self.has_word = true;
                loop {
                    match self.peek() {
                        Some('\'') => {
                            self.i += 1;
                            break;
                        }
                        Some(n) => {
                            self.cur.push(n);
                            self.i += 1;
                        }
                        None => return Err("unexpected end of text: missing closing '".into()),
                    }
                }
            } else if c == '"' {
                self.has_word = true;
                self.double_quoted()?;
            } else if c == '$' {
                self.dollar(!self.split)?;
            } else if self.split && c.is_whitespace() {
                self.end_word();
            } else {
                self.cur.push(c);
            }
        }
        if stop.is_some() {
            return Err(format!("missing closing {}", stop.unwrap_or('}')));
        }
        Ok(())
    }

    fn double_quoted(&mut self) -> Result<(), String> {
        loop {
            let Some(c) = self.peek() else {
                return Err("unexpected end of text: missing closing \"".into());
            };
            self.i += 1;
            match c {
                '"' => return Ok(()),
                '$' => self.dollar(true)?,
                c if c == self.esc => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.esc => {
                        self.cur.push(n);
                        self.i += 1;
                    }
                    _ => self.cur.push(c),
                },
                c => self.cur.push(c),
            }
        }
    }

    /// After `$`. `quoted`: the value is not split into words.
    fn dollar(&mut self, quoted: bool) -> Result<(), String> {
        let Some(c) = self.peek() else {
            self.cur.push('$');
            return Ok(());
        };
        if c == '{' {
            self.i += 1;
            return self.braced(quoted);
        }
        if !(c.is_ascii_alphanumeric() || c == '_') {
            self.cur.push('$');
            return Ok(());
        }
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        let name: String = self.chars[start..self.i].iter().collect();
        let v = (self.vars)(&name).unwrap_or_default();
        self.push_value(&v, quoted);
        Ok(())
    }

    fn push_value(&mut self, v: &str, quoted: bool) {
        if quoted || !self.split {
            self.cur.push_str(v);
            return;
        }
        // Unquoted values split into words, as a shell would.
        let mut first = true;
        let starts_ws = v.starts_with(char::is_whitespace);
        for w in v.split_whitespace() {
            if !first || starts_ws {
                self.end_word();
            }
            self.cur.push_str(w);
            first = false;
        }
        if v.ends_with(char::is_whitespace) && !v.trim().is_empty() {
            self.end_word();
        }
    }

    fn braced(&mut self, quoted: bool) -> Result<(), String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.i += 1;
        }
        let name: String = self.chars[start..self.i].iter().collect();
        if name.is_empty() {
            return Err("bad substitution: expected a name after ${".into());
        }
        let value = (self.vars)(&name);
        let modifier = match self.peek() {
            Some('}') => {
                self.i += 1;
                self.push_value(&value.unwrap_or_default(), quoted);
                return Ok(());
            }
            Some(':') => {
                self.i += 1;
                match self.peek() {
                    Some(m @ ('-' | '+' | '?')) => {
                        self.i += 1;
                        (m, true)
                    }
                    _ => {
                        return Err(format!(
                            "bad substitution in ${{{name}:…}}: expected :-, :+ or :?"
                        ));
                    }
                }
            }
            Some(m @ ('-' | '+' | '?')) => {
                self.i += 1;
                (m, false)
            }
            _ => return Err(format!("bad substitution in ${{{name}…}}: expected }}")),
        };
        // The alternative word is itself processed (quotes, nested vars).
        let saved = std::mem::take(&mut self.cur);
        let saved_words = std::mem::take(&mut self.words);
        let saved_split = self.split;
        self.split = false;
        let r = self.run(Some('}'));
        self.split = saved_split;
        let word = std::mem::replace(&mut self.cur, saved);
        self.words = saved_words;
        r?;
        self.i += 1; // the `}`
        let (m, colon) = modifier;
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        let out = match m {
            '-' if set => value.unwrap_or_default(),
            '-' => word,
            '+' if set => word,
            '+' => String::new(),
            _ if set => value.unwrap_or_default(),
            _ => {
                let msg = if word.is_empty() {
                    "is not set".to_string()
                } else {
                    word
                };
                return Err(format!("{name}: {msg}"));
            }
        };
        self.push_value(&out, quoted);
        Ok(())
    }
}

/// Go-style durations as HEALTHCHECK takes them: `30s`, `1m30s`, `500ms`, `1h`.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[u..];
        total += num * mult;
    }
    Some(std::time::Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(n: &str) -> Option<String> {
        match n {
            "A" => Some("alpha".into()),
            "E" => Some(String::new()),
            "SP" => Some("x y".into()),
            _ => None,
        }
    }

    fn x(s: &str) -> String {
        expand(s, '\\', &env).unwrap()
    }

    #[test]
    fn forms() {
        assert_eq!(x("$A"), "alpha");
        assert_eq!(x("${A}b"), "alphab");
        assert_eq!(x("$Ab"), "");
        assert_eq!(x("${N:-def}"), "def");
        assert_eq!(x("${E:-def}"), "def");
        assert_eq!(x("${E-def}"), "");
        assert_eq!(x("${N-def}"), "def");
        assert_eq!(x("${A:+alt}"), "alt");
        assert_eq!(x("${E:+alt}"), "");
        assert_eq!(x("${E+alt}"), "alt");
        assert_eq!(x("${N+alt}"), "");
        assert_eq!(x("${N:-${A}x}"), "alphax");
        assert_eq!(x("${A:?boom}"), "alpha");
        assert_eq!(expand("${N:?boom}", '\\', &env).unwrap_err(), "N: boom");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("\"$A b\""), "alpha b");
        assert_eq!(x("\\$A"), "$A");
        assert_eq!(x("a\\ b"), "a b");
        assert_eq!(x("\"a\\\"b\""), "a\"b");
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
        assert_eq!(x("$"), "$");
        assert_eq!(x("a$-b"), "a$-b");
        assert!(expand("\"open", '\\', &env).is_err());
        assert!(expand("${A", '\\', &env).is_err());
    }

    #[test]
    fn words_split() {
        let w = expand_words("a \"b c\" $SP '' d", '\\', &env).unwrap();
        assert_eq!(w, ["a", "b c", "x", "y", "", "d"]);
        let w = expand_words("\"$SP\"", '\\', &env).unwrap();
        assert_eq!(w, ["x y"]);
    }

    #[test]
    fn heredoc() {
        assert_eq!(
            expand_heredoc("v=$A \\$A '${A}'\n", &env).unwrap(),
            "v=alpha $A 'alpha'\n"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("500ms").unwrap().as_millis(), 500);
        assert!(parse_duration("5x").is_none());
        assert!(parse_duration("").is_none());
    }
}
