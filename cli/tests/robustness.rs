//! The robustness run: clients registering, updating, unregistering, finding and watching on
//! three `registry serve --etcd` front-ends over a real three-member etcd, while a fault injector
//! kills front-ends (SIGKILL), kills and restarts etcd members (the leader among them) and
//! pauses a front-end (SIGSTOP) past its lease. Every operation and its result is counted, and
//! the history is checked:
//!
//! * no two live services with one name: the change feed never adds a name that is live, and no
//!   `find` lists a name twice;
//! * every acknowledged `persist 1` registration is there at the end unless its removal was
//!   acknowledged;
//! * the registrations of a killed or paused front-end are gone from the others within the lease
//!   TTL + 1 s;
//! * the change feed, followed across reconnections to other front-ends by revision, is in
//!   order, with no duplicate and no gap: applied to an empty catalog it ends as the catalog
//!   ends, and never changes or removes a service it does not hold.
//!
//! Seeded and bounded: `REGISTRY_ROBUSTNESS_SEED` (default 1) and `REGISTRY_ROBUSTNESS_SECS`
//! (default 40, the short form CI runs). The report is printed; the test fails on any violation.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::etcd::{self, Cluster};
use common::{Rng, lock};
use futures_util::StreamExt;
use process::Running;
use registries::client::{ChangeKind, Error};
use registries::{Attributes, Registered, Registry};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The front-ends' lease TTL, in seconds.
const TTL: u64 = 2;
const FRONT_ENDS: usize = 3;
const WORKERS: usize = 6;
/// Longest one client operation may take before its connection is given up.
const OP: Duration = Duration::from_secs(5);
/// Names several workers compete for.
const CONTESTED: usize = 3;

/// What the clients, the watcher and the injector share.
#[derive(Default)]
struct Shared {
    /// Each front-end's 9P address (a restarted one gets a new port).
    addrs: Mutex<Vec<String>>,
    /// Unique, non-persistent names registered and acknowledged, not let go: name → front-end.
    held: Mutex<HashMap<String, usize>>,
    persist_acked: Mutex<BTreeSet<String>>,
    persist_removed: Mutex<BTreeSet<String>>,
    /// Persistent names whose registration or removal got no answer: either way is right.
    persist_unsure: Mutex<BTreeSet<String>>,
    /// Operation → (acknowledged, refused by the registry, failed: connection or timeout).
    ops: Mutex<BTreeMap<&'static str, [u64; 3]>>,
    violations: Mutex<Vec<String>>,
    stop: AtomicBool,
}

impl Shared {
    fn addr(&self, fe: usize) -> String {
        lock(&self.addrs)[fe].clone()
    }

    fn count(&self, op: &'static str, outcome: usize) {
        lock(&self.ops).entry(op).or_default()[outcome] += 1;
    }

    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        lock(&self.violations).push(what);
    }
}

/// How an operation ended: 0 acknowledged, 1 refused by the registry (the connection is good),
/// 2 failed (the connection is given up).
fn outcome<T>(r: &Result<Result<T, Error>, tokio::time::error::Elapsed>) -> usize {
    match r {
        Ok(Ok(_)) => 0,
        Ok(Err(Error::Registry(_))) => 1,
        _ => 2,
    }
}

