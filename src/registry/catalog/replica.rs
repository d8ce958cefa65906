//! The catalog as a replica of etcd (`registry serve --etcd`, spec/etcd.md).
//!
//! In this mode a change is never made here directly: a write is planned from the entry as it
//! stands ([`Catalog::plan_write`]), committed to etcd by the store, and comes back through etcd's
//! watch as a record that [`Catalog::apply_put`] or [`Catalog::apply_delete`] applies, on every
//! front-end alike. A front-end knows its own registrations when they come back by the record's
//! holder and fid token, and gives them to the entry its fid opened. Open `new` files that have
//! no name yet stay local, as they are invisible anyway.

use super::{Catalog, Entry, FidRef, Stored, check_name};
use crate::registry::index::EntryId;
use crate::registry::record::Record;
use crate::wire::{self, Diagnostic};
use arcstr::ArcStr;
use std::collections::HashMap;
use tokio::sync::watch;

/// What only a replica keeps.
#[derive(Debug)]
pub(super) struct ReplicaState {
    /// This front-end's number in records it writes.
    holder: u64,
    /// The entry each creating fid opened, to give a record that comes back to its fid.
    pub(super) by_creator: HashMap<FidRef, EntryId>,
    /// Registrations whose key went from etcd (removed elsewhere, or lapsed with the lease) while
    /// their fid is still open here: kept for the lease's recovery, out of every listing.
    orphans: HashMap<EntryId, Entry>,
    /// The etcd revision applied so far: a writer waits for its commit to show here.
    applied: watch::Sender<i64>,
    /// Held registrations whose name another front-end took while this one was cut off.
    taken: std::collections::HashSet<EntryId>,
    /// Services dropped here while their deletion could not be committed (etcd unreachable): a
    /// put of the name at or below that revision replayed by the watch is stale.
    tombstones: HashMap<String, i64>,
}

/// A write as it would leave the entry: what the store commits.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The entry's record after the write.
    pub(crate) record: Record,
    /// The key's revisions as this replica knows them; `None` when the write names the service.
    pub stored: Option<Stored>,
    /// The diagnostic the write returns once the record is committed: Inferno's first write
    /// with odd pairs names the service and then fails.
    pub then: Option<Diagnostic>,
}

/// What a clunk or a Tremove asks of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// Nothing stored changes.
    Nothing,
    /// Delete key `name` if it is still the incarnation `create`.
    Delete {
        /// The entry.
        id: EntryId,
        /// The service name.
        name: ArcStr,
        /// The key's create revision.
        create: i64,
    },
}

/// How many feed revisions each etcd revision spans. One etcd revision may hold several changes
/// (a lease's expiry deletes all its keys at one revision), and each change needs a revision of
/// its own that is the same on every front-end, whatever it saw before: the `i`th change applied
/// from etcd revision `r` is published at `r × 1,000,000 + i`. (More than a million changes in
/// one etcd revision would run into the next one's numbers.)
pub const FEED_REVISIONS_PER_ETCD_REVISION: u64 = 1_000_000;

/// The first feed revision of etcd revision `rev`.
fn feed_revision(rev: i64) -> u64 {
    u64::try_from(rev)
        .unwrap_or(0)
        .saturating_mul(FEED_REVISIONS_PER_ETCD_REVISION)
}

/// Inferno's `Service.set` on a list of owned pairs, as [`Catalog`]'s `set_attr` does it on an
/// entry: a new attribute goes to the front; an existing one is replaced in place and the ones
/// before it end up reversed.
pub(crate) fn set_pair(attrs: &mut Vec<(String, String)>, attr: String, val: String) {
    match attrs.iter().position(|(a, _)| *a == attr) {
        None => attrs.insert(0, (attr, val)),
        Some(i) => {
            attrs[i].1 = val;
            attrs[..i].reverse();
        }
    }
}

impl Catalog {
    /// Makes this (empty) catalog a replica written as front-end `holder`.
    pub fn make_replica(&mut self, holder: u64) {
        // Feed revisions are etcd's from now on: the same change has the same one everywhere.
        self.feed = super::Feed::new(0, self.feed.limits());
        self.replica = Some(ReplicaState {
            holder,
            by_creator: HashMap::new(),
            orphans: HashMap::new(),
            applied: watch::Sender::new(0),
            taken: Default::default(),
            tombstones: HashMap::new(),
        });
    }

