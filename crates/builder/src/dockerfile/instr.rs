//! One logical line → one instruction: keyword, flags, and arguments in
//! shell, JSON (exec) or name=value form.

use super::ast::*;

pub(super) struct Logical {
    pub text: String,
    pub line: usize,
    pub col: usize,
    pub escape: char,
    pub heredocs: Vec<Heredoc>,
}

pub(super) enum Parsed {
    From(Stage),
    Other(Instruction),
}

/// (column, message): the caller adds file and line.
type PResult<T> = std::result::Result<T, (usize, String)>;

/// Only these instructions read heredoc bodies.
pub(super) fn takes_heredocs(text: &str) -> bool {
    let kw = text.split_whitespace().next().unwrap_or("");
    ["RUN", "COPY", "ADD"]
        .iter()
        .any(|k| k.eq_ignore_ascii_case(kw))
}

/// `<<EOF`, `<<-EOF`, `<<'EOF'`, `<<"EOF"` markers: (name, quoted, strip tabs).
pub(super) fn heredoc_marks(text: &str) -> Vec<(String, bool, bool)> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < b.len() {
        let c = b[i];
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'\'' || c == b'"' => quote = Some(c),
            None if c == b'<'
                && b.get(i + 1) == Some(&b'<')
                && b.get(i + 2) != Some(&b'<')
                && (i == 0 || b[i - 1] != b'<') =>
            {
                let mut j = i + 2;
                let strip = b.get(j) == Some(&b'-');
                if strip {
                    j += 1;
                }
                let q = b.get(j).copied().filter(|&c| c == b'\'' || c == b'"');
                if q.is_some() {
                    j += 1;
                }
                let start = j;
                while j < b.len()
                    && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'-' | b'.'))
                {
                    j += 1;
                }
                if j > start && (q.is_none() || b.get(j).copied() == q) {
                    out.push((text[start..j].to_string(), q.is_some(), strip));
                    i = if q.is_some() { j + 1 } else { j };
                    continue;
                }
            }
            None => {}
        }
        i += 1;
    }
    out
}

pub(super) fn instruction(l: &Logical) -> PResult<Parsed> {
    let text = l.text.trim_end();
    let (kw, rest) = match text.find(char::is_whitespace) {
        Some(p) => (&text[..p], text[p..].trim_start()),
        None => (text, ""),
    };
    let args_col = l.col + (text.len() - rest.len());
    let kw_up = kw.to_ascii_uppercase();
    if kw_up == "FROM" {
        return from(rest, args_col).map(Parsed::From);
    }
    let kind = kind(&kw_up, rest, args_col, l)?;
    Ok(Parsed::Other(Instruction {
        pos: Pos {
            line: l.line,
            col: l.col,
        },
        source: text.to_string(),
        kind,
    }))
}

/// (name, value, column).
type Flag = (String, Option<String>, usize);

/// Leading `--name[=value]` flags, checked against `allowed`.
fn flags<'a>(
    kw: &str,
    mut rest: &'a str,
    mut col: usize,
    allowed: &[&str],
) -> PResult<(Vec<Flag>, &'a str, usize)> {
    let mut out = Vec::new();
    while let Some(f) = rest.strip_prefix("--") {
        let end = f.find(char::is_whitespace).unwrap_or(f.len());
        let word = &f[..end];
        let (name, value) = match word.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (word, None),
        };
        if name == "security" {
            return Err((col, format!("{kw} --{name} is not supported yet")));
        }
        if !allowed.contains(&name) {
            let hint = if allowed.is_empty() {
                "no flags".to_string()
            } else {
                allowed
                    .iter()
                    .map(|a| format!("--{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err((
                col,
                format!("unknown flag --{name} for {kw}: expected {hint}"),
            ));
        }
        out.push((name.to_string(), value, col));
        let after = f[end..].trim_start();
        col += rest.len() - after.len();
        rest = after;
    }
    Ok((out, rest, col))
}

fn flag_value(kw: &str, col: usize, name: &str, v: Option<String>) -> PResult<String> {
    match v {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err((col, format!("{kw} --{name} needs a value (--{name}=VALUE)"))),
    }
}

