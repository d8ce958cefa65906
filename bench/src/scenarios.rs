//! The benchmark scenarios, written once for any [`System`]: register/unregister cycles, find
//! over a growing catalogue, event fan-out, memory per service and per idle watcher, and many
//! connections each holding one registration.

use super::stats::{Samples, Summary};
use super::sys::CpuSpan;
use super::system::{BenchError, BenchResult, GROUP, Query, Svc, System};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, Semaphore, mpsc};
use tokio::task::JoinSet;

/// No single operation may take longer than this: a stuck server fails the scenario, not the run.
const OP_TIMEOUT: Duration = Duration::from_secs(60);

/// Registrations per connection when building a catalogue (below the server's fid limit).
const PER_CONN: usize = 2000;

/// Watchers per connection (below the server's limit on requests outstanding per connection).
pub const WATCHERS_PER_CONN: usize = 200;

/// Connections opened at once when many are needed.
const DIAL_PARALLEL: usize = 64;

/// Runs `f` with [`OP_TIMEOUT`].
async fn guard<T>(f: impl Future<Output = BenchResult<T>>) -> BenchResult<T> {
    match tokio::time::timeout(OP_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(format!("operation timed out after {OP_TIMEOUT:?}").into()),
    }
}

/// Waits for every task of `set`, returning their results or the first failure.
async fn join_all<T: 'static>(mut set: JoinSet<BenchResult<T>>) -> BenchResult<Vec<T>> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(r) = set.join_next().await {
        out.push(r.map_err(|e| BenchError::from(e.to_string()))??);
    }
    Ok(out)
}

/// How long and how often to repeat a measured operation.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Stop after this long...
    pub time: Duration,
    /// ...or after this many operations, whichever comes first.
    pub ops: usize,
}

impl Budget {
    fn more(&self, done: usize, start: Instant) -> bool {
        done < self.ops && start.elapsed() < self.time
    }
}

/// Scenario 1: `clients` connections, each registering and unregistering services in a loop.
/// One sample is one register plus its unregister.
pub async fn register_cycles<S: System>(
    sys: &Arc<S>,
    clients: usize,
    budget: Budget,
) -> BenchResult<Summary> {
    let mut conns = Vec::with_capacity(clients);
    for c in 0..clients {
        let conn = guard(sys.connect()).await?;
        // Warm up each connection (first-use allocations, the server's caches) before timing.
        for i in 0..3 {
            let held = guard(sys.register(&conn, &Svc::cycle(c, i))).await?;
            guard(sys.unregister(held)).await?;
        }
        conns.push(conn);
    }
    let barrier = Arc::new(Barrier::new(clients + 1));
    let mut tasks = JoinSet::new();
    for (c, conn) in conns.iter().cloned().enumerate() {
        let sys = Arc::clone(sys);
        let barrier = Arc::clone(&barrier);
        tasks.spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            let mut lat = Vec::new();
            while budget.more(lat.len(), start) {
                let svc = Svc::cycle(c, 3 + lat.len());
                let t = Instant::now();
                let held = guard(sys.register(&conn, &svc)).await?;
                guard(sys.unregister(held)).await?;
                lat.push(t.elapsed());
            }
            Ok(lat)
        });
    }
    barrier.wait().await;
    let start = Instant::now();
    let parts = join_all(tasks).await;
    let wall = start.elapsed();
    for conn in conns {
        sys.disconnect(conn).await?;
    }
    Ok(Samples::merged(parts?, wall).summary())
}

/// The services of the find and memory scenarios, held by a few connections.
pub struct Catalogue<S: System> {
    holders: Vec<(S::Conn, Vec<S::Held>)>,
    /// How many services are registered.
    pub len: usize,
}

impl<S: System> Catalogue<S> {
    /// An empty catalogue.
    pub fn new() -> Catalogue<S> {
        Catalogue {
            holders: Vec::new(),
            len: 0,
        }
    }

    /// Registers services `len..n`, [`PER_CONN`] per new connection, several connections at once.
    pub async fn grow_to(&mut self, sys: &Arc<S>, n: usize) -> BenchResult<()> {
        let slots = Arc::new(Semaphore::new(16));
        let mut tasks = JoinSet::new();
        let mut from = self.len;
        while from < n {
            let to = (from + PER_CONN).min(n);
            let sys = Arc::clone(sys);
            let slots = Arc::clone(&slots);
            tasks.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                let conn = guard(sys.connect()).await?;
                let mut held = Vec::with_capacity(to - from);
                for i in from..to {
                    held.push(guard(sys.register(&conn, &Svc::catalogue(i))).await?);
                }
                Ok((conn, held))
            });
            from = to;
        }
        self.holders.extend(join_all(tasks).await?);
        self.len = n;
        Ok(())
    }

    /// Text bytes of the first `n` catalogue services' descriptions, on average.
    pub fn mean_text_len(n: usize) -> f64 {
        let step = (n / 1000).max(1);
        let picks: Vec<usize> = (0..n)
            .step_by(step)
            .map(|i| Svc::catalogue(i).text_len())
            .collect();
        picks.iter().sum::<usize>() as f64 / picks.len().max(1) as f64
    }

    /// Unregisters everything, one service after another on each holding connection (the
    /// connections at once), then closes the connections. One at a time per connection, so that
    /// a server where each unregister takes a while (one in etcd) is not sent thousands at once.
    pub async fn clear(self, sys: &Arc<S>) -> BenchResult<()> {
        let mut tasks = JoinSet::new();
        for (conn, held) in self.holders {
            let sys = Arc::clone(sys);
            tasks.spawn(async move {
                for h in held {
                    guard(sys.unregister(h)).await?;
                }
                sys.disconnect(conn).await
            });
        }
        join_all(tasks).await?;
        Ok(())
    }
}

