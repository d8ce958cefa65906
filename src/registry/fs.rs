//! The registry as a 9P file system (spec/registry.md §2–§5) on the framework of [`crate::styx::server`].
//!
//! Each fid carries its own state: the file it names, its open mode, the `index`/`find` text
//! captured by its last offset-0 read, its `find` filter, and for `event` the counter it last saw.
//! Behaviour, diagnostics and their order follow Inferno's `ndb/registry` and the styxservers
//! library it is built on.

use super::catalog::{Catalog, FidRef};
use super::feed::Watcher;
use super::index::EntryId;
use super::node::{Node, mode_ok, openok};
#[cfg(feature = "etcd")]
use super::store::{EtcdConfig, EtcdStore};
#[cfg(feature = "etcd")]
use crate::etcd::EtcdError;
use crate::styx::server::{ConnCtx, FileSystem, FsError, IOUNIT_MSIZE, Opened, errors};
use crate::styx::{ORCLOSE, Qid, Stat};
use crate::wire::{self, Diagnostic};
use arcstr::ArcStr;
use bytes::Bytes;
#[cfg(feature = "etcd")]
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;

/// Inferno's diagnostic for "cannot happen" (`Egreg`).
pub const EGREG: &str = "buggy program!";
/// A second read on an `event` fid while one is held.
pub const ECONCURRENT: &str = "concurrent read for event fid";

pub use crate::wire::FEED_ANAME;

/// A read of the feed's `watch` file before a request was written to it.
pub const ENOREQUEST: &str = "no feed request written";
/// A second request written to one `watch` fid.
pub const ESTARTED: &str = "feed already started on this fid";

/// The registry file system: one per registry, shared by all its connections.
#[derive(Debug)]
pub struct RegistryFs {
    catalog: Mutex<Catalog>,
    next_fid: AtomicU64,
    /// Whether attach name [`FEED_ANAME`] gives the feed's tree (else Inferno's, as Inferno's
    /// registry gives it for every attach name).
    feed: AtomicBool,
    /// The catalog's home in etcd, when it has one (`registry serve --etcd`): changes go there.
    #[cfg(feature = "etcd")]
    store: OnceLock<Arc<EtcdStore>>,
    /// Counts the store's session expiries: every client connection (9P or shim registration)
    /// made before one is closed by it (spec/etcd.md, "A front-end cut off from etcd").
    expiries: watch::Sender<u64>,
}

/// What an open `watch` fid of the feed holds once its request is written.
#[derive(Debug)]
struct WatchFid {
    id: u64,
    watcher: Arc<Watcher>,
    /// Record text taken from the watcher and not read yet.
    pending: Bytes,
}

/// What an open `event` fid remembers.
#[derive(Debug)]
struct EventFid {
    /// The counter last reported (or the one at open).
    seen: u32,
    /// A read is held.
    pending: bool,
    /// The fid was clunked: a held read is never answered, as in Inferno.
    closed: bool,
    rx: watch::Receiver<u32>,
}

#[derive(Debug)]
struct FidInner {
    node: Node,
    /// The open mode, once open.
    mode: Option<u8>,
    /// What only some fids need, made on first use: a registration holds its fid for its whole
    /// life and needs none of it, so it does not pay for it.
    extra: Option<Box<Extra>>,
}

impl FidInner {
    /// The fid's [`Extra`], made now if it has none yet.
    fn extra(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }
}

/// The state of a fid that reads text, a directory, `event` or the feed's `watch`.
#[derive(Debug, Default)]
struct Extra {
    /// Text captured by the last offset-0 read of `index`, `find` or a service file.
    data: Bytes,
    /// The `find` filter: empty matches everything.
    filter: Vec<(String, String)>,
    /// Directory read cursor (byte offset, entry index), as styxservers keeps it.
    dir: (u64, usize),
    event: Option<EventFid>,
    watch: Option<WatchFid>,
}

