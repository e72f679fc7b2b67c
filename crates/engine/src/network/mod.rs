//! Networks: records under `<root>/networks/<id>.json`, the predefined
//! `bridge`, `host` and `none`, user-defined bridge networks, and their
//! address allocators. How containers join them is in [`endpoint`]; where
//! the packet side (firewall, published ports, DNS) plugs in is [`hooks`].

pub mod endpoint;
mod filters;
pub mod hooks;
pub mod packet;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::MutexGuard;

use berth_network::bridge::{self, BridgeSpec};
use berth_network::ipam::{self, Allocator, Pool, Subnet};
use berth_network::netlink::Netlink;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{EngineError, Result, io_err};
use crate::util::{now_rfc3339, random_id, write_atomic};
use crate::{Engine, Paths};

/// The daemon's usual root: its default bridge is `berth0`.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_MTU: u32 = 1500;
const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_MTU: &str = "com.docker.network.driver.mtu";
/// Bridges are labelled `berth-root:<root>` (the link alias), so a daemon
/// can tell the bridges of a daemon whose root is gone.
const BRIDGE_ALIAS: &str = "berth-root:";

/// A network as Berth keeps it; [`Network::inspect`] gives Docker's shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub created: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    /// Bridge networks only.
    pub pool: Option<Pool>,
    /// The bridge device (bridge networks only).
    pub bridge: String,
    pub mtu: Option<u32>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// bridge, host and none: cannot be removed.
    pub predefined: bool,
}

impl Network {
    pub fn is_bridge(&self) -> bool {
        self.driver == "bridge"
    }

    pub(crate) fn bridge_spec(&self, root: &Path) -> Option<BridgeSpec> {
        let pool = self.pool.as_ref()?;
        Some(BridgeSpec {
            name: self.bridge.clone(),
            gateway: pool.gateway,
            prefix: pool.prefix(),
            mtu: self.mtu,
            alias: bridge_alias(root),
        })
    }

    /// Docker's network object; `containers` maps id → (name, endpoint).
    pub fn inspect(&self, containers: &[(String, String, crate::EndpointSettings)]) -> Value {
        let config: Vec<Value> = self
            .pool
            .iter()
            .map(|p| {
                let mut c =
                    json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()});
                if let Some(r) = p.range {
                    c["IPRange"] = json!(r.to_string());
                }
                c
            })
            .collect();
        let mut eps = serde_json::Map::new();
        for (id, name, ep) in containers {
            eps.insert(
                id.clone(),
                json!({
                    "Name": name,
                    "EndpointID": ep.endpoint_id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": if ep.ip_address.is_empty() { String::new() } else { format!("{}/{}", ep.ip_address, ep.ip_prefix_len) },
                    "IPv6Address": "",
                }),
            );
        }
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": self.created,
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv6": false,
            "IPAM": {"Driver": "default", "Options": {}, "Config": config},
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": eps,
            "Options": self.options,
            "Labels": self.labels,
        })
    }
}

