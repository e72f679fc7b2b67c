//! Lines → logical instructions: directives, comments, continuations and
//! heredoc bodies. Argument parsing per instruction is in `instr.rs`.

use super::ast::*;
use super::instr::{self, Logical};
use crate::error::{Error, Result};

/// Parses a whole Dockerfile; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile> {
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let err = |line: usize, col: usize, msg: String| Error::Parse {
        file: file.to_string(),
        line,
        col,
        msg,
    };
    let mut df = Dockerfile {
        syntax: None,
        escape: '\\',
        meta_args: Vec::new(),
        stages: Vec::new(),
    };
    let mut i = directives(&lines, &mut df, &err)?;
    let esc = df.escape;
    while i < lines.len() {
        let first = lines[i];
        let t = first.trim_start();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let line = i + 1;
        let col = first.len() - t.len() + 1;
        let mut joined = String::new();
        loop {
            let l = if joined.is_empty() {
                lines[i].trim_start()
            } else {
                lines[i]
            };
            i += 1;
            let trimmed = l.trim_end();
            match trimmed.strip_suffix(esc) {
                // Docker's rule: the escape char (plus blanks) ends the line.
                Some(body) => {
                    joined.push_str(body);
                    // Comment and blank lines inside a continuation are dropped.
                    while i < lines.len() {
                        let n = lines[i].trim_start();
                        if n.starts_with('#') || n.is_empty() {
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= lines.len() {
                        break;
                    }
                }
                _ => {
                    joined.push_str(l);
                    break;
                }
            }
        }
        let heredoc_marks = instr::heredoc_marks(&joined);
        let mut heredocs = Vec::new();
        if !heredoc_marks.is_empty() && instr::takes_heredocs(&joined) {
            for (name, quoted, strip) in heredoc_marks {
                let mut content = String::new();
                let mut found = false;
                while i < lines.len() {
                    let mut l = lines[i];
                    i += 1;
                    if strip {
                        l = l.trim_start_matches('\t');
                    }
                    if l == name {
                        found = true;
                        break;
                    }
                    content.push_str(l);
                    content.push('\n');
                }
                if !found {
                    return Err(err(
                        line,
                        col,
                        format!("unterminated heredoc: expected a line `{name}` before the end"),
                    ));
                }
                heredocs.push(Heredoc {
                    name,
                    content,
                    expand: !quoted,
                    strip_tabs: strip,
                });
            }
        }
        let logical = Logical {
            text: joined,
            line,
            col,
            escape: esc,
            heredocs,
        };
        let ins = instr::instruction(&logical).map_err(|(c, m)| err(line, c, m))?;
        match ins {
            instr::Parsed::From(mut stage) => {
                stage.pos.line = line;
                df.stages.push(stage)
            }
            instr::Parsed::Other(ins) => match df.stages.last_mut() {
                Some(s) => s.instructions.push(ins),
                None => match ins.kind {
                    Kind::Arg { args } => df.meta_args.extend(args),
                    k => {
                        return Err(err(
                            line,
                            col,
                            format!("{} before FROM: expected FROM or ARG first", k.name()),
                        ));
                    }
                },
            },
        }
    }
    if df.stages.is_empty() {
        return Err(err(
            lines.len().max(1),
            1,
            "no FROM instruction: a Dockerfile needs at least one stage".into(),
        ));
    }
    Ok(df)
}

/// Leading `# key=value` directives; returns the first line after them.
fn directives(
    lines: &[&str],
    df: &mut Dockerfile,
    err: &dyn Fn(usize, usize, String) -> Error,
) -> Result<usize> {
    let mut seen = Vec::new();
    for (n, l) in lines.iter().enumerate() {
        let Some(rest) = l.trim_start().strip_prefix('#') else {
            return Ok(n);
        };
        let Some((k, v)) = rest.split_once('=') else {
            return Ok(n);
        };
        let key = k.trim().to_ascii_lowercase();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Ok(n);
        }
        let val = v.trim();
        match key.as_str() {
            "syntax" | "escape" | "check" => {}
            // Unknown directives are comments, and end the directive block.
            _ => return Ok(n),
        }
        if seen.contains(&key) {
            return Err(err(
                n + 1,
                1,
                format!("only one {key} parser directive can be used"),
            ));
        }
        seen.push(key.clone());
        match key.as_str() {
            "syntax" => df.syntax = Some(val.to_string()),
            "escape" => {
                df.escape = match val {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(err(
                            n + 1,
                            l.find('=').map_or(1, |p| p + 2),
                            format!("invalid escape token {val:?}: expected `\\` or `` ` ``"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(lines.len())
}
