//! Build progress on stderr. The builder reports steps as BuildKit-style
//! lines (`#N [1/3] RUN …`, `#N <output>`, `#N CACHED`, `#N DONE 0.4s`);
//! `plain` prints them as they are, `tty` keeps one line per finished step
//! (cache hits marked, time per step) and a live view of the running step
//! with its last output lines.

use std::collections::VecDeque;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

const TAIL: usize = 6;

pub enum Mode {
    Plain,
    Tty,
    Quiet,
}

impl Mode {
    pub fn pick(progress: &str, quiet: bool) -> Mode {
        match progress {
            _ if quiet => Mode::Quiet,
            "plain" => Mode::Plain,
            "tty" => Mode::Tty,
            _ if std::io::stderr().is_terminal() => Mode::Tty,
            _ => Mode::Plain,
        }
    }
}

struct Step {
    id: String,
    title: String,
    started: Instant,
    tail: VecDeque<String>,
}

/// Takes progress text (any chunking), renders it on `out`.
pub struct Renderer<W: Write> {
    mode: Mode,
    out: W,
    partial: Vec<u8>,
    /// Running steps (stages build in parallel), oldest first.
    active: Vec<Step>,
    /// Lines of the live view on screen (tty), erased before the next draw.
    drawn: usize,
    last_draw: Option<Instant>,
}

impl<W: Write> Renderer<W> {
    pub fn new(mode: Mode, out: W) -> Self {
        Renderer {
            mode,
            out,
            partial: Vec::new(),
            active: Vec::new(),
            drawn: 0,
            last_draw: None,
        }
    }

    fn line(&mut self, l: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                let _ = writeln!(self.out, "{l}");
            }
            Mode::Tty => self.tty_line(l),
        }
    }

    fn tty_line(&mut self, l: &str) {
        let Some((id, rest)) = l
            .strip_prefix('#')
            .and_then(|r| r.split_once(' '))
            .filter(|(id, _)| id.chars().all(|c| c.is_ascii_digit()))
        else {
            self.permanent(l.to_string());
            return;
        };
        let Some(k) = self.active.iter().position(|s| s.id == id) else {
            self.active.push(Step {
                id: id.to_string(),
                title: rest.to_string(),
                started: Instant::now(),
                tail: VecDeque::new(),
            });
            self.draw(true);
            return;
        };
        if rest == "CACHED" {
            self.finish_step(k, Some("CACHED"));
        } else if let Some(t) = rest.strip_prefix("DONE ") {
            self.finish_step(k, Some(t));
        } else {
            let s = &mut self.active[k];
            s.tail.push_back(rest.to_string());
            // Redraws are rate-limited only for chatty steps (a full tail).
            let chatty = s.tail.len() > TAIL;
            if chatty {
                s.tail.pop_front();
            }
            self.draw(!chatty);
        }
    }

    /// Ends a live step with a one-line summary (`None`: the stream ended
    /// without its DONE, as for a failing step).
    fn finish_step(&mut self, k: usize, how: Option<&str>) {
        let s = self.active.remove(k);
        let line = match how {
            Some("CACHED") => format!("=> CACHED {}", s.title),
            Some(t) => format!("=> {:<60} {t}", s.title),
            None => {
                // Keep its output: it is what explains a failure.
                let mut l = format!("=> {}", s.title);
                for t in &s.tail {
                    l.push_str(&format!("\n   {t}"));
                }
                l
            }
        };
        self.permanent(line);
    }

    fn erase(&mut self) {
        if self.drawn > 0 {
            let _ = write!(self.out, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }

    fn permanent(&mut self, l: String) {
        self.erase();
        let _ = writeln!(self.out, "{l}");
        self.draw(true);
    }

    fn draw(&mut self, force: bool) {
        let now = Instant::now();
        if !force
            && self
                .last_draw
                .is_some_and(|t| now - t < Duration::from_millis(50))
        {
            return;
        }
        self.erase();
        self.last_draw = Some(now);
        let width = terminal_width();
        let cut = |t: &str, n: usize| t.chars().take(width.saturating_sub(n)).collect::<String>();
        let mut lines = Vec::new();
        for s in &self.active {
            let secs = format!(" {:.1}s", s.started.elapsed().as_secs_f64());
            lines.push(format!("=> {}{secs}", cut(&s.title, 3 + secs.len())));
            lines.extend(
                s.tail
                    .iter()
                    .map(|t| format!("\x1b[2m   {}\x1b[0m", cut(t, 4))),
            );
        }
        for l in &lines {
            let _ = writeln!(self.out, "{l}");
        }
        self.drawn = lines.len();
        let _ = self.out.flush();
    }

    /// The end of the stream: the live view becomes permanent.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let l = String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned();
            self.line(&l);
        }
        if matches!(self.mode, Mode::Tty) {
            while !self.active.is_empty() {
                self.finish_step(0, None);
            }
            self.erase();
        }
        let _ = self.out.flush();
    }
}

