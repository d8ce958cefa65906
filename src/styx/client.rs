//! A multiplexed 9P2000 client over any async byte stream.
//!
//! The connection's logic (tags, fids, the pending table, flushes) is the pure
//! [`ClientCore`]; this module is its tokio adapter. One reader task feeds it replies, one
//! writer task batches the requests it emits onto the stream. Requests are futures: dropping
//! one before its reply sends Tflush, and its tag stays reserved until the Rflush (flush(5)).
//! Connection loss fails every pending request.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot};

pub(crate) use super::client_core::Cleanup;
use super::client_core::{Cancel, ClientCore, Event, RequestId, negotiate, version_request};
use super::codec::{check_size, decode_frame};
use super::error::{Error, Result};
use super::fid::Fid;
use super::msg::{Body, IOHDRSZ, Msg, NOFID};

/// The msize we ask for unless told otherwise: Inferno's 8192 + IOHDRSZ.
pub const DEFAULT_MSIZE: u32 = 8192 + IOHDRSZ;

/// A 9P2000 client connection. Cheap to clone; usable from many tasks at once.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("msize", &self.inner.msize)
            .finish()
    }
}

pub(crate) struct Inner {
    /// The connection's logic; every change to it happens under this lock, and what it
    /// queues is sent and delivered before the lock is released (see [`Inner::drain`]).
    core: Mutex<ClientCore<Waiter>>,
    tx: mpsc::UnboundedSender<Bytes>,
    pub(crate) msize: u32,
    /// How many replies the reader handed over at once last time: the writer's hint that the
    /// tasks they woke may be about to send (see `write_loop`).
    burst: Arc<AtomicUsize>,
    /// When the connection was made; [`Inner::heard`] counts from it.
    born: std::time::Instant,
    /// Milliseconds from `born` to the last message from the server.
    heard: AtomicU64,
    /// Ends the connection from our side ([`Client::hang_up`]): the reader stops, and every
    /// request fails with the reason it was given.
    hangup: Arc<HangUp>,
}

/// A request to end the connection, with its reason.
#[derive(Default)]
struct HangUp {
    notify: tokio::sync::Notify,
    why: Mutex<Option<String>>,
}

/// Where a request's reply goes.
type Waiter = oneshot::Sender<Result<Body>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Client {
    /// Negotiates 9P2000 on `stream` with [`DEFAULT_MSIZE`] and starts the connection's tasks.
    pub async fn connect<S>(stream: S) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        Client::connect_with_msize(stream, DEFAULT_MSIZE).await
    }

    /// Negotiates 9P2000 on `stream` asking for `msize`; the server may lower it.
    pub async fn connect_with_msize<S>(mut stream: S, msize: u32) -> Result<Client>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        stream.write_all(&version_request(msize)?).await?;
        stream.flush().await?;
        let reply = read_frame(&mut stream, msize).await?;
        let msize = negotiate(msize, Msg::decode(reply, msize)?.body)?;
        let (rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let burst = Arc::new(AtomicUsize::new(0));
        let hangup = Arc::new(HangUp::default());
        let inner = Arc::new(Inner {
            core: Mutex::new(ClientCore::new(msize)),
            tx,
            msize,
            burst: burst.clone(),
            born: std::time::Instant::now(),
            heard: AtomicU64::new(0),
            hangup: hangup.clone(),
        });
        tokio::spawn(read_loop(Arc::downgrade(&inner), rd, msize, hangup));
        tokio::spawn(write_loop(Arc::downgrade(&inner), wr, rx, burst));
        Ok(Client { inner })
    }

    /// The negotiated message size.
    pub fn msize(&self) -> u32 {
        self.inner.msize
    }

    /// Attaches as `uname` to tree `aname` (no authentication): the root's fid.
    pub async fn attach(&self, uname: &str, aname: &str) -> Result<Fid> {
        let fid = self.inner.alloc_fid()?;
        let body = Body::Tattach {
            fid,
            afid: NOFID,
            uname: uname.into(),
            aname: aname.into(),
        };
        match self.inner.rpc(body, Cleanup::NewFid(fid)).await {
            Ok(Body::Rattach { qid }) => Ok(Fid::new(self.clone(), fid, qid)),
            Ok(other) => {
                self.inner.free_fid(fid);
                Err(Error::Unexpected(other.name()))
            }
            Err(e) => {
                self.inner.free_fid(fid);
                Err(e)
            }
        }
    }

    /// Sends one raw request and awaits its reply (Rerror becomes [`Error::Remote`]).
    /// For protocol tests; the caller manages any fids it names, which must not collide with
    /// the client's own (they are allocated upwards from 1).
    pub async fn request(&self, body: Body) -> Result<Body> {
        self.inner.rpc(body, Cleanup::None).await
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        lock(&self.inner.core).closed().is_some()
    }

    /// How long since the server last sent anything (or since the connection was made).
    pub fn silent_for(&self) -> std::time::Duration {
        let heard = std::time::Duration::from_millis(self.inner.heard.load(Ordering::Relaxed));
        self.inner.born.elapsed().saturating_sub(heard)
    }

    /// Ends the connection from this side: every request in flight and every later one fails
    /// with [`Error::Disconnected`] carrying `why`, and the stream is let go. For a server that
    /// has gone silent, which no read or write error would reveal for minutes.
    pub fn hang_up(&self, why: impl Into<String>) {
        let why = why.into();
        *lock(&self.inner.hangup.why) = Some(why.clone());
        self.inner.hangup.notify.notify_one();
        self.inner.fail_all(why);
    }
}

