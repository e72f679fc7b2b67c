//! berth-runtime: an OCI runtime-spec runtime. The library does the work; the
//! `berth-runtime` binary is a thin runc-compatible command line over it, and
//! the shim can call the library without an extra exec.

pub mod config;
pub mod container;
pub mod error;
pub mod exec;
pub mod hooks;
pub mod idmap;
mod init;
pub mod mount_options;
pub mod ops;
pub mod process;
pub mod rootfs;
pub mod sealed_exe;
pub mod seccomp;
pub mod seccomp_profile;
pub mod secure_path;
pub mod state;
mod sync;
pub mod sys;

pub use config::load_spec;
pub use container::{CreateOptions, Runtime, exit_code};
pub use error::{Result, RuntimeError};
pub use exec::ExecOptions;
pub use state::{ContainerState, Status};
