//! Build contexts that aren't a directory: a tar (optionally gzip'd) on
//! stdin, or just a Dockerfile on stdin (empty context). Both live in a
//! scratch dir under the store that is removed on drop.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{IoContext, Result};

pub struct ScratchContext {
    pub dir: PathBuf,
    /// The Dockerfile text when stdin held one instead of a tar.
    pub dockerfile: Option<String>,
}

impl Drop for ScratchContext {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Reads stdin-like input: a tar/tar.gz becomes the context, anything else
/// is taken as the Dockerfile with an empty context.
pub fn from_reader(store_root: &Path, mut input: impl Read) -> Result<ScratchContext> {
    let dir = store_root
        .join("builder")
        .join("tmp")
        .join(super::run::unique("context"));
    fs::create_dir_all(&dir).ctx("create", &dir)?;
    let mut ctx = ScratchContext {
        dir,
        dockerfile: None,
    };
    let mut data = Vec::new();
    input.read_to_end(&mut data).ctx("read", "stdin")?;
    let gz = data.starts_with(&[0x1f, 0x8b]);
    let is_tar = gz || (data.len() >= 512 && &data[257..262] == b"ustar");
    if !is_tar {
        ctx.dockerfile = Some(String::from_utf8_lossy(&data).into_owned());
        return Ok(ctx);
    }
    let r: Box<dyn Read> = if gz {
        Box::new(flate2::read::MultiGzDecoder::new(&data[..]))
    } else {
        Box::new(&data[..])
    };
    let mut a = tar::Archive::new(r);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    // `unpack` refuses entries that would land outside the dir.
    a.unpack(&ctx.dir).ctx("extract context", &ctx.dir)?;
    Ok(ctx)
}
