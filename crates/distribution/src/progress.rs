//! Progress reporting: the CLI draws bars or prints lines; the library only
//! reports events.

pub trait Progress: Send + Sync {
    /// A layer (short id) starts transferring `total` bytes.
    fn start(&self, id: &str, total: u64);
    /// `done` bytes of the layer have arrived so far.
    fn advance(&self, id: &str, done: u64);
    /// The layer is finished (`Pull complete`, `Already exists`, `Pushed`…).
    fn finish(&self, id: &str, status: &str);
    fn message(&self, msg: &str);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: &str, _: u64) {}
    fn finish(&self, _: &str, _: &str) {}
    fn message(&self, _: &str) {}
}
