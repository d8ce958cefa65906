//! The manager's one task: it owns every registration, lookup and monitor, connects, and
//! re-establishes them all after a reconnection. Keeping all state in one task means no locks and
//! a clear order on reconnection: open `event` first (so no change is missed), register the
//! services, answer the lookups, then let the monitors look.

use super::Config;
use super::backoff::Backoff;
use super::connector::Connector;
use super::diff::compare;
use super::handles::Status;
use crate::client::{self, Attributes, Change, Events, Registered, Registry, Service};
use crate::wire::{self, Diagnostic};
use futures_util::StreamExt;
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

/// A request from a handle.
#[derive(Debug)]
pub(crate) enum Cmd {
    AddService {
        id: u64,
        addr: String,
        attrs: Attributes,
        registered: watch::Sender<bool>,
        /// How many health checks it has (all critical until they first report).
        checks: usize,
    },
    /// A health check of a service turned critical, or recovered.
    #[cfg_attr(not(feature = "health"), allow(dead_code))]
    CheckState {
        id: u64,
        index: usize,
        critical: bool,
    },
    UpdateService {
        id: u64,
        attrs: Attributes,
    },
    RemoveService {
        id: u64,
        done: Option<oneshot::Sender<()>>,
    },
    Lookup {
        filter: Vec<(String, String)>,
        reply: oneshot::Sender<client::Result<Vec<Service>>>,
    },
    AddMonitor {
        id: u64,
        filter: Vec<(String, String)>,
        changes: mpsc::UnboundedSender<Change>,
        services: watch::Sender<Vec<Service>>,
    },
    RemoveMonitor {
        id: u64,
    },
}

/// The registry connection is gone; reconnect.
#[derive(Debug)]
struct Lost;

/// Whether an error means the connection, rather than the request, failed.
fn is_lost(e: &client::Error) -> bool {
    matches!(
        e,
        client::Error::Io(_)
            | client::Error::Mount(_)
            | client::Error::Dial(_)
            | client::Error::Timeout { .. }
    )
}

/// The commands and the stop signal together.
pub(crate) struct Inbox {
    pub(crate) cmds: mpsc::UnboundedReceiver<Cmd>,
    pub(crate) stop: watch::Receiver<bool>,
}

impl Inbox {
    /// The next command; `None` when the manager is stopped. Cancel-safe.
    async fn recv(&mut self) -> Option<Cmd> {
        tokio::select! {
            biased;
            _ = self.stop.wait_for(|s| *s) => None,
            c = self.cmds.recv() => c,
        }
    }
}

struct Svc {
    addr: String,
    attrs: Attributes,
    held: Option<Registered>,
    retry: Backoff,
    retry_at: Option<Instant>,
    registered: watch::Sender<bool>,
    /// The health checks now critical: while any is, the service is not registered.
    critical: BTreeSet<usize>,
}

struct Mon {
    filter: Vec<(String, String)>,
    known: Vec<Service>,
    started: bool,
    grace_until: Option<Instant>,
    changes: mpsc::UnboundedSender<Change>,
    services: watch::Sender<Vec<Service>>,
}

struct Lookup {
    filter: Vec<(String, String)>,
    reply: oneshot::Sender<client::Result<Vec<Service>>>,
}

struct State {
    config: Config,
    services: BTreeMap<u64, Svc>,
    monitors: BTreeMap<u64, Mon>,
    lookups: Vec<Lookup>,
}

