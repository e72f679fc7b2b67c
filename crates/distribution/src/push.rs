//! Push: blobs the registry lacks (HEAD), mounted from another repository of
//! the same registry when the image came from there, else uploaded
//! (monolithic, or chunked when `chunk_size` is set); then the manifest.

use std::io::Read;
use std::sync::Arc;

use berth_image::{Digest, ImageRecord, ImageStore, Reference};
use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::client::RegistryClient;
use crate::error::{Error, Result};
use crate::progress::Progress;

#[derive(Clone, Debug)]
pub struct PushOptions {
    /// Upload in PATCH chunks of this many bytes (None: one PUT).
    pub chunk_size: Option<usize>,
    pub max_concurrent: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            chunk_size: None,
            max_concurrent: 4,
        }
    }
}

/// Pushes `rec` as `target` (which must carry a tag or defaults to latest).
/// Returns the manifest digest.
pub async fn push(
    store: Arc<ImageStore>,
    client: Arc<RegistryClient>,
    rec: &ImageRecord,
    target: &Reference,
    opts: &PushOptions,
    progress: Arc<dyn Progress>,
) -> Result<Digest> {
    let repo = target.path.clone();
    // Repositories on the same registry this image is known from: mount sources.
    let mount_from: Vec<String> = rec
        .repo_digests
        .iter()
        .chain(rec.repo_tags.iter())
        .filter_map(|n| n.parse::<Reference>().ok())
        .filter(|r| r.domain == target.domain && r.path != target.path)
        .map(|r| r.path)
        .collect();
    progress.message(&format!(
        "The push refers to repository [{}]",
        target.familiar_repository()
    ));
    let mut blobs: Vec<(Digest, u64)> = rec
        .layers
        .iter()
        .map(|l| (l.blob.clone(), l.blob_size))
        .collect();
    blobs.push((rec.id.clone(), store.content.size(&rec.id)?));
    let sem = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let mut tasks = JoinSet::new();
    for (digest, size) in blobs {
        let (store, client, progress, repo, sem, opts, mount_from) = (
            store.clone(),
            client.clone(),
            progress.clone(),
            repo.clone(),
            sem.clone(),
            opts.clone(),
            mount_from.clone(),
        );
        tasks.spawn(async move {
            let _p = sem.acquire_owned().await.expect("semaphore open");
            let id = digest.hex()[..12].to_string();
            if client.has_blob(&repo, &digest).await? {
                progress.finish(&id, "Layer already exists");
                return Ok(());
            }
            for from in &mount_from {
                if client
                    .start_upload(&repo, Some((&digest, from)))
                    .await?
                    .is_none()
                {
                    progress.finish(&id, &format!("Mounted from {from}"));
                    return Ok(());
                }
            }
            progress.start(&id, size);
            upload_blob(
                &store,
                &client,
                &repo,
                &digest,
                size,
                opts.chunk_size,
                &*progress,
                &id,
            )
            .await?;
            progress.finish(&id, "Pushed");
            Ok::<_, Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| Error::Task(e.to_string()))??;
    }
    let manifest = store.content.read(&rec.manifest)?;
    let reference = target.tag_or_latest().unwrap_or("latest").to_string();
    client
        .put_manifest(&repo, &reference, &rec.manifest_media_type, manifest)
        .await?;
    progress.message(&format!(
        "{reference}: digest: {} size: {}",
        rec.manifest,
        store.content.size(&rec.manifest)?
    ));
    Ok(rec.manifest.clone())
}

#[allow(clippy::too_many_arguments)]
async fn upload_blob(
    store: &ImageStore,
    client: &RegistryClient,
    repo: &str,
    digest: &Digest,
    size: u64,
    chunk_size: Option<usize>,
    progress: &dyn Progress,
    id: &str,
) -> Result<()> {
    let mut location = client
        .start_upload(repo, None)
        .await?
        .ok_or_else(|| Error::Protocol("registry mounted a blob we did not ask to mount".into()))?;
    let path = store.content.blob_path(digest);
    let read_chunk = |offset: u64, len: usize| {
        let path = path.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<Bytes> {
            use std::io::{Seek, SeekFrom};
            let mut f = std::fs::File::open(&path)?;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = Vec::with_capacity(len);
            f.take(len as u64).read_to_end(&mut buf)?;
            Ok(Bytes::from(buf))
        })
    };
    let chunk = chunk_size.unwrap_or(usize::MAX).min(size as usize).max(1);
    if chunk as u64 >= size {
        let data = read_chunk(0, size as usize)
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        client.finish_upload(repo, &location, digest, data).await?;
        progress.advance(id, size);
        return Ok(());
    }
    let mut offset = 0u64;
    while offset < size {
        let len = chunk.min((size - offset) as usize);
        let data = read_chunk(offset, len)
            .await
            .map_err(|e| Error::Task(e.to_string()))??;
        location = client.patch_chunk(repo, &location, offset, data).await?;
        offset += len as u64;
        progress.advance(id, offset);
    }
    client
        .finish_upload(repo, &location, digest, Bytes::new())
        .await
}
