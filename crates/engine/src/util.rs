//! Small helpers: ids, times, crash-safe writes.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{EngineError, Result};

pub use berth_shim::logfile::rfc3339_nano;

/// 64 hex characters from the kernel's random pool, as docker's ids.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    let ok = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    if ok.is_err() {
        // Fall back to time and pid: unique enough for one host.
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let seed = format!("{n}-{}", std::process::id());
        return berth_image::Digest::sha256_of(seed.as_bytes())
            .hex()
            .to_string();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn now_rfc3339() -> String {
    rfc3339_nano(SystemTime::now())
}

/// Seconds since the epoch of an RFC 3339 UTC time (`2026-02-25T06:13:20.5Z`).
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let s = s.trim();
    let (date, rest) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = rest.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let sec: f64 = t.next()?.parse().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60) as f64 + sec)
}

pub fn unix_secs(s: &str) -> i64 {
    parse_rfc3339(s).map_or(0, |f| f as i64)
}

/// "5 seconds", "About a minute", "3 hours": docker's human durations.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..60 => format!("{s} seconds"),
        60..120 => "About a minute".into(),
        120..3600 => format!("{} minutes", s / 60),
        3600..7200 => "About an hour".into(),
        7200..172800 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

pub fn since(rfc: &str) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    Duration::from_secs_f64((now - parse_rfc3339(rfc).unwrap_or(now)).max(0.0))
}

/// Writes `data` to `path` by temp + fsync + rename, so readers and crashes
/// see the old or the new file, never a torn one.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    write_replacing(path, data, true)
}

/// Temp + rename, with the fsyncs (file and directory) only when `durable`.
/// Readers never see a torn file either way; without them, a power cut may
/// leave the previous version (ext4 and btrfs order a replacing rename after
/// the new data) or, on other filesystems, an empty file. The file is 0600:
/// records and specs hold containers' environment.
pub fn write_replacing(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let io = |op: &str, e: std::io::Error| {
        EngineError::Internal(format!("{op} {}: {e}", path.display()))
    };
    {
        let mut f = create_private(&tmp).map_err(|e| io("create", e))?;
        f.write_all(data).map_err(|e| io("write", e))?;
        if durable {
            f.sync_all().map_err(|e| io("fsync", e))?;
        }
    }
    fs::rename(&tmp, path).map_err(|e| io("rename", e))?;
    if durable
        && let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates (or truncates) a file only root may read or write, whatever mode
/// an older one had.
pub fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(f)
}

/// Writes `data` to a file only root may read (see [`create_private`]).
pub fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    create_private(path)?.write_all(data)
}

/// One Docker filter's values: old clients send `["v"]`, newer
/// `{"v": true}`; None for anything else.
pub fn filter_values(vals: &serde_json::Value) -> Option<Vec<String>> {
    use serde_json::Value;
    match vals {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
        ),
        Value::Object(o) => Some(o.keys().cloned().collect()),
        _ => None,
    }
}

/// A `filters` query value as JSON (empty: no filter, null).
pub fn filters_json(filters: &str) -> crate::Result<serde_json::Value> {
    if filters.trim().is_empty() {
        return Ok(serde_json::Value::Null);
    }
    serde_json::from_str(filters)
        .map_err(|e| EngineError::InvalidArgument(format!("invalid filters: {e}")))
}

/// Each filter key with its values; a key not in `allowed` is refused
/// with dockerd's "invalid filter 'key'".
pub fn filter_entries(
    v: &serde_json::Value,
    allowed: &[&str],
) -> crate::Result<Vec<(String, Vec<String>)>> {
    let mut out = Vec::new();
    for (k, vals) in v.as_object().into_iter().flatten() {
        if !allowed.contains(&k.as_str()) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid filter '{k}'"
            )));
        }
        let vals = filter_values(vals).ok_or_else(|| {
            EngineError::InvalidArgument(format!("invalid filter value for {k:?}"))
        })?;
        out.push((k.clone(), vals));
    }
    Ok(out)
}

/// A boolean filter value (`dangling=true`), as Docker spells them.
pub fn bool_filter(key: &str, vals: &[String]) -> crate::Result<bool> {
    match vals.first().map(String::as_str) {
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        other => Err(EngineError::InvalidArgument(format!(
            "invalid filter '{key}={}'",
            other.unwrap_or("")
        ))),
    }
}

/// A `label` filter value (`key` or `key=value`) against labels.
pub fn label_matches(labels: &std::collections::BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// True when `p` is a mount point in this mount namespace.
pub fn is_mountpoint(p: &Path) -> bool {
    let Ok(canon) = p.canonicalize() else {
        return false;
    };
    let want = canon.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// A signal by number or name (`9`, `KILL`, `SIGKILL`).
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let name = s.trim_start_matches("SIG").to_ascii_uppercase();
    let n = match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "TERM" => libc::SIGTERM,
        "STOP" => libc::SIGSTOP,
        "CONT" => libc::SIGCONT,
        "WINCH" => libc::SIGWINCH,
        "ALRM" => libc::SIGALRM,
        "PIPE" => libc::SIGPIPE,
        _ => return Err(EngineError::InvalidArgument(format!("invalid signal: {s}"))),
    };
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip() {
        let t = UNIX_EPOCH + Duration::from_secs(1_772_000_000);
        assert_eq!(parse_rfc3339(&rfc3339_nano(t)), Some(1_772_000_000.0));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1.5));
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), 9);
        assert_eq!(parse_signal("term").unwrap(), 15);
        assert_eq!(parse_signal("10").unwrap(), 10);
        assert!(parse_signal("bogus").is_err());
    }
}
