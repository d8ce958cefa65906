//! `Monitor`: the services matching a filter, as a sequence of additions, changes and removals.

use super::error::{Error, Result};
use super::events::Events;
use super::feed::{ChangeEvent, ChangeKind, FeedReader, Item, Revision};
use super::registry::Registry;
use super::service::Service;
use crate::wire::FeedStart;
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
/// With a registry of ours it reads the change feed (spec/feed.md): the registry filters, sends
/// each change with its revision, and a monitor that resumes ([`Monitor::resume`]) continues from
/// its last revision. The services present at the start are reported as [`Change::Added`], then
/// every change. A registry without the feed (a real Inferno one) is watched as registries(2)
/// programs watch it: it opens `event` first, then runs `find`, and re-runs `find` after each
/// event, reporting the difference, so no change between the first look and the first event is
/// missed; changes that happen between two looks are coalesced there (a service added and
/// removed in between is not seen at all). Either way the changes come out as a set would have
/// them: an update that only reorders a service's pairs is no change.
///
/// ```no_run
/// # async fn demo(reg: registries::Registry) -> Result<(), registries::Error> {
/// use registries::Change;
/// let mut styx = reg.monitor(&[("proto", "styx")]).await?;
/// while let Some(change) = styx.next().await {
///     match change? {
///         Change::Added(s) => println!("+ {s}"),
///         Change::Changed(s) => println!("~ {s}"),
///         Change::Removed(s) => println!("- {}", s.addr),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Monitor {
    reg: Registry,
    filter: Vec<(String, String)>,
    source: Source,
    /// The matching services as last seen, in the order they were first seen (a removal moves
    /// the last one into its place).
    known: Vec<Service>,
    /// Where each of `known` is, by name.
    at: HashMap<String, usize>,
    pending: VecDeque<Change>,
    /// The revision of the latest change taken from the feed.
    revision: Option<Revision>,
}

/// Where the changes come from.
enum Source {
    /// The change feed.
    Feed(FeedReader),
    /// `event`, and `find` after each event; `stale` when an event came and `find` has not been
    /// re-run since.
    Events { events: Events, stale: bool },
}

/// Where a monitor stood: the services it had reported and the revision of its latest change
/// (with the change feed). [`Monitor::resume`] continues from here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The matching services, as last reported.
    pub services: Vec<Service>,
    /// The revision of the latest change reported, when the registry has a change feed.
    pub revision: Option<Revision>,
}

impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("filter", &self.filter)
            .field("known", &self.known)
            .field("revision", &self.revision)
            .finish_non_exhaustive()
    }
}

