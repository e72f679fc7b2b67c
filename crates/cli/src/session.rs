//! An interactive session on a hijacked connection (run/attach/exec/start -a):
//! stdin to the container with a half-close at EOF, its output to ours
//! (demultiplexed unless it is a tty), raw terminal mode restored on every
//! exit path, window size changes forwarded, ctrl-p ctrl-q detaching.

use std::io::{self, IsTerminal, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::client::Hijacked;
use crate::stdcopy::Demux;

/// The terminal's settings before raw mode, for restoring from anywhere
/// (normal return, error, panic hook, exit).
static SAVED: Mutex<Option<libc::termios>> = Mutex::new(None);

/// Puts stdin's terminal into raw mode; restored when the guard drops.
pub struct RawMode;

impl RawMode {
    pub fn enter() -> io::Result<RawMode> {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: termios is plain data; tcgetattr fills it.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcgetattr(fd, &mut t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        *SAVED.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        let mut raw = t;
        // SAFETY: cfmakeraw edits the struct in place.
        unsafe { libc::cfmakeraw(&mut raw) };
        // Keep output post-processing so our own messages stay readable.
        raw.c_oflag = t.c_oflag;
        // SAFETY: valid fd and pointer.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_terminal();
            prev(info);
        }));
        Ok(RawMode)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore_terminal();
    }
}

pub fn restore_terminal() {
    if let Some(t) = SAVED.lock().unwrap_or_else(|p| p.into_inner()).take() {
        // SAFETY: restoring settings read from the same fd.
        unsafe { libc::tcsetattr(io::stdin().as_raw_fd(), libc::TCSANOW, &t) };
    }
}

/// The terminal's size as (height, width), if stdout is one.
pub fn term_size() -> Option<(u16, u16)> {
    // SAFETY: winsize is plain data; TIOCGWINSZ fills it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: valid fd and pointer for this ioctl.
    let r = unsafe { libc::ioctl(io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(signo: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = signo as u8;
        // SAFETY: write(2) is async-signal-safe.
        unsafe { libc::write(fd, (&raw const b).cast(), 1) };
    }
}

/// Signals docker's CLI forwards to the container (`--sig-proxy`).
pub const PROXIED: [libc::c_int; 6] = [
    libc::SIGINT,
    libc::SIGTERM,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Handles signals on a thread of its own (a self-pipe carries them out of
/// the handler): SIGWINCH calls `resize(h, w)` (also once now), the
/// signals in `proxy` call `forward(signo)`.
pub fn watch_signals(
    resize: Option<Box<dyn Fn(u16, u16) + Send>>,
    proxy: &[libc::c_int],
    forward: Option<Box<dyn Fn(libc::c_int) + Send>>,
) {
    if let (Some(r), Some((h, w))) = (&resize, term_size()) {
        r(h, w);
    }
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return;
    }
    SIGNAL_PIPE.store(fds[1], Ordering::Relaxed);
    let mut wanted: Vec<libc::c_int> = proxy.to_vec();
    if resize.is_some() {
        wanted.push(libc::SIGWINCH);
    }
    for sig in wanted {
        // SAFETY: installing a handler that only writes to a pipe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    std::thread::spawn(move || {
        let mut b = [0u8; 16];
        loop {
            // SAFETY: reading into our buffer from our pipe.
            let n = unsafe { libc::read(fds[0], b.as_mut_ptr().cast(), b.len()) };
            if n <= 0 {
                if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return;
            }
            for &sig in &b[..n as usize] {
                let sig = sig as libc::c_int;
                if sig == libc::SIGWINCH {
                    if let (Some(r), Some((h, w))) = (&resize, term_size()) {
                        r(h, w);
                    }
                } else if let Some(f) = &forward {
                    f(sig);
                }
            }
        }
    });
}

/// How a session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    /// The output stream closed (the process exited or closed it).
    Eof,
    /// The user typed the detach keys.
    Detached,
}

/// Watches a byte stream for the detach sequence (ctrl-p ctrl-q).
#[derive(Default)]
pub struct DetachKeys {
    seen: usize,
}

const DETACH: [u8; 2] = [0x10, 0x11];

impl DetachKeys {
    /// Returns the bytes to forward, or None when the sequence completed.
    /// A partial sequence is held back and forwarded once it breaks.
    pub fn filter(&mut self, input: &[u8]) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == DETACH[self.seen] {
                self.seen += 1;
                if self.seen == DETACH.len() {
                    return None;
                }
            } else {
                out.extend_from_slice(&DETACH[..self.seen]);
                self.seen = 0;
                if b == DETACH[0] {
                    self.seen = 1;
                } else {
                    out.push(b);
                }
            }
        }
        Some(out)
    }
}

/// Runs the session: copies stdin (when `stdin`) in a thread, output in
/// this one, until the output ends or the user detaches.
pub fn run(h: Hijacked, stdin: bool, detach_keys: bool) -> io::Result<Ended> {
    let detached = std::sync::Arc::new(AtomicBool::new(false));
    if stdin {
        let mut to = h.stream.try_clone()?;
        let flag = detached.clone();
        // Not joined: a read on stdin cannot be interrupted; the process
        // ends when the session does.
        std::thread::spawn(move || {
            let mut keys = DetachKeys::default();
            let mut buf = [0u8; 8192];
            let mut input = io::stdin().lock();
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let data = if detach_keys {
                    match keys.filter(&buf[..n]) {
                        Some(d) => d,
                        None => {
                            flag.store(true, Ordering::SeqCst);
                            let _ = to.shutdown(Shutdown::Both);
                            return;
                        }
                    }
                } else {
                    buf[..n].to_vec()
                };
                if to.write_all(&data).is_err() {
                    return;
                }
            }
            // EOF: half-close so the process sees its stdin end while we
            // keep reading its output.
            let _ = to.shutdown(Shutdown::Write);
        });
    }
    let mut from = h.stream;
    let mut out = io::stdout().lock();
    let mut err = io::stderr();
    let mut demux = Demux::default();
    let mut handle = |data: &[u8], out: &mut dyn Write| -> io::Result<()> {
        if h.raw {
            out.write_all(data)?;
            out.flush()
        } else {
            demux.feed(data, out, &mut err)
        }
    };
    if !h.buffered.is_empty() {
        handle(&h.buffered, &mut out)?;
    }
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if detached.load(Ordering::SeqCst) => {
                let _ = e;
                break;
            }
            Err(e) => return Err(e),
        };
        handle(&buf[..n], &mut out)?;
    }
    if detached.load(Ordering::SeqCst) {
        Ok(Ended::Detached)
    } else {
        Ok(Ended::Eof)
    }
}

/// Whether raw mode and detach keys apply: a tty session with a terminal
/// on stdin.
pub fn interactive_tty(tty: bool, stdin: bool) -> bool {
    tty && stdin && io::stdin().is_terminal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_sequence() {
        let mut k = DetachKeys::default();
        assert_eq!(k.filter(b"ab").unwrap(), b"ab");
        // ctrl-p alone is held, then released with the next byte.
        assert_eq!(k.filter(&[0x10]).unwrap(), b"");
        assert_eq!(k.filter(b"x").unwrap(), &[0x10, b'x']);
        // ctrl-p ctrl-p ctrl-q: the first ctrl-p is forwarded, then detach.
        assert_eq!(k.filter(&[0x10, 0x10]).unwrap(), &[0x10]);
        assert!(k.filter(&[0x11]).is_none());
        let mut k = DetachKeys::default();
        assert!(k.filter(&[b'a', 0x10, 0x11, b'b']).is_none());
    }
}
