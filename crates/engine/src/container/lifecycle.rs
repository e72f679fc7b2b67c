//! create, start, kill, stop, wait, attach, remove — each through the
//! container's shim; a watcher thread per running container records its exit.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_image::ImageStore;
use berth_image::lease::{Lease, LeaseKind, path_lease_id};
use berth_shim::{Options, Request, ShimClient};

use super::model::{Container, CreateRequest, State, WaitCondition, ZERO_TIME};
use super::{apply_exit, no_such, read_exit, spec};
use crate::error::{EngineError, Result, io_err};
use crate::util::{now_rfc3339, parse_signal, random_id};
use crate::{Engine, Paths};

// Generated names are adjective_surname, as Docker's: 107 × 236
// pairs, drawn at random and redrawn on a clash.
const ADJECTIVES: &[&str] = &[
    "admiring",
    "adoring",
    "agitated",
    "amazing",
    "angry",
    "awesome",
    "beautiful",
    "blissful",
    "bold",
    "boring",
    "brave",
    "busy",
    "charming",
    "clever",
    "compassionate",
    "competent",
    "condescending",
    "confident",
    "cool",
    "cranky",
    "crazy",
    "dazzling",
    "determined",
    "distracted",
    "dreamy",
    "eager",
    "ecstatic",
    "elastic",
    "elated",
    "elegant",
    "eloquent",
    "epic",
    "exciting",
    "fervent",
    "festive",
    "flamboyant",
    "focused",
    "friendly",
    "frosty",
    "funny",
    "gallant",
    "gifted",
    "goofy",
    "gracious",
    "great",
    "happy",
    "hardcore",
    "heuristic",
    "hopeful",
    "hungry",
    "infallible",
    "inspiring",
    "intelligent",
    "interesting",
    "jolly",
    "jovial",
    "keen",
    "kind",
    "laughing",
    "loving",
    "lucid",
    "magical",
    "modest",
    "musing",
    "mystifying",
    "naughty",
    "nervous",
    "nice",
    "nifty",
    "nostalgic",
    "objective",
    "optimistic",
    "peaceful",
    "pedantic",
    "pensive",
    "practical",
    "priceless",
    "quirky",
    "quizzical",
    "recursing",
    "relaxed",
    "reverent",
    "romantic",
    "sad",
    "serene",
    "sharp",
    "silly",
    "sleepy",
    "stoic",
    "strange",
    "stupefied",
    "suspicious",
    "sweet",
    "tender",
    "thirsty",
    "trusting",
    "unruffled",
    "upbeat",
    "vibrant",
    "vigilant",
    "vigorous",
    "wizardly",
    "wonderful",
    "xenodochial",
    "youthful",
    "zealous",
    "zen",
];
const SURNAMES: &[&str] = &[
    "agnesi",
    "albattani",
    "allen",
    "almeida",
    "antonelli",
    "archimedes",
    "ardinghelli",
    "aryabhata",
    "austin",
    "babbage",
    "banach",
    "banzai",
    "bardeen",
    "bartik",
    "bassi",
    "beaver",
    "bell",
    "benz",
    "bhabha",
    "bhaskara",
    "black",
    "blackburn",
    "blackwell",
    "bohr",
    "booth",
    "borg",
    "bose",
    "bouman",
    "boyd",
    "brahmagupta",
    "brattain",
    "brown",
    "buck",
    "burnell",
    "cannon",
    "carson",
    "cartwright",
    "carver",
    "cerf",
    "chandrasekhar",
    "chaplygin",
    "chatelet",
    "chatterjee",
    "chaum",
    "chebyshev",
    "clarke",
    "cohen",
    "colden",
    "cori",
    "cray",
    "curie",
    "curran",
    "darwin",
    "davinci",
    "dewdney",
    "dhawan",
    "diffie",
    "dijkstra",
    "dirac",
    "driscoll",
    "dubinsky",
    "easley",
    "edison",
    "einstein",
    "elbakyan",
    "elgamal",
    "elion",
    "ellis",
    "engelbart",
    "euclid",
    "euler",
    "faraday",
    "feistel",
    "fermat",
    "fermi",
    "feynman",
    "franklin",
    "gagarin",
    "galileo",
    "galois",
    "ganguly",
    "gates",
    "gauss",
    "germain",
    "goldberg",
    "goldstine",
    "goldwasser",
    "golick",
    "goodall",
    "gould",
    "greider",
    "grothendieck",
    "haibt",
    "hamilton",
    "haslett",
    "hawking",
    "heisenberg",
    "hellman",
    "hermann",
    "herschel",
    "hertz",
    "heyrovsky",
    "hodgkin",
    "hofstadter",
    "hoover",
    "hopper",
    "hugle",
    "hypatia",
    "ishizaka",
    "jackson",
    "jang",
    "jemison",
    "jennings",
    "jepsen",
    "johnson",
    "joliot",
    "jones",
    "kalam",
    "kapitsa",
    "kare",
    "keldysh",
    "keller",
    "kepler",
    "khayyam",
    "khorana",
    "kilby",
    "kirch",
    "knuth",
    "kowalevski",
    "lalande",
    "lamarr",
    "lamport",
    "leakey",
    "leavitt",
    "lederberg",
    "lehmann",
    "lewin",
    "lichterman",
    "liskov",
    "lovelace",
    "lumiere",
    "mahavira",
    "margulis",
    "matsumoto",
    "maxwell",
    "mayer",
    "mccarthy",
    "mcclintock",
    "mclaren",
    "mclean",
    "mcnulty",
    "meitner",
    "mendel",
    "mendeleev",
    "meninsky",
    "merkle",
    "mestorf",
    "mirzakhani",
    "montalcini",
    "moore",
    "morse",
    "moser",
    "murdock",
    "napier",
    "nash",
    "neumann",
    "newton",
    "nightingale",
    "nobel",
    "noether",
    "northcutt",
    "noyce",
    "panini",
    "pare",
    "pascal",
    "pasteur",
    "payne",
    "perlman",
    "pike",
    "poincare",
    "poitras",
    "proskuriakova",
    "ptolemy",
    "raman",
    "ramanujan",
    "rhodes",
    "ride",
    "ritchie",
    "robinson",
    "roentgen",
    "rosalind",
    "rubin",
    "saha",
    "sammet",
    "sanderson",
    "satoshi",
    "shamir",
    "shannon",
    "shaw",
    "shirley",
    "shockley",
    "shtern",
    "sinoussi",
    "snyder",
    "solomon",
    "spence",
    "stonebraker",
    "sutherland",
    "swanson",
    "swartz",
    "swirles",
    "taussig",
    "tesla",
    "tharp",
    "thompson",
    "torvalds",
    "tu",
    "turing",
    "varahamihira",
    "vaughan",
    "villani",
    "visvesvaraya",
    "volhard",
    "wescoff",
    "wilbur",
    "wiles",
    "williams",
    "williamson",
    "wilson",
    "wing",
    "wozniak",
    "wright",
    "wu",
    "yalow",
    "yonath",
    "zhukovsky",
];

