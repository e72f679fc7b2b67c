//! Blob upload sessions: `<root>/uploads/<id>/data` plus a small `state.json`.
//! The request body is streamed through a bounded buffer into the hasher and the
//! file, so memory stays bounded whatever the blob size. A session survives a
//! dropped connection (the bytes that arrived are kept; the client asks for the
//! offset and resumes) and a registry restart (the hash is rebuilt from disk).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use berth_image::Digest;
use berth_image::digest::{Algorithm, Hasher};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};
use crate::route::RepoName;
use crate::store::write_atomic;

/// Bytes buffered before each write: the per-upload memory bound.
const FLUSH_AT: usize = 1 << 20;

#[derive(Serialize, Deserialize)]
struct State {
    repo: String,
    started: u64,
}

pub struct Session {
    pub id: String,
    pub repo: RepoName,
    pub offset: u64,
    dir: PathBuf,
    /// sha256 of the data so far; None after a restart until rebuilt.
    hasher: Option<Hasher>,
    file: Option<File>,
}

pub type SessionRef = Arc<tokio::sync::Mutex<Session>>;

pub struct Uploads {
    dir: PathBuf,
    live: Mutex<HashMap<String, SessionRef>>,
}

impl Uploads {
    pub fn new(dir: PathBuf) -> Uploads {
        Uploads {
            dir,
            live: Mutex::new(HashMap::new()),
        }
    }

    pub fn create(&self, repo: &RepoName) -> Result<SessionRef> {
        let id = random_hex(16);
        let dir = self.dir.join(&id);
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        File::create(dir.join("data")).ctx("create", dir.join("data"))?;
        let state = State {
            repo: repo.to_string(),
            started: now_secs(),
        };
        write_atomic(
            &dir.join("state.json"),
            &serde_json::to_vec(&state).expect("state serialises"),
        )?;
        let s = Arc::new(tokio::sync::Mutex::new(Session {
            id: id.clone(),
            repo: repo.clone(),
            offset: 0,
            dir,
            hasher: Some(Hasher::new(Algorithm::Sha256)),
            file: None,
        }));
        self.live.lock().unwrap().insert(id, s.clone());
        Ok(s)
    }

    /// The session `id` of repository `repo` (loaded from disk after a restart).
    pub fn get(&self, repo: &RepoName, id: &str) -> Result<SessionRef> {
        let unknown = || Error::BlobUploadUnknown(id.to_string());
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        let mut live = self.live.lock().unwrap();
        let s = match live.get(id) {
            Some(s) => s.clone(),
            None => {
                let dir = self.dir.join(id);
                let state: State = fs::read(dir.join("state.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or_else(unknown)?;
                let offset = fs::metadata(dir.join("data")).map_err(|_| unknown())?.len();
                let s = Arc::new(tokio::sync::Mutex::new(Session {
                    id: id.to_string(),
                    repo: RepoName::parse(&state.repo)?,
                    offset,
                    dir,
                    hasher: None,
                    file: None,
                }));
                live.insert(id.to_string(), s.clone());
                s
            }
        };
        // Try the cheap check without awaiting: a session busy with a PATCH is
        // certainly of some repository; compare once we hold it.
        if let Ok(g) = s.try_lock()
            && &g.repo != repo
        {
            return Err(unknown());
        }
        Ok(s)
    }

    /// Forgets a session and deletes its data.
    pub fn remove(&self, id: &str) {
        self.live.lock().unwrap().remove(id);
        let _ = fs::remove_dir_all(self.dir.join(id));
    }

    /// Removes sessions idle for longer than `max_age_secs` (GC). Returns how many.
    pub fn purge_older_than(&self, max_age_secs: u64) -> Result<usize> {
        let mut n = 0;
        let rd = match fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) => return Err(e).ctx("read dir", &self.dir),
        };
        let now = SystemTime::now();
        for e in rd.flatten() {
            let p = e.path();
            // Activity updates data's mtime; a dir without files is half-created.
            let newest = [p.join("data"), p.join("state.json")]
                .iter()
                .filter_map(|f| fs::metadata(f).and_then(|m| m.modified()).ok())
                .max()
                .or_else(|| fs::metadata(&p).and_then(|m| m.modified()).ok());
            let idle = newest
                .and_then(|t| now.duration_since(t).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            if idle >= max_age_secs
                && let Some(id) = p.file_name().and_then(|n| n.to_str())
            {
                self.remove(id);
                n += 1;
            }
        }
        Ok(n)
    }
}

impl Session {
    pub fn data_path(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// `Range` header value for the bytes received so far.
    pub fn range(&self) -> String {
        format!("0-{}", self.offset.saturating_sub(1))
    }

    /// Streams `body` onto the end of the upload. Bytes that arrived before an
    /// error (a dropped client) are kept, so the upload can be resumed.
    pub async fn append<B>(&mut self, mut body: B) -> Result<u64>
    where
        B: hyper::body::Body<Data = Bytes> + Unpin,
        B::Error: std::fmt::Display,
    {
        let mut buf = BytesMut::new();
        let mut written = 0u64;
        let res = loop {
            match body.frame().await {
                None => break Ok(()),
                Some(Err(e)) => break Err(Error::Body(e.to_string())),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        if buf.len() >= FLUSH_AT {
                            written += buf.len() as u64;
                            self.write(buf.split().freeze()).await?;
                        }
                    }
                }
            }
        };
        written += buf.len() as u64;
        self.write(buf.freeze()).await?;
        res.map(|()| written)
    }

