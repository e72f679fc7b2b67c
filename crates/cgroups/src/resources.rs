//! Conversions from OCI resource values to what cgroup files take, shared by
//! v1 and v2. Pure functions, tested here.

use std::collections::{BTreeMap, HashMap};

use oci_spec::runtime::{
    LinuxBlockIo, LinuxDeviceCgroup, LinuxDeviceType, LinuxHugepageLimit, LinuxRdma,
};

use crate::{CgroupError, Result};

/// Gathers [`CgroupError::Unsupported`] from the steps of `apply`, so every
/// other setting is still written; real errors stop at once.
#[derive(Default)]
pub(crate) struct Skipped(Vec<String>);

impl Skipped {
    pub(crate) fn step(&mut self, r: Result<()>) -> Result<()> {
        match r {
            Err(CgroupError::Unsupported { what }) => {
                self.0.push(what);
                Ok(())
            }
            other => other,
        }
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(CgroupError::Unsupported {
                what: self.0.join("; "),
            })
        }
    }
}

/// cgroup v1 `cpu.shares` (2..=262144) to cgroup v2 `cpu.weight` (1..=10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// cgroup v1 blkio weight (10..=1000) to cgroup v2 `io.weight` (1..=10000).
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9999) / 990
}

/// A v1 memory/limit value: negative is unlimited (`-1`).
pub(crate) fn v1_limit(v: i64) -> String {
    if v < 0 { "-1".into() } else { v.to_string() }
}

/// A v2 limit value: negative is `max`.
pub(crate) fn v2_limit(v: i64) -> String {
    if v < 0 { "max".into() } else { v.to_string() }
}

/// `rdma.max` lines, sorted by device: `mlx4_0 hca_handle=2 hca_object=max`.
pub(crate) fn rdma_lines(rdma: &HashMap<String, LinuxRdma>) -> Vec<String> {
    let mut names: Vec<&String> = rdma.keys().collect();
    names.sort();
    let num = |v: Option<u32>| v.map_or("max".to_string(), |v| v.to_string());
    names
        .into_iter()
        .map(|name| {
            let l = &rdma[name];
            format!(
                "{name} hca_handle={} hca_object={}",
                num(l.hca_handles()),
                num(l.hca_objects())
            )
        })
        .collect()
}

/// `pids.max` on both versions: zero or negative is `max`.
pub(crate) fn pids_limit(limit: i64) -> String {
    if limit <= 0 {
        "max".into()
    } else {
        limit.to_string()
    }
}

/// The v2 `memory.swap.max` value from OCI `swap` (memory + swap, as on v1)
/// and `limit`. `None`: leave the file alone.
pub fn swap_to_v2(swap: Option<i64>, limit: Option<i64>) -> Result<Option<String>> {
    let limit = limit.unwrap_or(0);
    match swap.unwrap_or(0) {
        // Unlimited memory and no swap setting: unlimited swap too, as on v1.
        0 if limit < 0 => Ok(Some("max".into())),
        0 => Ok(None),
        s if s < 0 => Ok(Some("max".into())),
        s => {
            if limit <= 0 {
                return Err(CgroupError::invalid(
                    "memory.swap",
                    "a swap limit needs a memory limit",
                ));
            }
            if s < limit {
                return Err(CgroupError::invalid(
                    "memory.swap",
                    format!("memory+swap {s} is below the memory limit {limit}"),
                ));
            }
            Ok(Some((s - limit).to_string()))
        }
    }
}

/// v2 `io.max` lines, one per device, from the OCI throttle lists. A rate of
/// 0 lifts the limit (`max`), as writing 0 does on v1.
pub fn io_max_lines(bio: &LinuxBlockIo) -> Vec<String> {
    let mut devices: BTreeMap<(i64, i64), [Option<u64>; 4]> = BTreeMap::new();
    let lists = [
        bio.throttle_read_bps_device(),
        bio.throttle_write_bps_device(),
        bio.throttle_read_iops_device(),
        bio.throttle_write_iops_device(),
    ];
    for (slot, list) in lists.iter().enumerate() {
        for dev in list.iter().flatten() {
            devices.entry((dev.major(), dev.minor())).or_default()[slot] = Some(dev.rate());
        }
    }
    const KEYS: [&str; 4] = ["rbps", "wbps", "riops", "wiops"];
    devices
        .into_iter()
        .map(|((major, minor), rates)| {
            let mut line = format!("{major}:{minor}");
            for (key, rate) in KEYS.iter().zip(rates) {
                match rate {
                    Some(0) => line.push_str(&format!(" {key}=max")),
                    Some(r) => line.push_str(&format!(" {key}={r}")),
                    None => {}
                }
            }
            line
        })
        .collect()
}