/// Reads one whole message, checking its size against `msize` before allocating it.
async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, msize: u32) -> Result<Bytes> {
    let mut head = [0u8; 4];
    rd.read_exact(&mut head).await?;
    let size = check_size(&head, msize)? as usize;
    let mut buf = BytesMut::zeroed(size);
    buf[..4].copy_from_slice(&head);
    rd.read_exact(&mut buf[4..]).await?;
    Ok(buf.freeze())
}

/// Reads replies as they come, decoding every whole message in each read and handing them to
/// the core under one lock: a burst of replies (an event waking many readers) costs one pass.
async fn read_loop<R: AsyncRead + Unpin>(
    inner: Weak<Inner>,
    mut rd: R,
    msize: u32,
    hangup: Arc<HangUp>,
) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut msgs = Vec::new();
    let why = 'read: loop {
        buf.reserve(16 * 1024);
        let read = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            () = hangup.notify.notified() => {
                break lock(&hangup.why).clone().unwrap_or_else(|| "hung up".to_string());
            }
        };
        match read {
            Ok(0) => break "connection closed by server".to_string(),
            Ok(_) => {}
            Err(e) => break e.to_string(),
        }
        loop {
            match decode_frame(&mut buf, msize) {
                Ok(Some(m)) => msgs.push(m),
                Ok(None) => break,
                Err(e) => break 'read format!("bad message from server: {e}"),
            }
        }
        let Some(inner) = inner.upgrade() else { return };
        inner.deliver(msgs.drain(..));
    };
    if let Some(inner) = inner.upgrade() {
        inner.deliver(msgs.drain(..));
        inner.fail_all(why);
    }
}

