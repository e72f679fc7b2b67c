//! `docker stats`: the container's cgroup figures (v1 or v2, through
//! berth-cgroups) in Docker's `ContainerStatsResponse` shape, with the host's
//! CPU time so clients can compute CPU%, and the network counters of the
//! container's namespace.

use std::collections::BTreeMap;
use std::time::Duration;

use berth_cgroups::{CgroupManager, IoStat, Stats};
use serde_json::{Value, json};

use super::model::{Container, ZERO_TIME};
use super::ops::cgroup;
use crate::Engine;
use crate::error::{EngineError, Result};
use crate::util::now_rfc3339;

/// The host figures a sample needs besides the cgroup's.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Total CPU time of the host in nanoseconds (`/proc/stat`).
    pub system_cpu_ns: u64,
    pub online_cpus: u64,
    pub mem_total: u64,
}

impl Host {
    pub fn read() -> Host {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        parse_host(&stat, &meminfo)
    }
}

/// `/proc/stat`'s first line (user … softirq, in USER_HZ ticks, as Docker
/// sums them), the number of `cpuN` lines, and `MemTotal`.
pub fn parse_host(stat: &str, meminfo: &str) -> Host {
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
        .unwrap_or(100)
        .max(1);
    let mut h = Host::default();
    for line in stat.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            Some("cpu") => {
                let ticks: u64 = f.take(7).filter_map(|v| v.parse::<u64>().ok()).sum();
                h.system_cpu_ns = ticks * (1_000_000_000 / hz);
            }
            Some(c) if c.starts_with("cpu") => h.online_cpus += 1,
            _ => {}
        }
    }
    h.mem_total = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    h
}

/// `/proc/<pid>/net/dev` as Docker's `networks` (loopback left out).
pub fn parse_net_dev(text: &str) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if name == "lo" || v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            json!({
                "rx_bytes": v[0], "rx_packets": v[1], "rx_errors": v[2], "rx_dropped": v[3],
                "tx_bytes": v[8], "tx_packets": v[9], "tx_errors": v[10], "tx_dropped": v[11],
            }),
        );
    }
    out
}

fn io(v: &[IoStat]) -> Value {
    json!(v)
}

/// One sample's `cpu_stats`, `memory_stats`, `pids_stats`, `blkio_stats`.
pub fn docker_figures(s: &Stats, v2: bool, host: &Host) -> Value {
    let mut cpu_usage = json!({
        "total_usage": s.cpu_usage_ns,
        "usage_in_kernelmode": s.cpu_system_ns,
        "usage_in_usermode": s.cpu_user_ns,
    });
    if !v2 {
        cpu_usage["percpu_usage"] = json!(s.cpu_percpu_ns);
    }
    // An unlimited container is limited by the host, as Docker reports.
    let limit = match s.memory_limit {
        Some(l) if host.mem_total == 0 || l < host.mem_total => l,
        _ => host.mem_total,
    };
    let mut memory = json!({
        "usage": s.memory_usage,
        "stats": s.memory_stat,
        "limit": limit,
    });
    if !v2 {
        memory["max_usage"] = json!(s.memory_max_usage.unwrap_or(0));
        memory["failcnt"] = json!(0);
    }
    let mut pids = json!({ "current": s.pids_current });
    if let Some(l) = s.pids_limit {
        pids["limit"] = json!(l);
    }
    json!({
        "cpu_stats": {
            "cpu_usage": cpu_usage,
            "system_cpu_usage": host.system_cpu_ns,
            "online_cpus": host.online_cpus,
            "throttling_data": {
                "periods": s.cpu_periods,
                "throttled_periods": s.cpu_throttled_periods,
                "throttled_time": s.cpu_throttled_ns,
            },
        },
        "memory_stats": memory,
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": io(&s.io_bytes),
            "io_serviced_recursive": io(&s.io_ops),
            "io_queue_recursive": null,
            "io_service_time_recursive": null,
            "io_wait_time_recursive": null,
            "io_merged_recursive": null,
            "io_time_recursive": null,
            "sectors_recursive": null,
        },
    })
}

/// What a sample of a container that is not running looks like: zeros.
fn empty_sample(c: &Container) -> Value {
    json!({
        "read": ZERO_TIME, "preread": ZERO_TIME,
        "name": c.name, "id": c.id,
        "num_procs": 0, "storage_stats": {},
        "cpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "precpu_stats": {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}, "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}},
        "memory_stats": {}, "pids_stats": {}, "blkio_stats": {},
    })
}

