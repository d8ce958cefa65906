//! A multiplexed 9P2000 client over any async byte stream.
//!
//! One reader task routes replies to pending requests by tag, one writer task batches requests
//! onto the stream. Requests are futures: dropping one before its reply sends Tflush, and its
//! tag stays reserved until the Rflush (flush(5)). Connection loss fails every pending request.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::{mpsc, oneshot};

use super::codec::check_size;
use super::error::{Error, Result};
use super::fid::Fid;
use super::msg::{Body, IOHDRSZ, Msg, NOFID, NOTAG, VERSION};

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
    state: Mutex<State>,
    tx: mpsc::UnboundedSender<Bytes>,
    pub(crate) msize: u32,
}

struct State {
    pending: HashMap<u16, Slot>,
    next_tag: u16,
    next_fid: u32,
    free_fids: Vec<u32>,
    /// Why the connection is gone, once it is.
    closed: Option<String>,
}

/// What to undo if a request is abandoned (its future dropped) before its reply.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Cleanup {
    /// Nothing.
    None,
    /// The request (walk, attach) would establish this fid: clunk it if it did.
    NewFid(u32),
    /// The request (clunk, remove) ends this fid: clunk it if it never reached the server.
    EndsFid(u32),
}

enum Slot {
    /// A caller awaits the reply.
    Waiting(oneshot::Sender<Result<Body>>),
    /// The caller went away and a Tflush is out; the tag is reserved until the Rflush.
    Abandoned { cleanup: Cleanup, replied: bool },
    /// A Tflush for `oldtag`.
    Flush { oldtag: u16 },
    /// A request nobody waits for (clunk on drop); frees the fid on reply.
    Background { free_fid: u32 },
}

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
        let tversion = Msg {
            tag: NOTAG,
            body: Body::Tversion {
                msize,
                version: VERSION.into(),
            },
        };
        stream.write_all(&tversion.to_bytes()?).await?;
        stream.flush().await?;
        let reply = read_frame(&mut stream, msize).await?;
        let msize = match Msg::decode(reply, msize)?.body {
            Body::Rversion { msize: m, version } if version == VERSION => m.min(msize),
            Body::Rversion { version, .. } => return Err(Error::Version(version)),
            Body::Rerror { ename } => return Err(Error::Remote(ename)),
            other => return Err(Error::Unexpected(other.name())),
        };
        if msize <= IOHDRSZ {
            return Err(Error::Version(format!("msize {msize}")));
        }
        let (rd, wr) = tokio::io::split(stream);
        let (tx, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                pending: HashMap::new(),
                next_tag: 0,
                next_fid: 1,
                free_fids: Vec::new(),
                closed: None,
            }),
            tx,
            msize,
        });
        tokio::spawn(read_loop(Arc::downgrade(&inner), rd, msize));
        tokio::spawn(write_loop(Arc::downgrade(&inner), wr, rx));
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
        lock(&self.inner.state).closed.is_some()
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

