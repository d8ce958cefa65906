//! The catalog in etcd (`registry serve --etcd`, spec/etcd.md): several front-ends serving one
//! registry.
//!
//! Each front-end keeps a full replica ([`Catalog`] in replica mode), loaded from a range read
//! and fed by one watch of the prefix; every read is answered from it. A change is a transaction
//! (create-if-absent for a new name, compare-and-swap on the key's mod revision for an update),
//! applied to the replica from the commit's answer before it returns, so a writer reads its own
//! writes at once; the watch's echo is then stale. The front-end's non-persistent services are attached to its one lease, kept alive
//! here: when the front-end dies they go everywhere within the TTL.

use super::catalog::{Catalog, Plan, Release, Stored};
use super::fs::{RegistryFs, now};
use super::index::EntryId;
use super::record::Record;
use crate::etcd::rpc::{
    self, Compare, KeyValue, LeaseKeepAliveRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, compare, event::EventType, request_op, response_op,
};
use crate::etcd::{Etcd, EtcdError, EtcdOptions};
use crate::wire::{self, Diagnostic};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// The default key prefix.
pub const DEFAULT_PREFIX: &str = "/registries/";
/// The default lease TTL.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(10);

/// How long a write overtaken by another front-end's waits for the watch to bring that change.
const ECHO_WAIT: Duration = Duration::from_secs(3);
/// The pause before a background task tries etcd again after a failure.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Attempts of a write whose base changed under it (another front-end wrote the same service).
const WRITE_ATTEMPTS: usize = 5;

/// Where the catalog lives: `registry serve --etcd URL[,URL...] [--etcd-prefix P] [--lease-ttl S]`.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Client URLs of the etcd members (`host:port` or `http://host:port`).
    pub endpoints: Vec<String>,
    /// The key prefix of this catalog; services are at `PREFIX svc/NAME`.
    pub prefix: String,
    /// The TTL of the front-end's lease: how long its registrations outlive it.
    pub lease_ttl: Duration,
    /// How long a call to etcd keeps trying before the registry reports the store unavailable
    /// (also the wait for etcd at start).
    pub deadline: Duration,
}

impl EtcdConfig {
    /// These endpoints with the default prefix, TTL (10 s) and deadline (5 s).
    pub fn new(endpoints: Vec<String>) -> EtcdConfig {
        EtcdConfig {
            endpoints,
            prefix: DEFAULT_PREFIX.to_string(),
            lease_ttl: DEFAULT_LEASE_TTL,
            deadline: Duration::from_secs(5),
        }
    }
}

/// One front-end's link to etcd: the client, the key prefix, the lease.
#[derive(Debug)]
pub(crate) struct EtcdStore {
    etcd: Etcd,
    /// `PREFIX svc/`: every key of a service.
    keys: Vec<u8>,
    ttl: i64,
    lease: AtomicI64,
    holder: u64,
    /// Whether the last call failed: logged once per outage, not once per call.
    down: AtomicBool,
    /// When etcd last answered (a write, a read or a lease keep-alive).
    last_answer: std::sync::Mutex<std::time::Instant>,
    /// The registry it stores, for the tasks that outlive a request.
    fs: Weak<RegistryFs>,
    /// `PREFIX fence/HOLDER`: a key of this front-end's, on its lease, that every write answered
    /// to a client compares (its mod revision must be [`EtcdStore::fence`]). Writing it fences
    /// off every request sent before: one that reaches etcd later fails (spec/etcd.md, "Writes
    /// that get no answer").
    fence_key: Vec<u8>,
    /// The fence key's mod revision as this front-end last wrote it.
    fence: AtomicI64,
    /// When the newest keep-alive that etcd confirmed was sent: the lease lives at least until
    /// then + TTL, and may be gone after that.
    confirmed: std::sync::Mutex<Instant>,
    /// This front-end has not heard its lease confirmed for longer than the TTL: its clients'
    /// registrations may be gone from etcd. Their connections were closed, and changes are
    /// refused without being sent until the lease is confirmed and the fence written again.
    expired: AtomicBool,
    /// Set by [`EtcdStore::close`]: the lease is no longer kept alive.
    closed: AtomicBool,
    /// A re-registration after a lost lease is running.
    recovering: AtomicBool,
}

/// What a write that got no answer turned out to be, once fenced off.
enum Settled {
    /// It was applied; the fence's revision, which the replica must reach to show it.
    Applied(i64),
    /// It was not, and now never will be.
    NotApplied,
}