/// A random adjective_surname from `seed` (hex digits, at least 8).
fn generated_name(seed: &str) -> String {
    let b = u32::from_str_radix(&seed[..8], 16).unwrap_or(0) as usize;
    format!(
        "{}_{}",
        ADJECTIVES[b % ADJECTIVES.len()],
        SURNAMES[(b >> 8) % SURNAMES.len()]
    )
}

pub(crate) fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Image env first, the client's entries replace same-named ones.
fn merge_env(image: &[String], client: &[String]) -> Vec<String> {
    let key = |e: &str| e.split('=').next().unwrap_or("").to_string();
    let mut out: Vec<String> = image.to_vec();
    for e in client {
        out.retain(|x| key(x) != key(e));
        out.push(e.clone());
    }
    out
}

impl Engine {
    /// `POST /containers/create`: the record, a rootfs overlay under a lease,
    /// the OCI bundle, and a shim holding the created container (so a client
    /// can attach before start).
    pub fn create(
        self: &Arc<Self>,
        name: Option<&str>,
        mut req: CreateRequest,
    ) -> Result<(String, Vec<String>)> {
        super::restart::validate(&req.host_config)?;
        super::validate::host_config(
            &mut req.host_config,
            &super::validate::HostResources::probe(),
            false,
        )?;
        let image_name = req.config.image.clone().unwrap_or_default();
        if image_name.is_empty() {
            return Err(EngineError::InvalidArgument(
                "config.Image is required".into(),
            ));
        }
        let rec = self.resolve_image(&image_name)?;
        let id = random_id();
        let generated = name.is_none_or(str::is_empty);
        let name = match name.filter(|n| !n.is_empty()) {
            Some(n) => {
                let n = n.trim_start_matches('/');
                if !valid_name(n) {
                    return Err(EngineError::InvalidArgument(format!(
                        "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                    )));
                }
                n.to_string()
            }
            // Redrawn on a clash, as dockerd does; past that the id's
            // prefix keeps it unique.
            None => {
                let mut name = generated_name(&id);
                for _ in 0..8 {
                    if self.check_name(&name).is_ok() {
                        break;
                    }
                    name = generated_name(&random_id());
                }
                if self.check_name(&name).is_err() {
                    name = format!("{name}_{}", &id[..6]);
                }
                name
            }
        };
        self.check_name(&name)?;
        let icfg = self.image_config(&rec)?;
        let ic: berth_image::formats::ContainerConfig =
            serde_json::from_value(icfg["config"].clone()).unwrap_or_default();

        let mut config = req.config;
        let mut host_config = req.host_config;
        let warnings = super::sysinfo::verify(&mut host_config, super::sysinfo::Support::detect())?;
        // `--entrypoint ""` resets the image's entrypoint (and its Cmd).
        if config
            .entrypoint
            .as_ref()
            .is_some_and(|e| e.len() == 1 && e[0].is_empty())
        {
            config.entrypoint = Some(Vec::new());
        }
        if config.entrypoint.is_none() {
            config.entrypoint = ic.entrypoint.clone();
            if config.cmd.as_ref().is_none_or(|c| c.is_empty()) {
                config.cmd = ic.cmd.clone();
            }
        }
        let client_env = config.env.clone().unwrap_or_default();
        let mut env = merge_env(&ic.env.clone().unwrap_or_default(), &client_env);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.insert(
                0,
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            );
        }
        config.env = Some(env.clone());
        if config.working_dir.as_deref().is_none_or(str::is_empty) {
            config.working_dir = ic.working_dir.clone().filter(|w| !w.is_empty());
        }
        if config.user.as_deref().is_none_or(str::is_empty) {
            config.user = ic.user.clone();
        }
        let mut labels = ic.labels.clone().unwrap_or_default();
        labels.extend(config.labels.take().unwrap_or_default());
        config.labels = Some(labels);
        if config.stop_signal.is_none() {
            config.stop_signal = ic.stop_signal.clone();
        }
        if host_config.uts_mode.as_deref() == Some("host") {
            if config.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                return Err(EngineError::InvalidArgument(
                    "Conflicting options: hostname and the UTS mode".into(),
                ));
            }
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
            config.hostname = Some(host.trim().to_string());
        }
        if config.hostname.as_deref().is_none_or(str::is_empty) {
            config.hostname = Some(id[..12].to_string());
        }
        let plan = self.plan_networks(&host_config, &req.networking_config)?;
        host_config.network_mode = Some(plan.mode.clone());
        let mut argv: Vec<String> = config.entrypoint.clone().unwrap_or_default();
        argv.extend(config.cmd.clone().unwrap_or_default());
        if argv.is_empty() {
            return Err(EngineError::InvalidArgument("No command specified".into()));
        }
        if config.tty.unwrap_or(false) && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        env.push(format!(
            "HOSTNAME={}",
            config.hostname.as_deref().unwrap_or_default()
        ));

        let dir = self.paths.container_dir(&id);
        let mut c = Container {
            id: id.clone(),
            name: format!("/{name}"),
            created: now_rfc3339(),
            path: argv[0].clone(),
            args: argv[1..].to_vec(),
            state: State {
                status: "created".into(),
                started_at: ZERO_TIME.into(),
                finished_at: ZERO_TIME.into(),
                ..State::default()
            },
            image: rec.id.to_string(),
            log_path: dir.join(format!("{id}-json.log")).display().to_string(),
            hostname_path: dir.join("hostname").display().to_string(),
            hosts_path: dir.join("hosts").display().to_string(),
            resolv_conf_path: dir.join("resolv.conf").display().to_string(),
            driver: "overlay2".into(),
            platform: "linux".into(),
            restart_count: 0,
            config,
            host_config,
            network_settings: crate::NetworkSettings {
                networks: plan.networks,
                ..Default::default()
            },
            shim: false,
            exits: 0,
            ..Container::default()
        };
        let image_volumes: Vec<String> = icfg["config"]["Volumes"]
            .as_object()
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        c.mount_points = self.plan_mounts(&c, &image_volumes)?;
        let res = self.prepare_bundle(&c, &rec, &argv, &env);
        let res = res.and_then(|()| {
            let pid = self.launch_shim(&c, false)?;
            c.shim = true;
            self.persist(&c)?;
            if c.host_config.network_mode.as_deref() == Some("none") {
                super::netns::loopback_up(pid)?;
            }
            Ok(())
        });
        if let Err(e) = res {
            Engine::release_volumes(&mut self.lock(), &c.mount_points);
            self.destroy(&c);
            self.remove_anonymous_volumes(&c.mount_points);
            return Err(e);
        }
        let mut t = self.lock();
        Engine::release_volumes(&mut t, &c.mount_points);
        if generated && check_name_in(&t, &name).is_err() {
            // A concurrent create took the same generated name meanwhile:
            // the id-suffixed form is unique.
            c.name = format!("/{}_{}", name, &id[..6]);
            let _ = self.persist(&c);
        }
        if let Err(e) = check_name_in(&t, c.short_name()) {
            drop(t);
            self.destroy(&c);
            self.remove_anonymous_volumes(&c.mount_points);
            return Err(e);
        }
        t.containers.insert(id.clone(), c);
        drop(t);
        self.emit_container(&id, "create", &[]);
        Ok((id, warnings))
    }

    fn check_name(&self, name: &str) -> Result<()> {
        check_name_in(&self.lock(), name)
    }

    fn prepare_bundle(
        &self,
        c: &Container,
        rec: &berth_image::ImageRecord,
        argv: &[String],
        env: &[String],
    ) -> Result<()> {
        let dir = self.paths.container_dir(&c.id);
        let (rootfs, upper, work) = (dir.join("rootfs"), dir.join("upper"), dir.join("work"));
        for d in [&rootfs, &upper, &work] {
            std::fs::create_dir_all(d).map_err(|e| io_err("create", d, e))?;
        }
        let hostname = c.config.hostname.clone().unwrap_or_default();
        let p = dir.join("hostname");
        std::fs::write(&p, format!("{hostname}\n")).map_err(|e| io_err("write", &p, e))?;
        self.write_net_files(c)?;
        // The lease keeps the image's layers while this container exists,
        // even through `rmi --force`.
        let chains: Vec<_> = rec.layers.iter().map(|l| l.chain_id.clone()).collect();
        let mut lease = Lease::for_path(LeaseKind::Container, &dir, &rec.id, &chains);
        lease.blobs = rec.blobs().cloned().collect();
        let lowers = self.images.layer_dirs(rec)?;
        // A `--rm` container never outlives a reboot (its record is not
        // fsynced either), so neither its lease nor its upper dir needs to
        // reach the disk: that is two fsyncs at create and a flush of the
        // whole upper filesystem at unmount saved.
        if c.host_config.auto_remove.unwrap_or(false) {
            self.images.leases.put_volatile(&lease)?;
            berth_image::rootfs::mount_overlay_volatile(
                self.images.layers.root(),
                &lowers,
                (&upper, &work),
                &rootfs,
            )?;
        } else {
            self.images.leases.put(&lease)?;
            berth_image::rootfs::mount_overlay(
                self.images.layers.root(),
                &lowers,
                Some((&upper, &work)),
                &rootfs,
            )?;
        }
        self.seed_volumes(c, &rootfs)?;
        if let Some(wd) = c
            .config
            .working_dir
            .as_deref()
            .filter(|w| w.starts_with('/'))
        {
            super::seed::mkdir_in(&rootfs, wd).map_err(|e| {
                EngineError::InvalidArgument(format!("creating working directory {wd}: {e}"))
            })?;
        }
        let ids = super::options::resolve_user(c.config.user.as_deref().unwrap_or(""), &rootfs)?;
        let mut spec = spec::generate(c, argv, env, ids, crate::cgroup_v2(), &dir)?;
        self.apply_options(c, &mut spec, &rootfs, ids.1)?;
        let p = dir.join("config.json");
        crate::util::write_private(&p, &serde_json::to_vec_pretty(&spec)?)
            .map_err(|e| io_err("write", &p, e))?;
        self.join_shared_netns(c)
    }

    /// `--network container:<x>`: points the spec's network namespace at
    /// x's (again before each start: x may have restarted meanwhile).
    fn join_shared_netns(&self, c: &Container) -> Result<()> {
        let mode = c.host_config.network_mode.clone().unwrap_or_default();
        let Some((_, pid)) = self.netns_owner(&mode)? else {
            return Ok(());
        };
        let p = self.paths.container_dir(&c.id).join("config.json");
        let data = std::fs::read(&p).map_err(|e| io_err("read", &p, e))?;
        let mut spec: serde_json::Value = serde_json::from_slice(&data)?;
        let path = format!("/proc/{pid}/ns/net");
        let mut namespaces: Vec<serde_json::Value> = spec["linux"]["namespaces"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        namespaces.retain(|n| n["type"] != "network");
        namespaces.push(serde_json::json!({"type": "network", "path": path}));
        spec["linux"]["namespaces"] = serde_json::Value::Array(namespaces);
        crate::util::write_private(&p, &serde_json::to_vec_pretty(&spec)?)
            .map_err(|e| io_err("write", &p, e))
    }

    fn shim_options(&self, c: &Container, start: bool) -> Options {
        Options {
            id: c.id.clone(),
            bundle: self.paths.container_dir(&c.id),
            state_dir: self.paths.state_dir(&c.id),
            runtime: self.paths.runtime.clone(),
            runtime_root: Some(self.paths.runtime_root()),
            log_path: Some(c.log_path.clone().into()),
            log_max_size: 0,
            log_max_files: 1,
            stdin: c.config.open_stdin.unwrap_or(false),
            stdin_once: c.config.stdin_once.unwrap_or(false),
            tty: c.tty(),
            start,
            auto_remove: false,
            linger: None,
        }
    }

    fn launch_shim(&self, c: &Container, start: bool) -> Result<i32> {
        let opts = self.shim_options(c, start);
        let _ = std::fs::remove_dir_all(&opts.state_dir);
        berth_shim::launch(&self.paths.shim, &opts)
            .map(|s| s.container_pid)
            .map_err(|e| EngineError::InvalidArgument(format!("failed to create container: {e}")))
    }

    /// Undoes a create. What a client can see goes now: the container's
    /// dir leaves `containers/` (renamed into `trash/`), so no restore finds
    /// it again. The rest — the shim and the runtime's state, the rootfs
    /// mount, the lease, the files — is a [`Teardown`] on a background
    /// thread: on this VM's ext4 (mounted with `discard`, every freed file
    /// waits for a synchronous discard of 1–8 ms) it took 25–45 ms of every
    /// `run --rm`, whose client waits for the removal. A daemon that dies
    /// meanwhile finishes it at its next start ([`Engine::sweep_trash`]).
    fn destroy(&self, c: &Container) {
        let dir = self.paths.container_dir(&c.id);
        let lease = dir.canonicalize().ok().map(|p| path_lease_id(&p));
        let t = Teardown {
            dir: to_trash(&dir, &self.paths.root.join(TRASH), &c.id),
            paths: self.paths.clone(),
            images: self.images.clone(),
            id: c.id.clone(),
            lease,
            shim: c.shim,
        };
        std::thread::spawn(move || t.run());
    }

    /// A container dir whose record cannot be read (torn by a power cut,
    /// or a create cut short): moved to the trash and torn down in the
    /// background like a removed container's, with a log line.
    pub(crate) fn discard_unreadable(&self, dir: &Path, why: &str) {
        let Some(id) = dir.file_name().and_then(|n| n.to_str()).map(String::from) else {
            return;
        };
        // A create cut short: its shim and the runtime under it may wait
        // forever for the dead daemon, and a shim that never answers keeps
        // the teardown waiting; their process group goes first.
        kill_shim_group(&self.paths.state_dir(&id));
        eprintln!(
            "berthd: container record {} is unreadable ({why}): tearing container {id} down",
            dir.join(super::RECORD).display()
        );
        let lease = dir.canonicalize().ok().map(|p| path_lease_id(&p));
        let t = Teardown {
            dir: to_trash(dir, &self.paths.root.join(TRASH), &id),
            paths: self.paths.clone(),
            images: self.images.clone(),
            id,
            lease,
            shim: false,
        };
        std::thread::spawn(move || t.run());
    }

    /// Finishes the teardowns a previous daemon left in its trash dirs, in
    /// the background (startup does not wait for the disk).
    pub(crate) fn sweep_trash(&self) {
        let list = |d: &Path| -> Vec<_> {
            std::fs::read_dir(d.join(TRASH))
                .map(|rd| rd.flatten().map(|e| e.path()).collect())
                .unwrap_or_default()
        };
        let containers = self.paths.containers();
        let containers = containers.canonicalize().unwrap_or(containers);
        let teardowns: Vec<Teardown> = list(&self.paths.root)
            .into_iter()
            .filter_map(|dir| {
                let id = dir.file_name()?.to_str()?.to_string();
                Some(Teardown {
                    lease: Some(path_lease_id(&containers.join(&id))),
                    paths: self.paths.clone(),
                    images: self.images.clone(),
                    dir,
                    id,
                    shim: false,
                })
            })
            .collect();
        let states = list(&self.paths.exec_root);
        if teardowns.is_empty() && states.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for t in teardowns {
                t.run();
            }
            for d in states {
                let _ = std::fs::remove_dir_all(d);
            }
        });
    }