    /// This front-end's number in the records it writes (0 when not a replica).
    pub fn holder(&self) -> u64 {
        self.replica.as_ref().map_or(0, |r| r.holder)
    }

    /// A receiver of the etcd revision applied so far.
    pub fn applied(&self) -> watch::Receiver<i64> {
        match &self.replica {
            Some(r) => r.applied.subscribe(),
            None => watch::Sender::new(0).subscribe(),
        }
    }

    /// Records that every change up to etcd revision `rev` is applied.
    pub fn set_applied(&mut self, rev: i64) {
        if let Some(r) = self.replica.as_mut() {
            if !r.tombstones.is_empty() {
                r.tombstones.retain(|_, at| *at > rev);
            }
            r.applied.send_if_modified(|cur| {
                let newer = rev > *cur;
                if newer {
                    *cur = rev;
                }
                newer
            });
        }
    }

    /// The write `data` to entry `id` as it would leave the entry, without changing anything:
    /// the same checks and the same order of attributes as [`Catalog::write`].
    pub fn plan_write(&self, id: EntryId, data: &str, now: u32) -> Result<Plan, Diagnostic> {
        if self.replica.as_ref().is_some_and(|r| r.taken.contains(&id)) {
            return Err(Diagnostic::Taken);
        }
        let svc = self.entries.get(&id).ok_or(Diagnostic::Gone)?;
        let mut toks = wire::unquote(data);
        if toks.is_empty() {
            return Err(Diagnostic::BadSyntax);
        }
        let name = match svc.name() {
            Some(n) => n.to_string(),
            None => {
                let name = toks.remove(0);
                check_name(&name, &self.names)?;
                name
            }
        };
        let (holder, fid) = match (svc.stored(), svc.creator) {
            (Some(_), _) => svc.origin(),
            (None, creator) => (self.holder(), creator.map_or(0, FidRef::get)),
        };
        let mut record = Record {
            owner: svc.owner.to_string(),
            holder,
            fid,
            vers: svc.vers,
            mtime: svc.mtime,
            name,
            attrs: svc
                .attrs()
                .iter()
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect(),
        };
        let pairs = match wire::pairs(toks) {
            Ok(p) => p,
            Err(e) if svc.name().is_none() => {
                return Ok(Plan {
                    record,
                    stored: None,
                    then: Some(e),
                });
            }
            Err(e) => return Err(e),
        };
        record.mtime = now;
        record.vers = record.vers.wrapping_add(1);
        for (a, v) in pairs {
            set_pair(&mut record.attrs, a, v);
        }
        Ok(Plan {
            record,
            stored: svc.stored(),
            then: None,
        })
    }

    /// Replaces entry `id`'s attributes with `attrs`, keeping the index in step.
    fn replace_attrs(&mut self, id: EntryId, attrs: Vec<(String, String)>) {
        let Some(svc) = self.entries.get(&id) else {
            return;
        };
        for (a, v) in svc.attrs() {
            self.index.remove(id, a, v);
        }
        let interned: Vec<_> = attrs
            .iter()
            .map(|(a, v)| self.index.insert(id, a, v))
            .collect();
        if let Some(svc) = self.entries.get_mut(&id) {
            svc.set_attrs(interned);
        }
    }

    /// The entry a record of this front-end's own comes back to: the one its fid opened, listed
    /// and still anonymous, or an orphan (put back in the listing).
    fn reclaim(&mut self, rec: &Record) -> Option<EntryId> {
        let r = self.replica.as_mut()?;
        if rec.holder != r.holder {
            return None;
        }
        let id = *r.by_creator.get(&FidRef::new(rec.fid)?)?;
        if let Some(mut orphan) = r.orphans.remove(&id) {
            orphan.slot = self.next_slot();
            orphan.forget_name();
            self.slots.push(id);
            self.entries.insert(id, orphan);
        }
        self.entries
            .get(&id)
            .filter(|e| e.name().is_none())
            .map(|e| e.id)
    }

