//! A container's record, in Docker's shapes (what `inspect` shows and what
//! `create` accepts), persisted as `config.v2.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker's `Config`: what runs, as the client asked merged with the image.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Config {
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    pub user: Option<String>,
    pub attach_stdin: Option<bool>,
    pub attach_stdout: Option<bool>,
    pub attach_stderr: Option<bool>,
    pub tty: Option<bool>,
    pub open_stdin: Option<bool>,
    pub stdin_once: Option<bool>,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: Option<String>,
    pub working_dir: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    /// Anonymous volumes asked for (`-v /path`): `{"/path": {}}`.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `{"80/tcp": {}}`: ports the image or `--expose` declares (for `-P`).
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
}

/// Docker's `HostConfig`, the parts Berth honours.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostConfig {
    pub binds: Option<Vec<String>>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`: the soft limit (memory.low on v2).
    pub memory_reservation: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub cpu_shares: Option<i64>,
    /// `--cpu-quota`/`--cpu-period`: CFS bandwidth in µs (the older
    /// spelling of `--cpus`, which excludes them).
    pub cpu_quota: Option<i64>,
    pub cpu_period: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    /// 0-100; -1 (or unset) keeps the kernel's.
    pub memory_swappiness: Option<i64>,
    pub pids_limit: Option<i64>,
    /// `--blkio-weight` (10..=1000; 0 is unset).
    pub blkio_weight: Option<u16>,
    /// `--blkio-weight-device`.
    pub blkio_weight_device: Option<Vec<WeightDevice>>,
    /// The container process's /proc/self/oom_score_adj (dockerd shows 0
    /// when unset).
    pub oom_score_adj: i64,
    pub privileged: Option<bool>,
    pub cap_add: Option<Vec<String>>,
    pub cap_drop: Option<Vec<String>>,
    pub security_opt: Option<Vec<String>>,
    pub readonly_rootfs: Option<bool>,
    pub tmpfs: Option<BTreeMap<String, String>>,
    pub auto_remove: Option<bool>,
    pub network_mode: Option<String>,
    /// `-p`: `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
    pub port_bindings: Option<BTreeMap<String, Option<Vec<PortBinding>>>>,
    pub publish_all_ports: Option<bool>,
    /// `--add-host name:ip`.
    pub extra_hosts: Option<Vec<String>>,
    pub dns: Option<Vec<String>>,
    pub dns_search: Option<Vec<String>>,
    pub dns_options: Option<Vec<String>>,
    pub init: Option<bool>,
    /// [height, width] of the client's terminal, for `-t`.
    pub console_size: Option<[u16; 2]>,
    /// `--mount`.
    pub mounts: Option<Vec<MountSpec>>,
    pub volumes_from: Option<Vec<String>>,
    pub restart_policy: Option<RestartPolicy>,
    pub ulimits: Option<Vec<Ulimit>>,
    pub devices: Option<Vec<DeviceMapping>>,
    pub shm_size: Option<i64>,
    pub sysctls: Option<BTreeMap<String, String>>,
    pub group_add: Option<Vec<String>>,
    pub oom_kill_disable: Option<bool>,
    pub cgroupns_mode: Option<String>,
    pub ipc_mode: Option<String>,
    pub pid_mode: Option<String>,
    #[serde(rename = "UTSMode")]
    pub uts_mode: Option<String>,
}

/// `--ulimit name=soft[:hard]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// `--blkio-weight-device path:weight`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// `--device host[:container[:perms]]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DeviceMapping {
    pub path_on_host: String,
    pub path_in_container: String,
    pub cgroup_permissions: String,
}

/// `HostConfig.RestartPolicy`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RestartPolicy {
    /// "", no, always, unless-stopped, on-failure
    pub name: String,
    pub maximum_retry_count: i64,
}

/// One `HostConfig.Mounts` entry (`--mount`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountSpec {
    #[serde(rename = "Type")]
    pub typ: String,
    pub source: String,
    pub target: String,
    pub read_only: bool,
    pub consistency: String,
    pub bind_options: Option<BindOptions>,
    pub volume_options: Option<VolumeOptions>,
    pub tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct BindOptions {
    pub propagation: String,
    pub non_recursive: bool,
    pub create_mountpoint: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VolumeOptions {
    pub no_copy: bool,
    pub labels: Option<BTreeMap<String, String>>,
    pub driver_config: Option<DriverConfig>,
    pub subpath: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DriverConfig {
    pub name: String,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TmpfsOptions {
    pub size_bytes: i64,
    pub mode: u32,
}

/// A container's mount as resolved at create (Docker's `MountPoints`);
/// inspect's `Mounts` shows the Docker fields.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MountPoint {
    /// bind, volume or tmpfs
    #[serde(rename = "Type")]
    pub typ: String,
    /// The volume's name (volumes only).
    pub name: String,
    pub source: String,
    pub destination: String,
    pub driver: String,
    pub mode: String,
    #[serde(rename = "RW")]
    pub rw: bool,
    pub propagation: String,
    /// Berth's own: the volume is not seeded from the image.
    pub no_copy: bool,
    /// Berth's own: bind without `rbind` (`bind-nonrecursive`).
    pub non_recursive: bool,
    /// Berth's own: tmpfs data options (size=, mode=).
    pub tmpfs_options: Vec<String>,
}

/// `POST /containers/create`'s body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateRequest {
    #[serde(flatten)]
    pub config: Config,
    pub host_config: HostConfig,
    pub networking_config: NetworkingConfig,
}

/// One `-p` binding (`{"HostIp": "", "HostPort": "8080"}`).
pub use berth_network::ports::PortBinding;

/// `create`'s per-network requests (`--network-alias`, `--ip`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkingConfig {
    pub endpoints_config: Option<BTreeMap<String, EndpointSettings>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address", skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address", skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
}