/// The registry's state for one fid.
#[derive(Debug)]
pub struct RegFid {
    token: FidRef,
    uname: ArcStr,
    inner: Mutex<FidInner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Seconds since the epoch, as Inferno's `daytime->now()`.
pub fn now() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

fn err(e: Diagnostic) -> FsError {
    FsError::from(e.to_string())
}

/// Inferno's readbytes: the part of `data` at `offset`, at most `count` bytes.
fn slice(data: &Bytes, offset: u64, count: u32) -> Bytes {
    let len = data.len() as u64;
    if offset >= len {
        return Bytes::new();
    }
    let end = offset.saturating_add(u64::from(count)).min(len);
    data.slice(offset as usize..end as usize)
}

/// Takes up to `count` bytes from the front of `pending`.
fn take(pending: &mut Bytes, count: u32) -> Bytes {
    let n = pending.len().min(count as usize);
    pending.split_to(n)
}

/// Clears the pending flag of an event fid when its read ends, answered or flushed.
struct PendingGuard<'a>(&'a RegFid);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(ev) = lock(&self.0.inner)
            .extra
            .as_mut()
            .and_then(|x| x.event.as_mut())
        {
            ev.pending = false;
        }
    }
}

impl RegistryFs {
    /// A file system over `catalog`.
    pub fn new(catalog: Catalog) -> RegistryFs {
        RegistryFs {
            catalog: Mutex::new(catalog),
            next_fid: AtomicU64::new(0),
            feed: AtomicBool::new(true),
            #[cfg(feature = "etcd")]
            store: OnceLock::new(),
            expiries: watch::Sender::new(0),
        }
    }

    /// The store's session expired: closes every client connection made before now. How many
    /// were told.
    #[cfg(feature = "etcd")]
    pub(crate) fn expire_sessions(&self) -> usize {
        self.expiries.send_modify(|n| *n += 1);
        self.expiries.receiver_count()
    }

    /// How many session expiries there have been: what a connection or registration made now
    /// outlives until the next one.
    pub(crate) fn session_epoch(&self) -> u64 {
        *self.expiries.borrow()
    }

    /// Resolves once there has been a session expiry after `epoch` (never without etcd).
    pub(crate) fn session_expiry(
        &self,
        epoch: u64,
    ) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.expiries.subscribe();
        async move {
            if rx.wait_for(|n| *n > epoch).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Keeps the catalog in etcd from now on (the catalog must be empty of services).
    #[cfg(feature = "etcd")]
    pub(crate) async fn use_etcd(self: &Arc<Self>, cfg: &EtcdConfig) -> Result<(), EtcdError> {
        let store = EtcdStore::start(cfg, self).await?;
        let _ = self.store.set(store);
        Ok(())
    }

    /// Ends the front-end's etcd lease (see [`EtcdStore::close`]); nothing without etcd.
    pub(crate) async fn close_store(&self) {
        #[cfg(feature = "etcd")]
        if let Some(store) = self.store.get() {
            store.close().await;
        }
    }

    /// With etcd: whether it answers and how long ago it last did.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn store_health(&self) -> Option<(bool, std::time::Duration)> {
        #[cfg(feature = "etcd")]
        return self.store.get().map(|s| s.health());
        #[cfg(not(feature = "etcd"))]
        None
    }

    /// Whether the catalog lives in this process only (no etcd).
    pub(crate) fn in_memory(&self) -> bool {
        #[cfg(feature = "etcd")]
        return self.store.get().is_none();
        #[cfg(not(feature = "etcd"))]
        true
    }

    /// A write to service `id` (its creating fid, or its file): the first names it.
    pub(crate) async fn write_service(&self, id: EntryId, text: &str) -> Result<(), Diagnostic> {
        #[cfg(feature = "etcd")]
        if let Some(store) = self.store.get() {
            return store.write(self, id, text).await;
        }
        self.catalog().write(id, text, now())
    }

    /// A clunk of fid `token` on service `id`: the service goes if the fid created it and it
    /// does not persist (or `orclose`).
    pub(crate) async fn release_service(&self, id: EntryId, token: FidRef, orclose: bool) {
        #[cfg(feature = "etcd")]
        if let Some(store) = self.store.get() {
            let rel = self.catalog().plan_release(id, token, orclose);
            store.release(rel).await;
            return;
        }
        self.catalog().release(id, token, orclose);
    }

