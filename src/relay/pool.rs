//! The remote registry and the one shared connection to it, made again after it is lost.

use crate::auth::AuthInfo;
use crate::client::{self, Registry, dial};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// How often a registry without an `event` file is probed to notice that it has gone.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// How the registry is reached.
#[derive(Debug, Clone)]
pub(crate) enum Reach {
    /// By 9P with `auth none`, attached as this user (`None`: `$USER`).
    Plain(Option<String>),
    /// With infpk1 and this key; the key's owner is the user.
    Key(RemoteKey),
}

/// The key a relay authenticates to its registry with.
#[derive(Clone)]
pub(crate) struct RemoteKey {
    /// Every connection authenticates with it; its owner owns what the relay registers.
    pub(crate) key: Arc<AuthInfo>,
    /// The algorithms to protect each connection with, as `mount -C` (empty: `none`).
    pub(crate) alg: String,
}

/// Shows the key's owner and the algorithms, never the secret key.
impl std::fmt::Debug for RemoteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKey")
            .field("owner", &self.key.mypk.owner)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// A new 9P connection to the registry at `addr`.
async fn connect(addr: &str, reach: &Reach) -> client::Result<Registry> {
    match reach {
        Reach::Plain(user) => {
            let conn = dial(addr).await?;
            Registry::connect_stream(conn, user.as_deref()).await
        }
        Reach::Key(k) => Registry::connect_with_key(addr, &k.key, &k.alg).await,
    }
}

/// Aborts a task when dropped.
#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[derive(Debug)]
struct SessionInner {
    reg: Registry,
    lost: watch::Receiver<bool>,
    _watcher: AbortOnDrop,
}

/// One live 9P connection to the registry, shared by every relayed connection. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Session(Arc<SessionInner>);

impl Session {
    /// The registry.
    pub(crate) fn registry(&self) -> &Registry {
        &self.0.reg
    }

    /// Whether the connection to the registry is known to be lost.
    pub(crate) fn is_lost(&self) -> bool {
        *self.0.lost.borrow()
    }

    /// Waits until the connection to the registry is lost.
    pub(crate) async fn lost(&self) {
        let mut rx = self.0.lost.clone();
        let _ = rx.wait_for(|l| *l).await;
    }
}

/// Watches a session's connection: an `event` read fails when the connection goes. A registry
/// without `event` is probed with `index` instead.
async fn watch_connection(reg: Registry, lost: watch::Sender<bool>) {
    match reg.events().await {
        Ok(mut events) => {
            use futures_util::StreamExt;
            loop {
                match events.next().await {
                    Some(Ok(_)) => {}
                    Some(Err(client::Error::NoEvents(_))) => {
                        probe(&reg).await;
                        break;
                    }
                    Some(Err(_)) | None => break,
                }
            }
        }
        Err(client::Error::NoEvents(_)) => probe(&reg).await,
        Err(_) => {}
    }
    let _ = lost.send(true);
}

/// Returns when `index` can no longer be read.
async fn probe(reg: &Registry) {
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        if reg.services().await.is_err() {
            return;
        }
    }
}

/// The registry and its current session, made again after it is lost.
#[derive(Debug)]
pub(crate) struct Pool {
    /// The registry's dial string, then the ones tried in order when it does not answer
    /// (front-ends of one catalog, `registry serve --etcd`).
    addrs: Vec<String>,
    reach: Reach,
    current: Mutex<Option<Session>>,
}

impl Pool {
    /// A pool that connects to the registry at `addr` as `reach` says, when first asked.
    pub(crate) fn new(addr: String, reach: Reach) -> Pool {
        Pool {
            addrs: vec![addr],
            reach,
            current: Mutex::new(None),
        }
    }

    /// The registry's dial string.
    pub(crate) fn addr(&self) -> &str {
        &self.addrs[0]
    }

    /// Adds a registry to try, in order, when the ones before it do not answer.
    pub(crate) fn add_fallback(&mut self, addr: String) {
        self.addrs.push(addr);
    }

    /// Attaches as `user` from now on, when no key decides the user.
    pub(crate) fn set_user(&mut self, user: Option<String>) {
        if let Reach::Plain(u) = &mut self.reach {
            *u = user;
        }
    }

    /// The live session, connecting if there is none or the last one was lost.
    pub(crate) async fn session(&self) -> client::Result<Session> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref().filter(|s| !s.is_lost()) {
            return Ok(s.clone());
        }
        *current = None;
        let mut failed = None;
        for addr in &self.addrs {
            match connect(addr, &self.reach).await {
                Ok(c) => {
                    failed = None;
                    *current = Some(Self::start(c));
                    break;
                }
                Err(e) => {
                    // Each relayed connection only sees its socket close: say why here.
                    let hint = match (&self.reach, &e) {
                        // A registry that requires infpk1 answers 9P with auth messages.
                        (Reach::Plain(_), client::Error::Mount(_)) => {
                            " (a registry that requires authentication needs a key: -k KEYFILE)"
                        }
                        _ => "",
                    };
                    tracing::warn!("shim: cannot connect to registry {addr}: {e}{hint}");
                    failed = Some(e);
                }
            }
        }
        match (failed, current.as_ref()) {
            (None, Some(s)) => Ok(s.clone()),
            (Some(e), _) => Err(e),
            (None, None) => Err(client::Error::Unsupported("no registry to connect to")),
        }
    }

    /// A session over a new connection, watched for its loss.
    fn start(reg: Registry) -> Session {
        let (tx, rx) = watch::channel(false);
        let watcher = tokio::spawn(watch_connection(reg.clone(), tx));
        Session(Arc::new(SessionInner {
            reg,
            lost: rx,
            _watcher: AbortOnDrop(watcher),
        }))
    }
}
