//! Serving a registry: listeners on Inferno dial strings, and single connections.
//!
//! ```no_run
//! # async fn demo() -> Result<(), registries::registry::ServerError> {
//! use registries::registry::Server;
//! let running = Server::builder().listen_str("tcp!127.0.0.1!0")?.start().await?;
//! println!("listening on {}", running.local_addrs()[0]);
//! running.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! With [`ServerBuilder::auth`] every connection must first pass Inferno's infpk1 (as `listen`
//! without `-A` demands, spec/infpk1.md §9.1); the authenticated user then owns what the connection
//! registers, whatever its Tattach says.

use super::attrdb;
use super::catalog::Catalog;
use super::feed::FeedLimits;
use super::fs::{RegistryFs, now};
#[cfg(feature = "etcd")]
use super::store::EtcdConfig;
use crate::auth::{AuthInfo, DEFAULT_SERVER_ALGS};
use crate::net::{Accepting, Addr, AtCap, DialError, Listener, Stream};
use crate::styx::server::{ConnCtx, Limits, serve_connection};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// The registry's default address: `tcp!127.0.0.1!6675` (service `registry`).
pub const DEFAULT_LISTEN: &str = "tcp!127.0.0.1!6675";

/// How long a new connection may take to finish infpk1 and its algorithm message. Inferno
/// sets no limit; ours only keeps a silent peer from holding a connection slot for ever.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(60);

/// What an authenticating server needs: its key file and the algorithms it accepts.
#[derive(Clone)]
pub struct ServerAuth {
    info: Arc<AuthInfo>,
    algs: Arc<[String]>,
}

/// Names the key's owner and the algorithms, never the secret key.
impl std::fmt::Debug for ServerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerAuth")
            .field("owner", &self.info.mypk.owner)
            .field("algs", &self.algs)
            .finish_non_exhaustive()
    }
}

