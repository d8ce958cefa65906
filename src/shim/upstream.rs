//! The registry behind the shim, reached through the registries(2) client API, and the one shared
//! connection to it.

use crate::auth::AuthInfo;
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
    Local(crate::registry::Server),
    /// A registry at an Inferno dial string, reached by 9P with `auth none`
    /// (`registry shim --registry ADDR`).
    Remote(String),
    /// A registry at an Inferno dial string that requires Inferno's infpk1 authentication
    /// (`registry serve --auth`), reached as [`Registry::connect_with_key`] reaches it
    /// (`registry shim --registry ADDR -k KEYFILE -C ALG`). The shim's registrations are owned
    /// by the key's user; [`Builder::user`](super::Builder::user) is not used.
    RemoteWithKey(RemoteKey),
}

/// A remote registry and the key the shim authenticates to it with, for
/// [`Upstream::RemoteWithKey`].
#[derive(Clone)]
pub struct RemoteKey {
    /// The registry's Inferno dial string.
    pub addr: String,
    /// The key (an Inferno key file, see [`AuthInfo::read`]): every upstream connection
    /// authenticates with it, and the registry makes its owner the owner of what the shim
    /// registers.
    pub key: Arc<AuthInfo>,
    /// The algorithms to protect each connection with after authenticating, as `mount -C`
    /// (e.g. `none`, `sha1`, `rc4_256 sha1`; empty: `none`).
    pub alg: String,
}

impl RemoteKey {
    /// The registry at `addr`, reached with `key` and `alg`.
    pub fn new(addr: impl Into<String>, key: AuthInfo, alg: impl Into<String>) -> RemoteKey {
        RemoteKey {
            addr: addr.into(),
            key: Arc::new(key),
            alg: alg.into(),
        }
    }
}

/// Shows the address, the key's owner and the algorithms, never the secret key.
impl std::fmt::Debug for RemoteKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteKey")
            .field("addr", &self.addr)
            .field("owner", &self.key.mypk.owner)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The registry at `addr`, reached with infpk1 using `key` and `alg`
    /// ([`Upstream::RemoteWithKey`]).
    pub fn remote_with_key(
        addr: impl Into<String>,
        key: AuthInfo,
        alg: impl Into<String>,
    ) -> Upstream {
        Upstream::RemoteWithKey(RemoteKey::new(addr, key, alg))
    }

    /// Where the registry is, for messages: its dial string, or `local`.
    fn describe(&self) -> &str {
        match self {
            Upstream::Local(_) => "local",
            Upstream::Remote(addr) => addr,
            Upstream::RemoteWithKey(r) => &r.addr,
        }
    }

    /// A new 9P connection to the registry, attached as `user` (default `$USER`; with a key,
    /// the key's owner).
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
            Upstream::RemoteWithKey(r) => Ok((
                Registry::connect_with_key(&r.addr, &r.key, &r.alg).await?,
                None,
            )),
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
        let (reg, serving) = match self.upstream.connect(self.user.as_deref()).await {
            Ok(c) => c,
            Err(e) => {
                // Each shim connection only sees its socket close: say why here.
                let hint = match (&self.upstream, &e) {
                    // A registry that requires infpk1 answers 9P with auth messages.
                    (Upstream::Remote(_), client::Error::Mount(_)) => {
                        " (a registry that requires authentication needs a key: -k KEYFILE)"
                    }
                    _ => "",
                };
                tracing::warn!(
                    "shim: cannot connect to registry {}: {e}{hint}",
                    self.upstream.describe()
                );
                return Err(e);
            }
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_key_debug_hides_the_secret() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/spec/vectors/keys/set1/alice.keyfile"
        );
        let key = AuthInfo::read(std::path::Path::new(path)).unwrap();
        let secret = format!("{:?}", key.mysk);
        let up = Upstream::remote_with_key("tcp!h!1", key, "sha1");
        let shown = format!("{up:?}");
        assert!(shown.contains("tcp!h!1"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(shown.contains("sha1"), "{shown}");
        assert!(!shown.contains(&secret), "{shown}");
        assert_eq!(up.describe(), "tcp!h!1");
    }
}
