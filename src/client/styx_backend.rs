//! The 9P2000 backend: a registry served over a byte stream, used the way Inferno's mount driver
//! uses it (spec/vectors/limbo-registries-9p.md): every open is a one-name walk from the root fid to a
//! fresh fid and a Topen; `index` is opened OREAD once and re-read from offset 0; `find` is opened
//! ORDWR, written once, read from offset 0 to an empty read (we then keep the fid open for the
//! next find, where Limbo clunks it and walks anew: see [`StyxSession::find`]); `new` is opened OWRITE
//! and written once, and its fid is the registration; `unregister` is a walk and a Tremove; reads
//! ask for 8192 bytes.

use super::conn::BoxConn;
use super::error::{Error, Result};
use crate::styx::{self, Client, Fid, ORDWR, OREAD, OWRITE};
use crate::wire::Diagnostic;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use std::sync::Arc;
use tokio::sync::Mutex;

/// Maps a 9P failure: an Rerror's text is the registry's diagnostic, kept verbatim.
fn styx_err(e: styx::Error) -> Error {
    match e {
        styx::Error::Remote(text) => Error::from_remote(&text),
        styx::Error::NotFound(name) => {
            Error::Registry(Diagnostic::Other(format!("file does not exist: '{name}'")))
        }
        e => Error::Io(std::io::Error::other(e.to_string())),
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most `find` fids kept open for reuse by one session: as many finds as run at once, up to this.
const IDLE_FIND_FIDS: usize = 8;

/// A 9P session attached to a registry's root, with its `index` open.
pub struct StyxSession {
    // Field order is drop order: the find and index fids are clunked before the root, as
    // Inferno clunks its fids before the root.
    /// Open `find` fids not in use: each holds its own filter, which the next find replaces.
    finds: std::sync::Mutex<Vec<Fid>>,
    /// The `index` fid; locked so that two re-reads from offset 0 do not interleave.
    index: Mutex<Fid>,
    root: Arc<Fid>,
    /// The user attached as, for the feed's own attach.
    user: Arc<str>,
    /// The connection's heartbeat bound (shared by every session on it).
    heartbeat: Arc<super::heartbeat::Bound>,
}

/// Walks one name from `root` to a fresh fid and opens it with `mode`.
async fn open(root: &Fid, name: &str, mode: u8) -> styx::Result<Fid> {
    let mut f = root.walk(&[name]).await?;
    f.open(mode).await?;
    Ok(f)
}

/// Most reads in flight while reading a long `index` or `find` text ahead.
const READ_AHEAD: usize = 32;

/// Reads `f` from offset 0 until an empty read. The read at offset 0 makes the registry capture
/// the text (spec/registry.md §4), so once it has come back full, the reads after it can be in flight
/// together: a window of reads at successive offsets, doubling up to [`READ_AHEAD`]. A text that
/// fits one read costs the same two reads as Limbo's. A short read that is not empty (a server
/// in between with a smaller msize) ends the window, and reading goes on from where it ended.
async fn read_to_end(f: &Fid) -> styx::Result<String> {
    let count = f.io_size();
    let mut out = Vec::new();
    let mut window = 1;
    loop {
        let base = out.len() as u64;
        let mut reads: FuturesOrdered<_> = (0..window as u64)
            .map(|i| f.read(base + i * u64::from(count), count))
            .collect();
        let mut end = false;
        let mut full = true;
        while let Some(chunk) = reads.next().await {
            let chunk = chunk?;
            if chunk.is_empty() {
                end = true;
                break;
            }
            out.extend_from_slice(&chunk);
            if chunk.len() < count as usize {
                full = false;
                break;
            }
        }
        // The reads still in flight answer at once (past the end, or misaligned): take their
        // replies rather than flush them.
        while reads.next().await.is_some() {}
        if end {
            // Valid UTF-8, as a registry's text is, becomes the String without a copy.
            return Ok(String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()));
        }
        window = if full && !out.is_empty() {
            (window * 2).min(READ_AHEAD)
        } else {
            1
        };
    }
}

/// One write of all of `data` at `offset` (a short write is an error).
async fn write_once(f: &Fid, offset: u64, data: &[u8]) -> Result<()> {
    let n = f.write(offset, data).await.map_err(styx_err)?;
    if n != data.len() {
        return Err(Error::Protocol(format!(
            "short write: {n} of {}",
            data.len()
        )));
    }
    Ok(())
}

impl StyxSession {
    /// Tversion (msize [`styx::LARGE_MSIZE`]) and Tattach as `user` with no auth fid and an
    /// empty aname on `conn`, then walks to and opens `index`.
    pub async fn attach(conn: BoxConn, user: &str) -> Result<StyxSession> {
        let mount_err = |e: styx::Error| Error::Mount(e.to_string());
        // 64 KiB a message where the registry grants it (ours): a long `index` or `find`
        // answer comes in an eighth of the messages. Inferno's registry (any styxservers
        // program) answers 8216, and then everything is as Limbo's client would have it.
        let client = Client::connect_with_msize(conn, styx::LARGE_MSIZE)
            .await
            .map_err(mount_err)?;
        let root = Arc::new(client.attach(user, "").await.map_err(mount_err)?);
        let heartbeat = super::heartbeat::Bound::new(super::heartbeat::DEFAULT_HEARTBEAT);
        super::heartbeat::start(&root, Arc::clone(&heartbeat));
        StyxSession::on_root(root, Arc::from(user), heartbeat).await
    }

    async fn on_root(
        root: Arc<Fid>,
        user: Arc<str>,
        heartbeat: Arc<super::heartbeat::Bound>,
    ) -> Result<StyxSession> {
        let index = open(&root, "index", OREAD).await.map_err(styx_err)?;
        Ok(StyxSession {
            finds: std::sync::Mutex::new(Vec::new()),
            index: Mutex::new(index),
            root,
            user,
            heartbeat,
        })
    }

    /// A session on the same connection and root with a fresh `index` fid (`Registry.new` of a
    /// mounted connection).
    pub async fn reopen(&self) -> Result<StyxSession> {
        StyxSession::on_root(
            Arc::clone(&self.root),
            self.user.clone(),
            Arc::clone(&self.heartbeat),
        )
        .await
    }

    /// Sets the connection's heartbeat bound (zero: off).
    pub fn set_heartbeat(&self, bound: std::time::Duration) {
        self.heartbeat.set(bound);
    }

    /// Starts a change-feed watcher with `request` (spec/feed.md): attaches to the feed's tree
    /// on the same connection, opens `watch` and writes the request. A registry without the
    /// feed (Inferno's gives its own tree for every attach name) has no `watch`:
    /// [`Error::NoFeed`].
    pub async fn feed(&self, request: &str) -> Result<FeedFile> {
        let client = self.root.client();
        let root = client
            .attach(&self.user, crate::wire::FEED_ANAME)
            .await
            .map_err(|e| Error::NoFeed(e.to_string()))?;
        let watch = match open(&root, "watch", ORDWR).await {
            Ok(f) => f,
            // Whatever the registry says to a walk to `watch`, it has no feed.
            Err(e @ (styx::Error::NotFound(_) | styx::Error::Remote(_))) => {
                return Err(Error::NoFeed(e.to_string()));
            }
            Err(e) => return Err(styx_err(e)),
        };
        write_once(&watch, 0, request.as_bytes()).await?;
        Ok(FeedFile { watch, _root: root })
    }

    /// Re-reads `index` from offset 0.
    pub async fn index(&self) -> Result<String> {
        let index = self.index.lock().await;
        read_to_end(&index).await.map_err(styx_err)
    }

    /// Writes `query` to an open `find` fid and reads from offset 0 to end of file. The first
    /// find walks to `find` and opens it ORDWR, as Limbo does each time; later ones reuse that
    /// fid (each write replaces the fid's filter, and a read at offset 0 applies it: spec/registry.md
    /// §4), which saves the walk, the open and the clunk: three of a find's five round trips.
    pub async fn find(&self, query: &str) -> Result<String> {
        let idle = lock(&self.finds).pop();
        let f = match idle {
            Some(f) => f,
            None => open(&self.root, "find", ORDWR).await.map_err(styx_err)?,
        };
        write_once(&f, 0, query.as_bytes()).await?;
        let text = read_to_end(&f).await.map_err(styx_err)?;
        let mut finds = lock(&self.finds);
        if finds.len() < IDLE_FIND_FIDS {
            finds.push(f);
        }
        // A fid not kept is clunked at once when dropped, without waiting for the Rclunk.
        Ok(text)
    }

    /// Walks to `new`, opens it OWRITE and writes `line`; the open fid is the registration.
    pub async fn register(&self, line: &str) -> Result<StyxFile> {
        let fid = open(&self.root, "new", OWRITE).await.map_err(styx_err)?;
        write_once(&fid, 0, line.as_bytes()).await?;
        Ok(StyxFile {
            fid,
            offset: line.len() as u64,
        })
    }

    /// Walks to `name` (split at `/`, as a path under the registry) and removes it.
    pub async fn unregister(&self, name: &str) -> Result<()> {
        let names: Vec<&str> = name.split('/').filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            // A walk of no names would be the root itself.
            return Err(Error::Registry(Diagnostic::BadName));
        }
        let f = self.root.walk(&names).await.map_err(styx_err)?;
        f.remove().await.map_err(styx_err)
    }

    /// The owner of each service: the uid of its file in the registry's directory (one read of
    /// the root directory, as `ls -l` would make).
    pub async fn owners(&self) -> Result<std::collections::HashMap<String, String>> {
        let mut dir = self.root.try_clone().await.map_err(styx_err)?;
        dir.open(OREAD).await.map_err(styx_err)?;
        let entries = dir.read_dir().await.map_err(styx_err)?;
        Ok(entries.into_iter().map(|st| (st.name, st.uid)).collect())
    }

    /// Walks to `event` and opens it OREAD.
    pub async fn events(&self) -> Result<StyxFile> {
        let fid = open(&self.root, "event", OREAD)
            .await
            .map_err(|e| match styx_err(e) {
                Error::Registry(d) => Error::NoEvents(d.to_string()),
                e => e,
            })?;
        Ok(StyxFile { fid, offset: 0 })
    }
}

