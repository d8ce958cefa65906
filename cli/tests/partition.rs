//! The robustness run's partition form: two `registry serve --etcd` front-ends over a real
//! three-member etcd, each process in a network namespace of its own (tests/common/netns.rs),
//! and clients in a namespace of theirs, while the network is cut silently (no reset, no FIN)
//! and healed: a front-end from everything, a front-end from etcd only (its clients still reach
//! it), the etcd leader, two of three members. Every operation and its answer is recorded and
//! the contract of spec/etcd.md ("What an answer means") is checked on the whole history:
//!
//! * a registration (of a unique name, or of one the clients compete for) or an update refused by
//!   the registry is never seen, by any `find` on either front-end or by the change feed, not
//!   even for a moment: each write carries a unique `gen` value;
//! * every acknowledged `persist 1` registration is there at the end unless its removal was
//!   acknowledged, and no acknowledged removal is undone;
//! * no `find` lists a name twice;
//! * `registry register -m A -m B` is registered through B within TTL + heartbeat + 2 s of A's
//!   cut, and a `Manager` with both moves to B within TTL + heartbeat + 2 s of A's cut from etcd.
//!
//! Seeded and bounded: `REGISTRY_PARTITION_SEED` (default 1) orders the faults and the clients'
//! choices; each fault holds for three lease TTLs. The report is printed; any violation fails.

#[path = "../../tests/common/mod.rs"]
mod common;