/// `POST /networks/create`'s body.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkCreate {
    pub name: String,
    pub check_duplicate: Option<bool>,
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    pub options: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamRequest {
    pub driver: Option<String>,
    pub config: Option<Vec<IpamConfigRequest>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamConfigRequest {
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    #[serde(rename = "IPRange")]
    pub ip_range: Option<String>,
}

/// Networks and their allocators; behind `Engine::nets`. Lock order: this
/// before the container table, never the other way round.
#[derive(Default)]
pub(crate) struct NetTable {
    pub networks: BTreeMap<String, Network>,
    pub ipam: HashMap<String, Allocator>,
}

impl NetTable {
    /// Full id, exact name, or a unique id prefix (Docker's order).
    pub(crate) fn find(&self, key: &str) -> Result<&Network> {
        if let Some(n) = self.networks.get(key) {
            return Ok(n);
        }
        if let Some(n) = self.networks.values().find(|n| n.name == key) {
            return Ok(n);
        }
        let hits: Vec<&Network> = if key.is_empty() {
            Vec::new()
        } else {
            self.networks
                .values()
                .filter(|n| n.id.starts_with(key))
                .collect()
        };
        match hits.as_slice() {
            [one] => Ok(one),
            [] => Err(EngineError::NotFound(format!("network {key} not found"))),
            _ => Err(EngineError::InvalidArgument(format!(
                "network {key} is ambiguous ({} matches found based on ID prefix)",
                hits.len()
            ))),
        }
    }

    fn subnets(&self) -> Vec<(String, Subnet)> {
        self.networks
            .values()
            .filter_map(|n| Some((n.name.clone(), n.pool.as_ref()?.subnet)))
            .collect()
    }
}

impl From<berth_network::NetworkError> for EngineError {
    fn from(e: berth_network::NetworkError) -> Self {
        use berth_network::NetworkError as N;
        match e {
            N::NotFound(m) => EngineError::NotFound(m),
            N::Conflict(m) => EngineError::Conflict(m),
            N::InvalidArgument(m) => EngineError::InvalidArgument(m),
            e @ N::Os { .. } => EngineError::Internal(e.to_string()),
        }
    }
}

impl Paths {
    pub fn networks(&self) -> PathBuf {
        self.root.join("networks")
    }
    fn network_record(&self, id: &str) -> PathBuf {
        self.networks().join(format!("{id}.json"))
    }
    fn ipam_table(&self, id: &str) -> PathBuf {
        self.networks().join("ipam").join(format!("{id}.json"))
    }
}

/// The default bridge's device: `berth0` for the usual root; a daemon on
/// another root (tests, a second daemon) gets a name of its own, derived
/// from the root so it is the same after a restart.
pub fn default_bridge_name(root: &Path) -> String {
    if root == Path::new(DEFAULT_ROOT) {
        return "berth0".into();
    }
    let h = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
        });
    format!("berth{:08x}", h as u32)
}

/// The ownership mark on this daemon's bridges. Absolute, so another
/// daemon's existence check means the same dir.
fn bridge_alias(root: &Path) -> String {
    format!(
        "{BRIDGE_ALIAS}{}",
        root.canonicalize()
            .unwrap_or_else(|_| root.to_path_buf())
            .display()
    )
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

fn parse_mtu(v: &str) -> Result<u32> {
    v.parse::<u32>()
        .ok()
        .filter(|m| (68..=65535).contains(m))
        .ok_or_else(|| {
            EngineError::InvalidArgument(format!(
                "invalid {OPT_MTU} option {v:?}: an MTU between 68 and 65535"
            ))
        })
}

/// Docker's pools without 172.17.0.0/16: that is docker0's, and Docker
/// often shares the host (its bridge may be down or absent right now).
fn pools() -> Vec<Subnet> {
    ipam::default_pools()
        .into_iter()
        .filter(|p| p.addr != std::net::Ipv4Addr::new(172, 17, 0, 0))
        .collect()
}

/// Host-wide: a subnet is picked from the host's routes and becomes a route
/// only once its bridge has the address. Two daemons starting at once (tests
/// run many) would pick the same one in between; this lock closes that gap.
fn subnet_lock() -> Result<std::fs::File> {
    let p = Path::new("/run/berth-subnets.lock");
    let f = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map_err(|e| io_err("open", p, e))?;
    // SAFETY: flock on a descriptor we own; released when the file closes.
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } != 0 {
        return Err(io_err("lock", p, std::io::Error::last_os_error()));
    }
    Ok(f)
}

fn host_routes() -> Result<Vec<berth_network::netlink::Route>> {
    Ok(Netlink::open()?.routes()?)
}

impl Engine {
    pub(crate) fn nets(&self) -> MutexGuard<'_, NetTable> {
        self.nets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn persist_network(&self, n: &Network) -> Result<()> {
        let p = self.paths.network_record(&n.id);
        write_atomic(
            &p,
            &serde_json::to_vec_pretty(n).expect("network serialises"),
        )
    }

