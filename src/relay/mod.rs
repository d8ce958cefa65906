//! The shim in front of a registry elsewhere: [`Remote`] is a [`shim::Backend`] that reaches the
//! registry over 9P with the registries(2) client, as Inferno's `listen` script relays the TCP
//! ports to `ndb/registry` (`registry shim --registry ADDR`).
//!
//! It sits above both sides: the shim server (server side) serves its ports, the client (client
//! side) reaches the registry, and neither knows the other. One 9P connection is shared by every
//! relayed connection; when it is lost, the registrations and watchers on it are closed (their
//! clients see their sockets close, as with Inferno's shim) and the next connection dials again.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use registries::relay::Remote;
//! use registries::shim::Builder;
//! let shim = Builder::new(Remote::new("tcp!registryhost!6675")).start().await?;
//! println!("find port: {}", shim.local_addrs().find);
//! # Ok(()) }
//! ```
//!
//! [`shim::Backend`]: crate::shim::Backend

mod pool;

use crate::auth::AuthInfo;
use crate::client::{Attributes, Registered};
use crate::shim::{Backend, BackendError, Changes, Registration};
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use pool::{Pool, Reach, RemoteKey, Session};
use std::sync::Arc;

/// A registry at an Inferno dial string, fronted by the shim.
#[derive(Debug)]
pub struct Remote {
    pool: Pool,
}

impl Remote {
    /// The registry at `addr`, reached by 9P with `auth none`, attached as `$USER`.
    pub fn new(addr: impl Into<String>) -> Remote {
        Remote {
            pool: Pool::new(addr.into(), Reach::Plain(None)),
        }
    }

    /// The registry at `addr`, which requires Inferno's infpk1 authentication (`registry serve
    /// --auth`): every connection authenticates with `key` (an Inferno key file, see
    /// [`AuthInfo::read`]) and is then protected with `alg` as `mount -C` takes it (e.g. `none`,
    /// `sha1`, `rc4_256 sha1`; empty: `none`). The key's owner owns what the shim registers.
    pub fn with_key(addr: impl Into<String>, key: AuthInfo, alg: impl Into<String>) -> Remote {
        let key = RemoteKey {
            key: Arc::new(key),
            alg: alg.into(),
        };
        Remote {
            pool: Pool::new(addr.into(), Reach::Key(key)),
        }
    }

    /// Attach as `user` (`None`: `$USER`), the owner of the shim's registrations. With a key
    /// ([`Remote::with_key`]) the key's owner is the owner regardless.
    pub fn user(mut self, user: Option<String>) -> Remote {
        self.pool.set_user(user);
        self
    }

    /// Another registry serving the same catalog (a front-end of `registry serve --etcd`): a
    /// new connection tries the registries in the order given, and uses the first that answers.
    pub fn or(mut self, addr: impl Into<String>) -> Remote {
        self.pool.add_fallback(addr.into());
        self
    }

    /// The registry's dial string (the first one given).
    pub fn addr(&self) -> &str {
        self.pool.addr()
    }
}

impl Backend for Remote {
    fn find(
        &self,
        query: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<bytes::Bytes, BackendError>> {
        Box::pin(async move {
            let session = self.pool.session().await?;
            let found = session.registry().find(&query).await?;
            let mut reply = String::new();
            for svc in &found {
                use std::fmt::Write as _;
                let _ = writeln!(reply, "{svc}");
            }
            Ok(reply.into())
        })
    }

    fn register(
        &self,
        name: String,
        attrs: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Box<dyn Registration>, BackendError>> {
        Box::pin(async move {
            let session = self.pool.session().await?;
            let held = session
                .registry()
                .register(&name, &Attributes::new(attrs), false)
                .await?;
            Ok(Box::new(Relayed { held, session }) as Box<dyn Registration>)
        })
    }

    fn changes(&self) -> BoxFuture<'_, Result<Changes, BackendError>> {
        Box::pin(async move {
            let session = self.pool.session().await?;
            let events = session.registry().events().await?;
            let changes = events.map(|r| r.map_err(BackendError::from));
            Ok(Box::pin(changes) as Changes)
        })
    }
}

/// A registration held over the shared connection.
struct Relayed {
    held: Registered,
    session: Session,
}

impl Registration for Relayed {
    fn update(&mut self, attrs: Vec<(String, String)>) -> BoxFuture<'_, Result<(), BackendError>> {
        Box::pin(async move { Ok(self.held.update(&Attributes::new(attrs)).await?) })
    }

    fn lost(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.session.lost())
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        Box::pin(async move { Ok(self.held.close().await?) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_the_registry_and_the_owner_never_the_secret() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/spec/vectors/keys/set1/alice.keyfile"
        );
        let key = AuthInfo::read(std::path::Path::new(path)).unwrap();
        let secret = format!("{:?}", key.mysk);
        let remote = Remote::with_key("tcp!h!1", key, "sha1");
        let shown = format!("{remote:?}");
        assert!(shown.contains("tcp!h!1"), "{shown}");
        assert!(shown.contains("alice"), "{shown}");
        assert!(shown.contains("sha1"), "{shown}");
        assert!(!shown.contains(&secret), "{shown}");
        assert_eq!(remote.addr(), "tcp!h!1");
    }
}
