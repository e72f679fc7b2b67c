//! The build engine.
