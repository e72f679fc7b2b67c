//! Pull/push progress: a bar per layer on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use berth_distribution::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub fn make(quiet: bool) -> Box<dyn Progress> {
    if quiet {
        Box::new(berth_distribution::NoProgress)
    } else if std::io::stderr().is_terminal() {
        Box::new(Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
        })
    } else {
        Box::new(Lines)
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn bar(&self, id: &str, total: u64) -> ProgressBar {
        let mut bars = self.bars.lock().expect("bars");
        bars.entry(id.to_string())
            .or_insert_with(|| {
                let b = self.multi.add(ProgressBar::new(total));
                b.set_style(
                    ProgressStyle::with_template(
                        "{prefix}: {msg:<16} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                b.set_prefix(id.to_string());
                b
            })
            .clone()
    }
}

impl Progress for Bars {
    fn start(&self, id: &str, total: u64) {
        let b = self.bar(id, total);
        b.set_length(total);
        b.set_message("Downloading");
    }
    fn advance(&self, id: &str, done: u64) {
        self.bar(id, 0).set_position(done);
    }
    fn finish(&self, id: &str, status: &str) {
        let b = self.bar(id, 0);
        b.set_style(ProgressStyle::with_template("{prefix}: {msg}").expect("valid template"));
        b.finish_with_message(status.to_string());
    }
    fn message(&self, msg: &str) {
        let _ = self.multi.println(msg);
    }
}

struct Lines;

impl Progress for Lines {
    fn start(&self, id: &str, total: u64) {
        eprintln!("{id}: Downloading {total} bytes");
    }
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, id: &str, status: &str) {
        eprintln!("{id}: {status}");
    }
    fn message(&self, msg: &str) {
        eprintln!("{msg}");
    }
}
