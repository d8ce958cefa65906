//! The one accept loop: a cap on open connections shared by a group of listeners, a stop signal
//! that ends accepting and drops every connection, and accept errors that never spin. At the cap
//! a listener group may evict, for each newcomer, its oldest connection that has not settled
//! (a 9P connection settles when it attaches), so that silent sockets cannot shut clients out.

use super::listen::{Listener, Stream};
use futures_util::future::select_all;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore, watch};
use tokio::task::JoinSet;

/// What to do with a newcomer when a listener group is at its cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtCap {
    /// Leave it in the listen backlog until a connection ends.
    Wait,
    /// Accept it and close the oldest connection that has not [settled](settle_flag) to make
    /// room (logged, counted as the limit `evict_metric`); with none to close, it waits.
    EvictUnsettled {
        /// The limit's name in `registry_limit_hits`.
        evict_metric: &'static str,
    },
}

/// One open connection, as the accept loop sees it.
#[derive(Debug, Default)]
struct Tracked {
    /// Set by the connection once it holds something (see [`settle_flag`]).
    settled: Arc<AtomicBool>,
    evict: Notify,
    peer: String,
}

tokio::task_local! {
    static SETTLED: Arc<AtomicBool>;
}

/// The flag that marks the connection this task serves as settled, so that the accept loop
/// never evicts it; `None` outside a connection served by [`serve`]. A 9P connection sets it
/// once it has attached.
pub fn settle_flag() -> Option<Arc<AtomicBool>> {
    SETTLED.try_with(Arc::clone).ok()
}

/// How long to wait after an accept error (out of descriptors and the like) before the next
/// accept, so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// At most one "connection cap reached" warning per this long, per group of listeners.
const CAP_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Listeners being served: stop them all with [`Accepting::shutdown`].
#[derive(Debug)]
pub struct Accepting {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Default for Accepting {
    fn default() -> Self {
        Accepting::new()
    }
}

impl Accepting {
    /// Nothing accepting yet.
    pub fn new() -> Accepting {
        Accepting {
            stop: watch::Sender::new(false),
            tasks: JoinSet::new(),
        }
    }

    /// Starts accepting on `listeners` (each with the tag its handler is given), at most
    /// `max_connections` open at once over all of them: a slot is taken before accepting, so a
    /// connection beyond the cap waits in the listen backlog rather than in this process, and
    /// the cap is logged when it bites. `name` prefixes the log lines. `handler` runs once per
    /// connection, with the listener's tag, the stream and its peer's dial string.
    pub fn spawn<T, H, F>(
        &mut self,
        name: &'static str,
        listeners: Vec<(Listener, T)>,
        max_connections: usize,
        at_cap: AtCap,
        handler: H,
    ) where
        T: Clone + Send + Sync + 'static,
        H: Fn(T, Stream, String) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.subscribe();
        self.tasks.spawn(serve(
            name,
            listeners,
            max_connections,
            at_cap,
            stop,
            handler,
        ));
    }

    /// Stops accepting and drops every connection.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }

    /// Runs until every accept loop has ended (normally: forever).
    pub async fn wait(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The accept loop behind [`Accepting::spawn`], for callers that keep their own task: runs until
/// `stop` turns true (then drops every connection it accepted) or a listener fails for good.
pub async fn serve<T, H, F>(
    name: &'static str,
    listeners: Vec<(Listener, T)>,
    max_connections: usize,
    at_cap: AtCap,
    mut stop: watch::Receiver<bool>,
    handler: H,
) where
    T: Clone + Send + Sync + 'static,
    H: Fn(T, Stream, String) -> F + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    if listeners.is_empty() {
        return;
    }
    let max = max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let mut conns = JoinSet::new();
    let mut open: Vec<Arc<Tracked>> = Vec::new();
    let mut warned: Option<Instant> = None;
    loop {
        while conns.try_join_next().is_some() {}
        // A connection's task holds the other reference while it runs.
        open.retain(|t| Arc::strong_count(t) > 1);
        // A newcomer accepted at the cap, waiting for the room its arrival made.
        let mut early = None;
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                crate::metrics::cap_reached(name);
                if warned.is_none_or(|t| t.elapsed() >= CAP_WARNING_INTERVAL) {
                    let then = match at_cap {
                        AtCap::Wait => "further connections wait in the listen backlog",
                        AtCap::EvictUnsettled { .. } => {
                            "each newcomer closes the oldest connection not yet attached"
                        }
                    };
                    tracing::warn!("{name}: {max} connections open, the cap: {then}");
                    warned = Some(Instant::now());
                }
                let newcomer = async {
                    match at_cap {
                        AtCap::Wait => std::future::pending().await,
                        AtCap::EvictUnsettled { .. } => accept_any(&listeners).await,
                    }
                };
                let freed = tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    slot = slots.clone().acquire_owned() => slot.ok(),
                    accepted = newcomer => {
                        early = Some(accepted);
                        None
                    }
                };
                match freed {
                    Some(slot) => slot,
                    None if early.is_none() => break,
                    None => {
                        if let AtCap::EvictUnsettled { evict_metric } = at_cap {
                            evict_oldest_unsettled(name, &open, evict_metric);
                        }
                        tokio::select! {
                            _ = stop.wait_for(|s| *s) => break,
                            slot = slots.clone().acquire_owned() => match slot {
                                Ok(slot) => slot,
                                Err(_) => break,
                            },
                        }
                    }
                }
            }
        };
        let (which, accepted) = match early {
            Some(a) => a,
            None => tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                a = accept_any(&listeners) => a,
            },
        };
        let (stream, peer) = match accepted {
            Ok(c) => c,
            Err(e) if is_fatal(&e) => {
                tracing::error!("{name}: accept: {e}; no longer accepting");
                break;
            }
            Err(e) => {
                tracing::warn!("{name}: accept: {e}");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some((_, tag)) = listeners.get(which) else {
            continue;
        };
        let tracked = Arc::new(Tracked {
            peer: peer.clone(),
            ..Tracked::default()
        });
        open.push(Arc::clone(&tracked));
        // Boxed: the task below would otherwise hold the connection's future twice over (once
        // as what it captured, once inside the future it awaits): 5,748 B a connection in the
        // task where the future is 1,808 B.
        let work = Box::pin(handler(tag.clone(), stream, peer));
        let counted = crate::metrics::OpenConnection::new(name);
        conns.spawn(async move {
            let settled = Arc::clone(&tracked.settled);
            SETTLED
                .scope(settled, async {
                    tokio::select! {
                        () = work => {}
                        () = tracked.evict.notified() => {}
                    }
                })
                .await;
            drop(tracked);
            drop(counted);
            // Held until the connection ends: then the next one may be accepted.
            drop(slot);
        });
    }
    conns.shutdown().await;
}

/// The next connection on any of `listeners`, with the index of the one it came to. Every
/// accept is cancel-safe: the listeners that lose the race keep their connections queued.
async fn accept_any<T>(listeners: &[(Listener, T)]) -> (usize, io::Result<(Stream, String)>) {
    let accepts = listeners
        .iter()
        .enumerate()
        .map(|(i, (l, _))| Box::pin(async move { (i, l.accept().await) }));
    select_all(accepts).await.0
}

/// Closes the oldest of `open` that has not settled, if any.
fn evict_oldest_unsettled(name: &str, open: &[Arc<Tracked>], metric: &'static str) {
    let oldest = open
        .iter()
        .find(|t| Arc::strong_count(t) > 1 && !t.settled.load(Ordering::Acquire));
    match oldest {
        Some(t) => {
            crate::metrics::limit_hit(metric);
            tracing::warn!(
                "{name}: {}: closed to make room for a newcomer at the connection cap: \
                 not attached yet",
                t.peer
            );
            // Counted as settled from now on, so that it is not chosen again while it ends.
            t.settled.store(true, Ordering::Release);
            t.evict.notify_one();
        }
        None => tracing::debug!(
            "{name}: at the connection cap and every connection attached: the newcomer waits"
        ),
    }
}

/// Whether an accept error means the listener cannot accept again (rather than, say, a lack of
/// descriptors that will pass).
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
    )
}
