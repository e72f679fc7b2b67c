//! `save`: images to a tar, as a docker-archive (what `docker save` writes and
//! `docker load` reads: `manifest.json`, `<config>.json`, uncompressed
//! `<id>/layer.tar`) or as an OCI image layout (`oci-layout`, `index.json`,
//! `blobs/<alg>/<hex>` — the stored blobs and manifests, byte for byte, so
//! digests survive the round trip).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};

use serde_json::json;

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::formats::{Compression, media};
use crate::reference::Reference;
use crate::store::ImageStore;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    DockerArchive,
    OciArchive,
}

impl std::str::FromStr for ArchiveFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "docker-archive" | "docker" => Ok(ArchiveFormat::DockerArchive),
            "oci-archive" | "oci" => Ok(ArchiveFormat::OciArchive),
            _ => Err(Error::InvalidArchive(format!(
                "unknown format {s:?} (docker-archive or oci-archive)"
            ))),
        }
    }
}

/// A name the user gave for `save`: the image, and the tag to record when
/// the name was a tag (docker saves the names asked for, not every tag).
struct Wanted {
    rec: crate::store::ImageRecord,
    tags: Vec<String>,
}

fn resolve_all(store: &ImageStore, names: &[String]) -> Result<Vec<Wanted>> {
    let mut out: Vec<Wanted> = Vec::new();
    for n in names {
        let rec = store.resolve(n)?;
        let tag = n
            .parse::<Reference>()
            .ok()
            .and_then(|r| r.tagged())
            .filter(|t| rec.repo_tags.contains(t));
        // By ID: every tag of the image.
        let tags = tag.map_or_else(|| rec.repo_tags.clone(), |t| vec![t]);
        match out.iter_mut().find(|w| w.rec.id == rec.id) {
            Some(w) => w.tags.extend(tags),
            None => out.push(Wanted { rec, tags }),
        }
    }
    Ok(out)
}

fn header(path: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    let _ = path;
    h
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = header(path, data.len() as u64);
    b.append_data(&mut h, path, data)?;
    Ok(())
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    h.set_mtime(0);
    b.append_data(&mut h, path, io::empty())?;
    Ok(())
}

/// The uncompressed layer stream of a stored blob.
fn layer_reader<'a>(
    store: &ImageStore,
    blob: &Digest,
    media_type: &str,
) -> Result<Box<dyn Read + 'a>> {
    let f = io::BufReader::with_capacity(256 * 1024, store.content.open_blob(blob)?);
    Ok(match Compression::of_layer(media_type)? {
        Compression::None => Box::new(f),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(f)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(f)?),
    })
}

/// Writes the images `names` to `out` as a tar in `format`.
pub fn save<W: Write>(
    store: &ImageStore,
    names: &[String],
    format: ArchiveFormat,
    out: W,
) -> Result<()> {
    let wanted = resolve_all(store, names)?;
    let mut b = tar::Builder::new(out);
    match format {
        ArchiveFormat::DockerArchive => save_docker(store, &wanted, &mut b)?,
        ArchiveFormat::OciArchive => save_oci(store, &wanted, &mut b)?,
    }
    b.into_inner()?.flush()?;
    Ok(())
}

fn save_docker<W: Write>(
    store: &ImageStore,
    wanted: &[Wanted],
    b: &mut tar::Builder<W>,
) -> Result<()> {
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written = BTreeSet::new();
    for w in wanted {
        let rec = &w.rec;
        let config = store.content.read(&rec.id)?;
        let config_name = format!("{}.json", rec.id.hex());
        add_bytes(b, &config_name, &config)?;
        let mut layer_paths = Vec::new();
        let mut parent: Option<&Digest> = None;
        for l in &rec.layers {
            // The chain ID names the dir: unique per position, stable across images.
            let dir = l.chain_id.hex().to_string();
            let path = format!("{dir}/layer.tar");
            if written.insert(dir.clone()) {
                add_dir(b, &format!("{dir}/"))?;
                add_bytes(b, &format!("{dir}/VERSION"), b"1.0")?;
                let mut v1 = json!({ "id": dir, "created": "1970-01-01T00:00:00Z" });
                if let Some(p) = parent {
                    v1["parent"] = json!(p.hex());
                }
                add_bytes(b, &format!("{dir}/json"), v1.to_string().as_bytes())?;
                // Tar headers come before the data: measure, then stream.
                let size = io::copy(
                    &mut layer_reader(store, &l.blob, &l.media_type)?,
                    &mut io::sink(),
                )?;
                let mut h = header(&path, size);
                b.append_data(
                    &mut h,
                    &path,
                    layer_reader(store, &l.blob, &l.media_type)?.take(size),
                )?;
            }
            layer_paths.push(path);
            parent = Some(&l.chain_id);
        }
        let tags: Vec<String> = w.tags.iter().map(|t| crate::store::familiar(t)).collect();
        for t in &w.tags {
            if let Ok(r) = t.parse::<Reference>()
                && let (Some(tag), Some(top)) = (&r.tag, rec.layers.last())
            {
                repositories
                    .entry(r.familiar_repository())
                    .or_default()
                    .insert(tag.clone(), top.chain_id.hex().to_string());
            }
        }
        manifest.push(json!({
            "Config": config_name,
            "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { json!(tags) },
            "Layers": layer_paths,
        }));
    }
    add_bytes(
        b,
        "manifest.json",
        serde_json::to_string(&manifest).expect("json").as_bytes(),
    )?;
    if !repositories.is_empty() {
        add_bytes(
            b,
            "repositories",
            serde_json::to_string(&repositories)
                .expect("json")
                .as_bytes(),
        )?;
    }
    Ok(())
}

fn save_oci<W: Write>(
    store: &ImageStore,
    wanted: &[Wanted],
    b: &mut tar::Builder<W>,
) -> Result<()> {
    add_bytes(b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add_dir(b, "blobs/")?;
    let mut dirs = BTreeSet::new();
    let mut written = BTreeSet::new();
    let mut put_blob = |b: &mut tar::Builder<W>, d: &Digest| -> Result<()> {
        if !written.insert(d.clone()) {
            return Ok(());
        }
        let dir = format!("blobs/{}/", d.algorithm().as_str());
        if dirs.insert(dir.clone()) {
            add_dir(b, &dir)?;
        }
        let path = format!("{dir}{}", d.hex());
        let size = store.content.size(d)?;
        let mut h = header(&path, size);
        b.append_data(&mut h, &path, store.content.open_blob(d)?.take(size))?;
        Ok(())
    };
    let mut manifests = Vec::new();
    for w in wanted {
        let rec = &w.rec;
        for d in rec.blobs().filter(|d| Some(*d) != rec.index.as_ref()) {
            put_blob(b, d)?;
        }
        let size = store.content.size(&rec.manifest)?;
        let desc = |annotations: serde_json::Value| {
            json!({
                "mediaType": rec.manifest_media_type,
                "digest": rec.manifest.to_string(),
                "size": size,
                "annotations": annotations,
            })
        };
        if w.tags.is_empty() {
            manifests.push(desc(json!({})));
        }
        for t in &w.tags {
            let tag = t.parse::<Reference>().ok().and_then(|r| r.tag);
            manifests.push(desc(json!({
                "io.containerd.image.name": t,
                "org.opencontainers.image.ref.name": tag.unwrap_or_default(),
            })));
        }
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": manifests,
    });
    add_bytes(
        b,
        "index.json",
        serde_json::to_string(&index).expect("json").as_bytes(),
    )?;
    Ok(())
}
