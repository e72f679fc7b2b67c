//! Work nobody waits for any more stops: the API sets a [`Cancel`] when the
//! client of a pull, load or build goes away, and the long loops (layer
//! unpacking, build steps) check it between units of work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{Error, Result};

/// A flag shared by the one who asked for the work and the workers; clones
/// see the same flag. The default is never set unless someone cancels it.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` once cancelled.
    pub fn check(&self) -> Result<()> {
        if self.is_cancelled() {
            Err(Error::Cancelled)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_flag() {
        let c = Cancel::new();
        let w = c.clone();
        assert!(w.check().is_ok());
        c.cancel();
        assert!(w.is_cancelled());
        assert!(matches!(w.check(), Err(Error::Cancelled)));
    }
}
