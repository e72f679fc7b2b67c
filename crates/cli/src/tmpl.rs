//! The subset of Go's text/template that `--format` needs, over JSON values:
//! `{{.Field.Sub}}`, `{{json .X}}`, `{{index .Map "k"}}`, `{{range .X}}`,
//! `{{if .X}}…{{else}}…{{end}}`, `{{upper}}`, `{{lower}}`, `{{len}}`,
//! `{{join .X ","}}`, `{{println}}`, pipes (`{{.X | json}}`), parentheses,
//! and the `{{-`/`-}}` trim markers.

use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("template: {0}")]
pub struct TemplateError(String);

type Result<T> = std::result::Result<T, TemplateError>;

fn err<T>(msg: impl Into<String>) -> Result<T> {
    Err(TemplateError(msg.into()))
}

#[derive(Debug, Clone)]
enum Arg {
    /// `.A.B` (empty path: `.` itself).
    Field(Vec<String>),
    Str(String),
    Num(f64),
    Bool(bool),
    Func(String),
    Sub(Pipeline),
    /// `$name.A.B` (`$` alone is the data the template started with).
    Var(String, Vec<String>),
}

type Command = Vec<Arg>;
type Pipeline = Vec<Command>;

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Action(Pipeline),
    If(Pipeline, Vec<Node>, Vec<Node>),
    /// `range [$k[, $v] :=] pipeline`: the variables it declares.
    Range(Vec<String>, Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

enum Tok {
    Text(String),
    Action(String),
}

fn lex(src: &str) -> Result<Vec<Tok>> {
    let mut toks = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while let Some(start) = rest.find("{{") {
        let mut text = &rest[..start];
        if trim_next {
            text = text.trim_start();
        }
        let after = &rest[start + 2..];
        let trim_prev = after.starts_with("- ") || after.starts_with("-\t") || after == "-";
        if trim_prev {
            text = text.trim_end();
        }
        if !text.is_empty() {
            toks.push(Tok::Text(text.to_string()));
        }
        let Some(end) = find_close(after) else {
            return err(format!("unclosed action in {src:?}"));
        };
        let mut inner = &after[..end];
        if trim_prev {
            inner = &inner[1..];
        }
        trim_next = inner.ends_with(" -") || inner.ends_with("\t-");
        if trim_next {
            inner = &inner[..inner.len() - 1];
        }
        toks.push(Tok::Action(inner.trim().to_string()));
        rest = &after[end + 2..];
    }
    let text = if trim_next { rest.trim_start() } else { rest };
    if !text.is_empty() {
        toks.push(Tok::Text(text.to_string()));
    }
    Ok(toks)
}

/// The `}}` that closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut quote = None;
    while i < b.len() {
        match quote {
            Some(q) => {
                if b[i] == b'\\' && q == b'"' {
                    i += 1;
                } else if b[i] == q {
                    quote = None;
                }
            }
            None => {
                if b[i] == b'"' || b[i] == b'`' {
                    quote = Some(b[i]);
                } else if b[i] == b'}' && b.get(i + 1) == Some(&b'}') {
                    return Some(i);
                }
            }
        }
        i += 1;
    }
    None
}

fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut depth = 0;
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                cur.push(c);
                let mut closed = false;
                while let Some(d) = chars.next() {
                    cur.push(d);
                    if d == '\\' && c == '"' {
                        if let Some(e) = chars.next() {
                            cur.push(e);
                        }
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return err(format!("unterminated quoted string in {s:?}"));
                }
            }
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            '|' if depth == 0 => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
                out.push("|".into());
            }
            c => cur.push(c),
        }
    }
    if depth != 0 {
        return err(format!("unbalanced parentheses in {s:?}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn parse_pipeline(s: &str) -> Result<Pipeline> {
    let mut pipe = vec![Vec::new()];
    for w in words(s)? {
        if w == "|" {
            pipe.push(Vec::new());
            continue;
        }
        let arg = if let Some(inner) = w.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
            Arg::Sub(parse_pipeline(inner)?)
        } else if w == "." {
            Arg::Field(vec![])
        } else if let Some(path) = w.strip_prefix('.') {
            Arg::Field(path.split('.').map(String::from).collect())
        } else if w.starts_with('"') {
            Arg::Str(
                serde_json::from_str(&w)
                    .map_err(|e| TemplateError(format!("bad string {w}: {e}")))?,
            )
        } else if let Some(raw) = w.strip_prefix('`').and_then(|x| x.strip_suffix('`')) {
            Arg::Str(raw.to_string())
        } else if w == "true" || w == "false" {
            Arg::Bool(w == "true")
        } else if let Ok(n) = w.parse::<f64>() {
            Arg::Num(n)
        } else if w.starts_with('$') {
            let mut parts = w.split('.');
            let name = parts.next().unwrap_or("$").to_string();
            Arg::Var(name, parts.map(String::from).collect())
        } else if w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            Arg::Func(w)
        } else {
            return err(format!("unexpected {w:?} in {s:?}"));
        };
        pipe.last_mut().expect("non-empty").push(arg);
    }
    if pipe.iter().any(Vec::is_empty) {
        return err(format!("missing value in {s:?}"));
    }
    Ok(pipe)
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        let toks = lex(src)?;
        let mut pos = 0;
        let (nodes, end) = parse_nodes(&toks, &mut pos)?;
        if let Some(e) = end {
            return err(format!("unexpected {{{{{e}}}}}"));
        }
        Ok(Template { nodes })
    }

    pub fn render(&self, data: &Value) -> Result<String> {
        let mut out = String::new();
        let root = Scope {
            dot: data.clone(),
            vars: vec![("$".into(), data.clone())],
        };
        exec(&self.nodes, &root, &mut out)?;
        Ok(out)
    }
}