/// A v1 device rule as written to `devices.allow`/`devices.deny`:
/// `c 1:3 rwm`, `a *:* rwm`.
pub fn device_rule_line(rule: &LinuxDeviceCgroup) -> Result<String> {
    let typ = rule.typ().unwrap_or(LinuxDeviceType::A);
    let num = |n: Option<i64>| match n {
        Some(n) if n >= 0 => n.to_string(),
        _ => "*".to_string(),
    };
    let access = rule.access().as_deref().unwrap_or("rwm");
    let access = if access.is_empty() { "rwm" } else { access };
    if !access.chars().all(|c| "rwm".contains(c)) {
        return Err(CgroupError::invalid(
            "devices",
            format!("access {access:?} is not a subset of \"rwm\""),
        ));
    }
    // The device cgroup knows a, b and c; an unbuffered char device is a c.
    let typ = match typ {
        LinuxDeviceType::P => {
            return Err(CgroupError::invalid(
                "devices",
                "a fifo rule is not a device cgroup rule",
            ));
        }
        LinuxDeviceType::U | LinuxDeviceType::C => "c",
        LinuxDeviceType::B => "b",
        LinuxDeviceType::A => "a",
    };
    Ok(format!(
        "{typ} {}:{} {access}",
        num(rule.major()),
        num(rule.minor())
    ))
}

/// `true` for a rule that allows every access to every device: the cgroup v2
/// default, so v2 can honour it without eBPF.
pub fn is_allow_all(rule: &LinuxDeviceCgroup) -> bool {
    rule.allow()
        && rule.typ().unwrap_or(LinuxDeviceType::A) == LinuxDeviceType::A
        && rule.major().is_none_or(|m| m < 0)
        && rule.minor().is_none_or(|m| m < 0)
        && rule
            .access()
            .as_deref()
            .is_none_or(|a| a.is_empty() || ["r", "w", "m"].iter().all(|c| a.contains(c)))
}

/// A block I/O weight that was actually set: engines send 0 for "not set"
/// (Docker always does), which the kernel rejects with ERANGE.
pub fn set_weight(w: Option<u16>) -> Option<u16> {
    w.filter(|w| *w > 0)
}

/// Checks an OCI hugepage size (`2MB`, `1GB`, `64KB`) before it becomes part
/// of a file name.
pub(crate) fn hugepage_size(limit: &LinuxHugepageLimit) -> Result<&str> {
    let size = limit.page_size().as_str();
    let digits = size.trim_end_matches(|c: char| c.is_ascii_uppercase());
    let unit = &size[digits.len()..];
    if digits.is_empty()
        || !digits.chars().all(|c| c.is_ascii_digit())
        || !["KB", "MB", "GB"].contains(&unit)
    {
        return Err(CgroupError::invalid(
            "hugepageLimits",
            format!("page size {size:?} is not like \"2MB\""),
        ));
    }
    Ok(size)
}

