//! The one accept loop: a cap on open connections shared by a group of listeners, a stop signal
//! that ends accepting and drops every connection, and accept errors that never spin.

use super::listen::{Listener, Stream};
use futures_util::future::select_all;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

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
        handler: H,
    ) where
        T: Clone + Send + Sync + 'static,
        H: Fn(T, Stream, String) -> F + Send + Sync + 'static,
        F: Future<Output = ()> + Send + 'static,
    {
        let stop = self.stop.subscribe();
        self.tasks
            .spawn(serve(name, listeners, max_connections, stop, handler));
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
    let mut warned: Option<Instant> = None;
    loop {
        while conns.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                crate::metrics::cap_reached(name);
                if warned.is_none_or(|t| t.elapsed() >= CAP_WARNING_INTERVAL) {
                    tracing::warn!(
                        "{name}: {max} connections open, the cap: further connections wait \
                         in the listen backlog"
                    );
                    warned = Some(Instant::now());
                }
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        // Every accept is cancel-safe: the listeners that lose the race keep their
        // connections queued.
        let accepts = listeners
            .iter()
            .enumerate()
            .map(|(i, (l, _))| Box::pin(async move { (i, l.accept().await) }));
        let (which, accepted) = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            (r, _, _) = select_all(accepts) => r,
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
        let work = handler(tag.clone(), stream, peer);
        let open = crate::metrics::OpenConnection::new(name);
        conns.spawn(async move {
            work.await;
            drop(open);
            // Held until the connection ends: then the next one may be accepted.
            drop(slot);
        });
    }
    conns.shutdown().await;
}

/// Whether an accept error means the listener cannot accept again (rather than, say, a lack of
/// descriptors that will pass).
fn is_fatal(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::InvalidInput | io::ErrorKind::PermissionDenied
    )
}