impl Engine {
    fn sample(&self, c: &Container) -> Result<Value> {
        let cg = cgroup(&c.id)?;
        let s = cg
            .stats()
            .map_err(|e| EngineError::Internal(format!("stats of container {}: {e}", c.id)))?;
        let v2 = cg.version() == berth_cgroups::CgroupVersion::V2;
        let mut v = docker_figures(&s, v2, &Host::read());
        v["read"] = json!(now_rfc3339());
        v["name"] = json!(c.name);
        v["id"] = json!(c.id);
        v["num_procs"] = json!(0);
        v["storage_stats"] = json!({});
        let nets = std::fs::read_to_string(format!("/proc/{}/net/dev", c.state.pid))
            .map(|t| parse_net_dev(&t))
            .unwrap_or_default();
        if !nets.is_empty() {
            v["networks"] = json!(nets);
        }
        Ok(v)
    }

    /// Feeds samples to `sink` until it returns false: one (`one_shot`:
    /// without the previous CPU figures; else two a second apart so CPU%
    /// can be computed), or with `stream` one a second until the container
    /// stops.
    pub fn stats(
        &self,
        key: &str,
        stream: bool,
        one_shot: bool,
        sink: &mut dyn FnMut(&Value) -> bool,
    ) -> Result<()> {
        let c = self.inspect(key)?;
        if !c.state.running {
            sink(&empty_sample(&c));
            return Ok(());
        }
        let mut prev: Option<Value> = None;
        if !stream && !one_shot {
            prev = Some(self.sample(&c)?);
            std::thread::sleep(Duration::from_secs(1));
        }
        loop {
            let running = self.inspect(&c.id).is_ok_and(|c| c.state.running && c.shim);
            if !running {
                return Ok(());
            }
            // The container may stop between the check and the read.
            let Ok(mut v) = self.sample(&c) else {
                return Ok(());
            };
            match &prev {
                Some(p) => {
                    v["precpu_stats"] = p["cpu_stats"].clone();
                    v["preread"] = p["read"].clone();
                }
                None => {
                    v["precpu_stats"] = empty_sample(&c)["precpu_stats"].clone();
                    v["preread"] = json!(ZERO_TIME);
                }
            }
            if !sink(&v) || !stream {
                return Ok(());
            }
            prev = Some(v);
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_figures() {
        let stat = "cpu  100 5 50 1000 10 1 2 3 0 0\ncpu0 50 2 25 500 5 0 1 1 0 0\ncpu1 50 3 25 500 5 1 1 2 0 0\nintr 1\n";
        let h = parse_host(stat, "MemTotal:       2048 kB\nMemFree: 1 kB\n");
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        // steal (3) is not counted, as in Docker.
        assert_eq!(h.system_cpu_ns, 1168 * (1_000_000_000 / hz));
        assert_eq!(h.online_cpus, 2);
        assert_eq!(h.mem_total, 2048 * 1024);
    }

    #[test]
    fn net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:    2000      20    1    2    0     0          0         0     3000      30    3    4    0     0       0          0\n";
        let n = parse_net_dev(text);
        assert_eq!(n.len(), 1);
        assert_eq!(n["eth0"]["rx_bytes"], 2000);
        assert_eq!(n["eth0"]["tx_packets"], 30);
        assert_eq!(n["eth0"]["tx_dropped"], 4);
        assert_eq!(n["eth0"]["rx_errors"], 1);
    }

    #[test]
    fn docker_shape_v1_and_v2() {
        let s = Stats {
            memory_usage: 10,
            memory_limit: None,
            cpu_usage_ns: 7,
            cpu_percpu_ns: vec![3, 4],
            pids_current: 2,
            pids_limit: Some(9),
            io_bytes: vec![IoStat {
                major: 8,
                minor: 0,
                op: "Read".into(),
                value: 4096,
            }],
            ..Stats::default()
        };
        let host = Host {
            system_cpu_ns: 99,
            online_cpus: 2,
            mem_total: 1000,
        };
        let v1 = docker_figures(&s, false, &host);
        assert_eq!(v1["cpu_stats"]["cpu_usage"]["percpu_usage"], json!([3, 4]));
        assert_eq!(v1["cpu_stats"]["system_cpu_usage"], 99);
        assert_eq!(v1["memory_stats"]["limit"], 1000);
        assert_eq!(v1["memory_stats"]["max_usage"], 0);
        assert_eq!(v1["pids_stats"], json!({"current": 2, "limit": 9}));
        assert_eq!(
            v1["blkio_stats"]["io_service_bytes_recursive"][0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        let v2 = docker_figures(
            &Stats {
                memory_limit: Some(500),
                ..s
            },
            true,
            &host,
        );
        assert!(v2["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        assert!(v2["memory_stats"].get("max_usage").is_none());
        assert_eq!(v2["memory_stats"]["limit"], 500);
    }
}
