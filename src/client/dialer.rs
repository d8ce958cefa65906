//! `Dialer`: a connection to one of the live services matching a query, spread over them.

use super::conn::BoxConn;
use super::error::{Error, Result};
use super::monitor::{Change, Monitor};
use super::registry::Registry;
use super::service::{Attached, Service};
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a service that refused is tried only after the others.
const SHUNNED_FOR: Duration = Duration::from_secs(5);

/// Connects to one of the services matching a query, chosen among those registered now.
///
/// A [`Monitor`] in a background task keeps the dialer's list of services current. The task
/// stops when the last clone of the dialer is dropped. [`Dialer::connect`] picks one by the
/// power of two choices: two services at random, and the one with fewer open connections
/// from this dialer. Connections may live long (a 9P session, say), so the count of open ones
/// tells a loaded instance from an idle one, and round robin would keep sending to an instance
/// that holds many. Choosing between two random services rather than taking the least loaded
/// of all keeps dialers that start together from all picking the same idle one.
///
/// `connect` dials the chosen service with [`Service::attach`], which runs infpk1 when its
/// attributes ask for it. If it refuses (or fails to authenticate, or takes longer than the
/// timeout), `connect` tries another, until one answers or all have been tried. A service that
/// refused is tried after the others for a few seconds. A dead instance has no open
/// connections, so without this the power of two choices would favour it.
///
/// If the monitor fails (the registry connection is lost), the list stays as last seen. Clones
/// share the list and the counts of open connections.
///
/// # Example
///
/// ```no_run
/// use registries::client::{Dialer, Registry};
/// use tokio::io::AsyncWriteExt;
///
/// # async fn demo() -> Result<(), registries::client::Error> {
/// let reg = Registry::connect(None, None, None).await?;
/// let dialer = Dialer::new(&reg, &[("proto", "echo")]).await?;
/// let mut attached = dialer.connect().await?;
/// attached.fd.write_all(b"hello\n").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Dialer {
    view: Arc<Mutex<View>>,
    _watch: Arc<Watch>,
    user: Option<String>,
    keydir: Option<PathBuf>,
    timeout: Duration,
}

/// The services as last seen, and the randomness to choose among them.
struct View {
    /// The query, as `find` sends it, for errors.
    query: String,
    instances: HashMap<String, Instance>,
    rng: u64,
}

/// One matching service and how this dialer has fared with it.
struct Instance {
    service: Service,
    /// Connections made by this dialer and still open (and dials under way).
    open: Arc<AtomicUsize>,
    /// When it last refused, if it has not answered since.
    refused: Option<Instant>,
}

/// The monitor's task, stopped when the last dialer goes.
struct Watch(tokio::task::JoinHandle<()>);

impl Drop for Watch {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Dialer {
    /// How long [`Dialer::connect`] waits for one service, dial and authentication together,
    /// before trying another: unless [`Dialer::with_timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts watching `reg` for services matching `query` (pairs as for [`Registry::find`]).
    /// The services registered now are known when this returns.
    pub async fn new<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        query: &[(A, V)],
    ) -> Result<Dialer> {
        let mut monitor = Monitor::new(reg, query).await?;
        let view = Arc::new(Mutex::new(View {
            query: crate::wire::format_pairs(query.iter().map(|(a, v)| (a.as_ref(), v.as_ref()))),
            instances: HashMap::new(),
            // Seeded differently in every process, as HashMap's keys are.
            rng: std::collections::hash_map::RandomState::new().hash_one(0u8) | 1,
        }));
        {
            let mut v = lock(&view);
            for svc in monitor.services() {
                v.apply(Change::Added(svc.clone()));
            }
        }
        let watched = Arc::clone(&view);
        let task = tokio::spawn(async move {
            while let Some(change) = monitor.next().await {
                match change {
                    Ok(change) => lock(&watched).apply(change),
                    Err(e) => {
                        tracing::warn!(error = %e, "dialer: cannot watch the registry; keeping the services last seen");
                        return;
                    }
                }
            }
        });
        Ok(Dialer {
            view,
            _watch: Arc::new(Watch(task)),
            user: None,
            keydir: None,
            timeout: Dialer::DEFAULT_TIMEOUT,
        })
    }

    /// Authenticates as `user` with the keys in `keydir`, for services that ask for infpk1
    /// (as [`Service::attach`] takes them; by default none given).
    pub fn with_auth(mut self, user: Option<&str>, keydir: Option<&Path>) -> Dialer {
        self.user = user.map(str::to_string);
        self.keydir = keydir.map(Path::to_path_buf);
        self
    }