/// Scenario 2: repeated finds on one connection over a catalogue of `n` services. Returns the
/// figures and the size of the last answer.
pub async fn find_loop<S: System>(
    sys: &Arc<S>,
    conn: &S::Conn,
    n: usize,
    selective: bool,
    budget: Budget,
) -> BenchResult<(Summary, usize)> {
    let groups = n.div_ceil(GROUP).max(1);
    let query = |i: usize| {
        if selective {
            // Spread over the catalogue so no one group stays hot in a cache.
            Query::Group(format!("g{}", (i * 7919) % groups))
        } else {
            Query::All
        }
    };
    guard(sys.find(conn, &query(0))).await?;
    let mut lat = Vec::new();
    let mut answer = 0;
    let start = Instant::now();
    while budget.more(lat.len(), start) {
        let q = query(lat.len() + 1);
        let t = Instant::now();
        answer = guard(sys.find(conn, &q)).await?;
        lat.push(t.elapsed());
    }
    Ok((
        Samples {
            lat,
            wall: start.elapsed(),
        }
        .summary(),
        answer,
    ))
}

/// Watchers spread over connections, each watcher a task that reports `(its index, when woken)`.
struct Watchers<S: System> {
    conns: Vec<S::Conn>,
    tasks: JoinSet<()>,
    woken: mpsc::UnboundedReceiver<(usize, Instant)>,
    count: usize,
}

impl<S: System> Watchers<S> {
    /// Opens `count` established watchers, [`WATCHERS_PER_CONN`] per connection.
    async fn open(sys: &Arc<S>, count: usize) -> BenchResult<Watchers<S>> {
        let (tx, woken) = mpsc::unbounded_channel();
        let slots = Arc::new(Semaphore::new(DIAL_PARALLEL));
        let mut opening = JoinSet::new();
        let mut first = 0;
        while first < count {
            let last = (first + WATCHERS_PER_CONN).min(count);
            let sys = Arc::clone(sys);
            let slots = Arc::clone(&slots);
            opening.spawn(async move {
                let _slot = slots.acquire_owned().await?;
                let conn = guard(sys.connect()).await?;
                let mut ws = Vec::with_capacity(last - first);
                for id in first..last {
                    ws.push((id, guard(sys.watch(&conn)).await?));
                }
                Ok((conn, ws))
            });
            first = last;
        }
        let mut conns = Vec::new();
        let mut tasks = JoinSet::new();
        for (conn, ws) in join_all(opening).await? {
            conns.push(conn);
            for (id, mut w) in ws {
                let tx = tx.clone();
                tasks.spawn(async move {
                    while S::next_event(&mut w).await.is_ok() {
                        if tx.send((id, Instant::now())).is_err() {
                            break;
                        }
                    }
                });
            }
        }
        Ok(Watchers {
            conns,
            tasks,
            woken,
            count,
        })
    }

    /// Waits until every watcher has been woken at least once since the last call, and returns
    /// the latest first-wake time. Wakes left over from an earlier change are drained first.
    async fn all_woken(&mut self) -> BenchResult<Instant> {
        let mut seen = vec![false; self.count];
        let mut left = self.count;
        let mut last = Instant::now();
        while left > 0 {
            let got = tokio::time::timeout(OP_TIMEOUT, self.woken.recv()).await;
            let (id, at) = match got {
                Ok(Some(x)) => x,
                Ok(None) => return Err("watchers failed".into()),
                Err(_) => return Err(format!("{left} watchers never woke").into()),
            };
            if let Some(s) = seen.get_mut(id).filter(|s| !**s) {
                *s = true;
                left -= 1;
                last = at;
            }
        }
        Ok(last)
    }

    /// Lets woken watchers ask again, then forgets wakes that arrived meanwhile.
    async fn settle(&mut self) {
        let pause = Duration::from_millis(20) + Duration::from_micros(20) * self.count as u32;
        tokio::time::sleep(pause).await;
        while self.woken.try_recv().is_ok() {}
    }