    /// A Tremove of service `id` by `uname`.
    async fn remove_service(&self, id: EntryId, uname: &str) -> Result<(), Diagnostic> {
        #[cfg(feature = "etcd")]
        if let Some(store) = self.store.get() {
            let rel = self.catalog().plan_remove(id, uname)?;
            return store.remove(self, rel).await;
        }
        self.catalog().remove(id, uname)
    }

    /// Whether attach name [`FEED_ANAME`] gives the change feed (true) or, as in Inferno's
    /// registry, the same tree as every other attach name (false).
    pub fn set_feed(&self, on: bool) {
        self.feed.store(on, Ordering::Relaxed);
    }

    /// The catalog, locked. Keep the guard short: every request waits for it.
    pub fn catalog(&self) -> MutexGuard<'_, Catalog> {
        lock(&self.catalog)
    }

    /// A number no other fid of any connection has, for a front-end that opens `new` itself.
    pub fn token(&self) -> FidRef {
        FidRef(
            std::num::NonZeroU64::MIN.saturating_add(self.next_fid.fetch_add(1, Ordering::Relaxed)),
        )
    }

    fn fid(&self, uname: ArcStr, node: Node) -> RegFid {
        RegFid {
            token: self.token(),
            uname,
            inner: Mutex::new(FidInner {
                node,
                mode: None,
                extra: None,
            }),
        }
    }

    fn walk1(&self, fid: &RegFid, name: &str) -> Result<(RegFid, Qid), FsError> {
        let node = lock(&fid.inner).node;
        let st = self.catalog();
        // styxservers' walk1: the fid must still exist and be a directory.
        node.stat(&st).ok_or(FsError::from(errors::ENOTFOUND))?;
        if !node.is_dir() {
            return Err(errors::ENOTDIR.into());
        }
        let to = match name {
            ".." => node,
            _ if node == Node::FeedRoot => match name {
                "watch" => Node::FeedWatch,
                _ => return Err(errors::ENOTFOUND.into()),
            },
            "new" => Node::New,
            "index" => Node::Index,
            "event" => Node::Event,
            "find" => Node::Find,
            _ => Node::Svc(st.lookup(name).ok_or(FsError::from(errors::ENOTFOUND))?),
        };
        let qid = to.stat(&st).ok_or(FsError::from(errors::ENOTFOUND))?.qid;
        drop(st);
        Ok((self.fid(fid.uname.clone(), to), qid))
    }

    fn open1(&self, fid: &RegFid, mode: u8) -> Result<Opened, FsError> {
        let mut f = lock(&fid.inner);
        let mut st = self.catalog();
        let d = f.node.stat(&st).ok_or(FsError::from(errors::ENOTFOUND))?;
        if !mode_ok(mode) {
            return Err(errors::EBADARG.into());
        }
        if !openok(&fid.uname, mode, d.mode, &d.uid, &d.gid) {
            return Err(errors::EPERM.into());
        }
        // ORCLOSE needs a writable parent (the root is 0777), and the root has none.
        if mode & ORCLOSE != 0 && f.node.is_dir() {
            return Err(errors::EPERM.into());
        }
        let mut iounit = 0;
        let qid = match f.node {
            // The root is opened by styxservers itself, which answers with the stat qid and
            // msize − IOHDRSZ.
            Node::Root | Node::FeedRoot => {
                iounit = IOUNIT_MSIZE;
                d.qid
            }
            Node::New => {
                let id = st.create(fid.uname.clone(), Some(fid.token), now());
                f.node = Node::Svc(id);
                f.node.open_qid()
            }
            Node::Event => {
                f.extra().event = Some(EventFid {
                    seen: st.rootvers(),
                    pending: false,
                    closed: false,
                    rx: st.subscribe(),
                });
                f.node.open_qid()
            }
            n => n.open_qid(),
        };
        f.mode = Some(mode);
        Ok(Opened { qid, iounit })
    }

    /// A directory read with styxservers' cursor: a read at the offset where the last one
    /// ended continues from there; any other offset rescans from the start.
    fn read_dir(&self, f: &mut FidInner, offset: u64, count: u32) -> Bytes {
        if count == 0 {
            return Bytes::new();
        }
        let st = self.catalog();
        let (mut pos, mut index) = f.extra().dir;
        if pos != offset {
            (pos, index) = (0, 0);
        }
        let mut room = count as usize;
        let mut out = bytes::BytesMut::new();
        for node in f.node.dir_entries(&st).skip(index) {
            let Some(d) = node.stat(&st) else { continue };
            let size = crate::styx::codec::stat_len(&d);
            pos += size as u64;
            index += 1;
            if pos < offset {
                continue;
            }
            if size > room {
                pos -= size as u64;
                index -= 1;
                break;
            }
            let mark = out.len();
            if crate::styx::codec::encode_stat(&d, &mut out).is_err() {
                out.truncate(mark);
            }
            room -= size;
        }
        f.extra().dir = (pos, index);
        out.freeze()
    }

    /// A read of the feed's `watch` file: what is pending, else the next records once there
    /// are some (the read is held until then; a Tflush ends it without losing any).
    async fn read_watch(&self, fid: &RegFid, count: u32) -> Result<Bytes, FsError> {
        let watcher = {
            let mut f = lock(&fid.inner);
            let w = f.extra().watch.as_mut().ok_or(FsError::from(ENOREQUEST))?;
            if !w.pending.is_empty() {
                return Ok(take(&mut w.pending, count));
            }
            w.watcher.clone()
        };
        let text = watcher.next_text().await.map_err(FsError::from)?;
        let mut f = lock(&fid.inner);
        let w = f.extra().watch.as_mut().ok_or(FsError::from(ENOREQUEST))?;
        w.pending = if w.pending.is_empty() {
            Bytes::from(text)
        } else {
            // A concurrent read left text pending: keep the order.
            let mut all = bytes::BytesMut::from(&w.pending[..]);
            all.extend_from_slice(text.as_bytes());
            all.freeze()
        };
        Ok(take(&mut w.pending, count))
    }

    /// A write to the feed's `watch` file: the request that starts the watcher.
    fn write_watch(&self, f: &mut FidInner, text: &str) -> Result<(), FsError> {
        if f.extra().watch.is_some() {
            return Err(ESTARTED.into());
        }
        let req = wire::FeedRequest::parse(text).map_err(err)?;
        let (id, watcher, first) = self.catalog().watch(&req).map_err(FsError::from)?;
        f.extra().watch = Some(WatchFid {
            id,
            watcher,
            pending: Bytes::from(first),
        });
        Ok(())
    }

    async fn read_event(&self, fid: &RegFid, count: u32) -> Result<Bytes, FsError> {
        let (seen, mut rx) = {
            let mut f = lock(&fid.inner);
            let ev = f.extra().event.as_mut().ok_or(FsError::from(EGREG))?;
            if ev.pending {
                return Err(ECONCURRENT.into());
            }
            ev.pending = true;
            (ev.seen, ev.rx.clone())
        };
        let _guard = PendingGuard(fid);
        let _waiting = crate::metrics::WaitingRead::new("event");
        let changed = rx.wait_for(|v| *v != seen).await.map(|v| *v);
        let Ok(vers) = changed else {
            return std::future::pending().await;
        };
        let open = match lock(&fid.inner).extra().event.as_mut() {
            Some(ev) if !ev.closed => {
                ev.seen = vers;
                true
            }
            _ => false,
        };
        if !open {
            return std::future::pending().await;
        }
        let s = wire::format_event(u64::from(vers));
        Ok(slice(&Bytes::from(s), 0, count))
    }
}