/// BuildKit's mount syntax: comma-separated `key=value` (or bare `ro`/`rw`
/// style flags); `type` defaults to bind.
fn run_mount(spec: &str) -> Result<RunMount, String> {
    let mut m = RunMount {
        kind: MountType::Bind,
        target: None,
        source: None,
        from: None,
        id: None,
        readonly: true,
        sharing: Sharing::Shared,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
    };
    let mut readonly = None;
    let num = |k: &str, v: &str, radix: u32| {
        u32::from_str_radix(v, radix).map_err(|_| format!("{k}={v}: expected a number"))
    };
    let boolean = |k: &str, v: Option<&str>| match v {
        None | Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(v) => Err(format!("{k}={v}: expected true or false")),
    };
    for part in spec.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = match part.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.trim())),
            None => (part.trim().to_ascii_lowercase(), None),
        };
        let val = || {
            v.filter(|v| !v.is_empty())
                .ok_or(format!("{k} needs a value"))
        };
        match k.as_str() {
            "type" => {
                m.kind = match val()? {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => return Err("type=ssh is not supported".into()),
                    t => {
                        return Err(format!("type={t}: expected bind, cache, tmpfs or secret"));
                    }
                }
            }
            "target" | "dst" | "destination" => m.target = Some(val()?.to_string()),
            "source" | "src" => m.source = Some(val()?.to_string()),
            "from" => m.from = Some(val()?.to_string()),
            "id" => m.id = Some(val()?.to_string()),
            "ro" | "readonly" => readonly = Some(boolean(&k, v)?),
            "rw" | "readwrite" => readonly = Some(!boolean(&k, v)?),
            "sharing" => {
                m.sharing = match val()? {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    s => return Err(format!("sharing={s}: expected shared, private or locked")),
                }
            }
            "mode" => m.mode = Some(num(&k, val()?, 8)?),
            "uid" => m.uid = Some(num(&k, val()?, 10)?),
            "gid" => m.gid = Some(num(&k, val()?, 10)?),
            "required" => m.required = boolean(&k, v)?,
            "size" => {
                m.size = Some(
                    val()?
                        .parse()
                        .map_err(|_| format!("size={}: expected bytes", v.unwrap_or("")))?,
                )
            }
            _ => return Err(format!("unknown key {k:?}")),
        }
    }
    // Bind mounts are read-only unless `rw`; caches and tmpfs writable.
    m.readonly = readonly.unwrap_or(m.kind == MountType::Bind || m.kind == MountType::Secret);
    if m.target.is_none() && m.kind != MountType::Secret {
        return Err("target is required".into());
    }
    if m.kind == MountType::Secret && m.id.is_none() && m.target.is_none() {
        return Err("a secret mount needs id or target".into());
    }
    Ok(m)
}

fn from(rest: &str, col: usize) -> PResult<Stage> {
    let (fl, rest, col) = flags("FROM", rest, col, &["platform"])?;
    let mut platform = None;
    for (n, v, col) in fl {
        platform = Some(flag_value("FROM", col, &n, v)?);
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    let name = match words.as_slice() {
        [] => return Err((col, "FROM needs an image name".into())),
        [_] => None,
        [_, as_, n] if as_.eq_ignore_ascii_case("as") => {
            let n = n.to_ascii_lowercase();
            let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                return Err((
                    col,
                    format!(
                        "invalid stage name {n:?}: expected a letter, then letters, digits, `-`, `_` or `.`"
                    ),
                ));
            }
            Some(n)
        }
        _ => return Err((col, "FROM expects `image [AS name]`".into())),
    };
    Ok(Stage {
        pos: Pos { line: 0, col: 0 },
        base: words[0].to_string(),
        platform,
        name,
        instructions: Vec::new(),
    })
    .map(|mut s| {
        // The caller knows the line; the column of FROM's argument is enough here.
        s.pos.col = col;
        s
    })
}

