//! The step cache: key (parent state + expanded instruction + args + content
//! hash of copied files) → the step's result. One small JSON file per key
//! under `<root>/builder/cache`, written to a temp name and renamed, so a
//! crash leaves an old entry or none, and the cache survives restarts.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use berth_image::{Digest, ImageStore, LayerRecord};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Entry {
    /// None: the step changed no file (an empty layer).
    pub layer: Option<LayerRecord>,
    pub created: u64,
    /// A `--link` step's: its layer can be stored again on any parent from
    /// the blob alone, so the entry outlives the layer dir it was made as.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linked: bool,
}

#[derive(Clone, Debug)]
pub struct Cache {
    dir: PathBuf,
}

impl Cache {
    pub fn open(root: &std::path::Path) -> Result<Cache> {
        let dir = root.join("builder").join("cache");
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        Ok(Cache { dir })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    /// An entry whose layer is still in the store (else it's a miss); for
    /// a linked entry its blob is enough.
    pub fn get(&self, store: &ImageStore, key: &Digest) -> Option<Entry> {
        let e: Entry = serde_json::from_slice(&fs::read(self.path(key)).ok()?).ok()?;
        if let Some(l) = &e.layer
            && !(store.content.exists(&l.blob) && (e.linked || store.layers.exists(&l.chain_id)))
        {
            return None;
        }
        Some(e)
    }

    pub fn put(&self, key: &Digest, e: &Entry) -> Result<()> {
        let p = self.path(key);
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", key.hex(), std::process::id()));
        let mut f = fs::File::create(&tmp).ctx("create", &tmp)?;
        f.write_all(&serde_json::to_vec(e).expect("entry serialises"))
            .ctx("write", &tmp)?;
        f.sync_all().ctx("fsync", &tmp)?;
        fs::rename(&tmp, &p).ctx("rename", &p)
    }

    /// Every entry with its key (`system df`'s build cache); unreadable
    /// entries are skipped, as [`Cache::get`] treats them as misses.
    pub fn entries(&self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("read", &self.dir)? {
            let p = e.ctx("read", &self.dir)?.path();
            let Some(key) = p
                .file_name()
                .and_then(|n| n.to_str()?.strip_suffix(".json"))
                .map(String::from)
            else {
                continue;
            };
            if let Some(entry) = fs::read(&p)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
            {
                out.push((key, entry));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Drops one entry (by the key [`Cache::entries`] gives); one already
    /// gone is fine.
    pub fn remove(&self, key: &str) -> Result<()> {
        let p = self.dir.join(format!("{key}.json"));
        match fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).ctx("remove", &p),
            _ => Ok(()),
        }
    }

    /// `builder prune`: drops every entry; returns their keys. Layers only
    /// the cache kept are then unreferenced and go with the next collect.
    pub fn prune(&self) -> Result<Vec<String>> {
        let mut keys = Vec::new();
        for e in fs::read_dir(&self.dir).ctx("read", &self.dir)? {
            let p = e.ctx("read", &self.dir)?.path();
            fs::remove_file(&p).ctx("remove", &p)?;
            if let Some(k) = p
                .file_name()
                .and_then(|n| n.to_str()?.strip_suffix(".json"))
            {
                keys.push(k.to_string());
            }
        }
        Ok(keys)
    }
}
