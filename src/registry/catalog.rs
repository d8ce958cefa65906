//! The catalog: the registry's services as plain data (one [`Entry`] each), their attributes,
//! the change counter, `find`.
//!
//! No network and no 9P here: the file system layer ([`super::fs`]) maps 9P requests onto these
//! operations. Every behaviour follows Inferno's `appl/cmd/ndb/registry.b` (spec/registry.md §3–§5),
//! including its quirks, which are noted where they occur.

use super::feed::{Feed, FeedLimits, Snap, Watcher};
use super::index::{AttrIndex, EntryId};
use crate::wire::{self, Diagnostic};
use answers::Answers;
use arcstr::ArcStr;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// The owner of static services loaded with `-f`, and the uid/gid of the registry's own files.
pub const REGISTRY_USER: &str = "registry";

/// Identifies the fid that opened `new`: clunking that fid (and only that one) unregisters the
/// service. Inferno compares fid numbers; we give every fid state of every connection a number
/// of its own, which is the same thing without the collisions between connections.
///
/// Never zero, so that an entry's `Option<FidRef>` costs no more than the number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FidRef(pub std::num::NonZeroU64);

impl FidRef {
    /// Fid number `n`; `None` for 0, which is no fid (a record's token for a service that no
    /// fid holds).
    pub const fn new(n: u64) -> Option<FidRef> {
        match std::num::NonZeroU64::new(n) {
            Some(n) => Some(FidRef(n)),
            None => None,
        }
    }

    /// The number.
    pub const fn get(self) -> u64 {
        self.0.get()
    }
}

/// One registered service.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its number; the qid path is `id << 4 | 5`.
    pub id: EntryId,
    /// Its position in Inferno's service array: the order of `index`, `find` and the directory.
    /// (A `u32`, which saves every entry 8 bytes: 2^32 services would take over a terabyte;
    /// see [`Catalog::next_slot`].)
    pub slot: u32,
    /// The user that opened `new` (or [`REGISTRY_USER`] for static services).
    pub owner: ArcStr,
    /// Last read of its file (seconds since the epoch).
    pub atime: u32,
    /// Last write (seconds since the epoch).
    pub mtime: u32,
    /// Its own change count: one per successful write.
    pub vers: u32,
    /// The fid that created it; `None` for static services.
    pub creator: Option<FidRef>,
    /// Its name and attribute/value pairs once the first write named it; `None` while
    /// anonymous. The same description the change feed's history and queues hold, so that a
    /// service costs one description however many changes remember it; a write to a shared one
    /// copies it first (the history keeps what it was). The name is the name table's own, the
    /// attribute strings the attribute index's own.
    desc: Option<Arc<Snap>>,
    /// Where it stands in etcd (`registry serve --etcd`) once stored there; `None` in memory.
    /// Boxed, so that a registry without etcd does not pay for it in every entry.
    etcd: Option<Box<InEtcd>>,
}

/// Where an entry stands in etcd.
#[derive(Debug, Clone, Copy)]
struct InEtcd {
    /// Its key's revisions.
    stored: Stored,
    /// The front-end that registered it and the fid token there.
    origin: (u64, u64),
}

/// An entry's key in etcd: the revisions that created it and last changed it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stored {
    /// The key's create revision: which incarnation of the name this is.
    pub create: i64,
    /// The key's mod revision: which version of it.
    pub modrev: i64,
}

impl Entry {
    /// The service as the change feed describes it; `None` while it is anonymous.
    fn snap(&self) -> Option<Arc<Snap>> {
        self.desc.clone()
    }

    /// Where it stands in etcd; `None` in memory, or not stored yet.
    pub fn stored(&self) -> Option<Stored> {
        self.etcd.as_ref().map(|e| e.stored)
    }

    /// The front-end that registered it and the fid token there (etcd mode; `(0, 0)` else).
    pub fn origin(&self) -> (u64, u64) {
        self.etcd.as_ref().map_or((0, 0), |e| e.origin)
    }

    /// Records that etcd holds it at `stored`, as registered by `origin`.
    fn set_stored(&mut self, stored: Stored, origin: (u64, u64)) {
        self.etcd = Some(Box::new(InEtcd { stored, origin }));
    }

    /// The name, once the first write gave one; `None` while anonymous.
    pub fn name(&self) -> Option<&ArcStr> {
        self.desc.as_ref().map(|d| &d.name)
    }