/// JSON array of strings, or None (Docker then falls back to shell form).
fn json_list(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

fn command(kw: &str, rest: &str, col: usize) -> PResult<Command> {
    if rest.is_empty() {
        return Err((col, format!("{kw} needs a command")));
    }
    Ok(match json_list(rest) {
        Some(v) => Command::Exec(v),
        None => Command::Shell(rest.to_string()),
    })
}

/// Whitespace-separated words that keep quotes and escapes (Docker's
/// parseWords), for name=value lists.
pub(super) fn words(s: &str, esc: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if quote.is_none() && c.is_whitespace() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push(c);
        if c == esc && quote != Some('\'') {
            if let Some(n) = chars.next() {
                cur.push(n);
            }
        } else if quote == Some(c) {
            quote = None;
        } else if quote.is_none() && (c == '"' || c == '\'') {
            quote = Some(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn key_values(kw: &str, rest: &str, col: usize, esc: char) -> PResult<Vec<KeyValue>> {
    let ws = words(rest, esc);
    if ws.is_empty() {
        return Err((col, format!("{kw} needs at least one name=value")));
    }
    if !ws[0].contains('=') {
        // Legacy `ENV name value…`: the rest of the line is the value.
        let key = ws[0].clone();
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err((
                col,
                format!("{kw} {key} needs a value (`{kw} {key}=value`)"),
            ));
        }
        return Ok(vec![KeyValue {
            key,
            value: value.to_string(),
        }]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            Some(_) => Err((col, format!("{kw} names can not be blank: `{w}`"))),
            None => Err((col, format!("{kw} expects name=value, got `{w}`"))),
        })
        .collect()
}

fn one_word(kw: &str, rest: &str, col: usize, what: &str) -> PResult<String> {
    if rest.is_empty() {
        return Err((col, format!("{kw} needs {what}")));
    }
    Ok(rest.to_string())
}

fn kind(kw: &str, rest: &str, col: usize, l: &Logical) -> PResult<Kind> {
    Ok(match kw {
        "RUN" => {
            let (fl, rest, col) = flags(kw, rest, col, &["network", "mount"])?;
            let mut network = None;
            let mut mounts = Vec::new();
            for (n, v, col) in fl {
                let v = flag_value(kw, col, &n, v)?;
                if n == "mount" {
                    mounts.push(run_mount(&v).map_err(|m| (col, format!("RUN --mount={v}: {m}")))?);
                    continue;
                }
                if !matches!(v.as_str(), "default" | "none" | "host") {
                    return Err((
                        col,
                        format!("RUN --network={v}: expected default, none or host"),
                    ));
                }
                network = Some(v);
            }
            Kind::Run(Run {
                cmd: command(kw, rest, col)?,
                heredocs: l.heredocs.clone(),
                network,
                mounts,
            })
        }
        "CMD" => Kind::Cmd {
            cmd: command(kw, rest, col)?,
        },
        "ENTRYPOINT" => Kind::Entrypoint {
            cmd: command(kw, rest, col)?,
        },
        "WORKDIR" => Kind::Workdir {
            path: one_word(kw, rest, col, "a path")?,
        },
        "COPY" | "ADD" => copy(kw, rest, col, l)?,
        "ENV" => Kind::Env {
            vars: key_values(kw, rest, col, l.escape)?,
        },
        "LABEL" => Kind::Label {
            labels: key_values(kw, rest, col, l.escape)?,
        },
        "ARG" => {
            let ws = words(rest, l.escape);
            if ws.is_empty() {
                return Err((
                    col,
                    "ARG needs a name (`ARG NAME` or `ARG NAME=default`)".into(),
                ));
            }
            let args = ws
                .into_iter()
                .map(|w| {
                    let (name, default) = match w.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.to_string())),
                        None => (w, None),
                    };
                    if name.is_empty() {
                        return Err((col, "ARG names can not be blank".to_string()));
                    }
                    Ok(ArgDecl { name, default })
                })
                .collect::<PResult<Vec<_>>>()?;
            Kind::Arg { args }
        }
        "EXPOSE" => {
            if rest.is_empty() {
                return Err((col, "EXPOSE needs at least one port".into()));
            }
            Kind::Expose {
                ports: rest.split_whitespace().map(String::from).collect(),
            }
        }
        "USER" => Kind::User {
            user: one_word(kw, rest, col, "a user (`USER name[:group]`)")?,
        },
        "VOLUME" => {
            let paths = json_list(rest)
                .unwrap_or_else(|| rest.split_whitespace().map(String::from).collect());
            if paths.is_empty() || paths.iter().any(|p| p.trim().is_empty()) {
                return Err((col, "VOLUME needs at least one non-empty path".into()));
            }
            Kind::Volume { paths }
        }
        "SHELL" => match json_list(rest) {
            Some(v) if !v.is_empty() => Kind::Shell { shell: v },
            _ => {
                return Err((
                    col,
                    "SHELL needs a JSON array, e.g. SHELL [\"/bin/sh\", \"-c\"]".into(),
                ));
            }
        },
        "STOPSIGNAL" => {
            let w: Vec<&str> = rest.split_whitespace().collect();
            if w.len() != 1 {
                return Err((col, "STOPSIGNAL needs exactly one signal".into()));
            }
            Kind::StopSignal {
                signal: w[0].to_string(),
            }
        }
        "HEALTHCHECK" => healthcheck(rest, col)?,
        "ONBUILD" => {
            let inner = Logical {
                text: rest.to_string(),
                line: l.line,
                col,
                escape: l.escape,
                heredocs: l.heredocs.clone(),
            };
            let inner_kw = rest.split_whitespace().next().unwrap_or("");
            if rest.is_empty() {
                return Err((col, "ONBUILD needs an instruction".into()));
            }
            if ["ONBUILD", "FROM", "MAINTAINER"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(inner_kw))
            {
                return Err((
                    col,
                    format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner_kw.to_ascii_uppercase()
                    ),
                ));
            }
            match instruction(&inner)? {
                Parsed::Other(i) => Kind::Onbuild { inner: Box::new(i) },
                Parsed::From(_) => unreachable!("FROM refused above"),
            }
        }
        "MAINTAINER" => Kind::Maintainer {
            name: one_word(kw, rest, col, "a name")?,
        },
        "" => return Err((col, "expected an instruction".into())),
        other => {
            return Err((
                l.col,
                format!(
                    "unknown instruction {other}: expected FROM, RUN, CMD, LABEL, EXPOSE, ENV, ADD, COPY, ENTRYPOINT, VOLUME, USER, WORKDIR, ARG, ONBUILD, STOPSIGNAL, HEALTHCHECK, SHELL or MAINTAINER"
                ),
            ));
        }
    })
}

