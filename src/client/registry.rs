//! `Registry`: one registry(4) instance and the registries(2) operations on it.

use super::attributes::Attributes;
use super::conn::Conn;
use super::error::{Error, Result};
use super::events::{EventShare, Events};
use super::feed::{Changes, FeedReader, Revision};
use super::host::HostDir;
use super::monitor::Monitor;
use super::namespace;
use super::registered::Registered;
use super::service::Service;
use super::styx_backend::StyxSession;
use super::transport::Backend;
use crate::wire::FeedStart;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where Limbo's `Registry.new(nil)` and `Registry.connect` put the registry.
pub const DEFAULT_DIR: &str = "/mnt/registry";

/// A connection to one registry. Cloning is cheap: clones share the connection.
#[derive(Clone)]
pub struct Registry {
    dir: PathBuf,
    backend: Arc<Backend>,
    events: Arc<EventShare>,
    /// How long each operation may wait for the registry ([`Registry::with_timeout`]).
    timeout: Option<Duration>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The user name to attach as when none is given: `$USER`, else `none`.
fn default_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "none".to_string())
}

impl Registry {
    /// The registry at `dir` in the name space (Limbo's `Registry.new`): a connection mounted there
    /// in this process (see [`super::namespace`]), or else a host directory holding the
    /// registry's files. Opens `dir/index` once, and fails if it cannot.
    pub async fn new(dir: impl AsRef<Path>) -> Result<Registry> {
        let dir = dir.as_ref();
        let backend = match namespace::lookup(dir) {
            Some(session) => Backend::Styx(Arc::new(session.reopen().await.map_err(|e| {
                Error::NoRegistry {
                    dir: dir.display().to_string(),
                    reason: e.to_string(),
                }
            })?)),
            None => Backend::Host(HostDir::open(dir).await?),
        };
        Ok(Registry {
            dir: dir.to_path_buf(),
            backend: Arc::new(backend),
            events: Arc::default(),
            timeout: None,
        })
    }

    /// Connects to the registry that `svc` describes (Limbo's `Registry.connect`): by default
    /// `net!$registry!registry` with `auth none` (`$registry` from the environment variable
    /// `registry`, else `localhost`). Attaches with [`Service::attach`], mounts the connection at
    /// `/mnt/registry` in this process's name space and opens its `index`.
    pub async fn connect(
        svc: Option<&Service>,
        user: Option<&str>,
        keydir: Option<&Path>,
    ) -> Result<Registry> {
        let default;
        let svc = match svc {
            Some(s) => s,
            None => {
                default = Service::new(
                    crate::net::DEFAULT_REGISTRY,
                    Attributes::new([("auth", "none")]),
                );
                &default
            }
        };
        let attached = svc.attach(user, keydir).await?;
        let user = attached
            .localuser
            .clone()
            .or_else(|| user.map(str::to_string));
        let reg = Registry::connect_stream(attached.fd, user.as_deref()).await?;
        reg.mount(DEFAULT_DIR)?;
        Ok(Registry {
            dir: PathBuf::from(DEFAULT_DIR),
            ..reg
        })
    }

    /// Dials the registry at `addr` and authenticates with the key file `info` and algorithm
    /// `alg` (empty: `none`) before speaking 9P, as Inferno's `mount -k KEYFILE -C ALG` does
    /// (spec/infpk1.md §9.3); the Tattach names the key's owner, though an authenticating server
    /// goes by the key alone. Nothing is mounted (see [`Registry::mount`]).
    pub async fn connect_with_key(
        addr: &str,
        info: &crate::auth::AuthInfo,
        alg: &str,
    ) -> Result<Registry> {
        let conn = super::conn::dial_with_key(addr, info, alg).await?;
        Registry::connect_stream(conn, Some(&info.mypk.owner)).await
    }

    /// Speaks 9P2000 to a registry over `conn` (a connected, and if need be authenticated, stream):
    /// Tversion, Tattach as `user` (default `$USER`), then opens `index`. Nothing is mounted; see
    /// [`Registry::mount`].
    pub async fn connect_stream(conn: impl Conn, user: Option<&str>) -> Result<Registry> {
        let user = user.map_or_else(default_user, str::to_string);
        let session = StyxSession::attach(Box::new(conn), &user).await?;
        Ok(Registry {
            dir: PathBuf::new(),
            backend: Arc::new(Backend::Styx(Arc::new(session))),
            events: Arc::default(),
            timeout: None,
        })
    }

