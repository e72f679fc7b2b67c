//! Dockerfile-style `--change` instructions, for `docker commit` and
//! `docker import` alike.

use serde_json::{Value, json};

use crate::error::{EngineError, Result};

/// Splits on blanks outside double quotes and drops the quotes
/// (`A="x y" B=z` → `A=x y`, `B=z`).
fn words(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    let mut chars = s.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            '\\' if quoted => cur.extend(chars.next()),
            c if c.is_whitespace() && !quoted => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// JSON array form, else the shell form (`/bin/sh -c …`).
fn command(rest: &str) -> Vec<String> {
    if rest.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(rest)
    {
        return v;
    }
    vec!["/bin/sh".into(), "-c".into(), rest.into()]
}

fn key_values(instr: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let ws = words(rest);
    if ws.first().is_some_and(|w| !w.contains('=')) {
        // The old form: `ENV KEY value with spaces`.
        let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        return Ok(vec![(k.to_string(), words(v.trim()).join(" "))]);
    }
    ws.into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(EngineError::InvalidArgument(format!(
                "{instr} {rest}: expected KEY=VALUE"
            ))),
        })
        .collect()
}

/// Applies one `--change` instruction to an image's `config` object.
pub fn apply_change(cfg: &mut Value, line: &str) -> Result<()> {
    let line = line.trim();
    let (instr, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let rest = rest.trim();
    let instr = instr.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(EngineError::InvalidArgument(format!(
            "{instr} requires at least one argument"
        )));
    }
    let set_in = |cfg: &mut Value, field: &str, k: String, v: Value| {
        if !cfg[field].is_object() {
            cfg[field] = json!({});
        }
        cfg[field][k] = v;
    };
    match instr.as_str() {
        "CMD" => cfg["Cmd"] = json!(command(rest)),
        "ENTRYPOINT" => cfg["Entrypoint"] = json!(command(rest)),
        "ENV" => {
            let mut env: Vec<String> =
                serde_json::from_value(cfg["Env"].clone()).unwrap_or_default();
            for (k, v) in key_values(&instr, rest)? {
                env.retain(|e| e.split('=').next() != Some(k.as_str()));
                env.push(format!("{k}={v}"));
            }
            cfg["Env"] = json!(env);
        }
        "LABEL" => {
            for (k, v) in key_values(&instr, rest)? {
                set_in(cfg, "Labels", k, json!(v));
            }
        }
        "EXPOSE" => {
            for p in words(rest) {
                let (port, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                if port.split('-').any(|n| n.parse::<u16>().is_err()) {
                    return Err(EngineError::InvalidArgument(format!(
                        "EXPOSE: invalid port {p}"
                    )));
                }
                set_in(cfg, "ExposedPorts", format!("{port}/{proto}"), json!({}));
            }
        }
        "VOLUME" => {
            let vols = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) => v,
                Err(_) => words(rest),
            };
            for v in vols {
                set_in(cfg, "Volumes", v, json!({}));
            }
        }
        "USER" => cfg["User"] = json!(rest),
        "STOPSIGNAL" => cfg["StopSignal"] = json!(rest),
        "WORKDIR" => {
            let dir = if rest.starts_with('/') {
                rest.to_string()
            } else {
                let base = cfg["WorkingDir"].as_str().unwrap_or("/");
                format!("{}/{rest}", base.trim_end_matches('/'))
            };
            cfg["WorkingDir"] = json!(dir);
        }
        "ONBUILD" => {
            let mut v: Vec<Value> = cfg["OnBuild"].as_array().cloned().unwrap_or_default();
            v.push(json!(rest));
            cfg["OnBuild"] = json!(v);
        }
        other => {
            return Err(EngineError::InvalidArgument(format!(
                "{other} is not a valid change command"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docker commit --change`: on top of the container's config.
    #[test]
    fn change_instructions() {
        let mut cfg = json!({"Env": ["PATH=/bin", "A=old"], "WorkingDir": "/srv"});
        for ch in [
            "CMD [\"sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT /entry.sh --flag",
            "ENV A=new B=\"two words\"",
            "ENV C three words",
            "EXPOSE 80 53/udp",
            "LABEL team=core \"quoted key\"=v",
            "USER nobody",
            "WORKDIR app",
            "VOLUME [\"/data\", \"/logs\"]",
            "STOPSIGNAL SIGINT",
        ] {
            apply_change(&mut cfg, ch).unwrap();
        }
        assert_eq!(cfg["Cmd"], json!(["sh", "-c", "echo hi"]));
        assert_eq!(
            cfg["Entrypoint"],
            json!(["/bin/sh", "-c", "/entry.sh --flag"])
        );
        assert_eq!(
            cfg["Env"],
            json!(["PATH=/bin", "A=new", "B=two words", "C=three words"])
        );
        assert_eq!(cfg["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(cfg["Labels"], json!({"team": "core", "quoted key": "v"}));
        assert_eq!(cfg["User"], "nobody");
        assert_eq!(cfg["WorkingDir"], "/srv/app");
        assert_eq!(cfg["Volumes"], json!({"/data": {}, "/logs": {}}));
        assert_eq!(cfg["StopSignal"], "SIGINT");
        for bad in ["FROM busybox", "EXPOSE http", "ENV =x", "CMD"] {
            assert!(apply_change(&mut cfg, bad).is_err(), "{bad}");
        }
    }

    /// `docker import --change`: on an empty config; the quoting, EXPOSE
    /// validation and relative WORKDIR are the same as for commit.
    #[test]
    fn import_changes() {
        let mut c = json!({});
        for ch in [
            "CMD [\"/bin/sh\", \"-c\", \"echo hi\"]",
            "ENTRYPOINT run me",
            "ENV A=1 B=2",
            "ENV A=3",
            "LABEL k=v",
            "EXPOSE 80 53/udp",
            "WORKDIR /srv",
            "USER nobody",
        ] {
            apply_change(&mut c, ch).unwrap();
        }
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "run me"]));
        assert_eq!(c["Env"], json!(["B=2", "A=3"]));
        assert_eq!(c["Labels"]["k"], "v");
        assert_eq!(c["ExposedPorts"], json!({"80/tcp": {}, "53/udp": {}}));
        assert_eq!(c["WorkingDir"], "/srv");
        let mut c = json!({});
        let e = apply_change(&mut c, "RUN rm -rf /")
            .unwrap_err()
            .to_string();
        assert!(e.contains("RUN is not a valid change command"), "{e}");
        // As in a Dockerfile, what is not a JSON array is the shell form.
        apply_change(&mut c, "CMD [oops").unwrap();
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "[oops"]));
    }

    #[test]
    fn import_quotes_validates_and_resolves() {
        let mut c = json!({});
        apply_change(&mut c, "ENV A=\"x y\"").unwrap();
        assert_eq!(c["Env"], json!(["A=x y"]));
        assert!(apply_change(&mut c, "EXPOSE http").is_err());
        apply_change(&mut c, "WORKDIR app").unwrap();
        assert_eq!(c["WorkingDir"], "/app");
    }
}