/// Why a commit did not go through.
enum Refusal {
    /// The registry's answer to the client.
    Final(Diagnostic),
    /// The service changed under the write: plan it again from the replica.
    Stale,
}

fn random_holder() -> u64 {
    let mut b = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).is_err() {
        return u64::from(now()) << 20 | u64::from(std::process::id());
    }
    u64::from_le_bytes(b) | 1
}

fn put_op(key: Vec<u8>, value: String, lease: Option<i64>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestPut(PutRequest {
            key: key.into(),
            value: value.into(),
            lease: lease.unwrap_or(0),
            prev_kv: false,
            ignore_lease: lease.is_none(),
        })),
    }
}

fn get_op(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestRange(RangeRequest {
            key: key.into(),
            ..Default::default()
        })),
    }
}

fn delete_op(key: Vec<u8>) -> RequestOp {
    RequestOp {
        request: Some(request_op::Request::RequestDeleteRange(
            rpc::DeleteRangeRequest {
                key: key.into(),
                ..Default::default()
            },
        )),
    }
}

/// `key` is the incarnation created at revision `rev` (0: absent).
fn created_at(key: &[u8], rev: i64) -> Compare {
    compare(
        key,
        compare::CompareTarget::Create,
        compare::TargetUnion::CreateRevision(rev),
    )
}

/// What a failed guarded write's [`EtcdStore::key_and_fence`] read: the key, then the fence.
fn key_and_fence_read(resp: rpc::TxnResponse) -> (Option<KeyValue>, Option<KeyValue>) {
    let mut read = reads(resp).into_iter();
    (read.next().flatten(), read.next().flatten())
}

/// `key`'s mod revision is `rev`: for the fence, which a write must find as this front-end left
/// it.
fn fenced_by(key: &[u8], rev: i64) -> Compare {
    compare(
        key,
        compare::CompareTarget::Mod,
        compare::TargetUnion::ModRevision(rev),
    )
}

fn compare(key: &[u8], target: compare::CompareTarget, value: compare::TargetUnion) -> Compare {
    Compare {
        result: compare::CompareResult::Equal as i32,
        target: target as i32,
        key: key.to_vec().into(),
        target_union: Some(value),
    }
}

/// What each `get_op` of a transaction's answer read (`None`: the key is absent), in order.
fn reads(resp: rpc::TxnResponse) -> Vec<Option<KeyValue>> {
    resp.responses
        .into_iter()
        .filter_map(|r| match r.response {
            Some(response_op::Response::ResponseRange(range)) => Some(range.kvs.into_iter().next()),
            _ => None,
        })
        .collect()
}

/// Whether etcd refused a request because the lease it names is gone.
fn lease_gone(e: &EtcdError) -> bool {
    matches!(e, EtcdError::Refused(m) if m.contains("lease not found"))
}

impl EtcdStore {
    /// Connects to etcd, takes a lease, loads the catalog into `fs`'s replica and starts the
    /// watch and the keep-alive. Fails within `cfg.deadline` when etcd does not answer.
    pub(crate) async fn start(
        cfg: &EtcdConfig,
        fs: &Arc<RegistryFs>,
    ) -> Result<Arc<EtcdStore>, EtcdError> {
        let mut opts = EtcdOptions::new(cfg.endpoints.clone());
        opts.deadline = cfg.deadline;
        let etcd = Etcd::new(opts)?;
        let ttl = i64::try_from(cfg.lease_ttl.as_secs().max(1)).unwrap_or(i64::MAX);
        // The lease lives at least TTL from when it was asked for.
        let asked = Instant::now();
        let lease = etcd.grant(ttl).await?;
        let holder = random_holder();
        let mut keys = cfg.prefix.as_bytes().to_vec();
        keys.extend_from_slice(b"svc/");
        let fence_key = format!("{}fence/{holder:016x}", cfg.prefix).into_bytes();
        let store = Arc::new(EtcdStore {
            etcd,
            keys,
            ttl,
            lease: AtomicI64::new(lease),
            holder,
            down: AtomicBool::new(false),
            last_answer: std::sync::Mutex::new(std::time::Instant::now()),
            fs: Arc::downgrade(fs),
            closed: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
            fence_key,
            fence: AtomicI64::new(0),
            confirmed: std::sync::Mutex::new(asked),
            expired: AtomicBool::new(false),
        });
        store.write_fence(None).await?;
        fs.catalog().make_replica(holder);
        let rev = store.reload(fs).await?;
        tracing::info!(
            "registry: catalog in etcd {} under {:?}: {} services at revision {rev}, lease {lease:x} ({ttl} s)",
            cfg.endpoints.join(","),
            cfg.prefix,
            fs.catalog().named().count(),
        );
        tokio::spawn(Arc::clone(&store).watch_loop(Arc::downgrade(fs), rev + 1));
        tokio::spawn(Arc::clone(&store).keep_alive_loop(Arc::downgrade(fs)));
        tokio::spawn(Arc::clone(&store).expiry_loop(Arc::downgrade(fs)));
        Ok(store)
    }

