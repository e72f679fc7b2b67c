//! Berth's builder: a Dockerfile front end ([`dockerfile`]) and a build
//! engine ([`build`]) that runs each step in a container through
//! berth-runtime, takes its changeset from the overlay upper dir, and caches
//! steps by content.

pub mod build;
pub mod dockerfile;
pub mod error;

pub use error::{Error, Result};
