//! A manager that keeps registrations, lookups and monitors working across registry restarts and
//! network failures, like the Perl module Inferno::RegMgr (spec/registry.md §9), over 9P or the TCP
//! shim.
//!
//! One task owns a connection to the registry, made by a [`Connector`]. When it is lost (the
//! `event` stream fails), the manager reconnects with a capped, jittered exponential backoff
//! (by default 50–100 ms at first, never more than 1 s), then, in this order: opens `event` (so
//! that nothing is missed), registers every [`ServiceHandle`] again, answers pending lookups, and
//! lets every [`MonitorHandle`] look again and report only the differences across the gap.
//! Services missing right after a reconnection get a grace period ([`Config::settle`]) to be
//! registered again by their owners before they are reported removed, so a registry restart
//! shows no spurious removal and addition.
//!
//! A service may also carry health checks (feature `health`: `Manager::register_checked`,
//! `CheckSpec`): TCP, HTTP or a command, run on the registering side as Consul's agent checks
//! are. While one is critical the registration is withdrawn; it is made again when they
//! recover. The registry protocol is unchanged.
//!
//! | Inferno::RegMgr | here |
//! |---|---|
//! | `Inferno::RegMgr->new(Inferno::RegMgr::TCP->new(...))` | `Manager::new(Connector::shim(host, ports))` |
//! | `Inferno::RegMgr::Service` + `attach` | [`Manager::register`] → [`ServiceHandle`] |
//! | `$service->update(\%attr)` | [`ServiceHandle::update`] |
//! | `Inferno::RegMgr::Lookup` | [`Manager::lookup`] (waits for a connection, retries) |
//! | `Inferno::RegMgr::Monitor` (`cb_add`, `cb_mod`, `cb_del`) | [`Manager::monitor`] → [`Change`](crate::client::Change) |
//! | `detach` | drop the handle (or [`ServiceHandle::close`]) |
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), registries::manager::ManagerError> {
//! use registries::client::{Attributes, Change};
//! use registries::manager::{Connector, Manager};
//! let mgr = Manager::new(Connector::styx("tcp!127.0.0.1!6675"));
//! // Kept registered for as long as `svc` lives, across registry restarts.
//! let svc = mgr.register("tcp!myhost!7001", Attributes::new([("proto", "styx")]));
//! svc.wait_registered().await?;
//! let mut peers = mgr.monitor(&[("proto", "styx")]);
//! while let Some(change) = peers.next().await {
//!     match change {
//!         Change::Added(s) => println!("up: {s}"),
//!         Change::Changed(s) => println!("changed: {s}"),
//!         Change::Removed(s) => println!("down: {}", s.addr),
//!     }
//! }
//! # Ok(()) }
//! ```

mod backoff;
mod connector;
mod diff;
mod handles;
#[cfg(feature = "health")]
mod health;
mod supervisor;

pub use backoff::Backoff;
pub use connector::Connector;
pub use handles::{ManagerError, MonitorHandle, ServiceHandle, Status};
#[cfg(feature = "health")]
pub use health::{Check, CheckParseError, CheckSpec, Health};

use crate::client::{Attributes, Service};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use supervisor::{Cmd, Inbox};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// The manager's timing.
#[derive(Debug, Clone)]
pub struct Config {
    /// First reconnection step (the delay is drawn from its upper half). Default 100 ms.
    pub initial_backoff: Duration,
    /// Largest reconnection step. Default 1 s.
    pub max_backoff: Duration,
    /// How long one connection attempt may take. Default 5 s.
    pub connect_timeout: Duration,
    /// After a reconnection, how long services that monitors knew may take to reappear before
    /// they are reported removed. Default 1 s.
    pub settle: Duration,
    /// How often to look again when the registry has no `event` file. Default 1 s.
    pub poll_interval: Duration,
    /// How long the registry may stay silent before the connection is given up and another
    /// made (the 9P heartbeat: [`Registry::set_heartbeat`](crate::client::Registry::set_heartbeat)).
    /// Default [`DEFAULT_HEARTBEAT`](crate::client::DEFAULT_HEARTBEAT), 10 s; zero: off.
    pub heartbeat: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(5),
            settle: Duration::from_secs(1),
            poll_interval: Duration::from_secs(1),
            heartbeat: crate::client::DEFAULT_HEARTBEAT,
        }
    }
}

/// Keeps services registered and monitors up to date, reconnecting as needed. Dropping it (or
/// [`Manager::shutdown`]) stops everything and unregisters the services.
#[derive(Debug)]
pub struct Manager {
    cmds: mpsc::UnboundedSender<Cmd>,
    status: watch::Receiver<Status>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
    next_id: AtomicU64,
}

impl Manager {
    /// A manager using `connector`, with the default [`Config`]. It starts connecting at once.
    /// Must be called within a Tokio runtime.
    pub fn new(connector: Connector) -> Manager {
        Manager::with_config(connector, Config::default())
    }

