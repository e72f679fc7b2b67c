//! `system check`: verifies the store and finds what interrupted or crashed
//! commands left behind. Findings are either problems (the store is wrong:
//! a corrupt blob, an image naming missing data, a broken layer dir) or
//! garbage (harmless leftovers: orphans, temp dirs of dead processes,
//! resumable partial downloads). `repair` removes both kinds; an image whose
//! data is gone or corrupt loses its record so that it can be pulled again.

use std::collections::BTreeSet;
use std::fs;
use std::path::PathBuf;

use crate::digest::{Digest, Hasher};
use crate::error::{IoContext, Result};
use crate::gc::live_refs;
use crate::lease::LeaseKind;
use crate::store::ImageStore;

#[derive(Debug, Clone, PartialEq)]
pub enum Severity {
    Problem,
    Garbage,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Fix {
    None,
    RemoveBlob(Digest),
    RemoveLayer(Digest),
    RemovePath(PathBuf),
    RemoveLease(String),
    DropImage(Digest),
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub severity: Severity,
    pub what: String,
    pub fix: Fix,
}

#[derive(Debug, Default)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    pub blobs_checked: usize,
    pub layers_checked: usize,
    pub images_checked: usize,
    /// In-progress work of live processes, left alone.
    pub busy: usize,
}

impl CheckReport {
    pub fn problems(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Problem)
            .count()
    }
}

fn problem(what: String, fix: Fix) -> Finding {
    Finding {
        severity: Severity::Problem,
        what,
        fix,
    }
}

fn garbage(what: String, fix: Fix) -> Finding {
    Finding {
        severity: Severity::Garbage,
        what,
        fix,
    }
}

/// Re-hashes a blob file.
fn verify_blob(store: &ImageStore, d: &Digest) -> Result<Option<Digest>> {
    let mut f = store.content.open_blob(d)?;
    let mut h = Hasher::new(d.algorithm());
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).ctx("read", store.content.blob_path(d))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let got = h.finish();
    Ok((&got != d).then_some(got))
}

