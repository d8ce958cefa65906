//! `Events`: the registry's change notifications as a stream, one `event` read per connection.
//!
//! However many streams a connection makes, it keeps one `event` file open and one read waiting
//! on it, and hands each answer to every stream: the registry answers once per change and
//! connection instead of once per stream (ZooKeeper keeps one watch per path and session for the
//! same reason). A stream made while a change is on its way may report that change although it
//! happened just before; a change after the stream was made is never missed.

use super::error::{Error, Result};
use super::transport::{Backend, EventHandle};
use futures_util::Stream;
use futures_util::stream::BoxStream;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{Mutex, watch};

/// The registry's change counter, once per coalesced change (spec/registry.md §5). The `event`
/// file was open when the stream was made, so a change made after that is never missed. After
/// an error the stream ends.
///
/// ```no_run
/// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
/// use futures_util::StreamExt;
/// let mut events = reg.events().await?;
/// while let Some(count) = events.next().await {
///     println!("the registry changed ({})", count?);
/// }
/// # Ok(()) }
/// ```
pub struct Events {
    inner: BoxStream<'static, Result<u64>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

/// What a connection's shared `event` read last gave.
enum Report {
    /// Nothing yet.
    Waiting,
    /// The change counter of the latest change.
    Count(u64),
    /// The error that ended the read; every stream ends with it.
    Failed(Error),
}

/// A connection's shared `event` reader, while any stream uses it.
type Slot = Arc<Mutex<Option<watch::Sender<Report>>>>;

/// The `event` reader a connection's [`Events`] streams share (one per [`super::Registry`] and its
/// clones).
#[derive(Default)]
pub(crate) struct EventShare {
    reader: Slot,
}

impl EventShare {
    /// A stream of the changes after now: it joins the connection's reader, or opens `event` and
    /// starts one.
    pub(crate) async fn subscribe(&self, backend: &Backend) -> Result<Events> {
        let mut slot = self.reader.lock().await;
        if let Some(tx) = slot.as_ref() {
            return Ok(Events::new(tx.subscribe()));
        }
        let handle = backend.events().await?;
        let (tx, rx) = watch::channel(Report::Waiting);
        tokio::spawn(read_changes(handle, tx.clone(), Arc::clone(&self.reader)));
        *slot = Some(tx);
        Ok(Events::new(rx))
    }
}

/// Keeps one read waiting on `handle` and passes each answer on, until no stream is left or the
/// read fails. A waiting read is only abandoned when the reader stops: an answer that raced its
/// flush would be a change no stream heard of.
async fn read_changes(handle: EventHandle, tx: watch::Sender<Report>, slot: Slot) {
    async fn next(mut handle: EventHandle) -> (EventHandle, Result<u64>) {
        let got = handle.next().await;
        (handle, got)
    }
    let mut read = Box::pin(next(handle));
    loop {
        tokio::select! {
            (handle, got) = &mut read => match got {
                Ok(n) => {
                    tx.send_replace(Report::Count(n));
                    read = Box::pin(next(handle));
                }
                Err(e) => {
                    // Unshared first, so that a stream made from now on opens `event` anew.
                    stop_sharing(&mut *slot.lock().await, &tx);
                    tx.send_replace(Report::Failed(e));
                    return;
                }
            },
            () = tx.closed() => {
                let mut held = slot.lock().await;
                // A stream may have joined since the last one went.
                if tx.receiver_count() == 0 {
                    stop_sharing(&mut held, &tx);
                    return;
                }
            }
        }
    }
}

/// Takes `tx` out of the connection's slot (`held`, locked by the caller) if it is still there.
fn stop_sharing(held: &mut Option<watch::Sender<Report>>, tx: &watch::Sender<Report>) {
    if held.as_ref().is_some_and(|s| s.same_channel(tx)) {
        *held = None;
    }
}

impl Events {
    fn new(rx: watch::Receiver<Report>) -> Events {
        let inner = futures_util::stream::unfold(Some(rx), |state| async move {
            let mut rx = state?;
            loop {
                if rx.changed().await.is_err() {
                    let gone = std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
                    return Some((Err(Error::Io(gone)), None));
                }
                let item = match &*rx.borrow_and_update() {
                    Report::Waiting => continue,
                    Report::Count(n) => Ok(*n),
                    Report::Failed(e) => Err(e.duplicate()),
                };
                let more = item.is_ok().then_some(rx);
                return Some((item, more));
            }
        });
        Events {
            inner: Box::pin(inner),
        }
    }
}

impl Stream for Events {
    type Item = Result<u64>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