    /// Writes the fence key (on the current lease), fencing off every write sent before, and
    /// reads `key` in the same transaction: what it held at that revision, which no request sent
    /// before can change any more. `Ok(None)` when the lease is gone: its expiry deleted the
    /// fence key, which fences off the same writes; `key` is then read on its own. Sent again
    /// when it gets no answer: a late copy only moves the fence on (see [`EtcdStore::fence_moved`]).
    async fn write_fence(&self, key: Option<&[u8]>) -> Result<(Option<KeyValue>, i64), EtcdError> {
        let lease = self.lease.load(Ordering::Relaxed);
        let mut success = vec![put_op(self.fence_key.clone(), String::new(), Some(lease))];
        success.extend(key.map(|k| get_op(k.to_vec())));
        let txn = TxnRequest {
            compare: vec![],
            success,
            failure: vec![],
        };
        match self.etcd.txn(txn).await {
            Ok(resp) => {
                self.answered();
                let rev = resp.header.as_ref().map_or(0, |h| h.revision);
                self.fence.fetch_max(rev, Ordering::Relaxed);
                Ok((reads(resp).into_iter().next().flatten(), rev))
            }
            Err(e) if lease_gone(&e) => {
                self.answered();
                let Some(key) = key else { return Ok((None, 0)) };
                self.etcd.get(key).await
            }
            Err(e) => Err(e),
        }
    }