    /// `POST /containers/{id}/start`. A `--rm` container that fails to
    /// start is removed, as Docker does (its client waits for the removal).
    pub fn start(self: &Arc<Self>, key: &str) -> Result<()> {
        let res = self.start_container(key, false);
        if res.is_err()
            && let Ok(c) = self.inspect(key)
            && c.host_config.auto_remove.unwrap_or(false)
            && !c.state.running
        {
            let _ = self.remove(&c.id, true);
        }
        res
    }

    /// `restart`: the policy's start after a back-off, which keeps the
    /// manual-stop flag; a user's start clears it.
    pub(crate) fn start_container(self: &Arc<Self>, key: &str, restart: bool) -> Result<()> {
        let c = {
            let mut t = self.lock();
            let id = t.find(key)?;
            let c = t.containers.get_mut(&id).expect("found");
            // A policy restart whose back-off a stop or rm ended has
            // nothing left to do.
            if restart && !restart_wanted(c) {
                return Ok(());
            }
            if c.state.running && !(restart && c.state.restarting) {
                return Ok(());
            }
            if c.starting {
                return Err(EngineError::Conflict(format!(
                    "container {} is already being started",
                    c.id
                )));
            }
            if !restart {
                c.has_been_manually_stopped = false;
                c.stopping = false;
            }
            if c.state.status == "removing" {
                return Err(EngineError::Conflict(format!(
                    "container {} is being removed",
                    c.id
                )));
            }
            c.starting = true;
            c.clone()
        };
        // Cleared on every way out, waking stop/rm that wait for it.
        let _starting = StartingGuard {
            engine: self,
            id: c.id.clone(),
        };
        let mut c = c;
        let launched = !c.shim;
        if !c.shim {
            // A restart: a fresh shim holds the container created, so the
            // network is in place before the process runs, as on first start.
            self.join_shared_netns(&c)?;
            let pid = self.launch_shim(&c, false)?;
            c.shim = true;
            if let Some(cur) = self.lock().containers.get_mut(&c.id) {
                cur.shim = true;
                let _ = self.persist(cur);
            }
            if c.host_config.network_mode.as_deref() == Some("none") {
                let _ = super::netns::loopback_up(pid);
            }
        }
        let sock = self.paths.shim_socket(&c.id);
        let mut client = ShimClient::connect(&sock)?;
        let created_pid = client.state()?.pid;
        self.network_attach_all(&mut c, created_pid)?;
        // The right size from the first instruction on, not after the
        // client's resize (which races the start).
        if let Some([h, w]) = c.host_config.console_size.filter(|s| c.tty() && s[0] > 0) {
            let _ = client.resize(w, h, None);
        }
        self.serve_late_attaches(&c.id, &sock, c.config.open_stdin.unwrap_or(false));
        // Last check before the process runs: a stop or rm that came
        // during the launch wins, and the shim made for it goes again.
        let cancelled = {
            let t = self.lock();
            t.containers.get(&c.id).is_none_or(|cur| {
                cur.state.status == "removing" || (restart && !restart_wanted(cur))
            })
        };
        if cancelled {
            self.network_detach_all(&mut c);
            if launched {
                let _ = client.kill(libc::SIGKILL, true);
                let _ = client.wait(None);
                let _ = client.delete();
                let _ = client.shutdown();
                if let Some(cur) = self.lock().containers.get_mut(&c.id) {
                    cur.shim = false;
                    let _ = self.persist(cur);
                }
            }
            if restart {
                return Ok(());
            }
            return Err(EngineError::Conflict(format!(
                "container {} is being removed",
                c.id
            )));
        }
        if let Err(e) = client.start() {
            self.network_detach_all(&mut c);
            return Err(EngineError::InvalidArgument(format!(
                "failed to start container: {e}"
            )));
        }
        let pid = client.state().map(|s| s.pid).unwrap_or(created_pid);
        {
            let mut t = self.lock();
            let cur = t.containers.get_mut(&c.id).ok_or_else(|| no_such(key))?;
            cur.shim = true;
            cur.state.running = true;
            cur.state.restarting = false;
            cur.state.status = "running".into();
            cur.state.pid = pid;
            cur.state.exit_code = 0;
            cur.state.error.clear();
            cur.state.started_at = now_rfc3339();
            cur.state.finished_at = ZERO_TIME.into();
            cur.network_settings = c.network_settings.clone();
            cur.starting = false;
            self.persist_started(cur)?;
        }
        self.changed.notify_all();
        self.emit_container(&c.id, "start", &[]);
        self.watch(c.id.clone());
        Ok(())
    }

