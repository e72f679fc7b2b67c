//! Reading a container's json-file log (as the shim writes it) for `logs`,
//! with docker's selection: streams, since/until, tail, timestamps, follow.

use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::model::LogOptions;
use crate::Engine;
use crate::error::Result;
use crate::util::parse_rfc3339;

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

/// 1 = stdout, 2 = stderr, as in the multiplexed stream.
fn stream_no(s: &str) -> u8 {
    if s == "stderr" { 2 } else { 1 }
}

fn render(e: &Entry, opts: &LogOptions) -> Option<(u8, Vec<u8>)> {
    let n = stream_no(&e.stream);
    if (n == 1 && !opts.stdout) || (n == 2 && !opts.stderr) {
        return None;
    }
    let t = parse_rfc3339(&e.time).unwrap_or(0.0);
    if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
        return None;
    }
    let mut out = Vec::new();
    if opts.timestamps {
        out.extend_from_slice(e.time.as_bytes());
        out.push(b' ');
    }
    out.extend_from_slice(e.log.as_bytes());
    Some((n, out))
}

impl Engine {
    /// Feeds the selected log entries to `sink` (stream, bytes) until the
    /// log ends — or, with `follow`, until the container stops or `sink`
    /// returns false.
    pub fn logs(
        &self,
        key: &str,
        opts: &LogOptions,
        sink: &mut dyn FnMut(u8, &[u8]) -> bool,
    ) -> Result<()> {
        let c = self.inspect(key)?;
        let path = PathBuf::from(&c.log_path);
        // Rotated files first (oldest has the highest number).
        let mut files: Vec<PathBuf> = (1..10)
            .map(|i| PathBuf::from(format!("{}.{i}", c.log_path)))
            .filter(|p| p.exists())
            .collect();
        files.reverse();
        let mut selected = Vec::new();
        for f in &files {
            read_entries(f, 0, opts, &mut selected);
        }
        let mut pos = read_entries(&path, 0, opts, &mut selected);
        if let Some(n) = opts.tail {
            let skip = selected.len().saturating_sub(n);
            selected.drain(..skip);
        }
        for (s, data) in &selected {
            if !sink(*s, data) {
                return Ok(());
            }
        }
        if !opts.follow {
            return Ok(());
        }
        loop {
            let running = self
                .inspect(&c.id)
                .map(|c| c.state.running)
                .unwrap_or(false);
            let mut more = Vec::new();
            let new_pos = read_entries(&path, pos, opts, &mut more);
            // Rotation shrank the file: start again from its top.
            pos = if new_pos < pos {
                read_entries(&path, 0, opts, &mut more)
            } else {
                new_pos
            };
            for (s, data) in &more {
                if !sink(*s, data) {
                    return Ok(());
                }
            }
            if !running && more.is_empty() {
                return Ok(());
            }
            // A heartbeat: an empty write tells us when the client has gone.
            if more.is_empty() && !sink(0, &[]) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Appends the entries of complete lines from `offset` on; returns the
/// offset after the last complete line.
fn read_entries(
    path: &PathBuf,
    offset: u64,
    opts: &LogOptions,
    out: &mut Vec<(u8, Vec<u8>)>,
) -> u64 {
    let Ok(mut f) = std::fs::File::open(path) else {
        return 0;
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    if len < offset {
        return len;
    }
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let mut r = BufReader::new(f);
    let mut pos = offset;
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) if line.ends_with('\n') => {
                pos += n as u64;
                if let Ok(e) = serde_json::from_str::<Entry>(&line)
                    && let Some(x) = render(&e, opts)
                {
                    out.push(x);
                }
            }
            Ok(_) => break,
        }
    }
    pos
}
