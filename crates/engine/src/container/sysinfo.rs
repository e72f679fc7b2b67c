//! What the host's cgroups offer (dockerd's pkg/sysinfo) and the HostConfig
//! limits checked against it as dockerd checks them (daemon/daemon_unix.go,
//! verifyPlatformContainerResources): a block I/O weight or a swap limit the
//! host cannot apply is dropped with dockerd's warning, which the create
//! response carries in `Warnings`; a weight out of range is refused. What
//! is left goes into the OCI `linux.resources`, which berth-runtime refuses
//! rather than drops should the host still lack it.

use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use serde_json::{Value, json};

use super::model::HostConfig;
use crate::error::{EngineError, Result};

/// dockerd's warnings, word for word.
pub(crate) const NO_WEIGHT: &str =
    "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.";
pub(crate) const NO_WEIGHT_DEVICE: &str = "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.";
pub(crate) const NO_SWAP_LIMIT: &str = "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.";

/// What the host's cgroups offer (docker's sysinfo).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Support {
    pub weight: bool,
    pub weight_device: bool,
    /// Swap accounting (cgroup v1 `memory.memsw.*`, off unless the kernel
    /// was booted with it).
    pub swap_limit: bool,
}

impl Support {
    /// The host's: on cgroup v1 the blkio hierarchy's root holds the weight
    /// files only under the BFQ (or CFQ) scheduler; on v2 the io controller
    /// carries them.
    pub(crate) fn detect() -> Support {
        let root = Path::new(berth_cgroups::DEFAULT_ROOT);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        Support::detect_at(root, &mountinfo, crate::cgroup_v2())
    }

    pub(crate) fn detect_at(root: &Path, mountinfo: &str, v2: bool) -> Support {
        if v2 {
            let controllers =
                std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            return Support {
                weight: has("io"),
                weight_device: has("io"),
                swap_limit: has("memory"),
            };
        }
        let mounts = berth_cgroups::path::parse_mountinfo(mountinfo, root);
        let has = |controller: &str, files: &[&str]| {
            mounts
                .iter()
                .find(|m| m.controllers.iter().any(|c| c == controller))
                .is_some_and(|m| files.iter().any(|f| m.mount_point.join(f).exists()))
        };
        Support {
            weight: has("blkio", &["blkio.weight", "blkio.bfq.weight"]),
            weight_device: has("blkio", &["blkio.weight_device", "blkio.bfq.weight_device"]),
            swap_limit: has("memory", &["memory.memsw.limit_in_bytes"]),
        }
    }
}

/// Drops what the host cannot apply, with dockerd's warnings, and refuses a
/// weight out of range. Without swap accounting a memory limit goes alone
/// (swap -1): with a swap limit asked for, with dockerd's warning.
pub(crate) fn verify(hc: &mut HostConfig, host: Support) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    if hc.memory.is_some_and(|m| m > 0) && !host.swap_limit {
        if hc.memory_swap.is_some_and(|s| s > 0) {
            warnings.push(NO_SWAP_LIMIT.to_string());
        }
        hc.memory_swap = Some(-1);
    }
    if hc.blkio_weight.is_some_and(|w| w > 0) && !host.weight {
        warnings.push(NO_WEIGHT.to_string());
        hc.blkio_weight = Some(0);
    }
    if hc
        .blkio_weight
        .is_some_and(|w| w > 0 && !(10..=1000).contains(&w))
    {
        return Err(EngineError::InvalidArgument(
            "Range of blkio weight is from 10 to 1000".into(),
        ));
    }
    if hc
        .blkio_weight_device
        .as_ref()
        .is_some_and(|d| !d.is_empty())
        && !host.weight_device
    {
        warnings.push(NO_WEIGHT_DEVICE.to_string());
        hc.blkio_weight_device = Some(Vec::new());
    }
    Ok(warnings)
}