impl ServerAuth {
    /// Authenticate with `info`, accepting the algorithm names in `algs` (as `listen -a`).
    /// An empty list accepts anything, like Inferno's nil list; [`ServerAuth::listen_default`]
    /// takes `listen`'s default list.
    pub fn new<I, A>(info: AuthInfo, algs: I) -> ServerAuth
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        ServerAuth {
            info: Arc::new(info),
            algs: algs.into_iter().map(Into::into).collect(),
        }
    }

    /// Authenticate with `info`, accepting Inferno's default list ([`DEFAULT_SERVER_ALGS`]:
    /// `none`, the ciphers and the hashes, but not `clear`).
    pub fn listen_default(info: AuthInfo) -> ServerAuth {
        ServerAuth::new(info, DEFAULT_SERVER_ALGS.iter().copied())
    }

    /// The server's own key file.
    pub fn info(&self) -> &AuthInfo {
        &self.info
    }

    /// The accepted algorithm names (empty: anything).
    pub fn algs(&self) -> &[String] {
        &self.algs
    }

    /// Runs the server side of infpk1 and the algorithm message on `stream` (within
    /// [`AUTH_TIMEOUT`]) and returns the authenticated stream and the client's name.
    pub async fn accept<S>(
        &self,
        stream: S,
    ) -> Result<(crate::auth::Authenticated<S>, String), crate::auth::AuthError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let algs: Vec<&str> = self.algs.iter().map(String::as_str).collect();
        match tokio::time::timeout(AUTH_TIMEOUT, crate::auth::server(stream, &algs, &self.info))
            .await
        {
            Ok(r) => r,
            Err(_) => Err(crate::auth::AuthError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                "authentication timed out",
            ))),
        }
    }
}

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address is not a dial string we can announce.
    #[error(transparent)]
    Dial(#[from] DialError),
    /// Announcing failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The catalog's etcd cannot be used (`registry serve --etcd`): no member answered within
    /// the deadline, or an endpoint is malformed.
    #[error("etcd: {0}")]
    Store(String),
    /// The `-f` database cannot be read (Inferno: `can't open %s: %r`).
    #[error("can't open {path}: {source}")]
    Static {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// A registry(4) server: the registry, shared by every connection that serves it, and the
/// protocol limits of those connections. Cheap to clone. [`Server::builder`] starts listeners.
#[derive(Debug, Clone)]
pub struct Server {
    fs: Arc<RegistryFs>,
    limits: Limits,
}

impl Default for Server {
    fn default() -> Self {
        Server::new()
    }
}

impl Server {
    /// A builder of a listening server with no address yet (it listens on [`DEFAULT_LISTEN`] if
    /// none is added).
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// The file tree over the catalog, for the in-process front-ends.
    pub(super) fn fs(&self) -> &Arc<RegistryFs> {
        &self.fs
    }

    /// An empty registry started now.
    pub fn new() -> Server {
        Server {
            fs: Arc::new(RegistryFs::new(Catalog::new(now()))),
            limits: Limits::default(),
        }
    }

    /// The change feed's limits (history kept, changes queued per watcher): see [`FeedLimits`].
    pub fn with_feed_limits(self, limits: FeedLimits) -> Server {
        self.fs.catalog().set_feed_limits(limits);
        self
    }

    /// Without the change feed: attach name `feed` gives the registry's tree, as every attach
    /// name does in Inferno's registry (a server for testing clients against Inferno's exact
    /// behaviour).
    pub fn without_feed(self) -> Server {
        self.fs.set_feed(false);
        self
    }

    /// The registry with its catalog in etcd (`registry serve --etcd`): several servers with the
    /// same endpoints and prefix serve one catalog. Loads what etcd holds, takes this server's
    /// lease and keeps it alive. Call it on a new server, before serving; static services added
    /// afterwards stay this server's own.
    #[cfg(feature = "etcd")]
    pub async fn with_etcd(self, cfg: &EtcdConfig) -> Result<Server, ServerError> {
        self.fs
            .use_etcd(cfg)
            .await
            .map_err(|e| ServerError::Store(e.to_string()))?;
        Ok(self)
    }

    /// With its catalog in etcd, ends this server's lease at once: its non-persistent
    /// registrations go from every front-end now instead of a lease TTL later (a clean stop).
    /// Without etcd, nothing. Serve no more changes after it.
    pub async fn close(&self) {
        self.fs.close_store().await;
    }

    /// The same registry with other protocol limits for the connections it serves from now on.
    pub fn with_limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    /// How many services are registered (named ones; an opened `new` not yet written is not
    /// counted).
    pub fn len(&self) -> usize {
        self.fs.catalog().named().count()
    }

    /// Whether no service is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The owner of the service `name` (the user whose connection registered it, or `registry`
    /// for static services), if it is registered.
    pub fn owner(&self, name: &str) -> Option<String> {
        if name.is_empty() {
            return None;
        }
        let st = self.fs.catalog();
        let id = st.lookup(name)?;
        st.entry(id).map(|s| s.owner.to_string())
    }

    /// Adds the static services of an attrdb(6) text (`-f dbfile`). Returns the diagnostics of
    /// the lines and entries that were skipped, as Inferno skips them.
    pub fn load_static(&self, text: &str) -> Vec<String> {
        let (entries, errors) = attrdb::parse_lenient(text);
        let mut notes: Vec<String> = errors.iter().map(ToString::to_string).collect();
        notes.extend(self.add_static_entries(&entries));
        notes
    }

    /// Adds the static services of these entries; returns why any could not be added.
    fn add_static_entries<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a attrdb::Entry>,
    ) -> Vec<String> {
        let mut notes = Vec::new();
        let t = now();
        let mut st = self.fs.catalog();
        for (name, attrs) in attrdb::static_services(entries) {
            if let Err(e) = st.add_static(&name, attrs, t) {
                notes.push(format!("service {}: {e}", crate::wire::quote(&name)));
            }
        }
        notes
    }

    /// Reads and loads an attrdb(6) database: the file and the files its `database` entry names
    /// (see [`attrdb::files`]); see [`Server::load_static`].
    pub fn load_static_file(&self, path: &Path) -> Result<Vec<String>, ServerError> {
        let db = attrdb::open(path).map_err(|source| ServerError::Static {
            path: path.to_path_buf(),
            source,
        })?;
        let mut notes = db.diagnostics();
        notes.extend(self.add_static_entries(db.entries()));
        Ok(notes)
    }

    /// Serves 9P on one already-accepted stream until it ends. When it returns, everything the
    /// connection registered without `persist` is gone and watchers have been told. With etcd,
    /// a session expiry (the lease unconfirmed for its TTL: spec/etcd.md) ends it too.
    pub async fn serve_connection<S>(&self, stream: S, ctx: ConnCtx) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let serving = serve_connection(stream, self.fs.clone(), ctx, self.limits.clone());
        if self.fs.in_memory() {
            return serving.await;
        }
        let expiry = self.fs.session_expiry(self.fs.session_epoch());
        tokio::select! {
            r = serving => r,
            () = expiry => Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "closed: the registry's etcd lease went unconfirmed for its TTL",
            )),
        }
    }

    /// Authenticates one already-accepted stream with `auth`, then serves 9P on it as the
    /// authenticated user (the Tattach uname is ignored). A failed authentication is an
    /// `io::ErrorKind::PermissionDenied` error carrying auth's diagnostic; the stream is dropped,
    /// which closes it.
    pub async fn serve_authenticated<S>(
        &self,
        stream: S,
        peer: String,
        auth: &ServerAuth,
    ) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (stream, user) = match auth.accept(stream).await {
            Ok(ok) => {
                crate::metrics::authentication(Ok(()));
                ok
            }
            Err(e) => {
                crate::metrics::authentication(Err(e.reason()));
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("authentication failed: {e}"),
                ));
            }
        };
        tracing::info!(
            "registry: {peer}: authenticated as {user}, algorithm {}",
            stream.alg()
        );
        let ctx = ConnCtx {
            authenticated_user: Some(user),
            peer,
            settled: crate::net::settle_flag(),
        };
        self.serve_connection(stream, ctx).await
    }
}

