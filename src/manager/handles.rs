//! What the manager's users hold: services they keep registered and monitors they read.

use super::supervisor::Cmd;
use crate::client::{Attributes, Change, Service};
use tokio::sync::{mpsc, oneshot, watch};

/// Why a manager operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// The manager has been shut down or dropped.
    #[error("registry manager has stopped")]
    Stopped,
    /// The registry refused the operation; its diagnostic, unchanged.
    #[error(transparent)]
    Registry(#[from] crate::client::Error),
}

/// The manager's connection state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// Whether a registry connection is up now.
    pub connected: bool,
    /// How many connections have been made so far (1 after the first, 2 after a reconnection...).
    pub connections: u64,
}

/// A service the manager keeps registered (Inferno::RegMgr::Service): registered whenever the
/// registry is reachable, again after every reconnection. Dropping the handle unregisters it.
#[derive(Debug)]
pub struct ServiceHandle {
    pub(crate) id: u64,
    pub(crate) cmds: mpsc::UnboundedSender<Cmd>,
    pub(crate) registered: watch::Receiver<bool>,
    pub(crate) closed: bool,
    /// Its health checks' tasks, stopped with it.
    pub(crate) checks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServiceHandle {
    /// Adds or changes attributes: now if registered, and in every later registration.
    pub fn update(&self, attrs: &Attributes) -> Result<(), ManagerError> {
        self.cmds
            .send(Cmd::UpdateService {
                id: self.id,
                attrs: attrs.clone(),
            })
            .map_err(|_| ManagerError::Stopped)
    }

    /// Whether the service is registered right now.
    pub fn is_registered(&self) -> bool {
        *self.registered.borrow()
    }

    /// Waits until the service is registered (at once if it is).
    pub async fn wait_registered(&self) -> Result<(), ManagerError> {
        let mut rx = self.registered.clone();
        rx.wait_for(|r| *r)
            .await
            .map(|_| ())
            .map_err(|_| ManagerError::Stopped)
    }

    /// Waits until the service is registered or withdrawn (a lost connection, a critical health
    /// check), and says which it is now.
    pub async fn changed(&mut self) -> Result<bool, ManagerError> {
        self.registered
            .changed()
            .await
            .map_err(|_| ManagerError::Stopped)?;
        Ok(*self.registered.borrow_and_update())
    }

    /// Stops keeping the service and waits until it has been unregistered.
    pub async fn close(mut self) -> Result<(), ManagerError> {
        self.closed = true;
        for check in &self.checks {
            check.abort();
        }
        let (tx, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::RemoveService {
                id: self.id,
                done: Some(tx),
            })
            .map_err(|_| ManagerError::Stopped)?;
        rx.await.map_err(|_| ManagerError::Stopped)
    }
}

impl Drop for ServiceHandle {
    fn drop(&mut self) {
        for check in &self.checks {
            check.abort();
        }
        if !self.closed {
            let _ = self.cmds.send(Cmd::RemoveService {
                id: self.id,
                done: None,
            });
        }
    }
}

/// The services matching a filter, kept up to date across reconnections
/// (Inferno::RegMgr::Monitor). Reports [`Change::Added`] for each service present at the first
/// look, then every real change. After a reconnection the differences across the gap are
/// reported; services missing just after it are given a grace period to come back before they
/// are reported removed, so a registry restart does not show as removals and additions.
/// Dropping the handle stops the monitor.
#[derive(Debug)]
pub struct MonitorHandle {
    pub(crate) id: u64,
    pub(crate) cmds: mpsc::UnboundedSender<Cmd>,
    pub(crate) changes: mpsc::UnboundedReceiver<Change>,
    pub(crate) services: watch::Receiver<Vec<Service>>,
}

impl MonitorHandle {
    /// The next change; `None` once the manager has stopped.
    pub async fn next(&mut self) -> Option<Change> {
        self.changes.recv().await
    }

    /// A change already waiting, if any.
    pub fn try_next(&mut self) -> Option<Change> {
        self.changes.try_recv().ok()
    }

    /// The matching services as last seen (including, during a grace period, those held back).
    pub fn services(&self) -> Vec<Service> {
        self.services.borrow().clone()
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::RemoveMonitor { id: self.id });
    }
}