use common::netns::{self, Host, Net, NetEtcd, Side};
use common::{Rng, lock};
use futures_util::StreamExt;
use registries::client::{ChangeKind, Error};
use registries::manager::{Config, Connector, Manager};
use registries::{Attributes, Registered, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The front-ends' lease TTL, in seconds.
const TTL: u64 = 2;
/// The clients' heartbeat bound.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// How long each fault holds: past the TTL, so that every kind of expiry happens.
const HOLD: Duration = Duration::from_secs(3 * TTL);
/// Clients doing operations, spread over the two front-ends.
const WORKERS: usize = 4;
/// Names the workers compete for.
const CONTESTED: u64 = 3;
/// Longest one client operation may take before the client gives it up (no answer).
const OP: Duration = Duration::from_secs(8);
/// The 9P port of a front-end, on its client-network address.
const PORT: u16 = 6675;

/// Everything the clients were told and everything the readers saw.
#[derive(Default)]
struct History {
    /// Registrations the registry refused: these names must never be seen.
    refused_names: BTreeSet<String>,
    /// Values of `gen` in registrations and updates the registry refused: never to be seen.
    refused_gens: BTreeSet<String>,
    /// Every name and `gen` value seen by a find or the feed.
    seen_names: BTreeSet<String>,
    seen_gens: BTreeSet<String>,
    persist_acked: BTreeSet<String>,
    persist_removed: BTreeSet<String>,
    /// Persistent names whose registration or removal got no answer: either way is right.
    persist_unsure: BTreeSet<String>,
    /// Operation → (acknowledged, refused, no answer).
    ops: BTreeMap<&'static str, [u64; 3]>,
    violations: Vec<String>,
}

/// What the clients, readers and the fault injector share.
struct Shared {
    addrs: [String; 2],
    history: Mutex<History>,
    stop: AtomicBool,
}

impl Shared {
    fn count(&self, op: &'static str, outcome: usize) {
        lock(&self.history).ops.entry(op).or_default()[outcome] += 1;
    }

    fn violation(&self, what: String) {
        eprintln!("VIOLATION: {what}");
        lock(&self.history).violations.push(what);
    }

    /// Records what a reader saw of a service.
    fn saw(&self, name: &str, attrs: &Attributes) {
        let mut h = lock(&self.history);
        h.seen_names.insert(name.to_string());
        if let Some(gen_) = attrs.get("gen") {
            h.seen_gens.insert(gen_.to_string());
        }
    }
}

/// 0 acknowledged, 1 refused by the registry, 2 no answer (timed out or connection lost).
fn outcome<T>(r: &Result<Result<T, Error>, tokio::time::error::Elapsed>) -> usize {
    match r {
        Ok(Ok(_)) => 0,
        Ok(Err(Error::Registry(_))) => 1,
        _ => 2,
    }
}

/// One client on front-end `w % 2`: registers (some persistent), updates, unregisters and
/// finds, with unique names and `gen` values, until told to stop.
async fn worker(w: usize, seed: u64, sh: Arc<Shared>) {
    let fe = w % 2;
    let mut rng = Rng(seed ^ (w as u64 + 1).wrapping_mul(0x1234_5678_9abc));
    let mut conn: Option<Registry> = None;
    let mut held: Vec<(String, Registered)> = Vec::new();
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0u64;
    while !sh.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20 + rng.below(40))).await;
        let Some(reg) = conn.as_ref() else {
            match tokio::time::timeout(OP, Registry::open(&sh.addrs[fe])).await {
                Ok(Ok(reg)) => {
                    reg.set_heartbeat(HEARTBEAT);
                    conn = Some(reg);
                }
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
            continue;
        };
        n += 1;
        let gen_ = format!("w{w}g{n}");
        let attrs = Attributes::new([("w", w.to_string()), ("gen", gen_.clone())]);
        let lost = match rng.below(100) {
            0..10 => {
                // A name the workers compete for: refused as a duplicate while another holds
                // it, and then its `gen` must never be seen either.
                let name = format!("tcp!contested-{}!1", rng.below(CONTESTED));
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, false)).await;
                let o = outcome(&r);
                sh.count("register contested", o);
                match r {
                    Ok(Ok(h)) => held.push((name, h)),
                    Ok(Err(Error::Registry(_))) => {
                        lock(&sh.history).refused_gens.insert(gen_);
                    }
                    _ => {}
                }
                o == 2
            }
            10..35 => {
                let name = format!("tcp!w{w}-{n}!1");
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, false)).await;
                let o = outcome(&r);
                sh.count("register", o);
                match r {
                    Ok(Ok(h)) => held.push((name, h)),
                    Ok(Err(Error::Registry(_))) => {
                        let mut h = lock(&sh.history);
                        h.refused_names.insert(name);
                        h.refused_gens.insert(gen_);
                    }
                    _ => {}
                }
                o == 2
            }
            35..50 => {
                let name = format!("tcp!p{w}-{n}!1");
                let r = tokio::time::timeout(OP, reg.register(&name, &attrs, true)).await;
                let o = outcome(&r);
                sh.count("register persist", o);
                let mut h = lock(&sh.history);
                match o {
                    0 => {
                        h.persist_acked.insert(name.clone());
                        mine.push(name);
                    }
                    1 => {
                        h.refused_names.insert(name);
                        h.refused_gens.insert(gen_);
                    }
                    _ => {
                        h.persist_unsure.insert(name);
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
                        lock(&sh.history).persist_removed.insert(name);
                    }
                    1 => mine.push(name),
                    _ => {
                        lock(&sh.history).persist_unsure.insert(name);
                    }
                }
                o == 2
            }
            56..75 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let r = tokio::time::timeout(OP, held[i].1.update(&attrs)).await;
                let o = outcome(&r);
                sh.count("update", o);
                if o == 1 {
                    lock(&sh.history).refused_gens.insert(gen_);
                }
                o == 2
            }
            75..85 if !held.is_empty() => {
                let i = rng.below(held.len() as u64) as usize;
                let (_, h) = held.swap_remove(i);
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
                    let mut names = BTreeSet::new();
                    for s in found {
                        sh.saw(&s.addr, &s.attrs);
                        if !names.insert(s.addr.as_str()) {
                            sh.violation(format!("find on front-end {fe} lists {} twice", s.addr));
                        }
                    }
                }
                o == 2
            }
        };
        if lost {
            held.clear();
            conn = None;
        }
    }
}

