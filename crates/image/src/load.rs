//! `load` (docker-archive or OCI-layout tar) and `import` (a plain rootfs
//! tarball becomes a one-layer image).
//!
//! The archive is first indexed (name → offset, size), then read by seeking,
//! because docker writes `manifest.json` after the layers. Names in the
//! archive are only keys into that index: nothing is ever written under a name
//! taken from it, so a hostile archive cannot place files; its layers go
//! through the same safe unpacker as a pull.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use serde::Deserialize;
use serde_json::json;

use crate::digest::{Algorithm, Digest, Hasher, chain_ids};
use crate::error::{Error, IoContext, Result};
use crate::formats::{self, Descriptor, ManifestKind, Platform, media};
use crate::lease::Lease;
use crate::reference::Reference;
use crate::store::{ImageRecord, ImageStore, LayerRecord};

/// Metadata files (manifests, configs) larger than this are refused.
const MAX_META: u64 = 64 << 20;

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

struct Archive {
    file: File,
    members: BTreeMap<String, Member>,
}

fn norm(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

impl Archive {
    fn index(file: File) -> Result<Archive> {
        let mut members = BTreeMap::new();
        {
            let mut ar = tar::Archive::new(BufReader::with_capacity(1 << 20, &file));
            for e in ar.entries()? {
                let e = e?;
                let name = norm(&String::from_utf8_lossy(&e.path_bytes()));
                let kind = e.header().entry_type();
                let m = if kind.is_file() {
                    Member::File {
                        offset: e.raw_file_position(),
                        size: e.size(),
                    }
                } else if kind.is_symlink() || kind.is_hard_link() {
                    let target = String::from_utf8_lossy(&e.link_name_bytes().unwrap_or_default())
                        .into_owned();
                    // Symlinks are relative to their dir; hard links to the root.
                    let base = if kind.is_symlink() {
                        name.rsplit_once('/').map_or("", |(d, _)| d).to_string()
                    } else {
                        String::new()
                    };
                    Member::Link(norm(&format!("{base}/{target}")))
                } else {
                    continue;
                };
                members.insert(name, m);
            }
        }
        Ok(Archive { file, members })
    }

    fn find(&self, name: &str) -> Result<(u64, u64)> {
        let mut name = norm(name);
        for _ in 0..16 {
            match self.members.get(&name) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(t)) => name = t.clone(),
                None => break,
            }
        }
        Err(Error::InvalidArchive(format!(
            "no file {name:?} in the archive"
        )))
    }

    fn has(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    fn open(&self, name: &str) -> Result<(io::Take<File>, u64)> {
        let (offset, size) = self.find(name)?;
        let mut f = self.file.try_clone()?;
        f.seek(SeekFrom::Start(offset))?;
        Ok((f.take(size), size))
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (mut r, size) = self.open(name)?;
        if size > MAX_META {
            return Err(Error::InvalidArchive(format!("{name} is {size} bytes")));
        }
        let mut v = Vec::with_capacity(size as usize);
        r.read_to_end(&mut v)?;
        Ok(v)
    }
}

/// What a load produced: per image, its ID and the names it got.
#[derive(Debug)]
pub struct Loaded {
    pub id: Digest,
    pub tags: Vec<String>,
}

fn sniff(r: &mut impl Read) -> Result<(Digest, &'static str)> {
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 4 {
            head.extend_from_slice(&buf[..n.min(4)]);
        }
        h.update(&buf[..n]);
    }
    let mt = match head.as_slice() {
        [0x1f, 0x8b, ..] => media::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => media::OCI_LAYER_ZSTD,
        _ => media::OCI_LAYER,
    };
    Ok((h.finish(), mt))
}