/// The refusal for a huge page size the host does not have (no `file` for
/// it in the hugetlb cgroup `dir`).
pub(crate) fn no_page_size(size: &str, dir: &std::path::Path, file: &str) -> CgroupError {
    CgroupError::unavailable(
        format!("hugepage limit for {size} pages"),
        format!(
            "no {file} in {} (the host has no {size} huge pages)",
            dir.display()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{
        LinuxBlockIoBuilder, LinuxDeviceCgroupBuilder, LinuxHugepageLimitBuilder,
        LinuxThrottleDeviceBuilder,
    };

    #[test]
    fn shares_map_onto_weight() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(shares_to_weight(1_000_000), 10_000);
        assert_eq!(shares_to_weight(512), 1 + (510 * 9999) / 262_142);
    }

    #[test]
    fn blkio_weight_maps_onto_io_weight() {
        assert_eq!(blkio_weight_to_io_weight(10), 1);
        assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
        assert_eq!(blkio_weight_to_io_weight(500), 1 + (490 * 9999) / 990);
        assert_eq!(blkio_weight_to_io_weight(1), 1);
    }

    #[test]
    fn swap_conversion() {
        assert_eq!(
            swap_to_v2(Some(300), Some(100)).unwrap().as_deref(),
            Some("200")
        );
        assert_eq!(
            swap_to_v2(Some(100), Some(100)).unwrap().as_deref(),
            Some("0")
        );
        assert_eq!(
            swap_to_v2(Some(-1), Some(100)).unwrap().as_deref(),
            Some("max")
        );
        assert_eq!(swap_to_v2(None, Some(-1)).unwrap().as_deref(), Some("max"));
        assert_eq!(swap_to_v2(None, Some(100)).unwrap(), None);
        assert_eq!(swap_to_v2(None, None).unwrap(), None);
        assert!(swap_to_v2(Some(50), Some(100)).is_err());
        assert!(swap_to_v2(Some(50), None).is_err());
        assert!(swap_to_v2(Some(50), Some(-1)).is_err());
    }

    #[test]
    fn limits() {
        assert_eq!(v1_limit(-1), "-1");
        assert_eq!(v1_limit(4096), "4096");
        assert_eq!(v2_limit(-5), "max");
        assert_eq!(v2_limit(0), "0");
    }

    fn throttle(major: i64, minor: i64, rate: u64) -> oci_spec::runtime::LinuxThrottleDevice {
        LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(rate)
            .build()
            .unwrap()
    }

    #[test]
    fn io_max_merges_devices() {
        let bio = LinuxBlockIoBuilder::default()
            .throttle_read_bps_device(vec![throttle(8, 0, 1000), throttle(253, 1, 5)])
            .throttle_write_bps_device(vec![throttle(8, 0, 2000)])
            .throttle_read_iops_device(vec![throttle(8, 0, 0)])
            .throttle_write_iops_device(vec![throttle(8, 16, 40)])
            .build()
            .unwrap();
        assert_eq!(
            io_max_lines(&bio),
            [
                "8:0 rbps=1000 wbps=2000 riops=max",
                "8:16 wiops=40",
                "253:1 rbps=5"
            ]
        );
        assert!(io_max_lines(&LinuxBlockIo::default()).is_empty());
    }

    #[test]
    fn device_rules() {
        let deny_all = LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()
            .unwrap();
        assert_eq!(device_rule_line(&deny_all).unwrap(), "a *:* rwm");
        assert!(!is_allow_all(&deny_all));

        let null = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::C)
            .major(1)
            .minor(3)
            .access("rw")
            .build()
            .unwrap();
        assert_eq!(device_rule_line(&null).unwrap(), "c 1:3 rw");
        assert!(!is_allow_all(&null));

        let any_block = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(LinuxDeviceType::B)
            .major(8)
            .build()
            .unwrap();
        assert_eq!(device_rule_line(&any_block).unwrap(), "b 8:* rwm");

        let allow_all = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .build()
            .unwrap();
        assert!(is_allow_all(&allow_all));
        let allow_read = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("r")
            .build()
            .unwrap();
        assert!(!is_allow_all(&allow_read));

        let bad = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access("rwx")
            .build()
            .unwrap();
        assert!(device_rule_line(&bad).is_err());
    }

    #[test]
    fn hugepage_sizes() {
        let ok = |s: &str| {
            let l = LinuxHugepageLimitBuilder::default()
                .page_size(s)
                .limit(0)
                .build()
                .unwrap();
            hugepage_size(&l).map(str::to_string)
        };
        assert_eq!(ok("2MB").unwrap(), "2MB");
        assert_eq!(ok("1GB").unwrap(), "1GB");
        assert_eq!(ok("64KB").unwrap(), "64KB");
        for bad in ["", "MB", "2mb", "2M", "../2MB", "2MB/x", "2 MB"] {
            assert!(ok(bad).is_err(), "{bad}");
        }
    }
}
