//! The change feed against etcd's watch (spec/feed.md is ours): how soon the one watcher a
//! change concerns has it, among many watchers of other groups, and how many changes a follower
//! of the whole catalogue keeps up with (ours: a `Monitor`; etcd: a watch of the prefix).

use super::stats::{Samples, Summary};
use super::sys::CpuSpan;
use super::system::{BenchResult, Svc, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Longest wait for one change to arrive before the scenario is declared failed.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Watchers opened on one connection: each holds a read, and one of our connections serves 256
/// requests at once.
const WATCHERS_PER_CONN: usize = 200;

/// What the filtered-wake scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct WakeFigures {
    /// One sample per change: from the start of the registration until its one watcher had it.
    pub summary: Summary,
    /// Server CPU per change (µs), when readable.
    pub server_cpu_us: Option<f64>,
}

/// `watchers` watchers of distinct groups over the catalogue; each round registers one service
/// in one group and times until that group's watcher has it (then removes it, and waits for
/// that too). A wake of any other watcher is an error: the system filters.
pub async fn filtered_wake<S: System>(
    sys: &Arc<S>,
    watchers: usize,
    rounds: usize,
) -> BenchResult<WakeFigures> {
    let (tx, mut woken) = mpsc::unbounded_channel::<(usize, Instant)>();
    let mut tasks = JoinSet::new();
    let mut conns = Vec::new();
    let mut first = 0;
    while first < watchers {
        let last = (first + WATCHERS_PER_CONN).min(watchers);
        let conn = sys.connect().await?;
        for j in first..last {
            let mut w = sys.watch_group(&conn, &format!("g{j}")).await?;
            let tx = tx.clone();
            tasks.spawn(async move {
                while S::next_changes(&mut w).await.is_ok() {
                    if tx.send((j, Instant::now())).is_err() {
                        break;
                    }
                }
            });
        }
        conns.push(conn);
        first = last;
    }
    let writer = sys.connect().await?;
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    let mut cpu = CpuSpan::start(None);
    let result = async {
        for round in 0..=rounds {
            if round == 1 {
                cpu = CpuSpan::start(sys.pid());
            }
            let j = (round * 7919) % watchers;
            let svc = Svc {
                name: format!("tcp!wake{round}!7000"),
                group: format!("g{j}"),
            };
            let t = Instant::now();
            let held = sys.register(&writer, &svc).await?;
            let at = arrival(&mut woken, j).await?;
            if round > 0 {
                lat.push(at.saturating_duration_since(t));
            }
            sys.unregister(held).await?;
            arrival(&mut woken, j).await?;
        }
        Ok::<_, super::system::BenchError>(())
    }
    .await;
    let server_cpu_us = cpu.per_op(rounds * 2);
    tasks.abort_all();
    sys.disconnect(writer).await?;
    for conn in conns {
        sys.disconnect(conn).await?;
    }
    result?;
    Ok(WakeFigures {
        summary: Samples {
            lat,
            wall: start.elapsed(),
        }
        .summary(),
        server_cpu_us,
    })
}

/// Waits for watcher `j`; any other watcher woken is an error.
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

/// What the follow-rate scenario measured.
#[derive(Debug, Clone, Copy)]
pub struct FollowFigures {
    /// Changes the follower was told of per second while writers changed the registry.
    pub per_sec: f64,
    /// Changes the writers made.
    pub made: usize,
    /// Changes the follower was told of (every one: none may be lost).
    pub seen: usize,
}

/// A follower of the whole catalogue while `writers` clients register and unregister as fast as
/// they can for `time`; counts the changes it is told of until it has every one written.
pub async fn follow_rate<S: System>(
    sys: &Arc<S>,
    writers: usize,
    time: Duration,
) -> BenchResult<FollowFigures> {
    let reader = sys.connect().await?;
    let mut follower = sys.follow_all(&reader).await?;
    let seen = Arc::new(AtomicUsize::new(0));
    let made = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let counting = {
        let seen = seen.clone();
        tokio::spawn(async move {
            while let Ok(n) = S::next_changes(&mut follower).await {
                seen.fetch_add(n, Ordering::Relaxed);
            }
        })
    };
    let mut writing = JoinSet::new();
    for c in 0..writers {
        let conn = sys.connect().await?;
        let (sys, made, stop) = (sys.clone(), made.clone(), stop.clone());
        writing.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let held = sys.register(&conn, &Svc::cycle(2_000_000 + c, i)).await?;
                sys.unregister(held).await?;
                made.fetch_add(2, Ordering::Relaxed);
                i += 1;
            }
            sys.disconnect(conn).await
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
    sys.disconnect(reader).await?;
    let seen = seen.load(Ordering::Relaxed);
    Ok(FollowFigures {
        per_sec: seen as f64 / elapsed.as_secs_f64(),
        made,
        seen,
    })
}