impl FileSystem for RegistryFs {
    type Fid = RegFid;

    async fn attach(
        &self,
        ctx: &ConnCtx,
        uname: &str,
        aname: &str,
    ) -> Result<(RegFid, Qid), FsError> {
        let root = if self.feed.load(Ordering::Relaxed) && aname == FEED_ANAME {
            Node::FeedRoot
        } else {
            Node::Root
        };
        tracing::info!("registry: {}: attached as {uname} ({root:?})", ctx.peer);
        let qid = root
            .stat(&self.catalog())
            .map(|d| d.qid)
            .unwrap_or_default();
        Ok((self.fid(ArcStr::from(uname), root), qid))
    }

    async fn walk(&self, fid: &RegFid, name: &str) -> Result<(RegFid, Qid), FsError> {
        self.walk1(fid, name)
    }

    fn clone_fid(&self, fid: &RegFid) -> RegFid {
        let node = lock(&fid.inner).node;
        self.fid(fid.uname.clone(), node)
    }

    async fn open(&self, fid: &RegFid, mode: u8) -> Result<Opened, FsError> {
        self.open1(fid, mode)
    }

    async fn read(&self, fid: &RegFid, offset: u64, count: u32) -> Result<Bytes, FsError> {
        if offset > i64::MAX as u64 {
            return Err(errors::EOFFSET.into());
        }
        let node = lock(&fid.inner).node;
        match node {
            Node::Event => return self.read_event(fid, count).await,
            Node::FeedWatch => return self.read_watch(fid, count).await,
            _ => {}
        }
        let mut f = lock(&fid.inner);
        let node = f.node;
        if let Node::Root | Node::FeedRoot = node {
            return Ok(self.read_dir(&mut f, offset, count));
        }
        let x = f.extra();
        let fresh = x.data.is_empty() || offset == 0;
        match node {
            Node::Index | Node::Find => {
                if fresh {
                    x.data = self.catalog().find_answer(&x.filter);
                }
                Ok(slice(&x.data, offset, count))
            }
            Node::Svc(id) => {
                if fresh {
                    let mut st = self.catalog();
                    st.touch(id, now());
                    x.data = Bytes::from(st.format_service(id));
                }
                Ok(slice(&x.data, offset, count))
            }
            // The directories were read above.
            Node::Root | Node::FeedRoot | Node::Event | Node::New | Node::FeedWatch => {
                Err(EGREG.into())
            }
        }
    }

