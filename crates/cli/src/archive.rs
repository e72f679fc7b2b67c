//! `save`, `load`, `import`.

use std::fs::{self, File};
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use berth_image::save::ArchiveFormat;
use berth_image::{ImageStore, Reference};

#[derive(clap::Args)]
pub struct SaveArgs {
    #[arg(required = true)]
    images: Vec<String>,
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// docker-archive (docker save's format) or oci-archive (OCI image layout).
    #[arg(long, default_value = "docker-archive")]
    format: String,
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN.
    #[arg(short, long)]
    input: Option<PathBuf>,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args)]
pub struct ImportArgs {
    /// The tarball (plain, gzip or zstd), or - for STDIN.
    file: String,
    /// REPOSITORY[:TAG] to tag the image with.
    reference: Option<String>,
    /// Commit message recorded in the image's history.
    #[arg(short, long, default_value = "")]
    message: String,
}

pub fn save(store: &ImageStore, a: SaveArgs) -> Result<()> {
    let format: ArchiveFormat = a.format.parse()?;
    match a.output {
        Some(path) => {
            // Temp + rename: a failed save leaves no truncated archive behind.
            let tmp = path.with_extension("berth-tmp");
            let f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
            let res = berth_image::save::save(store, &a.images, format, io::BufWriter::new(f));
            if let Err(e) = res {
                let _ = fs::remove_file(&tmp);
                return Err(e.into());
            }
            fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        }
        None => {
            let out = io::stdout().lock();
            if out.is_terminal() {
                bail!("cowardly refusing to save to a terminal. Use the -o flag or redirect");
            }
            berth_image::save::save(store, &a.images, format, io::BufWriter::new(out))?;
        }
    }
    Ok(())
}

/// STDIN is copied to a scratch file first: the archive is read by seeking.
fn spool_stdin(store: &ImageStore) -> Result<Scratch> {
    let path = store.layers.scratch_path("stdin");
    let mut f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let scratch = Scratch(path);
    io::copy(&mut io::stdin().lock(), &mut f).context("reading STDIN")?;
    f.flush()?;
    Ok(scratch)
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

pub fn load(store: &ImageStore, a: LoadArgs) -> Result<()> {
    let scratch;
    let path: &Path = match &a.input {
        Some(p) => p,
        None => {
            if io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is empty");
            }
            scratch = spool_stdin(store)?;
            &scratch.0
        }
    };
    let loaded = store.load_archive(path)?;
    for l in loaded {
        if l.tags.is_empty() {
            println!("Loaded image ID: {}", l.id);
        }
        for t in &l.tags {
            println!("Loaded image: {}", berth_image::store::familiar(t));
        }
    }
    let _ = a.quiet;
    Ok(())
}

pub fn import(store: &ImageStore, a: ImportArgs) -> Result<()> {
    let tag = match &a.reference {
        Some(r) => Some(
            r.parse::<Reference>()?
                .tagged()
                .context("import takes REPOSITORY[:TAG], not a digest")?,
        ),
        None => None,
    };
    let scratch;
    let (path, source): (&Path, String) = if a.file == "-" {
        scratch = spool_stdin(store)?;
        (&scratch.0, "-".into())
    } else {
        (Path::new(&a.file), a.file.clone())
    };
    let comment = if a.message.is_empty() {
        format!("Imported from {source}")
    } else {
        a.message.clone()
    };
    let l = store.import(path, tag.as_deref(), &comment)?;
    println!("{}", l.id);
    Ok(())
}
