//! Docker-style output: `images` table, sizes, ages, `inspect` JSON.

use std::time::{SystemTime, UNIX_EPOCH};

/// Docker's size format: decimal units, 3 significant digits.
pub fn human_size(bytes: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        return format!("{bytes}B");
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    let t = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        &s
    };
    format!("{t}{}", units[i])
}

/// Seconds since the epoch from an RFC 3339 timestamp (fractions ignored).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let mut t = days * 86400 + h * 3600 + mi * 60 + se;
    let tz = &s[19..];
    let tz = tz.trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    if let Some(off) = tz.strip_prefix('+').or_else(|| tz.strip_prefix('-')) {
        let oh: i64 = off.get(0..2)?.parse().ok()?;
        let om: i64 = off.get(3..5)?.parse().ok()?;
        let sign = if tz.starts_with('+') { 1 } else { -1 };
        t -= sign * (oh * 3600 + om * 60);
    }
    Some(t)
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, ((s as f64) / 3600.0).round() as i64);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if h == 1 => "About an hour".into(),
        _ if h < 48 => format!("{h} hours"),
        _ if h < 24 * 7 * 2 => format!("{} days", h / 24),
        _ if h < 24 * 30 * 2 => format!("{} weeks", h / 24 / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", h / 24 / 30),
        _ => format!("{} years", h / 24 / 365),
    }
}

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Docker's `CreatedAt` text: `2024-01-02 03:04:05 +0000 UTC`.
pub fn unix_to_text(secs: i64) -> String {
    let t = berth_image::history::rfc3339(secs, None);
    format!(
        "{} +0000 UTC",
        t.trim_end_matches('Z').replacen('T', " ", 1)
    )
}

/// Go's names for architectures.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// "5 minutes ago" for a unix time, as `docker ps`/`images` print it.
pub fn ago(unix: i64) -> String {
    if unix <= 0 {
        return "N/A".into();
    }
    format!("{} ago", human_duration(now_secs() - unix))
}

/// The first 12 hex digits of an ID, without its `sha256:` prefix.
pub fn short_id(id: &str) -> String {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    id.chars().take(12).collect()
}

/// `repo:tag` split at the tag's colon (not a registry port's).
pub fn split_repo_tag(s: &str) -> (String, String) {
    if let Some((repo, _)) = s.split_once('@') {
        return (repo.to_string(), "<none>".into());
    }
    match s.rfind(':') {
        Some(i) if !s[i..].contains('/') => (s[..i].to_string(), s[i + 1..].to_string()),
        _ => (s.to_string(), "latest".into()),
    }
}

/// Cuts to `n` characters with an ellipsis, as docker truncates columns.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// Columns as docker's tabwriter lays them out (minimum cell width 10,
/// padding 3); the last cell of a row is not padded.
pub fn table(all: Vec<Vec<String>>) -> String {
    align(all, 10)
}

pub fn align(all: Vec<Vec<String>>, min_width: usize) -> String {
    let ncol = all.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..ncol)
        .map(|c| {
            all.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in all {
        let mut line = String::new();
        for (i, v) in r.iter().enumerate() {
            line.push_str(v);
            if i + 1 < r.len() {
                let cell = (widths[i] + 3).max(min_width);
                line.push_str(&" ".repeat(cell - v.chars().count()));
            }
        }
        // Like Go's tabwriter: a padded cell before an empty last one keeps
        // its padding.
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times() {
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(2_150_000), "2.15MB");
        assert_eq!(human_size(117_400_000), "117MB");
        assert_eq!(human_size(12_340_000), "12.3MB");
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), Some(86400));
        assert_eq!(
            parse_rfc3339("2000-03-01T01:00:00.123+01:00"),
            Some(951_868_800)
        );
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(short_id("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(
            split_repo_tag("localhost:5000/busybox:1.36"),
            ("localhost:5000/busybox".into(), "1.36".into())
        );
        assert_eq!(
            split_repo_tag("localhost:5000/busybox"),
            ("localhost:5000/busybox".into(), "latest".into())
        );
        assert_eq!(ellipsis("abcdef", 4), "abc…");
    }
}
