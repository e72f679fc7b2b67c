//! Docker-style output: `images` table, sizes, ages, `inspect` JSON.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::store::familiar;
use berth_image::{ImageRecord, ImageStore, Reference};
use serde_json::{Value, json};

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

pub fn human_age(created: Option<&str>) -> String {
    let Some(t) = created.and_then(parse_rfc3339) else {
        return "N/A".into();
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let d = (now - t).max(0);
    let (n, unit) = match d {
        0..60 => return "Less than a minute ago".into(),
        60..3600 => (d / 60, "minute"),
        3600..86400 => (d / 3600, "hour"),
        86400..1_209_600 => (d / 86400, "day"),
        1_209_600..5_184_000 => (d / 604_800, "week"),
        5_184_000..63_072_000 => (d / 2_592_000, "month"),
        _ => (d / 31_536_000, "year"),
    };
    format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" })
}

pub fn images_table(images: &[ImageRecord], quiet: bool, digests: bool) -> String {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for img in images {
        let id = img.id.short().to_string();
        if quiet {
            rows.push(vec![id]);
            continue;
        }
        let mut names: Vec<(String, String)> = img
            .repo_tags
            .iter()
            .filter_map(|t| t.parse::<Reference>().ok())
            .map(|r| (r.familiar_repository(), r.tag.unwrap_or_default()))
            .collect();
        if names.is_empty() {
            names.push(("<none>".into(), "<none>".into()));
        }
        for (repo, tag) in names {
            let mut row = vec![repo.clone(), tag];
            if digests {
                let d = img
                    .repo_digests
                    .iter()
                    .filter_map(|d| d.parse::<Reference>().ok())
                    .find(|r| r.familiar_repository() == repo)
                    .and_then(|r| r.digest)
                    .map_or("<none>".into(), |d| d.to_string());
                row.push(d);
            }
            row.extend([
                id.clone(),
                human_age(img.created.as_deref()),
                human_size(img.size),
            ]);
            rows.push(row);
        }
    }
    if quiet {
        return rows.into_iter().map(|r| r[0].clone() + "\n").collect();
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut all = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    all.extend(rows);
    table(all)
}

/// Columns padded to the widest cell, three spaces apart, as docker prints.
pub fn table(all: Vec<Vec<String>>) -> String {
    let ncol = all[0].len();
    let widths: Vec<usize> = (0..ncol)
        .map(|c| all.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in all {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i + 1 == ncol {
                    v.clone()
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        out.push_str(line.join("   ").trim_end());
        out.push('\n');
    }
    out
}

pub fn inspect(store: &ImageStore, img: &ImageRecord) -> anyhow::Result<Value> {
    let cfg: Value = serde_json::from_slice(&store.content.read(&img.id)?)?;
    Ok(json!({
        "Id": img.id.to_string(),
        "RepoTags": img.repo_tags.iter().map(|t| familiar(t)).collect::<Vec<_>>(),
        "RepoDigests": img.repo_digests.iter().map(|t| familiar_digest(t)).collect::<Vec<_>>(),
        "Created": cfg.get("created").cloned().unwrap_or(Value::Null),
        "Author": cfg.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Architecture": cfg.get("architecture").cloned().unwrap_or(Value::Null),
        "Variant": cfg.get("variant").cloned(),
        "Os": cfg.get("os").cloned().unwrap_or(Value::Null),
        "Size": img.size,
        "Config": cfg.get("config").cloned().unwrap_or(Value::Null),
        "RootFS": {
            "Type": "layers",
            "Layers": img.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>(),
        },
        "Metadata": { "Platform": img.platform, "Manifest": img.manifest.to_string(),
                      "ManifestMediaType": img.manifest_media_type },
    }))
}

fn familiar_digest(s: &str) -> String {
    match s.parse::<Reference>() {
        Ok(r) => match &r.digest {
            Some(d) => format!("{}@{d}", r.familiar_repository()),
            None => s.to_string(),
        },
        Err(_) => s.to_string(),
    }
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
    }
}