/// Runs the manager until it is stopped.
pub(crate) async fn run(
    connector: Connector,
    config: Config,
    mut inbox: Inbox,
    status: watch::Sender<Status>,
) {
    let mut st = State {
        config: config.clone(),
        services: BTreeMap::new(),
        monitors: BTreeMap::new(),
        lookups: Vec::new(),
    };
    let mut backoff = Backoff::new(config.initial_backoff, config.max_backoff);
    loop {
        let attempt = tokio::time::timeout(config.connect_timeout, connector.connect());
        tokio::pin!(attempt);
        let connected = loop {
            tokio::select! {
                r = &mut attempt => break r,
                c = inbox.recv() => match c {
                    Some(c) => st.apply_offline(c),
                    None => return,
                },
            }
        };
        if let Ok(Ok(reg)) = connected {
            reg.set_heartbeat(config.heartbeat);
            let events = match reg.events().await {
                Ok(e) => Ok(Some(e)),
                // An old registry without `event`: poll instead.
                Err(client::Error::NoEvents(_)) => Ok(None),
                Err(e) => Err(e),
            };
            if let Ok(events) = events {
                status.send_modify(|s| {
                    s.connected = true;
                    s.connections += 1;
                });
                let stopped = st.session(&reg, events, &mut inbox).await;
                status.send_modify(|s| s.connected = false);
                if stopped {
                    st.close_all().await;
                    return;
                }
                st.disconnect();
                // A connection was made: the registry is back, so the next attempts start from
                // the shortest step again. The pause below (at least half that step) still
                // bounds the rate of reconnections to a registry that keeps dropping them.
                backoff.reset();
            }
        } else if let Ok(Err(e)) = connected {
            tracing::debug!("manager: connect: {e}");
        }
        let pause = tokio::time::sleep(backoff.next_delay());
        tokio::pin!(pause);
        loop {
            tokio::select! {
                _ = &mut pause => break,
                c = inbox.recv() => match c {
                    Some(c) => st.apply_offline(c),
                    None => return,
                },
            }
        }
    }
}

/// The next event, or never when polling.
async fn next_event(events: &mut Option<Events>) -> Option<client::Result<u64>> {
    match events {
        Some(e) => e.next().await,
        None => std::future::pending().await,
    }
}

impl State {
    /// Serves one connection; returns whether the manager was stopped (else the connection was
    /// lost).
    async fn session(
        &mut self,
        reg: &Registry,
        mut events: Option<Events>,
        inbox: &mut Inbox,
    ) -> bool {
        let now = Instant::now();
        if self.start(reg, now).await.is_err() {
            return false;
        }
        let poll = self.config.poll_interval;
        let mut poll_at = events.is_none().then(|| now + poll);
        loop {
            let deadline = self.next_deadline(poll_at);
            let timer = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            let r = tokio::select! {
                ev = next_event(&mut events) => match ev {
                    Some(Ok(_)) => self.refresh_all(reg).await,
                    Some(Err(e)) => {
                        tracing::debug!("manager: events: {e}");
                        Err(Lost)
                    }
                    None => Err(Lost),
                },
                c = inbox.recv() => match c {
                    Some(c) => self.apply_online(c, reg).await,
                    None => return true,
                },
                _ = timer => {
                    let now = Instant::now();
                    let mut r = Ok(());
                    if poll_at.is_some_and(|p| p <= now) {
                        poll_at = Some(now + poll);
                        r = self.poll(reg).await;
                    }
                    match r {
                        Ok(()) => self.on_timer(reg, now).await,
                        e => e,
                    }
                }
            };
            if r.is_err() {
                return false;
            }
        }
    }

    /// After connecting: register every service, answer the lookups, let the monitors look
    /// (those that looked before get a grace period for services to come back).
    async fn start(&mut self, reg: &Registry, now: Instant) -> Result<(), Lost> {
        for svc in self.services.values_mut() {
            try_register(svc, reg, now).await?;
        }
        for lookup in std::mem::take(&mut self.lookups) {
            self.run_lookup(lookup, reg).await?;
        }
        let settle = self.config.settle;
        for mon in self.monitors.values_mut() {
            if mon.started {
                mon.grace_until = Some(now + settle);
            }
            refresh(mon, reg, now).await?;
        }
        Ok(())
    }

    /// The connection is gone: registrations with it.
    fn disconnect(&mut self) {
        for svc in self.services.values_mut() {
            svc.held = None;
            svc.retry_at = None;
            svc.retry.reset();
            let _ = svc.registered.send(false);
        }
    }

    /// The manager stops: unregister everything, waiting for the registry to be told.
    async fn close_all(&mut self) {
        for svc in self.services.values_mut() {
            if let Some(held) = svc.held.take() {
                let _ = held.close().await;
            }
        }
    }

