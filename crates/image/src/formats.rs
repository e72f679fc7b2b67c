//! OCI and Docker schema-2 manifests, indexes/manifest lists and image configs.
//!
//! Own serde structs rather than oci-spec's image types: one tolerant type reads
//! both the OCI and the Docker flavour (same JSON shape, different media types),
//! unknown fields are ignored, and re-serialising is never needed because
//! manifests are kept as the exact bytes that were digested.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};

pub mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_FOREIGN: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    /// Every manifest type we accept, for the registry `Accept` header.
    pub const MANIFEST_TYPES: [&str; 4] = [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST];
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: Option<String>,
    pub manifests: Vec<Descriptor>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
}

impl Platform {
    /// The platform of this machine (what `docker pull` picks by default).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        let variant = (arch == "arm64").then(|| "v8".to_string());
        Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant,
            os_version: None,
        }
    }

    /// Does an index entry's platform satisfy this (wanted) platform? A missing
    /// variant on either side matches, as arm64 images often omit "v8".
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && match (&self.variant, &candidate.variant) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() < 2 || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(Error::InvalidPlatform(s.into()));
        }
        Ok(Platform {
            os: parts[0].into(),
            architecture: parts[1].into(),
            variant: parts.get(2).map(|v| v.to_string()),
            os_version: None,
        })
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Image config (the parts Berth uses; the raw JSON stays in the content store).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ImageConfig {
    #[serde(default)]
    pub created: Option<String>,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default)]
    pub history: Vec<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub stop_signal: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RootFs {
    #[serde(rename = "type", default)]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

/// Layer compression, from the media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn of_layer(media_type: &str) -> Result<Compression> {
        use media::*;
        match media_type {
            DOCKER_FOREIGN => Err(Error::ForeignLayer(media_type.into())),
            t if t.contains(".nondistributable.") => Err(Error::ForeignLayer(t.into())),
            OCI_LAYER | "application/vnd.docker.image.rootfs.diff.tar" => Ok(Compression::None),
            OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Ok(Compression::Gzip),
            OCI_LAYER_ZSTD => Ok(Compression::Zstd),
            other => Err(Error::UnsupportedMediaType(other.into())),
        }
    }
}

/// A parsed manifest-ish document.
#[derive(Clone, Debug)]
pub enum ManifestKind {
    Image(Box<Manifest>),
    Index(Index),
}

/// Parses manifest bytes. The media type comes from the registry's Content-Type
/// or the document's own `mediaType`; with neither, the shape decides.
pub fn parse_manifest(bytes: &[u8], content_type: Option<&str>) -> Result<ManifestKind> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Probe {
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        schema_version: Option<u32>,
    }
    let json = |e| Error::Json {
        what: "manifest".into(),
        source: e,
    };
    let probe: Probe = serde_json::from_slice(bytes).map_err(json)?;
    let mt = probe
        .media_type
        .clone()
        .or_else(|| content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    if probe.schema_version == Some(1) || mt.contains("distribution.manifest.v1") {
        return Err(Error::UnsupportedMediaType(
            "docker schema 1 manifest (deprecated)".into(),
        ));
    }
    let is_index = mt == media::OCI_INDEX
        || mt == media::DOCKER_LIST
        || (mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST && probe.manifests.is_some());
    if is_index {
        Ok(ManifestKind::Index(
            serde_json::from_slice(bytes).map_err(json)?,
        ))
    } else {
        Ok(ManifestKind::Image(
            serde_json::from_slice(bytes).map_err(json)?,
        ))
    }
}

/// Picks the manifest for `want` from an index.
pub fn select_platform<'a>(index: &'a Index, want: &Platform) -> Result<&'a Descriptor> {
    index
        .manifests
        .iter()
        .find(|d| d.platform.as_ref().is_some_and(|p| want.matches(p)))
        .ok_or_else(|| Error::NoMatchingPlatform(want.to_string()))
}

pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    serde_json::from_slice(bytes).map_err(|e| Error::Json {
        what: "image config".into(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json",
      "manifests":[
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":1,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
        {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":2,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","platform":{"architecture":"amd64","os":"linux"}}]}"#;

    #[test]
    fn docker_list_platform_selection() {
        let ManifestKind::Index(idx) = parse_manifest(LIST.as_bytes(), None).unwrap() else {
            panic!("not an index")
        };
        let amd = select_platform(&idx, &"linux/amd64".parse().unwrap()).unwrap();
        assert_eq!(amd.size, 2);
        let arm = select_platform(&idx, &"linux/arm64".parse().unwrap()).unwrap();
        assert_eq!(arm.size, 1);
        assert!(select_platform(&idx, &"linux/s390x".parse().unwrap()).is_err());
        assert!("linux".parse::<Platform>().is_err());
    }

    #[test]
    fn docker_manifest_and_layers() {
        let m = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",
          "config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":3,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333"},
          "layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":4,"digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444"}]}"#;
        let ManifestKind::Image(m) = parse_manifest(m.as_bytes(), None).unwrap() else {
            panic!()
        };
        assert_eq!(
            Compression::of_layer(&m.layers[0].media_type).unwrap(),
            Compression::Gzip
        );
        assert!(matches!(
            Compression::of_layer(media::DOCKER_FOREIGN),
            Err(Error::ForeignLayer(_))
        ));
        assert!(parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#, None).is_err());
    }
}
