//! RUN: the step's command in a container (berth-runtime library) whose
//! rootfs is an overlay of the parent's layers plus a fresh upper dir.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use berth_image::formats::{ContainerConfig, ImageConfig};
use berth_image::{Cancel, ImageStore};
use berth_runtime::{CreateOptions, Runtime};
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use crate::error::{Error, IoContext, Result};

/// A mounted step rootfs: `<dir>/{rootfs,upper,work}`. Dropping it unmounts
/// and removes everything, so a failed step leaves nothing behind.
pub struct StepRoot {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub upper: PathBuf,
    mounted: bool,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

pub fn unique(what: &str) -> String {
    format!(
        "{what}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

impl StepRoot {
    pub fn mount(store: &ImageStore, tmp: &Path, lowers: &[PathBuf]) -> Result<StepRoot> {
        let dir = tmp.join(unique("step"));
        let rootfs = dir.join("rootfs");
        let upper = dir.join("upper");
        let work = dir.join("work");
        let empty = dir.join("empty");
        for d in [&rootfs, &upper, &work, &empty] {
            fs::create_dir_all(d).ctx("create", d)?;
        }
        let mut sr = StepRoot {
            dir,
            rootfs,
            upper,
            mounted: false,
        };
        // FROM scratch: overlay still needs a lower.
        let lowers = if lowers.is_empty() {
            vec![empty]
        } else {
            lowers.to_vec()
        };
        berth_image::rootfs::mount_overlay(
            store.layers.root(),
            &lowers,
            Some((&sr.upper, &work)),
            &sr.rootfs,
        )?;
        sr.mounted = true;
        Ok(sr)
    }

    pub fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            self.mounted = false;
            berth_image::rootfs::unmount(&self.rootfs)?;
        }
        Ok(())
    }
}

impl Drop for StepRoot {
    fn drop(&mut self) {
        let _ = self.unmount();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Read-only view of some layers (for COPY --from), removed on drop.
pub struct ReadOnlyRoot {
    pub dir: PathBuf,
    mounted: bool,
}

impl ReadOnlyRoot {
    pub fn mount(store: &ImageStore, tmp: &Path, lowers: &[PathBuf]) -> Result<ReadOnlyRoot> {
        let dir = tmp.join(unique("from"));
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        let mut r = ReadOnlyRoot {
            dir,
            mounted: false,
        };
        if !lowers.is_empty() {
            berth_image::rootfs::mount_overlay(store.layers.root(), lowers, None, &r.dir)?;
            r.mounted = true;
        }
        Ok(r)
    }
}

impl Drop for ReadOnlyRoot {
    fn drop(&mut self) {
        if self.mounted {
            let _ = berth_image::rootfs::unmount(&self.dir);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

/// What a RUN needs besides the rootfs.
pub struct RunSpec<'a> {
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub host_network: bool,
    pub runtime_root: &'a Path,
    /// Extra OCI mounts (RUN --mount).
    pub mounts: Vec<serde_json::Value>,
    /// Once set, the step's container is killed and the step fails.
    pub cancel: &'a Cancel,
}

pub type Sink = Arc<Mutex<dyn Write + Send>>;

use berth_runtime::seccomp_profile::DOCKER_DEFAULT_CAPS as DOCKER_CAPS;

/// Runs the command; its output goes to `out` line by line, each prefixed.
pub fn run(step: &StepRoot, spec: &RunSpec, out: &Sink, prefix: &str) -> Result<i32> {
    let image = ImageConfig {
        config: Some(ContainerConfig {
            user: Some(spec.user.clone()),
            env: Some(spec.env.clone()),
            cmd: Some(spec.argv.clone()),
            working_dir: Some(spec.workdir.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut oci: Spec = berth_image::rootfs::bundle_spec(&image, &step.rootfs)?;
    if let Some(mut linux) = oci.linux().clone() {
        let ns: Vec<_> = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !(spec.host_network && n.typ() == LinuxNamespaceType::Network))
            .collect();
        linux.set_namespaces(Some(ns));
        oci.set_linux(Some(linux));
    }
    if let Some(mut p) = oci.process().clone() {
        // Build steps are ordinary processes, not hardened services (docker
        // does not set no_new_privileges for RUN either: setuid tools work).
        p.set_no_new_privileges(Some(false));
        oci.set_process(Some(p));
    }
    // Docker's default capability set for build steps (chown, setuid
    // tools, mknod… work as they do under `docker build`).
    let mut v = serde_json::to_value(&oci).expect("spec serialises");
    let caps: Vec<&str> = DOCKER_CAPS.to_vec();
    v["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    if let Some(list) = v["mounts"].as_array_mut() {
        list.extend(spec.mounts.iter().cloned());
    }
    let cfg = step.dir.join("config.json");
    fs::write(&cfg, serde_json::to_vec(&v).expect("spec serialises")).ctx("write", &cfg)?;
    let opts = CreateOptions {
        id: unique("berth-build"),
        bundle: step.dir.clone(),
        ..Default::default()
    };
    let rt = Runtime::new(spec.runtime_root);
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Invalid(format!("pipe: {e}")))?;
    let (sr, sw) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::Invalid(format!("pipe: {e}")))?;
    let devnull = fs::File::open("/dev/null").ctx("open", "/dev/null")?;
    // The runtime clones the container init with a raw clone, which is only
    // safe from a single-threaded process (no allocator lock held by another
    // thread), and the init inherits fds 0-2. So a forked child — single
    // threaded, its own stdio — makes the runtime call and reports back.
    let daemon = std::process::id() as libc::pid_t;
    // SAFETY: the child only dup2s, calls the runtime and _exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::Invalid(format!("fork: {e}")))? {
        nix::unistd::ForkResult::Child => {
            // The fork copied every fd of the daemon: its store lock, its
            // API listener, clients' connections. Held by a step that
            // outlives a killed daemon they kept the next one from starting
            // (lock taken) and from being reached (the listener's queue).
            // So only stdio and the status pipe (as fd 3) stay, and the
            // helper dies with the thread that waits for it.
            unsafe {
                libc::dup2(devnull.as_raw_fd(), 0);
                libc::dup2(w.as_raw_fd(), 1);
                libc::dup2(w.as_raw_fd(), 2);
                libc::dup2(sw.as_raw_fd(), 3);
                if libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32) != 0 {
                    for fd in 4..65_536 {
                        libc::close(fd);
                    }
                }
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                if libc::getppid() != daemon {
                    libc::_exit(1); // the daemon died before the prctl
                }
            }
            // Closed above, by number: their owners must not close again.
            std::mem::forget((r, sr, sw, w, devnull));
            let msg = match rt.run(&opts, false, false) {
                Ok(code) => format!("{code}"),
                Err(e) => format!("E{e}"),
            };
            // SAFETY: fd 3 is the status pipe's write end, dup'ed above.
            let mut f = unsafe { <fs::File as std::os::fd::FromRawFd>::from_raw_fd(3) };
            let _ = f.write_all(msg.as_bytes());
            drop(f);
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(w);
            drop(sw);
            let sink = out.clone();
            let prefix = prefix.to_string();
            let reader = std::thread::spawn(move || {
                let mut br = BufReader::new(fs::File::from(r));
                let mut line = Vec::new();
                while br.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                    let mut o = sink.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = o.write_all(prefix.as_bytes());
                    let _ = o.write_all(&line);
                    if !line.ends_with(b"\n") {
                        let _ = o.write_all(b"\n");
                    }
                    line.clear();
                }
            });
            let status = wait_status(sr, &rt, &opts.id, spec.cancel);
            let _ = nix::sys::wait::waitpid(child, None);
            let _ = reader.join();
            // The helper deleted the killed container (its runtime `run`
            // ends with a delete); the caller's StepRoot unmounts.
            spec.cancel.check()?;
            match status.strip_prefix('E') {
                Some(e) => Err(Error::Invalid(format!("running the step's container: {e}"))),
                None => status.trim().parse::<i32>().map_err(|_| {
                    Error::Invalid("the step's runtime helper died without a status".into())
                }),
            }
        }
    }
}

/// Reads the helper's status, polling so that a cancel is seen while the
/// step runs: then the container's processes are killed (again each poll,
/// as the container may not exist yet when the cancel comes), the helper's
/// `run` sees its init die, deletes the container and reports.
fn wait_status(status: std::os::fd::OwnedFd, rt: &Runtime, id: &str, cancel: &Cancel) -> String {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::io::Read;
    let mut f = fs::File::from(status);
    let mut out = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let ready = {
            let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(&f), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(100u16))
        };
        match ready {
            Ok(0) | Err(nix::errno::Errno::EINTR) => {}
            Ok(_) => match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            },
            Err(_) => break,
        }
        if cancel.is_cancelled() {
            let _ = rt.kill(id, nix::sys::signal::Signal::SIGKILL, true);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