    fn next_deadline(&self, poll_at: Option<Instant>) -> Option<Instant> {
        let retries = self.services.values().filter_map(|s| s.retry_at);
        let graces = self.monitors.values().filter_map(|m| m.grace_until);
        retries.chain(graces).chain(poll_at).min()
    }

    async fn on_timer(&mut self, reg: &Registry, now: Instant) -> Result<(), Lost> {
        for svc in self.services.values_mut() {
            if svc.retry_at.is_some_and(|t| t <= now) {
                try_register(svc, reg, now).await?;
            }
        }
        for mon in self.monitors.values_mut() {
            if mon.grace_until.is_some_and(|t| t <= now) {
                mon.grace_until = None;
                refresh(mon, reg, now).await?;
            }
        }
        Ok(())
    }

    /// Without events: look again, which also tells whether the connection is alive.
    async fn poll(&mut self, reg: &Registry) -> Result<(), Lost> {
        if self.monitors.is_empty() {
            return match reg.services().await {
                Err(e) if is_lost(&e) => Err(Lost),
                _ => Ok(()),
            };
        }
        self.refresh_all(reg).await
    }

    async fn refresh_all(&mut self, reg: &Registry) -> Result<(), Lost> {
        let now = Instant::now();
        for mon in self.monitors.values_mut() {
            refresh(mon, reg, now).await?;
        }
        Ok(())
    }

    async fn run_lookup(&mut self, lookup: Lookup, reg: &Registry) -> Result<(), Lost> {
        match reg.find(&lookup.filter).await {
            Err(e) if is_lost(&e) => {
                self.lookups.push(lookup);
                Err(Lost)
            }
            r => {
                let _ = lookup.reply.send(r);
                Ok(())
            }
        }
    }

    /// A command while disconnected: remember it for the next connection.
    fn apply_offline(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::AddService {
                id,
                addr,
                attrs,
                registered,
                checks,
            } => {
                let retry = Backoff::new(self.config.initial_backoff, self.config.max_backoff);
                self.services.insert(
                    id,
                    Svc {
                        addr,
                        attrs,
                        held: None,
                        retry,
                        retry_at: None,
                        registered,
                        critical: (0..checks).collect(),
                    },
                );
            }
            Cmd::CheckState {
                id,
                index,
                critical,
            } => {
                if let Some(svc) = self.services.get_mut(&id) {
                    set_critical(svc, index, critical);
                }
            }
            Cmd::UpdateService { id, attrs } => {
                if let Some(svc) = self.services.get_mut(&id) {
                    merge(&mut svc.attrs, &attrs);
                }
            }
            Cmd::RemoveService { id, done } => {
                self.services.remove(&id);
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Cmd::Lookup { filter, reply } => self.lookups.push(Lookup { filter, reply }),
            Cmd::AddMonitor {
                id,
                filter,
                changes,
                services,
            } => {
                self.monitors.insert(
                    id,
                    Mon {
                        filter,
                        known: Vec::new(),
                        started: false,
                        grace_until: None,
                        changes,
                        services,
                    },
                );
            }
            Cmd::RemoveMonitor { id } => {
                self.monitors.remove(&id);
            }
        }
    }

