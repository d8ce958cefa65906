//! `Discovery`: the services matching a query as a tower `Discover`, for tower's balancers.

use super::error::{Error, Result};
use super::monitor::{Change, Monitor};
use super::registry::Registry;
use super::service::Service;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, FuturesUnordered, Stream, StreamExt};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::BoxError;
use tower::discover::Change as Update;
use tower::load::{CompleteOnResponse, PendingRequests};

/// Turns a found service into a tower service, perhaps after some I/O.
type Make<S> = Box<dyn FnMut(Service) -> BoxFuture<'static, Result<S, BoxError>> + Send>;

/// One service being made: its name, the generation of the description it is made from, and
/// the outcome.
type Making<S> = BoxFuture<'static, (String, u64, Result<S, BoxError>)>;

/// The services matching a query, as a [`tower::discover::Discover`]: with it
/// [`tower::balance::p2c::Balance`] spreads requests over whatever is registered right now.
///
/// A [`Monitor`] watches the registry. Each matching service is turned into a tower service by
/// the function given ([`Discovery::new`], or the async maker of [`Discovery::with_maker`]) and
/// yielded as `Change::Insert(name, svc)`, keyed by its name ([`Service::addr`]); a service
/// that is unregistered or stops matching is yielded as `Change::Remove(name)`.
///
/// A service whose attributes change is made again and yielded as another `Insert` under the
/// same name, with no `Remove` before it. The balancer keeps sending requests to the old
/// service until the new one is ready, then puts the new one in its place, so the instance
/// stays in use throughout the change. A `Remove` first would take it out at once, and if it
/// were the only instance, the balancer would have none until the new one was ready.
///
/// A maker that fails is logged. The service stays out of the balancer (and one made from an
/// older description is removed) until the registry reports it changed again. The monitor's
/// own error (for example a lost registry connection) is yielded once, and then the stream
/// ends. After that, a balancer keeps the services it has.
///
/// p2c compares the load of two services, so they need a [`tower::load::Load`].
/// [`Discovery::pending_requests`] gives each service one: its requests in flight.
///
/// # Example
///
/// ```no_run
/// use registries::client::{Discovery, Registry, Service};
/// use tower::{Service as _, ServiceExt, balance::p2c::Balance, service_fn};
///
/// # async fn demo(reg: Registry) -> Result<(), tower::BoxError> {
/// // Each service found becomes a tower service; this one only says who it is (a real one
/// // would attach to `svc` and talk to it).
/// let echo = |svc: Service| {
///     service_fn(move |line: String| {
///         let name = svc.addr.clone();
///         async move { Ok::<_, registries::client::Error>(format!("{name}: {line}")) }
///     })
/// };
/// let discovery = Discovery::new(&reg, &[("proto", "echo")], echo).await?;
/// let mut balance = Balance::new(discovery.pending_requests());
/// let reply = balance.ready().await?.call("hello".to_string()).await?;
/// println!("{reply}");
/// # Ok(()) }
/// ```
pub struct Discovery<S> {
    /// The monitor's changes; `None` once it has ended.
    changes: Option<BoxStream<'static, Result<Change>>>,
    make: Make<S>,
    making: FuturesUnordered<Making<S>>,
    /// The generation of the latest description of each matching service: a service made from
    /// an older one is dropped.
    latest: HashMap<String, u64>,
    /// The names yielded in an `Insert` and not yet removed.
    inserted: HashSet<String>,
    generation: u64,
}

