//! Pull: resolve → manifest (index → platform) → config → layers.
//!
//! Each missing layer is one streamed pass (download → blob digest →
//! decompress → diff digest → unpack) on a blocking thread fed by the async
//! download through a bounded channel; at most `max_concurrent` run at once.
//! A dropped connection is resumed with a Range request from the last byte
//! delivered, invisibly to the unpacker.

use std::io::{self, Read};
use std::sync::Arc;

use berth_image::formats::{self, Descriptor, ManifestKind, Platform, media};
use berth_image::lease::Lease;
use berth_image::{Cancel, Digest, ImageRecord, ImageStore, LayerRecord, Reference, chain_ids};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::client::RegistryClient;
use crate::error::{Error, Result};
use crate::progress::Progress;

#[derive(Clone, Debug)]
pub struct PullOptions {
    pub platform: Platform,
    pub max_concurrent: usize,
    /// Set when nobody waits for the pull any more: layer unpacks stop and
    /// the pull fails with `Cancelled`.
    pub cancel: Cancel,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            max_concurrent: 4,
            cancel: Cancel::default(),
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))
}

/// Pulls `reference` into `store`, returning the stored record.
pub async fn pull(
    store: Arc<ImageStore>,
    client: Arc<RegistryClient>,
    reference: &Reference,
    opts: &PullOptions,
    progress: Arc<dyn Progress>,
) -> Result<ImageRecord> {
    let repo = reference.path.clone();
    let (bytes, ct, digest) = client
        .get_manifest(&repo, &reference.registry_reference())
        .await
        .map_err(|e| match e {
            Error::Status {
                status: 401 | 403, ..
            } => Error::PullDenied(reference.familiar_repository()),
            e => e,
        })?;
    let resolved = digest.clone();
    // The lease keeps what this pull has stored (or found stored) from a
    // concurrent prune/rmi until the image record exists; it grows as the
    // pull learns what the image consists of.
    let mut lease = Lease::for_process("pull");
    lease.blobs.push(resolved.clone());
    let (s, l) = (store.clone(), lease.clone());
    let _guard = blocking(move || s.lease_process(&l)).await??;
    let (mut bytes, mut ct, mut digest) = (bytes, ct, digest);
    let mut index = None;
    let manifest = match formats::parse_manifest(&bytes, ct.as_deref())? {
        ManifestKind::Image(m) => m,
        ManifestKind::Index(idx) => {
            let desc = formats::select_platform(&idx, &opts.platform)?.clone();
            let s = store.clone();
            let (b, d) = (bytes.clone(), digest.clone());
            blocking(move || s.content.write_all(&b, Some(&d))).await??;
            index = Some(digest.clone());
            (bytes, ct, digest) = client.get_manifest(&repo, &desc.digest.to_string()).await?;
            match formats::parse_manifest(&bytes, ct.as_deref())? {
                ManifestKind::Image(m) => m,
                ManifestKind::Index(_) => {
                    return Err(Error::Protocol("index points at another index".into()));
                }
            }
        }
    };
    let manifest_media_type = manifest
        .media_type
        .clone()
        .or(ct.clone())
        .unwrap_or_else(|| media::OCI_MANIFEST.into());
    progress.message(&format!(
        "{}: Pulling from {}",
        reference.tag_or_latest().unwrap_or("digest"),
        reference.familiar_repository()
    ));

    // Config: small, fetched whole and verified by the content store.
    let cfg_digest = manifest.config.digest.clone();
    lease.blobs.extend([digest.clone(), cfg_digest.clone()]);
    lease
        .blobs
        .extend(manifest.layers.iter().map(|l| l.digest.clone()));
    let (s, l) = (store.clone(), lease.clone());
    blocking(move || s.leases.put(&l)).await??;
    let config_bytes = if store.content.exists(&cfg_digest) {
        let (s, d) = (store.clone(), cfg_digest.clone());
        blocking(move || s.content.read(&d)).await??
    } else {
        let b = client.get_blob_bytes(&repo, &cfg_digest).await?;
        let (s, d, b2) = (store.clone(), cfg_digest.clone(), b.clone());
        blocking(move || s.content.write_all(&b2, Some(&d))).await??;
        b
    };
    let config = formats::parse_config(&config_bytes)?;
    let diff_ids = config.rootfs.diff_ids.clone();
    if diff_ids.len() != manifest.layers.len() {
        return Err(berth_image::Error::LayerCountMismatch {
            want: manifest.layers.len(),
            got: diff_ids.len(),
        }
        .into());
    }
    for l in &manifest.layers {
        formats::Compression::of_layer(&l.media_type)?;
    }
    let chains = chain_ids(&diff_ids);
    lease.chain_ids = chains.clone();
    let (s, l) = (store.clone(), lease.clone());
    blocking(move || s.leases.put(&l)).await??;

    let sem = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let mut tasks = JoinSet::new();
    for (i, desc) in manifest.layers.iter().enumerate() {
        let id = desc.digest.hex()[..12].to_string();
        if store.layers.exists(&chains[i]) && store.content.exists(&desc.digest) {
            progress.finish(&id, "Already exists");
            continue;
        }
        let job = LayerJob {
            store: store.clone(),
            client: client.clone(),
            progress: progress.clone(),
            repo: repo.clone(),
            desc: desc.clone(),
            diff_id: diff_ids[i].clone(),
            chain_id: chains[i].clone(),
            parent: i.checked_sub(1).map(|p| chains[p].clone()),
            id,
            cancel: opts.cancel.clone(),
        };
        let sem = sem.clone();
        tasks.spawn(async move {
            let _permit = sem.acquire_owned().await.expect("semaphore open");
            job.run().await
        });
    }
    while let Some(r) = tasks.join_next().await {
        let r = r.map_err(|e| Error::Task(e.to_string())).and_then(|r| r);
        if let Err(e) = r {
            tasks.abort_all();
            while tasks.join_next().await.is_some() {}
            return Err(e);
        }
    }

    let mut size = 0;
    let mut layers = Vec::new();
    for (i, desc) in manifest.layers.iter().enumerate() {
        size += store.layers.meta(&chains[i]).map(|m| m.size).unwrap_or(0);
        layers.push(LayerRecord {
            blob: desc.digest.clone(),
            media_type: desc.media_type.clone(),
            blob_size: desc.size,
            diff_id: diff_ids[i].clone(),
            chain_id: chains[i].clone(),
        });
    }
    let (s, d, b) = (store.clone(), digest.clone(), bytes.clone());
    blocking(move || s.content.write_all(&b, Some(&d))).await??;
    let rec = ImageRecord {
        id: cfg_digest,
        manifest: digest,
        manifest_media_type,
        index,
        repo_tags: Vec::new(),
        repo_digests: vec![format!("{}@{}", reference.repository(), resolved)],
        layers,
        created: config.created.clone(),
        platform: Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
            os_version: None,
        }
        .to_string(),
        size,
    };
    let tag = reference.tagged().filter(|_| reference.digest.is_none());
    let (s, r) = (store.clone(), rec.clone());
    blocking(move || s.put(r, tag.as_deref())).await??;
    progress.message(&format!("Digest: {resolved}"));
    Ok(store.resolve(&rec.id.to_string())?)
}

