//! HostConfig checks at `create` and `update`, in dockerd's order and with
//! its 400 messages (moby daemon/daemon_unix.go:
//! verifyPlatformContainerResources, verifyPlatformContainerSettings), so a
//! bad value is refused where it enters instead of failing later as a
//! runtime error, or being applied as something else. Block I/O weights
//! are checked with their host support in `sysinfo`.

use std::ops::RangeInclusive;

use super::model::HostConfig;
use crate::error::{EngineError, Result};

/// dockerd's linuxMinMemory.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// What the host offers, as dockerd's sysinfo reads it.
#[derive(Clone, Debug)]
pub(crate) struct HostResources {
    /// CPUs this process may run on.
    pub ncpu: i64,
    /// The root cpuset's CPUs and memory nodes (`0-1`).
    pub cpus: String,
    pub mems: String,
}

impl HostResources {
    pub(crate) fn probe() -> HostResources {
        // The cpuset cgroup's root (v1, then v2), else sysfs.
        let first = |paths: &[&str]| {
            paths
                .iter()
                .find_map(|p| std::fs::read_to_string(p).ok())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get() as i64);
        HostResources {
            ncpu,
            cpus: first(&[
                "/sys/fs/cgroup/cpuset/cpuset.cpus",
                "/sys/fs/cgroup/cpuset.cpus.effective",
                "/sys/devices/system/cpu/online",
            ])
            .unwrap_or_else(|| format!("0-{}", ncpu - 1)),
            mems: first(&[
                "/sys/fs/cgroup/cpuset/cpuset.mems",
                "/sys/fs/cgroup/cpuset.mems.effective",
                "/sys/devices/system/node/online",
            ])
            .unwrap_or_else(|| "0".into()),
        }
    }
}

fn bad<T>(m: String) -> Result<T> {
    Err(EngineError::InvalidArgument(m))
}

/// Checks `hc` and normalises what dockerd normalises (`MemorySwappiness`
/// -1 and `PidsLimit` <= 0 mean unset). `update` is `docker update`'s
/// subset: a swap limit without memory is fine there, and the settings
/// that cannot change are not looked at.
pub(crate) fn host_config(hc: &mut HostConfig, host: &HostResources, update: bool) -> Result<()> {
    if hc.memory_swappiness == Some(-1) {
        hc.memory_swappiness = None;
    }
    if hc.pids_limit.is_some_and(|p| p <= 0) && !update {
        hc.pids_limit = None;
    }
    let memory = hc.memory.unwrap_or(0);
    let swap = hc.memory_swap.unwrap_or(0);
    let reservation = hc.memory_reservation.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if memory > 0 && swap > 0 && swap < memory {
        return bad(
            "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
        );
    }
    if memory == 0 && swap > 0 && !update {
        return bad(
            "You should always set the Memory limit when using Memoryswap limit, see usage".into(),
        );
    }
    if let Some(s) = hc.memory_swappiness.filter(|s| !(0..=100).contains(s)) {
        return bad(format!(
            "Invalid value: {s}, valid memory swappiness range is 0-100"
        ));
    }
    if reservation > 0 && reservation < MIN_MEMORY {
        return bad("Minimum memory reservation allowed is 6MB".into());
    }
    if memory > 0 && reservation > 0 && memory < reservation {
        return bad(
            "Minimum memory limit can not be less than memory reservation limit, see usage".into(),
        );
    }

    let nano = hc.nano_cpus.unwrap_or(0);
    let period = hc.cpu_period.unwrap_or(0);
    let quota = hc.cpu_quota.unwrap_or(0);
    if nano > 0 && period > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Period cannot both be set".into());
    }
    if nano > 0 && quota > 0 {
        return bad("Conflicting options: Nano CPUs and CPU Quota cannot both be set".into());
    }
    if nano < 0 || nano > host.ncpu.saturating_mul(1_000_000_000) {
        let n = host.ncpu;
        return bad(format!(
            "Range of CPUs is from 0.01 to {n}.00, as there are only {n} CPUs available"
        ));
    }
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return bad(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
                .into(),
        );
    }
    if quota > 0 && quota < 1000 {
        return bad("CPU cfs quota can not be less than 1ms (i.e. 1000)".into());
    }
    for (asked, available, what, missing) in [
        (&hc.cpuset_cpus, &host.cpus, "cpus", "CPUs"),
        (&hc.cpuset_mems, &host.mems, "mems", "memory nodes"),
    ] {
        let Some(asked) = asked.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let want = uint_list(asked).map_err(|e| {
            EngineError::InvalidArgument(format!("Invalid value {asked} for cpuset {what}: {e}"))
        })?;
        let have = uint_list(available).unwrap_or_default();
        if !want.iter().all(|w| {
            have.iter()
                .any(|h| h.contains(w.start()) && h.contains(w.end()))
        }) {
            return bad(format!(
                "Requested {missing} are not available - requested {asked}, available: {available}"
            ));
        }
    }
    if update {
        return Ok(());
    }
    if hc.shm_size.is_some_and(|s| s < 0) {
        return bad("SHM size can not be less than 0".into());
    }
    if !(-1000..=1000).contains(&hc.oom_score_adj) {
        return bad(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        ));
    }
    Ok(())
}

