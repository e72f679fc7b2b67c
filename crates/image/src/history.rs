//! `history`: the image config's history joined with its layers.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::error::Result;
use crate::store::{ImageRecord, ImageStore};

#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The image ID on the top entry; the rest are `<missing>` as in docker.
    pub id: Option<Digest>,
    pub created: Option<String>,
    pub created_by: String,
    pub comment: String,
    /// Unpacked bytes of the layer this step made (0 for empty layers).
    pub size: u64,
    pub empty_layer: bool,
}

/// Newest first, like `docker history`.
pub fn history(store: &ImageStore, rec: &ImageRecord) -> Result<Vec<HistoryEntry>> {
    let cfg = crate::formats::parse_config(&store.content.read(&rec.id)?)?;
    let mut layers = rec.layers.iter();
    let mut out = Vec::new();
    let s = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    for h in &cfg.history {
        let empty = h
            .get("empty_layer")
            .and_then(|b| b.as_bool())
            .unwrap_or(false);
        let size = if empty {
            0
        } else {
            layers
                .next()
                .and_then(|l| store.layers.meta(&l.chain_id).ok())
                .map_or(0, |m| m.size)
        };
        out.push(HistoryEntry {
            id: None,
            created: s(h, "created"),
            created_by: s(h, "created_by").unwrap_or_default(),
            comment: s(h, "comment").unwrap_or_default(),
            size,
            empty_layer: empty,
        });
    }
    // Layers the history does not describe (images built without it).
    for l in layers {
        out.push(HistoryEntry {
            id: None,
            created: cfg.created.clone(),
            created_by: String::new(),
            comment: String::new(),
            size: store.layers.meta(&l.chain_id).map_or(0, |m| m.size),
            empty_layer: false,
        });
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = Some(rec.id.clone());
    }
    Ok(out)
}

/// Now, as RFC 3339 UTC with nanoseconds (what image configs carry).
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, Some(d.subsec_nanos()))
}

/// Seconds since the epoch as RFC 3339 UTC, with nanoseconds when given.
pub fn rfc3339(secs: i64, nanos: Option<u32>) -> String {
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = nanos.map(|n| format!(".{n:09}")).unwrap_or_default();
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