struct LayerJob {
    store: Arc<ImageStore>,
    client: Arc<RegistryClient>,
    progress: Arc<dyn Progress>,
    repo: String,
    desc: Descriptor,
    diff_id: Digest,
    chain_id: Digest,
    parent: Option<Digest>,
    id: String,
    cancel: Cancel,
}

impl LayerJob {
    async fn run(self) -> Result<()> {
        let (s, d) = (self.store.clone(), self.desc.digest.clone());
        // May wait for a concurrent writer of the same blob.
        let mut writer = blocking(move || s.content.writer(&d)).await??;
        if writer.offset() > self.desc.size {
            // More than the blob's size is not a prefix of it: start over.
            writer = blocking(move || {
                let mut w = writer;
                w.truncate().map(|()| w)
            })
            .await??;
        }
        let offset = writer.offset();
        self.progress.start(&self.id, self.desc.size);
        let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(64);
        let (s, desc, diff, chain, parent, cancel) = (
            self.store.clone(),
            self.desc.clone(),
            self.diff_id.clone(),
            self.chain_id.clone(),
            self.parent.clone(),
            self.cancel.clone(),
        );
        let unpack = tokio::task::spawn_blocking(move || {
            s.layers.ingest(
                &desc,
                &diff,
                &chain,
                parent.as_ref(),
                writer,
                ChannelReader::new(rx),
                Some(&cancel),
            )
        });
        let feed = self.feed(offset, tx);
        let (fed, unpacked) = tokio::join!(feed, unpack);
        let unpacked = unpacked.map_err(|e| Error::Task(e.to_string()))?;
        // The unpacker's error is the meaningful one (digest mismatch, hostile
        // entry); a feed error then is only "receiver gone".
        unpacked?;
        fed?;
        self.progress.finish(&self.id, "Pull complete");
        Ok(())
    }

