//! One stage: FROM (scratch, an earlier stage, a local or pulled image,
//! ONBUILD triggers), then each instruction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use berth_image::formats::Platform;
use berth_image::lease::Lease;
use berth_image::{Digest, ImageStore, LayerRecord, Reference};
use serde_json::{Value, json};

use super::copy_step::mkdir_in_root;
use super::engine::{rfc3339, stage_index};
use super::run::{RunSpec, StepRoot};
use super::{BuildOptions, Cache, Sink, adopt, cache, config, layer, run};
use crate::dockerfile::ignore::Ignore;
use crate::dockerfile::{self, Command, Dockerfile, Instruction, Kind, PREDEFINED_ARGS, expand};
use crate::error::{Error, IoContext, Result};

#[derive(Clone, Debug)]
pub(super) struct StageState {
    pub image: Value,
    pub layers: Vec<LayerRecord>,
    /// When the stage's filesystem last changed: the base image's date, then
    /// each layer step's (from its cache entry). History entries and the
    /// image date use it, so a fully cached build yields the same image ID.
    pub created: String,
}

/// Counters shared by the stages of one build (they run in parallel).
#[derive(Default)]
pub(super) struct Counters {
    /// Progress vertex numbers (`#N`), unique across stages.
    pub vertices: AtomicUsize,
    pub cached: AtomicUsize,
    pub executed: AtomicUsize,
}

pub(super) struct Ctx<'a> {
    pub(super) store: Arc<ImageStore>,
    pub(super) opts: &'a BuildOptions,
    pub(super) cache: Cache,
    pub(super) out: Sink,
    pub(super) ignore: Option<Ignore>,
    pub(super) tmp: PathBuf,
    pub(super) runtime_root: PathBuf,
    /// This stage's current vertex.
    pub(super) vertex: usize,
    pub(super) counters: Arc<Counters>,
}