/// Builds a listening registry server.
#[derive(Debug, Default)]
pub struct ServerBuilder {
    listen: Vec<Addr>,
    static_files: Vec<PathBuf>,
    registry: Option<Server>,
    auth: Option<ServerAuth>,
}

impl ServerBuilder {
    /// Also listen on `addr`.
    pub fn listen(mut self, addr: Addr) -> ServerBuilder {
        self.listen.push(addr);
        self
    }

    /// Also listen on a dial string (`tcp!*!6675`, `tcp!127.0.0.1!0`, `unix!/path`).
    pub fn listen_str(self, addr: &str) -> Result<ServerBuilder, ServerError> {
        Ok(self.listen(Addr::parse(addr, "registry")?))
    }

    /// Load static services from an attrdb(6) file at start.
    pub fn static_file(mut self, path: impl Into<PathBuf>) -> ServerBuilder {
        self.static_files.push(path.into());
        self
    }

    /// Serve this registry instead of a fresh one.
    pub fn server(mut self, registry: Server) -> ServerBuilder {
        self.registry = Some(registry);
        self
    }

    /// Require infpk1 on every listener, with this key file and these algorithm names
    /// (see [`ServerAuth::new`]; pass [`DEFAULT_SERVER_ALGS`] for `listen`'s default). The
    /// authenticated user owns what its connection registers; a connection that fails to
    /// authenticate is logged and closed.
    pub fn auth<I, A>(self, info: AuthInfo, algs: I) -> ServerBuilder
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.server_auth(ServerAuth::new(info, algs))
    }

    /// Like [`ServerBuilder::auth`], with a prepared [`ServerAuth`].
    pub fn server_auth(mut self, auth: ServerAuth) -> ServerBuilder {
        self.auth = Some(auth);
        self
    }

    /// Loads the static files, announces every address and starts accepting.
    pub async fn start(self) -> Result<RunningServer, ServerError> {
        let registry = self.registry.unwrap_or_default();
        for path in &self.static_files {
            for note in registry.load_static_file(path)? {
                tracing::warn!("registry: {}: {note}", path.display());
            }
        }
        let addrs = if self.listen.is_empty() {
            vec![Addr::parse(DEFAULT_LISTEN, "registry")?]
        } else {
            self.listen
        };
        let mut listeners = Vec::new();
        for addr in addrs {
            let listener = Listener::bind(&addr)
                .await
                .map_err(|source| ServerError::Listen {
                    addr: addr.to_string(),
                    source,
                })?;
            listeners.push((listener, ()));
        }
        let local = listeners
            .iter()
            .map(|(l, _)| l.local_addr().clone())
            .collect();
        let mut accepting = Accepting::new();
        let (served, auth) = (registry.clone(), self.auth.clone());
        // The listener's name in logs and in the connection metrics.
        let name = if auth.is_some() { "9p-auth" } else { "9p" };
        accepting.spawn(
            name,
            listeners,
            registry.limits.max_connections,
            // A silent socket must not shut clients out: at the cap, a newcomer takes the place
            // of the oldest connection that has not attached.
            AtCap::EvictUnsettled {
                evict_metric: "9p_evicted",
            },
            move |(), stream, peer| serve_accepted(served.clone(), stream, peer, auth.clone()),
        );
        Ok(RunningServer {
            registry,
            local,
            accepting,
            auth: self.auth,
        })
    }
}