    /// A write whose transaction got no answer: fences it off, then tells from what `key`
    /// holds whether it was applied (the key holds `value`) or not, and now never will be.
    /// Waits as long as etcd does not answer; a session expiry closes the client's connection,
    /// which drops this wait, and the write's outcome stays unknown to it.
    async fn settle(&self, key: &[u8], applied: impl Fn(Option<&KeyValue>) -> bool) -> Settled {
        let mut pause = RETRY_PAUSE;
        loop {
            match self.write_fence(Some(key)).await {
                Ok((kv, rev)) if applied(kv.as_ref()) => {
                    crate::metrics::store_write_settled(true);
                    // The replica must reach the revision the key was read at.
                    return Settled::Applied(rev);
                }
                Ok(_) => {
                    crate::metrics::store_write_settled(false);
                    return Settled::NotApplied;
                }
                Err(e) => {
                    self.unavailable("fencing a write that got no answer", &e);
                    if self.closed.load(Ordering::Relaxed) {
                        // The registry is stopping and its lease may outlive it: nothing can be
                        // answered that is known to hold, so nothing is.
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    fn key(&self, name: &str) -> Vec<u8> {
        let mut k = self.keys.clone();
        k.extend_from_slice(name.as_bytes());
        k
    }

    /// The lease for a record: none for one that persists, ours for our own, and the one it has
    /// for another front-end's service written through this one.
    fn lease_for(&self, rec: &Record) -> Option<i64> {
        if rec.holder != self.holder {
            None
        } else if rec.persists() {
            Some(0)
        } else {
            Some(self.lease.load(Ordering::Relaxed))
        }
    }

    /// The failure branch of a guarded write: read the key and the fence, to tell a guard that
    /// failed from a fence that moved ([`key_and_fence_read`]).
    fn key_and_fence(&self, key: &[u8]) -> Vec<RequestOp> {
        vec![get_op(key.to_vec()), get_op(self.fence_key.clone())]
    }

    /// Whether the fence is no longer at `sent` (the revision a failed write compared), as
    /// `fence` read it. A fence further on than this front-end knows was put there by a late copy
    /// of its own fence write: it is taken up, since only this front-end writes that key and every
    /// request carrying an older revision fails alike.
    fn fence_moved(&self, sent: i64, fence: Option<&KeyValue>) -> bool {
        match fence {
            Some(f) if f.mod_revision == sent => false,
            Some(f) => {
                self.fence.fetch_max(f.mod_revision, Ordering::Relaxed);
                true
            }
            None => true,
        }
    }

    /// Whether changes are refused without being sent: the lease has not been confirmed for
    /// longer than its TTL.
    fn is_expired(&self) -> bool {
        self.expired.load(Ordering::Relaxed)
    }

    fn unavailable(&self, what: &str, e: &EtcdError) -> Diagnostic {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::error!("registry: {what}: {e}: refusing changes until etcd answers");
        }
        Diagnostic::StoreUnavailable
    }

    /// Whether etcd answers (its last call did not fail), and how long ago it last answered.
    pub(crate) fn health(&self) -> (bool, Duration) {
        let last = *self.last_answer.lock().unwrap_or_else(|e| e.into_inner());
        (!self.down.load(Ordering::Relaxed), last.elapsed())
    }

    fn answered(&self) {
        *self.last_answer.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::warn!("registry: etcd answers again");
        }
    }

    /// Waits (at most [`ECHO_WAIT`]) until the replica has applied revision `rev`.
    async fn echo(fs: &RegistryFs, rev: i64) {
        let mut rx = fs.catalog().applied();
        if tokio::time::timeout(ECHO_WAIT, rx.wait_for(|r| *r >= rev))
            .await
            .is_err()
        {
            tracing::warn!(
                "registry: etcd revision {rev} not seen by the watch within {ECHO_WAIT:?}"
            );
        }
    }

    /// Loads every service under the prefix into the replica: its revision.
    async fn reload(&self, fs: &RegistryFs) -> Result<i64, EtcdError> {
        let (kvs, rev) = self.etcd.range_prefix(&self.keys).await?;
        let records = kvs.iter().filter_map(|kv| self.record(kv)).collect();
        let mut cat = fs.catalog();
        cat.apply_snapshot(records, rev, now());
        cat.set_applied(rev);
        Ok(rev)
    }

    /// The record a key holds, or `None` (logged) for a key under the prefix that is not one.
    fn record(&self, kv: &KeyValue) -> Option<(Record, Stored)> {
        let name = kv.key.get(self.keys.len()..).unwrap_or_default();
        match Record::decode(&kv.value) {
            Ok(rec) if rec.name.as_bytes() == name => Some((
                rec,
                Stored {
                    create: kv.create_revision,
                    modrev: kv.mod_revision,
                },
            )),
            Ok(_) => {
                tracing::warn!(
                    "registry: etcd key {:?}: name does not match its record: ignored",
                    String::from_utf8_lossy(&kv.key)
                );
                None
            }
            Err(e) => {
                tracing::warn!(
                    "registry: etcd key {:?}: {e}: ignored",
                    String::from_utf8_lossy(&kv.key)
                );
                None
            }
        }
    }

    /// A write to entry `id`: planned from the replica, committed, seen.
    pub(crate) async fn write(
        &self,
        fs: &RegistryFs,
        id: EntryId,
        text: &str,
    ) -> Result<(), Diagnostic> {
        for _ in 0..WRITE_ATTEMPTS {
            let plan = fs.catalog().plan_write(id, text, now())?;
            let then = plan.then.clone();
            match self.commit(fs, plan).await {
                Ok(()) => return then.map_or(Ok(()), Err),
                Err(Refusal::Final(d)) => return Err(d),
                Err(Refusal::Stale) => continue,
            }
        }
        Err(Diagnostic::StoreUnavailable)
    }

    async fn commit(&self, fs: &RegistryFs, plan: Plan) -> Result<(), Refusal> {
        let rec = plan.record;
        let key = self.key(&rec.name);
        let value = rec.encode();
        let guard = match plan.stored {
            None => created_at(&key, 0),
            Some(s) => compare(
                &key,
                compare::CompareTarget::Mod,
                compare::TargetUnion::ModRevision(s.modrev),
            ),
        };
        if self.is_expired() {
            // Not sent: a refusal that holds.
            return Err(Refusal::Final(Diagnostic::StoreUnavailable));
        }
        let fence = self.fence.load(Ordering::Relaxed);
        let txn = TxnRequest {
            compare: vec![guard, fenced_by(&self.fence_key, fence)],
            success: vec![put_op(key.clone(), value.clone(), self.lease_for(&rec))],
            failure: self.key_and_fence(&key),
        };
        let resp = match self.etcd.txn_once(txn).await {
            Ok(r) => r,
            Err(e) if e.outcome_unknown() => {
                self.unavailable("commit", &e);
                let ours =
                    |kv: Option<&KeyValue>| kv.is_some_and(|kv| *kv.value == *value.as_bytes());
                return match self.settle(&key, ours).await {
                    Settled::Applied(rev) => {
                        Self::echo(fs, rev).await;
                        Ok(())
                    }
                    Settled::NotApplied => Err(Refusal::Stale),
                };
            }
            Err(e) => return Err(Refusal::Final(self.unavailable("commit", &e))),
        };
        self.answered();
        if resp.succeeded {
            // Applied by the watch, in etcd's order on every front-end alike; the reply waits
            // for it (read your writes).
            Self::echo(fs, resp.header.map_or(0, |h| h.revision)).await;
            return Ok(());
        }
        let (kv, fence_kv) = key_and_fence_read(resp);
        if self.fence_moved(fence, fence_kv.as_ref()) {
            // The fence moved since this write was planned (a write that got no answer was
            // fenced off meanwhile, or the lease was renewed): nothing was applied.
            return Err(Refusal::Stale);
        }
        match kv {
            // An attempt whose answer was lost went through: this is our own value.
            Some(kv) if *kv.value == *value.as_bytes() => {
                Self::echo(fs, kv.mod_revision).await;
                Ok(())
            }
            Some(_) if plan.stored.is_none() => Err(Refusal::Final(Diagnostic::Duplicate)),
            Some(kv) => {
                Self::echo(fs, kv.mod_revision).await;
                Err(Refusal::Stale)
            }
            None if plan.stored.is_some() => Err(Refusal::Final(Diagnostic::Gone)),
            None => Err(Refusal::Stale),
        }
    }

    /// Deletes key `name` if it is still incarnation `create`: whether etcd answered. Not
    /// fenced: a deletion that nobody is answered for (a clunk, a stray) is retried until etcd
    /// takes it, and a late copy can only delete the same incarnation.
    async fn delete(&self, fs: &RegistryFs, name: &str, create: i64) -> Result<(), EtcdError> {
        let key = self.key(name);
        let txn = TxnRequest {
            compare: vec![created_at(&key, create)],
            success: vec![delete_op(key)],
            failure: vec![],
        };
        let resp = self.etcd.txn(txn).await?;
        self.answered();
        if resp.succeeded {
            Self::echo(fs, resp.header.map_or(0, |h| h.revision)).await;
        }
        Ok(())
    }

    /// A clunk that unregisters. It cannot fail: when etcd does not answer, the service leaves
    /// this replica now and the deletion is retried until etcd takes it.
    pub(crate) async fn release(self: &Arc<Self>, rel: Release) {
        let Release::Delete { id, name, create } = rel else {
            return;
        };
        let Some(fs) = self.fs.upgrade() else { return };
        let fs = &fs;
        match self.delete(fs, &name, create).await {
            Ok(()) => fs.catalog().forget(id),
            Err(e) => {
                self.unavailable("unregister", &e);
                {
                    let mut cat = fs.catalog();
                    cat.forget(id);
                    cat.drop_now(&name);
                }
                let (store, fs) = (Arc::clone(self), self.fs.clone());
                tokio::spawn(async move {
                    let mut pause = Duration::from_millis(500);
                    loop {
                        tokio::time::sleep(pause).await;
                        let Some(fs) = fs.upgrade() else { return };
                        if store.delete(&fs, &name, create).await.is_ok() {
                            return;
                        }
                        pause = (pause * 2).min(Duration::from_secs(5));
                    }
                });
            }
        }
    }

    /// A Tremove: refused while etcd does not answer (and then never applied: it is fenced as
    /// a write is).
    pub(crate) async fn remove(&self, fs: &RegistryFs, rel: Release) -> Result<(), Diagnostic> {
        let Release::Delete { id, name, create } = rel else {
            return Ok(());
        };
        let key = self.key(&name);
        let this_one = |kv: &KeyValue| kv.create_revision == create;
        for _ in 0..WRITE_ATTEMPTS {
            if self.is_expired() {
                return Err(Diagnostic::StoreUnavailable);
            }
            let fence = self.fence.load(Ordering::Relaxed);
            let txn = TxnRequest {
                compare: vec![created_at(&key, create), fenced_by(&self.fence_key, fence)],
                success: vec![delete_op(key.clone())],
                failure: self.key_and_fence(&key),
            };
            let done = match self.etcd.txn_once(txn).await {
                Ok(resp) if resp.succeeded => {
                    self.answered();
                    Some(resp.header.map_or(0, |h| h.revision))
                }
                Ok(resp) => {
                    self.answered();
                    let (kv, fence_kv) = key_and_fence_read(resp);
                    if self.fence_moved(fence, fence_kv.as_ref()) {
                        continue;
                    }
                    // Not this incarnation any more: it is gone already.
                    (!kv.as_ref().is_some_and(this_one)).then_some(0)
                }
                Err(e) if e.outcome_unknown() => {
                    self.unavailable("remove", &e);
                    let gone = |kv: Option<&KeyValue>| !kv.is_some_and(this_one);
                    match self.settle(&key, gone).await {
                        Settled::Applied(rev) => Some(rev),
                        Settled::NotApplied => continue,
                    }
                }
                Err(e) => return Err(self.unavailable("remove", &e)),
            };
            if let Some(rev) = done {
                Self::echo(fs, rev).await;
                fs.catalog().forget(id);
                return Ok(());
            }
        }
        Err(Diagnostic::StoreUnavailable)
    }

    /// Applies the watch's events to the replica, for as long as the registry lives; reconnects
    /// from the last revision applied, and reloads everything when that revision was compacted.
    async fn watch_loop(self: Arc<Self>, fs: Weak<RegistryFs>, mut next: i64) {
        loop {
            if fs.strong_count() == 0 || self.closed.load(Ordering::Relaxed) {
                return;
            }
            let (_tx, mut stream) = match self.etcd.watch(&self.keys, next).await {
                Ok(duplex) => duplex,
                Err(e) => {
                    self.unavailable("watch", &e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            loop {
                let resp = match stream.message().await {
                    Ok(Some(resp)) => resp,
                    Ok(None) | Err(_) => break,
                };
                let Some(fs) = fs.upgrade() else { return };
                if self.closed.load(Ordering::Relaxed) {
                    return;
                }
                if resp.canceled && resp.compact_revision == 0 {
                    tracing::warn!("registry: etcd cancelled the watch: {}", resp.cancel_reason);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    break;
                }
                if resp.compact_revision > 0 {
                    tracing::warn!(
                        "registry: etcd compacted past revision {next}: reloading the catalog"
                    );
                    match self.reload(&fs).await {
                        Ok(rev) => next = rev + 1,
                        Err(e) => {
                            self.unavailable("reload", &e);
                        }
                    }
                    break;
                }
                let strays = {
                    let mut cat = fs.catalog();
                    let (after, strays) = self.apply(&mut cat, &resp.events);
                    next = after.max(next);
                    if resp.events.is_empty() {
                        // A progress notification: everything up to its revision has been sent.
                        let rev = resp.header.map_or(0, |h| h.revision);
                        next = next.max(rev + 1);
                    }
                    cat.set_applied(next - 1);
                    strays
                };
                for (name, create) in strays {
                    let store = Arc::clone(&self);
                    let fs = Arc::clone(&fs);
                    tokio::spawn(async move {
                        tracing::info!(
                            "registry: {} outlived its fid here: removing it",
                            wire::quote(&name)
                        );
                        let _ = store.delete(&fs, &name, create).await;
                    });
                }
            }
        }
    }

    /// Applies events: the revision after the last one, and this front-end's own registrations
    /// that came back with no fid left to hold them (the fid was clunked while the commit was on
    /// its way): their names and create revisions, to delete.
    fn apply(&self, cat: &mut Catalog, events: &[rpc::Event]) -> (i64, Vec<(String, i64)>) {
        let mut next = 0;
        let mut strays = Vec::new();
        for ev in events {
            let Some(kv) = &ev.kv else { continue };
            next = next.max(kv.mod_revision + 1);
            if ev.r#type == EventType::Delete as i32 {
                let name =
                    String::from_utf8_lossy(kv.key.get(self.keys.len()..).unwrap_or_default());
                cat.apply_delete(&name, kv.mod_revision);
            } else if let Some((rec, stored)) = self.record(kv) {
                let name = rec.name.clone();
                let new = !cat.lists(&name);
                cat.apply_put(rec, stored, now());
                if new && let Some(create) = cat.stray(&name) {
                    strays.push((name, create));
                }
            }
        }
        (next, strays)
    }

    /// Ends this front-end's lease, so that its non-persistent registrations go everywhere now
    /// rather than a TTL later; the keep-alive stops.
    pub(crate) async fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
        let lease = self.lease.load(Ordering::Relaxed);
        match self.etcd.revoke(lease).await {
            Ok(()) => tracing::info!("registry: lease {lease:x} revoked"),
            Err(e) => tracing::warn!("registry: revoking lease {lease:x}: {e}"),
        }
    }

    /// Keeps the lease alive; when etcd says it is gone (this front-end was cut off longer than
    /// the TTL), takes a new one and registers again what its clients still hold open.
    async fn keep_alive_loop(self: Arc<Self>, fs: Weak<RegistryFs>) {
        let period = Duration::from_secs(u64::try_from(self.ttl).unwrap_or(1).max(3) / 3);
        loop {
            if fs.strong_count() == 0 {
                return;
            }
            let mut sent = Instant::now();
            let (tx, mut stream) = match self
                .etcd
                .keep_alive(self.lease.load(Ordering::Relaxed))
                .await
            {
                Ok(duplex) => duplex,
                Err(e) => {
                    self.unavailable("lease keep-alive", &e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            };
            // The renewal that opened the stream may have been sent long before (the call tries
            // endpoint after endpoint): its answer confirms nothing, so the next one goes at once.
            let mut opening = true;
            loop {
                let id = self.lease.load(Ordering::Relaxed);
                if !opening {
                    sent = Instant::now();
                    if tx.send(LeaseKeepAliveRequest { id }).await.is_err() {
                        break;
                    }
                }
                let answer =
                    tokio::time::timeout(period.max(Duration::from_secs(1)), stream.message())
                        .await;
                match answer {
                    Ok(Ok(Some(resp))) if resp.ttl > 0 && std::mem::take(&mut opening) => {
                        self.answered();
                    }
                    Ok(Ok(Some(resp))) if resp.ttl > 0 => {
                        self.answered();
                        self.confirm(sent);
                        if self.is_expired() {
                            self.reopen().await;
                        }
                        tokio::time::sleep(period).await;
                    }
                    Ok(Ok(Some(_))) => {
                        if self.closed.load(Ordering::Relaxed) {
                            return;
                        }
                        opening = false;
                        self.renew_lease().await;
                        self.reopen().await;
                        // Registering again runs beside the keep-alive of the new lease, which
                        // must not lapse while it takes.
                        if !self.recovering.swap(true, Ordering::Relaxed) {
                            let (store, fs) = (Arc::clone(&self), fs.clone());
                            tokio::spawn(async move {
                                if let Some(fs) = fs.upgrade() {
                                    store.recover(&fs).await;
                                }
                                store.recovering.store(false, Ordering::Relaxed);
                            });
                        }
                    }
                    _ => break,
                }
                if fs.strong_count() == 0 || self.closed.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }

    /// A keep-alive sent at `sent` was answered: the lease lives until at least `sent` + TTL.
    fn confirm(&self, sent: Instant) {
        let mut c = self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
        *c = (*c).max(sent);
    }

    /// The TTL as a duration.
    fn ttl(&self) -> Duration {
        Duration::from_secs(u64::try_from(self.ttl).unwrap_or(1))
    }

    /// Watches the lease's confirmations: once none has come for the TTL, etcd may have deleted
    /// this front-end's registrations, so its clients are told as a ZooKeeper session expiry
    /// tells them: their connections are closed (a manager with several registries moves to
    /// another), and changes are refused unsent until the lease is confirmed again.
    async fn expiry_loop(self: Arc<Self>, fs: Weak<RegistryFs>) {
        let tick = (self.ttl() / 10).clamp(Duration::from_millis(50), Duration::from_millis(500));
        loop {
            tokio::time::sleep(tick).await;
            let Some(fs) = fs.upgrade() else { return };
            if self.closed.load(Ordering::Relaxed) {
                return;
            }
            let since = *self.confirmed.lock().unwrap_or_else(|e| e.into_inner());
            if !self.is_expired() && since.elapsed() >= self.ttl() {
                self.expired.store(true, Ordering::Relaxed);
                crate::metrics::store_session_expired();
                let closed = fs.expire_sessions();
                tracing::error!(
                    "registry: lease {:x} not confirmed by etcd for {:?} (the TTL): its registrations may be gone; closing {closed} client connections and refusing changes until etcd confirms a lease again",
                    self.lease.load(Ordering::Relaxed),
                    since.elapsed()
                );
            }
        }
    }

    /// After an expiry: once the lease is confirmed (or renewed), writes the fence, so that
    /// nothing sent before the expiry can still be applied, and accepts changes again.
    async fn reopen(&self) {
        if !self.is_expired() {
            return;
        }
        loop {
            match self.write_fence(None).await {
                Ok(_) => break,
                Err(e) => {
                    self.unavailable("writing the fence", &e);
                    if self.closed.load(Ordering::Relaxed) {
                        return;
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        self.expired.store(false, Ordering::Relaxed);
        tracing::warn!(
            "registry: lease {:x} confirmed and fence written: accepting changes again",
            self.lease.load(Ordering::Relaxed)
        );
    }

    /// A new lease in place of one that expired.
    async fn renew_lease(&self) {
        tracing::warn!(
            "registry: lease {:x} expired: taking a new one and registering again",
            self.lease.load(Ordering::Relaxed)
        );
        let (lease, asked) = loop {
            let asked = Instant::now();
            match self.etcd.grant(self.ttl).await {
                Ok(l) => break (l, asked),
                Err(e) => {
                    self.unavailable("lease grant", &e);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        };
        self.lease.store(lease, Ordering::Relaxed);
        // The old fence key went with the old lease: until a new one is written, every fenced
        // write fails, which is right (they were planned under the old lease).
        self.expired.store(true, Ordering::Relaxed);
        self.confirm(asked);
    }

    /// Puts the registrations held open here back under the current lease; retries those etcd
    /// did not answer for until it does (or the registry closes).
    async fn recover(&self, fs: &RegistryFs) {
        let mut pending = fs.catalog().held();
        let (mut back, mut lost) = (0, 0);
        // A registration sent again that got no answer may still land: before it is sent once
        // more, the fence is written, so that the first copy cannot land after a removal.
        let mut unfenced = false;
        while !pending.is_empty() && !self.closed.load(Ordering::Relaxed) {
            if std::mem::take(&mut unfenced) && self.write_fence(None).await.is_err() {
                unfenced = true;
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            }
            let mut again = Vec::new();
            for (id, rec) in pending {
                match self.register_again(&rec).await {
                    Ok(true) => back += 1,
                    Ok(false) => {
                        lost += 1;
                        tracing::warn!(
                            "registry: {} was taken by another registry while this one was cut off from etcd",
                            wire::quote(&rec.name)
                        );
                        fs.catalog().mark_taken(id);
                    }
                    Err(e) => {
                        unfenced |= e.outcome_unknown();
                        again.push((id, rec));
                    }
                }
            }
            pending = again;
            if !pending.is_empty() {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        let lease = self.lease.load(Ordering::Relaxed);
        tracing::warn!(
            "registry: new lease {lease:x}: {back} registrations back, {lost} taken by others"
        );
    }

    /// Registers `rec` again under the current lease: whether it is back (false: another
    /// front-end holds the name now).
    async fn register_again(&self, rec: &Record) -> Result<bool, EtcdError> {
        let lease = self.lease.load(Ordering::Relaxed);
        let key = self.key(&rec.name);
        let fence = self.fence.load(Ordering::Relaxed);
        let txn = TxnRequest {
            compare: vec![created_at(&key, 0), fenced_by(&self.fence_key, fence)],
            success: vec![put_op(key.clone(), rec.encode(), Some(lease))],
            failure: self.key_and_fence(&key),
        };
        let resp = self.etcd.txn_once(txn).await?;
        if resp.succeeded {
            return Ok(true);
        }
        let (kv, fence_kv) = key_and_fence_read(resp);
        if self.fence_moved(fence, fence_kv.as_ref()) {
            return Err(EtcdError::Refused("fence moved meanwhile".into()));
        }
        match kv.map(|kv| (Record::decode(&kv.value), kv)) {
            Some((Ok(other), kv)) if other.holder == rec.holder && other.fid == rec.fid => {
                // Still there (the expiry has not reached it yet): the same value, as etcd holds
                // it (another front-end may have written it since), moved to the new lease.
                let txn = TxnRequest {
                    compare: vec![compare(
                        &key,
                        compare::CompareTarget::Mod,
                        compare::TargetUnion::ModRevision(kv.mod_revision),
                    )],
                    success: vec![RequestOp {
                        request: Some(request_op::Request::RequestPut(PutRequest {
                            key: key.into(),
                            value: kv.value,
                            lease,
                            ..Default::default()
                        })),
                    }],
                    failure: vec![],
                };
                let resp = self.etcd.txn(txn).await?;
                if resp.succeeded {
                    Ok(true)
                } else {
                    Err(EtcdError::Refused("changed meanwhile".into()))
                }
            }
            _ => Ok(false),
        }
    }
}
