//! The change feed (ours only: etcd's watch is the peer, spec/feed.md the protocol): how soon
//! the one watcher a change concerns has it, among many watchers of other queries, and how many
//! changes a `Monitor` keeps up with over a large catalogue.

use super::ours::Ours;
use super::scenarios::Catalogue;
use super::stats::{Samples, Summary};
use super::sys::CpuSpan;
use super::system::{BenchResult, GROUP, Svc, System};
use futures_util::StreamExt;
use registries::client::{Attributes, Monitor, Registry};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest wait for one change to arrive before the scenario is declared failed.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Watchers opened on one connection: each holds a read, and a connection serves 256 requests
/// at once.
const WATCHERS_PER_CONN: usize = 200;

/// What the filtered-wake scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct WakeFigures {
    /// One sample per change: from the start of the registration until its one watcher had it.
    pub summary: Summary,
    /// Server CPU per change (µs), when readable.
    pub server_cpu_us: Option<f64>,
}

/// `watchers` watchers of distinct groups (`group gJ`) over the catalogue; each round registers
/// one service in one group and times until that group's watcher has it (then removes it).
pub async fn filtered_wake(
    ours: &Arc<Ours>,
    watchers: usize,
    rounds: usize,
) -> BenchResult<WakeFigures> {
    let (tx, mut woken) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = JoinSet::new();
    let mut conns = Vec::new();
    let mut first = 0;
    while first < watchers {
        let last = (first + WATCHERS_PER_CONN).min(watchers);
        let conn = ours.connect().await?;
        for j in first..last {
            let group = format!("g{j}");
            let mut changes = conn.changes(&[("group", group.as_str())], None).await?;
            let tx = tx.clone();
            tasks.spawn(async move {
                while let Some(Ok(_)) = changes.next().await {
                    if tx.send((j, Instant::now())).is_err() {
                        break;
                    }
                }
            });
        }
        conns.push(conn);
        first = last;
    }
    let writer = ours.connect().await?;
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    let mut cpu = CpuSpan::start(None);
    for round in 0..=rounds {
        if round == 1 {
            cpu = CpuSpan::start(ours.pid());
        }
        let j = (round * 7919) % watchers;
        let group = format!("g{j}");
        let name = format!("tcp!wake{round}!7000");
        let attrs = Attributes::new([("proto", "styx"), ("auth", "none"), ("group", &group)]);
        let t = Instant::now();
        let held = writer.register(&name, &attrs, false).await?;
        let at = arrival(&mut woken, j).await?;
        if round > 0 {
            lat.push(at.saturating_duration_since(t));
        }
        held.close().await?;
        arrival(&mut woken, j).await?;
    }
    let server_cpu_us = cpu.per_op(rounds * 2);
    tasks.abort_all();
    drop(conns);
    Ok(WakeFigures {
        summary: Samples {
            lat,
            wall: start.elapsed(),
        }
        .summary(),
        server_cpu_us,
    })
}

/// Waits for watcher `j`; any other watcher woken is an error (the registry filters).
async fn arrival(
    woken: &mut mpsc::UnboundedReceiver<(usize, Instant)>,
    j: usize,
) -> BenchResult<Instant> {
    match tokio::time::timeout(OP_TIMEOUT, woken.recv()).await {
        Ok(Some((got, at))) if got == j => Ok(at),
        Ok(Some((got, _))) => Err(format!("watcher {got} woken by a change for {j}").into()),
        Ok(None) => Err("watchers failed".into()),
        Err(_) => Err(format!("watcher {j} never woke").into()),
    }
}

/// What the monitor-rate scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct MonitorFigures {
    /// Changes the monitor reported per second while writers changed the registry.
    pub per_sec: f64,
    /// Changes the writers made.
    pub made: usize,
    /// Changes the monitor reported (every one: none is coalesced with the feed).
    pub seen: usize,
}

/// A `Monitor` of every service (`proto styx`) over the catalogue while `writers` clients
/// register and unregister as fast as they can for `time`; counts what the monitor reports,
/// until it has caught up with everything written.
pub async fn monitor_rate(
    ours: &Arc<Ours>,
    writers: usize,
    time: Duration,
) -> BenchResult<MonitorFigures> {
    let reg = ours.connect().await?;
    let mut monitor = Monitor::new(&reg, &[("proto", "styx")]).await?;
    let initial = monitor.services().len();
    let seen = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = {
        let seen = seen.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            // The initial services come first, as additions.
            while let Some(Ok(_)) = monitor.next().await {
                n += 1;
                if n > initial {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut writing = JoinSet::new();
    for c in 0..writers {
        let conn: Registry = ours.connect().await?;
        let (made, stop) = (made.clone(), stop.clone());
        writing.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let svc = Svc::cycle(2_000_000 + c, i);
                let attrs = Attributes::new(svc.attrs());
                let held = conn.register(&svc.name, &attrs, false).await?;
                held.close().await?;
                made.fetch_add(2, Ordering::Relaxed);
                i += 1;
            }
            Ok::<_, registries::client::Error>(())
        });
    }
    let start = Instant::now();
    tokio::time::sleep(time).await;
    stop.store(true, Ordering::Relaxed);
    while let Some(r) = writing.join_next().await {
        r??;
    }
    let made = made.load(Ordering::Relaxed);
    let deadline = Instant::now() + OP_TIMEOUT;
    while seen.load(Ordering::Relaxed) < made && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    counting.abort();
    let seen = seen.load(Ordering::Relaxed);
    Ok(MonitorFigures {
        per_sec: seen as f64 / elapsed.as_secs_f64(),
        made,
        seen,
    })
}

/// Grows the catalogue to `n` services for the feed scenarios (in groups of [`GROUP`]).
pub async fn catalogue(ours: &Arc<Ours>, n: usize) -> BenchResult<Catalogue<Ours>> {
    let mut c = Catalogue::new();
    c.grow_to(ours, n).await?;
    debug_assert!(n / GROUP > 0 || n == 0);
    Ok(c)
}
