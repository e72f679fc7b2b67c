//! Berth's registry client (OCI distribution spec): auth, pull and push.

pub mod auth;
pub mod client;
pub mod error;
pub mod policy;
pub mod progress;
pub mod pull;
pub mod push;

pub use client::{ClientOptions, RegistryClient};
pub use error::{Error, Result};
pub use policy::{InsecureRegistry, RegistryPolicy};
pub use progress::{NoProgress, Progress};
pub use pull::{PullOptions, pull};
pub use push::{PushOptions, push};
