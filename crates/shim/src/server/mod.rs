//! The shim's single-threaded event loop: poll(2) over a SIGCHLD signalfd,
//! the control socket, the processes' output and stdin, and the clients.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::daemon::{Reporter, Started};
use crate::error::{IoContext, Result, ShimError};
use crate::logfile::{JsonLog, Stream};
use crate::options::Options;
use crate::process::{OomCounter, Proc, exit_code};
use crate::protocol::{Request, frame_header};
use crate::runtime::{OciRuntime, set_nonblocking};

mod requests;

/// After the exit, output still in flight (pty buffers, a straggler holding
/// the pipe) gets this long before the exit is final.
const DRAIN: Duration = Duration::from_secs(2);
/// A client this far behind on output is dropped (logging never waits).
const MAX_CLIENT_BACKLOG: usize = 8 << 20;
/// Stop reading a client's stdin while this much waits for the process.
const MAX_STDIN_BACKLOG: usize = 1 << 20;

enum Mode {
    Requests,
    Waiting,
    Stream {
        proc: usize,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
}

struct Conn {
    sock: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    mode: Mode,
    /// The client shut down its side.
    eof: bool,
    close_when_flushed: bool,
}

#[derive(Clone, Copy)]
enum Token {
    Signal,
    Listener,
    Output(usize, usize),
    Stdin(usize),
    Conn(usize),
}

pub struct Shim {
    opts: Options,
    runtime: OciRuntime,
    listener: UnixListener,
    sigfd: OwnedFd,
    log: Option<JsonLog>,
    /// procs[0] is the container's init; execs follow and keep their slot.
    procs: Vec<Proc>,
    conns: Vec<Option<Conn>>,
    deleted: bool,
    /// A client has seen the init's exit (wait answered or delete asked).
    collected: bool,
    exiting: bool,
    buf: Vec<u8>,
}

/// The detached shim's whole life: create the container, report to the
/// starter, serve until done, clean up. Returns the process exit code.
pub fn run(opts: Options, reporter: Reporter) -> i32 {
    let mut shim = match Shim::try_create(&opts) {
        Ok(s) => s,
        Err(e) => {
            // Files first: the starter returns as soon as it reads the report.
            remove_files(&opts);
            reporter.failed(&e.to_string());
            return 1;
        }
    };
    reporter.started(Started {
        pid: std::process::id() as i32,
        socket: shim.opts.socket_path(),
        container_pid: shim.procs[0].pid,
    });
    shim.serve();
    remove_files(&shim.opts);
    0
}

fn remove_files(opts: &Options) {
    for p in [opts.socket_path(), opts.pid_path(), opts.exit_path()] {
        let _ = fs::remove_file(p);
    }
}

impl Shim {
    fn try_create(opts: &Options) -> Result<Shim> {
        let dir = &opts.state_dir;
        fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "set subreaper".into());
        }
        let sigfd = sigchld_fd()?;
        let sock = opts.socket_path();
        let _ = fs::remove_file(&sock);
        let listener = crate::sockpath::bind(&sock).ctx(|| format!("bind {}", sock.display()))?;
        fs::set_permissions(&sock, fs::Permissions::from_mode(0o600))
            .ctx(|| "chmod socket".into())?;
        listener.set_nonblocking(true).ctx(|| "socket".into())?;
        let log = match &opts.log_path {
            Some(p) => Some(JsonLog::open(p, opts.log_max_size, opts.log_max_files)?),
            None => None,
        };
        let runtime = OciRuntime::locate(opts.runtime.as_deref(), opts.runtime_root.clone())?;
        let pid_file = dir.join("init.pid");
        let console = opts.tty.then(|| dir.join("console.sock"));
        let args = [
            "create".as_ref(),
            "--bundle".as_ref(),
            opts.bundle.as_os_str(),
            "--pid-file".as_ref(),
            pid_file.as_os_str(),
            opts.id.as_ref(),
        ];
        let io = runtime.spawn_process(
            &args,
            opts.stdin,
            console.as_deref(),
            &dir.join("runtime.err"),
        )?;
        let pid = read_pid(&pid_file)?;
        let mut init = Proc::new(None, pid, opts.tty, io);
        init.oom = OomCounter::watch(pid);
        let mut shim = Shim {
            opts: opts.clone(),
            runtime,
            listener,
            sigfd,
            log,
            procs: vec![init],
            conns: Vec::new(),
            deleted: false,
            collected: false,
            exiting: false,
            buf: vec![0; 32 * 1024],
        };
        if opts.start {
            if let Err(e) = shim.runtime.run(&["start", &opts.id]) {
                let _ = shim.runtime.run(&["delete", "--force", &opts.id]);
                return Err(e);
            }
            shim.procs[0].started = true;
        }
        fs::write(opts.pid_path(), std::process::id().to_string())
            .ctx(|| "write shim.pid".into())?;
        Ok(shim)
    }

    fn serve(&mut self) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut tokens: Vec<Token> = Vec::new();
        self.reap();
        loop {
            self.finalize_exits();
            if self.should_exit() {
                break;
            }
            fds.clear();
            tokens.clear();
            let mut add = |fd: RawFd, events: i16, t: Token| {
                fds.push(libc::pollfd {
                    fd,
                    events,
                    revents: 0,
                });
                tokens.push(t);
            };
            add(self.sigfd.as_raw_fd(), libc::POLLIN, Token::Signal);
            add(self.listener.as_raw_fd(), libc::POLLIN, Token::Listener);
            for (i, p) in self.procs.iter().enumerate() {
                for (s, fd) in p.out.iter().enumerate() {
                    if let Some(fd) = fd {
                        add(fd.as_raw_fd(), libc::POLLIN, Token::Output(i, s));
                    }
                }
                if let (Some(fd), false) = (&p.stdin, p.stdin_buf.is_empty()) {
                    add(fd.as_raw_fd(), libc::POLLOUT, Token::Stdin(i));
                }
            }
            for (i, c) in self.conns.iter().enumerate() {
                let Some(c) = c else { continue };
                let mut ev = 0;
                let reading = match c.mode {
                    Mode::Requests => true,
                    Mode::Waiting => false,
                    Mode::Stream { proc, .. } => {
                        self.procs[proc].stdin_buf.len() < MAX_STDIN_BACKLOG
                    }
                };
                if reading && !c.eof && !c.close_when_flushed {
                    ev |= libc::POLLIN;
                }
                if !c.outbuf.is_empty() {
                    ev |= libc::POLLOUT;
                }
                add(c.sock.as_raw_fd(), ev, Token::Conn(i));
            }
            let timeout = self.poll_timeout();
            // SAFETY: fds is a valid pollfd array of its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
            if n < 0 {
                continue; // EINTR
            }
            for (pfd, &tok) in fds.iter().zip(tokens.iter()) {
                if pfd.revents == 0 {
                    continue;
                }
                match tok {
                    Token::Signal => self.reap(),
                    Token::Listener => self.accept(),
                    Token::Output(p, s) => self.on_output(p, s),
                    Token::Stdin(p) => self.flush_stdin(p),
                    Token::Conn(c) => self.on_conn(c, pfd.revents),
                }
            }
        }
        // Last responses (shutdown's) go out before the socket disappears.
        for c in self.conns.iter_mut().flatten() {
            let _ = c.sock.set_nonblocking(false);
            let _ = c.sock.write_all(&c.outbuf);
        }
    }

    fn poll_timeout(&self) -> i32 {
        let now = Instant::now();
        let mut deadline: Option<Instant> = None;
        let mut at = |t: Instant| deadline = Some(deadline.map_or(t, |d| d.min(t)));
        for p in &self.procs {
            if let (Some((_, _, t)), None) = (p.reaped, &p.done) {
                at(t + DRAIN);
            }
        }
        if let (Some(l), Some((_, t))) = (self.opts.linger, &self.procs[0].done) {
            at(*t + l);
        }
        match deadline {
            None => -1,
            Some(d) => d.saturating_duration_since(now).as_millis() as i32 + 1,
        }
    }

    fn should_exit(&mut self) -> bool {
        if self.exiting {
            return true;
        }
        let Some((_, done_at)) = self.procs[0].done else {
            return false;
        };
        let lingered = self.opts.linger.is_some_and(|l| done_at.elapsed() >= l);
        if lingered && !self.deleted {
            self.delete_container();
        }
        (self.deleted && self.collected) || lingered
    }

    fn reap(&mut self) {
        // Drain the signalfd; waitpid below finds every exited child.
        let mut info = [0u8; 128];
        // SAFETY: reading into a buffer we own from a nonblocking signalfd.
        while unsafe { libc::read(self.sigfd.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) }
            > 0
        {}
        loop {
            let mut status = 0;
            // SAFETY: waitpid with a valid status pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                break;
            }
            // Other pids are orphans re-parented to us as subreaper.
            if let Some(p) = self
                .procs
                .iter_mut()
                .find(|p| p.pid == pid && p.reaped.is_none())
            {
                p.reaped = Some((exit_code(status), SystemTime::now(), Instant::now()));
            }
        }
    }

    /// Exits become final once the process's output is drained.
    fn finalize_exits(&mut self) {
        for i in 0..self.procs.len() {
            let p = &self.procs[i];
            let Some((_, _, at)) = p.reaped else { continue };
            if p.done.is_some() || (p.out.iter().any(Option::is_some) && at.elapsed() < DRAIN) {
                continue;
            }
            for s in 0..2 {
                self.close_output(i, s);
            }
            let st = self.procs[i].finish();
            if i == 0 {
                // Lost only if the disk is gone; clients still get it by wait.
                let _ = write_atomic(
                    &self.opts.exit_path(),
                    &serde_json::to_vec(&st).unwrap_or_default(),
                );
                if self.opts.auto_remove {
                    self.delete_container();
                }
            }
            let resp = json!({"ok": true, "exit_code": st.exit_code, "exited_at": st.exited_at, "oom_killed": st.oom_killed});
            for c in std::mem::take(&mut self.procs[i].waiters) {
                if i == 0 {
                    self.collected = true;
                }
                if let Some(conn) = self.conns[c].as_mut() {
                    conn.mode = Mode::Requests;
                }
                self.reply(c, resp.clone());
                self.process_input(c);
            }
            for c in std::mem::take(&mut self.procs[i].attached) {
                if let Some(conn) = self.conns[c].as_mut() {
                    conn.close_when_flushed = true;
                }
                self.flush_conn(c);
            }
        }
    }

    fn close_output(&mut self, p: usize, s: usize) {
        if self.procs[p].out[s].take().is_some()
            && p == 0
            && let Some(log) = &mut self.log
        {
            log.flush(if s == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            });
        }
    }

    fn on_output(&mut self, p: usize, s: usize) {
        let Some(fd) = &self.procs[p].out[s] else {
            return;
        };
        let mut buf = std::mem::take(&mut self.buf);
        // SAFETY: reading into a buffer we own.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            let data = &buf[..n as usize];
            let stream = if s == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            if p == 0
                && let Some(log) = &mut self.log
            {
                log.write(stream, data);
            }
            let tty = self.procs[p].tty;
            for c in self.procs[p].attached.clone() {
                let Some(conn) = self.conns[c].as_mut() else {
                    continue;
                };
                let Mode::Stream { stdout, stderr, .. } = conn.mode else {
                    continue;
                };
                if (s == 0 && !stdout) || (s == 1 && !stderr) {
                    continue;
                }
                if !tty {
                    conn.outbuf
                        .extend_from_slice(&frame_header(stream as u8, data.len()));
                }
                conn.outbuf.extend_from_slice(data);
                if conn.outbuf.len() > MAX_CLIENT_BACKLOG {
                    self.close_conn(c);
                } else {
                    self.flush_conn(c);
                }
            }
        } else if n == 0 || std::io::Error::last_os_error().kind() != ErrorKind::WouldBlock {
            // EOF, or EIO from a pty master whose slave side is gone.
            self.close_output(p, s);
        }
        self.buf = buf;
    }

    fn flush_stdin(&mut self, p: usize) {
        let proc = &mut self.procs[p];
        if let Some(fd) = &proc.stdin
            && !proc.stdin_buf.is_empty()
        {
            let b = &proc.stdin_buf;
            // SAFETY: writing from a buffer we own.
            let n = unsafe { libc::write(fd.as_raw_fd(), b.as_ptr().cast(), b.len()) };
            if n > 0 {
                proc.stdin_buf.drain(..n as usize);
            } else if std::io::Error::last_os_error().kind() != ErrorKind::WouldBlock {
                // The reader is gone: drop what it will never read.
                proc.stdin_buf.clear();
                proc.stdin = None;
            }
        }
        if proc.stdin_close && proc.stdin_buf.is_empty() && !proc.tty {
            proc.stdin = None;
        }
    }

    fn accept(&mut self) {
        while let Ok((sock, _)) = self.listener.accept() {
            let _ = sock.set_nonblocking(true);
            let conn = Conn {
                sock,
                inbuf: Vec::new(),
                outbuf: Vec::new(),
                mode: Mode::Requests,
                eof: false,
                close_when_flushed: false,
            };
            match self.conns.iter().position(Option::is_none) {
                Some(i) => self.conns[i] = Some(conn),
                None => self.conns.push(Some(conn)),
            }
        }
    }

    fn on_conn(&mut self, c: usize, revents: i16) {
        if revents & libc::POLLOUT != 0 {
            self.flush_conn(c);
        }
        if revents & libc::POLLIN != 0 {
            let mut buf = std::mem::take(&mut self.buf);
            let r = match self.conns[c].as_mut() {
                Some(conn) => conn.sock.read(&mut buf),
                None => Ok(0),
            };
            match r {
                Ok(0) => self.on_client_eof(c),
                Ok(n) => {
                    if let Some(conn) = self.conns[c].as_mut() {
                        conn.inbuf.extend_from_slice(&buf[..n]);
                    }
                    self.process_input(c);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(_) => self.close_conn(c),
            }
            self.buf = buf;
        } else if revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            self.close_conn(c);
        }
    }

    fn on_client_eof(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        conn.eof = true;
        match conn.mode {
            Mode::Stream {
                proc, stdin: true, ..
            } => {
                // An exec's stdin belongs to this client alone; the init's
                // is closed only with --stdin-once (docker run -i). A tty's
                // is never closed (see flush_stdin), so a detached client
                // leaves the process running.
                if proc != 0 || self.opts.stdin_once {
                    self.procs[proc].stdin_close = true;
                    self.flush_stdin(proc);
                }
            }
            Mode::Stream { .. } => {}
            _ => {
                if conn.outbuf.is_empty() {
                    self.close_conn(c);
                } else {
                    conn.close_when_flushed = true;
                }
            }
        }
    }

    /// Handles complete request lines, or forwards stream bytes to stdin.
    fn process_input(&mut self, c: usize) {
        loop {
            let Some(conn) = self.conns[c].as_mut() else {
                return;
            };
            match conn.mode {
                Mode::Waiting => return,
                Mode::Stream { proc, stdin, .. } => {
                    let data = std::mem::take(&mut conn.inbuf);
                    let p = &mut self.procs[proc];
                    if stdin && p.stdin.is_some() && !data.is_empty() {
                        p.stdin_buf.extend_from_slice(&data);
                        self.flush_stdin(proc);
                    }
                    return;
                }
                Mode::Requests => {
                    let Some(nl) = conn.inbuf.iter().position(|&b| b == b'\n') else {
                        return;
                    };
                    let line: Vec<u8> = conn.inbuf.drain(..=nl).collect();
                    let resp = match serde_json::from_slice::<Request>(&line) {
                        Ok(req) => self.handle(c, req),
                        Err(e) => Err(ShimError::Protocol(format!("bad request: {e}"))),
                    };
                    match resp {
                        Ok(Some(v)) => self.reply(c, v),
                        Ok(None) => {}
                        Err(e) => self.reply(c, json!({"ok": false, "error": e.to_string()})),
                    }
                }
            }
        }
    }

    fn reply(&mut self, c: usize, v: Value) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        let _ = serde_json::to_writer(&mut conn.outbuf, &v);
        conn.outbuf.push(b'\n');
        self.flush_conn(c);
    }

    fn flush_conn(&mut self, c: usize) {
        let Some(conn) = self.conns[c].as_mut() else {
            return;
        };
        while !conn.outbuf.is_empty() {
            match conn.sock.write(&conn.outbuf) {
                Ok(n) => {
                    conn.outbuf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => return self.close_conn(c),
            }
        }
        if conn.close_when_flushed {
            self.close_conn(c);
        }
    }

    fn close_conn(&mut self, c: usize) {
        if self.conns[c].take().is_none() {
            return;
        }
        for p in &mut self.procs {
            p.attached.retain(|&x| x != c);
            p.waiters.retain(|&x| x != c);
        }
    }
}

fn read_pid(path: &std::path::Path) -> Result<i32> {
    let s = fs::read_to_string(path).ctx(|| format!("read {}", path.display()))?;
    let _ = fs::remove_file(path);
    s.trim()
        .parse()
        .map_err(|_| ShimError::Protocol(format!("bad pid file {}: {s:?}", path.display())))
}

/// Write to a temporary name, then rename: readers see all or nothing.
/// Atomic (temp + rename) but not fsynced: the state dir is under the exec
/// root (`/run`), which does not outlive a reboot, and neither does the
/// container whose exit this records — a daemon restart finds the file in
/// the page cache. The fsync was ~1–5 ms of every container exit.
fn write_atomic(path: &std::path::Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::File::create(&tmp).ctx(|| format!("create {}", tmp.display()))?;
    f.write_all(data)
        .ctx(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).ctx(|| format!("rename {}", path.display()))
}

/// SIGCHLD as a readable descriptor (blocked, so only the fd sees it).
fn sigchld_fd() -> Result<OwnedFd> {
    // SAFETY: sigset manipulation and signalfd on values we own.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).ctx(|| "signalfd".into());
        }
        set_nonblocking(fd);
        Ok(OwnedFd::from_raw_fd(fd))
    }
}