    /// Startup: reads the records, creates the predefined networks the
    /// first time, and makes sure every bridge exists with its gateway (a
    /// host reboot removes them).
    pub(crate) fn networks_open(&self) -> Result<()> {
        let dir = self.paths.networks();
        std::fs::create_dir_all(dir.join("ipam")).map_err(|e| io_err("create", &dir, e))?;
        // Bridges of daemons whose root was deleted (test daemons killed
        // with their temp dirs): nobody else would remove them, and their
        // subnets would stay taken.
        let orphans = bridge::remove_orphans(&mut Netlink::open()?, BRIDGE_ALIAS, |root| {
            Path::new(root).is_absolute() && !Path::new(root).exists()
        })
        .unwrap_or_default();
        // A dead daemon's nftables table is named after its default bridge;
        // left alone, its rules would drop traffic for a subnet another
        // daemon now uses.
        for b in orphans.iter().filter(|b| b.starts_with("berth")) {
            if let Ok(fw) = berth_network::firewall::Firewall::new(b) {
                let _ = fw.clear();
            }
        }
        let mut t = self.nets();
        let _subnets = subnet_lock()?;
        for e in std::fs::read_dir(&dir)
            .map_err(|e| io_err("read", &dir, e))?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let data = std::fs::read(&p).map_err(|e| io_err("read", &p, e))?;
            let n: Network = serde_json::from_slice(&data).map_err(|e| {
                EngineError::Internal(format!("corrupt network record {}: {e}", p.display()))
            })?;
            t.networks.insert(n.id.clone(), n);
        }
        for (name, driver) in [("none", "null"), ("host", "host")] {
            if !t.networks.values().any(|n| n.name == name) {
                let n = Network {
                    id: random_id(),
                    name: name.into(),
                    created: now_rfc3339(),
                    driver: driver.into(),
                    predefined: true,
                    ..Network::default()
                };
                self.persist_network(&n)?;
                t.networks.insert(n.id.clone(), n);
            }
        }
        if !t.networks.values().any(|n| n.name == "bridge") {
            let subnet = ipam::pick_subnet(&pools(), &t.subnets(), &host_routes()?)?;
            let pool = Pool::new(&subnet.to_string(), None, None)?;
            let bridge = default_bridge_name(&self.paths.root);
            let options = BTreeMap::from(
                [
                    ("com.docker.network.bridge.default_bridge", "true"),
                    ("com.docker.network.bridge.enable_icc", "true"),
                    ("com.docker.network.bridge.enable_ip_masquerade", "true"),
                    ("com.docker.network.bridge.host_binding_ipv4", "0.0.0.0"),
                    (OPT_BRIDGE_NAME, bridge.as_str()),
                    (OPT_MTU, "1500"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            let n = Network {
                id: random_id(),
                name: "bridge".into(),
                created: now_rfc3339(),
                driver: "bridge".into(),
                pool: Some(pool),
                bridge,
                mtu: Some(DEFAULT_MTU),
                options,
                predefined: true,
                ..Network::default()
            };
            self.persist_network(&n)?;
            t.networks.insert(n.id.clone(), n);
        }
        let mut nl = Netlink::open()?;
        // Our bridges no record names: a `network create` killed between
        // the bridge and its record. Nothing else would ever remove them.
        let alias = bridge_alias(&self.paths.root);
        let named: Vec<&str> = t.networks.values().map(|n| n.bridge.as_str()).collect();
        for l in nl.links()? {
            if l.kind.as_deref() == Some("bridge")
                && l.alias.as_deref() == Some(alias.as_str())
                && !named.contains(&l.name.as_str())
            {
                eprintln!(
                    "berthd: bridge {} has no network record: removing it",
                    l.name
                );
                bridge::remove(&mut nl, &l.name, &alias)?;
            }
        }
        let nets: Vec<Network> = t.networks.values().cloned().collect();
        let mut usable = Vec::new();
        for n in nets.iter().filter(|n| n.is_bridge()) {
            let (Some(spec), Some(pool)) = (n.bridge_spec(&self.paths.root), n.pool.clone()) else {
                continue;
            };
            match bridge::ensure(&mut nl, &spec) {
                Ok(()) => usable.push(n),
                // Someone else's link took the name while we were down (a
                // user network named its bridge docker0, then Docker came
                // up): leave it alone and keep the daemon up; containers on
                // this network fail to start with this same error.
                Err(e @ berth_network::NetworkError::Conflict(_)) if !n.predefined => {
                    eprintln!("berthd: network {} is unusable: {e}", n.name);
                }
                Err(e) => return Err(e.into()),
            }
            let a = Allocator::open(&self.paths.ipam_table(&n.id), pool)?;
            t.ipam.insert(n.id.clone(), a);
        }
        drop(t);
        for n in usable {
            self.network_up_hook(n)?;
        }
        Ok(())
    }

    /// `POST /networks/create`: validates, picks a subnet when none is
    /// given, creates the bridge and returns the id.
    pub fn network_create(&self, req: NetworkCreate) -> Result<String> {
        let name = req.name.trim().to_string();
        if name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "network name is required".into(),
            ));
        }
        if !valid_name(&name) {
            return Err(EngineError::InvalidArgument(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = if req.driver.is_empty() {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        match driver.as_str() {
            "bridge" => {}
            "host" | "null" => {
                return Err(EngineError::Forbidden(format!(
                    "only one instance of \"{driver}\" network is allowed"
                )));
            }
            other => {
                return Err(EngineError::NotFound(format!(
                    "plugin \"{other}\" not found"
                )));
            }
        }
        if req.enable_ipv6 == Some(true) {
            return Err(EngineError::InvalidArgument(
                "IPv6 networks are not supported by Berth yet".into(),
            ));
        }
        if let Some(d) = req.ipam.as_ref().and_then(|i| i.driver.as_deref())
            && !d.is_empty()
            && d != "default"
        {
            return Err(EngineError::NotFound(format!("plugin \"{d}\" not found")));
        }
        let configs = req
            .ipam
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        if configs.len() > 1 {
            return Err(EngineError::InvalidArgument(
                "Berth supports one IPv4 pool per network (got several IPAM configs)".into(),
            ));
        }
        let options = req.options.clone().unwrap_or_default();
        let mtu = options.get(OPT_MTU).map(|v| parse_mtu(v)).transpose()?;
        let id = random_id();
        let bridge = match options.get(OPT_BRIDGE_NAME) {
            Some(b) => {
                berth_network::netlink::check_ifname(b)?;
                b.clone()
            }
            None => format!("br-{}", &id[..12]),
        };

        let mut t = self.nets();
        if t.networks.values().any(|n| n.name == name) {
            return Err(EngineError::Conflict(format!(
                "network with name {name} already exists"
            )));
        }
        if t.networks.values().any(|n| n.bridge == bridge) {
            return Err(EngineError::Conflict(format!(
                "bridge name {bridge} is already used by another network"
            )));
        }
        // Held until the bridge holds its address (end of this function).
        let _subnets = subnet_lock()?;
        let routes = host_routes()?;
        let others = t.subnets();
        let pool = match configs.first() {
            Some(c) if c.subnet.as_deref().is_some_and(|s| !s.is_empty()) => {
                let pool = Pool::new(
                    c.subnet.as_deref().unwrap_or_default(),
                    c.gateway.as_deref(),
                    c.ip_range.as_deref(),
                )?;
                ipam::check_overlap(&pool.subnet, &others, &routes)?;
                pool
            }
            Some(c) if c.gateway.is_some() || c.ip_range.is_some() => {
                return Err(EngineError::InvalidArgument(
                    "a gateway or ip-range needs a subnet (--subnet)".into(),
                ));
            }
            _ => {
                let s = ipam::pick_subnet(&pools(), &others, &routes)?;
                Pool::new(&s.to_string(), None, None)?
            }
        };
        // The bridge device must not belong to anything else on the host.
        let mut nl = Netlink::open()?;
        if let Some(l) = nl.link(&bridge)? {
            return Err(EngineError::Conflict(format!(
                "a link named {bridge} already exists on the host (kind {}); Berth creates its own bridge",
                l.kind.as_deref().unwrap_or("none")
            )));
        }
        let n = Network {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            driver,
            internal: req.internal,
            attachable: req.attachable,
            pool: Some(pool.clone()),
            bridge,
            mtu,
            options,
            labels: req.labels.unwrap_or_default(),
            predefined: false,
        };
        let spec = n
            .bridge_spec(&self.paths.root)
            .expect("bridge network has a pool");
        if let Err(e) = bridge::ensure(&mut nl, &spec) {
            let _ = bridge::remove(&mut nl, &spec.name, &spec.alias);
            return Err(e.into());
        }
        let res = Allocator::open(&self.paths.ipam_table(&id), pool)
            .map_err(EngineError::from)
            .and_then(|a| {
                self.persist_network(&n)?;
                Ok(a)
            });
        let a = match res {
            Ok(a) => a,
            Err(e) => {
                let _ = bridge::remove(&mut nl, &spec.name, &spec.alias);
                return Err(e);
            }
        };
        t.ipam.insert(id.clone(), a);
        t.networks.insert(id.clone(), n.clone());
        drop(t);
        if let Err(e) = self.network_up_hook(&n) {
            let _ = self.network_remove(&id);
            return Err(e);
        }
        self.emit_network(&id, "create", &n.name, &n.driver, None);
        Ok(id)
    }

    /// Endpoints on `net_id` by container: (id, name, endpoint).
    fn endpoints_on(&self, net_id: &str) -> Vec<(String, String, crate::EndpointSettings)> {
        self.lock()
            .containers
            .values()
            .filter_map(|c| {
                let ep = c
                    .network_settings
                    .networks
                    .values()
                    .find(|e| e.network_id == net_id && !e.endpoint_id.is_empty())?;
                Some((c.id.clone(), c.short_name().to_string(), ep.clone()))
            })
            .collect()
    }

    pub fn network_inspect(&self, key: &str) -> Result<Value> {
        let n = self.nets().find(key)?.clone();
        Ok(n.inspect(&self.endpoints_on(&n.id)))
    }

    /// `GET /networks` with Docker's filters (name, id, driver, label, type).
    pub fn network_list(&self, filters: &Value) -> Result<Vec<Value>> {
        let nets: Vec<Network> = self.nets().networks.values().cloned().collect();
        let mut out: Vec<(String, Value)> = nets
            .iter()
            .filter(|n| filters::network_matches(n, filters))
            .map(|n| (n.name.clone(), n.inspect(&self.endpoints_on(&n.id))))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    /// `DELETE /networks/{id}`: not a predefined one, not while containers
    /// are attached.
    pub fn network_remove(&self, key: &str) -> Result<()> {
        let mut t = self.nets();
        let n = t.find(key)?.clone();
        if n.predefined {
            return Err(EngineError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let attached: Vec<String> = self
            .lock()
            .containers
            .values()
            .filter(|c| {
                c.network_settings
                    .networks
                    .values()
                    .any(|e| e.network_id == n.id && !e.endpoint_id.is_empty())
            })
            .map(|c| c.short_name().to_string())
            .collect();
        if !attached.is_empty() {
            return Err(EngineError::Conflict(format!(
                "error while removing network: network {} id {} has active endpoints ({})",
                n.name,
                n.id,
                attached.join(", ")
            )));
        }
        self.network_down_hook(&n);
        if n.is_bridge() {
            let alias = bridge_alias(&self.paths.root);
            match bridge::remove(&mut Netlink::open()?, &n.bridge, &alias) {
                Ok(()) => {}
                // Not our link (Docker's bridge took the name while we were
                // down): the network goes, the link stays untouched.
                Err(berth_network::NetworkError::Conflict(e)) => {
                    eprintln!("berthd: removing network {}: {e}", n.name);
                }
                Err(e) => return Err(e.into()),
            }
        }
        let p = self.paths.network_record(&n.id);
        std::fs::remove_file(&p).map_err(|e| io_err("remove", &p, e))?;
        let _ = std::fs::remove_file(self.paths.ipam_table(&n.id));
        t.networks.remove(&n.id);
        t.ipam.remove(&n.id);
        drop(t);
        self.emit_network(&n.id, "destroy", &n.name, &n.driver, None);
        Ok(())
    }

    /// `POST /networks/prune`: user networks no container refers to.
    pub fn network_prune(&self, filters: &Value) -> Result<Vec<String>> {
        let filter = filters::prune_filter(filters)?;
        let used: Vec<String> = self
            .lock()
            .containers
            .values()
            .flat_map(|c| {
                c.network_settings
                    .networks
                    .values()
                    .map(|e| e.network_id.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let candidates: Vec<Network> = self
            .nets()
            .networks
            .values()
            .filter(|n| !n.predefined && !used.contains(&n.id))
            .filter(|n| filters::prune_matches(n, &filter))
            .cloned()
            .collect();
        let mut removed = Vec::new();
        for n in candidates {
            match self.network_remove(&n.id) {
                Ok(()) => removed.push(n.name),
                Err(EngineError::Conflict(_)) | Err(EngineError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(removed)
    }

    /// Snapshots of the running containers.
    pub(crate) fn running_containers(&self) -> Vec<crate::Container> {
        self.lock()
            .containers
            .values()
            .filter(|c| c.state.running)
            .cloned()
            .collect()
    }

    /// After the containers are restored: give back addresses held by
    /// containers that are not running (exits while the daemon was down, a
    /// crash between allocation and record) and delete host veths on our
    /// bridges that no running container owns.
    pub(crate) fn networks_reconcile(&self) -> Result<()> {
        let live = self.running_containers();
        let live_ids: Vec<&str> = live.iter().map(|c| c.id.as_str()).collect();
        let live_veths: Vec<String> = live
            .iter()
            .flat_map(|c| c.network_settings.networks.values())
            .filter(|e| !e.endpoint_id.is_empty())
            .map(|e| bridge::host_veth_name(&e.endpoint_id))
            .collect();
        let mut t = self.nets();
        // A table that was lost (empty or corrupt after a power cut) starts
        // empty: the addresses running containers hold go back in first.
        for c in &live {
            for ep in c.network_settings.networks.values() {
                if let (Some(a), Ok(ip)) = (
                    t.ipam.get_mut(&ep.network_id),
                    ep.ip_address.parse::<std::net::Ipv4Addr>(),
                ) && let Err(e) = a.claim(&c.id, ip)
                {
                    eprintln!("berthd: container {}: {e}", c.id);
                }
            }
        }
        for a in t.ipam.values_mut() {
            let stale: Vec<std::net::Ipv4Addr> = a
                .allocated()
                .filter(|(_, o)| !live_ids.contains(&o.as_str()))
                .map(|(ip, _)| *ip)
                .collect();
            for ip in stale {
                a.release(ip)?;
            }
        }
        let mut nl = Netlink::open()?;
        let bridges: Vec<(i32, String)> = t
            .networks
            .values()
            .filter(|n| n.is_bridge())
            .filter_map(|n| {
                let l = nl.link(&n.bridge).ok().flatten()?;
                Some((l.index, n.bridge.clone()))
            })
            .collect();
        drop(t);
        for l in nl.links()? {
            let Some((_, br)) = bridges.iter().find(|(i, _)| Some(*i) == l.master) else {
                continue;
            };
            if l.name.starts_with("veth") && !live_veths.contains(&l.name) {
                bridge::detach(&mut nl, &l.name, br)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn net(name: &str, predefined: bool) -> Network {
        Network {
            id: format!("{name}0123456789"),
            name: name.into(),
            driver: "bridge".into(),
            predefined,
            labels: BTreeMap::from([("team".to_string(), "a".to_string())]),
            ..Network::default()
        }
    }

    #[test]
    fn default_bridge_names() {
        assert_eq!(default_bridge_name(Path::new(DEFAULT_ROOT)), "berth0");
        let a = default_bridge_name(Path::new("/var/tmp/x"));
        assert_eq!(a, default_bridge_name(Path::new("/var/tmp/x")));
        assert_ne!(a, default_bridge_name(Path::new("/var/tmp/y")));
        assert!(a.len() <= 15 && a.starts_with("berth"), "{a}");
    }

    #[test]
    fn find_by_id_name_prefix() {
        let mut t = NetTable::default();
        for n in [net("front", false), net("back", false)] {
            t.networks.insert(n.id.clone(), n);
        }
        assert_eq!(t.find("front").unwrap().name, "front");
        assert_eq!(t.find("back0123").unwrap().name, "back");
        let e = t.find("nope").unwrap_err().to_string();
        assert_eq!(e, "network nope not found");
    }
}
