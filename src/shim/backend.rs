//! What the shim needs of the registry behind it: find, register (held, updated, closed) and
//! the change counter. [`Local`] is a registry in this process; a registry elsewhere is reached
//! through [`crate::relay::Remote`], which implements the same trait with the registries(2)
//! client.

use crate::registry::Server;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;

/// Why the registry could not do what a shim connection asked. The shim's only answer is to
/// close that connection, so this is only logged.
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// The change counter's successive values, one per wake of the registry's `event` file.
pub type Changes = BoxStream<'static, Result<u64, BackendError>>;

/// A registry the shim can front.
pub trait Backend: Send + Sync + 'static {
    /// The reply to a find of `query` (every service when it is empty): service lines, each
    /// ending in a newline. Shared bytes, so that readers of one answer hold one copy.
    fn find(&self, query: Vec<(String, String)>) -> BoxFuture<'_, Result<Bytes, BackendError>>;

    /// Registers `name` with `attrs`; the service lives as long as the [`Registration`].
    fn register(
        &self,
        name: String,
        attrs: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Box<dyn Registration>, BackendError>>;

    /// The change counter from now on. When this returns, no later change can be missed.
    fn changes(&self) -> BoxFuture<'_, Result<Changes, BackendError>>;
}

/// One held registration.
pub trait Registration: Send {
    /// Sets these attributes (`attr val ...` written to the service file).
    fn update(&mut self, attrs: Vec<(String, String)>) -> BoxFuture<'_, Result<(), BackendError>>;

    /// Resolves when the registration is gone behind the shim's back (the registry connection
    /// was lost, or with etcd the front-end's session expired); never, for a registry in this
    /// process's memory.
    fn lost(&self) -> BoxFuture<'_, ()>;

    /// Unregisters, resolving once the registry has removed the service, so that a client
    /// that reconnects at once can register the same name again.
    fn close(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>>;
}

/// A registry in this process (`registry serve`), served without 9P in between. Its
/// registrations are owned by [`Local::owner`] (default `$USER`).
#[derive(Debug, Clone)]
pub struct Local {
    server: Server,
    owner: String,
}

impl Local {
    /// The registry `server`, its shim registrations owned by `$USER` (else `none`).
    pub fn new(server: Server) -> Local {
        let owner = std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "none".to_string());
        Local { server, owner }
    }

    /// The owner of what the shim registers.
    pub fn owner(mut self, owner: impl Into<String>) -> Local {
        self.owner = owner.into();
        self
    }
}

impl Backend for Local {
    fn find(&self, query: Vec<(String, String)>) -> BoxFuture<'_, Result<Bytes, BackendError>> {
        let text = self.server.find_text(&query);
        Box::pin(async move { Ok(text) })
    }

    fn register(
        &self,
        name: String,
        attrs: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Box<dyn Registration>, BackendError>> {
        let line = crate::wire::register_line(
            &name,
            attrs.iter().map(|(a, v)| (a.as_str(), v.as_str())),
            false,
        );
        Box::pin(async move {
            let expiry = self.server.next_expiry();
            let file = tokio::select! {
                r = self.server.open_new(&self.owner, &line) => r?,
                () = expiry => return Err(EXPIRED.into()),
            };
            Ok(Box::new(LocalRegistration(file)) as Box<dyn Registration>)
        })
    }

    fn changes(&self) -> BoxFuture<'_, Result<Changes, BackendError>> {
        let rx = self.server.changes();
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.changed().await.ok()?;
            let count = *rx.borrow_and_update();
            Some((Ok(u64::from(count)), rx))
        });
        Box::pin(async move { Ok(Box::pin(stream) as Changes) })
    }
}

/// Why a registration's wait ended without an answer: the front-end's etcd session expired
/// (spec/etcd.md), which closes the shim connection as it closes 9P ones; the outcome is
/// unknown to the client.
const EXPIRED: &str = "the registry's etcd lease went unconfirmed for its TTL";

struct LocalRegistration(crate::registry::NewFile);

impl Registration for LocalRegistration {
    fn update(&mut self, attrs: Vec<(String, String)>) -> BoxFuture<'_, Result<(), BackendError>> {
        let text = crate::wire::format_pairs(attrs.iter().map(|(a, v)| (a.as_str(), v.as_str())));
        Box::pin(async move {
            let lost = self.0.lost();
            tokio::select! {
                r = self.0.write(&text) => r.map_err(BackendError::from),
                () = lost => Err(EXPIRED.into()),
            }
        })
    }

    fn lost(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.0.lost())
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<(), BackendError>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}
