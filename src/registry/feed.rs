//! The change feed behind the `feed` tree (spec/feed.md): every visible change gets a revision
//! and a record in a bounded history, and is pushed to the watchers whose query it matches,
//! before or after the change. A change costs in proportion to the watchers it may match: they
//! are indexed by the first pair of their query.

use crate::wire::{self, FeedKind, FeedRequest, FeedStart};
use arcstr::ArcStr;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// A service as one change left it (or found it): shared by the history, the records of the
/// changes before and after it, and the queues of the watchers it was sent to.
#[derive(Debug, Clone)]
pub struct Snap {
    /// Its name.
    pub name: ArcStr,
    /// Its attributes, in the service's order.
    pub attrs: Vec<(ArcStr, ArcStr)>,
}

impl Snap {
    /// Whether the service matched `query` (`find`'s rules).
    fn matches(&self, query: &[(String, String)]) -> bool {
        super::catalog::matches_attrs(&self.attrs, query)
    }

    fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(a, v)| (&**a, &**v))
    }
}

/// The feed's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedLimits {
    /// Changes kept for watchers that resume from a revision (`serve --history`). A record is a
    /// revision and two shared service descriptions, so 100,000 cost a few tens of megabytes at
    /// most, far less when the same services change again and again.
    pub history: usize,
    /// Changes queued for one watcher that does not read them; past this it is told it fell
    /// behind (the `compacted` error) and resynchronises (`serve --feed-queue`).
    pub queue: usize,
}

impl FeedLimits {
    /// The default history: 100,000 changes.
    pub const DEFAULT_HISTORY: usize = 100_000;
    /// The default per-watcher queue: 10,000 changes.
    pub const DEFAULT_QUEUE: usize = 10_000;
}

impl Default for FeedLimits {
    fn default() -> Self {
        FeedLimits {
            history: FeedLimits::DEFAULT_HISTORY,
            queue: FeedLimits::DEFAULT_QUEUE,
        }
    }
}

/// One change: the service before it (`None`: it was not there) and after it (`None`: it went).
#[derive(Debug)]
struct Record {
    rev: u64,
    before: Option<Arc<Snap>>,
    after: Option<Arc<Snap>>,
}

impl Record {
    /// What this change is to a watcher of `query`, and the description to send.
    fn seen_by(&self, query: &[(String, String)]) -> Option<(FeedKind, &Arc<Snap>)> {
        let before = self.before.as_ref().filter(|s| s.matches(query));
        let after = self.after.as_ref().filter(|s| s.matches(query));
        match (before, after) {
            (None, Some(a)) => Some((FeedKind::Added, a)),
            (Some(_), Some(a)) => Some((FeedKind::Changed, a)),
            (Some(b), None) => Some((FeedKind::Removed, b)),
            (None, None) => None,
        }
    }

    fn push_to(&self, query: &[(String, String)], out: &mut String) {
        if let Some((kind, snap)) = self.seen_by(query) {
            wire::push_change(out, self.rev, kind, &snap.name, snap.pairs());
        }
    }
}

/// What a watcher has not read yet.
#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<(u64, FeedKind, Arc<Snap>)>,
    /// It overflowed: the next read says so, with the oldest revision kept then.
    behind: Option<u64>,
}

/// One watcher: its query and its queue, filled by changes, emptied by reads.
#[derive(Debug)]
pub struct Watcher {
    query: Vec<(String, String)>,
    queue: Mutex<Queue>,
    notify: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watcher {
    /// Waits until there is something to read, then takes it as record lines: at least one
    /// whole record, or the `compacted` error when the watcher fell behind.
    pub async fn next_text(&self) -> Result<String, String> {
        let mut waiting = None;
        loop {
            {
                let mut q = lock(&self.queue);
                if let Some(oldest) = q.behind.take() {
                    q.items.clear();
                    return Err(wire::format_compacted(oldest));
                }
                if !q.items.is_empty() {
                    let mut out = String::new();
                    for (rev, kind, snap) in q.items.drain(..) {
                        wire::push_change(&mut out, rev, kind, &snap.name, snap.pairs());
                    }
                    return Ok(out);
                }
            }
            waiting.get_or_insert_with(|| crate::metrics::WaitingRead::new("feed"));
            self.notify.notified().await;
        }
    }
}

/// Revisions, history and watchers.
#[derive(Debug)]
pub struct Feed {
    limits: FeedLimits,
    /// The revision the next change gets.
    next_rev: u64,
    /// Records held in place, not boxed: 24 bytes a change where a shared box took 56.
    history: VecDeque<Record>,
    watchers: HashMap<u64, Arc<Watcher>>,
    next_watcher: u64,
    /// Watchers by the first pair of their query: attribute, then value (or `*`).
    by_first_pair: HashMap<String, HashMap<String, HashSet<u64>>>,
    match_all: HashSet<u64>,
}

impl Feed {
    /// A feed whose revisions start after `base`. [`Feed::base_now`] makes them keep
    /// increasing across restarts of the registry: a revision from before a restart is older
    /// than anything kept, never taken for a newer change.
    pub fn new(base: u64, limits: FeedLimits) -> Feed {
        Feed {
            limits,
            next_rev: base + 1,
            history: VecDeque::new(),
            watchers: HashMap::new(),
            next_watcher: 0,
            by_first_pair: HashMap::new(),
            match_all: HashSet::new(),
        }
    }

