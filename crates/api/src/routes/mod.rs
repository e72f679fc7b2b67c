pub mod build;
pub mod container_ops;
pub mod containers;
pub mod filesystem;
pub mod images;
pub mod networks;
pub mod system;
pub mod volumes;