    /// The registry behind a TCP shim (Inferno::RegMgr::TCP, spec/registry.md §8) at `host` and
    /// `ports` (usually [`ShimPorts::DEFAULT`](crate::wire::ShimPorts::DEFAULT): 6701, 6702,
    /// 6703). The same operations work, except [`Registry::unregister`], which the shim cannot
    /// express ([`Error::Unsupported`]): close the [`Registered`] instead. Fails unless the event
    /// port answers `READY`.
    pub async fn connect_shim(host: &str, ports: crate::wire::ShimPorts) -> Result<Registry> {
        let client = super::shim_backend::ShimClient::connect(host, ports).await?;
        Ok(Registry {
            dir: PathBuf::new(),
            backend: Arc::new(Backend::Shim(client)),
            events: Arc::default(),
            timeout: None,
        })
    }

    /// Mounts this registry's 9P connection at `dir` in this process's name space, so that
    /// [`Registry::new`] finds it there.
    pub fn mount(&self, dir: impl AsRef<Path>) -> Result<()> {
        match &*self.backend {
            Backend::Styx(s) => {
                namespace::mount(dir.as_ref(), Arc::clone(s));
                Ok(())
            }
            Backend::Host(_) | Backend::Shim(_) => Err(Error::Unsupported(
                "only a 9P registry connection can be mounted",
            )),
        }
    }

    /// Sets how long the registry may stay silent before this connection is given up (the
    /// heartbeat: after half of it without a word from the registry a Tstat of the root goes
    /// out; spec/registry.md §11). Default [`DEFAULT_HEARTBEAT`](super::DEFAULT_HEARTBEAT);
    /// `Duration::ZERO` turns it off. Applies to the 9P connection, and so to every clone of
    /// this `Registry`; a host directory or the TCP shim has none.
    pub fn set_heartbeat(&self, bound: std::time::Duration) {
        if let Backend::Styx(s) = &*self.backend {
            s.set_heartbeat(bound);
        }
    }

    /// Where the registry is in the name space (empty for an unmounted stream connection).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every registered service, as `index` lists them now. An empty list when there are none.
    pub async fn services(&self) -> Result<Vec<Service>> {
        let text = self.limit("services", self.backend.index()).await?;
        Ok(Service::parse_all(&text))
    }

    /// The services that have every attribute in `attrs` with an equal value; a value `*`
    /// matches any value of an attribute the service has. No pairs: every service.
    pub async fn find<A: AsRef<str>, V: AsRef<str>>(
        &self,
        attrs: &[(A, V)],
    ) -> Result<Vec<Service>> {
        let query = crate::wire::format_pairs(attrs.iter().map(|(a, v)| (a.as_ref(), v.as_ref())));
        let text = self.limit("find", self.backend.find(query)).await?;
        Ok(Service::parse_all(&text))
    }

    /// Who owns each registered service (beyond Limbo's API): the owner of its file, as
    /// `ls -l /mnt/registry` shows it, by name. Empty through the TCP shim, which does not
    /// carry owners, and for a registry opened with [`Registry::new`].
    pub async fn owners(&self) -> Result<std::collections::HashMap<String, String>> {
        self.limit("owners", self.backend.owners()).await
    }

    /// Writes `query` to `find` exactly as given and returns the reply text exactly as read, as
    /// Inferno's ndb/regquery does (no client-side checks; the registry's diagnostic on error).
    pub async fn find_raw(&self, query: &str) -> Result<String> {
        self.limit("find", self.backend.find(query.to_string()))
            .await
    }

    /// Opens the registry named by `target`, as the `registry` command's `-m` does: an existing
    /// directory is opened with [`Registry::new`] (like ndb/regquery's mount point), anything else
    /// is a dial string connected to with `auth none`. `target` is anything that prints as one:
    /// `"tcp!host!6675"`, a `String`, or a server's [`net::Addr`](crate::net::Addr).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), registries::Error> {
    /// let reg = registries::Registry::open("tcp!127.0.0.1!6675").await?;
    /// # Ok(()) }
    /// ```
    pub async fn open(target: impl std::fmt::Display) -> Result<Registry> {
        let target = target.to_string();
        if Path::new(&target).is_dir() {
            return Registry::new(&target).await;
        }
        let svc = Service::new(target, Attributes::new([("auth", "none")]));
        Registry::connect(Some(&svc), None, None).await
    }

    /// [`Registry::open`] within `limit` (dialling, authenticating, attaching), with every later
    /// operation limited to it too ([`Registry::with_timeout`]). [`Error::Timeout`] when the
    /// registry does not answer in time.
    pub async fn open_with_timeout(
        target: impl std::fmt::Display,
        limit: Duration,
    ) -> Result<Registry> {
        let reg = within(limit, "open", Registry::open(target)).await?;
        Ok(reg.with_timeout(limit))
    }