/// Per-stage variables: declared ARGs (with values) and the config's ENV.
pub(super) struct Scope {
    pub args: BTreeMap<String, String>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        store: Arc<ImageStore>,
        opts: &'a BuildOptions,
        out: Sink,
        ignore: Option<Ignore>,
    ) -> Result<Self> {
        let base = store.root().join("builder");
        let tmp = base.join("tmp");
        let runtime_root = base.join("runtime");
        for d in [&tmp, &runtime_root] {
            std::fs::create_dir_all(d).ctx("create", d)?;
        }
        // Step dirs become layers: keep each in its own block group (see
        // spread_subdirs) so a rebuild after a prune doesn't crawl.
        berth_image::layers::spread_subdirs(&tmp);
        Ok(Ctx {
            cache: Cache::open(store.root())?,
            store,
            opts,
            out,
            ignore,
            tmp,
            runtime_root,
            vertex: 0,
            counters: Arc::new(Counters::default()),
        })
    }

    /// A context for another stage running alongside: same build, same
    /// counters, its own current vertex.
    pub fn fork(&self) -> Ctx<'a> {
        Ctx {
            store: self.store.clone(),
            opts: self.opts,
            cache: self.cache.clone(),
            out: self.out.clone(),
            ignore: self.ignore.clone(),
            tmp: self.tmp.clone(),
            runtime_root: self.runtime_root.clone(),
            vertex: 0,
            counters: self.counters.clone(),
        }
    }

    fn write(&self, s: &str) {
        let mut o = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(o, "{s}");
    }

    /// Starts a progress vertex (`#N name`).
    pub fn vertex(&mut self, name: &str) {
        self.vertex = self.counters.vertices.fetch_add(1, Ordering::Relaxed) + 1;
        self.write(&format!("#{} {name}", self.vertex));
    }

    pub fn line(&self, s: &str) {
        self.write(&format!("#{} {s}", self.vertex));
    }

    pub fn done(&self, t: Instant) {
        self.line(&format!("DONE {:.1}s", t.elapsed().as_secs_f64()));
    }

    pub fn build_stage(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        meta: &BTreeMap<String, String>,
        done: &[Option<StageState>],
        lease: &mut Lease,
    ) -> Result<StageState> {
        let stage = &df.stages[idx];
        let esc = df.escape;
        let label = stage.name.clone().unwrap_or_else(|| {
            if df.stages.len() > 1 {
                format!("stage-{idx}")
            } else {
                String::new()
            }
        });
        let total = 1 + stage
            .instructions
            .iter()
            .filter(|i| matches!(i.kind, Kind::Run(_) | Kind::Copy(_)))
            .count();
        let tag = |n: usize| {
            if label.is_empty() {
                format!("[{n}/{total}]")
            } else {
                format!("[{label} {n}/{total}]")
            }
        };
        let base = expand::expand(&stage.base, esc, &|n| meta.get(n).cloned())
            .map_err(|e| Error::Invalid(format!("FROM {}: {e}", stage.base)))?;
        if base.is_empty() {
            return Err(Error::Invalid(format!(
                "FROM {}: expands to an empty name",
                stage.base
            )));
        }
        let t = Instant::now();
        self.vertex(&format!("{} FROM {base}", tag(1)));
        let platform = match &stage.platform {
            Some(p) => {
                let v = expand::expand(p, esc, &|n| meta.get(n).cloned())
                    .map_err(|e| Error::Invalid(format!("FROM --platform={p}: {e}")))?;
                v.parse::<Platform>().map_err(|_| {
                    Error::Invalid(format!("FROM --platform={v}: expected os/arch[/variant]"))
                })?
            }
            None => self.default_platform()?,
        };
        let mut st = if base == "scratch" {
            StageState {
                image: config::scratch(&platform),
                layers: Vec::new(),
                created: rfc3339(0),
            }
        } else if let Some(j) = stage_index(df, &base.to_ascii_lowercase(), idx) {
            done[j]
                .clone()
                .ok_or_else(|| Error::Invalid(format!("stage {base} was not built")))?
        } else {
            self.image_state_for(&base, &platform, lease)?
        };
        self.done(t);
        if let Some(e) = self.opts.source_date_epoch {
            st.created = rfc3339(e);
        }
        st.image["history"] = st.image.get("history").cloned().unwrap_or(json!([]));
        let mut scope = Scope {
            args: BTreeMap::new(),
        };
        // ONBUILD triggers of the base run first, then are cleared.
        let triggers = config::get_list(&st.image, "OnBuild").unwrap_or_default();
        config::cfg(&mut st.image).remove("OnBuild");
        let mut trig_ins = Vec::new();
        for t in &triggers {
            let df2 = dockerfile::parse("ONBUILD", &format!("FROM scratch\n{t}\n"))?;
            trig_ins.extend(df2.stages[0].instructions.clone());
        }
        let mut n = 1;
        for ins in trig_ins.iter().chain(&stage.instructions) {
            self.opts.cancel.check()?;
            if matches!(ins.kind, Kind::Run(_) | Kind::Copy(_)) {
                n += 1;
            }
            self.step(
                df,
                idx,
                ins,
                &mut st,
                &mut scope,
                meta,
                done,
                lease,
                &tag(n),
            )?;
        }
        Ok(st)
    }

    /// The platform stages and `--from` images use unless FROM says
    /// otherwise: the build's `--platform`, else this machine's.
    pub(super) fn default_platform(&self) -> Result<Platform> {
        match &self.opts.platform {
            Some(p) => p
                .parse()
                .map_err(|_| Error::Invalid(format!("--platform {p}: expected os/arch[/variant]"))),
            None => Ok(Platform::host()),
        }
    }

    pub(super) fn image_state(&mut self, name: &str, lease: &mut Lease) -> Result<StageState> {
        let platform = self.default_platform()?;
        self.image_state_for(name, &platform, lease)
    }

    fn image_state_for(
        &mut self,
        name: &str,
        platform: &Platform,
        lease: &mut Lease,
    ) -> Result<StageState> {
        let r: Reference = name.parse()?;
        let full = r.tagged().unwrap_or_else(|| name.to_string());
        // A local image of another platform does not do: pull the right one.
        let local = if self.opts.pull {
            None
        } else {
            self.store.resolve(name).ok().filter(|rec| {
                rec.platform
                    .parse::<Platform>()
                    .is_ok_and(|p| platform.matches(&p))
            })
        };
        let rec = match local {
            Some(rec) => rec,
            None => {
                self.line(&format!("pulling {r}"));
                let client = Arc::new(berth_distribution::RegistryClient::new(
                    &r.domain,
                    berth_distribution::ClientOptions {
                        policy: self.opts.registry.clone(),
                        credentials: self.opts.registry_auth.for_registry(&r.domain).cloned(),
                    },
                )?);
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .ctx("start", "tokio runtime")?;
                let rec = rt.block_on(berth_distribution::pull(
                    self.store.clone(),
                    client,
                    &r,
                    &berth_distribution::PullOptions {
                        platform: platform.clone(),
                        cancel: self.opts.cancel.clone(),
                        ..Default::default()
                    },
                    Arc::new(berth_distribution::NoProgress),
                ))?;
                let _ = full;
                rec
            }
        };
        lease
            .chain_ids
            .extend(rec.layers.iter().map(|l| l.chain_id.clone()));
        lease.blobs.extend(rec.blobs().cloned());
        self.store.leases.put(lease)?;
        let image: Value = serde_json::from_slice(&self.store.content.read(&rec.id)?)
            .map_err(|e| Error::Invalid(format!("config of {name}: {e}")))?;
        let created = image["created"]
            .as_str()
            .map_or_else(|| rfc3339(0), String::from);
        Ok(StageState {
            image,
            layers: rec.layers,
            created,
        })
    }

    /// `--from=` of COPY and RUN --mount: an earlier stage (by name or
    /// index), else an image (local, or pulled).
    pub(super) fn stage_or_image(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        done: &[Option<StageState>],
        from: &str,
        lease: &mut Lease,
    ) -> Result<StageState> {
        match stage_index(df, &from.to_ascii_lowercase(), idx) {
            Some(j) => done[j]
                .clone()
                .ok_or_else(|| Error::Invalid(format!("stage {from} was not built"))),
            None => self.image_state(from, lease),
        }
    }

    pub(super) fn lookup<'s>(
        st: &'s StageState,
        scope: &'s Scope,
    ) -> impl Fn(&str) -> Option<String> + 's {
        let env = config::env(&st.image);
        move |n: &str| {
            env.iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
                .or_else(|| scope.args.get(n).cloned())
        }
    }

    pub(super) fn x(st: &StageState, scope: &Scope, esc: char, s: &str) -> Result<String> {
        let l = Self::lookup(st, scope);
        expand::expand(s, esc, &l).map_err(|e| Error::Invalid(format!("{s}: {e}")))
    }

    #[allow(clippy::too_many_arguments)]
    fn step(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        ins: &Instruction,
        st: &mut StageState,
        scope: &mut Scope,
        meta: &BTreeMap<String, String>,
        done: &[Option<StageState>],
        lease: &mut Lease,
        tag: &str,
    ) -> Result<()> {
        let esc = df.escape;
        let at = |e: Error| match e {
            Error::Invalid(m) => Error::Invalid(format!("line {}: {m}", ins.pos.line)),
            e => e,
        };
        let meta_only = |st: &mut StageState, by: String| {
            push_history(st, &by, true);
        };
        match &ins.kind {
            Kind::Arg { args } => {
                for a in args {
                    let v = match (self.opts.build_args.get(&a.name), &a.default) {
                        (Some(v), _) => Some(v.clone()),
                        (None, Some(d)) => Some(Self::x(st, scope, esc, d).map_err(at)?),
                        (None, None) => meta.get(&a.name).cloned(),
                    };
                    if let Some(v) = v {
                        scope.args.insert(a.name.clone(), v);
                    }
                }
                // ARG makes no history entry unless it changes the config (it doesn't).
            }
            Kind::Env { vars } => {
                let mut shown = Vec::new();
                for kv in vars {
                    let k = Self::x(st, scope, esc, &kv.key).map_err(at)?;
                    let v = Self::x(st, scope, esc, &kv.value).map_err(at)?;
                    config::set_env(&mut st.image, &k, &v);
                    shown.push(format!("{k}={v}"));
                }
                meta_only(st, format!("ENV {}", shown.join(" ")));
            }
            Kind::Label { labels } => {
                let mut shown = Vec::new();
                for kv in labels {
                    let k = Self::x(st, scope, esc, &kv.key).map_err(at)?;
                    let v = Self::x(st, scope, esc, &kv.value).map_err(at)?;
                    config::set_map_entry(&mut st.image, "Labels", &k, json!(v));
                    shown.push(format!("{k}={v}"));
                }
                meta_only(st, format!("LABEL {}", shown.join(" ")));
            }
            Kind::Expose { ports } => {
                let mut shown = Vec::new();
                for p in ports {
                    let p = Self::x(st, scope, esc, p).map_err(at)?;
                    let p = if p.contains('/') {
                        p
                    } else {
                        format!("{p}/tcp")
                    };
                    config::set_map_entry(&mut st.image, "ExposedPorts", &p, json!({}));
                    shown.push(p);
                }
                meta_only(st, format!("EXPOSE map[{}]", shown.join(" ")));
            }
            Kind::User { user } => {
                let u = Self::x(st, scope, esc, user).map_err(at)?;
                config::cfg(&mut st.image).insert("User".into(), json!(u));
                meta_only(st, format!("USER {u}"));
            }
            Kind::Volume { paths } => {
                for p in paths {
                    let p = Self::x(st, scope, esc, p).map_err(at)?;
                    config::set_map_entry(&mut st.image, "Volumes", &p, json!({}));
                }
                meta_only(st, format!("VOLUME {paths:?}"));
            }
            Kind::Workdir { path } => {
                let p = Self::x(st, scope, esc, path).map_err(at)?;
                let cur = config::get_str(&st.image, "WorkingDir");
                let p = if p.starts_with('/') {
                    p
                } else {
                    format!(
                        "{}/{p}",
                        if cur.is_empty() { "/" } else { cur.as_str() }.trim_end_matches('/')
                    )
                };
                let p = format!("/{}", dockerfile::ignore::clean(&p));
                config::cfg(&mut st.image).insert("WorkingDir".into(), json!(p));
                meta_only(st, format!("WORKDIR {p}"));
            }
            Kind::Cmd { cmd } | Kind::Entrypoint { cmd } => {
                let argv = match cmd {
                    Command::Exec(v) => v.clone(),
                    Command::Shell(s) => {
                        let mut v = config::shell(&st.image);
                        v.push(s.clone());
                        v
                    }
                };
                let is_cmd = matches!(ins.kind, Kind::Cmd { .. });
                let c = config::cfg(&mut st.image);
                if is_cmd {
                    c.insert("Cmd".into(), json!(argv));
                    meta_only(st, format!("CMD {}", json!(argv)));
                } else {
                    c.insert("Entrypoint".into(), json!(argv));
                    // A new ENTRYPOINT drops a CMD inherited from the base.
                    if !st_sets_cmd(df, idx, ins) {
                        c.insert("Cmd".into(), Value::Null);
                    }
                    meta_only(st, format!("ENTRYPOINT {}", json!(argv)));
                }
            }
            Kind::Shell { shell } => {
                config::cfg(&mut st.image).insert("Shell".into(), json!(shell));
                meta_only(st, format!("SHELL {}", json!(shell)));
            }
            Kind::StopSignal { signal } => {
                let s = Self::x(st, scope, esc, signal).map_err(at)?;
                config::cfg(&mut st.image).insert("StopSignal".into(), json!(s));
                meta_only(st, format!("STOPSIGNAL {s}"));
            }
            Kind::Healthcheck(h) => {
                let v = healthcheck_json(h, &config::shell(&st.image))?;
                config::cfg(&mut st.image).insert("Healthcheck".into(), v);
                meta_only(st, ins.source.clone());
            }
            Kind::Onbuild { inner } => {
                let c = config::cfg(&mut st.image);
                let mut list: Vec<Value> = c
                    .get("OnBuild")
                    .and_then(|v| v.as_array().cloned())
                    .unwrap_or_default();
                list.push(json!(inner.source));
                c.insert("OnBuild".into(), json!(list));
                meta_only(st, ins.source.clone());
            }
            Kind::Maintainer { name } => {
                st.image["author"] = json!(name);
                meta_only(st, format!("MAINTAINER {name}"));
            }
            Kind::Run(r) => self.run_step(df, idx, done, st, scope, r, tag, lease)?,
            Kind::Copy(c) => self
                .copy_step(df, idx, st, scope, c, done, lease, tag)
                .map_err(at)?,
        }
        Ok(())
    }

    /// Cache lookup, else `make`; then the layer (or empty) joins the state.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cached_layer(
        &mut self,
        st: &mut StageState,
        key: Digest,
        by: &str,
        linked: bool,
        lease: &mut Lease,
        make: impl FnOnce(&mut Self, &StageState, &mut Lease) -> Result<Made>,
    ) -> Result<()> {
        let t = Instant::now();
        let hit = if self.opts.no_cache {
            None
        } else {
            self.cache.get(&self.store, &key)
        };
        // The hit's layer is leased before it is used; a collect that ran
        // between the lookup and the lease may have taken its blob, which
        // makes it a miss.
        let parent = st.layers.last().map(|p| p.chain_id.clone());
        let hit = match hit {
            Some(e) => match &e.layer {
                Some(l) => {
                    let chain = adopt::chain_id(parent.as_ref(), &l.diff_id);
                    self.hold(lease, &chain, &l.blob)?;
                    self.store.content.exists(&l.blob).then_some(e)
                }
                None => Some(e),
            },
            None => None,
        };
        let (layer, created) = match hit {
            Some(e) => {
                self.line("CACHED");
                self.counters.cached.fetch_add(1, Ordering::Relaxed);
                let layer = e.layer.map(|l| self.relink(l, st)).transpose()?;
                (layer, e.created)
            }
            None => {
                let made = make(self, st, lease)?;
                self.counters.executed.fetch_add(1, Ordering::Relaxed);
                let created = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                if made.cacheable {
                    self.cache.put(
                        &key,
                        &cache::Entry {
                            layer: made.layer.clone(),
                            created,
                            linked,
                        },
                    )?;
                }
                self.done(t);
                (made.layer, created)
            }
        };
        st.created = rfc3339(self.opts.source_date_epoch.unwrap_or(created as i64));
        if let Some(l) = &layer {
            self.hold(lease, &l.chain_id, &l.blob)?;
            st.layers.push(l.clone());
            let ids = st.image["rootfs"]["diff_ids"].as_array_mut();
            match ids {
                Some(a) => a.push(json!(l.diff_id.to_string())),
                None => {
                    st.image["rootfs"] =
                        json!({"type": "layers", "diff_ids": [l.diff_id.to_string()]})
                }
            }
        }
        push_history(st, by, layer.is_none());
        Ok(())
    }

    /// Adds a layer and its blob to the build's lease (written before
    /// returning), so no prune or collect deletes them from here on.
    fn hold(&self, lease: &mut Lease, chain: &Digest, blob: &Digest) -> Result<()> {
        let mut changed = false;
        if !lease.chain_ids.contains(chain) {
            lease.chain_ids.push(chain.clone());
            changed = true;
        }
        if !lease.blobs.contains(blob) {
            lease.blobs.push(blob.clone());
            changed = true;
        }
        if changed {
            self.store.leases.put(lease)?;
        }
        Ok(())
    }

    /// A cached layer on top of this stage's layers. Only a `--link` step's
    /// entry can have been made on another parent (its key leaves the
    /// parent out), or outlive its layer dir: then the same blob is stored
    /// again under this parent's chain, so the image gets the identical
    /// layer digest. The caller has leased that chain and blob.
    fn relink(&self, l: LayerRecord, st: &StageState) -> Result<LayerRecord> {
        let parent = st.layers.last().map(|p| p.chain_id.clone());
        let chain = adopt::chain_id(parent.as_ref(), &l.diff_id);
        if self.store.layers.exists(&chain) {
            return Ok(LayerRecord {
                chain_id: chain,
                ..l
            });
        }
        let blob = self.store.content.blob_path(&l.blob);
        Ok(layer::store_layer(
            &self.store,
            &blob,
            l.blob.clone(),
            l.blob_size,
            l.diff_id.clone(),
            parent.as_ref(),
        )?)
    }

    /// The step's upper dir → a stored layer (None when nothing changed).
    /// The layer is leased before it is stored: from then on a prune or a
    /// background collect cannot take it before the image references it.
    pub(super) fn commit(
        &self,
        step: &mut StepRoot,
        st: &StageState,
        lease: &mut Lease,
    ) -> Result<Option<LayerRecord>> {
        step.unmount()?;
        if layer::is_empty(&step.upper)? {
            return Ok(None);
        }
        let tgz = step.dir.join("layer.tar.gz");
        let (blob, size, diff_id) =
            layer::write_tar(&step.upper, &tgz, self.opts.source_date_epoch)?;
        let parent = st.layers.last().map(|l| l.chain_id.clone());
        self.hold(lease, &adopt::chain_id(parent.as_ref(), &diff_id), &blob)?;
        let t = adopt::Tarball {
            path: &tgz,
            blob,
            size,
            diff_id,
        };
        adopt::store_step_layer(
            &self.store,
            &step.upper,
            &t,
            parent.as_ref(),
            self.opts.source_date_epoch,
        )
        .map(Some)
    }

    pub(super) fn lowers(&self, st: &StageState) -> Result<Vec<PathBuf>> {
        st.layers
            .iter()
            .map(|l| {
                if self.store.layers.exists(&l.chain_id) {
                    Ok(self.store.layers.diff_dir(&l.chain_id))
                } else {
                    Err(Error::Invalid(format!(
                        "layer {} is missing from the store",
                        l.chain_id
                    )))
                }
            })
            .collect()
    }

    #[allow(clippy::too_many_arguments)]
    fn run_step(
        &mut self,
        df: &Dockerfile,
        idx: usize,
        done: &[Option<StageState>],
        st: &mut StageState,
        scope: &Scope,
        r: &dockerfile::Run,
        tag: &str,
        lease: &mut Lease,
    ) -> Result<()> {
        let argv = match &r.cmd {
            Command::Exec(v) => v.clone(),
            Command::Shell(s) => {
                let script = run_script(s, &r.heredocs);
                let mut v = config::shell(&st.image);
                v.push(script);
                v
            }
        };
        let shown = match &r.cmd {
            Command::Exec(v) => json!(v).to_string(),
            Command::Shell(_) => argv.join(" "),
        };
        self.vertex(&format!("{tag} RUN {shown}"));
        // Build args reach RUN as environment (ENV wins), not the image.
        let mut env: Vec<String> = config::get_list(&st.image, "Env").unwrap_or_default();
        let env_keys: Vec<String> = config::env(&st.image).into_iter().map(|(k, _)| k).collect();
        let mut args_used = Vec::new();
        for (k, v) in &scope.args {
            if !env_keys.contains(k) {
                env.push(format!("{k}={v}"));
                if !PREDEFINED_ARGS.contains(&k.as_str()) {
                    args_used.push(format!("{k}={v}"));
                }
            }
        }
        let stage_platform = Platform {
            architecture: config::get_top(&st.image, "architecture"),
            os: config::get_top(&st.image, "os"),
            variant: None,
            os_version: None,
        };
        let host = Platform::host();
        if !stage_platform.architecture.is_empty() && !host.matches(&stage_platform) {
            return Err(Error::Invalid(format!(
                "RUN in a {stage_platform} stage: this machine is {host} and has no emulation; run steps only in stages of the host platform (FROM --platform=$BUILDPLATFORM)"
            )));
        }
        let host_network = match r.network.as_deref() {
            Some("host") => true,
            Some("none") => false,
            _ => self.opts.host_network,
        };
        let workdir = non_empty(config::get_str(&st.image, "WorkingDir"));
        let mut mounts = Vec::new();
        for m in &r.mounts {
            let x = |v: &Option<String>| {
                v.as_deref()
                    .map(|s| Self::x(st, scope, df.escape, s))
                    .transpose()
            };
            let mut m = m.clone();
            m.target = x(&m.target)?;
            m.source = x(&m.source)?;
            m.from = x(&m.from)?;
            m.id = x(&m.id)?;
            mounts.push(m);
        }
        let mut prepared = self.prepare_mounts(df, idx, done, &mounts, &workdir, lease)?;
        let key = Digest::sha256_of(
            json!({"p": config::identity(&st.image), "run": argv, "env": env, "net": host_network, "layers": chain(st), "mounts": prepared.key})
                .to_string()
                .as_bytes(),
        );
        let mut by = format!("RUN {shown}");
        if !args_used.is_empty() {
            by = format!("RUN |{} {} {shown}", args_used.len(), args_used.join(" "));
        }
        let user = config::get_str(&st.image, "User");
        let prefix = format!("#{} ", self.vertex);
        self.cached_layer(
            st,
            key,
            &format!("{by} # buildkit"),
            false,
            lease,
            |me, st, lease| {
                let mut step = StepRoot::mount(&me.store, &me.tmp, &me.lowers(st)?)?;
                mkdir_in_root(&step.rootfs, &workdir)?;
                let spec = RunSpec {
                    argv: argv.clone(),
                    env: env.clone(),
                    user: user.clone(),
                    workdir: workdir.clone(),
                    host_network,
                    runtime_root: &me.runtime_root,
                    mounts: prepared.oci.clone(),
                    cancel: &me.opts.cancel,
                };
                prepared.make_stubs(&step.rootfs)?;
                let code = run::run(&step, &spec, &me.out, &prefix)?;
                if code != 0 {
                    return Err(Error::StepFailed {
                        step: format!("RUN {shown}"),
                        code,
                    });
                }
                prepared.remove_stubs()?;
                Ok(Made {
                    layer: me.commit(&mut step, st, lease)?,
                    cacheable: true,
                })
            },
        )
    }
}

