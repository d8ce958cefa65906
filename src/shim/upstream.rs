//! The registry behind the shim, reached through the registries(2) client API, and the one shared
//! connection to it.

use crate::client::{self, Registry, dial};
use crate::styx::server::ConnCtx;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, watch};
use tokio::task::JoinHandle;

/// How often a registry without an `event` file is probed to notice that it has gone.
const PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Size of the in-memory pipe to an in-process registry.
const PIPE_SIZE: usize = 64 * 1024;

/// Where the shim's registry is.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A registry in this process, reached by 9P over an in-memory pipe (`registry serve`).
    Local(crate::registry::Registry),
    /// A registry at an Inferno dial string, reached by 9P with `auth none`
    /// (`registry shim --registry ADDR`).
    Remote(String),
}

impl Upstream {
    /// A new 9P connection to the registry, attached as `user` (default `$USER`).
    pub(crate) async fn connect(
        &self,
        user: Option<&str>,
    ) -> client::Result<(Registry, Option<JoinHandle<()>>)> {
        match self {
            Upstream::Local(registry) => {
                let (ours, theirs) = tokio::io::duplex(PIPE_SIZE);
                let registry = registry.clone();
                let ctx = ConnCtx {
                    authenticated_user: None,
                    peer: "shim".to_string(),
                };
                let serving = tokio::spawn(async move {
                    let _ = registry.serve_connection(theirs, ctx).await;
                });
                let reg = Registry::connect_stream(ours, user).await?;
                Ok((reg, Some(serving)))
            }
            Upstream::Remote(addr) => {
                let conn = dial(addr).await?;
                Ok((Registry::connect_stream(conn, user).await?, None))
            }
        }
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
    _serving: Option<AbortOnDrop>,
}

/// One live 9P connection to the registry, shared by every shim connection. Cheap to clone.
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

/// The upstream and its current session, made again after it is lost.
#[derive(Debug)]
pub(crate) struct Pool {
    upstream: Upstream,
    user: Option<String>,
    current: Mutex<Option<Session>>,
}

impl Pool {
    /// A pool that connects to `upstream` as `user` (default `$USER`) when first asked.
    pub(crate) fn new(upstream: Upstream, user: Option<String>) -> Pool {
        Pool {
            upstream,
            user,
            current: Mutex::new(None),
        }
    }

    /// The live session, connecting if there is none or the last one was lost.
    pub(crate) async fn session(&self) -> client::Result<Session> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref().filter(|s| !s.is_lost()) {
            return Ok(s.clone());
        }
        *current = None;
        let (reg, serving) = self.upstream.connect(self.user.as_deref()).await?;
        let (tx, rx) = watch::channel(false);
        let watcher = tokio::spawn(watch_connection(reg.clone(), tx));
        let session = Session(Arc::new(SessionInner {
            reg,
            lost: rx,
            _watcher: AbortOnDrop(watcher),
            _serving: serving.map(AbortOnDrop),
        }));
        *current = Some(session.clone());
        Ok(session)
    }
}