    /// Attribute/value pairs in Inferno's list order (the order `index` prints).
    pub fn attrs(&self) -> &[(ArcStr, ArcStr)] {
        self.desc.as_deref().map_or(&[], |d| &d.attrs)
    }

    /// Names an anonymous entry (no pairs yet).
    fn set_name(&mut self, name: ArcStr) {
        self.desc = Some(Arc::new(Snap {
            name,
            attrs: Vec::new(),
        }));
    }

    /// Replaces the pairs of a named entry with `attrs` in a new description (the feed may
    /// still hold the old one, which there is no need to copy first).
    fn set_attrs(&mut self, attrs: Vec<(ArcStr, ArcStr)>) {
        if let Some(d) = &mut self.desc {
            *d = Arc::new(Snap {
                name: d.name.clone(),
                attrs,
            });
        }
    }

    /// Makes the entry anonymous again, without pairs.
    fn forget_name(&mut self) {
        self.desc = None;
    }

    /// The pairs to change in place, copied first when the feed still holds them; `None` while
    /// anonymous (an anonymous entry has no pairs).
    fn attrs_mut(&mut self) -> Option<&mut Vec<(ArcStr, ArcStr)>> {
        self.desc.as_mut().map(|d| &mut Arc::make_mut(d).attrs)
    }

    /// Whether clunking the creating fid leaves the service registered: `persist` converts to a
    /// non-zero Limbo `int`.
    pub fn persists(&self) -> bool {
        wire::persists(self.attrs().iter().map(|(a, v)| (&**a, &**v)))
    }

    /// Appends the service's line, `%q` quoted and ending in a newline, to `out`.
    pub fn format_into(&self, out: &mut String) {
        let Some(d) = &self.desc else {
            return;
        };
        wire::push_line(out, &d.name, d.attrs.iter().map(|(a, v)| (&**a, &**v)));
        out.push('\n');
    }
}

/// Inferno's `svcnameok`: the name rules of [`wire::check_name`], then duplicates.
fn check_name(name: &str, names: &HashMap<ArcStr, EntryId>) -> Result<(), Diagnostic> {
    wire::check_name(name)?;
    if names.contains_key(name) {
        return Err(Diagnostic::Duplicate);
    }
    Ok(())
}

/// Statistics of one `find`, to show that the index is used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FindStats {
    /// Services whose attributes were checked against the query.
    pub examined: usize,
}

/// The whole registry: every entry, the name and attribute indexes, the change counter.
#[derive(Debug)]
pub struct Catalog {
    entries: HashMap<EntryId, Entry>,
    /// Entry ids in Inferno's array order; removal moves the last one into the hole, as Inferno
    /// does, so that listings come out in the same order.
    slots: Vec<EntryId>,
    names: HashMap<ArcStr, EntryId>,
    index: AttrIndex,
    idseq: EntryId,
    rootvers: u32,
    start: u32,
    changes: watch::Sender<u32>,
    feed: Feed,
    /// Set when the catalog is a replica of etcd: what only that mode needs.
    replica: Option<replica::ReplicaState>,
    /// While set, changes do not move the counter but are noted here, so that a batch of them
    /// (a snapshot reload) wakes `event` readers once.
    batching: Option<bool>,
    /// Answers rendered since the last change of the listing, shared by their readers. Cleared
    /// where the listing changes: [`Catalog::bump`] (every counted change), and where it changes
    /// uncounted (Inferno's quirks): the naming in [`Catalog::write`], [`Catalog::unlist`] (whose
    /// swap-remove moves another entry), [`Catalog::add_static`] and the replica's `apply_put`.
    answers: Answers,
}

impl Catalog {
    /// An empty registry started at `start` (seconds since the epoch).
    pub fn new(start: u32) -> Catalog {
        Catalog {
            entries: HashMap::new(),
            slots: Vec::new(),
            names: HashMap::new(),
            index: AttrIndex::default(),
            idseq: 0,
            rootvers: 0,
            start,
            changes: watch::Sender::new(0),
            feed: Feed::new(Feed::base_now(), FeedLimits::default()),
            replica: None,
            batching: None,
            answers: Answers::default(),
        }
    }

    /// Sets the change feed's limits.
    pub fn set_feed_limits(&mut self, limits: FeedLimits) {
        self.feed.set_limits(limits);
    }

