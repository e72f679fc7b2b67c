//! Manifest validation on PUT: the JSON parses, the media type is one we serve,
//! and everything it references (config, layers, child manifests) is in the
//! repository. Also derives the referrers descriptor from a `subject`.

use std::collections::BTreeMap;

use berth_image::Digest;
use berth_image::formats::media;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::route::RepoName;
use crate::store::Store;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: Option<u32>,
    media_type: Option<String>,
    artifact_type: Option<String>,
    config: Option<RawDesc>,
    layers: Option<Vec<RawDesc>>,
    manifests: Option<Vec<RawDesc>>,
    subject: Option<RawDesc>,
    annotations: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDesc {
    media_type: Option<String>,
    digest: String,
    size: Option<i64>,
    #[serde(default)]
    urls: Vec<String>,
}

impl RawDesc {
    fn digest(&self) -> Result<Digest> {
        self.digest
            .parse()
            .map_err(|_| Error::ManifestInvalid(format!("bad digest {:?}", self.digest)))
    }
}

/// A manifest that passed validation.
pub struct Checked {
    pub media_type: String,
    pub subject: Option<Digest>,
    /// This manifest as a referrers-API descriptor (when it has a subject).
    pub descriptor: Option<serde_json::Value>,
    /// Blobs to mark fresh so a running GC keeps them.
    pub references: Vec<Digest>,
}

fn is_index(mt: &str) -> bool {
    mt == media::OCI_INDEX || mt == media::DOCKER_LIST
}

/// Validates `body` (digest `d`) for repository `repo`. `content_type` is the
/// request's Content-Type.
pub fn check(
    store: &Store,
    repo: &RepoName,
    d: &Digest,
    body: &[u8],
    content_type: Option<&str>,
) -> Result<Checked> {
    let raw: Raw =
        serde_json::from_slice(body).map_err(|e| Error::ManifestInvalid(format!("json: {e}")))?;
    if raw.schema_version != Some(2) {
        return Err(Error::ManifestInvalid("schemaVersion must be 2".into()));
    }
    let content_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| media::MANIFEST_TYPES.contains(c));
    let media_type = match (content_type, raw.media_type.as_deref()) {
        (Some(c), Some(b)) if c != b => {
            return Err(Error::ManifestInvalid(format!(
                "Content-Type {c} but mediaType {b}"
            )));
        }
        (Some(c), _) => c.to_string(),
        (None, Some(b)) if media::MANIFEST_TYPES.contains(&b) => b.to_string(),
        (None, Some(b)) => {
            return Err(Error::ManifestInvalid(format!("unsupported mediaType {b}")));
        }
        (None, None) if raw.manifests.is_some() => media::OCI_INDEX.to_string(),
        (None, None) => media::OCI_MANIFEST.to_string(),
    };
    let mut references = Vec::new();
    if is_index(&media_type) {
        let children = raw
            .manifests
            .as_ref()
            .ok_or_else(|| Error::ManifestInvalid("index without manifests".into()))?;
        for c in children {
            let cd = c.digest()?;
            if store.manifest_type(repo, &cd)?.is_none() {
                return Err(Error::ManifestBlobUnknown(cd.to_string()));
            }
            references.push(cd);
        }
    } else {
        let config = raw
            .config
            .as_ref()
            .ok_or_else(|| Error::ManifestInvalid("manifest without config".into()))?;
        let layers = raw
            .layers
            .as_ref()
            .ok_or_else(|| Error::ManifestInvalid("manifest without layers".into()))?;
        for b in std::iter::once(config).chain(layers) {
            let bd = b.digest()?;
            if b.size.is_some_and(|s| s < 0) {
                return Err(Error::ManifestInvalid(format!("negative size for {bd}")));
            }
            // Foreign layers live elsewhere (their urls); everything else must be here.
            if !b.urls.is_empty() {
                continue;
            }
            if !store.blob_linked(repo, &bd) {
                return Err(Error::ManifestBlobUnknown(bd.to_string()));
            }
            if let Some(size) = b.size
                && store.content.size(&bd)? != size as u64
            {
                return Err(Error::ManifestInvalid(format!(
                    "size of {bd} is not {size}"
                )));
            }
            references.push(bd);
        }
    }
    let subject = raw.subject.as_ref().map(RawDesc::digest).transpose()?;
    let descriptor = subject.as_ref().map(|_| {
        // Spec: an image manifest without artifactType reports its config's type.
        let artifact_type = raw.artifact_type.clone().or_else(|| {
            (!is_index(&media_type))
                .then(|| raw.config.as_ref().and_then(|c| c.media_type.clone()))
                .flatten()
        });
        let mut v = serde_json::json!({
            "mediaType": media_type,
            "digest": d.to_string(),
            "size": body.len(),
        });
        if let Some(at) = artifact_type {
            v["artifactType"] = at.into();
        }
        if let Some(a) = raw.annotations.as_ref().filter(|a| !a.is_empty()) {
            v["annotations"] = serde_json::to_value(a).expect("map serialises");
        }
        v
    });
    Ok(Checked {
        media_type,
        subject,
        descriptor,
        references,
    })
}