    /// Applies a record that etcd holds at `stored` under its name: a new service, ours coming
    /// back, or a newer version of one listed. Returns whether the change counter moved.
    pub fn apply_put(&mut self, rec: Record, stored: Stored, now: u32) -> bool {
        self.answers.clear();
        if let Some(r) = &self.replica
            && r.tombstones
                .get(&rec.name)
                .is_some_and(|at| *at >= stored.modrev)
        {
            return false;
        }
        let (id, before, moved) = match self.names.get(rec.name.as_str()).copied() {
            Some(id) => {
                let Some(svc) = self.entries.get(&id) else {
                    return false;
                };
                if svc.stored().is_some_and(|s| s.modrev >= stored.modrev) {
                    return false;
                }
                (id, svc.snap(), svc.vers != rec.vers)
            }
            None => {
                let id = match self.reclaim(&rec) {
                    Some(id) => id,
                    None => self.create(rec.owner.as_str(), None, now),
                };
                let name: ArcStr = ArcStr::from(rec.name.as_str());
                tracing::info!(
                    "registry: registered {} (owner {})",
                    wire::quote(&name),
                    rec.owner
                );
                self.names.insert(name.clone(), id);
                if let Some(svc) = self.entries.get_mut(&id) {
                    svc.set_name(name);
                }
                (id, None, rec.vers != 0)
            }
        };
        if let Some(svc) = self.entries.get_mut(&id) {
            if *svc.owner != *rec.owner {
                svc.owner = rec.owner.into();
            }
            svc.vers = rec.vers;
            svc.mtime = rec.mtime;
            svc.set_stored(stored, (rec.holder, rec.fid));
        }
        self.replace_attrs(id, rec.attrs);
        if moved {
            self.bump();
        }
        let after = self.entries.get(&id).and_then(Entry::snap);
        self.feed.advance_to(feed_revision(stored.modrev));
        self.feed.publish(before, after);
        moved
    }

    /// Applies the deletion of key `name`: the service goes from the listing. A registration whose
    /// fid is open here is kept aside as an orphan, for the lease's recovery.
    pub fn apply_delete(&mut self, name: &str, rev: i64) -> bool {
        let Some(id) = self.names.get(name).copied() else {
            return false;
        };
        // Only a stored incarnation at or before the deletion goes: not a newer one, nor a `-f`
        // service of this front-end's own with the same name.
        let current = self.entries.get(&id).and_then(|e| e.stored());
        if current.is_none_or(|s| s.modrev > rev) {
            return false;
        }
        self.feed.advance_to(feed_revision(rev));
        let held = self.entries.get(&id).is_some_and(|e| e.creator.is_some());
        if held && self.replica.is_some() {
            if let Some(orphan) = self.unlist(id)
                && let Some(r) = self.replica.as_mut()
            {
                r.orphans.insert(id, orphan);
            }
        } else {
            self.unlink(id);
        }
        self.bump();
        true
    }

    /// Replaces the whole catalog with etcd's contents at one revision (a first load, or a reload
    /// after the watch's revision was compacted away): the differences are applied, and the
    /// change counter moves once if anything changed.
    pub fn apply_snapshot(&mut self, records: Vec<(Record, Stored)>, rev: i64, now: u32) {
        let keep: std::collections::HashSet<String> =
            records.iter().map(|(r, _)| r.name.clone()).collect();
        // Only what came from etcd can be stale: `-f` services are this front-end's own.
        let stale: Vec<ArcStr> = self
            .names
            .iter()
            .filter(|(n, id)| {
                !keep.contains(&***n) && self.entries.get(id).is_some_and(|e| e.stored().is_some())
            })
            .map(|(n, _)| n.clone())
            .collect();
        // One wake for the whole reload, not one per service.
        self.batching = Some(false);
        for name in stale {
            self.apply_delete(&name, rev);
        }
        for (rec, stored) in records {
            self.apply_put(rec, stored, now);
        }
        if self.batching.take() == Some(true) {
            self.bump();
        }
        // A watcher resuming from before the reload must resynchronise: the changes in between
        // were never seen one by one.
        self.feed
            .compact_to(feed_revision(rev) + (FEED_REVISIONS_PER_ETCD_REVISION - 1));
    }

    /// A clunk of `fid` on entry `id`, as [`Catalog::release`] decides it: what the store must
    /// delete. The entry stops being the fid's at once, so its deletion coming back through the
    /// watch removes it rather than keeping it as an orphan.
    pub fn plan_release(&mut self, id: EntryId, fid: FidRef, orclose: bool) -> Release {
        if let Some(r) = self.replica.as_mut()
            && r.orphans.get(&id).is_some_and(|o| o.creator == Some(fid))
        {
            r.orphans.remove(&id);
            r.by_creator.remove(&fid);
            r.taken.remove(&id);
            return Release::Nothing;
        }
        let Some(svc) = self.entries.get(&id) else {
            return Release::Nothing;
        };
        if svc.creator != Some(fid) || (!orclose && svc.persists()) {
            return Release::Nothing;
        }
        match (svc.stored(), svc.name().cloned()) {
            (Some(s), Some(name)) => {
                self.disown(id);
                Release::Delete {
                    id,
                    name,
                    create: s.create,
                }
            }
            _ => {
                self.unlink(id);
                Release::Nothing
            }
        }
    }