/// One client, on front-end `w % FRONT_ENDS`, doing seeded operations until told to stop.
async fn worker(w: usize, seed: u64, sh: Arc<Shared>) {
    let fe = w % FRONT_ENDS;
    let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x1234_5678_9abc));
    let mut conn: Option<Registry> = None;
    // Registrations held: name, handle, whether the name is contested.
    let mut held: Vec<(String, Registered, bool)> = Vec::new();
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(10 + rng.below(30))).await;
        let Some(reg) = conn.as_ref() else {
            let r = tokio::time::timeout(OP, Registry::open(&sh.addr(fe))).await;
            sh.count("connect", outcome(&r));
            match r {
                Ok(Ok(reg)) => conn = Some(reg),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            continue;
        };
        n += 1;
        let attrs = Attributes::new([("w", w.to_string()), ("gen", n.to_string())]);
        let roll = rng.below(100);
        let failed = match roll {
            0..30 => {
                let name = format!("tcp!w{w}-{n}!1");
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, false)).await;
                let o = outcome(&r);
                sh.count("register", o);
                if let Ok(Ok(h)) = r {
                    lock(&sh.held).insert(name.clone(), fe);
                    held.push((name, h, false));
                }
                o == 2
            }
            30..40 => {
                let name = format!("tcp!contested-{}!1", rng.below(CONTESTED as u64));
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, false)).await;
                let o = outcome(&r);
                sh.count("register contested", o);
                if let Ok(Ok(h)) = r {
                    held.push((name, h, true));
                }
                o == 2
            }
            40..50 => {
                let name = format!("tcp!p{w}-{n}!1");
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, true)).await;
                let o = outcome(&r);
                sh.count("register persist", o);
                match r {
                    Ok(Ok(_)) => {
                        lock(&sh.persist_acked).insert(name.clone());
                        mine.push(name);
                    }
                    Ok(Err(Error::Registry(_))) => {}
                    _ => {
                        lock(&sh.persist_unsure).insert(name);
                    }
                }
                o == 2
            }
            50..56 if !mine.is_empty() => {
                let name = mine.swap_remove(rng.below(mine.len() as u64) as usize);
                let r = tokio::time::timeout(OP, reg.unregister(&name)).await;
                let o = outcome(&r);
                sh.count("unregister persist", o);
                match o {
                    0 => {
                        lock(&sh.persist_removed).insert(name);
                    }
                    1 => mine.push(name),
                    _ => {
                        lock(&sh.persist_unsure).insert(name);
                    }
                }
                o == 2
            }
            56..72 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let r = tokio::time::timeout(OP, held[i].1.update(&attrs)).await;
                let o = outcome(&r);
                sh.count("update", o);
                if o == 1 {
                    // Taken by another front-end while this one was cut off: let it go.
                    let (name, _, _) = held.swap_remove(i);
                    lock(&sh.held).remove(&name);
                }
                o == 2
            }
            72..84 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let (name, h, _) = held.swap_remove(i);
                lock(&sh.held).remove(&name);
                let r = tokio::time::timeout(OP, h.close()).await;
                let o = outcome(&r);
                sh.count("unregister", o);
                o == 2
            }
            _ => {
                let r = tokio::time::timeout(OP, reg.services()).await;
                let o = outcome(&r);
                sh.count("find", o);
                if let Ok(Ok(found)) = &r {
                    let mut seen = BTreeSet::new();
                    for s in found {
                        if !seen.insert(s.addr.as_str()) {
                            sh.violation(format!("find on front-end {fe} lists {} twice", s.addr));
                        }
                    }
                }
                o == 2
            }
        };
        if failed {
            // The connection is given up, and what it held with it.
            for (name, _, _) in held.drain(..) {
                lock(&sh.held).remove(&name);
            }
            conn = None;
        }
    }
    for (name, _, _) in held.drain(..) {
        lock(&sh.held).remove(&name);
    }
}

/// What the watcher has seen: the catalog as the change feed tells it.
#[derive(Default)]
struct Watched {
    live: BTreeMap<String, Vec<(String, String)>>,
    last: Option<u64>,
    events: u64,
    reconnections: u64,
}

/// Follows the change feed of every service from now on, moving to the next front-end when
/// its connection ends (and every few seconds) and resuming from the revision after the last
/// one seen. `ready` is sent
/// once the first subscription is in place.
async fn watcher(
    sh: Arc<Shared>,
    seen: Arc<Mutex<Watched>>,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    let mut fe = 0;
    let none: &[(&str, &str)] = &[];
    loop {
        let from = lock(&seen).last.map(|r| r + 1);
        let opened = tokio::time::timeout(OP, async {
            let reg = Registry::open(&sh.addr(fe)).await?;
            let changes = reg.changes(none, from).await?;
            Ok::<_, Error>((reg, changes))
        })
        .await;
        let (_reg, mut changes) = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(e @ Error::Compacted { .. })) => {
                sh.violation(format!("the feed cannot resume from {from:?}: {e}"));
                return;
            }
            _ => {
                fe = (fe + 1) % FRONT_ENDS;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Some(r) = ready.take() {
            let _ = r.send(());
        }
        // Besides the faults, the watcher moves to the next front-end every few seconds, so that
        // resuming by revision elsewhere is exercised whatever the injector picks.
        let hop = tokio::time::sleep(Duration::from_secs(6));
        tokio::pin!(hop);
        loop {
            let item = tokio::select! {
                item = changes.next() => item,
                () = &mut hop => None,
            };
            let Some(item) = item else { break };
            let ev = match item {
                Ok(ev) => ev,
                Err(e @ Error::Compacted { .. }) => {
                    sh.violation(format!("the feed was compacted under its reader: {e}"));
                    return;
                }
                Err(_) => break,
            };
            let mut w = lock(&seen);
            let rev = ev.revision;
            if w.last.is_some_and(|last| rev <= last) {
                sh.violation(format!(
                    "feed revision {rev} after {:?}: out of order or repeated",
                    w.last
                ));
            }
            w.last = Some(rev);
            w.events += 1;
            let name = ev.service.addr.clone();
            let attrs: Vec<(String, String)> = ev
                .service
                .attrs
                .iter()
                .map(|(a, v)| (a.to_string(), v.to_string()))
                .collect();
            let was_live = w.live.contains_key(&name);
            match ev.kind {
                ChangeKind::Added if was_live => {
                    sh.violation(format!("revision {rev}: {name} added while live"))
                }
                ChangeKind::Changed | ChangeKind::Removed if !was_live => sh.violation(format!(
                    "revision {rev}: {name} {:?} but not live: a change was missed",
                    ev.kind
                )),
                _ => {}
            }
            match ev.kind {
                ChangeKind::Removed => {
                    w.live.remove(&name);
                }
                _ => {
                    w.live.insert(name, attrs);
                }
            }
        }
        lock(&seen).reconnections += 1;
        fe = (fe + 1) % FRONT_ENDS;
    }
}