impl ImageStore {
    pub fn check(&self) -> Result<CheckReport> {
        let mut r = CheckReport::default();
        let (live_blobs, live_layers) = match live_refs(self) {
            Ok(v) => v,
            Err(e) => {
                // Unreadable records or leases: report, and verify what we can.
                r.findings
                    .push(problem(format!("references unreadable: {e}"), Fix::None));
                Default::default()
            }
        };
        // Blobs: every one re-hashed; unreferenced ones are orphans.
        let mut corrupt = BTreeSet::new();
        for d in self.content.list()? {
            r.blobs_checked += 1;
            if let Some(got) = verify_blob(self, &d)? {
                r.findings.push(problem(
                    format!("blob {d} is corrupt (content hashes to {got})"),
                    Fix::RemoveBlob(d.clone()),
                ));
                corrupt.insert(d);
            } else if !live_blobs.contains(&d) {
                r.findings
                    .push(garbage(format!("orphan blob {d}"), Fix::RemoveBlob(d)));
            }
        }
        // Layer dirs: valid meta naming this chain, a diff dir, parents present.
        let mut broken = BTreeSet::new();
        let root = self.layers.root().to_path_buf();
        for e in fs::read_dir(&root).ctx("read dir", &root)? {
            let p = e.ctx("read dir", &root)?.path();
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if name == "tmp" || name == "l" {
                continue;
            }
            let Ok(chain) = format!("sha256:{name}").parse::<Digest>() else {
                r.findings.push(garbage(
                    format!("stray entry {} in the layer store", p.display()),
                    Fix::RemovePath(p),
                ));
                continue;
            };
            r.layers_checked += 1;
            // A missing parent does not make a layer broken: layers of one
            // pull unpack in parallel, each into its own dir from its own
            // blob, so a child can be stored before its parent and a pull
            // killed in between leaves it whole, waiting for the parent the
            // next pull brings. An image naming it is checked below against
            // every layer of its chain.
            let (why, parent_missing) = match self.layers.meta(&chain) {
                Err(e) => (Some(format!("meta unreadable: {e}")), None),
                Ok(m) if m.chain_id != chain => (Some(format!("meta names {}", m.chain_id)), None),
                Ok(_) if !self.layers.diff_dir(&chain).is_dir() => {
                    (Some("no diff dir".into()), None)
                }
                Ok(m) => (None, m.parent.filter(|p| !self.layers.exists(p))),
            };
            if let Some(why) = why {
                r.findings.push(problem(
                    format!("layer {chain} is broken: {why}"),
                    Fix::RemoveLayer(chain.clone()),
                ));
                broken.insert(chain);
            } else if !live_layers.contains(&chain) {
                let what = match parent_missing {
                    Some(p) => format!("orphan layer {chain} (its parent {p} is not stored)"),
                    None => format!("orphan layer {chain}"),
                };
                r.findings.push(garbage(what, Fix::RemoveLayer(chain)));
            }
        }
        // Images: everything they name must be present and sound.
        for rec in self.list().unwrap_or_default() {
            r.images_checked += 1;
            let name = rec
                .repo_tags
                .first()
                .cloned()
                .unwrap_or_else(|| rec.id.short().to_string());
            let mut missing: Vec<String> = rec
                .blobs()
                .filter(|b| !self.content.exists(b) || corrupt.contains(*b))
                .map(|b| format!("blob {b}"))
                .collect();
            missing.extend(
                rec.layers
                    .iter()
                    .filter(|l| !self.layers.exists(&l.chain_id) || broken.contains(&l.chain_id))
                    .map(|l| format!("layer {}", l.chain_id)),
            );
            if !missing.is_empty() {
                r.findings.push(problem(
                    format!("image {name} lacks sound {}", missing.join(", ")),
                    Fix::DropImage(rec.id.clone()),
                ));
            }
        }
        // Leftovers of interrupted work.
        for (p, alive) in self.layers.tmp_entries()? {
            if alive {
                r.busy += 1;
            } else {
                r.findings.push(garbage(
                    format!("unpack leftover {}", p.display()),
                    Fix::RemovePath(p),
                ));
            }
        }
        for e in self.content.ingest_entries()? {
            if e.busy {
                r.busy += 1;
                continue;
            }
            let what = match &e.digest {
                Some(d) if self.content.exists(d) => {
                    format!("ingest leftover of committed blob {d}")
                }
                Some(d) => format!("partial download of {d} ({} bytes, resumable)", e.partial),
                None => format!("stray ingest entry {}", e.dir.display()),
            };
            r.findings.push(garbage(what, Fix::RemovePath(e.dir)));
        }
        for l in self.leases.list()? {
            match l {
                Err(p) if crate::lease::written_before_boot(&p) => r.findings.push(garbage(
                    format!("unreadable lease {} from before the last boot", p.display()),
                    Fix::RemovePath(p),
                )),
                Err(p) => r.findings.push(problem(
                    format!("unreadable lease {}", p.display()),
                    Fix::RemovePath(p),
                )),
                Ok(l) if !l.is_live() => r.findings.push(garbage(
                    format!("lease {} of a dead process", l.id),
                    Fix::RemoveLease(l.id),
                )),
                Ok(l) if matches!(l.kind, LeaseKind::Mount | LeaseKind::Bundle) => {
                    let target = l.target.clone().unwrap_or_default();
                    let mp = if l.kind == LeaseKind::Bundle {
                        target.join("rootfs")
                    } else {
                        target.clone()
                    };
                    if !is_mount_point(&mp) {
                        r.findings.push(garbage(
                            format!(
                                "lease {} for {} which is no longer mounted",
                                l.id,
                                mp.display()
                            ),
                            Fix::RemoveLease(l.id),
                        ));
                    }
                }
                Ok(_) => {}
            }
        }
        let p = self.root().join("images.json.tmp");
        if p.exists() {
            r.findings.push(garbage(
                format!("leftover {}", p.display()),
                Fix::RemovePath(p),
            ));
        }
        Ok(r)
    }

