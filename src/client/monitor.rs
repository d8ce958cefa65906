//! `Monitor`: the services matching a filter, as a sequence of additions, changes and removals.

use super::error::Result;
use super::events::Events;
use super::registry::Registry;
use super::service::Service;
use futures_util::StreamExt;
use std::collections::{HashMap, HashSet, VecDeque};

/// One difference between two looks at the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A matching service appeared (or was there when the monitor started).
    Added(Service),
    /// A matching service's attributes changed; this is the new description.
    Changed(Service),
    /// A service stopped matching or was unregistered; this is its last known description.
    Removed(Service),
}

/// Watches the services that match a filter.
///
/// It opens `event` first, then runs `find`, and re-runs `find` after each event, reporting the
/// difference, so no change between the first look and the first event is missed. The services
/// present at the start are reported as [`Change::Added`]. Changes that happen between two looks
/// are coalesced: a service added and removed in between is not seen at all.
pub struct Monitor {
    reg: Registry,
    filter: Vec<(String, String)>,
    events: Events,
    /// The matching services as last seen, in `find` order.
    known: Vec<Service>,
    pending: VecDeque<Change>,
    /// An event came and `find` has not been re-run since.
    stale: bool,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("filter", &self.filter)
            .field("known", &self.known)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts watching `reg` for services matching `filter` (pairs as for [`Registry::find`]).
    pub async fn new<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        filter: &[(A, V)],
    ) -> Result<Monitor> {
        Monitor::resume(reg, filter, Vec::new()).await
    }

    /// Starts watching as [`Monitor::new`] does, from `known`: the services the caller saw
    /// last (for example [`Monitor::services`] of a monitor whose connection was lost). The
    /// first changes are the differences from `known`, not every service again, so a watcher
    /// that reconnects reports what changed while it was away.
    pub async fn resume<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        filter: &[(A, V)],
        known: Vec<Service>,
    ) -> Result<Monitor> {
        let filter: Vec<(String, String)> = filter
            .iter()
            .map(|(a, v)| (a.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let events = reg.events().await?;
        let mut m = Monitor {
            reg: reg.clone(),
            filter,
            events,
            known,
            pending: VecDeque::new(),
            stale: false,
        };
        m.refresh().await?;
        Ok(m)
    }

    /// The matching services as last seen.
    pub fn services(&self) -> &[Service] {
        &self.known
    }

    /// The next change: waits for the registry to change as often as it takes. `None` when the
    /// registry's event stream has ended; an error (for example a lost connection) is returned
    /// once, and the monitor then ends. Cancel-safe: if the future is dropped, no change is lost.
    pub async fn next(&mut self) -> Option<Result<Change>> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(Ok(c));
            }
            if self.stale {
                if let Err(e) = self.refresh().await {
                    return Some(Err(e));
                }
                self.stale = false;
                continue;
            }
            match self.events.next().await? {
                // Marked before the look, so a call dropped during it looks again next time.
                Ok(_) => self.stale = true,
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The monitor as a stream of changes.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Change>> {
        futures_util::stream::unfold(self, |mut m| async move { m.next().await.map(|c| (c, m)) })
    }

    /// Runs `find` again and queues the differences from the last look.
    async fn refresh(&mut self) -> Result<()> {
        let now = self.reg.find(&self.filter).await?;
        self.pending.extend(diff(&self.known, &now));
        self.known = now;
        Ok(())
    }
}

/// The changes from `old` to `new`: removals first (in old order), then additions and changes in
/// new order. Services are told apart by name; their attributes are compared as a set of pairs
/// ([`Attributes::same_pairs`](super::Attributes::same_pairs)), since a registry may list the same pairs in another order.
/// The one comparison of two looks, for [`Monitor`] and the manager's monitors alike.
pub(crate) fn diff(old: &[Service], new: &[Service]) -> Vec<Change> {
    let old_by_name: HashMap<&str, &Service> = old.iter().map(|s| (s.addr.as_str(), s)).collect();
    let new_names: HashSet<&str> = new.iter().map(|s| s.addr.as_str()).collect();
    let mut out: Vec<Change> = old
        .iter()
        .filter(|s| !new_names.contains(s.addr.as_str()))
        .map(|s| Change::Removed(s.clone()))
        .collect();
    for s in new {
        match old_by_name.get(s.addr.as_str()) {
            None => out.push(Change::Added(s.clone())),
            Some(o) if !o.attrs.same_pairs(&s.attrs) => out.push(Change::Changed(s.clone())),
            Some(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Attributes;

    fn svc(name: &str, pairs: &[(&str, &str)]) -> Service {
        Service::new(name, Attributes::new(pairs.iter().copied()))
    }

    #[test]
    fn diff_reports_each_kind() {
        let old = [
            svc("a", &[("x", "1")]),
            svc("b", &[]),
            svc("c", &[("y", "2")]),
        ];
        let new = [
            svc("c", &[("y", "3")]),
            svc("a", &[("x", "1")]),
            svc("d", &[]),
        ];
        assert_eq!(
            diff(&old, &new),
            [
                Change::Removed(svc("b", &[])),
                Change::Changed(svc("c", &[("y", "3")])),
                Change::Added(svc("d", &[])),
            ]
        );
        assert!(diff(&new, &new).is_empty());
    }

    #[test]
    fn reordered_pairs_are_no_change() {
        let old = [svc("a", &[("x", "1"), ("y", "2")])];
        let new = [svc("a", &[("y", "2"), ("x", "1")])];
        assert!(diff(&old, &new).is_empty());
        let other = [svc("a", &[("y", "2"), ("x", "3")])];
        assert_eq!(diff(&old, &other), [Change::Changed(other[0].clone())]);
    }
}