    /// Streams the blob from `offset` into the channel, resuming on errors.
    async fn feed(&self, offset: u64, tx: mpsc::Sender<io::Result<Bytes>>) -> Result<()> {
        let mut sent = offset;
        let mut failures = 0;
        loop {
            let result = self.feed_once(&mut sent, &tx).await;
            match result {
                Ok(()) => return Ok(()),
                Err(FeedError::ReceiverGone) => return Ok(()),
                Err(FeedError::Fatal(e)) => {
                    let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                    return Err(e);
                }
                Err(FeedError::Transient(e)) => {
                    failures += 1;
                    if failures >= 4 {
                        let _ = tx.send(Err(io::Error::other(e.to_string()))).await;
                        return Err(e);
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200 << failures)).await;
                }
            }
        }
    }

    async fn feed_once(
        &self,
        sent: &mut u64,
        tx: &mpsc::Sender<io::Result<Bytes>>,
    ) -> Result<(), FeedError> {
        // A partial download killed after its last byte was written is
        // complete: asking for `bytes=<size>-` gets a 416.
        if *sent == self.desc.size {
            return Ok(());
        }
        let (resp, ranged) = self
            .client
            .get_blob(&self.repo, &self.desc.digest, *sent)
            .await
            .map_err(FeedError::Fatal)?;
        // A registry that ignores Range sends everything again: skip what we have.
        let mut skip = if ranged { 0 } else { *sent };
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let mut chunk = chunk
                .map_err(|e| FeedError::Transient(crate::client::http_err("GET", "blob", e)))?;
            if skip > 0 {
                let n = skip.min(chunk.len() as u64);
                chunk = chunk.slice(n as usize..);
                skip -= n;
                if chunk.is_empty() {
                    continue;
                }
            }
            *sent += chunk.len() as u64;
            if *sent > self.desc.size {
                return Err(FeedError::Fatal(Error::Protocol(format!(
                    "blob {} is longer than its declared {} bytes",
                    self.desc.digest, self.desc.size
                ))));
            }
            self.progress.advance(&self.id, *sent);
            if tx.send(Ok(chunk)).await.is_err() {
                return Err(FeedError::ReceiverGone);
            }
        }
        if *sent < self.desc.size {
            return Err(FeedError::Transient(Error::Protocol(format!(
                "blob {} ended after {} of {} bytes",
                self.desc.digest, sent, self.desc.size
            ))));
        }
        Ok(())
    }
}

enum FeedError {
    ReceiverGone,
    Transient(Error),
    Fatal(Error),
}

/// Blocking `Read` over the chunks the async downloader sends.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl ChannelReader {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            cur: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}