    /// The first revision base for a registry starting now: microseconds since the epoch, so
    /// that a restarted registry starts above every revision of the one before (as long as that
    /// one made fewer than a million changes a second).
    pub fn base_now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX / 2))
    }

    /// The revision of the latest change (one less than the next).
    pub fn revision(&self) -> u64 {
        self.next_rev - 1
    }

    /// Makes the next change's revision at least `rev`: in `registry serve --etcd` each change
    /// is published at its etcd revision, the same on every front-end, so that a watcher may
    /// resume on any of them.
    pub fn advance_to(&mut self, rev: u64) {
        self.next_rev = self.next_rev.max(rev);
    }

    /// Forgets the history: changes up to `rev` are no longer told to a resuming watcher, which
    /// is told it was compacted and resynchronises (after a reload of the whole catalog).
    pub fn compact_to(&mut self, rev: u64) {
        self.history.clear();
        self.next_rev = self.next_rev.max(rev.saturating_add(1));
    }

    /// The oldest revision a watcher may resume from.
    pub fn oldest_kept(&self) -> u64 {
        self.history.front().map_or(self.next_rev, |r| r.rev)
    }

    /// Records a change and tells the watchers it matches.
    pub fn publish(&mut self, before: Option<Arc<Snap>>, after: Option<Arc<Snap>>) {
        let rev = self.next_rev;
        self.next_rev += 1;
        let record = Record { rev, before, after };
        let oldest = self.oldest_kept();
        let mut told = HashSet::new();
        for id in self.candidates(&record) {
            if !told.insert(id) {
                continue;
            }
            let Some(w) = self.watchers.get(&id) else {
                continue;
            };
            if let Some((kind, snap)) = record.seen_by(&w.query) {
                let mut q = lock(&w.queue);
                if q.behind.is_none() {
                    if q.items.len() >= self.limits.queue {
                        tracing::info!(
                            "registry: feed watcher {id} fell behind ({} changes unread)",
                            q.items.len()
                        );
                        q.items.clear();
                        q.behind = Some(oldest);
                    } else {
                        q.items.push_back((rev, kind, snap.clone()));
                    }
                }
                drop(q);
                w.notify.notify_one();
            }
        }
        if self.limits.history == 0 {
            return;
        }
        if self.history.len() >= self.limits.history {
            self.history.pop_front();
        }
        self.history.push_back(record);
    }

    /// The watchers a change may matter to: those matching everything, and those whose first
    /// pair the service had before or has after.
    fn candidates(&self, r: &Record) -> Vec<u64> {
        let mut out: Vec<u64> = self.match_all.iter().copied().collect();
        for snap in r.before.iter().chain(r.after.iter()) {
            for (a, v) in &snap.attrs {
                let Some(values) = self.by_first_pair.get(&**a) else {
                    continue;
                };
                for value in [&**v, "*"] {
                    if let Some(ids) = values.get(value) {
                        out.extend(ids.iter().copied());
                    }
                }
            }
        }
        out
    }

    /// Starts a watcher for `req`. Returns its number, the watcher, and the text it reads
    /// first: the snapshot (`matching`: the services matching its query now, used only for
    /// [`FeedStart::Snapshot`]) and `synced`, or the history from the revision asked for.
    /// Errors are the text of the Rerror.
    pub fn subscribe(
        &mut self,
        req: &FeedRequest,
        matching: Vec<Arc<Snap>>,
    ) -> Result<(u64, Arc<Watcher>, String), String> {
        let mut first = String::new();
        match req.start {
            FeedStart::Now => {}
            FeedStart::Snapshot => {
                let rev = self.revision();
                for snap in matching {
                    wire::push_change(&mut first, rev, FeedKind::Added, &snap.name, snap.pairs());
                }
                wire::push_synced(&mut first, rev);
            }
            FeedStart::From(from) => {
                let oldest = self.oldest_kept();
                if from < oldest {
                    return Err(wire::format_compacted(oldest));
                }
                if from > self.next_rev {
                    return Err(format!(
                        "revision {from} is ahead of this registry (the next is {})",
                        self.next_rev
                    ));
                }
                // Revisions may skip numbers (etcd's, in `serve --etcd`): search, not subtract.
                let skip = self.history.partition_point(|r| r.rev < from);
                for r in self.history.iter().skip(skip) {
                    r.push_to(&req.query, &mut first);
                }
            }
        }
        let id = self.next_watcher;
        self.next_watcher += 1;
        let w = Arc::new(Watcher {
            query: req.query.clone(),
            queue: Mutex::new(Queue::default()),
            notify: Notify::new(),
        });
        match req.query.first() {
            None => {
                self.match_all.insert(id);
            }
            Some((a, v)) => {
                let values = self.by_first_pair.entry(a.clone()).or_default();
                values.entry(v.clone()).or_default().insert(id);
            }
        }
        self.watchers.insert(id, w.clone());
        Ok((id, w, first))
    }

    /// Stops watcher `id`.
    pub fn unsubscribe(&mut self, id: u64) {
        let Some(w) = self.watchers.remove(&id) else {
            return;
        };
        match w.query.first() {
            None => {
                self.match_all.remove(&id);
            }
            Some((a, v)) => {
                if let Some(values) = self.by_first_pair.get_mut(a) {
                    if let Some(ids) = values.get_mut(v) {
                        ids.remove(&id);
                        if ids.is_empty() {
                            values.remove(v);
                        }
                    }
                    if values.is_empty() {
                        self.by_first_pair.remove(a);
                    }
                }
            }
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> FeedLimits {
        self.limits
    }

    /// Changes the limits: a shorter history drops its oldest changes now.
    pub fn set_limits(&mut self, limits: FeedLimits) {
        self.limits = limits;
        while self.history.len() > limits.history {
            self.history.pop_front();
        }
    }

    /// How many watchers there are.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub fn watchers(&self) -> usize {
        self.watchers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, pairs: &[(&str, &str)]) -> Option<Arc<Snap>> {
        Some(Arc::new(Snap {
            name: ArcStr::from(name),
            attrs: pairs
                .iter()
                .map(|(a, v)| (ArcStr::from(*a), ArcStr::from(*v)))
                .collect(),
        }))
    }

    fn request(start: FeedStart, query: &[(&str, &str)]) -> FeedRequest {
        FeedRequest {
            start,
            query: query
                .iter()
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_change_is_matched_only_against_the_watchers_it_may_concern() {
        let mut feed = Feed::new(0, FeedLimits::default());
        let mut watchers = Vec::new();
        for i in 0..1000 {
            let req = request(FeedStart::Now, &[("id", &i.to_string()), ("proto", "x")]);
            watchers.push(feed.subscribe(&req, Vec::new()).unwrap());
        }
        let (_, star, _) = feed
            .subscribe(&request(FeedStart::Now, &[("id", "*")]), Vec::new())
            .unwrap();
        assert_eq!(feed.watchers(), 1001);
        let record = Record {
            rev: 1,
            before: None,
            after: snap("s", &[("id", "7"), ("proto", "x")]),
        };
        // The watcher of id 7 and the one of any id: not the other 999.
        assert_eq!(feed.candidates(&record).len(), 2);
        feed.publish(None, snap("s", &[("id", "7"), ("proto", "x")]));
        let queued = |w: &Watcher| lock(&w.queue).items.len();
        assert_eq!(queued(&watchers[7].1), 1);
        assert_eq!(queued(&watchers[8].1), 0);
        assert_eq!(queued(&star), 1);
        for (id, _, _) in watchers {
            feed.unsubscribe(id);
        }
        assert_eq!(feed.watchers(), 1);
        assert!(feed.by_first_pair.get("id").is_some_and(|v| v.len() == 1));
    }

    #[test]
    fn the_history_is_bounded_and_resumes_exactly() {
        let limits = FeedLimits {
            history: 3,
            queue: 10,
        };
        let mut feed = Feed::new(100, limits);
        for i in 0..5 {
            feed.publish(None, snap(&format!("s{i}"), &[("k", "v")]));
        }
        assert_eq!((feed.oldest_kept(), feed.revision()), (103, 105));
        let err = feed
            .subscribe(&request(FeedStart::From(102), &[]), Vec::new())
            .unwrap_err();
        assert_eq!(err, wire::format_compacted(103));
        let (_, _, first) = feed
            .subscribe(&request(FeedStart::From(104), &[]), Vec::new())
            .unwrap();
        assert_eq!(first, "104 added s3 k v\n105 added s4 k v\n");
        assert!(
            feed.subscribe(&request(FeedStart::From(107), &[]), Vec::new())
                .is_err()
        );
    }

    #[test]
    fn a_full_queue_makes_the_watcher_resynchronise() {
        let limits = FeedLimits {
            history: 100,
            queue: 2,
        };
        let mut feed = Feed::new(0, limits);
        let (_, w, _) = feed
            .subscribe(&request(FeedStart::Now, &[]), Vec::new())
            .unwrap();
        for i in 0..5 {
            feed.publish(None, snap(&format!("s{i}"), &[]));
        }
        let q = lock(&w.queue);
        assert!(q.items.is_empty());
        assert_eq!(q.behind, Some(1));
    }
}