/// A cpuset list (`0-2,4`) as ranges, never expanded (`0-4294967295` costs
/// nothing); the `invalid format` error of docker's parsers.ParseUintList.
fn uint_list(s: &str) -> std::result::Result<Vec<RangeInclusive<u64>>, String> {
    let invalid = || format!("invalid format: {s}");
    s.split(',')
        .map(|part| {
            let num = |x: &str| {
                (!x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| x.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(invalid)
            };
            match part.split_once('-') {
                None => num(part).map(|n| n..=n),
                Some((a, b)) => {
                    let (a, b) = (num(a)?, num(b)?);
                    if a > b {
                        return Err(invalid());
                    }
                    Ok(a..=b)
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> HostResources {
        HostResources {
            ncpu: 2,
            cpus: "0-1".into(),
            mems: "0".into(),
        }
    }

    fn check(hc: HostConfig) -> std::result::Result<HostConfig, String> {
        let mut hc = hc;
        host_config(&mut hc, &host(), false)
            .map(|()| hc)
            .map_err(|e| {
                assert!(matches!(e, EngineError::InvalidArgument(_)), "{e:?}");
                e.to_string()
            })
    }

    #[test]
    fn memory() {
        let min = "Minimum memory limit allowed is 6MB";
        for m in [-1, -5, 1, MIN_MEMORY - 1] {
            let hc = HostConfig {
                memory: Some(m),
                ..HostConfig::default()
            };
            assert_eq!(check(hc).unwrap_err(), min, "{m}");
        }
        let ok = HostConfig {
            memory: Some(MIN_MEMORY),
            memory_swap: Some(-1),
            ..HostConfig::default()
        };
        check(ok).unwrap();
        let e = check(HostConfig {
            memory: Some(64 << 20),
            memory_swap: Some(32 << 20),
            ..HostConfig::default()
        });
        assert!(e.unwrap_err().starts_with("Minimum memoryswap limit"));
        let e = check(HostConfig {
            memory_swap: Some(64 << 20),
            ..HostConfig::default()
        });
        assert!(
            e.unwrap_err()
                .starts_with("You should always set the Memory")
        );
        let e = check(HostConfig {
            memory_reservation: Some(1),
            ..HostConfig::default()
        });
        assert_eq!(e.unwrap_err(), "Minimum memory reservation allowed is 6MB");
        let e = check(HostConfig {
            memory: Some(8 << 20),
            memory_reservation: Some(16 << 20),
            ..HostConfig::default()
        });
        assert!(e.unwrap_err().contains("less than memory reservation"));
    }

    #[test]
    fn swappiness_and_oom_score() {
        let sw = |s| HostConfig {
            memory_swappiness: Some(s),
            ..HostConfig::default()
        };
        assert_eq!(check(sw(-1)).unwrap().memory_swappiness, None);
        assert_eq!(check(sw(0)).unwrap().memory_swappiness, Some(0));
        assert_eq!(check(sw(100)).unwrap().memory_swappiness, Some(100));
        assert_eq!(
            check(sw(500)).unwrap_err(),
            "Invalid value: 500, valid memory swappiness range is 0-100"
        );
        assert!(check(sw(-2)).is_err());
        let oom = |o| HostConfig {
            oom_score_adj: o,
            ..HostConfig::default()
        };
        check(oom(-1000)).unwrap();
        check(oom(1000)).unwrap();
        assert_eq!(
            check(oom(5000)).unwrap_err(),
            "Invalid value 5000, range for oom score adj is [-1000, 1000]"
        );
        assert!(check(oom(-1001)).is_err());
    }

    #[test]
    fn cpus() {
        let range = "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available";
        let nano = |n| HostConfig {
            nano_cpus: Some(n),
            ..HostConfig::default()
        };
        assert_eq!(check(nano(-1)).unwrap_err(), range);
        assert_eq!(check(nano(2_000_000_001)).unwrap_err(), range);
        check(nano(2_000_000_000)).unwrap();
        let e = check(HostConfig {
            nano_cpus: Some(1),
            cpu_period: Some(100_000),
            ..HostConfig::default()
        });
        assert_eq!(
            e.unwrap_err(),
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        );
        let e = check(HostConfig {
            nano_cpus: Some(1),
            cpu_quota: Some(100_000),
            ..HostConfig::default()
        });
        assert!(e.unwrap_err().contains("CPU Quota cannot both be set"));
        let period = |p| HostConfig {
            cpu_period: Some(p),
            ..HostConfig::default()
        };
        for p in [1, 999, 1_000_001, -1] {
            assert!(
                check(period(p)).unwrap_err().starts_with("CPU cfs period"),
                "{p}"
            );
        }
        check(period(1000)).unwrap();
        let quota = |q| HostConfig {
            cpu_quota: Some(q),
            ..HostConfig::default()
        };
        assert_eq!(
            check(quota(999)).unwrap_err(),
            "CPU cfs quota can not be less than 1ms (i.e. 1000)"
        );
        check(quota(-1)).unwrap();
        check(quota(1000)).unwrap();
    }

    #[test]
    fn cpusets() {
        let cpus = |s: &str| HostConfig {
            cpuset_cpus: Some(s.into()),
            ..HostConfig::default()
        };
        check(cpus("0-1")).unwrap();
        check(cpus("1,0")).unwrap();
        assert_eq!(
            check(cpus("0-99999")).unwrap_err(),
            "Requested CPUs are not available - requested 0-99999, available: 0-1"
        );
        assert_eq!(
            check(cpus("0-18446744073709551615")).unwrap_err(),
            "Requested CPUs are not available - requested 0-18446744073709551615, available: 0-1"
        );
        assert_eq!(
            check(cpus("1-0")).unwrap_err(),
            "Invalid value 1-0 for cpuset cpus: invalid format: 1-0"
        );
        assert!(check(cpus("a")).unwrap_err().contains("invalid format"));
        assert!(check(cpus("0,,1")).is_err());
        let mems = HostConfig {
            cpuset_mems: Some("1".into()),
            ..HostConfig::default()
        };
        assert_eq!(
            check(mems).unwrap_err(),
            "Requested memory nodes are not available - requested 1, available: 0"
        );
    }

    #[test]
    fn pids_and_shm() {
        for p in [0, -1, -5] {
            let hc = HostConfig {
                pids_limit: Some(p),
                ..HostConfig::default()
            };
            assert_eq!(check(hc).unwrap().pids_limit, None, "{p}: unlimited");
        }
        let shm = HostConfig {
            shm_size: Some(-1),
            ..HostConfig::default()
        };
        assert_eq!(check(shm).unwrap_err(), "SHM size can not be less than 0");
    }

    #[test]
    fn update_takes_swap_alone_and_skips_create_only_settings() {
        let mut hc = HostConfig {
            memory_swap: Some(64 << 20),
            oom_score_adj: 5000,
            ..HostConfig::default()
        };
        host_config(&mut hc, &host(), true).unwrap();
        hc.memory = Some(1);
        assert!(host_config(&mut hc, &host(), true).is_err());
    }

    #[test]
    fn the_host_is_read() {
        let h = HostResources::probe();
        assert!(h.ncpu >= 1);
        assert!(uint_list(&h.cpus).is_ok(), "{h:?}");
        assert!(uint_list(&h.mems).is_ok(), "{h:?}");
    }
}