/// `linux.resources.blockIO` for the weights left after [`verify`].
pub(crate) fn resources(hc: &HostConfig, resources: &mut Value) -> Result<()> {
    let mut bio = serde_json::Map::new();
    if let Some(w) = hc.blkio_weight.filter(|w| *w > 0) {
        bio.insert("weight".into(), json!(w));
    }
    let mut devices = Vec::new();
    for d in hc.blkio_weight_device.iter().flatten() {
        let meta = std::fs::metadata(&d.path)
            .map_err(|e| EngineError::InvalidArgument(format!("stat {}: {e}", d.path)))?;
        if !meta.file_type().is_block_device() {
            return Err(EngineError::InvalidArgument(format!(
                "{} is not a block device",
                d.path
            )));
        }
        use std::os::unix::fs::MetadataExt;
        let rdev = meta.rdev();
        devices.push(json!({
            "major": libc::major(rdev),
            "minor": libc::minor(rdev),
            "weight": d.weight,
        }));
    }
    if !devices.is_empty() {
        bio.insert("weightDevice".into(), Value::Array(devices));
    }
    if !bio.is_empty() {
        resources["blockIO"] = Value::Object(bio);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::model::WeightDevice;

    #[test]
    fn unsupported_weights_are_dropped_with_dockerds_warnings() {
        let none = Support {
            weight: false,
            weight_device: false,
            swap_limit: false,
        };
        let mut hc = HostConfig {
            blkio_weight: Some(300),
            blkio_weight_device: Some(vec![WeightDevice {
                path: "/dev/null".into(),
                weight: 300,
            }]),
            ..HostConfig::default()
        };
        let w = verify(&mut hc, none).unwrap();
        assert_eq!(w, [NO_WEIGHT, NO_WEIGHT_DEVICE]);
        let mut r = json!({});
        resources(&hc, &mut r).unwrap();
        assert_eq!(r, json!({}));
        // dockerd discards before its range check.
        let mut hc = HostConfig {
            blkio_weight: Some(5),
            ..HostConfig::default()
        };
        assert_eq!(verify(&mut hc, none).unwrap(), [NO_WEIGHT]);
    }

    #[test]
    fn without_swap_accounting_memory_goes_alone() {
        let host = Support {
            weight: true,
            weight_device: true,
            swap_limit: false,
        };
        let mut hc = HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(128 << 20),
            ..HostConfig::default()
        };
        assert_eq!(verify(&mut hc, host).unwrap(), [NO_SWAP_LIMIT]);
        assert_eq!(hc.memory_swap, Some(-1));
        let mut r = json!({});
        crate::container::spec::limits(&hc, &mut r).unwrap();
        assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": -1}));
        // Unset swap (docker: twice the memory) needs no warning.
        hc.memory_swap = None;
        assert!(verify(&mut hc, host).unwrap().is_empty());
        assert_eq!(hc.memory_swap, Some(-1));
        // With swap accounting nothing changes.
        let mut hc = HostConfig {
            memory: Some(64 << 20),
            ..HostConfig::default()
        };
        let all = Support {
            swap_limit: true,
            ..host
        };
        assert!(verify(&mut hc, all).unwrap().is_empty());
        assert_eq!(hc.memory_swap, None);
    }

    #[test]
    fn supported_weights_are_range_checked_and_passed_on() {
        let all = Support {
            weight: true,
            weight_device: true,
            swap_limit: true,
        };
        let mut hc = HostConfig {
            blkio_weight: Some(5),
            ..HostConfig::default()
        };
        let e = verify(&mut hc, all).unwrap_err();
        assert_eq!(e.to_string(), "Range of blkio weight is from 10 to 1000");
        hc.blkio_weight = Some(300);
        assert!(verify(&mut hc, all).unwrap().is_empty());
        let mut r = json!({});
        resources(&hc, &mut r).unwrap();
        assert_eq!(r, json!({"blockIO": {"weight": 300}}));
        hc.blkio_weight_device = Some(vec![WeightDevice {
            path: "/dev/null".into(),
            weight: 300,
        }]);
        let e = resources(&hc, &mut r).unwrap_err().to_string();
        assert_eq!(e, "/dev/null is not a block device");
    }

    #[test]
    fn detection_reads_the_blkio_hierarchy() {
        let tmp = tempfile::tempdir().unwrap();
        let blkio = tmp.path().join("blkio");
        std::fs::create_dir(&blkio).unwrap();
        let mountinfo = format!(
            "38 31 0:35 / {} rw,relatime - cgroup cgroup rw,blkio\n",
            blkio.display()
        );
        let none = Support {
            weight: false,
            weight_device: false,
            swap_limit: false,
        };
        assert_eq!(Support::detect_at(tmp.path(), &mountinfo, false), none);
        std::fs::write(blkio.join("blkio.bfq.weight"), "").unwrap();
        let s = Support::detect_at(tmp.path(), &mountinfo, false);
        assert!(s.weight && !s.weight_device);
        std::fs::write(tmp.path().join("cgroup.controllers"), "cpu io memory\n").unwrap();
        let v2 = Support::detect_at(tmp.path(), "", true);
        assert!(v2.weight && v2.weight_device);
    }
}