/// What a step that missed the cache made.
pub(super) struct Made {
    pub layer: Option<LayerRecord>,
    /// False when the step's inputs changed while it ran: the layer serves
    /// this build but is not cached under the key made before.
    pub cacheable: bool,
}

pub(super) fn non_empty(s: String) -> String {
    if s.is_empty() { "/".into() } else { s }
}

pub(super) fn chain(st: &StageState) -> Vec<String> {
    st.layers.iter().map(|l| l.chain_id.to_string()).collect()
}

fn st_sets_cmd(df: &Dockerfile, idx: usize, ins: &Instruction) -> bool {
    df.stages[idx]
        .instructions
        .iter()
        .take_while(|i| !std::ptr::eq(*i, ins))
        .any(|i| matches!(i.kind, Kind::Cmd { .. }))
}

fn push_history(st: &mut StageState, by: &str, empty: bool) {
    let mut h =
        json!({"created": st.created, "created_by": by, "comment": "buildkit.dockerfile.v0"});
    if empty {
        h["empty_layer"] = json!(true);
    }
    match st.image["history"].as_array_mut() {
        Some(a) => a.push(h),
        None => st.image["history"] = json!([h]),
    }
}

/// Shell-form RUN with heredocs: a bare `<<EOF` runs the body as the
/// script; otherwise the shell gets the command with its here-documents.
fn run_script(cmd: &str, heredocs: &[dockerfile::Heredoc]) -> String {
    if heredocs.is_empty() {
        return cmd.to_string();
    }
    let t = cmd.trim();
    if heredocs.len() == 1 && t.starts_with("<<") && !t.contains(char::is_whitespace) {
        return heredocs[0].content.clone();
    }
    let mut s = cmd.to_string();
    s.push('\n');
    for h in heredocs {
        s.push_str(&h.content);
        s.push_str(&h.name);
        s.push('\n');
    }
    s
}

fn healthcheck_json(h: &dockerfile::Healthcheck, shell: &[String]) -> Result<Value> {
    let ns = |d: &Option<String>| -> Value {
        d.as_deref()
            .and_then(expand::parse_duration)
            .map_or(Value::Null, |d| json!(d.as_nanos() as u64))
    };
    Ok(match h {
        dockerfile::Healthcheck::None => json!({"Test": ["NONE"]}),
        dockerfile::Healthcheck::Cmd {
            cmd,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match cmd {
                Command::Exec(v) => {
                    let mut t = vec!["CMD".to_string()];
                    t.extend(v.iter().cloned());
                    t
                }
                Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            let _ = shell;
            let mut v = json!({"Test": test});
            for (k, d) in [
                ("Interval", interval),
                ("Timeout", timeout),
                ("StartPeriod", start_period),
                ("StartInterval", start_interval),
            ] {
                let n = ns(d);
                if !n.is_null() {
                    v[k] = n;
                }
            }
            if let Some(r) = retries {
                v["Retries"] = json!(r);
            }
            v
        }
    })
}
