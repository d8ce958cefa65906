//! The tokio adapter: one connection's reader, request loop, request tasks and writer.
//! The fid-level requests themselves are in `ops`.
//!
//! A reader task decodes messages; the request loop answers each request at once if it can
//! and otherwise spawns a task for it, so a blocked read does not hold up the others. Every
//! such task registers its tag in `inflight`; a task may only queue its reply while it is
//! still registered, and Tflush unregisters (and aborts) the flushed task before queueing the
//! Rflush. So a flushed request is never answered after its Rflush.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::AbortHandle;

use super::super::codec::check_size;
use super::super::msg::{Body, Msg, VERSION};
use super::error::errors::*;
use super::ops::FidEntry;
use super::{ConnCtx, FileSystem, FsError, Limits};

/// Accepts TCP connections on `listener` and serves `fs` on each, at most
/// `limits.max_connections` at once. Runs until accepting fails fatally.
pub async fn serve<F: FileSystem>(
    listener: TcpListener,
    fs: Arc<F>,
    limits: Limits,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return Ok(());
        };
        let (stream, addr) = match listener.accept().await {
            Ok(c) => c,
            Err(e) if is_transient(&e) => {
                // Out of descriptors and the like: wait instead of spinning.
                tracing::warn!("styx: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        let _ = stream.set_nodelay(true);
        let ctx = ConnCtx {
            authenticated_user: None,
            peer: format!("tcp!{}!{}", addr.ip(), addr.port()),
        };
        let (fs, limits) = (fs.clone(), limits.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, fs, ctx, limits).await {
                tracing::debug!("styx: connection ended: {e}");
            }
            drop(slot);
        });
    }
}

fn is_transient(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
    )
}

/// Serves `fs` on one connection until it ends (EOF, error, protocol botch, timeout).
/// When it returns, every fid the connection still held has had its clunk hook called.
pub async fn serve_connection<S, F>(
    stream: S,
    fs: Arc<F>,
    ctx: ConnCtx,
    limits: Limits,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    F: FileSystem,
{
    let (rd, wr) = tokio::io::split(stream);
    let (tx, rx) = mpsc::channel::<Bytes>(limits.max_outstanding.max(1) + 2);
    let (dead_tx, mut dead_rx) = tokio::sync::oneshot::channel::<io::Error>();
    let running = Arc::new(AtomicUsize::new(0));
    let writer = tokio::spawn(write_loop(wr, rx, dead_tx, running.clone()));
    let conn = Arc::new(Conn {
        running,
        fs,
        ctx,
        msize: AtomicU32::new(0),
        fids: Mutex::new(HashMap::new()),
        inflight: Mutex::new(HashMap::new()),
        slots: Arc::new(Semaphore::new(limits.max_outstanding.max(1))),
        tx,
        limits,
    });
    let (frames_tx, frames_rx) = mpsc::channel::<Msg>(1);
    let mut reader = tokio::spawn(read_frames(conn.clone(), rd, frames_tx));
    let mut guard = Cleanup {
        conn: Some(conn.clone()),
        tasks: vec![writer.abort_handle(), reader.abort_handle()],
    };
    let result = tokio::select! {
        r = request_loop(&conn, frames_rx) => r,
        e = &mut dead_rx => Err(e.unwrap_or_else(|_| io::Error::other("writer ended"))),
    };
    // The request loop ends Ok when the reader has stopped: its result says why.
    let result = match result {
        Ok(()) => match (&mut reader).await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e)),
        },
        Err(e) => Err(e),
    };
    reader.abort();
    conn.reset().await;
    guard.conn = None;
    let timeout = conn.limits.message_timeout;
    drop(conn);
    // The writer ends once every reply sender is gone; a peer that stopped reading gets cut.
    let mut writer = writer;
    if tokio::time::timeout(timeout, &mut writer).await.is_err() {
        writer.abort();
    }
    match result {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        r => r,
    }
}

/// If the connection's future is dropped midway (server shutdown), its tasks must not live on:
/// abort them, and still give every fid its clunk call.
struct Cleanup<F: FileSystem> {
    conn: Option<Arc<Conn<F>>>,
    tasks: Vec<AbortHandle>,
}

impl<F: FileSystem> Drop for Cleanup<F> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        for t in &self.tasks {
            t.abort();
        }
        let tasks: Vec<AbortHandle> = lock(&conn.inflight).drain().map(|(_, h)| h).collect();
        for t in tasks {
            t.abort();
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { conn.reset().await });
        }
    }
}

/// How many times the writer lets other tasks run before writing, while replies keep coming.
const MAX_YIELDS: usize = 16;