/// Follows the change feed of every service, from front-end `fe` first and the other when a
/// connection ends, resuming from the revision after the last one seen; records every service
/// each change shows.
async fn watcher(mut fe: usize, sh: Arc<Shared>) {
    let none: &[(&str, &str)] = &[];
    let mut last: Option<u64> = None;
    while !sh.stop.load(Ordering::Relaxed) {
        let opened = tokio::time::timeout(OP, async {
            let reg = Registry::open(&sh.addrs[fe]).await?;
            reg.set_heartbeat(HEARTBEAT);
            let changes = reg.changes(none, last.map(|r| r + 1)).await?;
            Ok::<_, Error>((reg, changes))
        })
        .await;
        let (_reg, mut changes) = match opened {
            Ok(Ok(c)) => c,
            Ok(Err(Error::Compacted { .. })) => {
                // A front-end that reloaded its catalog keeps no history from before: go on
                // from now (what was missed was also seen, or not, by the finds).
                last = None;
                continue;
            }
            _ => {
                fe = 1 - fe;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        loop {
            if sh.stop.load(Ordering::Relaxed) {
                return;
            }
            let ev = match tokio::time::timeout(Duration::from_millis(500), changes.next()).await {
                // No change for a while: look whether to stop.
                Err(_) => continue,
                Ok(None) | Ok(Some(Err(_))) => break,
                Ok(Some(Ok(ev))) => ev,
            };
            last = Some(ev.revision);
            if ev.kind != ChangeKind::Removed {
                sh.saw(&ev.service.addr, &ev.service.attrs);
            }
        }
        if sh.stop.load(Ordering::Relaxed) {
            return;
        }
        fe = 1 - fe;
    }
}

/// A front-end: `registry serve --etcd` in its own namespace, its standard error kept.
struct FrontEnd {
    host: Host,
    addr: String,
    said: Arc<Mutex<Vec<String>>>,
}

impl FrontEnd {
    fn start(net: &mut Net, name: &str, etcd: &NetEtcd) -> FrontEnd {
        let host = net.host(name, true, true);
        let ip = host.client_ip.expect("on the client network");
        let listen = format!("tcp!{ip}!{PORT}");
        let mut cmd = net.command(&host, env!("CARGO_BIN_EXE_registry"));
        cmd.args([
            "serve",
            "--etcd",
            &etcd.endpoints(),
            "--etcd-prefix",
            "/part/",
        ])
        .args([
            "--lease-ttl",
            &TTL.to_string(),
            "--no-shim",
            "--listen",
            &listen,
        ])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
        let child = net.spawn(cmd);
        let stderr = child.stderr.take().expect("piped");
        let said = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let sink = said.clone();
        std::thread::spawn(move || {
            let mut ready_tx = Some(ready_tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening on")
                    && let Some(tx) = ready_tx.take()
                {
                    let _ = tx.send(());
                }
                lock(&sink).push(line);
            }
        });
        ready
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("front-end {name} did not start: {:?}", lock(&said)));
        FrontEnd {
            host,
            addr: listen,
            said,
        }
    }

    fn said(&self) -> String {
        lock(&self.said).join("\n")
    }
}

/// The names listed at `addr`, or `None` if it does not answer within [`OP`].
async fn names_at(addr: &str) -> Option<BTreeSet<String>> {
    let r = tokio::time::timeout(OP, async {
        let reg = Registry::open(addr).await?;
        reg.services().await
    })
    .await;
    match r {
        Ok(Ok(found)) => Some(found.into_iter().map(|s| s.addr).collect()),
        _ => None,
    }
}

/// Waits (at most `limit`) until `cond` holds; how long that took.
async fn until(limit: Duration, mut cond: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// A fault: what is cut, on which side, for the report.
#[derive(Clone, Copy, Debug)]
enum Fault {
    FrontEndAll,
    FrontEndFromEtcd,
    Leader,
    TwoMembers,
}

#[test]
fn partition_run() {
    if !netns::available() {
        return;
    }
    let seed = std::env::var("REGISTRY_PARTITION_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut net = Net::new();
    let etcd = NetEtcd::start(&mut net, 3);
    let fes = [
        FrontEnd::start(&mut net, "fa", &etcd),
        FrontEnd::start(&mut net, "fb", &etcd),
    ];
    let client = net.host("client", false, true);
    // This thread, and the runtime's threads made from it, live on the client network.
    net.enter(&client).expect("setns into the client namespace");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(run(&net, &etcd, &fes, &client, seed));
    drop(rt);
    if !report.is_empty() {
        for (j, fe) in fes.iter().enumerate() {
            for line in fe.said().lines().filter(|l| !l.contains("connected")) {
                eprintln!("front-end {j}: {line}");
            }
        }
        panic!("{report:#?}");
    }
}

/// The whole run: the history under faults, then the two moves; the violations.
async fn run(
    net: &Net,
    etcd: &NetEtcd,
    fes: &[FrontEnd; 2],
    client: &Host,
    seed: u64,
) -> Vec<String> {
    let mut rng = Rng(seed);
    let sh = Arc::new(Shared {
        addrs: [fes[0].addr.clone(), fes[1].addr.clone()],
        history: Mutex::new(History::default()),
        stop: AtomicBool::new(false),
    });
    let watchers: Vec<_> = (0..2)
        .map(|fe| tokio::spawn(watcher(fe, sh.clone())))
        .collect();
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(w, seed, sh.clone())))
        .collect();

    let mut faults = vec![
        Fault::FrontEndAll,
        Fault::FrontEndFromEtcd,
        Fault::Leader,
        Fault::TwoMembers,
    ];
    // Seeded order.
    for i in (1..faults.len()).rev() {
        faults.swap(i, rng.below(i as u64 + 1) as usize);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for fault in &faults {
        let fe = &fes[rng.below(2) as usize];
        let cut: Vec<(&Host, Side)> = match fault {
            Fault::FrontEndAll => vec![(&fe.host, Side::All)],
            Fault::FrontEndFromEtcd => vec![(&fe.host, Side::Etcd)],
            Fault::Leader => {
                let l = tokio::task::block_in_place(|| etcd.leader(net));
                vec![(&etcd.members[l], Side::All)]
            }
            Fault::TwoMembers => {
                let keep = rng.below(3) as usize;
                (0..3)
                    .filter(|&i| i != keep)
                    .map(|i| (&etcd.members[i], Side::All))
                    .collect()
            }
        };
        eprintln!(
            "partition: {fault:?}: cutting {:?}",
            cut.iter().map(|(h, s)| (&h.name, s)).collect::<Vec<_>>()
        );
        tokio::task::block_in_place(|| {
            for (h, s) in &cut {
                net.cut(h, *s);
            }
        });
        tokio::time::sleep(HOLD).await;
        tokio::task::block_in_place(|| {
            for (h, s) in &cut {
                net.heal(h, *s);
            }
        });
        // Let the late requests land (TCP retransmits them after the heal) and the front-ends
        // recover, with the clients still working.
        tokio::time::sleep(HOLD).await;
    }
    sh.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(60), w).await;
    }
    for w in watchers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }

    // The end: every front-end lists the same, what was acknowledged is there.
    let settled = until(Duration::from_secs(30), async || {
        let (a, b) = (names_at(&fes[0].addr).await, names_at(&fes[1].addr).await);
        a.is_some()
            && a == b
            && a.as_ref()
                .is_some_and(|n| n.iter().all(|n| n.starts_with("tcp!p")))
    })
    .await;
    let final_names = names_at(&fes[0].addr).await.unwrap_or_default();
    if settled.is_none() {
        sh.violation(format!(
            "the front-ends never agreed: {final_names:?} and {:?}",
            names_at(&fes[1].addr).await
        ));
    }
    {
        let h = lock(&sh.history);
        let mut v = Vec::new();
        for name in h.refused_names.intersection(&h.seen_names) {
            v.push(format!("refused registration {name} was seen"));
        }
        for name in h.refused_names.intersection(&final_names) {
            v.push(format!("refused registration {name} is there at the end"));
        }
        for g in h.refused_gens.intersection(&h.seen_gens) {
            v.push(format!("the refused write of gen={g} was seen"));
        }
        // The checks above must have had something to check.
        if h.refused_gens.is_empty() || h.seen_gens.is_empty() {
            v.push(format!(
                "nothing to check: {} refused writes, {} values seen",
                h.refused_gens.len(),
                h.seen_gens.len()
            ));
        }
        for name in h.persist_acked.difference(&h.persist_removed) {
            if !h.persist_unsure.contains(name) && !final_names.contains(name) {
                v.push(format!("acknowledged persistent {name} is gone"));
            }
        }
        for name in &h.persist_removed {
            if !h.persist_unsure.contains(name) && final_names.contains(name) {
                v.push(format!("{name}, whose removal was acknowledged, is back"));
            }
        }
        drop(h);
        for x in v {
            sh.violation(x);
        }
    }

    // `registry register -m A -m B`: A cut off from everything; registered through B within
    // TTL + heartbeat + 2 s.
    let bound = Duration::from_secs(TTL) + HEARTBEAT + Duration::from_secs(2);
    let moved = register_moves(net, fes, client).await;
    match moved {
        Some(t) if t <= bound => {}
        Some(t) => sh.violation(format!(
            "registry register moved to B after {t:?}, more than {bound:?}"
        )),
        None => sh.violation("registry register never moved to B".into()),
    }
    // A Manager with both: A cut off from etcd only (its clients still reach it).
    let managed = manager_moves(net, fes).await;
    match managed {
        Some(t) if t <= bound => {}
        Some(t) => sh.violation(format!(
            "the manager moved to B after {t:?}, more than {bound:?}"
        )),
        None => sh.violation("the manager never moved to B".into()),
    }

    let h = lock(&sh.history);
    let total: u64 = h.ops.values().flatten().sum();
    eprintln!(
        "partition run: seed {seed}, 2 front-ends, 3 etcd members, TTL {TTL} s, heartbeat {HEARTBEAT:?}"
    );
    eprintln!(
        "{:<20} {:>8} {:>8} {:>9}",
        "operation", "acked", "refused", "no answer"
    );
    for (op, [a, r, f]) in &h.ops {
        eprintln!("{op:<20} {a:>8} {r:>8} {f:>9}");
    }
    eprintln!("{total} operations; faults in order: {faults:?}, each held {HOLD:?}");
    eprintln!(
        "refused: {} writes ({} of unique names); seen: {} names, {} gen values",
        h.refused_gens.len(),
        h.refused_names.len(),
        h.seen_names.len(),
        h.seen_gens.len()
    );
    eprintln!(
        "persistent: {} acknowledged, {} removed, {} unanswered; {} at the end",
        h.persist_acked.len(),
        h.persist_removed.len(),
        h.persist_unsure.len(),
        final_names.len()
    );
    eprintln!(
        "register -m A -m B moved to B {moved:?} after A's cut; manager {managed:?} after A's cut from etcd (bound {bound:?})"
    );
    eprintln!("violations: {}", h.violations.len());
    h.violations.clone()
}