/// A front-end on a free port: it and its 9P address.
async fn front_end(cluster: &Cluster, prefix: &str) -> (Running, String) {
    process::etcd_front_end(&cluster.endpoints(), prefix, TTL).await
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

/// The names of every service at `addr`, or `None` if it does not answer.
async fn names_at(addr: &str) -> Option<BTreeSet<String>> {
    let reg = tokio::time::timeout(OP, Registry::open(addr))
        .await
        .ok()?
        .ok()?;
    let found = tokio::time::timeout(OP, reg.services()).await.ok()?.ok()?;
    Some(found.into_iter().map(|s| s.addr).collect())
}

/// Waits until none of `names` is listed at `addr`; how long that took from `since`, or `None`
/// if it did not happen within 30 s.
async fn gone_after(addr: &str, names: &BTreeSet<String>, since: Instant) -> Option<Duration> {
    let reg = Registry::open(addr).await.ok()?;
    while since.elapsed() < Duration::from_secs(30) {
        if let Ok(Ok(found)) = tokio::time::timeout(OP, reg.services()).await
            && !found.iter().any(|s| names.contains(&s.addr))
        {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robustness_run() {
    if !etcd::available() {
        eprintln!("robustness_run: etcd is not installed; skipped");
        return;
    }
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let seed = env("REGISTRY_ROBUSTNESS_SEED", 1);
    let secs = env("REGISTRY_ROBUSTNESS_SECS", 40);
    let mut rng = Rng(seed);
    let mut cluster = Cluster::start(3);
    let prefix = etcd::fresh_prefix();
    let mut fes: Vec<Running> = Vec::new();
    let sh = Arc::new(Shared::default());
    for _ in 0..FRONT_ENDS {
        let (running, addr) = front_end(&cluster, &prefix).await;
        fes.push(running);
        lock(&sh.addrs).push(addr);
    }

    let seen = Arc::new(Mutex::new(Watched::default()));
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let watch_task = tokio::spawn(watcher(sh.clone(), seen.clone(), ready_tx));
    common::within(ready).await.unwrap();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(w, seed, sh.clone())))
        .collect();

    // The faults, one at a time, each followed by recovery.
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut slowest_gone = Duration::ZERO;
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(1500 + rng.below(1500))).await;
        match rng.below(4) {
            0 | 1 => {
                let paused = rng.below(2) == 1;
                let j = rng.below(FRONT_ENDS as u64) as usize;
                let other = sh.addr((j + 1) % FRONT_ENDS);
                let names: BTreeSet<String> = lock(&sh.held)
                    .iter()
                    .filter(|(_, fe)| **fe == j)
                    .map(|(n, _)| n.clone())
                    .collect();
                let since = Instant::now();
                let what = if paused {
                    signal(fes[j].pid(), libc::SIGSTOP);
                    "front-end paused past its lease"
                } else {
                    fes[j].kill9().await;
                    "front-end killed"
                };
                *faults.entry(what).or_default() += 1;
                match gone_after(&other, &names, since).await {
                    Some(took) => {
                        slowest_gone = slowest_gone.max(took);
                        if took > Duration::from_secs(TTL + 1) {
                            sh.violation(format!(
                                "{what}: its {} registrations gone after {took:?}, more than the TTL + 1 s",
                                names.len()
                            ));
                        }
                    }
                    None => sh.violation(format!(
                        "{what}: its {} registrations still listed after 30 s",
                        names.len()
                    )),
                }
                if paused {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    signal(fes[j].pid(), libc::SIGCONT);
                } else {
                    let (running, addr) = front_end(&cluster, &prefix).await;
                    fes[j] = running;
                    lock(&sh.addrs)[j] = addr;
                }
            }
            2 => {
                let m = rng.below(3) as usize;
                *faults
                    .entry("etcd member killed and restarted")
                    .or_default() += 1;
                tokio::task::block_in_place(|| cluster.kill(m));
                tokio::time::sleep(Duration::from_millis(1500)).await;
                tokio::task::block_in_place(|| {
                    cluster.restart(m);
                    cluster.wait_healthy();
                });
            }
            _ => {
                *faults
                    .entry("etcd leader killed and restarted")
                    .or_default() += 1;
                let m = tokio::task::block_in_place(|| cluster.leader());
                tokio::task::block_in_place(|| cluster.kill(m));
                tokio::time::sleep(Duration::from_millis(1500)).await;
                tokio::task::block_in_place(|| {
                    cluster.restart(m);
                    cluster.wait_healthy();
                });
            }
        }
    }

    // Quiet: the clients let go of everything they hold; what persists stays.
    sh.stop.store(true, Ordering::Relaxed);
    for w in workers {
        common::within_for(Duration::from_secs(60), w)
            .await
            .unwrap();
    }
    let quiet = Instant::now();
    let deadline = quiet + Duration::from_secs(30);
    let final_names = loop {
        let at: Vec<Option<BTreeSet<String>>> = {
            let mut v = Vec::new();
            for fe in 0..FRONT_ENDS {
                v.push(names_at(&sh.addr(fe)).await);
            }
            v
        };
        let watched: BTreeSet<String> = lock(&seen).live.keys().cloned().collect();
        let agree = at.iter().all(|a| a.as_ref() == Some(&watched));
        // A closed connection's registrations go one etcd deletion after another: right after
        // the clients stop, every front-end may still agree on services about to go.
        let settled = watched.iter().all(|n| n.starts_with("tcp!p"));
        if (agree && settled) || Instant::now() > deadline {
            if !agree {
                sh.violation(format!(
                    "at the end the front-ends list {at:?} and the feed says {watched:?}"
                ));
            }
            break watched;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let settled_after = quiet.elapsed();
    watch_task.abort();
    let acked = lock(&sh.persist_acked).clone();
    let removed = lock(&sh.persist_removed).clone();
    let unsure = lock(&sh.persist_unsure).clone();
    for name in acked.difference(&removed) {
        if !unsure.contains(name) && !final_names.contains(name) {
            sh.violation(format!("acknowledged persistent {name} is gone"));
        }
    }
    for name in &removed {
        if !unsure.contains(name) && final_names.contains(name) {
            sh.violation(format!(
                "{name}, whose removal was acknowledged, is still there"
            ));
        }
    }
    for name in &final_names {
        if !name.starts_with("tcp!p") {
            sh.violation(format!("{name} outlived the client that held it"));
        }
    }

    let ops = lock(&sh.ops).clone();
    let total: u64 = ops.values().flatten().sum();
    eprintln!(
        "robustness run: seed {seed}, {secs} s, {FRONT_ENDS} front-ends, 3 etcd members, TTL {TTL} s"
    );
    eprintln!(
        "{:<22} {:>8} {:>8} {:>8}",
        "operation", "acked", "refused", "failed"
    );
    for (op, [a, r, f]) in &ops {
        eprintln!("{op:<22} {a:>8} {r:>8} {f:>8}");
    }
    eprintln!("{total} operations");
    for (f, n) in &faults {
        eprintln!("fault: {f} x{n}");
    }
    {
        let w = lock(&seen);
        eprintln!(
            "feed: {} changes followed across {} reconnections; slowest registrations gone: {slowest_gone:?}",
            w.events, w.reconnections
        );
    }
    eprintln!(
        "the clients' registrations gone and every front-end in agreement {:?} after they stopped",
        settled_after
    );
    eprintln!(
        "persistent: {} acknowledged, {} removed, {} unanswered; {} at the end",
        acked.len(),
        removed.len(),
        unsure.len(),
        final_names.len()
    );
    let violations = lock(&sh.violations).clone();
    eprintln!("violations: {}", violations.len());
    if !violations.is_empty() {
        // What the front-ends said about their leases and etcd: the trail a violation leaves.
        for (j, fe) in fes.iter().enumerate() {
            for line in fe
                .said()
                .lines()
                .filter(|l| !l.contains("registry: registered"))
            {
                eprintln!("front-end {j}: {line}");
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(faults.values().sum::<u64>() > 0, "no fault was injected");
}