    /// A thread that waits on the shim for the container's exit, collects
    /// the shim, records the exit, and does `--rm`.
    pub(crate) fn watch(self: &Arc<Self>, id: String) {
        let engine = self.clone();
        std::thread::spawn(move || {
            let sock = engine.paths.shim_socket(&id);
            let exit = ShimClient::connect(&sock)
                .and_then(|mut s| s.wait(None))
                .ok();
            let exit = exit.or_else(|| read_exit(&engine.paths.state_dir(&id).join("exit.json")));
            // A `--rm` container's shim (and the runtime's delete, 5-15 ms
            // of discards here) is collected by its removal's teardown,
            // after its client has been answered.
            let auto_remove = engine
                .inspect(&id)
                .is_ok_and(|c| c.host_config.auto_remove.unwrap_or(false));
            if !auto_remove {
                match ShimClient::connect(&sock) {
                    Ok(mut s) => {
                        let _ = s.delete();
                        let _ = s.shutdown();
                    }
                    Err(_) => engine.cleanup_lost_shim(&id),
                }
            }
            // Unplugged before the exit is visible, so whoever waits for it
            // (stop, restart, rm) finds the address free.
            let settings = engine.inspect(&id).ok().map(|mut c| {
                engine.network_detach_all(&mut c);
                c.network_settings
            });
            let (auto_remove, code, restart) = {
                let mut t = engine.lock();
                let Some(c) = t.containers.get_mut(&id) else {
                    return;
                };
                if let Some(s) = settings {
                    c.network_settings = s;
                }
                apply_exit(c, exit);
                let restart = super::restart::after_exit(c);
                let _ = engine.persist(c);
                (
                    c.host_config.auto_remove.unwrap_or(false),
                    c.state.exit_code,
                    restart,
                )
            };
            engine.emit_container(&id, "die", &[("exitCode", code.to_string())]);
            engine.changed.notify_all();
            if let Some(delay) = restart {
                engine.restart_after(id, delay);
            } else if auto_remove {
                let _ = engine.remove_with(&id, true, true);
            }
        });
    }