/// Writes replies in order. Each flush is one `sendto`, which costs more than producing a
/// small reply, so replies already queued go out together. When requests of this connection
/// are still running in tasks of their own (`running`), many of them are often woken at once
/// (an event wakes every watcher): the writer then yields so that they can queue their
/// replies first, and goes on yielding while that brings more. A connection whose requests
/// are all answered at once (the usual case) never yields, so a lone request is not delayed.
async fn write_loop<W: AsyncWrite + Unpin>(
    wr: W,
    mut rx: mpsc::Receiver<Bytes>,
    dead: tokio::sync::oneshot::Sender<io::Error>,
    running: Arc<AtomicUsize>,
) {
    let cap = 64 * 1024;
    let mut w = BufWriter::with_capacity(cap, wr);
    while let Some(first) = rx.recv().await {
        let mut r = w.write_all(&first).await;
        let mut yields = 0;
        while r.is_ok() {
            match rx.try_recv() {
                Ok(b) => r = w.write_all(&b).await,
                Err(_) => {
                    if yields >= MAX_YIELDS
                        || w.buffer().len() >= cap / 2
                        || running.load(Ordering::Acquire) == 0
                    {
                        break;
                    }
                    tokio::task::yield_now().await;
                    yields += 1;
                    match rx.try_recv() {
                        Ok(b) => r = w.write_all(&b).await,
                        // Nothing came meanwhile: no point in waiting longer.
                        Err(_) => break,
                    }
                }
            }
        }
        if let Err(e) = r.and(w.flush().await) {
            let _ = dead.send(e);
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// One connection's state, shared by its reader, request loop and request tasks.
pub(super) struct Conn<F: FileSystem> {
    pub(super) fs: Arc<F>,
    pub(super) ctx: ConnCtx,
    pub(super) limits: Limits,
    /// Negotiated msize; 0 before Tversion.
    msize: AtomicU32,
    pub(super) fids: Mutex<HashMap<u32, Arc<FidEntry<F::Fid>>>>,
    inflight: Mutex<HashMap<u16, AbortHandle>>,
    /// Requests running in tasks of their own (finished or aborted ones excluded): the writer
    /// batches replies while there are some.
    running: Arc<AtomicUsize>,
    slots: Arc<Semaphore>,
    tx: mpsc::Sender<Bytes>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn botch(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("9P protocol botch: {what}"),
    )
}

/// Reads messages into `out`, which holds one: sizes are checked against msize before a
/// message's buffer is allocated; the idle and half-sent timeouts apply here.
async fn read_frames<F: FileSystem, R: AsyncRead + Unpin>(
    conn: Arc<Conn<F>>,
    rd: R,
    out: mpsc::Sender<Msg>,
) -> io::Result<()> {
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    loop {
        let mut head = [0u8; 4];
        let idle = conn
            .limits
            .idle_timeout
            .filter(|_| lock(&conn.inflight).is_empty());
        match idle {
            Some(t) => tokio::time::timeout(t, rd.read_exact(&mut head[..1]))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "idle timeout"))??,
            None => rd.read_exact(&mut head[..1]).await?,
        };
        let msize = match conn.msize.load(Ordering::Acquire) {
            0 => conn.limits.msize,
            m => m,
        };
        let frame = tokio::time::timeout(conn.limits.message_timeout, async {
            rd.read_exact(&mut head[1..]).await?;
            let size = check_size(&head, msize).map_err(botch)? as usize;
            let mut buf = BytesMut::zeroed(size);
            buf[..4].copy_from_slice(&head);
            rd.read_exact(&mut buf[4..]).await?;
            Ok::<_, io::Error>(buf.freeze())
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "half-sent message timed out"))??;
        let msg = Msg::decode(frame, msize).map_err(botch)?;
        if out.send(msg).await.is_err() {
            return Ok(());
        }
    }
}

/// Starts requests as slots free up. At `max_outstanding` running requests, up to as many
/// more wait in `queue` while reading goes on, so that a Tflush still gets through; beyond
/// that, reading stops (backpressure).
async fn request_loop<F: FileSystem>(
    conn: &Arc<Conn<F>>,
    mut frames: mpsc::Receiver<Msg>,
) -> io::Result<()> {
    let mut queue: VecDeque<Msg> = VecDeque::new();
    let max = conn.limits.max_outstanding.max(1);
    loop {
        tokio::select! {
            biased;
            slot = conn.slots.clone().acquire_owned(), if !queue.is_empty() => {
                let slot = slot.map_err(io::Error::other)?;
                if let Some(Msg { tag, body }) = queue.pop_front() {
                    conn.start(tag, body, slot).await?;
                }
            }
            m = frames.recv(), if queue.len() < max => match m {
                Some(m) => conn.dispatch(m, &mut queue).await?,
                None => return Ok(()),
            },
        }
    }
}

impl<F: FileSystem> Conn<F> {
    pub(super) fn msize(&self) -> u32 {
        self.msize.load(Ordering::Acquire)
    }

    /// Encodes a reply, replacing one that does not fit msize by an Rerror.
    fn encode(&self, tag: u16, body: Body) -> Bytes {
        let msize = match self.msize() {
            0 => self.limits.msize,
            m => m,
        } as usize;
        let reply = Msg { tag, body };
        match reply.to_bytes() {
            Ok(b) if b.len() <= msize => b,
            _ => {
                let ename = "Styx reply didn't fit".to_string();
                Msg {
                    tag,
                    body: Body::Rerror { ename },
                }
                .to_bytes()
                .unwrap_or_default()
            }
        }
    }

    async fn send(&self, tag: u16, body: Body) -> io::Result<()> {
        let b = self.encode(tag, body);
        self.tx
            .send(b)
            .await
            .map_err(|_| io::Error::other("connection closed"))
    }

    async fn dispatch(self: &Arc<Self>, msg: Msg, queue: &mut VecDeque<Msg>) -> io::Result<()> {
        let Msg { tag, body } = msg;
        let error = |e: &str| Body::Rerror { ename: e.into() };
        match body {
            Body::Tversion { msize, version } => {
                queue.clear();
                return self.version(tag, msize, version).await;
            }
            _ if self.msize() == 0 => return self.send(tag, error(ENOVERSION)).await,
            Body::Tflush { oldtag } => {
                if let Some(i) = queue.iter().position(|m| m.tag == oldtag) {
                    queue.remove(i);
                } else if let Some(h) = lock(&self.inflight).remove(&oldtag) {
                    h.abort();
                }
                return self.send(tag, Body::Rflush).await;
            }
            Body::Tauth { .. } => return self.send(tag, error(ENOAUTH)).await,
            ref b if b.type_id() % 2 == 1 => {
                return Err(botch(format_args!("{} from client", b.name())));
            }
            _ => {}
        }
        if lock(&self.inflight).contains_key(&tag) || queue.iter().any(|m| m.tag == tag) {
            return self.send(tag, error(EDUPTAG)).await;
        }
        match self.slots.clone().try_acquire_owned() {
            Ok(slot) if queue.is_empty() => self.start(tag, body, slot).await,
            _ => {
                queue.push_back(Msg { tag, body });
                Ok(())
            }
        }
    }

    /// Runs one request. Most finish at once: those are answered here, saving a task. The
    /// others go on in a task of their own, registered under their tag for Tflush.
    async fn start(
        self: &Arc<Self>,
        tag: u16,
        body: Body,
        slot: OwnedSemaphorePermit,
    ) -> io::Result<()> {
        let conn = self.clone();
        let mut work = Box::pin(async move { conn.handle(body).await });
        if let Poll::Ready(r) = futures_util::poll!(&mut work) {
            let sent = self.send(tag, reply_body(r)).await;
            drop(slot);
            return sent;
        }
        let mut inflight = lock(&self.inflight);
        let conn = self.clone();
        let running = Running::new(&self.running);
        // The task needs the inflight lock to reply, so it cannot finish before it is
        // registered.
        let handle = tokio::spawn(async move {
            let r = work.await;
            // Done: the writer need not wait for this one any more.
            drop(running);
            conn.finish(tag, reply_body(r), slot).await
        });
        inflight.insert(tag, handle.abort_handle());
        Ok(())
    }

    /// Queues the reply of a request that ran in its own task, unless it was flushed.
    async fn finish(&self, tag: u16, reply: Body, slot: OwnedSemaphorePermit) {
        let bytes = self.encode(tag, reply);
        let Ok(permit) = self.tx.reserve().await else {
            return;
        };
        let mut inflight = lock(&self.inflight);
        // Flushed meanwhile: the client has been (or will be) told Rflush; stay silent.
        if inflight.remove(&tag).is_some() {
            permit.send(bytes);
        }
        drop(inflight);
        drop(slot);
    }

    async fn version(&self, tag: u16, msize: u32, version: String) -> io::Result<()> {
        // A new Tversion aborts everything and clunks every fid of the old session.
        self.reset().await;
        if msize < 256 {
            return self
                .send(
                    tag,
                    Body::Rerror {
                        ename: EMSIZE.into(),
                    },
                )
                .await;
        }
        let ok = version == VERSION || version.starts_with("9P2000.");
        let msize = msize.min(self.limits.msize);
        let version = if ok { VERSION } else { "unknown" }.to_string();
        if ok {
            self.msize.store(msize, Ordering::Release);
        }
        self.send(tag, Body::Rversion { msize, version }).await
    }

    /// Aborts all requests and clunks all fids (connection end or Tversion).
    async fn reset(&self) {
        let tasks: Vec<AbortHandle> = lock(&self.inflight).drain().map(|(_, h)| h).collect();
        for t in tasks {
            t.abort();
        }
        let fids: Vec<_> = lock(&self.fids).drain().map(|(_, e)| e).collect();
        for e in fids {
            self.clunk_entry(e).await;
        }
    }
}

/// Counts one request task in `Conn::running` until its work is done or it is aborted.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn new(count: &Arc<AtomicUsize>) -> Running {
        count.fetch_add(1, Ordering::AcqRel);
        Running(count.clone())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn reply_body(r: Result<Body, FsError>) -> Body {
    r.unwrap_or_else(|e| Body::Rerror {
        ename: e.0.into_owned(),
    })
}