/// Writes requests in order, as many per write as are queued. When one burst of replies wakes
/// many waiting tasks (an event wakes every watcher), each sends its next request in turn; and
/// tokio runs the task just woken (this one) first. So after a burst, the writer yields once
/// before writing: the other woken tasks queue their requests, and all go out in one write
/// instead of one write each (this halved the client's CPU per change in `registry bench
/// --scenario fanout`). After a lone reply there is nobody else to wait for, and no yield.
async fn write_loop<W: AsyncWrite + Unpin>(
    inner: Weak<Inner>,
    wr: W,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    burst: Arc<AtomicUsize>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(first) = rx.recv().await {
        let mut r = w.write_all(&first).await;
        let mut yielded = burst.load(Ordering::Relaxed) <= 1;
        while r.is_ok() {
            match rx.try_recv() {
                Ok(b) => r = w.write_all(&b).await,
                Err(_) if !yielded => {
                    tokio::task::yield_now().await;
                    yielded = true;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = r.and(w.flush().await) {
            if let Some(inner) = inner.upgrade() {
                inner.fail_all(e.to_string());
            }
            return;
        }
    }
    // Every handle is gone: close our side so the server ends the connection.
    let _ = w.shutdown().await;
}

impl Inner {
    pub(crate) fn alloc_fid(&self) -> Result<u32> {
        lock(&self.core).alloc_fid()
    }

    pub(crate) fn free_fid(&self, fid: u32) {
        lock(&self.core).free_fid(fid);
    }

    /// Sends what the core queued and hands out its events. Called with the lock held, so
    /// that requests reach the writer in the core's order, and a reply is in its waiter's
    /// channel before anyone can try to cancel its request.
    fn drain(&self, core: &mut ClientCore<Waiter>) {
        while let Some(bytes) = core.poll_transmit() {
            if self.tx.send(bytes).is_err() {
                let why = "connection closed".to_string();
                for w in core.connection_lost(why.clone()) {
                    let _ = w.send(Err(Error::Disconnected(why.clone())));
                }
            }
        }
        while let Some(ev) = core.poll_event() {
            match ev {
                Event::Reply { waiter, result } => {
                    // The receiver cancels under this lock before going away, so it is here.
                    let _ = waiter.send(result);
                }
                Event::TagFreed(_) => {}
                Event::UnknownTag(tag) => {
                    tracing::debug!("styx client: reply with unknown tag {tag}");
                }
            }
        }
    }

    pub(crate) fn rpc(self: &Arc<Self>, body: Body, cleanup: Cleanup) -> Pending {
        let (tx, rx) = oneshot::channel();
        let started = {
            let mut core = lock(&self.core);
            let r = core.start_request(body, tx);
            self.drain(&mut core);
            r
        };
        match started {
            Ok(id) => Pending {
                inner: self.clone(),
                id: Some(id),
                rx: Some(rx),
                cleanup,
                error: None,
            },
            Err(e) => Pending {
                inner: self.clone(),
                id: None,
                rx: None,
                cleanup,
                error: Some(e),
            },
        }
    }

    /// Clunks `fid` without waiting; the fid number is reused only after the Rclunk.
    pub(crate) fn clunk_background(&self, fid: u32) {
        let mut core = lock(&self.core);
        core.clunk_background(fid);
        self.drain(&mut core);
    }

    fn deliver(&self, msgs: impl Iterator<Item = Msg>) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.heard.store(ms, Ordering::Relaxed);
        let mut core = lock(&self.core);
        let mut n = 0;
        for msg in msgs {
            core.handle_incoming(msg);
            n += 1;
        }
        self.burst.store(n, Ordering::Relaxed);
        self.drain(&mut core);
    }

    fn abandon(&self, id: RequestId, cleanup: Cleanup, rx: &mut oneshot::Receiver<Result<Body>>) {
        let mut core = lock(&self.core);
        if core.cancel(id, cleanup) == Cancel::NotOutstanding {
            // The reply arrived but nobody read it.
            if let Ok(r) = rx.try_recv() {
                core.reply_unread(cleanup, r.is_ok());
            }
        }
        self.drain(&mut core);
    }

    fn fail_all(&self, why: String) {
        let mut core = lock(&self.core);
        let waiters = core.connection_lost(why);
        let why = core.closed().unwrap_or("connection closed").to_string();
        for w in waiters {
            let _ = w.send(Err(Error::Disconnected(why.clone())));
        }
    }
}

/// A request in flight; dropping it before it completes flushes it.
pub(crate) struct Pending {
    inner: Arc<Inner>,
    /// None if the request never started (then `error` says why).
    id: Option<RequestId>,
    rx: Option<oneshot::Receiver<Result<Body>>>,
    cleanup: Cleanup,
    error: Option<Error>,
}

impl Future for Pending {
    type Output = Result<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<Body>> {
        if let Some(e) = self.error.take() {
            return Poll::Ready(Err(e));
        }
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(Err(Error::Disconnected("request already completed".into())));
        };
        match Pin::new(rx).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.rx = None;
                let why = || {
                    lock(&self.inner.core)
                        .closed()
                        .unwrap_or("connection closed")
                        .to_string()
                };
                Poll::Ready(r.unwrap_or_else(|_| Err(Error::Disconnected(why()))))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let (Some(mut rx), Some(id)) = (self.rx.take(), self.id) {
            self.inner.abandon(id, self.cleanup, &mut rx);
        }
    }
}