/// Starts `registry register -m A -m B`, cuts A from everything, and returns how long after the
/// cut the command said it was registered again (through B, the only one left), once B lists it.
async fn register_moves(net: &Net, fes: &[FrontEnd; 2], client: &Host) -> Option<Duration> {
    let name = "tcp!mover!1";
    let mut cmd =
        tokio::process::Command::from(net.command(client, env!("CARGO_BIN_EXE_registry")));
    cmd.args(["register", "-m", &fes[0].addr, "-m", &fes[1].addr])
        .args([
            "--heartbeat",
            &HEARTBEAT.as_secs().to_string(),
            name,
            "k",
            "v",
        ])
        .env_remove("registry")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("registry register starts");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stderr.take().expect("piped"),
    ));
    let first = tokio::time::timeout(OP, lines.next_line())
        .await
        .ok()?
        .ok()??;
    assert!(first.contains("registered"), "{first}");
    until(OP, async || {
        names_at(&fes[1].addr)
            .await
            .is_some_and(|n| n.contains(name))
    })
    .await?;
    tokio::task::block_in_place(|| net.cut(&fes[0].host, Side::All));
    let cut = Instant::now();
    let again = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("registry register: {line}");
            if line.contains("registered") && line.contains("again") {
                return true;
            }
        }
        false
    })
    .await;
    let took = cut.elapsed();
    let listed = until(OP, async || {
        names_at(&fes[1].addr)
            .await
            .is_some_and(|n| n.contains(name))
    })
    .await;
    tokio::task::block_in_place(|| net.heal(&fes[0].host, Side::All));
    let _ = child.kill().await;
    (again == Ok(true) && listed.is_some()).then_some(took)
}