fn copy(kw: &str, rest: &str, col: usize, l: &Logical) -> PResult<Kind> {
    let allowed: &[&str] = if kw == "ADD" {
        &["chown", "chmod", "link", "checksum", "keep-git-dir"]
    } else {
        &["from", "chown", "chmod", "link", "parents"]
    };
    let (fl, rest, col) = flags(kw, rest, col, allowed)?;
    let mut c = Copy {
        add: kw == "ADD",
        sources: Vec::new(),
        dest: String::new(),
        from: None,
        chown: None,
        chmod: None,
        link: false,
        parents: false,
        checksum: None,
        heredocs: l.heredocs.clone(),
    };
    for (n, v, col) in fl {
        match n.as_str() {
            "from" => c.from = Some(flag_value(kw, col, &n, v)?),
            "chown" => c.chown = Some(flag_value(kw, col, &n, v)?),
            "chmod" => {
                let v = flag_value(kw, col, &n, v)?;
                if u32::from_str_radix(&v, 8).is_err() {
                    return Err((
                        col,
                        format!("{kw} --chmod={v}: expected an octal mode like 755"),
                    ));
                }
                c.chmod = Some(v)
            }
            "link" => c.link = bool_flag(kw, col, &n, v.as_deref())?,
            "parents" => c.parents = bool_flag(kw, col, &n, v.as_deref())?,
            "checksum" => {
                let v = flag_value(kw, col, &n, v)?;
                // A value with variables is checked once expanded.
                if !v.contains('$') {
                    checksum_value(&v).map_err(|m| (col, format!("{kw} --checksum={v}: {m}")))?;
                }
                c.checksum = Some(v)
            }
            other => return Err((col, format!("{kw} --{other} is not supported yet"))),
        }
    }
    let mut ws =
        json_list(rest).unwrap_or_else(|| rest.split_whitespace().map(String::from).collect());
    if ws.len() < 2 {
        return Err((
            col,
            format!("{kw} needs at least one source and a destination"),
        ));
    }
    c.dest = ws.pop().expect("len checked");
    c.sources = ws;
    if c.checksum.is_some() {
        if c.sources.len() != 1 {
            return Err((col, "ADD --checksum needs exactly one source".into()));
        }
        let s = &c.sources[0];
        if !s.contains('$') && !is_remote(s) {
            return Err((
                col,
                format!("ADD --checksum applies to http:// or https:// sources, not `{s}`"),
            ));
        }
    }
    Ok(Kind::Copy(c))
}