    pub fn kill(&self, key: &str, signal: Option<&str>) -> Result<()> {
        let sig = parse_signal(signal.filter(|s| !s.is_empty()).unwrap_or("KILL"))?;
        let c = self.inspect(key)?;
        if !c.state.running {
            return Err(EngineError::Conflict(format!(
                "Cannot kill container: {key}: Container {} is not running",
                c.id
            )));
        }
        // unless-stopped stays down after a kill; `always` comes back.
        if self.mark_stopped(&c.id, false) {
            return Ok(());
        }
        ShimClient::connect(&self.paths.shim_socket(&c.id))?.kill(sig, false)?;
        self.emit_container(&c.id, "kill", &[("signal", sig.to_string())]);
        self.thaw_after_signal(&c.id);
        Ok(())
    }

    /// The stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, key: &str, timeout: Option<i64>, signal: Option<&str>) -> Result<()> {
        let c = self.inspect(key)?;
        if !c.state.running {
            return Ok(());
        }
        if self.mark_stopped(&c.id, true) {
            self.emit_container(&c.id, "stop", &[]);
            return Ok(());
        }
        let sig = signal
            .filter(|s| !s.is_empty())
            .map(String::from)
            .or(c.config.stop_signal.clone())
            .unwrap_or_else(|| "TERM".into());
        let timeout = timeout.or(c.config.stop_timeout).unwrap_or(10);
        let sock = self.paths.shim_socket(&c.id);
        let send =
            |sig: i32, all: bool| ShimClient::connect(&sock).and_then(|mut s| s.kill(sig, all));
        let signo = parse_signal(&sig)?;
        let _ = send(signo, false);
        self.emit_container(&c.id, "kill", &[("signal", signo.to_string())]);
        self.thaw_after_signal(&c.id);
        if timeout >= 0 && self.wait_stopped(&c.id, Duration::from_secs(timeout as u64)) {
            self.emit_container(&c.id, "stop", &[]);
            return Ok(());
        }
        let _ = send(libc::SIGKILL, true);
        self.emit_container(&c.id, "kill", &[("signal", libc::SIGKILL.to_string())]);
        if self.wait_stopped(&c.id, Duration::from_secs(30)) {
            self.emit_container(&c.id, "stop", &[]);
            Ok(())
        } else {
            Err(EngineError::Internal(format!(
                "container {} did not stop",
                c.id
            )))
        }
    }

    /// True once the container is not running (or gone) within `limit`.
    fn wait_stopped(&self, id: &str, limit: Duration) -> bool {
        // A client's `t` may be past what an Instant holds: no deadline.
        let end = Instant::now().checked_add(limit);
        let mut t = self.lock();
        loop {
            match t.containers.get(id) {
                Some(c) if c.state.running => {}
                _ => return true,
            }
            let now = Instant::now();
            t = match end {
                Some(end) if now >= end => return false,
                Some(end) => {
                    self.changed
                        .wait_timeout(t, end - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.changed.wait(t).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }

    /// Registers a wait; the ticket blocks in [`Engine::wait`]. Split so the
    /// API can answer with headers as soon as the wait is in place.
    pub fn wait_ticket(&self, key: &str, cond: WaitCondition) -> Result<WaitTicket> {
        let t = self.lock();
        let c = t.get(key)?;
        Ok(WaitTicket {
            id: c.id.clone(),
            cond,
            exits: c.exits,
            last: c.state.exit_code,
        })
    }

    /// Blocks until the ticket's condition holds; returns the exit code.
    pub fn wait(&self, ticket: &WaitTicket) -> i32 {
        let mut ticket = ticket.clone();
        let mut t = self.lock();
        loop {
            if let Some(code) = wait_check(&t, &mut ticket) {
                return code;
            }
            t = self.changed.wait(t).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// The exit code if the ticket's condition holds now; else None (the
    /// ticket remembers the last exit code for a later removal). For
    /// callers that wait on events instead of a thread.
    pub fn wait_poll(&self, ticket: &mut WaitTicket) -> Option<i32> {
        wait_check(&self.lock(), ticket)
    }

    /// Opens an attach stream on the container's shim: the returned socket
    /// carries stdin one way and output (frames unless tty) the other.
    pub fn attach(
        &self,
        key: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<(UnixStream, bool)> {
        let c = self.inspect(key)?;
        if !c.shim {
            // dockerd serves it from the next start (`docker start -a`).
            if c.state.status == "removing" {
                return Err(EngineError::Conflict(format!(
                    "container {} is being removed",
                    c.id
                )));
            }
            let s = self.attach_at_next_start(&c.id, stdin, stdout, stderr)?;
            return Ok((s, c.tty()));
        }
        let stream = shim_stream(
            &self.paths.shim_socket(&c.id),
            &Request::Attach {
                stdin: stdin && c.config.open_stdin.unwrap_or(false),
                stdout,
                stderr,
                exec_id: None,
            },
        )?;
        Ok((stream, c.tty()))
    }

    pub fn resize(&self, key: &str, exec_id: Option<&str>, w: u16, h: u16) -> Result<()> {
        let c = self.inspect(key)?;
        if !c.shim {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        ShimClient::connect(&self.paths.shim_socket(&c.id))?.resize(w, h, exec_id)?;
        Ok(())
    }

    /// `docker rm`: a running container needs `force` (then SIGKILL).
    pub fn remove(&self, key: &str, force: bool) -> Result<()> {
        self.remove_with(key, force, false)
    }

    /// `docker rm [-f] [-v]`: with `volumes`, the container's anonymous
    /// volumes go too (named volumes always stay).
    pub fn remove_with(&self, key: &str, force: bool, volumes: bool) -> Result<()> {
        let c = {
            let mut t = self.lock();
            let id = t.find(key)?;
            let c = t.containers.get_mut(&id).expect("found");
            if c.state.running && !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"{}\": container is running: stop the container before removing or force remove",
                    c.name
                )));
            }
            if c.state.status == "removing" && c.state.running {
                return Err(EngineError::Conflict(format!(
                    "removal of container {key} is already in progress"
                )));
            }
            // An in-flight (re)start sees this at its last check and gives
            // up; one past that check finishes, and is killed below.
            c.stopping = true;
            t = self.wait_not_starting(t, &id);
            let c = t.containers.get_mut(&id).ok_or_else(|| no_such(key))?;
            c.stopping = true;
            if c.state.restarting {
                // In back-off: no process to kill, and no restart now.
                c.state.restarting = false;
                c.state.running = false;
            }
            c.state.status = "removing".into();
            let _ = self.persist(c);
            c.clone()
        };
        let sock = self.paths.shim_socket(&c.id);
        if c.state.running {
            if let Ok(mut s) = ShimClient::connect(&sock) {
                let _ = s.kill(libc::SIGKILL, true);
            }
            self.thaw_after_signal(&c.id);
            if !self.wait_stopped(&c.id, Duration::from_secs(30)) {
                return Err(EngineError::Internal(format!(
                    "container {} did not stop",
                    c.id
                )));
            }
        }
        // A created, never started container's shim is collected here too.
        let mut c = self.inspect(&c.id).unwrap_or(c);
        self.network_detach_all(&mut c);
        self.destroy(&c);
        // After the record is gone, so a waiter woken by the event sees it.
        let attrs = self.container_attrs(&c.id, &[]);
        {
            let mut t = self.lock();
            if let Some(gone) = t.containers.remove(&c.id) {
                t.note_removed(&c.id, gone.state.exit_code);
            }
        }
        self.drop_late_attaches(&c.id);
        self.emit("container", "destroy", &c.id, attrs);
        if volumes {
            self.remove_anonymous_volumes(&c.mount_points);
        }
        self.changed.notify_all();
        Ok(())
    }
}

/// Where removed containers' dirs wait for deletion, under the root and
/// under the exec root (a rename does not cross filesystems).
const TRASH: &str = "trash";

/// Renames `dir` to `trash/<id>` (a mount inside moves with it) and says
/// where it is now: still at `dir` if it could not move (or is missing).
fn to_trash(dir: &Path, trash: &Path, id: &str) -> PathBuf {
    let dest = trash.join(id);
    let moved = std::fs::symlink_metadata(dir).is_ok()
        && std::fs::create_dir_all(trash).is_ok()
        && !dest.exists()
        && std::fs::rename(dir, &dest).is_ok();
    if moved { dest } else { dir.to_path_buf() }
}

/// The slow part of a container's removal (see [`Engine::destroy`]).
struct Teardown {
    paths: Paths,
    images: Arc<ImageStore>,
    id: String,
    /// The container's dir: in the trash, or where it was.
    dir: PathBuf,
    /// Its lease on the image, named after its original path.
    lease: Option<String>,
    /// The record says a shim holds it (one may also be left behind by a
    /// `--rm` container, whose shim is collected here).
    shim: bool,
}

/// How long a teardown waits for one answer of a shim or one runtime
/// command, and how often it asks for the runtime's delete.
const TEARDOWN_STEP_TIMEOUT: Duration = Duration::from_secs(10);
const TEARDOWN_DELETE_ATTEMPTS: u32 = 5;
const TEARDOWN_FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Runs `attempt` until it succeeds, at most `attempts` times, doubling the
/// pause between tries from `backoff`; logs every failure. `true` on success.
fn retry_logged(
    what: &str,
    attempts: u32,
    mut backoff: Duration,
    mut attempt: impl FnMut() -> std::result::Result<(), String>,
) -> bool {
    for n in 1..=attempts {
        match attempt() {
            Ok(()) => return true,
            Err(e) if n < attempts => {
                eprintln!(
                    "berthd: {what} failed (attempt {n} of {attempts}): {e}; retrying in {backoff:?}"
                );
                std::thread::sleep(backoff);
                backoff *= 2;
            }
            Err(e) => eprintln!("berthd: {what} failed (attempt {n} of {attempts}): {e}"),
        }
    }
    false
}

/// Runs `cmd` to completion within `timeout` (killed past it).
fn run_bounded(
    cmd: &mut std::process::Command,
    timeout: Duration,
) -> std::result::Result<(), String> {
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let end = std::time::Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(st)) if st.success() => return Ok(()),
            Ok(Some(st)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("{st}: {}", err.trim()));
            }
            Ok(None) if std::time::Instant::now() >= end => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no answer within {timeout:?}"));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

impl Teardown {
    /// Stops the container and has the runtime forget it, each step bounded
    /// in time and the delete retried with back-off. `false` when the
    /// runtime still knows the container after all that.
    fn stop_and_delete(&self) -> bool {
        let sock = self.paths.shim_socket(&self.id);
        let what = format!("teardown of container {}: runtime delete", self.id);
        if (self.shim || sock.exists())
            && let Ok(mut s) = ShimClient::connect(&sock)
        {
            let _ = s.set_timeout(Some(TEARDOWN_STEP_TIMEOUT));
            let _ = s.kill(libc::SIGKILL, true);
            if let Err(e) = s.wait(None) {
                eprintln!(
                    "berthd: teardown of container {}: waiting for its exit: {e}",
                    self.id
                );
            }
            let deleted = retry_logged(
                &what,
                TEARDOWN_DELETE_ATTEMPTS,
                TEARDOWN_FIRST_BACKOFF,
                || s.delete().map_err(|e| e.to_string()),
            );
            if deleted {
                let _ = s.shutdown();
                return true;
            }
        }
        // No shim (or one that could not delete): the runtime directly.
        let state = self.paths.runtime_root().join(&self.id);
        let deleted = !state.exists()
            || retry_logged(
                &what,
                TEARDOWN_DELETE_ATTEMPTS,
                TEARDOWN_FIRST_BACKOFF,
                || {
                    let mut cmd = super::ops::runtime_command(&self.paths);
                    cmd.args(["delete", "--force", &self.id]);
                    run_bounded(&mut cmd, TEARDOWN_STEP_TIMEOUT).or_else(|e| {
                        // A runtime that forgot it meanwhile is done.
                        if state.exists() { Err(e) } else { Ok(()) }
                    })
                },
            );
        if deleted {
            let _ = std::fs::remove_dir_all(self.paths.state_dir(&self.id));
        }
        deleted
    }

    fn run(self) {
        if !self.stop_and_delete() {
            eprintln!(
                "berthd: teardown of container {} gave up; {} stays for the next start to finish",
                self.id,
                self.dir.display()
            );
            return;
        }
        // Out of `containers/` before the mount goes, so whoever waits for
        // the mounts to go finds the state gone too.
        let state = to_trash(
            &self.paths.state_dir(&self.id),
            &self.paths.exec_root.join(TRASH),
            &self.id,
        );
        let rootfs = self.dir.join("rootfs");
        if crate::util::is_mountpoint(&rootfs) {
            let _ = berth_image::rootfs::unmount(&rootfs);
        }
        if let Some(id) = &self.lease
            && let Ok(Some(lease)) = self.images.leases.get(id)
        {
            let _ = self.images.leases.remove(id);
            let _ = self.images.collect(Some((&lease.blobs, &lease.chain_ids)));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(state);
    }
}

/// SIGKILLs the process group of the shim whose `--state-dir` is `state`
/// (found in /proc): the shim, the runtime it runs, their children. The
/// shim forks after its setsid, so the group is its own and no one else's.
fn kill_shim_group(state: &Path) {
    let want = [
        b"--state-dir".as_slice(),
        state.as_os_str().as_encoded_bytes(),
    ];
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
        if !args.windows(2).any(|w| w == want) {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // pid (comm) state ppid pgrp …
        let pgrp = stat
            .rsplit_once(')')
            .and_then(|(_, t)| t.split_whitespace().nth(2)?.parse::<libc::pid_t>().ok());
        // SAFETY: plain kills; a group of 1 or 0 would mean init or ours.
        unsafe {
            match pgrp {
                Some(g) if g > 1 && g != libc::getpgrp() => libc::kill(-g, libc::SIGKILL),
                _ => libc::kill(pid, libc::SIGKILL),
            };
        }
    }
}

/// A policy restart still wanted: the container waits out its back-off
/// and no stop or rm came meanwhile.
fn restart_wanted(c: &Container) -> bool {
    c.state.status == "restarting" && !c.stopping
}

struct StartingGuard<'a> {
    engine: &'a Engine,
    id: String,
}

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.engine.lock().containers.get_mut(&self.id) {
            c.starting = false;
        }
        self.engine.changed.notify_all();
    }
}