/// A Manager registered through A (with B as the second registry), A cut off from etcd only:
/// how long after the cut the manager was registered again on a new connection (through B).
async fn manager_moves(net: &Net, fes: &[FrontEnd; 2]) -> Option<Duration> {
    let name = "tcp!managed!1";
    let connector = Connector::failover([
        Connector::styx(fes[0].addr.clone()),
        Connector::styx(fes[1].addr.clone()),
    ]);
    let config = Config {
        heartbeat: HEARTBEAT,
        ..Config::default()
    };
    let mgr = Manager::with_config(connector, config);
    let svc = mgr.register(name, Attributes::new([("k", "v")]));
    tokio::time::timeout(OP, svc.wait_registered())
        .await
        .ok()?
        .ok()?;
    until(OP, async || {
        names_at(&fes[1].addr)
            .await
            .is_some_and(|n| n.contains(name))
    })
    .await?;
    let before = mgr.status().connections;
    tokio::task::block_in_place(|| net.cut(&fes[0].host, Side::Etcd));
    let cut = Instant::now();
    let moved = until(Duration::from_secs(60), async || {
        mgr.status().connections > before
            && svc.is_registered()
            && names_at(&fes[1].addr)
                .await
                .is_some_and(|n| n.contains(name))
    })
    .await;
    let took = cut.elapsed();
    tokio::task::block_in_place(|| net.heal(&fes[0].host, Side::Etcd));
    mgr.shutdown().await;
    moved.map(|_| took)
}
