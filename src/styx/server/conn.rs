//! The tokio adapter around [`ServerCore`]: one task per connection reads, runs requests and
//! writes. The fid-level requests themselves are in `ops`.
//!
//! The task reads whatever the socket has into the core, starts the requests the core hands
//! out, polls the ones that were woken (see `tasks`), and writes all replies queued by then
//! in one go. A request that waits (a held `event` read) costs a boxed future and a slot, not
//! a task; when a registry change wakes thousands of them, each connection is scheduled once
//! and answers all of its own in one write.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Buf;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, Sleep};

use super::conn_core::{Action, ServerCore};
use super::ops::FidEntry;
use super::tasks::{Tasks, Work};
use super::{ConnCtx, FileSystem, FsError, Limits};
use crate::styx::Body;

/// Most room made in the input buffer before a read: the room starts at
/// [`super::conn_core::FIRST_BUFFER`] and doubles after each read that fills it.
const READ_CHUNK: usize = 16 * 1024;

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
    let core = ServerCore::new(limits.msize, limits.max_outstanding);
    let conn = Arc::new(Conn {
        fs,
        ctx,
        limits,
        msize: AtomicU32::new(0),
        fids: Mutex::new(HashMap::new()),
        owed: Mutex::new(Vec::new()),
        fid_cap_logged: std::sync::atomic::AtomicBool::new(false),
    });
    let mut guard = Cleanup(Some(conn.clone()));
    let mut driver = Driver {
        stream,
        core,
        conn: conn.clone(),
        tasks: Tasks::default(),
        resetting: None,
        unflushed: false,
        clock: Clock::new(),
        timer: Box::pin(tokio::time::sleep_until(Instant::now())),
        refusals_logged: false,
        read_room: super::conn_core::FIRST_BUFFER,
    };
    let result = poll_fn(|cx| driver.poll(cx)).await;
    // The requests go first (their futures are dropped), then every fid is clunked, those a
    // Tversion's unfinished reset still owes included. What runs once the connection has ended
    // is boxed, so that a connection does not carry its room for the whole of its life.
    driver.tasks.clear();
    driver.resetting = None;
    Box::pin(conn.reset()).await;
    guard.0 = None;
    // Replies already queued still go out, unless the peer has stopped reading.
    let timeout = conn.limits.message_timeout;
    let _ = Box::pin(tokio::time::timeout(timeout, async {
        poll_fn(|cx| driver.poll_write_out(cx).map_ok(|_| ())).await?;
        driver.stream.shutdown().await
    }))
    .await;
    match result {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(()),
        r => r,
    }
}

/// If the connection's future is dropped midway (server shutdown), its requests are dropped
/// with it; every fid must still get its clunk call.
struct Cleanup<F: FileSystem>(Option<Arc<Conn<F>>>);

impl<F: FileSystem> Drop for Cleanup<F> {
    fn drop(&mut self) {
        let Some(conn) = self.0.take() else { return };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { conn.reset().await });
        }
    }
}

/// One connection's I/O around its [`ServerCore`].
struct Driver<S, F: FileSystem> {
    stream: S,
    core: ServerCore,
    conn: Arc<Conn<F>>,
    tasks: Tasks,
    /// A Tversion's clunk of every fid, while it runs.
    resetting: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// Written since the last flush of the stream.
    unflushed: bool,
    clock: Clock,
    timer: Pin<Box<Sleep>>,
    /// Room to make in the input buffer before the next read.
    read_room: usize,
    /// Requests were refused for want of room and the log said so (once per connection).
    refusals_logged: bool,
}

/// When the three timeouts of [`Limits`] started counting.
struct Clock {
    /// Last time a request arrived or finished (the idle timeout).
    active: Instant,
    /// Since when part of a message has waited for the rest (the message timeout), with the
    /// count of messages decoded then: a message decoded since restarts the count.
    partial: Option<(Instant, u64)>,
    /// Since when the peer has not taken our replies.
    blocked: Option<Instant>,
    /// When the connection began (the handshake timeout).
    started: Instant,
    /// Whether it has attached (held a fid) yet.
    attached: bool,
}

impl Clock {
    fn new() -> Clock {
        let now = Instant::now();
        Clock {
            active: now,
            partial: None,
            blocked: None,
            started: now,
            attached: false,
        }
    }
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, what.to_string())
}