impl<S: Send + 'static> Discovery<S> {
    /// Starts watching `reg` for services matching `query` (pairs as for [`Registry::find`]),
    /// turning each into a tower service with `make`.
    pub async fn new<A, V, F>(reg: &Registry, query: &[(A, V)], mut make: F) -> Result<Self>
    where
        A: AsRef<str>,
        V: AsRef<str>,
        F: FnMut(Service) -> S + Send + 'static,
    {
        let make = move |svc| std::future::ready(Ok::<_, std::convert::Infallible>(make(svc)));
        Discovery::with_maker(reg, query, make).await
    }

    /// Starts watching as [`Discovery::new`] does, making each tower service with an async
    /// `make` (for example one that attaches to the service first). Services are made
    /// concurrently. A service that changes or goes while it is being made is not yielded from
    /// that description.
    pub async fn with_maker<A, V, F, Fut, E>(
        reg: &Registry,
        query: &[(A, V)],
        mut make: F,
    ) -> Result<Self>
    where
        A: AsRef<str>,
        V: AsRef<str>,
        F: FnMut(Service) -> Fut + Send + 'static,
        Fut: Future<Output = std::result::Result<S, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let monitor = Monitor::new(reg, query).await?;
        Ok(Discovery {
            changes: Some(monitor.into_stream().boxed()),
            make: Box::new(move |svc| {
                let made = make(svc);
                Box::pin(async move { made.await.map_err(Into::into) })
            }),
            making: FuturesUnordered::new(),
            latest: HashMap::new(),
            inserted: HashSet::new(),
            generation: 0,
        })
    }

    /// Each service wrapped in a [`PendingRequests`] load (its requests in flight, complete when
    /// the response is), as p2c needs. For requests of like cost the number in flight is what
    /// tells a busy instance from an idle one, with no clock or tuning; `PeakEwma` (latency)
    /// suits requests of unlike cost better and can be had by wrapping in the maker instead.
    pub fn pending_requests(self) -> Discovery<PendingRequests<S>> {
        self.map(|svc| PendingRequests::new(svc, CompleteOnResponse::default()))
    }

    /// The same discovery yielding `f(svc)` for each `svc`, including those being made now.
    fn map<T: Send + 'static>(self, f: fn(S) -> T) -> Discovery<T> {
        let mut make = self.make;
        let making = self.making.into_iter().map(|m| -> Making<T> {
            Box::pin(async move {
                let (name, generation, made) = m.await;
                (name, generation, made.map(f))
            })
        });
        Discovery {
            changes: self.changes,
            make: Box::new(move |svc| {
                let made = make(svc);
                Box::pin(async move { made.await.map(f) })
            }),
            making: making.collect(),
            latest: self.latest,
            inserted: self.inserted,
            generation: self.generation,
        }
    }

    /// Takes one change from the monitor: starts making a service that came or changed, and
    /// returns the name to remove for one that went, if it was yielded.
    fn take(&mut self, change: Change) -> Option<String> {
        match change {
            Change::Added(svc) | Change::Changed(svc) => {
                self.generation += 1;
                let (name, generation) = (svc.addr.clone(), self.generation);
                self.latest.insert(name.clone(), generation);
                let made = (self.make)(svc);
                self.making
                    .push(Box::pin(async move { (name, generation, made.await) }));
                None
            }
            Change::Removed(svc) => {
                self.latest.remove(&svc.addr);
                self.inserted.remove(&svc.addr).then_some(svc.addr)
            }
        }
    }

    /// Takes one made service: the change to yield, unless it was made from a description that
    /// is no longer the latest.
    fn made(
        &mut self,
        name: String,
        generation: u64,
        made: Result<S, BoxError>,
    ) -> Option<Update<String, S>> {
        if self.latest.get(&name) != Some(&generation) {
            return None;
        }
        match made {
            Ok(svc) => {
                self.inserted.insert(name.clone());
                Some(Update::Insert(name, svc))
            }
            Err(e) => {
                let why = "cannot make its tower service; left out until it changes";
                tracing::warn!(service = %name, error = %e, "{why}");
                self.inserted.remove(&name).then_some(Update::Remove(name))
            }
        }
    }
}

/// The changes, as [`tower::discover::Discover`] takes them (it is implemented for every such
/// stream).
impl<S: Send + 'static> Stream for Discovery<S> {
    type Item = Result<Update<String, S>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(changes) = &mut this.changes {
                match changes.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(change))) => {
                        if let Some(name) = this.take(change) {
                            return Poll::Ready(Some(Ok(Update::Remove(name))));
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        this.changes = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(None) => this.changes = None,
                    Poll::Pending => {}
                }
            }
            match this.making.poll_next_unpin(cx) {
                Poll::Ready(Some((name, generation, made))) => {
                    if let Some(update) = this.made(name, generation, made) {
                        return Poll::Ready(Some(Ok(update)));
                    }
                }
                // Nothing being made and nothing more to come.
                Poll::Ready(None) if this.changes.is_none() => return Poll::Ready(None),
                Poll::Ready(None) | Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S> fmt::Debug for Discovery<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("inserted", &self.inserted)
            .field("making", &self.making.len())
            .field("watching", &self.changes.is_some())
            .finish_non_exhaustive()
    }
}