    /// Waits at most `timeout` for each service tried (default [`Dialer::DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Dialer {
        self.timeout = timeout;
        self
    }

    /// The matching services, as last seen.
    pub fn services(&self) -> Vec<Service> {
        let v = lock(&self.view);
        v.instances.values().map(|i| i.service.clone()).collect()
    }

    /// A connection to one of the matching services, chosen as the type's documentation says.
    /// The connection counts as open on its service until `fd` is dropped. Fails with every
    /// service tried and why, or with none tried when none matches now.
    pub async fn connect(&self) -> Result<Attached, NoneAnswered> {
        let mut tried: Vec<(String, Error)> = Vec::new();
        loop {
            let picked = lock(&self.view).pick(&tried);
            let Some((svc, open)) = picked else { break };
            let attach = svc.attach(self.user.as_deref(), self.keydir.as_deref());
            let failed = match tokio::time::timeout(self.timeout, attach).await {
                Ok(Ok(a)) => {
                    lock(&self.view).answered(&svc.addr, true);
                    return Ok(Attached {
                        fd: Box::new(Counted {
                            conn: a.fd,
                            _open: open,
                        }),
                        signerpkhash: a.signerpkhash,
                        localuser: a.localuser,
                        remoteuser: a.remoteuser,
                    });
                }
                Ok(Err(e)) => e,
                Err(_) => Error::Timeout {
                    what: "attach",
                    after: self.timeout,
                },
            };
            tracing::debug!(service = %svc.addr, error = %failed, "dialer: trying another");
            lock(&self.view).answered(&svc.addr, false);
            tried.push((svc.addr, failed));
        }
        let query = lock(&self.view).query.clone();
        Err(NoneAnswered { query, tried })
    }
}

impl fmt::Debug for Dialer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = lock(&self.view);
        f.debug_struct("Dialer")
            .field("query", &v.query)
            .field("services", &v.instances.keys().collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// The view, even if a thread panicked holding it (it is left consistent at every step).
fn lock(view: &Mutex<View>) -> std::sync::MutexGuard<'_, View> {
    view.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl View {
    /// Takes in one change from the monitor. A service whose description changes gets a fresh
    /// chance, in case it refused only before. (The monitor's first additions repeat the
    /// services the view starts with: no change, so a refusal seen meanwhile stands.)
    fn apply(&mut self, change: Change) {
        match change {
            Change::Added(svc) | Change::Changed(svc) => match self.instances.get_mut(&svc.addr) {
                Some(i) if i.service == svc => {}
                Some(i) => {
                    i.service = svc;
                    i.refused = None;
                }
                None => {
                    let name = svc.addr.clone();
                    let instance = Instance {
                        service: svc,
                        open: Arc::default(),
                        refused: None,
                    };
                    self.instances.insert(name, instance);
                }
            },
            Change::Removed(svc) => {
                self.instances.remove(&svc.addr);
            }
        }
    }

    /// Chooses among the services not yet tried, by the power of two choices on open
    /// connections, those that refused lately last; the choice counts as open at once, so
    /// that concurrent connects spread too.
    fn pick(&mut self, tried: &[(String, Error)]) -> Option<(Service, Open)> {
        let (a, b) = (self.random(), self.random());
        let now = Instant::now();
        let untried = || {
            self.instances
                .values()
                .filter(|i| !tried.iter().any(|(addr, _)| *addr == i.service.addr))
        };
        let fresh: Vec<&Instance> = untried()
            .filter(|i| {
                i.refused
                    .is_none_or(|t| now.duration_since(t) >= SHUNNED_FOR)
            })
            .collect();
        let pool = if fresh.is_empty() {
            untried().collect()
        } else {
            fresh
        };
        let n = pool.len() as u64;
        if n == 0 {
            return None;
        }
        let i = (a % n) as usize;
        let j = if n > 1 {
            (i + 1 + (b % (n - 1)) as usize) % pool.len()
        } else {
            i
        };
        let load = |k: usize| pool[k].open.load(Ordering::Relaxed);
        let chosen = if load(j) < load(i) { pool[j] } else { pool[i] };
        Some((chosen.service.clone(), Open::new(&chosen.open)))
    }

    /// Notes whether the service at `addr` answered.
    fn answered(&mut self, addr: &str, yes: bool) {
        if let Some(i) = self.instances.get_mut(addr) {
            i.refused = if yes { None } else { Some(Instant::now()) };
        }
    }

    /// xorshift64: enough to pick two services at random.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// One open connection (or dial under way) to a service, counted until dropped.
struct Open(Arc<AtomicUsize>);

impl Open {
    fn new(count: &Arc<AtomicUsize>) -> Open {
        count.fetch_add(1, Ordering::Relaxed);
        Open(Arc::clone(count))
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A connection made by a dialer: the service's connection, counted as open while it lives.
struct Counted {
    conn: BoxConn,
    _open: Open,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_read(cx, buf)
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.conn).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.conn.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.conn).poll_shutdown(cx)
    }
}

/// Why [`Dialer::connect`] has no connection: each service tried, in order, and why it failed.
/// None tried means none matched.
#[derive(Debug)]
pub struct NoneAnswered {
    /// The query, as `find` is sent it (`proto echo`).
    pub query: String,
    /// Each service tried, by name, and its error.
    pub tried: Vec<(String, Error)>,
}

impl fmt::Display for NoneAnswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let matching = if self.query.is_empty() {
            String::new()
        } else {
            format!(" matching {}", self.query)
        };
        if self.tried.is_empty() {
            return write!(f, "no service{matching} is registered");
        }
        write!(f, "no service{matching} answered")?;
        for (i, (addr, e)) in self.tried.iter().enumerate() {
            let sep = if i == 0 { ": " } else { "; " };
            write!(f, "{sep}{addr}: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for NoneAnswered {}

/// So that `?` on [`Dialer::connect`] works where the client's [`Error`] is returned.
impl From<NoneAnswered> for Error {
    fn from(e: NoneAnswered) -> Error {
        Error::NoneAnswered(e)
    }
}