/// Parses until `{{end}}`/`{{else}}` (returned) or the end of input.
fn parse_nodes(toks: &[Tok], pos: &mut usize) -> Result<(Vec<Node>, Option<String>)> {
    let mut nodes = Vec::new();
    while *pos < toks.len() {
        let t = &toks[*pos];
        *pos += 1;
        match t {
            Tok::Text(s) => nodes.push(Node::Text(s.clone())),
            Tok::Action(a) if a == "end" || a == "else" => return Ok((nodes, Some(a.clone()))),
            Tok::Action(a) if a.starts_with("/*") => {}
            Tok::Action(a) => {
                let (kw, rest) = a.split_once(char::is_whitespace).unwrap_or((a, ""));
                if kw == "if" || kw == "range" {
                    let (vars, rest) = match rest.split_once(":=") {
                        Some((vars, rest)) if kw == "range" => (
                            vars.split(',')
                                .map(|v| v.trim().to_string())
                                .collect::<Vec<_>>(),
                            rest,
                        ),
                        _ => (Vec::new(), rest),
                    };
                    if vars.len() > 2 || vars.iter().any(|v| !v.starts_with('$') || v.len() < 2) {
                        return err(format!("bad range variables in {a:?}"));
                    }
                    let pipe = parse_pipeline(rest)?;
                    let (body, end) = parse_nodes(toks, pos)?;
                    let els = match end.as_deref() {
                        Some("else") => {
                            let (els, end2) = parse_nodes(toks, pos)?;
                            if end2.as_deref() != Some("end") {
                                return err(format!("{kw} without {{{{end}}}}"));
                            }
                            els
                        }
                        Some("end") => Vec::new(),
                        _ => return err(format!("{kw} without {{{{end}}}}")),
                    };
                    nodes.push(if kw == "if" {
                        Node::If(pipe, body, els)
                    } else {
                        Node::Range(vars, pipe, body, els)
                    });
                } else {
                    nodes.push(Node::Action(parse_pipeline(a)?));
                }
            }
        }
    }
    Ok((nodes, None))
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// What names resolve to while executing: `.` and the variables in reach.
#[derive(Clone)]
struct Scope {
    dot: Value,
    vars: Vec<(String, Value)>,
}

impl Scope {
    fn with(&self, dot: Value, vars: impl IntoIterator<Item = (String, Value)>) -> Scope {
        let mut s = Scope {
            dot,
            vars: self.vars.clone(),
        };
        s.vars.extend(vars);
        s
    }

    fn var(&self, name: &str) -> Result<Value> {
        match self.vars.iter().rev().find(|(n, _)| n == name) {
            Some((_, v)) => Ok(v.clone()),
            None => err(format!("undefined variable: {name}")),
        }
    }
}

fn exec(nodes: &[Node], sc: &Scope, out: &mut String) -> Result<()> {
    for n in nodes {
        match n {
            Node::Text(s) => out.push_str(s),
            Node::Action(p) => out.push_str(&display(&eval_pipeline(p, sc)?)),
            Node::If(p, body, els) => {
                if truthy(&eval_pipeline(p, sc)?) {
                    exec(body, sc, out)?;
                } else {
                    exec(els, sc, out)?;
                }
            }
            Node::Range(vars, p, body, els) => {
                let v = eval_pipeline(p, sc)?;
                let items: Vec<(Value, Value)> = match v {
                    Value::Array(a) => a
                        .into_iter()
                        .enumerate()
                        .map(|(i, x)| (Value::from(i), x))
                        .collect(),
                    // Go ranges over a map in key order.
                    Value::Object(o) => {
                        let mut kv: Vec<_> = o.into_iter().collect();
                        kv.sort_by(|a, b| a.0.cmp(&b.0));
                        kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()
                    }
                    Value::Null => Vec::new(),
                    other => return err(format!("range can't iterate over {other}")),
                };
                if items.is_empty() {
                    exec(els, sc, out)?;
                }
                for (key, it) in items {
                    let bound: Vec<(String, Value)> = match vars.as_slice() {
                        [v] => vec![(v.clone(), it.clone())],
                        [k, v] => vec![(k.clone(), key), (v.clone(), it.clone())],
                        _ => vec![],
                    };
                    exec(body, &sc.with(it, bound), out)?;
                }
            }
        }
    }
    Ok(())
}

fn eval_pipeline(p: &Pipeline, sc: &Scope) -> Result<Value> {
    let mut prev: Option<Value> = None;
    for cmd in p {
        prev = Some(eval_command(cmd, sc, prev)?);
    }
    Ok(prev.unwrap_or(Value::Null))
}

fn field_path(mut v: Value, path: &[String]) -> Result<Value> {
    for f in path {
        v = match v {
            Value::Object(mut o) => match o.remove(f) {
                Some(x) => x,
                None => {
                    return err(format!("can't evaluate field {f}"));
                }
            },
            Value::Null => Value::Null,
            other => {
                return err(format!("can't evaluate field {f} in type {}", kind(&other)));
            }
        };
    }
    Ok(v)
}

fn eval_arg(a: &Arg, sc: &Scope) -> Result<Value> {
    Ok(match a {
        Arg::Field(path) => field_path(sc.dot.clone(), path)?,
        Arg::Var(name, path) => field_path(sc.var(name)?, path)?,
        Arg::Str(s) => Value::String(s.clone()),
        Arg::Num(n) => serde_json::Number::from_f64(*n).map_or(Value::Null, |n| {
            if n.as_f64().is_some_and(|f| f.fract() == 0.0) {
                Value::from(n.as_f64().unwrap_or(0.0) as i64)
            } else {
                Value::Number(n)
            }
        }),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::Sub(p) => eval_pipeline(p, sc)?,
        Arg::Func(f) => call(f, vec![])?,
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn eval_command(cmd: &Command, sc: &Scope, piped: Option<Value>) -> Result<Value> {
    match &cmd[0] {
        Arg::Func(f) => {
            let mut args = cmd[1..]
                .iter()
                .map(|a| eval_arg(a, sc))
                .collect::<Result<Vec<_>>>()?;
            args.extend(piped);
            call(f, args)
        }
        a => {
            if cmd.len() > 1 {
                return err("can't give arguments to a non-function");
            }
            if piped.is_some() {
                return err("can't pipe into a non-function");
            }
            eval_arg(a, sc)
        }
    }
}

fn call(f: &str, args: Vec<Value>) -> Result<Value> {
    let want = |n: usize| -> Result<()> {
        if args.len() == n {
            Ok(())
        } else {
            err(format!(
                "wrong number of args for {f}: want {n} got {}",
                args.len()
            ))
        }
    };
    match f {
        "json" => {
            want(1)?;
            Ok(Value::String(
                serde_json::to_string(&args[0]).map_err(|e| TemplateError(e.to_string()))?,
            ))
        }
        "upper" | "lower" | "title" => {
            want(1)?;
            let s = display(&args[0]);
            Ok(Value::String(match f {
                "upper" => s.to_uppercase(),
                "lower" => s.to_lowercase(),
                _ => {
                    let mut c = s.chars();
                    c.next()
                        .map(|h| h.to_uppercase().collect::<String>() + c.as_str())
                        .unwrap_or_default()
                }
            }))
        }
        "len" => {
            want(1)?;
            Ok(Value::from(match &args[0] {
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                Value::String(s) => s.len(),
                Value::Null => 0,
                other => return err(format!("len of {}", kind(other))),
            }))
        }
        "index" => {
            if args.len() < 2 {
                return err("index needs a collection and a key");
            }
            let mut v = args[0].clone();
            for k in &args[1..] {
                v = match (&v, k) {
                    // A missing key is the zero value; docker's maps
                    // (Labels, Options) hold strings.
                    (Value::Object(o), Value::String(s)) => {
                        o.get(s).cloned().unwrap_or(Value::String(String::new()))
                    }
                    (Value::Array(a), Value::Number(n)) => {
                        let i = n.as_u64().unwrap_or(u64::MAX) as usize;
                        match a.get(i) {
                            Some(x) => x.clone(),
                            None => return err(format!("index out of range: {i}")),
                        }
                    }
                    (Value::Null, _) => Value::Null,
                    (c, k) => return err(format!("can't index {} with {k}", kind(c))),
                };
            }
            Ok(v)
        }
        "join" => {
            want(2)?;
            let sep = display(&args[1]);
            let parts: Vec<String> = match &args[0] {
                Value::Array(a) => a.iter().map(display).collect(),
                Value::Null => vec![],
                other => vec![display(other)],
            };
            Ok(Value::String(parts.join(&sep)))
        }
        "println" | "print" => {
            let s: Vec<String> = args.iter().map(display).collect();
            let mut s = s.join(" ");
            if f == "println" {
                s.push('\n');
            }
            Ok(Value::String(s))
        }
        "not" => {
            want(1)?;
            Ok(Value::Bool(!truthy(&args[0])))
        }
        "eq" => {
            if args.len() < 2 {
                return err("eq needs two values");
            }
            Ok(Value::Bool(args[1..].iter().any(|a| *a == args[0])))
        }
        _ => err(format!("function \"{f}\" not defined")),
    }
}

/// How Go prints a value with `{{.}}`.
pub fn display(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(display).collect::<Vec<_>>().join(" ")),
        Value::Object(o) => {
            let mut kv: Vec<_> = o.iter().collect();
            kv.sort_by(|a, b| a.0.cmp(b.0));
            format!(
                "map[{}]",
                kv.iter()
                    .map(|(k, v)| format!("{k}:{}", display(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// `--format` for lists: `table …` prints a header row (each `{{.Field}}`
/// titled through `header`) and aligns columns separated by `\t`; otherwise
/// one rendered line per item.
pub fn render_list(
    format: &str,
    items: &[Value],
    header: &dyn Fn(&str) -> String,
) -> Result<String> {
    let (table, body) = match format.strip_prefix("table") {
        Some(rest) => (true, rest.trim_start().to_string()),
        None => (false, format.to_string()),
    };
    let body = body.replace("\\t", "\t").replace("\\n", "\n");
    let t = Template::parse(&body)?;
    let mut rows: Vec<String> = Vec::new();
    if table {
        // The header: the same template with each field replaced by its title.
        let mut h = String::new();
        for tok in lex(&body)? {
            match tok {
                Tok::Text(s) => h.push_str(&s),
                Tok::Action(a) => {
                    let field = a
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix('.'))
                        .unwrap_or(&a);
                    h.push_str(&header(field));
                }
            }
        }
        rows.push(h);
    }
    for it in items {
        rows.push(t.render(it)?);
    }
    if !table {
        return Ok(rows.into_iter().map(|r| r + "\n").collect());
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.split('\t').map(String::from).collect())
        .collect();
    Ok(crate::format::table(cells))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        Template::parse(t).unwrap().render(v).unwrap()
    }

    #[test]
    fn fields_and_functions() {
        let v = json!({
            "Id": "abc", "State": {"Pid": 42, "Running": true, "Status": "running"},
            "Config": {"Env": ["A=1", "B=2"], "Labels": {"k": "v", "x.y": "z"}},
            "Empty": [], "Name": "/web"
        });
        assert_eq!(r("{{.Id}}", &v), "abc");
        assert_eq!(r("{{.State.Pid}} {{.State.Running}}", &v), "42 true");
        assert_eq!(r("{{json .Config.Env}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(r("{{.Config.Env | json}}", &v), r#"["A=1","B=2"]"#);
        assert_eq!(r(r#"{{index .Config.Labels "x.y"}}"#, &v), "z");
        assert_eq!(r("{{index .Config.Env 1}}", &v), "B=2");
        assert_eq!(r("{{range .Config.Env}}[{{.}}]{{end}}", &v), "[A=1][B=2]");
        assert_eq!(r("{{range .Empty}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(r("{{if .Empty}}y{{end}}", &v), "");
        assert_eq!(
            r("{{upper .State.Status}}/{{lower \"AbC\"}}", &v),
            "RUNNING/abc"
        );
        assert_eq!(r("{{len .Config.Env}} {{len .Config.Labels}}", &v), "2 2");
        assert_eq!(r("{{join .Config.Env \",\"}}", &v), "A=1,B=2");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[k:v x.y:z]");
        assert_eq!(r("{{.Config.Env}}", &v), "[A=1 B=2]");
        assert_eq!(r("{{upper (index .Config.Labels \"k\")}}", &v), "V");
        assert_eq!(r("a {{- .Id -}} b", &v), "aabcb");
        assert_eq!(r("{{range .Config.Labels}}{{.}};{{end}}", &v), "v;z;");
        assert_eq!(r("{{.Missing}}", &json!({"Missing": null})), "<no value>");
        assert_eq!(r("{{println .Id}}", &v), "abc\n");
        assert_eq!(
            r(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                &v
            ),
            "k=v;x.y=z;"
        );
        assert_eq!(
            r("{{range $i, $e := .Config.Env}}{{$i}}:{{$e}} {{end}}", &v),
            "0:A=1 1:B=2 "
        );
        assert_eq!(
            r("{{range $e := .Config.Env}}{{$e}}{{$.Id}} {{end}}", &v),
            "A=1abc B=2abc "
        );
        assert_eq!(r("{{$.State.Pid}}", &v), "42");
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |t: &str| match Template::parse(t) {
            Err(e) => e.to_string(),
            Ok(t) => t.render(&json!({"A": 1})).unwrap_err().to_string(),
        };
        assert!(e("{{.A").contains("unclosed action"));
        assert!(e("{{if .A}}x").contains("without {{end}}"));
        assert!(e("{{end}}").contains("unexpected"));
        assert!(e("{{nope .A}}").contains("\"nope\" not defined"));
        assert!(e("{{.B}}").contains("can't evaluate field B"));
        assert!(e("{{.A.B}}").contains("can't evaluate field B in type number"));
        assert!(e("{{json .A .A}}").contains("wrong number of args"));
        assert!(e("{{$x}}").contains("undefined variable: $x"));
        assert!(e("{{range a, b := .A}}{{end}}").contains("bad range variables"));
    }

    #[test]
    fn tables() {
        let items = vec![
            json!({"ID": "a1", "Name": "web"}),
            json!({"ID": "b22222", "Name": "db"}),
        ];
        let h = |f: &str| f.to_uppercase();
        assert_eq!(
            render_list("table {{.ID}}\t{{.Name}}", &items, &h).unwrap(),
            "ID        NAME\na1        web\nb22222    db\n"
        );
        assert_eq!(
            render_list("{{.ID}}:{{.Name}}", &items, &h).unwrap(),
            "a1:web\nb22222:db\n"
        );
    }
}
