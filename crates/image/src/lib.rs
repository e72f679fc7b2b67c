//! Berth's image store: content-addressed blobs, OCI/Docker image formats,
//! layers unpacked once per chain ID, and the local image records.

pub mod cancel;
pub mod content;
pub mod digest;
pub mod error;
pub mod formats;
pub mod fswalk;
pub mod gzip;
pub mod gzwrite;
pub mod unpack;

pub use cancel::Cancel;
pub use content::ContentStore;
pub use digest::{Digest, chain_ids};
pub use error::{Error, Result};
pub mod changeset;
pub mod check;
pub mod gc;
pub mod history;
pub mod layers;
pub mod lease;
pub mod load;
pub mod reference;
pub mod save;
pub mod store;

pub use layers::{LayerMeta, LayerStore};
pub use reference::Reference;
pub use store::{ImageRecord, ImageStore, LayerRecord, Removed};
pub mod rootfs;
