//! Docker's JSON progress stream (pull, push, load, import): one bar per
//! layer on a terminal, plain `id: status` lines otherwise.

use std::collections::HashMap;
use std::io::Write;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

enum Out {
    Quiet,
    Lines(Box<dyn Write>),
    Bars {
        multi: MultiProgress,
        bars: HashMap<String, ProgressBar>,
    },
}

pub struct JsonStream {
    out: Out,
    line: Vec<u8>,
    /// `aux` payloads (push's digest, load's image IDs).
    pub aux: Vec<Value>,
    /// `stream` texts (load prints "Loaded image: ..." this way).
    pub error: Option<String>,
}

impl JsonStream {
    /// `terminal`: draw bars; otherwise lines to `w`. `quiet`: nothing.
    pub fn new(quiet: bool, terminal: bool, w: Box<dyn Write>) -> JsonStream {
        let out = if quiet {
            Out::Quiet
        } else if terminal {
            Out::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: HashMap::new(),
            }
        } else {
            Out::Lines(w)
        };
        JsonStream {
            out,
            line: Vec::new(),
            aux: Vec::new(),
            error: None,
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.line.extend_from_slice(chunk);
        while let Some(nl) = self.line.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.line.drain(..=nl).collect();
            self.message(&line)?;
        }
        Ok(())
    }

    pub fn finish(&mut self) -> std::io::Result<()> {
        if !self.line.iter().all(u8::is_ascii_whitespace) {
            let line = std::mem::take(&mut self.line);
            self.message(&line)?;
        }
        if let Out::Bars { bars, .. } = &mut self.out {
            for b in bars.values() {
                if !b.is_finished() {
                    b.abandon();
                }
            }
        }
        Ok(())
    }

    fn message(&mut self, line: &[u8]) -> std::io::Result<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let v: Value = serde_json::from_slice(line).map_err(|e| {
            std::io::Error::other(format!(
                "invalid progress message from the daemon ({e}): {}",
                String::from_utf8_lossy(line).trim()
            ))
        })?;
        if let Some(e) = v.get("errorDetail").and_then(|d| d["message"].as_str()) {
            self.error = Some(e.to_string());
            return Ok(());
        }
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            self.error = Some(e.to_string());
            return Ok(());
        }
        if let Some(a) = v.get("aux") {
            self.aux.push(a.clone());
        }
        let id = v["id"].as_str().unwrap_or("");
        let status = v["status"].as_str().unwrap_or("");
        let stream = v["stream"].as_str();
        let current = v["progressDetail"]["current"].as_u64();
        let total = v["progressDetail"]["total"].as_u64().unwrap_or(0);
        match &mut self.out {
            Out::Quiet => {}
            Out::Lines(w) => {
                if let Some(s) = stream {
                    write!(w, "{s}")?;
                } else if current.is_some() {
                    // Byte counts only make sense redrawn in place.
                } else if !id.is_empty() {
                    writeln!(w, "{id}: {status}")?;
                } else if !status.is_empty() {
                    writeln!(w, "{status}")?;
                }
                w.flush()?;
            }
            Out::Bars { multi, bars } => {
                if let Some(s) = stream {
                    let _ = multi.println(s.trim_end_matches('\n'));
                } else if id.is_empty() {
                    if !status.is_empty() {
                        let _ = multi.println(status);
                    }
                } else {
                    let bar = bars.entry(id.to_string()).or_insert_with(|| {
                        let b = multi.add(ProgressBar::new(0));
                        b.set_style(text_style());
                        b.set_prefix(id.to_string());
                        b
                    });
                    match current {
                        Some(c) => {
                            if bar.length() != Some(total) {
                                bar.set_length(total);
                                bar.set_style(bar_style());
                            }
                            bar.set_position(c);
                        }
                        None => bar.set_style(text_style()),
                    }
                    bar.set_message(status.to_string());
                }
            }
        }
        Ok(())
    }
}

fn text_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg}").expect("valid template")
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix}: {msg:<12} [{bar:50}] {bytes}/{total_bytes}")
        .expect("valid template")
        .progress_chars("=> ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_errors_aux() {
        let buf = Buf::default();
        let mut s = JsonStream::new(false, false, Box::new(buf.clone()));
        let input = concat!(
            "{\"status\":\"latest: Pulling from busybox\",\"id\":\"latest\"}\n",
            "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":5,\"total\":10},\"id\":\"abc\"}\n",
            "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"abc\"}\n",
            "{\"aux\":{\"Tag\":\"latest\",\"Digest\":\"sha256:1\",\"Size\":3}}\n",
            "{\"stream\":\"Loaded image: x:y\\n\"}\n",
            "{\"errorDetail\":{\"message\":\"boom\"},\"error\":\"boom\"}",
        );
        // Split mid-line: messages must survive chunking.
        let (a, b) = input.split_at(40);
        s.feed(a.as_bytes()).unwrap();
        s.feed(b.as_bytes()).unwrap();
        s.finish().unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "latest: latest: Pulling from busybox\nabc: Pull complete\nLoaded image: x:y\n"
        );
        assert_eq!(s.aux[0]["Digest"], "sha256:1");
        assert_eq!(s.error.as_deref(), Some("boom"));
        assert!(
            JsonStream::new(true, false, Box::new(Buf::default()))
                .feed(b"not json\n")
                .is_err()
        );
    }
}