    /// This registry with each operation limited to `limit` (a find, a registration, an update,
    /// opening events or changes; not the wait for the next change): past it the operation
    /// fails with [`Error::Timeout`], and its outcome, for a registration, is unknown. Clones
    /// made after this share the limit.
    pub fn with_timeout(mut self, limit: Duration) -> Registry {
        self.timeout = Some(limit);
        self
    }

    /// Runs `f` within this registry's timeout, if it has one.
    pub(crate) async fn limit<T>(
        &self,
        what: &'static str,
        f: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.timeout {
            Some(limit) => within(limit, what, f).await,
            None => f.await,
        }
    }

    /// Registers a service named `addr` with `attrs` (written in list order). With `persist` the
    /// entry outlives the returned [`Registered`] (` persist 1` is appended); otherwise dropping
    /// or closing it unregisters the service.
    pub async fn register(
        &self,
        addr: &str,
        attrs: &Attributes,
        persist: bool,
    ) -> Result<Registered> {
        let line = crate::wire::register_line(addr, attrs.iter(), persist);
        let handle = self.limit("register", self.backend.register(line)).await?;
        Ok(Registered::new(addr.to_string(), self.clone(), handle))
    }

    /// Removes the service named `addr`. Only its owner may.
    pub async fn unregister(&self, addr: &str) -> Result<()> {
        self.limit("unregister", self.backend.unregister(addr))
            .await
    }

    /// The registry's change counts, one item per coalesced change after this call. Fails (at
    /// once, or as the first item) with [`Error::NoEvents`] on a registry without `event`. The
    /// streams of one connection (this `Registry` and its clones) share one `event` read.
    pub async fn events(&self) -> Result<Events> {
        self.limit("events", self.events.subscribe(&self.backend))
            .await
    }

    /// The changes of the services matching `query` (`find`'s rules), each with its revision,
    /// from the change feed (spec/feed.md): from now on (`from` = `None`), or from revision
    /// `from` on, so that a watcher that lost its connection resumes without losing or
    /// repeating a change. [`Error::NoFeed`] from a registry without a feed (a real Inferno
    /// one); [`Error::Compacted`] when `from` is older than anything the registry keeps.
    pub async fn changes<A: AsRef<str>, V: AsRef<str>>(
        &self,
        query: &[(A, V)],
        from: Option<Revision>,
    ) -> Result<Changes> {
        let start = from.map_or(FeedStart::Now, FeedStart::From);
        let reader = self
            .limit("changes", FeedReader::open(self, query, start))
            .await?;
        Ok(Changes::new(reader))
    }

    /// The changes of every service ([`Registry::changes`] with no query).
    pub async fn changes_all(&self, from: Option<Revision>) -> Result<Changes> {
        self.changes::<&str, &str>(&[], from).await
    }

    /// The transport, for the client's other modules.
    pub(crate) fn backend(&self) -> &Backend {
        &self.backend
    }

    /// A [`Monitor`] of the services matching `filter`.
    pub async fn monitor<A: AsRef<str>, V: AsRef<str>>(
        &self,
        filter: &[(A, V)],
    ) -> Result<Monitor> {
        self.limit("monitor", Monitor::new(self, filter)).await
    }

    /// A [`Dialer`](super::Dialer) over the services matching `query`: its `connect` picks a
    /// live one (power of two choices on the connections it holds open), attaches to it, and
    /// tries another when one refuses.
    ///
    /// ```no_run
    /// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
    /// let echo = reg.dialer(&[("proto", "echo")]).await?;
    /// let conn = echo.connect().await?; // an `Attached`: its `fd` is the connection
    /// # Ok(()) }
    /// ```
    pub async fn dialer<A: AsRef<str>, V: AsRef<str>>(
        &self,
        query: &[(A, V)],
    ) -> Result<super::Dialer> {
        super::Dialer::new(self, query).await
    }

    /// A [`Monitor`] of every service (no filter).
    ///
    /// ```no_run
    /// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
    /// let mut all = reg.monitor_all().await?;
    /// while let Some(change) = all.next().await {
    ///     println!("{:?}", change?);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn monitor_all(&self) -> Result<Monitor> {
        self.monitor::<&str, &str>(&[]).await
    }
}

/// Runs `f` within `limit`: [`Error::Timeout`] naming `what` when it does not finish.
async fn within<T>(
    limit: Duration,
    what: &'static str,
    f: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout { what, after: limit }),
    }
}