    /// Starts a feed watcher (spec/feed.md): its number, the watcher and what it reads first.
    pub fn watch(
        &mut self,
        req: &wire::FeedRequest,
    ) -> Result<(u64, Arc<Watcher>, String), String> {
        let matching = match req.start {
            wire::FeedStart::Snapshot => self
                .find(&req.query)
                .0
                .into_iter()
                .filter_map(Entry::snap)
                .collect(),
            _ => Vec::new(),
        };
        self.feed.subscribe(req, matching)
    }

    /// Stops feed watcher `id`.
    pub fn unwatch(&mut self, id: u64) {
        self.feed.unsubscribe(id);
    }

    /// The change counter (`rootvers`): the root's `qid.vers` and what `event` reports.
    pub fn rootvers(&self) -> u32 {
        self.rootvers
    }

    /// When the registry started: the atime and mtime of its own files.
    pub fn start_time(&self) -> u32 {
        self.start
    }

    /// The change feed's revision: the last change's (spec/feed.md).
    pub fn feed_revision(&self) -> u64 {
        self.feed.revision()
    }

    /// How many change-feed watchers are subscribed.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub fn feed_watchers(&self) -> usize {
        self.feed.watchers()
    }

    /// A receiver of the change counter: cheap (one per event fid), it wakes on every change.
    pub fn subscribe(&self) -> watch::Receiver<u32> {
        self.changes.subscribe()
    }

    /// Whether there are no services at all.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The service with number `id`.
    pub fn entry(&self, id: EntryId) -> Option<&Entry> {
        self.entries.get(&id)
    }

    /// The service named `name`. Inferno's walk also matches an empty name with the first
    /// anonymous service (Limbo's nil string equals ""), and so does this.
    pub fn lookup(&self, name: &str) -> Option<EntryId> {
        if name.is_empty() {
            return self
                .slots
                .iter()
                .copied()
                .find(|id| self.entries.get(id).is_some_and(|s| s.desc.is_none()));
        }
        self.names.get(name).copied()
    }

    /// The named services in listing order (the directory, `index`).
    pub fn named(&self) -> impl Iterator<Item = &Entry> {
        self.slots
            .iter()
            .filter_map(|id| self.entries.get(id))
            .filter(|s| s.desc.is_some())
    }

    fn bump(&mut self) {
        self.answers.clear();
        if let Some(pending) = self.batching.as_mut() {
            *pending = true;
            return;
        }
        self.rootvers = self.rootvers.wrapping_add(1);
        self.changes.send_replace(self.rootvers);
    }

    fn set_attr(&mut self, id: EntryId, attr: String, val: String) {
        let Some(attrs) = self.entries.get_mut(&id).and_then(Entry::attrs_mut) else {
            return;
        };
        match attrs.iter().position(|(a, _)| **a == *attr) {
            // Inferno's Service.set: a new attribute goes to the front of the list.
            None => {
                let pair = self.index.insert(id, &attr, &val);
                attrs.insert(0, pair);
            }
            // An existing one is replaced where it stands, but Inferno rebuilds the list by
            // prepending the attributes that came before it, so those end up reversed.
            Some(i) => {
                if let Some((_, old)) = attrs.get_mut(i) {
                    self.index.remove(id, &attr, old);
                    *old = self.index.insert(id, &attr, &val).1;
                }
                if let Some(prefix) = attrs.get_mut(..i) {
                    prefix.reverse();
                }
            }
        }
    }

    /// Gives back the spare room the pairs of entry `id` grew into: a registration is written
    /// once and then held, often for its whole life.
    fn fit(&mut self, id: EntryId) {
        let Some(svc) = self.entries.get_mut(&id) else {
            return;
        };
        if svc
            .desc
            .as_ref()
            .is_some_and(|d| d.attrs.capacity() > d.attrs.len())
            && let Some(attrs) = svc.attrs_mut()
        {
            attrs.shrink_to_fit();
        }
    }

    /// Opening `new`: an anonymous service owned by `owner`, created by fid `creator`.
    /// Not a visible change: the counter does not move.
    /// The owner's name is shared, not copied: the fid's user name, held by every fid of its
    /// attach.
    pub fn create(
        &mut self,
        owner: impl Into<ArcStr>,
        creator: Option<FidRef>,
        now: u32,
    ) -> EntryId {
        let id = self.idseq;
        self.idseq += 1;
        let svc = Entry {
            id,
            slot: self.next_slot(),
            owner: owner.into(),
            desc: None,
            atime: now,
            mtime: now,
            vers: 0,
            creator,
            etcd: None,
        };
        self.slots.push(id);
        self.entries.insert(id, svc);
        if let (Some(r), Some(fid)) = (self.replica.as_mut(), creator) {
            r.by_creator.insert(fid, id);
        }
        id
    }

    /// Adds a static (persistent, owned by `registry`) service, as `-f dbfile` does: a name that
    /// `svcnameok` rejects is skipped and reported. Not a change for the counter.
    pub fn add_static(
        &mut self,
        name: &str,
        attrs: impl IntoIterator<Item = (String, String)>,
        now: u32,
    ) -> Result<EntryId, Diagnostic> {
        check_name(name, &self.names)?;
        self.answers.clear();
        let id = self.create(REGISTRY_USER, None, now);
        let name: ArcStr = ArcStr::from(name);
        if let Some(svc) = self.entries.get_mut(&id) {
            svc.set_name(name.clone());
        }
        self.names.insert(name, id);
        for (a, v) in attrs {
            self.set_attr(id, a, v);
        }
        self.fit(id);
        Ok(id)
    }

    /// A write to a service (through the fid that opened `new`, or its file): the first write names
    /// it, `name [attr val]...`; later ones hold `attr val ...`.
    ///
    /// As in Inferno, a first write whose pairs are odd still names the service (without counting
    /// a change) before failing with `odd attribute/value pairs`.
    pub fn write(&mut self, id: EntryId, data: &str, now: u32) -> Result<(), Diagnostic> {
        self.answers.clear();
        let svc = self.entries.get_mut(&id).ok_or(Diagnostic::Gone)?;
        let mut toks = wire::unquote(data);
        if toks.is_empty() {
            return Err(Diagnostic::BadSyntax);
        }
        let before = svc.snap();
        if svc.desc.is_none() {
            let name = toks.remove(0);
            check_name(&name, &self.names)?;
            let name: ArcStr = ArcStr::from(name);
            tracing::info!(
                "registry: registered {} (owner {})",
                wire::quote(&name),
                svc.owner
            );
            self.names.insert(name.clone(), id);
            svc.set_name(name);
        }
        let pairs = match wire::pairs(toks) {
            Ok(p) => p,
            Err(e) => {
                // Named now, so listed, though the counter does not move: the feed says so.
                if before.is_none() {
                    let after = svc.snap();
                    self.feed.publish(None, after);
                }
                return Err(e);
            }
        };
        svc.mtime = now;
        svc.vers = svc.vers.wrapping_add(1);
        for (a, v) in pairs {
            self.set_attr(id, a, v);
        }
        self.fit(id);
        self.bump();
        let after = self.entries.get(&id).and_then(Entry::snap);
        self.feed.publish(before, after);
        Ok(())
    }

    /// Records a read of the service's file (its atime).
    pub fn touch(&mut self, id: EntryId, now: u32) {
        if let Some(svc) = self.entries.get_mut(&id) {
            svc.atime = now;
        }
    }

    fn unlink(&mut self, id: EntryId) -> Option<Entry> {
        let svc = self.unlist(id)?;
        if let (Some(r), Some(fid)) = (self.replica.as_mut(), svc.creator) {
            r.by_creator.remove(&fid);
        }
        Some(svc)
    }

    /// The slot a new entry takes: the end of the listing. (4,294,967,295 services, where it
    /// would saturate, would take over a terabyte.)
    fn next_slot(&self) -> u32 {
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Takes the entry out of the listing, the name table and the index (a visible removal for
    /// the feed), and hands it back.
    fn unlist(&mut self, id: EntryId) -> Option<Entry> {
        self.answers.clear();
        let svc = self.entries.remove(&id)?;
        let slot = svc.slot as usize;
        self.slots.swap_remove(slot);
        if let Some(moved) = self.slots.get(slot).copied()
            && let Some(m) = self.entries.get_mut(&moved)
        {
            m.slot = svc.slot;
        }
        if let Some(name) = svc.name() {
            tracing::info!(
                "registry: removed {} (owner {})",
                wire::quote(name),
                svc.owner
            );
            self.names.remove(&**name);
            self.feed.publish(svc.snap(), None);
        }
        for (a, v) in svc.attrs() {
            self.index.remove(id, a, v);
        }
        Some(svc)
    }

    /// Clunk of a fid that refers to service `id`: when `fid` created it, the service goes unless it
    /// persists; with `orclose` it goes regardless. Returns whether it was removed. Removing an
    /// anonymous service is not a visible change, so the counter moves only for named ones.
    pub fn release(&mut self, id: EntryId, fid: FidRef, orclose: bool) -> bool {
        let Some(svc) = self.entries.get(&id) else {
            return false;
        };
        // Inferno: the creating fid, and ORCLOSE or no persist.
        if svc.creator != Some(fid) || (!orclose && svc.persists()) {
            return false;
        }
        if let Some(svc) = self.unlink(id)
            && svc.desc.is_some()
        {
            self.bump();
        }
        true
    }

    /// Tremove of a service file by `uname`: only the owner may.
    ///
    /// Inferno's registry dereferences a missing service here and dies; we answer
    /// `file does not exist` instead.
    pub fn remove(&mut self, id: EntryId, uname: &str) -> Result<(), Diagnostic> {
        let svc = self.entries.get(&id).ok_or(Diagnostic::NotFound)?;
        if *svc.owner != *uname {
            return Err(Diagnostic::PermissionDenied);
        }
        self.unlink(id);
        self.bump();
        Ok(())
    }

    /// The named services matching `query` (spec/registry.md §4), in listing order. An empty query
    /// matches every named service.
    pub fn find(&self, query: &[(String, String)]) -> (Vec<&Entry>, FindStats) {
        let mut stats = FindStats::default();
        if query.is_empty() {
            return (self.named().collect(), stats);
        }
        let Some(set) = self.index.smallest_set(query) else {
            return (Vec::new(), stats);
        };
        // When most services are candidates anyway, a scan in listing order is cheaper than
        // hashing every candidate and sorting the matches back into that order.
        if set.len() * 2 >= self.slots.len() {
            let out = self
                .named()
                .filter(|svc| {
                    stats.examined += 1;
                    matches(svc, query)
                })
                .collect();
            return (out, stats);
        }
        let mut out: Vec<&Entry> = set
            .iter()
            .filter_map(|id| self.entries.get(&id))
            .filter(|svc| {
                stats.examined += 1;
                svc.desc.is_some() && matches(svc, query)
            })
            .collect();
        out.sort_unstable_by_key(|s| s.slot);
        (out, stats)
    }

    /// The text of `index` (no filter) or of `find` with a filter.
    pub fn format_find(&self, query: &[(String, String)]) -> String {
        let found = self.find(query).0;
        // A typical line is a few dozen bytes: reserve once rather than grow a dozen times.
        let mut out = String::with_capacity(found.len() * 64);
        for svc in found {
            svc.format_into(&mut out);
        }
        out
    }

    /// [`Catalog::format_find`] as shared bytes: rendered once after each visible change and
    /// handed to every reader of the same query until the next one.
    pub fn find_answer(&mut self, query: &[(String, String)]) -> Bytes {
        if let Some(text) = self.answers.get(query) {
            return text;
        }
        let text = Bytes::from(self.format_find(query));
        self.answers.keep(query, text.clone());
        text
    }

    /// The text of a service's own file: its line, or nothing while it is anonymous or gone.
    pub fn format_service(&self, id: EntryId) -> String {
        let mut out = String::new();
        if let Some(svc) = self.entries.get(&id) {
            svc.format_into(&mut out);
        }
        out
    }
}

/// Inferno's Filter.match: every query pair is present, with an equal value or `*`.
fn matches(svc: &Entry, query: &[(String, String)]) -> bool {
    matches_attrs(svc.attrs(), query)
}

/// [`matches()`] on a list of pairs: for the change feed's descriptions too.
pub(super) fn matches_attrs(attrs: &[(ArcStr, ArcStr)], query: &[(String, String)]) -> bool {
    query.iter().all(|(qa, qv)| {
        attrs
            .iter()
            .any(|(a, v)| **a == **qa && (qv == "*" || **v == **qv))
    })
}

mod answers;
#[cfg_attr(not(feature = "etcd"), allow(dead_code))]
mod replica;
#[cfg(test)]
mod tests;

#[cfg(feature = "etcd")]
pub use replica::{Plan, Release};