impl<S: AsyncRead + AsyncWrite + Unpin, F: FileSystem> Driver<S, F> {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut progress = self.poll_reset(cx);
            if self.resetting.is_none() {
                progress |= self.run_actions()?;
            }
            let (core, peer) = (&mut self.core, &self.conn.ctx.peer);
            let done = |tag, r: Result<_, _>| {
                log_reply(peer, tag, &r);
                core.complete(tag, r);
            };
            if self.tasks.poll_ready(cx, done) {
                progress = true;
            }
            if self.core.wants_input() {
                let input = self.core.input();
                input.reserve(self.read_room);
                let room = input.capacity() - input.len();
                match tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, input) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Ok(())),
                    Poll::Ready(Ok(n)) => {
                        if n == room {
                            self.read_room = (self.read_room * 2).min(READ_CHUNK);
                        }
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
            match self.poll_write_out(cx) {
                Poll::Ready(Ok(wrote)) => progress |= wrote,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
            if !progress {
                self.core.release_idle_buffers();
                return self.poll_timeouts(cx);
            }
            self.clock.active = Instant::now();
        }
    }

    /// Runs a Tversion's reset to its end; true if it ended now.
    fn poll_reset(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(reset) = self.resetting.as_mut() else {
            return false;
        };
        if reset.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.resetting = None;
        self.core.finish_version();
        self.conn.msize.store(self.core.msize(), Ordering::Release);
        true
    }

    /// Carries out what the core asks for; true if it asked anything.
    fn run_actions(&mut self) -> io::Result<bool> {
        let mut any = false;
        let refused = self.core.take_refused();
        if refused > 0 {
            crate::metrics::limit_hits("9p_outstanding", refused);
            // Once a connection at warn level, then at debug: a flood must not flood the log.
            let first = !std::mem::replace(&mut self.refusals_logged, true);
            let (peer, max) = (&self.conn.ctx.peer, self.conn.limits.max_outstanding);
            if first {
                tracing::warn!(
                    "9p {peer}: {refused} requests refused: {max} running and as many waiting"
                );
            } else {
                tracing::debug!("9p {peer}: {refused} more requests refused");
            }
        }
        while let Some(action) = self
            .core
            .next_action()
            .map_err(|b| io::Error::new(io::ErrorKind::InvalidData, b.to_string()))?
        {
            any = true;
            match action {
                Action::Start { tag, body } => {
                    tracing::debug!("9p {}: <- tag {tag} {body:?}", self.conn.ctx.peer);
                    let conn = self.conn.clone();
                    let name = body.name();
                    let work = match body {
                        // A read may wait for a long time: its future is a read's alone.
                        Body::Tread { fid, offset, count } => {
                            timed(name, async move { conn.read(fid, offset, count).await })
                        }
                        body => timed(name, async move { conn.handle(body).await }),
                    };
                    if let Some((tag, r)) = self.tasks.start(tag, work) {
                        log_reply(&self.conn.ctx.peer, tag, &r);
                        self.core.complete(tag, r);
                    }
                }
                Action::Cancel { tag } => self.tasks.cancel(tag),
                Action::Reset => {
                    // A new Tversion aborts everything and clunks every fid of the old session.
                    self.tasks.clear();
                    let conn = self.conn.clone();
                    self.resetting = Some(Box::pin(async move { conn.reset().await }));
                    break;
                }
            }
        }
        Ok(any)
    }

    /// Writes queued replies until done or the peer stops taking them; Ok(true) if any went.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut wrote = false;
        loop {
            let out = self.core.output();
            if out.is_empty() {
                break;
            }
            match Pin::new(&mut self.stream).poll_write(cx, out) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    out.advance(n);
                    wrote = true;
                    self.unflushed = true;
                    self.clock.blocked = None;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.clock.blocked.get_or_insert_with(Instant::now);
                    return Poll::Pending;
                }
            }
        }
        if self.unflushed {
            match Pin::new(&mut self.stream).poll_flush(cx) {
                Poll::Ready(Ok(())) => self.unflushed = false,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(wrote))
    }

    /// Nothing more to do now: arms the timer for whichever timeout applies, and fails the
    /// connection if one has passed.
    fn poll_timeouts(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limits = &self.conn.limits;
        let now = Instant::now();
        let partial = self.core.wants_input() && self.core.in_message();
        let decoded = self.core.decoded();
        self.clock.partial = match self.clock.partial {
            Some((since, n)) if partial && n == decoded => Some((since, n)),
            _ if partial => Some((now, decoded)),
            _ => None,
        };
        let idle = self.core.is_idle() && self.resetting.is_none() && !partial;
        if !self.clock.attached && !lock(&self.conn.fids).is_empty() {
            self.clock.attached = true;
            if let Some(settled) = &self.conn.ctx.settled {
                settled.store(true, std::sync::atomic::Ordering::Release);
            }
        }
        let deadlines = [
            (
                limits
                    .handshake_timeout
                    .filter(|_| !self.clock.attached)
                    .map(|d| self.clock.started + d),
                ("no Tversion and Tattach in time", "9p_handshake_deadline"),
            ),
            (
                self.clock.partial.map(|(t, _)| t + limits.message_timeout),
                ("half-sent message timed out", "9p_message_deadline"),
            ),
            (
                self.clock.blocked.map(|t| t + limits.message_timeout),
                ("peer stopped reading replies", "9p_reader_stalled"),
            ),
            (
                limits
                    .idle_timeout
                    .filter(|_| idle)
                    .map(|d| self.clock.active + d),
                ("idle timeout", "9p_idle_timeout"),
            ),
        ];
        let Some((deadline, (what, limit))) = deadlines
            .into_iter()
            .filter_map(|(d, what)| d.map(|d| (d, what)))
            .min_by_key(|(d, _)| *d)
        else {
            return Poll::Pending;
        };
        if deadline > now {
            if self.timer.deadline() != deadline {
                self.timer.as_mut().reset(deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        crate::metrics::limit_hit(limit);
        Poll::Ready(Err(timed_out(what)))
    }
}

/// One connection's state shared with its running requests.
pub(super) struct Conn<F: FileSystem> {
    pub(super) fs: Arc<F>,
    pub(super) ctx: ConnCtx,
    pub(super) limits: Limits,
    /// Negotiated msize; 0 before Tversion.
    msize: AtomicU32,
    pub(super) fids: Mutex<HashMap<u32, Arc<FidEntry<F::Fid>>>>,
    /// Fids taken out of the table by a reset and not yet clunked: kept here rather than in the
    /// reset's future, so that a reset cut short (the connection's future dropped) leaves them
    /// to the next one.
    owed: Mutex<Vec<Arc<FidEntry<F::Fid>>>>,
    /// The fid cap was reached and said so in the log (once per connection).
    pub(super) fid_cap_logged: std::sync::atomic::AtomicBool,
}

/// `work` as a request's future, its time and outcome counted in the metrics under `name`.
fn timed<W>(name: &'static str, work: W) -> Work
where
    W: Future<Output = Result<Body, FsError>> + Send + 'static,
{
    Box::pin(async move {
        let start = std::time::Instant::now();
        let r = work.await;
        let rerror = r.as_ref().err().map(FsError::text);
        crate::metrics::styx_request(name, start.elapsed(), rerror);
        r
    })
}

/// The 9P traffic at debug level: each request as it starts, each reply as it completes.
pub(super) fn log_reply(peer: &str, tag: u16, r: &Result<Body, FsError>) {
    match r {
        Ok(body) => tracing::debug!("9p {peer}: -> tag {tag} {body:?}"),
        Err(e) => tracing::debug!("9p {peer}: -> tag {tag} Rerror {e:?}"),
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<F: FileSystem> Conn<F> {
    pub(super) fn msize(&self) -> u32 {
        self.msize.load(Ordering::Acquire)
    }

    /// Clunks every fid (connection end or Tversion), each exactly once even if this future is
    /// dropped midway: a fid leaves `owed` only in the same poll that starts its clunk, and a
    /// clunk that has to wait goes on in a task of its own (see `clunk_entry`).
    async fn reset(&self) {
        {
            let mut fids = lock(&self.fids);
            lock(&self.owed).extend(fids.drain().map(|(_, e)| e));
        }
        loop {
            let Some(e) = lock(&self.owed).pop() else {
                return;
            };
            self.clunk_entry(e).await;
        }
    }
}