    async fn write(&mut self, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let path = self.data_path();
        let mut file = match self.file.take() {
            Some(f) => f,
            None => OpenOptions::new()
                .append(true)
                .open(&path)
                .ctx("open", &path)?,
        };
        let mut hasher = self.hasher.take();
        let (file, hasher, res) = tokio::task::spawn_blocking(move || {
            let res = file.write_all(&data).ctx("write", &path);
            if res.is_ok()
                && let Some(h) = hasher.as_mut()
            {
                h.update(&data);
            }
            (file, hasher, res.map(|()| data.len() as u64))
        })
        .await
        .map_err(|e| Error::Body(e.to_string()))?;
        self.file = Some(file);
        match res {
            Ok(n) => {
                self.hasher = hasher;
                self.offset += n;
                Ok(())
            }
            Err(e) => {
                // A partial write leaves the file and hash out of step: rebuild later.
                self.hasher = None;
                self.offset = fs::metadata(self.data_path()).map(|m| m.len()).unwrap_or(0);
                Err(e)
            }
        }
    }

    /// Digest of all data received, in `algo`.
    pub async fn digest(&mut self, algo: Algorithm) -> Result<Digest> {
        if algo == Algorithm::Sha256
            && let Some(h) = &self.hasher
        {
            return Ok(h.clone().finish());
        }
        let path = self.data_path();
        let d = tokio::task::spawn_blocking(move || hash_file(&path, algo))
            .await
            .map_err(|e| Error::Body(e.to_string()))??;
        if algo == Algorithm::Sha256 {
            // Cache for the next call (sha512 stays a one-off).
            let path = self.data_path();
            self.hasher = Some(
                tokio::task::spawn_blocking(move || rehash(&path))
                    .await
                    .map_err(|e| Error::Body(e.to_string()))??,
            );
        }
        Ok(d)
    }
}

fn hash_file(path: &Path, algo: Algorithm) -> Result<Digest> {
    let mut h = Hasher::new(algo);
    feed(path, &mut h)?;
    Ok(h.finish())
}

fn rehash(path: &Path) -> Result<Hasher> {
    let mut h = Hasher::new(Algorithm::Sha256);
    feed(path, &mut h)?;
    Ok(h)
}

fn feed(path: &Path, h: &mut Hasher) -> Result<()> {
    let mut f = File::open(path).ctx("open", path)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).ctx("read", path)?;
        if n == 0 {
            return Ok(());
        }
        h.update(&buf[..n]);
    }
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("/dev/urandom");
    b
}

pub(crate) fn random_hex(n: usize) -> String {
    random_bytes(n).iter().map(|b| format!("{b:02x}")).collect()
}
