//! /_ping, /version, /info.

use std::sync::Arc;

use berth_engine::Engine;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::json;

use crate::error::Result;
use crate::http::{Resp, blocking, full, json};
use crate::{API_VERSION, MIN_API_VERSION};

pub fn ping(m: &Method) -> Resp {
    let mut r = hyper::Response::new(full(if *m == Method::HEAD { "" } else { "OK" }));
    let h = r.headers_mut();
    for (k, v) in [
        ("api-version", API_VERSION),
        ("ostype", "linux"),
        ("docker-experimental", "false"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
        ("pragma", "no-cache"),
        ("content-type", "text/plain; charset=utf-8"),
    ] {
        h.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    r
}

/// Go's names for architectures, as docker reports them.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn kernel() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string()
}

pub async fn version() -> Result<Resp> {
    let v = berth_engine::VERSION;
    Ok(json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "Berth"},
            "Components": [{
                "Name": "Engine", "Version": v,
                "Details": {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
                            "Os": "linux", "Arch": go_arch(), "KernelVersion": kernel(),
                            "GitCommit": "", "GoVersion": "", "Experimental": "false"}
            }],
            "Version": v,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": "",
            "Os": "linux",
            "Arch": go_arch(),
            "KernelVersion": kernel(),
            "BuildTime": "",
        }),
    ))
}

pub async fn info(engine: Arc<Engine>) -> Result<Resp> {
    let i = blocking(move || engine.info()).await?;
    let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mem: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("PRETTY_NAME=")
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into());
    let runtime = i
        .runtime
        .map_or("berth-runtime".to_string(), |p| p.display().to_string());
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": "", "Containers": i.containers, "ContainersRunning": i.running,
            "ContainersPaused": 0, "ContainersStopped": i.stopped, "Images": i.images,
            "Driver": "overlay2", "DriverStatus": [["Backing Filesystem", "overlay"]],
            "DockerRootDir": i.root, "Plugins": {"Volume": [], "Network": ["host", "null"], "Log": ["json-file"]},
            "MemoryLimit": true, "SwapLimit": true, "CpuCfsPeriod": true, "CpuCfsQuota": true,
            "CPUShares": true, "CPUSet": true, "PidsLimit": true, "IPv4Forwarding": false,
            "Debug": false, "NFd": 0, "NGoroutines": 0, "SystemTime": "", "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs", "CgroupVersion": i.cgroup_version, "NEventsListener": 0,
            "KernelVersion": kernel(), "OperatingSystem": os, "OSVersion": "", "OSType": "linux",
            "Architecture": std::env::consts::ARCH, "NCPU": ncpu, "MemTotal": mem,
            "IndexServerAddress": "https://index.docker.io/v1/", "RegistryConfig": {"IndexConfigs": {}, "InsecureRegistryCIDRs": ["127.0.0.0/8"]},
            "Name": host.trim(), "Labels": [], "ExperimentalBuild": false,
            "ServerVersion": berth_engine::VERSION, "Runtimes": {runtime.clone(): {"path": runtime}},
            "DefaultRuntime": runtime, "Swarm": {"LocalNodeState": "inactive", "NodeID": "", "NodeAddr": "", "ControlAvailable": false, "Error": "", "RemoteManagers": null},
            "LiveRestoreEnabled": true, "Isolation": "", "InitBinary": "", "SecurityOptions": ["name=seccomp,profile=builtin"],
            "Warnings": i.warnings,
        }),
    ))
}