    /// A command while connected: remember it and act on it now.
    async fn apply_online(&mut self, cmd: Cmd, reg: &Registry) -> Result<(), Lost> {
        let now = Instant::now();
        match cmd {
            Cmd::AddService { id, .. } => {
                self.apply_offline(cmd);
                if let Some(svc) = self.services.get_mut(&id) {
                    try_register(svc, reg, now).await?;
                }
            }
            Cmd::CheckState {
                id,
                index,
                critical,
            } => {
                if let Some(svc) = self.services.get_mut(&id) {
                    let was = svc.critical.is_empty();
                    set_critical(svc, index, critical);
                    match (was, svc.critical.is_empty()) {
                        (true, false) => withdraw(svc).await,
                        (false, true) => try_register(svc, reg, now).await?,
                        _ => {}
                    }
                }
            }
            Cmd::UpdateService { id, attrs } => {
                if let Some(svc) = self.services.get_mut(&id) {
                    merge(&mut svc.attrs, &attrs);
                    if let Some(held) = svc.held.as_mut()
                        && let Err(e) = held.update(&attrs).await
                    {
                        if is_lost(&e) {
                            return Err(Lost);
                        }
                        tracing::warn!("manager: update {}: {e}", svc.addr);
                    }
                }
            }
            Cmd::RemoveService { id, done } => {
                if let Some(mut svc) = self.services.remove(&id)
                    && let Some(held) = svc.held.take()
                {
                    let _ = held.close().await;
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Cmd::Lookup { filter, reply } => {
                self.run_lookup(Lookup { filter, reply }, reg).await?;
            }
            Cmd::AddMonitor { id, .. } => {
                self.apply_offline(cmd);
                if let Some(mon) = self.monitors.get_mut(&id) {
                    refresh(mon, reg, now).await?;
                }
            }
            Cmd::RemoveMonitor { .. } => self.apply_offline(cmd),
        }
        Ok(())
    }
}

/// Adds or changes `update`'s pairs in `attrs`, as the registry does with an update write.
fn merge(attrs: &mut Attributes, update: &Attributes) {
    for (a, v) in update.iter() {
        attrs.set(a, v);
    }
}

/// Marks a health check of `svc` critical or not.
fn set_critical(svc: &mut Svc, index: usize, critical: bool) {
    if critical {
        svc.critical.insert(index);
    } else {
        svc.critical.remove(&index);
    }
}

/// A health check turned critical: the registration is closed (every reader of the registry sees
/// the service go and `event` wakes) and not retried until the checks recover.
async fn withdraw(svc: &mut Svc) {
    svc.retry_at = None;
    svc.retry.reset();
    if let Some(held) = svc.held.take() {
        let _ = held.close().await;
    }
    let _ = svc.registered.send(false);
}

/// Registers `svc` unless a health check of it is critical; a refusal (e.g. the name is still held by our previous, dying connection)
/// is retried later. A persistent service (`persist 1`) outlives the connection that made it, so
/// when its name is taken after a lost connection, the entry there is taken to be ours from
/// before (a restarted registry would have lost it) and counts as registered.
async fn try_register(svc: &mut Svc, reg: &Registry, now: Instant) -> Result<(), Lost> {
    if !svc.critical.is_empty() {
        return Ok(());
    }
    let result = reg.register(&svc.addr, &svc.attrs, false).await;
    if let Err(client::Error::Registry(Diagnostic::Duplicate)) = &result
        && wire::persists(svc.attrs.iter())
    {
        tracing::debug!("manager: {} is still registered (persistent)", svc.addr);
        svc.retry_at = None;
        svc.retry.reset();
        let _ = svc.registered.send(true);
        return Ok(());
    }
    match result {
        Ok(held) => {
            svc.held = Some(held);
            svc.retry_at = None;
            svc.retry.reset();
            let _ = svc.registered.send(true);
            Ok(())
        }
        Err(e) if is_lost(&e) => Err(Lost),
        Err(e) => {
            tracing::debug!("manager: register {}: {e}", svc.addr);
            svc.retry_at = Some(now + svc.retry.next_delay());
            Ok(())
        }
    }
}

/// Looks again for a monitor's services and reports the differences.
async fn refresh(mon: &mut Mon, reg: &Registry, now: Instant) -> Result<(), Lost> {
    let found = match reg.find(&mon.filter).await {
        Ok(f) => f,
        Err(e) if is_lost(&e) => return Err(Lost),
        Err(e) => {
            tracing::warn!("manager: monitor find: {e}");
            return Ok(());
        }
    };
    let grace = mon.grace_until.is_some_and(|g| now < g);
    let outcome = compare(&mon.known, found, grace);
    if !outcome.held_back {
        mon.grace_until = None;
    }
    for change in outcome.changes {
        let _ = mon.changes.send(change);
    }
    mon.known = outcome.known;
    mon.started = true;
    let _ = mon.services.send(mon.known.clone());
    Ok(())
}