    /// A Tremove of entry `id` by `uname`, as [`Catalog::remove`] checks it: what the store must
    /// delete.
    pub fn plan_remove(&mut self, id: EntryId, uname: &str) -> Result<Release, Diagnostic> {
        let svc = self.entries.get(&id).ok_or(Diagnostic::NotFound)?;
        if *svc.owner != *uname {
            return Err(Diagnostic::PermissionDenied);
        }
        match (svc.stored(), svc.name().cloned()) {
            (Some(s), Some(name)) => Ok(Release::Delete {
                id,
                name,
                create: s.create,
            }),
            _ => {
                self.unlink(id);
                self.bump();
                Ok(Release::Nothing)
            }
        }
    }

    /// Forgets entry `id` once its key's deletion is committed: if the deletion came back while
    /// its fid was still open here it was kept as an orphan, which it must not stay.
    pub fn forget(&mut self, id: EntryId) {
        self.disown(id);
        if let Some(r) = self.replica.as_mut() {
            r.taken.remove(&id);
            if let Some(o) = r.orphans.remove(&id)
                && let Some(fid) = o.creator
            {
                r.by_creator.remove(&fid);
            }
        }
    }

    /// The entry is no longer its creating fid's.
    fn disown(&mut self, id: EntryId) {
        if let Some(svc) = self.entries.get_mut(&id)
            && let Some(fid) = svc.creator.take()
            && let Some(r) = self.replica.as_mut()
        {
            r.by_creator.remove(&fid);
        }
    }

    /// Removes service `name` from this replica now, for a deletion that could not be committed
    /// (etcd unreachable): the store retries it, and its echo then finds nothing to remove.
    pub fn drop_now(&mut self, name: &str) {
        if let Some(id) = self.names.get(name).copied() {
            let at = self
                .entries
                .get(&id)
                .and_then(|e| e.stored())
                .map(|s| s.modrev);
            if let (Some(r), Some(at)) = (self.replica.as_mut(), at) {
                // A replay of its put by a reconnecting watch must not list it again.
                r.tombstones.insert(name.to_string(), at);
            }
            self.unlink(id);
            self.bump();
        }
    }

    /// Whether a service of this name is listed.
    pub fn lists(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The create revision of service `name` when it is one of this front-end's own
    /// non-persistent registrations that no fid holds any more (its fid was clunked while its
    /// commit was on its way): it must go.
    pub fn stray(&self, name: &str) -> Option<i64> {
        let holder = self.holder();
        let svc = self.entries.get(self.names.get(name)?)?;
        let ours = holder != 0 && svc.origin().0 == holder;
        (ours && svc.creator.is_none() && !svc.persists()).then_some(svc.stored()?.create)
    }

    /// The registrations this front-end holds for open fids (listed or orphaned) that lapse with
    /// its lease: what it re-creates when its lease was lost.
    pub fn held(&self) -> Vec<(EntryId, Record)> {
        let Some(r) = &self.replica else {
            return Vec::new();
        };
        let listed = self.entries.values();
        listed
            .chain(r.orphans.values())
            .filter(|e| e.creator.is_some() && e.origin().0 == r.holder && !e.persists())
            .filter_map(|e| {
                Some((
                    e.id,
                    Record {
                        owner: e.owner.to_string(),
                        holder: e.origin().0,
                        fid: e.origin().1,
                        vers: e.vers,
                        mtime: e.mtime,
                        name: e.name()?.to_string(),
                        attrs: e
                            .attrs()
                            .iter()
                            .map(|(a, v)| (a.to_string(), v.to_string()))
                            .collect(),
                    },
                ))
            })
            .collect()
    }

    /// Marks a held registration lost: another front-end took its name while this one was cut
    /// off, so its fid's next write fails with [`Diagnostic::Taken`].
    pub fn mark_taken(&mut self, id: EntryId) {
        if let Some(r) = self.replica.as_mut() {
            r.taken.insert(id);
        }
    }
}