/// An ADD source fetched over the network rather than read from the context.
pub fn is_remote(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
}

/// `--flag`, `--flag=true` or `--flag=false`.
fn bool_flag(kw: &str, col: usize, name: &str, v: Option<&str>) -> PResult<bool> {
    match v {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(o) => Err((col, format!("{kw} --{name}={o}: expected true or false"))),
    }
}

/// `ADD --checksum`'s value: `sha256:<64 hex>` or `sha512:<128 hex>`, the
/// digests BuildKit accepts for URL sources.
pub fn checksum_value(v: &str) -> Result<berth_image::Digest, String> {
    let Some((algo, hex)) = v.split_once(':') else {
        return Err("expected sha256:<hex digest>".into());
    };
    if algo != "sha256" && algo != "sha512" {
        return Err(format!(
            "unsupported digest algorithm {algo:?}: expected sha256 or sha512"
        ));
    }
    let want = if algo == "sha256" { 64 } else { 128 };
    if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("expected {want} hex digits after `{algo}:`"));
    }
    v.to_ascii_lowercase()
        .parse()
        .map_err(|e: berth_image::Error| e.to_string())
}

fn healthcheck(rest: &str, col: usize) -> PResult<Kind> {
    let (fl, rest, col) = flags(
        "HEALTHCHECK",
        rest,
        col,
        &[
            "interval",
            "timeout",
            "start-period",
            "start-interval",
            "retries",
        ],
    )?;
    let (word, cmd) = match rest.find(char::is_whitespace) {
        Some(p) => (&rest[..p], rest[p..].trim_start()),
        None => (rest, ""),
    };
    if word.eq_ignore_ascii_case("NONE") {
        if !fl.is_empty() || !cmd.is_empty() {
            return Err((col, "HEALTHCHECK NONE takes no flags or arguments".into()));
        }
        return Ok(Kind::Healthcheck(Healthcheck::None));
    }
    if !word.eq_ignore_ascii_case("CMD") {
        return Err((col, "HEALTHCHECK expects NONE or CMD <command>".into()));
    }
    let (mut interval, mut timeout, mut start_period, mut start_interval, mut retries) =
        (None, None, None, None, None);
    for (n, v, col) in fl {
        let v = flag_value("HEALTHCHECK", col, &n, v)?;
        if n == "retries" {
            retries = Some(v.parse::<u32>().map_err(|_| {
                (
                    col,
                    format!("HEALTHCHECK --retries={v}: expected a whole number"),
                )
            })?);
            continue;
        }
        if super::expand::parse_duration(&v).is_none() {
            return Err((
                col,
                format!("HEALTHCHECK --{n}={v}: expected a duration like 30s or 1m30s"),
            ));
        }
        match n.as_str() {
            "interval" => interval = Some(v),
            "timeout" => timeout = Some(v),
            "start-period" => start_period = Some(v),
            _ => start_interval = Some(v),
        }
    }
    Ok(Kind::Healthcheck(Healthcheck::Cmd {
        cmd: command("HEALTHCHECK CMD", cmd, col)?,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    }))
}
