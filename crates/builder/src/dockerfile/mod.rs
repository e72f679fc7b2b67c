//! The Dockerfile front end: parser directives, line continuations,
//! comments, heredocs, every instruction into a typed [`ast`], variable
//! expansion ([`expand`]) and `.dockerignore` ([`ignore`]).

pub mod ast;
pub mod expand;
pub mod glob;
pub mod ignore;
mod instr;
mod parse;

pub use ast::*;
pub use instr::{checksum_value, is_remote};
pub use parse::parse;

/// Args every build knows without an `ARG` (Docker's predefined proxy args);
/// they are usable with `--build-arg` and left out of history.
pub const PREDEFINED_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];