async fn read_loop<R: AsyncRead + Unpin>(inner: Weak<Inner>, rd: R, msize: u32) {
    let mut rd = BufReader::with_capacity(16 * 1024, rd);
    let why = loop {
        let frame = match read_frame(&mut rd, msize).await {
            Ok(f) => f,
            Err(e) => break e.to_string(),
        };
        let msg = match Msg::decode(frame, msize) {
            Ok(m) => m,
            Err(e) => break format!("bad message from server: {e}"),
        };
        let Some(inner) = inner.upgrade() else { return };
        inner.deliver(msg);
    };
    if let Some(inner) = inner.upgrade() {
        inner.fail_all(why);
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    inner: Weak<Inner>,
    wr: W,
    mut rx: mpsc::UnboundedReceiver<Bytes>,
) {
    let mut w = BufWriter::with_capacity(64 * 1024, wr);
    while let Some(first) = rx.recv().await {
        let mut r = w.write_all(&first).await;
        while r.is_ok() {
            match rx.try_recv() {
                Ok(b) => r = w.write_all(&b).await,
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
        let mut st = lock(&self.state);
        if let Some(f) = st.free_fids.pop() {
            return Ok(f);
        }
        if st.next_fid == NOFID {
            return Err(Error::Io("out of fids".into()));
        }
        st.next_fid += 1;
        Ok(st.next_fid - 1)
    }

    pub(crate) fn free_fid(&self, fid: u32) {
        lock(&self.state).free_fids.push(fid);
    }

    fn alloc_tag(st: &mut State) -> Result<u16> {
        for _ in 0..=u16::MAX {
            let t = st.next_tag;
            st.next_tag = st.next_tag.wrapping_add(1);
            if t != NOTAG && !st.pending.contains_key(&t) {
                return Ok(t);
            }
        }
        Err(Error::NoTags)
    }

    /// Allocates a tag, registers `slot` under it and queues the request.
    fn start(&self, st: &mut State, body: Body, slot: Slot) -> Result<u16> {
        if let Some(why) = &st.closed {
            return Err(Error::Disconnected(why.clone()));
        }
        let tag = Inner::alloc_tag(st)?;
        let bytes = Msg { tag, body }.to_bytes()?;
        if bytes.len() > self.msize as usize {
            return Err(Error::TooBig(bytes.len()));
        }
        st.pending.insert(tag, slot);
        if self.tx.send(bytes).is_err() {
            st.pending.remove(&tag);
            return Err(Error::Disconnected("connection closed".into()));
        }
        Ok(tag)
    }

    pub(crate) fn rpc(self: &Arc<Self>, body: Body, cleanup: Cleanup) -> Pending {
        let (tx, rx) = oneshot::channel();
        let started = self.start(&mut lock(&self.state), body, Slot::Waiting(tx));
        match started {
            Ok(tag) => Pending {
                inner: self.clone(),
                tag,
                rx: Some(rx),
                cleanup,
                error: None,
            },
            Err(e) => Pending {
                inner: self.clone(),
                tag: 0,
                rx: None,
                cleanup,
                error: Some(e),
            },
        }
    }

    /// Clunks `fid` without waiting; the fid number is reused only after the Rclunk.
    pub(crate) fn clunk_background(&self, fid: u32) {
        let mut st = lock(&self.state);
        let _ = self.start(
            &mut st,
            Body::Tclunk { fid },
            Slot::Background { free_fid: fid },
        );
    }

    fn deliver(&self, msg: Msg) {
        let mut st = lock(&self.state);
        let Some(slot) = st.pending.remove(&msg.tag) else {
            tracing::debug!("styx client: reply with unknown tag {}", msg.tag);
            return;
        };
        match slot {
            Slot::Waiting(tx) => {
                let r = match msg.body {
                    Body::Rerror { ename } => Err(Error::Remote(ename)),
                    b => Ok(b),
                };
                let _ = tx.send(r);
            }
            Slot::Abandoned { cleanup, .. } => {
                // The reply beat the Rflush: the request took effect; the tag stays reserved.
                st.pending.insert(
                    msg.tag,
                    Slot::Abandoned {
                        cleanup: Cleanup::None,
                        replied: true,
                    },
                );
                let ok = !matches!(msg.body, Body::Rerror { .. });
                self.after_reply(&mut st, cleanup, ok);
            }
            Slot::Flush { oldtag } => {
                if let Some(Slot::Abandoned {
                    cleanup,
                    replied: false,
                }) = st.pending.remove(&oldtag)
                {
                    self.never_done(&mut st, cleanup);
                }
            }
            Slot::Background { free_fid } => st.free_fids.push(free_fid),
        }
    }

    /// An abandoned request was answered (`ok`: not Rerror): undo what it did.
    fn after_reply(&self, st: &mut State, cleanup: Cleanup, ok: bool) {
        match cleanup {
            Cleanup::None => {}
            Cleanup::NewFid(fid) if ok => {
                let _ = self.start(st, Body::Tclunk { fid }, Slot::Background { free_fid: fid });
            }
            Cleanup::NewFid(fid) | Cleanup::EndsFid(fid) => st.free_fids.push(fid),
        }
    }

    /// An abandoned request was flushed before the server acted on it.
    fn never_done(&self, st: &mut State, cleanup: Cleanup) {
        match cleanup {
            Cleanup::None => {}
            Cleanup::NewFid(fid) => st.free_fids.push(fid),
            Cleanup::EndsFid(fid) => {
                let _ = self.start(st, Body::Tclunk { fid }, Slot::Background { free_fid: fid });
            }
        }
    }

    fn abandon(&self, tag: u16, cleanup: Cleanup, rx: &mut oneshot::Receiver<Result<Body>>) {
        let mut st = lock(&self.state);
        if matches!(st.pending.get(&tag), Some(Slot::Waiting(_))) {
            st.pending.insert(
                tag,
                Slot::Abandoned {
                    cleanup,
                    replied: false,
                },
            );
            if self
                .start(
                    &mut st,
                    Body::Tflush { oldtag: tag },
                    Slot::Flush { oldtag: tag },
                )
                .is_err()
            {
                // No flush possible (no tags, closed): free nothing, keep the tag reserved.
                tracing::debug!("styx client: could not flush tag {tag}");
            }
            return;
        }
        // The reply arrived but nobody read it.
        if let Ok(r) = rx.try_recv() {
            self.after_reply(&mut st, cleanup, r.is_ok());
        }
    }

    fn fail_all(&self, why: String) {
        let mut st = lock(&self.state);
        if st.closed.is_none() {
            st.closed = Some(why.clone());
        }
        for (_, slot) in st.pending.drain() {
            if let Slot::Waiting(tx) = slot {
                let _ = tx.send(Err(Error::Disconnected(why.clone())));
            }
        }
    }
}

/// A request in flight; dropping it before it completes flushes it.
pub(crate) struct Pending {
    inner: Arc<Inner>,
    tag: u16,
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
                    lock(&self.inner.state)
                        .closed
                        .clone()
                        .unwrap_or_else(|| "connection closed".into())
                };
                Poll::Ready(r.unwrap_or_else(|_| Err(Error::Disconnected(why()))))
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut rx) = self.rx.take() {
            self.inner.abandon(self.tag, self.cleanup, &mut rx);
        }
    }
}