impl Engine {
    /// Waits (the lock released meanwhile) until no start of `id` is in
    /// flight, or the container is gone.
    pub(crate) fn wait_not_starting<'a>(
        &'a self,
        mut t: std::sync::MutexGuard<'a, crate::Table>,
        id: &str,
    ) -> std::sync::MutexGuard<'a, crate::Table> {
        while t.containers.get(id).is_some_and(|c| c.starting) {
            t = self.changed.wait(t).unwrap_or_else(|p| p.into_inner());
        }
        t
    }
}

pub(crate) fn check_name_in(t: &crate::Table, name: &str) -> Result<()> {
    let full = format!("/{name}");
    if let Some(other) = t.containers.values().find(|c| c.name == full) {
        return Err(EngineError::Conflict(format!(
            "Conflict. The container name \"{full}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
            other.id
        )));
    }
    Ok(())
}

/// Wait state captured when the wait was asked for.
#[derive(Clone, Debug)]
pub struct WaitTicket {
    id: String,
    cond: WaitCondition,
    exits: u64,
    last: i32,
}

impl WaitTicket {
    /// The container waited for.
    pub fn id(&self) -> &str {
        &self.id
    }
}

fn wait_check(t: &crate::Table, ticket: &mut WaitTicket) -> Option<i32> {
    // Removed: every condition holds, with its last exit code (the waiter
    // may not have run since the exit).
    let Some(c) = t.containers.get(&ticket.id) else {
        return Some(t.removed_exit(&ticket.id).unwrap_or(ticket.last));
    };
    ticket.last = c.state.exit_code;
    let done = match ticket.cond {
        WaitCondition::NotRunning => !c.state.running || c.state.restarting,
        WaitCondition::NextExit => c.exits > ticket.exits,
        WaitCondition::Removed => false,
    };
    done.then_some(ticket.last)
}