    /// A manager with other timing.
    pub fn with_config(connector: Connector, config: Config) -> Manager {
        let (cmds, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        let (status_tx, status) = watch::channel(Status::default());
        let inbox = Inbox {
            cmds: rx,
            stop: stop_rx,
        };
        let task = tokio::spawn(supervisor::run(connector, config, inbox, status_tx));
        Manager {
            cmds,
            status,
            stop,
            task: Some(task),
            next_id: AtomicU64::new(1),
        }
    }

    fn id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Keeps the service `addr` with `attrs` registered (never persistent: it goes when the
    /// handle does).
    pub fn register(&self, addr: impl Into<String>, attrs: Attributes) -> ServiceHandle {
        self.add_service(addr.into(), attrs, 0, |_, _| Vec::new())
    }

    /// Keeps the service `addr` with `attrs` registered while its health `checks` allow, as
    /// Consul's agent checks do: each runs in its own task every [`CheckSpec::interval`]; while
    /// any is critical the registration is withdrawn (readers see the service go), and it is made
    /// again, with the same name and attributes, when they all pass or warn. The service is
    /// first registered when every check has reported once without being critical. Each change
    /// of a check's state is logged (`registry: NAME: check STATE (output)`), and
    /// [`ServiceHandle::is_registered`] follows. No checks: as [`Manager::register`].
    ///
    /// ```no_run
    /// # async fn demo(mgr: registries::manager::Manager) -> Result<(), registries::manager::CheckParseError> {
    /// use registries::client::Attributes;
    /// use registries::manager::CheckSpec;
    /// let check = CheckSpec::parse("http://127.0.0.1:7002/health")?;
    /// let _svc = mgr.register_checked("tcp!myhost!7002", Attributes::new([("proto", "http")]), vec![check]);
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "health")]
    pub fn register_checked(
        &self,
        addr: impl Into<String>,
        attrs: Attributes,
        checks: Vec<CheckSpec>,
    ) -> ServiceHandle {
        let cmds = self.cmds.clone();
        self.add_service(addr.into(), attrs, checks.len(), |id, addr| {
            checks
                .into_iter()
                .enumerate()
                .map(|(index, spec)| health::spawn(id, index, addr.to_string(), spec, cmds.clone()))
                .collect()
        })
    }

    /// Registers `addr` with `n_checks` health checks, whose tasks `spawn` starts (given the
    /// service's id and name).
    fn add_service(
        &self,
        addr: String,
        attrs: Attributes,
        n_checks: usize,
        spawn: impl FnOnce(u64, &str) -> Vec<tokio::task::JoinHandle<()>>,
    ) -> ServiceHandle {
        let id = self.id();
        let (tx, rx) = watch::channel(false);
        let _ = self.cmds.send(Cmd::AddService {
            id,
            addr: addr.clone(),
            attrs,
            registered: tx,
            checks: n_checks,
        });
        let checks = spawn(id, &addr);
        ServiceHandle {
            id,
            cmds: self.cmds.clone(),
            registered: rx,
            closed: false,
            checks,
        }
    }

    /// The services matching `filter` (pairs as for [`Registry::find`](crate::client::Registry::find)),
    /// as soon as the registry can be reached: a lookup made while disconnected waits, and one
    /// interrupted by a lost connection runs again after reconnecting.
    pub async fn lookup<A: AsRef<str>, V: AsRef<str>>(
        &self,
        filter: &[(A, V)],
    ) -> Result<Vec<Service>, ManagerError> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Lookup {
                filter: pairs(filter),
                reply,
            })
            .map_err(|_| ManagerError::Stopped)?;
        Ok(rx.await.map_err(|_| ManagerError::Stopped)??)
    }

    /// Watches the services matching `filter`.
    pub fn monitor<A: AsRef<str>, V: AsRef<str>>(&self, filter: &[(A, V)]) -> MonitorHandle {
        let id = self.id();
        let (changes_tx, changes) = mpsc::unbounded_channel();
        let (services_tx, services) = watch::channel(Vec::new());
        let _ = self.cmds.send(Cmd::AddMonitor {
            id,
            filter: pairs(filter),
            changes: changes_tx,
            services: services_tx,
        });
        MonitorHandle {
            id,
            cmds: self.cmds.clone(),
            changes,
            services,
        }
    }

    /// The connection state now.
    pub fn status(&self) -> Status {
        *self.status.borrow()
    }

    /// Waits until the manager has a connection with at least `n` connections made so far
    /// (`n = 1`: connected at all; `n = 2`: reconnected once).
    pub async fn wait_connections(&self, n: u64) -> Result<Status, ManagerError> {
        let mut rx = self.status.clone();
        let s = rx
            .wait_for(|s| s.connected && s.connections >= n)
            .await
            .map_err(|_| ManagerError::Stopped)?;
        Ok(*s)
    }

    /// Stops, unregistering every service, and waits until that is done.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        // The task sees the stop and unregisters by itself.
        let _ = self.stop.send(true);
    }
}

fn pairs<A: AsRef<str>, V: AsRef<str>>(filter: &[(A, V)]) -> Vec<(String, String)> {
    filter
        .iter()
        .map(|(a, v)| (a.as_ref().to_string(), v.as_ref().to_string()))
        .collect()
}