impl ImageStore {
    /// Loads every image in a docker-archive or OCI-layout tar at `path`.
    pub fn load_archive(&self, path: &std::path::Path) -> Result<Vec<Loaded>> {
        let ar = Archive::index(File::open(path).ctx("open", path)?)?;
        let lease = Lease::for_process("load");
        let _g = self.lease_process(&lease)?;
        if ar.has("manifest.json") {
            self.load_docker(&ar, lease)
        } else if ar.has("index.json") {
            self.load_oci(&ar, lease)
        } else {
            Err(Error::InvalidArchive(
                "neither manifest.json (docker-archive) nor index.json (OCI layout)".into(),
            ))
        }
    }

    /// Stores one layer read from `open()`, unless layer and blob are present.
    fn put_layer(
        &self,
        desc: &Descriptor,
        diff_id: &Digest,
        chain: &Digest,
        parent: Option<&Digest>,
        mut open: impl FnMut() -> Result<io::Take<File>>,
    ) -> Result<u64> {
        if !self.layers.exists(chain) {
            let w = self.content.writer(&desc.digest)?;
            let mut w = w;
            if w.offset() > 0 {
                w.truncate()?;
            }
            return Ok(self
                .layers
                .ingest(desc, diff_id, chain, parent, w, open()?, None)?
                .size);
        }
        if !self.content.exists(&desc.digest) {
            self.content
                .ingest_reader(&desc.digest, desc.size, open()?)?;
        }
        Ok(self.layers.meta(chain)?.size)
    }

    /// Records an image whose blobs and layers are stored.
    fn finish_image(
        &self,
        manifest: (&Digest, &str),
        config_bytes: &[u8],
        layers: Vec<LayerRecord>,
        size: u64,
        tags: &[String],
    ) -> Result<Loaded> {
        let cfg = formats::parse_config(config_bytes)?;
        let rec = ImageRecord {
            id: Digest::sha256_of(config_bytes),
            manifest: manifest.0.clone(),
            manifest_media_type: manifest.1.to_string(),
            index: None,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            layers,
            created: cfg.created.clone(),
            platform: Platform {
                architecture: cfg.architecture.clone(),
                os: cfg.os.clone(),
                variant: cfg.variant.clone(),
                os_version: None,
            }
            .to_string(),
            size,
        };
        if tags.is_empty() {
            self.put(rec.clone(), None)?;
        }
        for t in tags {
            self.put(rec.clone(), Some(t))?;
        }
        Ok(Loaded {
            id: rec.id,
            tags: tags.to_vec(),
        })
    }