/// Sends a streaming request (attach, attaching exec) and returns the raw
/// socket after the response line: the stream is spliced, not re-framed.
pub(crate) fn shim_stream(sock: &Path, req: &Request) -> Result<UnixStream> {
    let mut s = berth_shim::sockpath::connect(sock).map_err(|e| io_err("connect", sock, e))?;
    let mut line = serde_json::to_vec(req)?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| io_err("write", sock, e))?;
    // Byte by byte, so nothing of the stream after the line is buffered away.
    let mut resp = Vec::new();
    let mut r = BufReader::with_capacity(1, &s);
    r.read_until(b'\n', &mut resp)
        .map_err(|e| io_err("read", sock, e))?;
    let v: serde_json::Value = serde_json::from_slice(&resp)
        .map_err(|_| EngineError::Internal("shim closed the connection".into()))?;
    if v["ok"] != serde_json::Value::Bool(true) {
        return Err(EngineError::Conflict(
            v["error"].as_str().unwrap_or("shim refused").to_string(),
        ));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_names_are_valid_and_many() {
        let names: std::collections::HashSet<String> =
            (0..2000).map(|_| generated_name(&random_id())).collect();
        assert!(names.iter().all(|n| valid_name(n)), "{names:?}");
        // 256 pairs (the old space) would give at most 256 distinct names.
        assert!(names.len() > 1800, "only {} distinct of 2000", names.len());
    }

    #[test]
    fn a_wait_that_missed_the_exit_gets_the_removed_containers_code() {
        let mut t = crate::Table::default();
        let mut ticket = WaitTicket {
            id: "c1".into(),
            cond: WaitCondition::Removed,
            exits: 0,
            last: 0,
        };
        // Exit (code 3) and removal both happened before the waiter ran.
        t.note_removed("c1", 3);
        assert_eq!(wait_check(&t, &mut ticket), Some(3));
        // Unknown to the table: the code last seen.
        ticket.id = "c2".into();
        ticket.last = 7;
        assert_eq!(wait_check(&t, &mut ticket), Some(7));
        for i in 0..300 {
            t.note_removed(&format!("x{i}"), 1);
        }
        assert_eq!(t.removed_exits.len(), 256);
        assert_eq!(t.removed_exit("c1"), None);
    }

    #[test]
    fn teardown_steps_are_retried_with_backoff_and_bounded_in_time() {
        let mut calls = 0;
        let t0 = Instant::now();
        let ok = retry_logged("test delete", 5, Duration::from_millis(10), || {
            calls += 1;
            if calls < 3 {
                Err("injected".into())
            } else {
                Ok(())
            }
        });
        assert!(ok);
        assert_eq!(calls, 3);
        // 10 + 20 ms of back-off.
        assert!(t0.elapsed() >= Duration::from_millis(30));
        let mut calls = 0;
        assert!(!retry_logged(
            "test delete",
            2,
            Duration::from_millis(1),
            || {
                calls += 1;
                Err("always".into())
            }
        ));
        assert_eq!(calls, 2);

        let t0 = Instant::now();
        let e = run_bounded(
            std::process::Command::new("sleep").arg("30"),
            Duration::from_millis(100),
        )
        .unwrap_err();
        assert!(e.contains("no answer within"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(5));
        let e = run_bounded(
            std::process::Command::new("sh").args(["-c", "echo boom >&2; exit 3"]),
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(e.contains("boom"), "{e}");
        run_bounded(
            &mut std::process::Command::new("true"),
            Duration::from_secs(10),
        )
        .unwrap();
    }

    #[test]
    fn to_trash_moves_a_dir_and_reports_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("containers").join("abc");
        std::fs::create_dir_all(dir.join("upper")).unwrap();
        let trash = tmp.path().join(TRASH);
        let moved = to_trash(&dir, &trash, "abc");
        assert_eq!(moved, trash.join("abc"));
        assert!(!dir.exists() && moved.join("upper").is_dir());
        // Gone already: nothing moves.
        assert_eq!(to_trash(&dir, &trash, "abc"), dir);
        // The trash slot is taken: it stays where it is.
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(to_trash(&dir, &trash, "abc"), dir);
        assert!(dir.is_dir());
    }
}