    async fn close(mut self, sys: &Arc<S>) -> BenchResult<()> {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        for conn in self.conns {
            sys.disconnect(conn).await?;
        }
        Ok(())
    }
}

/// What scenario 3 measured.
#[derive(Debug, Clone, Copy)]
pub struct FanoutFigures {
    /// One sample per change: from its start until every watcher was woken.
    pub summary: Summary,
    /// Server CPU per change (µs), from the first timed round on, when readable.
    pub server_cpu_us: Option<f64>,
    /// This process's CPU per change (µs): the watchers' side.
    pub client_cpu_us: Option<f64>,
}

/// Scenario 3: `count` watchers; each sample is the time from the start of a registration (or
/// of its removal) until every watcher has been woken by it.
pub async fn fanout<S: System>(
    sys: &Arc<S>,
    count: usize,
    rounds: usize,
) -> BenchResult<FanoutFigures> {
    let mut w = Watchers::open(sys, count).await?;
    let writer = guard(sys.connect()).await?;
    let result = async {
        let mut lat = Vec::new();
        let start = Instant::now();
        let mut cpu = (CpuSpan::start(None), CpuSpan::start(None));
        // Round 0 is a warm-up: it also makes sure every watcher's wait has reached the server.
        for round in 0..=rounds {
            if round == 1 {
                // Opening the watchers is not the fan-out's cost: count CPU from here on.
                let me = Some(std::process::id());
                cpu = (CpuSpan::start(sys.pid()), CpuSpan::start(me));
            }
            let svc = Svc::cycle(1_000_000, round);
            w.settle().await;
            let t = Instant::now();
            let held = guard(sys.register(&writer, &svc)).await?;
            let woke = w.all_woken().await?;
            if round > 0 {
                lat.push(woke.saturating_duration_since(t));
            }
            w.settle().await;
            let t = Instant::now();
            guard(sys.unregister(held)).await?;
            let woke = w.all_woken().await?;
            if round > 0 {
                lat.push(woke.saturating_duration_since(t));
            }
        }
        let summary = Samples {
            lat,
            wall: start.elapsed(),
        }
        .summary();
        Ok::<_, BenchError>(FanoutFigures {
            summary,
            server_cpu_us: cpu.0.per_op(summary.ops),
            client_cpu_us: cpu.1.per_op(summary.ops),
        })
    }
    .await;
    w.close(sys).await?;
    sys.disconnect(writer).await?;
    result
}

/// Scenario 4b: resident bytes of the server per idle watcher, with `count` of them.
pub async fn idle_watchers<S: System>(sys: &Arc<S>, count: usize) -> BenchResult<Option<f64>> {
    if sys.pid().is_none() {
        return Ok(None);
    }
    let before = sys.held_memory().await.ok_or("cannot read server memory")?;
    let w = Watchers::open(sys, count).await?;
    // Give every watcher's wait time to reach the server before measuring.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = sys.held_memory().await.ok_or("cannot read server memory")?;
    w.close(sys).await?;
    Ok(Some(
        after.saturating_sub(before) as f64 / count.max(1) as f64,
    ))
}

/// What scenario 5 measured.
#[derive(Debug, Clone, Copy)]
pub struct ConnFigures {
    /// Connect plus register, per client.
    pub summary: Summary,
    /// Server resident bytes per connected client, when readable.
    pub bytes_per_client: Option<f64>,
}

/// Scenario 5: `count` clients, each its own connection holding one registration, established
/// [`DIAL_PARALLEL`] at a time. A sample is one client's connect plus register.
pub async fn connections<S: System>(sys: &Arc<S>, count: usize) -> BenchResult<ConnFigures> {
    let before = sys.held_memory().await;
    let slots = Arc::new(Semaphore::new(DIAL_PARALLEL));
    let mut tasks = JoinSet::new();
    let start = Instant::now();
    for i in 0..count {
        let sys = Arc::clone(sys);
        let slots = Arc::clone(&slots);
        tasks.spawn(async move {
            let _slot = slots.acquire_owned().await?;
            let t = Instant::now();
            let conn = guard(sys.connect()).await?;
            let held = guard(sys.register(&conn, &Svc::client(i))).await?;
            Ok((t.elapsed(), conn, held))
        });
    }
    let clients = join_all(tasks).await;
    let wall = start.elapsed();
    let clients = clients?;
    let after = sys.held_memory().await;
    let lat = clients.iter().map(|(d, _, _)| *d).collect();
    for (_, conn, held) in clients {
        drop(held);
        sys.disconnect(conn).await?;
    }
    let bytes_per_client = match (before, after) {
        (Some(b), Some(a)) => Some(a.saturating_sub(b) as f64 / count.max(1) as f64),
        _ => None,
    };
    Ok(ConnFigures {
        summary: Samples { lat, wall }.summary(),
        bytes_per_client,
    })
}