/// A server that is accepting connections.
#[derive(Debug)]
pub struct RunningServer {
    registry: Server,
    local: Vec<Addr>,
    accepting: Accepting,
    auth: Option<ServerAuth>,
}

impl RunningServer {
    /// The authentication the listeners require, if any.
    pub fn auth(&self) -> Option<&ServerAuth> {
        self.auth.as_ref()
    }

    /// The addresses actually bound, in the order given (port 0 replaced by the real port).
    pub fn local_addrs(&self) -> &[Addr] {
        &self.local
    }

    /// The first address bound: what a client of this server dials
    /// (`Registry::open(running.addr())`). Every built server listens on at least one.
    pub fn addr(&self) -> &Addr {
        &self.local[0]
    }

    /// The registry being served.
    pub fn server(&self) -> &Server {
        &self.registry
    }

    /// Serves one more, already-accepted stream on this registry (see [`Server::serve_connection`]).
    /// It does not authenticate, even when the listeners do: for that, pass the stream and
    /// [`RunningServer::auth`] to [`Server::serve_authenticated`].
    pub async fn serve_stream<S>(&self, stream: S, ctx: ConnCtx) -> io::Result<()>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        self.registry.serve_connection(stream, ctx).await
    }

    /// Stops accepting and drops every connection.
    pub async fn shutdown(self) {
        self.accepting.shutdown().await;
    }

    /// Runs until every listener has failed (normally: forever).
    pub async fn wait(self) {
        self.accepting.wait().await;
    }
}

/// Serves one accepted connection, logging how it ended.
async fn serve_accepted(registry: Server, stream: Stream, peer: String, auth: Option<ServerAuth>) {
    tracing::info!("registry: {peer}: connected");
    match serve_one(&registry, stream, peer.clone(), auth.as_ref()).await {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            // The server keeps running; only this connection is refused.
            tracing::warn!("registry: {peer}: {e}");
        }
        Err(e) => tracing::info!("registry: {peer}: closed: {e}"),
        Ok(()) => tracing::info!("registry: {peer}: closed"),
    }
}

/// Serves one accepted connection, authenticating it first when the server requires it.
async fn serve_one<S>(
    registry: &Server,
    stream: S,
    peer: String,
    auth: Option<&ServerAuth>,
) -> io::Result<()>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    match auth {
        // Boxed: the handshake and the ssl layer are large, and a connection without them
        // should not carry their room.
        Some(auth) => Box::pin(registry.serve_authenticated(stream, peer, auth)).await,
        None => {
            let ctx = ConnCtx {
                authenticated_user: None,
                peer,
                settled: crate::net::settle_flag(),
            };
            registry.serve_connection(stream, ctx).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_key() -> AuthInfo {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("spec/vectors/keys/set1/server.keyfile");
        AuthInfo::read(&path).unwrap()
    }

    #[test]
    fn server_auth_lists_and_debug() {
        let auth = ServerAuth::listen_default(server_key());
        assert_eq!(auth.algs(), DEFAULT_SERVER_ALGS);
        assert!(!auth.algs().iter().any(|a| a == "clear"));
        // Debug names the owner but never prints the secret key.
        let shown = format!("{auth:?}");
        assert!(shown.contains("\"server\""), "{shown}");
        assert!(!shown.contains("sk"), "{shown}");
        let narrow = ServerAuth::new(server_key(), ["sha1"]);
        assert_eq!(narrow.algs(), ["sha1".to_string()]);
    }

    #[tokio::test]
    async fn unauthenticated_stream_is_refused() {
        let registry = Server::new();
        let auth = ServerAuth::listen_default(server_key());
        let (ours, theirs) = tokio::io::duplex(4096);
        // A 9P Tversion where infpk1's first message belongs.
        let client = tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut ours = ours;
            let _ = ours.write_all(b"\x13\x00\x00\x00\x64\xff\xff").await;
            let mut sink = Vec::new();
            let _ = ours.read_to_end(&mut sink).await;
        });
        let e = registry
            .serve_authenticated(theirs, "test".into(), &auth)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().starts_with("authentication failed: "), "{e}");
        client.await.unwrap();
        assert_eq!(registry.len(), 0);
    }
}