impl Monitor {
    /// Starts watching `reg` for services matching `filter` (pairs as for [`Registry::find`]).
    pub async fn new<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        filter: &[(A, V)],
    ) -> Result<Monitor> {
        Monitor::resume(reg, filter, Position::default()).await
    }

    /// Starts watching as [`Monitor::new`] does, from `from`: where a monitor whose connection
    /// was lost stood ([`Monitor::position`]). With the change feed it continues from the
    /// revision after `from.revision` and loses nothing; when that revision is no longer kept
    /// (or the registry restarted), or without the feed, the first changes are the differences
    /// between `from.services` and the registry now. Either way it does not report every
    /// service again.
    pub async fn resume<A: AsRef<str>, V: AsRef<str>>(
        reg: &Registry,
        filter: &[(A, V)],
        from: Position,
    ) -> Result<Monitor> {
        let filter: Vec<(String, String)> = filter
            .iter()
            .map(|(a, v)| (a.as_ref().to_string(), v.as_ref().to_string()))
            .collect();
        let mut known = from.services;
        let monitor = |source, known: Vec<Service>, pending, revision| Monitor {
            reg: reg.clone(),
            filter: filter.clone(),
            source,
            at: positions(&known),
            known,
            pending,
            revision,
        };
        if let Some(rev) = from.revision {
            match FeedReader::open(reg, &filter, FeedStart::From(rev + 1)).await {
                Ok(reader) => {
                    let source = Source::Feed(reader);
                    return Ok(monitor(source, known, VecDeque::new(), Some(rev)));
                }
                // Gone, ahead of a restarted registry, or no feed there now: start afresh.
                Err(Error::Compacted { .. } | Error::Registry(_) | Error::NoFeed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        match snapshot(reg, &filter).await {
            Ok((reader, now, rev)) => {
                let pending = diff(&known, &now).into();
                known = now;
                Ok(monitor(Source::Feed(reader), known, pending, Some(rev)))
            }
            Err(Error::NoFeed(_)) => {
                let events = reg.events().await?;
                let source = Source::Events {
                    events,
                    stale: false,
                };
                let mut m = monitor(source, known, VecDeque::new(), None);
                m.refresh().await?;
                Ok(m)
            }
            Err(e) => Err(e),
        }
    }

    /// The matching services as last seen.
    pub fn services(&self) -> &[Service] {
        &self.known
    }

    /// The revision of the latest change returned, when the registry has a change feed.
    pub fn revision(&self) -> Option<Revision> {
        self.revision
    }

    /// Where the monitor stands, for [`Monitor::resume`].
    pub fn position(&self) -> Position {
        Position {
            services: self.known.clone(),
            revision: self.revision,
        }
    }

    /// The next change: waits for the registry to change as often as it takes. `None` when the
    /// registry's event stream has ended; an error (for example a lost connection) is returned
    /// once, and the monitor then ends. Cancel-safe: if the future is dropped, no change is lost.
    pub async fn next(&mut self) -> Option<Result<Change>> {
        loop {
            if let Some(c) = self.pending.pop_front() {
                return Some(Ok(c));
            }
            match &mut self.source {
                Source::Feed(reader) => match reader.next().await {
                    Ok(Item::Change(ev)) => self.apply(ev),
                    Ok(Item::Synced(rev)) => self.revision = Some(rev),
                    // Fell behind: start again from a snapshot, reporting the difference.
                    Err(Error::Compacted { .. }) => {
                        if let Err(e) = self.resync().await {
                            return Some(Err(e));
                        }
                    }
                    Err(e) => return Some(Err(e)),
                },
                Source::Events { events, stale } => {
                    if *stale {
                        if let Err(e) = self.refresh().await {
                            return Some(Err(e));
                        }
                        if let Source::Events { stale, .. } = &mut self.source {
                            *stale = false;
                        }
                        continue;
                    }
                    match events.next().await? {
                        // Marked before the look, so a call dropped during it looks again.
                        Ok(_) => *stale = true,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
        }
    }

    /// The monitor as a stream of changes.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<Change>> {
        futures_util::stream::unfold(self, |mut m| async move { m.next().await.map(|c| (c, m)) })
    }

    /// Takes one change from the feed into what is known, queueing what it changes.
    fn apply(&mut self, ev: ChangeEvent) {
        self.revision = Some(ev.revision);
        let at = self.at.get(ev.service.addr.as_str()).copied();
        match (ev.kind, at) {
            (ChangeKind::Removed, Some(i)) => {
                self.at.remove(ev.service.addr.as_str());
                self.known.swap_remove(i);
                if let Some(moved) = self.known.get(i) {
                    self.at.insert(moved.addr.clone(), i);
                }
                self.pending.push_back(Change::Removed(ev.service));
            }
            (ChangeKind::Removed, None) => {}
            (_, Some(i)) => {
                if !self.known[i].attrs.same_pairs(&ev.service.attrs) {
                    self.known[i] = ev.service.clone();
                    self.pending.push_back(Change::Changed(ev.service));
                }
            }
            (_, None) => {
                self.at.insert(ev.service.addr.clone(), self.known.len());
                self.known.push(ev.service.clone());
                self.pending.push_back(Change::Added(ev.service));
            }
        }
    }

    /// Starts the feed again from a snapshot, queueing the differences from what was known.
    async fn resync(&mut self) -> Result<()> {
        let (reader, now, rev) = snapshot(&self.reg, &self.filter).await?;
        self.pending.extend(diff(&self.known, &now));
        self.at = positions(&now);
        self.known = now;
        self.revision = Some(rev);
        self.source = Source::Feed(reader);
        Ok(())
    }

    /// Runs `find` again and queues the differences from the last look.
    async fn refresh(&mut self) -> Result<()> {
        let now = self.reg.find(&self.filter).await?;
        self.pending.extend(diff(&self.known, &now));
        self.at = positions(&now);
        self.known = now;
        Ok(())
    }
}

/// Where each service is in `known`, by name.
fn positions(known: &[Service]) -> HashMap<String, usize> {
    known
        .iter()
        .enumerate()
        .map(|(i, s)| (s.addr.clone(), i))
        .collect()
}

/// Opens the feed with a snapshot of the services matching `filter` and reads it to its `synced`
/// record: the reader, the services, the snapshot's revision.
async fn snapshot(
    reg: &Registry,
    filter: &[(String, String)],
) -> Result<(FeedReader, Vec<Service>, Revision)> {
    let mut reader = FeedReader::open(reg, filter, FeedStart::Snapshot).await?;
    let mut now = Vec::new();
    loop {
        match reader.next().await {
            Ok(Item::Change(ev)) => now.push(ev.service),
            Ok(Item::Synced(rev)) => return Ok((reader, now, rev)),
            // A `watch` file that does not speak the feed (an end of file, or records that do
            // not parse) is no feed.
            Err(Error::Protocol(e)) => return Err(Error::NoFeed(e)),
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(Error::NoFeed("the watch file ended".into()));
            }
            Err(e) => return Err(e),
        }
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