    async fn write(&self, fid: &RegFid, offset: u64, data: Bytes) -> Result<u32, FsError> {
        if offset > i64::MAX as u64 {
            return Err(errors::EOFFSET.into());
        }
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let s = String::from_utf8_lossy(&data);
        let node = lock(&fid.inner).node;
        if let Node::Svc(id) = node {
            // Offsets are ignored: a client updates at the offset its registration left.
            self.write_service(id, &s).await.map_err(err)?;
            return Ok(len);
        }
        let mut f = lock(&fid.inner);
        match f.node {
            Node::Svc(_) => return Err(EGREG.into()),
            Node::Find => {
                f.extra().filter = wire::parse_pairs(&s).map_err(err)?;
            }
            Node::FeedWatch => self.write_watch(&mut f, &s)?,
            Node::Root | Node::FeedRoot => return Err(errors::EPERM.into()),
            _ => return Err(EGREG.into()),
        }
        Ok(len)
    }

    async fn stat(&self, fid: &RegFid) -> Result<Stat, FsError> {
        let node = lock(&fid.inner).node;
        node.stat(&self.catalog())
            .ok_or(FsError::from(errors::ENOTFOUND))
    }

    async fn remove(&self, fid: &RegFid) -> Result<(), FsError> {
        let node = lock(&fid.inner).node;
        match node {
            Node::Root => Err(errors::EPERM.into()),
            Node::Svc(id) => self.remove_service(id, &fid.uname).await.map_err(err),
            _ => Err(errors::EPERM.into()),
        }
    }

    async fn remove_on_close(&self, _fid: &RegFid) {
        // ORCLOSE is handled in clunk, as Inferno does: it removes only the service of the fid
        // that created it, whoever else opened a service file with ORCLOSE.
    }

    async fn clunk(&self, fid: &RegFid) {
        let (node, mode) = {
            let f = lock(&fid.inner);
            (f.node, f.mode)
        };
        if let Node::Svc(id) = node {
            let orclose = mode.is_some_and(|m| m & ORCLOSE != 0);
            self.release_service(id, fid.token, orclose).await;
        }
        let mut f = lock(&fid.inner);
        match f.node {
            Node::Svc(_) => {}
            Node::Event => {
                if let Some(ev) = f.extra.as_mut().and_then(|x| x.event.as_mut()) {
                    ev.closed = true;
                }
            }
            Node::FeedWatch => {
                if let Some(w) = f.extra.as_mut().and_then(|x| x.watch.take()) {
                    self.catalog().unwatch(w.id);
                }
            }
            _ => {}
        }
        if let Some(x) = f.extra.as_mut() {
            x.filter.clear();
            x.data = Bytes::new();
        }
    }
}
