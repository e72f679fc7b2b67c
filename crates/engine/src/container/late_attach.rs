//! Attaching to a stopped container, as dockerd allows: `docker start -a`
//! of an exited container attaches first and starts second, so the attach
//! must wait for the next start. The client gets its end of a socket pair
//! at once; the start connects the new shim's stream before the process
//! runs (nothing of its output is missed) and a pump joins the two.

use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::mpsc;

use berth_shim::Request;

use super::lifecycle::shim_stream;
use crate::Engine;
use crate::error::{EngineError, Result};

/// An attach waiting for its container's next start.
pub(crate) struct LateAttach {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tx: mpsc::Sender<UnixStream>,
}

impl Engine {
    /// The client's end of an attach to container `id`, served from its
    /// next start. Removing the container ends it (EOF).
    pub(crate) fn attach_at_next_start(
        &self,
        id: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<UnixStream> {
        let (client, ours) =
            UnixStream::pair().map_err(|e| EngineError::Internal(format!("socketpair: {e}")))?;
        let (tx, rx) = mpsc::channel();
        self.lock()
            .late_attaches
            .entry(id.to_string())
            .or_default()
            .push(LateAttach {
                stdin,
                stdout,
                stderr,
                tx,
            });
        std::thread::spawn(move || {
            // None: the container went first; dropping `ours` is the EOF.
            if let Ok(shim) = rx.recv() {
                pump(ours, shim);
            }
        });
        Ok(client)
    }

    /// Connects the attaches waiting for container `id` to its shim at
    /// `sock` (called by a start before the process runs).
    pub(crate) fn serve_late_attaches(&self, id: &str, sock: &Path, open_stdin: bool) {
        let waiting = self.lock().late_attaches.remove(id).unwrap_or_default();
        for a in waiting {
            let req = Request::Attach {
                stdin: a.stdin && open_stdin,
                stdout: a.stdout,
                stderr: a.stderr,
                exec_id: None,
            };
            // A failed connect drops the sender: that client sees EOF.
            if let Ok(s) = shim_stream(sock, &req) {
                let _ = a.tx.send(s);
            }
        }
    }

    /// A removed container's waiting attaches end.
    pub(crate) fn drop_late_attaches(&self, id: &str) {
        self.lock().late_attaches.remove(id);
    }
}

/// Copies both ways until each side ends, passing each end on as a
/// half-close so either side sees EOF when the other is done.
fn pump(client: UnixStream, shim: UnixStream) {
    let (Ok(client_in), Ok(shim_out)) = (client.try_clone(), shim.try_clone()) else {
        return;
    };
    let input = std::thread::spawn(move || copy_then_close(client_in, shim_out));
    copy_then_close(shim, client);
    let _ = input.join();
}

fn copy_then_close(mut from: UnixStream, mut to: UnixStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
