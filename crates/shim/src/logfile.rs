//! Docker's json-file log driver format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"RFC3339Nano"}`, rotated by size
//! to `file.1`, `file.2` ... like `max-size` / `max-file`.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{IoContext, Result};

/// Docker splits lines longer than this into several entries.
const MAX_LINE: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 1,
    Stderr = 2,
}

impl Stream {
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

pub struct JsonLog {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: u32,
    /// Text after the last newline, per stream, until its line completes.
    partial: [Vec<u8>; 2],
}

impl JsonLog {
    pub fn open(path: &Path, max_size: u64, max_files: u32) -> Result<JsonLog> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        }
        let file = open_append(path)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonLog {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files: max_files.max(1),
            partial: [Vec::new(), Vec::new()],
        })
    }

    /// Logs a chunk of a stream; complete lines are written now.
    pub fn write(&mut self, stream: Stream, mut data: &[u8]) {
        let idx = stream as usize - 1;
        while let Some(nl) = data.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&data[..=nl]);
            self.entry(stream, &line);
            data = &data[nl + 1..];
        }
        self.partial[idx].extend_from_slice(data);
        while self.partial[idx].len() >= MAX_LINE {
            let rest = self.partial[idx].split_off(MAX_LINE);
            let line = std::mem::replace(&mut self.partial[idx], rest);
            self.entry(stream, &line);
        }
    }

    /// Writes out an unterminated last line (at EOF of the stream).
    pub fn flush(&mut self, stream: Stream) {
        let line = std::mem::take(&mut self.partial[stream as usize - 1]);
        if !line.is_empty() {
            self.entry(stream, &line);
        }
    }

    fn entry(&mut self, stream: Stream, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let mut rec = Vec::with_capacity(line.len() + 80);
        rec.extend_from_slice(b"{\"log\":");
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut rec, &*text);
        rec.extend_from_slice(b",\"stream\":\"");
        rec.extend_from_slice(stream.name().as_bytes());
        rec.extend_from_slice(b"\",\"time\":\"");
        rec.extend_from_slice(rfc3339_nano(SystemTime::now()).as_bytes());
        rec.extend_from_slice(b"\"}\n");
        if self.max_size > 0 && self.size > 0 && self.size + rec.len() as u64 > self.max_size {
            self.rotate();
        }
        // A full disk must not stop the shim: the entry is lost, the
        // container keeps running (Docker's json-file behaves the same).
        if self.file.write_all(&rec).is_ok() {
            self.size += rec.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let name = |n: u32| -> PathBuf {
            let mut s = self.path.clone().into_os_string();
            s.push(format!(".{n}"));
            s.into()
        };
        if self.max_files > 1 {
            for n in (1..self.max_files - 1).rev() {
                let _ = fs::rename(name(n), name(n + 1));
            }
            let _ = fs::rename(&self.path, name(1));
        } else {
            let _ = fs::remove_file(&self.path);
        }
        if let Ok(f) = open_append(&self.path) {
            self.file = f;
            self.size = 0;
        }
    }
}

/// Logs are 0640, as dockerd's json-file: a container's output is not for
/// every local user.
fn open_append(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .ctx(|| format!("open log {}", path.display()))
}

/// `2026-11-28T03:44:59.123456789Z` (UTC; what Docker's json-file writes).
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn time_format() {
        let t = UNIX_EPOCH + Duration::new(1_772_000_000, 5);
        assert_eq!(rfc3339_nano(t), "2026-02-25T06:13:20.000000005Z");
        assert_eq!(rfc3339_nano(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert!(rfc3339_nano(leap).starts_with("2000-02-29T00:00:00"));
    }

    fn lines(p: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn lines_streams_and_partials() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = JsonLog::open(&p, 0, 1).unwrap();
        log.write(Stream::Stdout, b"hel");
        log.write(Stream::Stderr, b"oops\n");
        log.write(Stream::Stdout, b"lo\n\"q\"\nend");
        log.flush(Stream::Stdout);
        let v = lines(&p);
        let got: Vec<(&str, &str)> = v
            .iter()
            .map(|e| (e["log"].as_str().unwrap(), e["stream"].as_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("oops\n", "stderr"),
                ("hello\n", "stdout"),
                ("\"q\"\n", "stdout"),
                ("end", "stdout")
            ]
        );
        assert!(v[0]["time"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn long_lines_split() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = JsonLog::open(&p, 0, 1).unwrap();
        log.write(Stream::Stdout, &vec![b'x'; MAX_LINE * 2 + 3]);
        log.write(Stream::Stdout, b"\n");
        let v = lines(&p);
        assert_eq!(v.len(), 3);
        assert_eq!(v[2]["log"].as_str().unwrap(), "xxx\n");
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut log = JsonLog::open(&p, 300, 3).unwrap();
        for i in 0..50 {
            log.write(Stream::Stdout, format!("line {i}\n").as_bytes());
        }
        let size = |p: &Path| fs::metadata(p).unwrap().len();
        assert!(size(&p) <= 300);
        let p1 = dir.path().join("c.log.1");
        let p2 = dir.path().join("c.log.2");
        assert!(size(&p1) <= 300 && size(&p2) <= 300);
        assert!(!dir.path().join("c.log.3").exists());
        // The newest entry is last in the live file, older ones in .1 then .2.
        assert_eq!(lines(&p).last().unwrap()["log"], "line 49\n");
        let n = |p: &Path| lines(p)[0]["log"].as_str().unwrap().to_string();
        assert!(n(&p2) < n(&p1) || n(&p2).len() < n(&p1).len());
    }
}
