//! berth-shim: the per-container supervisor. It is the parent (subreaper) of
//! the container's init, holds its stdio and writes its json-file log,
//! records its exit to `exit.json`, and serves state/start/kill/wait/attach/
//! resize/exec/delete on `<state-dir>/shim.sock` (see [`protocol`]). It runs
//! detached from the daemon, so a daemon restart never touches containers.

pub mod daemon;
pub mod error;
pub mod logfile;
pub mod options;
mod process;
pub mod protocol;
pub mod runtime;
mod server;
pub mod sockpath;

pub use daemon::{Started, launch};
pub use error::{Result, ShimError};
pub use options::Options;
pub use protocol::{AttachStream, ExitStatus, Request, ShimClient, ShimState};
pub use server::run;
