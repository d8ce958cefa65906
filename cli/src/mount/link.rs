//! The mount's 9P connection to the registry: dialled (and authenticated) as `registry query`
//! does, attached once, and dialled again on the first use after it is lost. What was open
//! through a lost connection stays lost: registry(4) ended those registrations with it.

use crate::opts::{RegistryOpt, read_key};
use registries::styx::{Client, Fid};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Longest a reconnection may take before the operation that asked for it fails with EIO, so
/// that a shell is never held long by a registry that is down.
const RECONNECT_WAIT: Duration = Duration::from_secs(2);
/// After a failed reconnection, operations fail at once for this long before the next try.
const RECONNECT_PAUSE: Duration = Duration::from_secs(1);

/// The connection, re-established on demand.
pub struct Link {
    opt: RegistryOpt,
    current: Mutex<State>,
}

struct State {
    /// The registry's root on the connection in use; a fid knows whether its connection is
    /// still up (`client().is_closed()`).
    root: Option<Arc<Fid>>,
    last_failure: Option<Instant>,
}

/// Why there is no connection now.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl Link {
    /// Connects to the first registry of `opt` that answers, within its `--timeout`.
    pub async fn connect(
        opt: RegistryOpt,
    ) -> Result<Link, Box<dyn std::error::Error + Send + Sync>> {
        let root = attach_first(&opt).await?;
        Ok(Link {
            opt,
            current: Mutex::new(State {
                root: Some(Arc::new(root)),
                last_failure: None,
            }),
        })
    }

    /// The registry's root: on the current connection if it is up, else on a new one if the
    /// registry answers within [`RECONNECT_WAIT`].
    pub async fn root(&self) -> Result<Arc<Fid>, Unreachable> {
        let mut st = self.current.lock().await;
        if let Some(root) = &st.root {
            if !root.client().is_closed() {
                return Ok(root.clone());
            }
            tracing::warn!(
                "mount: the connection to the registry is lost: registrations held through it \
                 are gone; reconnecting"
            );
            st.root = None;
        }
        if st
            .last_failure
            .is_some_and(|t| t.elapsed() < RECONNECT_PAUSE)
        {
            return Err(Unreachable("the registry does not answer".into()));
        }
        match tokio::time::timeout(RECONNECT_WAIT, attach_first(&self.opt)).await {
            Ok(Ok(root)) => {
                let root = Arc::new(root);
                tracing::warn!("mount: reconnected to the registry");
                st.root = Some(root.clone());
                st.last_failure = None;
                Ok(root)
            }
            Ok(Err(e)) => {
                st.last_failure = Some(Instant::now());
                Err(Unreachable(e.to_string()))
            }
            Err(_) => {
                st.last_failure = Some(Instant::now());
                Err(Unreachable(format!("no answer within {RECONNECT_WAIT:?}")))
            }
        }
    }
}

/// Dials, authenticates (with `-k`) and attaches to the first registry of `opt` that answers.
async fn attach_first(opt: &RegistryOpt) -> Result<Fid, Box<dyn std::error::Error + Send + Sync>> {
    let mut last = None;
    for addr in opt.addrs() {
        match opt.limit(&addr, attach_one(&addr, opt)).await {
            Ok(root) => return Ok(root),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| "no registry to mount".into()))
}

async fn attach_one(
    addr: &str,
    opt: &RegistryOpt,
) -> Result<Fid, Box<dyn std::error::Error + Send + Sync>> {
    let (client, user) = match &opt.keyfile {
        Some(keyfile) => {
            let info = read_key(keyfile)?;
            let alg = opt.alg.as_deref().unwrap_or("none");
            let conn = registries::client::dial_with_key(addr, &info, alg)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            (Client::connect(conn).await?, info.mypk.owner.clone())
        }
        None => {
            let conn = registries::client::dial(addr).await?;
            (Client::connect(conn).await?, local_user())
        }
    };
    Ok(client.attach(&user, "").await?)
}

/// The name the Tattach gives without a key: `$USER`, else `none`.
fn local_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "none".to_string())
}