    fn load_docker(&self, ar: &Archive, mut lease: Lease) -> Result<Vec<Loaded>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Entry {
            config: String,
            #[serde(default)]
            repo_tags: Option<Vec<String>>,
            layers: Vec<String>,
        }
        let entries: Vec<Entry> = serde_json::from_slice(&ar.read_small("manifest.json")?)
            .map_err(|e| Error::Json {
                what: "manifest.json".into(),
                source: e,
            })?;
        let mut out = Vec::new();
        for e in entries {
            let config_bytes = ar.read_small(&e.config)?;
            let cfg = formats::parse_config(&config_bytes)?;
            let diff_ids = cfg.rootfs.diff_ids.clone();
            if diff_ids.len() != e.layers.len() {
                return Err(Error::LayerCountMismatch {
                    want: e.layers.len(),
                    got: diff_ids.len(),
                });
            }
            let chains = chain_ids(&diff_ids);
            let config_digest = self.content.write_all(&config_bytes, None)?;
            lease.blobs.push(config_digest.clone());
            lease.chain_ids.extend(chains.iter().cloned());
            self.leases.put(&lease)?;
            let mut layers = Vec::new();
            let mut descs = Vec::new();
            let mut size = 0;
            for (i, path) in e.layers.iter().enumerate() {
                let (digest, mt) = sniff(&mut ar.open(path)?.0)?;
                let desc = Descriptor {
                    media_type: mt.into(),
                    digest,
                    size: ar.find(path)?.1,
                    platform: None,
                    urls: vec![],
                    annotations: Default::default(),
                };
                lease.blobs.push(desc.digest.clone());
                self.leases.put(&lease)?;
                let parent = i.checked_sub(1).map(|p| &chains[p]);
                size += self.put_layer(&desc, &diff_ids[i], &chains[i], parent, || {
                    Ok(ar.open(path)?.0)
                })?;
                layers.push(LayerRecord {
                    blob: desc.digest.clone(),
                    media_type: desc.media_type.clone(),
                    blob_size: desc.size,
                    diff_id: diff_ids[i].clone(),
                    chain_id: chains[i].clone(),
                });
                descs.push(desc);
            }
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": media::OCI_MANIFEST,
                "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest.to_string(),
                           "size": config_bytes.len()},
                "layers": descs,
            });
            let mbytes = serde_json::to_vec(&manifest).expect("json");
            let mdigest = self.content.write_all(&mbytes, None)?;
            let tags: Vec<String> = e
                .repo_tags
                .unwrap_or_default()
                .iter()
                .filter_map(|t| t.parse::<Reference>().ok()?.tagged())
                .collect();
            out.push(self.finish_image(
                (&mdigest, media::OCI_MANIFEST),
                &config_bytes,
                layers,
                size,
                &tags,
            )?);
        }
        Ok(out)
    }

    fn load_oci(&self, ar: &Archive, mut lease: Lease) -> Result<Vec<Loaded>> {
        let blob_path = |d: &Digest| format!("blobs/{}/{}", d.algorithm().as_str(), d.hex());
        let read_verified = |d: &Digest| -> Result<Vec<u8>> {
            let b = ar.read_small(&blob_path(d))?;
            let mut h = Hasher::new(d.algorithm());
            h.update(&b);
            let got = h.finish();
            if &got != d {
                return Err(Error::DigestMismatch {
                    expected: d.to_string(),
                    actual: got.to_string(),
                });
            }
            Ok(b)
        };
        let index: formats::Index =
            serde_json::from_slice(&ar.read_small("index.json")?).map_err(|e| Error::Json {
                what: "index.json".into(),
                source: e,
            })?;
        let mut out: Vec<Loaded> = Vec::new();
        for top in &index.manifests {
            // containerd's full name; else ref.name when it is a name and
            // not a bare tag ("latest", as skopeo writes), which names no repo.
            let name = top
                .annotations
                .get("io.containerd.image.name")
                .or_else(|| {
                    top.annotations
                        .get("org.opencontainers.image.ref.name")
                        .filter(|n| n.contains('/') || n.contains(':'))
                })
                .and_then(|n| n.parse::<Reference>().ok())
                .and_then(|r| r.tagged());
            let mut mdesc = top.clone();
            let mut mbytes = read_verified(&mdesc.digest)?;
            if let ManifestKind::Index(idx) =
                formats::parse_manifest(&mbytes, Some(&mdesc.media_type))?
            {
                self.content.write_all(&mbytes, Some(&mdesc.digest))?;
                mdesc = formats::select_platform(&idx, &Platform::host())?.clone();
                mbytes = read_verified(&mdesc.digest)?;
            }
            let ManifestKind::Image(m) = formats::parse_manifest(&mbytes, Some(&mdesc.media_type))?
            else {
                return Err(Error::InvalidArchive(
                    "index points at another index".into(),
                ));
            };
            let config_bytes = read_verified(&m.config.digest)?;
            let cfg = formats::parse_config(&config_bytes)?;
            let diff_ids = cfg.rootfs.diff_ids.clone();
            if diff_ids.len() != m.layers.len() {
                return Err(Error::LayerCountMismatch {
                    want: m.layers.len(),
                    got: diff_ids.len(),
                });
            }
            let chains = chain_ids(&diff_ids);
            lease
                .blobs
                .extend([mdesc.digest.clone(), m.config.digest.clone()]);
            lease
                .blobs
                .extend(m.layers.iter().map(|l| l.digest.clone()));
            lease.chain_ids.extend(chains.iter().cloned());
            self.leases.put(&lease)?;
            self.content
                .write_all(&config_bytes, Some(&m.config.digest))?;
            let mut layers = Vec::new();
            let mut size = 0;
            for (i, l) in m.layers.iter().enumerate() {
                let parent = i.checked_sub(1).map(|p| &chains[p]);
                size += self.put_layer(l, &diff_ids[i], &chains[i], parent, || {
                    Ok(ar.open(&blob_path(&l.digest))?.0)
                })?;
                layers.push(LayerRecord {
                    blob: l.digest.clone(),
                    media_type: l.media_type.clone(),
                    blob_size: l.size,
                    diff_id: diff_ids[i].clone(),
                    chain_id: chains[i].clone(),
                });
            }
            self.content.write_all(&mbytes, Some(&mdesc.digest))?;
            let mt = m
                .media_type
                .clone()
                .unwrap_or_else(|| mdesc.media_type.clone());
            let tags: Vec<String> = name.into_iter().collect();
            match out.iter_mut().find(|o| o.id == m.config.digest) {
                Some(o) if !tags.is_empty() => {
                    self.tag(&o.id.to_string(), &tags[0])?;
                    o.tags.extend(tags);
                }
                Some(_) => {}
                None => out.push(self.finish_image(
                    (&mdesc.digest, &mt),
                    &config_bytes,
                    layers,
                    size,
                    &tags,
                )?),
            }
        }
        Ok(out)
    }

    /// `import`: a rootfs tarball (plain, gzip or zstd) at `path` becomes a
    /// one-layer image, tagged `tag` (a full name) if given, with `config`
    /// as its runtime config (Cmd, Env, ...; `{}` for none).
    pub fn import(
        &self,
        path: &std::path::Path,
        tag: Option<&str>,
        comment: &str,
        config: serde_json::Value,
    ) -> Result<Loaded> {
        let open = || -> Result<io::Take<File>> {
            let f = File::open(path).ctx("open", path)?;
            let len = f.metadata().ctx("stat", path)?.len();
            Ok(f.take(len))
        };
        let (blob, mt) = sniff(&mut open()?)?;
        // The diff ID needs the decompressed stream: one more pass.
        let diff_id = {
            let raw = BufReader::with_capacity(256 * 1024, open()?);
            let mut r: Box<dyn Read> = match mt {
                media::OCI_LAYER_GZIP => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
                media::OCI_LAYER_ZSTD => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
                _ => Box::new(raw),
            };
            sniff(&mut r)?.0
        };
        let desc = Descriptor {
            media_type: mt.into(),
            digest: blob.clone(),
            size: open()?.limit(),
            platform: None,
            urls: vec![],
            annotations: Default::default(),
        };
        let mut lease = Lease::for_process("import");
        lease.blobs.push(blob);
        lease.chain_ids.push(diff_id.clone());
        let _g = self.lease_process(&lease)?;
        let size = self.put_layer(&desc, &diff_id, &diff_id, None, open)?;
        let host = Platform::host();
        let now = crate::history::rfc3339_now();
        let config = json!({
            "created": now,
            "architecture": host.architecture,
            "os": host.os,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
            "history": [{"created": now, "created_by": "berth import", "comment": comment}],
        });
        let config_bytes = serde_json::to_vec(&config).expect("json");
        let config_digest = self.content.write_all(&config_bytes, None)?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": media::OCI_CONFIG, "digest": config_digest.to_string(),
                       "size": config_bytes.len()},
            "layers": [desc],
        });
        let mbytes = serde_json::to_vec(&manifest).expect("json");
        let mdigest = self.content.write_all(&mbytes, None)?;
        let layers = vec![LayerRecord {
            blob: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            blob_size: desc.size,
            diff_id: diff_id.clone(),
            chain_id: diff_id,
        }];
        let tags: Vec<String> = tag.into_iter().map(str::to_string).collect();
        self.finish_image(
            (&mdigest, media::OCI_MANIFEST),
            &config_bytes,
            layers,
            size,
            &tags,
        )
    }
}