    /// Applies the fixes of a report: drops broken image records first, then
    /// removes garbage and broken data, then collects what that orphaned.
    pub fn repair(&self, report: &CheckReport) -> Result<usize> {
        let mut n = 0;
        let drop_ids: BTreeSet<Digest> = report
            .findings
            .iter()
            .filter_map(|f| match &f.fix {
                Fix::DropImage(id) => Some(id.clone()),
                _ => None,
            })
            .collect();
        if !drop_ids.is_empty() {
            n += self.update(|db| {
                let before = db.images.len();
                db.images.retain(|_, r| !drop_ids.contains(&r.id));
                Ok(before - db.images.len())
            })?;
        }
        let _lock = self.leases.lock()?;
        for f in &report.findings {
            match &f.fix {
                Fix::None | Fix::DropImage(_) => continue,
                Fix::RemoveBlob(d) => self.content.delete(d)?,
                Fix::RemoveLayer(c) => self.layers.remove(c)?,
                Fix::RemoveLease(id) => drop(self.leases.remove(id)?),
                Fix::RemovePath(p) => {
                    let res = if p.is_dir() {
                        fs::remove_dir_all(p)
                    } else {
                        fs::remove_file(p)
                    };
                    match res {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e).ctx("remove", p),
                    }
                }
            }
            n += 1;
        }
        drop(_lock);
        if !drop_ids.is_empty() {
            self.collect(None)?;
        }
        Ok(n)
    }
}

/// Is `p` a mount point (its device differs from its parent's, or it is in
/// /proc/self/mountinfo — overlay mounts share no device with the parent
/// anyway, bind mounts might)?
fn is_mount_point(p: &std::path::Path) -> bool {
    let Ok(canon) = p.canonicalize() else {
        return false;
    };
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return true; // cannot tell: keep the lease
    };
    let want = canon.to_string_lossy().replace(' ', "\\040");
    info.lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{Descriptor, media};

    fn layer_blob(name: &str) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    /// A child layer stored before its parent (parallel unpack, then a
    /// kill) is an orphan to collect or complete, not a broken store; a
    /// layer whose meta names another chain is broken.
    #[test]
    fn child_without_parent_is_garbage_not_a_problem() {
        let t = tempfile::tempdir_in("/var/tmp").unwrap();
        let store = ImageStore::open(t.path()).unwrap();
        let blob = layer_blob("etc/child");
        let desc = Descriptor {
            media_type: media::OCI_LAYER.into(),
            digest: Digest::sha256_of(&blob),
            size: blob.len() as u64,
            platform: None,
            urls: vec![],
            annotations: Default::default(),
        };
        let parent = Digest::sha256_of(b"a parent that never arrived");
        let chain = Digest::sha256_of(b"the child's chain");
        let w = store.content.writer(&desc.digest).unwrap();
        let diff = Digest::sha256_of(&blob);
        store
            .layers
            .ingest(&desc, &diff, &chain, Some(&parent), w, &blob[..], None)
            .unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.problems(), 0, "{:?}", report.findings);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Garbage
                    && f.what.contains(&format!("orphan layer {chain}"))
                    && f.what.contains("parent")),
            "{:?}",
            report.findings
        );
        // Repair collects it with its blob.
        store.repair(&report).unwrap();
        assert!(!store.layers.exists(&chain));
        assert_eq!(store.check().unwrap().findings.len(), 0);

        // A meta naming another chain is broken.
        let w = store.content.writer(&desc.digest).unwrap();
        store
            .layers
            .ingest(&desc, &diff, &chain, None, w, &blob[..], None)
            .unwrap();
        let other = store.layers.dir(&parent);
        fs::rename(store.layers.dir(&chain), &other).unwrap();
        let report = store.check().unwrap();
        assert_eq!(report.problems(), 1, "{:?}", report.findings);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity == Severity::Problem && f.what.contains("meta names")),
            "{:?}",
            report.findings
        );
    }
}