/// An open `watch` fid of the feed and the feed root it hangs from (clunked after it).
pub struct FeedFile {
    watch: Fid,
    _root: Fid,
}

impl FeedFile {
    /// The next record text: one or more whole or partial record lines.
    pub async fn read(&self, count: u32) -> Result<Vec<u8>> {
        let data = self.watch.read(0, count).await.map_err(styx_err)?;
        Ok(data.to_vec())
    }
}

/// An open fid with a file offset that advances as it is read or written, as a Limbo FD's does.
/// Dropping it clunks the fid.
pub struct StyxFile {
    fid: Fid,
    offset: u64,
}

impl StyxFile {
    /// One write at the current offset.
    pub async fn write_next(&mut self, data: &[u8]) -> Result<()> {
        write_once(&self.fid, self.offset, data).await?;
        self.offset += data.len() as u64;
        Ok(())
    }

    /// One read of up to `count` bytes at the current offset.
    pub async fn read_next(&mut self, count: u32) -> Result<Vec<u8>> {
        let data = self.fid.read(self.offset, count).await.map_err(styx_err)?;
        self.offset += data.len() as u64;
        Ok(data.to_vec())
    }

    /// Clunks the fid, waiting for the reply.
    pub async fn close(self) -> Result<()> {
        self.fid.clunk().await.map_err(styx_err)
    }
}