impl<W: Write> Write for Renderer<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(data);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let l: Vec<u8> = self.partial.drain(..=i).collect();
            let l = String::from_utf8_lossy(&l[..l.len() - 1]).into_owned();
            self.line(&l);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Lines longer than the terminal would wrap and break the erase count;
/// `COLUMNS` when the shell exports it, else a conservative width.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c: &usize| c >= 20)
        .unwrap_or(80)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUN: &str = "#1 [internal] load build definition from Dockerfile\n#1 DONE 0.0s\n#2 [1/3] FROM busybox\n#2 DONE 0.1s\n#3 [2/3] COPY a /a\n#3 CACHED\n#4 [3/3] RUN echo hi\n#4 hi\n#4 DONE 0.4s\n";

    fn render(mode: Mode, chunks: &[&str]) -> String {
        let mut r = Renderer::new(mode, Vec::new());
        for c in chunks {
            r.write_all(c.as_bytes()).unwrap();
        }
        r.finish();
        String::from_utf8(r.out).unwrap()
    }

    #[test]
    fn plain_passes_lines_through_whatever_the_chunking() {
        let (a, b) = RUN.split_at(37);
        assert_eq!(render(Mode::Plain, &[a, b]), RUN);
        assert_eq!(render(Mode::Quiet, &[RUN]), "");
    }

    #[test]
    fn tty_summarises_steps() {
        let out = render(Mode::Tty, &[RUN, "Successfully built x\n"]);
        // What stays on screen once the live view is erased.
        let text = out.rsplit("\x1b[J").next().unwrap_or(&out).to_string();
        // Without the escape sequences (cursor up, erase, dim).
        let mut all = String::new();
        let mut it = out.chars();
        while let Some(c) = it.next() {
            if c == '\x1b' {
                it.by_ref().find(|c| c.is_ascii_alphabetic());
            } else {
                all.push(c);
            }
        }
        assert!(all.contains("=> CACHED [2/3] COPY a /a"), "{all}");
        assert!(
            all.lines()
                .any(|l| l.starts_with("=> [3/3] RUN echo hi") && l.ends_with("0.4s")),
            "{all}"
        );
        assert!(all.contains("   hi"), "the step's output shows live: {all}");
        assert!(text.contains("Successfully built x"), "{text}");
    }

    #[test]
    fn tty_follows_parallel_steps() {
        let out = render(
            Mode::Tty,
            &["#2 [a 2/2] RUN x\n#3 [b 2/2] RUN y\n#2 out-a\n#3 DONE 1.0s\n#2 DONE 2.0s\n"],
        );
        // b finishes while a still runs; a's summary is the last line.
        let last = out.rsplit("\x1b[J").next().unwrap();
        assert!(out.contains("=> [b 2/2] RUN y"), "{out:?}");
        assert!(
            last.starts_with("=> [a 2/2] RUN x") && last.ends_with("2.0s\n"),
            "{out:?}"
        );
        assert!(out.contains("out-a"), "{out:?}");
    }

    #[test]
    fn tty_keeps_the_output_of_an_unfinished_step() {
        let out = render(Mode::Tty, &["#2 [2/2] RUN false\n#2 oops\n"]);
        assert!(out.ends_with("=> [2/2] RUN false\n   oops\n"), "{out:?}");
    }
}