/// Docker's `EndpointSettings`: a container's place on one network. The
/// address fields are filled while the container runs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    pub ipam_config: Option<EndpointIpamConfig>,
    pub links: Option<Vec<String>>,
    pub aliases: Option<Vec<String>>,
    pub mac_address: String,
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    pub driver_opts: Option<BTreeMap<String, String>>,
    #[serde(rename = "DNSNames")]
    pub dns_names: Option<Vec<String>>,
}

/// Docker's `NetworkSettings`; the top-level address fields mirror the
/// default bridge's endpoint, as Docker's do.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkSettings {
    pub bridge: String,
    #[serde(rename = "SandboxID")]
    pub sandbox_id: String,
    pub sandbox_key: String,
    /// `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}` while running.
    pub ports: BTreeMap<String, Option<Vec<PortBinding>>>,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    pub mac_address: String,
    /// Keyed by network name.
    pub networks: BTreeMap<String, EndpointSettings>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct State {
    /// created, running, exited, removing
    pub status: String,
    pub running: bool,
    pub paused: bool,
    pub restarting: bool,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub dead: bool,
    pub pid: i32,
    pub exit_code: i32,
    pub error: String,
    pub started_at: String,
    pub finished_at: String,
}

pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Container {
    pub id: String,
    /// With docker's leading slash.
    pub name: String,
    pub created: String,
    pub path: String,
    pub args: Vec<String>,
    pub state: State,
    /// The image ID (config digest).
    pub image: String,
    pub log_path: String,
    pub hostname_path: String,
    pub hosts_path: String,
    pub resolv_conf_path: String,
    pub driver: String,
    pub platform: String,
    pub restart_count: i64,
    pub config: Config,
    pub host_config: HostConfig,
    pub network_settings: NetworkSettings,
    /// Berth's own: a shim holds this container (created or running), so
    /// its socket is the way to it.
    pub shim: bool,
    /// Exits seen so far, for `wait?condition=next-exit`.
    pub exits: u64,
    pub mount_points: Vec<MountPoint>,
    /// Docker's flag: `stop` (or kill through stop) ended it, so
    /// unless-stopped does not bring it back.
    pub has_been_manually_stopped: bool,
    /// A stop (or removal) is under way: its exit is not restarted.
    #[serde(skip)]
    pub stopping: bool,
    /// A start is between its checks and its shim's start: stop and rm
    /// wait for it, so they act on the outcome instead of racing it.
    #[serde(skip)]
    pub starting: bool,
    /// The restart back-off now (Docker keeps it in memory too).
    #[serde(skip)]
    pub restart_backoff_ms: u64,
}

impl Container {
    pub fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }
    pub fn tty(&self) -> bool {
        self.config.tty.unwrap_or(false)
    }
    /// Docker's `Status` column: "Up 5 seconds", "Exited (0) 3 seconds ago".
    pub fn status_text(&self) -> String {
        use crate::util::{human_duration, since};
        match self.state.status.as_str() {
            "running" => format!("Up {}", human_duration(since(&self.state.started_at))),
            "paused" => format!(
                "Up {} (Paused)",
                human_duration(since(&self.state.started_at))
            ),
            "exited" => format!(
                "Exited ({}) {} ago",
                self.state.exit_code,
                human_duration(since(&self.state.finished_at))
            ),
            "created" => "Created".into(),
            other => other.to_string(),
        }
    }
}

/// `GET /containers/json` entries.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub id: String,
    pub names: Vec<String>,
    pub image: String,
    #[serde(rename = "ImageID")]
    pub image_id: String,
    pub command: String,
    pub created: i64,
    pub ports: Vec<serde_json::Value>,
    pub labels: BTreeMap<String, String>,
    pub state: String,
    pub status: String,
    pub host_config: serde_json::Value,
    pub network_settings: serde_json::Value,
    pub mounts: Vec<serde_json::Value>,
}

/// `wait` conditions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitCondition {
    NotRunning,
    NextExit,
    Removed,
}

impl std::str::FromStr for WaitCondition {
    type Err = crate::EngineError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "not-running" => Ok(WaitCondition::NotRunning),
            "next-exit" => Ok(WaitCondition::NextExit),
            "removed" => Ok(WaitCondition::Removed),
            _ => Err(crate::EngineError::InvalidArgument(format!(
                "invalid condition: \"{s}\""
            ))),
        }
    }
}

/// Log selection for `logs`.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    pub follow: bool,
    /// Last N lines; None = all.
    pub tail: Option<usize>,
    /// Only entries at or after this unix time.
    pub since: Option<f64>,
    pub until: Option<f64>,
}

/// `POST /containers/{id}/exec`'s body.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub privileged: bool,
    /// Keys that end an attached tty session (`ctrl-p,ctrl-q` when unset).
    pub detach_keys: Option<String>,
}

/// `GET /exec/{id}/json`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub open_stdin: bool,
    pub open_stdout: bool,
    pub open_stderr: bool,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub pid: i32,
    pub process_config: serde_json::Value,
    pub detach_keys: String,
}
