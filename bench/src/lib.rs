//! `registry bench`: measures a registry beside etcd and ZooKeeper, in the same run, on the same
//! machine. The `registry` command runs it as a subcommand (`Args`, `run`).
//!
//! Our registry is started as a child process (`registry bench --serve-child`) so that its
//! resident memory can be read from `/proc`; `-m ADDR` measures any registry(4) server instead,
//! a real Inferno one included, since everything goes through the public registries(2) client.
//! etcd is started from `--etcd-bin` on free loopback ports unless `--no-etcd` is given, and
//! ZooKeeper from `--zookeeper-jar` unless `--no-zookeeper`.
//!
//! Submodules: `stats` (percentiles), `floor` (TCP echo), `system`
//! (the trait the systems implement), `ours`, `etcd`, `zookeeper`, `scenarios`,
//! `report` and `sys` (memory, fd limit, ports).

mod etcd;
mod feed;
mod floor;
mod ha;
mod ours;
mod plot;
mod report;
mod scenarios;
mod stats;
mod sys;
mod system;
mod zookeeper;

use report::{Better, Report, Side, detail, memory};
use scenarios::{Budget, Catalogue};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use sys::CpuSpan;
use system::{BenchResult, System};

/// Round trips our client needs for one register plus unregister: walk `new`, open, write the
/// registration, clunk (spec/registry.md §10).
const REGISTER_ROUND_TRIPS: u32 = 4;

/// Benchmark a registry beside etcd and ZooKeeper: throughput and p50/p99 latency per scenario,
/// then one line per scenario, `scenario ours etcd zookeeper` and our ratio to each (above 1
/// means ours is better).
#[derive(clap::Args)]
#[command(after_help = "\
Scenarios (--scenario, repeatable; default all):
  floor        raw loopback TCP echo round trip
  register     register+unregister cycles, 1 and 64 clients
  find         selective and `*` finds over 1,000, 10,000, 100,000 services
  fanout       time until 1,000 and 10,000 watchers are woken by one change
  memory       server bytes per registered service and per idle watcher (100,000 each)
  connections  10,000 clients each holding one registration
  feed         the change feed: the one watcher a change concerns among 1,000 and 10,000
               watchers of other groups over 100,000 services, and the changes a follower
               of the whole catalogue keeps up with (ours: a Monitor; etcd: a prefix watch)
  ha           three etcd members and two `registry serve --etcd` front-ends, against etcd
               alone: register rates (1 and 100 clients), find over 100,000 services from a
               replica against a range read, propagation from A to an event reader on B,
               and failover after kill -9 of A (needs etcd; not with -m)

Examples:
  registry bench --quick --no-etcd
  registry bench --etcd-bin /usr/bin/etcd
  registry bench -m 'tcp!inferno!6675' --no-etcd --scenario find")]
pub struct Args {
    /// Small sizes: every scenario within about a minute.
    #[arg(long)]
    quick: bool,
    /// Trivial sizes, only to check that everything runs.
    #[arg(long, hide = true)]
    tiny: bool,
    /// Measure the registry at this dial string instead of starting one (no memory figures).
    #[arg(short = 'm', value_name = "ADDR")]
    mount: Option<String>,
    /// Do not run etcd.
    #[arg(long)]
    no_etcd: bool,
    /// Do not run ZooKeeper.
    #[arg(long)]
    no_zookeeper: bool,
    /// The ZooKeeper server jar (Debian: package zookeeperd), run with --java.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/usr/share/java/zookeeper.jar"
    )]
    zookeeper_jar: String,
    /// The java that runs ZooKeeper.
    #[arg(long, value_name = "PATH", default_value = "java")]
    java: String,
    /// Also write the summary as JSON to FILE: an array of {"scenario", "unit",
    /// "higher_is_better", "ours", "etcd", "zookeeper"}.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Also draw our ratio to each peer per scenario as an SVG picture in FILE.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<std::path::PathBuf>,
    /// The etcd server binary (Debian: package etcd-server).
    #[arg(long, value_name = "PATH", default_value = "/usr/bin/etcd")]
    etcd_bin: String,
    /// Run only this scenario (repeatable).
    #[arg(long = "scenario", value_name = "NAME", value_enum)]
    scenarios: Vec<Scenario>,
    /// Serve a registry for a parent `registry bench` (internal).
    #[arg(long = "serve-child", hide = true)]
    serve_child: bool,
}

/// The scenarios `registry bench` can run (`--scenario`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Raw loopback TCP echo round trip.
    Floor,
    /// Register+unregister cycles, 1 and 64 clients.
    Register,
    /// Selective and `*` finds over growing catalogues.
    Find,
    /// Time until every watcher is woken by one change.
    Fanout,
    /// Server bytes per registered service and per idle watcher.
    Memory,
    /// Many clients, each holding one registration.
    Connections,
    /// The change feed: filtered wake-ups and a follower's rate.
    Feed,
    /// Three etcd members and two `serve --etcd` front-ends against etcd alone.
    Ha,
}

/// Sizes and time budgets for one mode.
struct Plan {
    mode: &'static str,
    floor_trips: usize,
    cycle: Budget,
    concurrent: usize,
    find_sizes: Vec<usize>,
    find: Budget,
    fanout_sizes: Vec<usize>,
    fanout_rounds: usize,
    /// Services registered when memory per service is read (at least the largest find size).
    memory_services: usize,
    idle_watchers: usize,
    connections: usize,
    feed_services: usize,
    feed_watchers: Vec<usize>,
    feed_rounds: usize,
    monitor_time: Duration,
    ha: ha::HaPlan,
}

impl Plan {
    fn for_args(args: &Args) -> Plan {
        let b = |ms: u64, ops: usize| Budget {
            time: Duration::from_millis(ms),
            ops,
        };
        if args.tiny {
            Plan {
                mode: "tiny",
                floor_trips: 100,
                cycle: b(100, 20),
                concurrent: 4,
                find_sizes: vec![30],
                find: b(100, 5),
                fanout_sizes: vec![5],
                fanout_rounds: 1,
                memory_services: 30,
                idle_watchers: 10,
                connections: 5,
                feed_services: 100,
                feed_watchers: vec![5],
                feed_rounds: 3,
                monitor_time: Duration::from_millis(100),
                ha: ha::HaPlan {
                    cycle: b(100, 20),
                    clients: vec![1, 4],
                    find_services: 30,
                    find: b(100, 5),
                    propagation_rounds: 5,
                    failover_services: 10,
                    ttl: 2,
                },
            }
        } else if args.quick {
            Plan {
                mode: "quick",
                floor_trips: 5_000,
                cycle: b(1_000, 50_000),
                concurrent: 64,
                find_sizes: vec![100, 1_000],
                find: b(400, 2_000),
                fanout_sizes: vec![100, 1_000],
                fanout_rounds: 5,
                memory_services: 10_000,
                idle_watchers: 2_000,
                connections: 500,
                feed_services: 10_000,
                feed_watchers: vec![100, 1_000],
                feed_rounds: 100,
                monitor_time: Duration::from_secs(1),
                ha: ha::HaPlan {
                    cycle: b(1_000, 20_000),
                    clients: vec![1, 100],
                    find_services: 10_000,
                    find: b(1_000, 200),
                    propagation_rounds: 100,
                    failover_services: 1_000,
                    ttl: 2,
                },
            }
        } else {
            Plan {
                mode: "full",
                floor_trips: 20_000,
                cycle: b(3_000, 1_000_000),
                concurrent: 64,
                find_sizes: vec![1_000, 10_000, 100_000],
                find: b(2_000, 10_000),
                fanout_sizes: vec![1_000, 10_000],
                fanout_rounds: 10,
                memory_services: 100_000,
                idle_watchers: 100_000,
                connections: 10_000,
                feed_services: 100_000,
                feed_watchers: vec![1_000, 10_000],
                feed_rounds: 300,
                monitor_time: Duration::from_secs(3),
                ha: ha::HaPlan {
                    cycle: b(3_000, 100_000),
                    clients: vec![1, 100],
                    find_services: 100_000,
                    find: b(3_000, 300),
                    propagation_rounds: 500,
                    failover_services: 1_000,
                    ttl: 5,
                },
            }
        }
    }
}

/// Figures the target checks need beyond the summary lines (ours only).
#[derive(Default)]
struct Extra {
    floor: Option<Duration>,
    register_p50: Option<Duration>,
    selective_p50: Vec<(usize, Duration)>,
    fanout_p50: Vec<(usize, Duration)>,
    beyond_attrs: Option<f64>,
    /// Per watcher count: p99 until the one concerned watcher had the change, server CPU.
    feed_wake: Vec<(usize, Duration, Option<f64>)>,
    monitor_rate: Option<f64>,
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn failed(label: &str, what: &str, e: &system::BenchError) {
    println!("{label:<5} {what:<26} FAILED: {e}");
}

/// Lets a server finish dropping what the last scenario left before the next one measures.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// What [`run`] returns: the process's exit code, or a diagnostic for the command to print.
pub type RunResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

/// Raises the soft open-file limit to the hard one (children inherit it; every connection costs
/// a descriptor) and returns the limit now in force, 0 when it cannot be read.
fn raise_nofile() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Runs `registry bench`.
pub async fn run(args: Args) -> RunResult {
    if args.serve_child {
        ours::serve_child().await?;
        return Ok(ExitCode::SUCCESS);
    }
    let nofile = raise_nofile();
    let plan = Plan::for_args(&args);
    let want = |s: Scenario| args.scenarios.is_empty() || args.scenarios.contains(&s);
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "registry bench: {} mode, {cpus} CPUs, open-file limit {nofile}",
        plan.mode
    );
    let mut report = Report::default();
    let mut extra = Extra::default();

    if want(Scenario::Floor) {
        match floor::echo_round_trips(plan.floor_trips).await {
            Ok(s) => {
                let s = s.summary();
                detail(
                    "floor",
                    "tcp echo round trip",
                    &s,
                    "64-byte messages, TCP_NODELAY",
                );
                report.set("floor-rtt-p50-us", Better::Lower, Side::Ours, micros(s.p50));
                extra.floor = Some(s.p50);
            }
            Err(e) => failed("floor", "tcp echo round trip", &e.into()),
        }
    }

    let ours = match &args.mount {
        Some(a) => ours::Ours::at(a)?,
        None => ours::Ours::spawn().await?,
    };
    let pid = ours
        .pid()
        .map_or_else(|| "not ours to read".to_string(), |p| p.to_string());
    println!("ours  registry at {} (server pid {pid})", ours.addr());
    run_system(Arc::new(ours), &plan, &want, &mut report, &mut extra).await;
    let fresh = || async {
        match &args.mount {
            Some(a) => ours::Ours::at(a),
            None => ours::Ours::spawn().await,
        }
    };
    fresh_memories(fresh, &plan, &want, &mut report).await;

    if !args.no_etcd {
        run_etcd(&args, &plan, &want, &mut report).await;
    }
    if !args.no_zookeeper {
        run_zookeeper(&args, &plan, &want, &mut report).await;
    } else {
        println!("zookeeper not measured (--no-zookeeper)");
    }
    if want(Scenario::Ha)
        && !args.no_etcd
        && args.mount.is_none()
        && let Err(e) = ha::run(&args.etcd_bin, &plan.ha, &mut report).await
    {
        failed("ha", "several front-ends", &e);
    }

    report.print_summary();
    print_targets(&report, &extra);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report.to_json())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::write(&report, path).map_err(|e| format!("cannot draw {}: {e}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The change feed scenarios against one system: filtered wake-ups among many watchers, and
/// how many changes a follower of the whole catalogue keeps up with.
async fn run_feed<S: System>(
    sys: &Arc<S>,
    plan: &Plan,
    report: &mut Report,
    extra: &mut Extra,
) -> system::BenchResult<()> {
    let label = sys.label();
    let side = Side::of(label);
    let n = plan.feed_services;
    let mut catalogue = scenarios::Catalogue::new();
    catalogue.grow_to(sys, n).await?;
    for &w in &plan.feed_watchers {
        let what = format!("feed: 1 of {w} watchers");
        match feed::filtered_wake(sys, w, plan.feed_rounds).await {
            Ok(f) => {
                let name = format!("feed-wake-{w}-p99-us");
                report.set(&name, Better::Lower, side, micros(f.summary.p99));
                record(report, side, &name, f.server_cpu_us);
                let cpu = f
                    .server_cpu_us
                    .map_or_else(String::new, |c| format!("server {c:.0} µs CPU/change"));
                detail(label, &what, &f.summary, &format!("{n} services; {cpu}"));
                if side == Side::Ours {
                    extra.feed_wake.push((w, f.summary.p99, f.server_cpu_us));
                }
            }
            Err(e) => failed(label, &what, &e),
        }
        pause().await;
    }
    let follower = if side == Side::Ours {
        "a Monitor"
    } else {
        "a prefix watch"
    };
    match feed::follow_rate(sys, 8, plan.monitor_time).await {
        Ok(m) => {
            report.set("follow-changes/s", Better::Higher, side, m.per_sec);
            println!(
                "{label:<5} {:<26} {:>10}/s  ({} of {} changes, {n} services, 8 writers, {follower})",
                "follower keeping up",
                stats::fmt_num(m.per_sec),
                m.seen,
                m.made
            );
            if side == Side::Ours {
                extra.monitor_rate = Some(m.per_sec);
            }
        }
        Err(e) => failed(label, "follower keeping up", &e),
    }
    catalogue.clear(sys).await?;
    pause().await;
    Ok(())
}

async fn run_etcd(args: &Args, plan: &Plan, want: &impl Fn(Scenario) -> bool, report: &mut Report) {
    match etcd::Etcd::spawn(&args.etcd_bin).await {
        Ok(e) => {
            let pid = e.pid().map_or_else(String::new, |p| p.to_string());
            println!("etcd  started {} (pid {pid})", args.etcd_bin);
            run_system(Arc::new(e), plan, want, report, &mut Extra::default()).await;
            let fresh = || etcd::Etcd::spawn(&args.etcd_bin);
            fresh_memories(fresh, plan, want, report).await;
        }
        Err(e) => println!("etcd  not measured: {e}"),
    }
}

async fn run_zookeeper(
    args: &Args,
    plan: &Plan,
    want: &impl Fn(Scenario) -> bool,
    report: &mut Report,
) {
    match zookeeper::ZooKeeper::spawn(&args.java, &args.zookeeper_jar).await {
        Ok(z) => {
            let pid = z.pid().map_or_else(String::new, |p| p.to_string());
            println!(
                "zookeeper started {} (pid {pid}); its memory: the live heap after a full collection (jcmd)",
                args.zookeeper_jar
            );
            run_system(Arc::new(z), plan, want, report, &mut Extra::default()).await;
            let fresh = || zookeeper::ZooKeeper::spawn(&args.java, &args.zookeeper_jar);
            fresh_memories(fresh, plan, want, report).await;
        }
        Err(e) => println!("zookeeper not measured: {e}"),
    }
}

/// Runs every wanted scenario against one system.
async fn run_system<S: System>(
    sys: Arc<S>,
    plan: &Plan,
    want: &impl Fn(Scenario) -> bool,
    report: &mut Report,
    extra: &mut Extra,
) {
    let label = sys.label();
    let side = Side::of(label);
    // First, on a fresh process: memory per service measured after other scenarios counts only
    // what they left free for it to reuse (ours read 502 B per service there, 708 B fresh).
    if want(Scenario::Find) || want(Scenario::Memory) {
        if let Err(e) = catalogue(&sys, plan, want, report, extra).await {
            failed(label, "find/memory catalogue", &e);
        }
        pause().await;
    }
    if want(Scenario::Register) {
        for clients in [1, plan.concurrent] {
            let what = format!("register+unregister x{clients}");
            let cpu = CpuSpan::start(sys.pid());
            let me = CpuSpan::start(Some(std::process::id()));
            match scenarios::register_cycles(&sys, clients, plan.cycle).await {
                Ok(s) => {
                    let name = format!("register-{clients}client/s");
                    report.set(&name, Better::Higher, side, s.per_sec);
                    record(report, side, &name, cpu.per_op(s.ops));
                    detail(
                        label,
                        &what,
                        &s,
                        &cpu_note(cpu.per_op(s.ops), me.per_op(s.ops)),
                    );
                    if clients == 1 {
                        report.set(
                            "register-1client-p50-us",
                            Better::Lower,
                            side,
                            micros(s.p50),
                        );
                        extra.register_p50 = Some(s.p50);
                    }
                }
                Err(e) => failed(label, &what, &e),
            }
            pause().await;
        }
    }
    if want(Scenario::Fanout) {
        for &n in &plan.fanout_sizes {
            let what = format!("fan-out to {n} watchers");
            match scenarios::fanout(&sys, n, plan.fanout_rounds).await {
                Ok(f) => {
                    let s = f.summary;
                    let name = format!("fanout-{n}-p50-ms");
                    report.set(&name, Better::Lower, side, s.p50.as_secs_f64() * 1e3);
                    record(report, side, &name, f.server_cpu_us);
                    let cpu = cpu_note(f.server_cpu_us, f.client_cpu_us);
                    detail(label, &what, &s, &format!("(ops = changes) {cpu}"));
                    extra.fanout_p50.push((n, s.p50));
                }
                Err(e) => failed(label, &what, &e),
            }
            pause().await;
        }
    }
    if want(Scenario::Connections) {
        let n = plan.connections;
        let what = format!("{n} clients connect+register");
        let cpu = CpuSpan::start(sys.pid());
        let me = CpuSpan::start(Some(std::process::id()));
        match scenarios::connections(&sys, n).await {
            Ok(f) => {
                let per = cpu.per_op(f.summary.ops);
                detail(
                    label,
                    &what,
                    &f.summary,
                    &cpu_note(per, me.per_op(f.summary.ops)),
                );
                // Memory per connection is read on a fresh process ([`connection_memory`]).
                report.set(
                    &format!("connections-{n}/s"),
                    Better::Higher,
                    side,
                    f.summary.per_sec,
                );
                record(report, side, &format!("connections-{n}/s"), per);
            }
            Err(e) => failed(label, &what, &e),
        }
        pause().await;
    }
    if want(Scenario::Feed)
        && let Err(e) = run_feed(&sys, plan, report, extra).await
    {
        failed(label, "change feed", &e);
    }
}

/// Memory per idle watcher and per connection, each on a fresh process of the system made by
/// `spawn`.
async fn fresh_memories<S, F, Fut>(
    spawn: F,
    plan: &Plan,
    want: &impl Fn(Scenario) -> bool,
    report: &mut Report,
) where
    S: System,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = BenchResult<S>>,
{
    if want(Scenario::Memory) {
        idle_watcher_memory(spawn().await, plan, report).await;
    }
    if want(Scenario::Connections) {
        connection_memory(spawn().await, plan, report).await;
    }
}

/// One memory figure read on a fresh process of the system (`fresh`), as memory per service is
/// measured first on its own: read after other scenarios, a server reuses what they freed (ours
/// read 1,412 to 3,305 B per idle watcher so, and 4,375 to 7,780 B per connection, by run).
/// `measure` gives the bytes per item; the figure goes in the report as `name`.
async fn fresh_memory<S, M, Fut>(
    fresh: BenchResult<S>,
    (name, what, note): (&str, &str, &str),
    report: &mut Report,
    measure: M,
) where
    S: System,
    M: FnOnce(Arc<S>) -> Fut,
    Fut: std::future::Future<Output = BenchResult<Option<f64>>>,
{
    let sys = match fresh {
        Ok(sys) => Arc::new(sys),
        Err(e) => return failed("bench", &format!("a fresh server: {what}"), &e),
    };
    let label = sys.label();
    // A registry given with -m is not ours to read the memory of, nor to load again.
    if sys.pid().is_none() {
        return memory(label, what, None, note);
    }
    match measure(sys).await {
        Ok(b) => {
            memory(label, what, b, note);
            if let Some(b) = b {
                report.set(name, Better::Lower, Side::of(label), b);
            }
        }
        Err(e) => failed(label, what, &e),
    }
}

/// Scenario 5's memory per connection holding a registration, on a fresh process.
async fn connection_memory<S: System>(fresh: BenchResult<S>, plan: &Plan, report: &mut Report) {
    let n = plan.connections;
    let note = format!("one registration each, {n} on a fresh server");
    let what = (
        "memory-per-connection-B",
        "per connected client",
        note.as_str(),
    );
    fresh_memory(fresh, what, report, |sys| async move {
        Ok(scenarios::connections(&sys, n).await?.bytes_per_client)
    })
    .await;
}

/// Scenario 4b's memory per idle watcher, on a fresh process.
async fn idle_watcher_memory<S: System>(fresh: BenchResult<S>, plan: &Plan, report: &mut Report) {
    let n = plan.idle_watchers;
    let note = format!("at {n}, a fresh server");
    let what = ("memory-per-watcher-B", "per idle watcher", note.as_str());
    fresh_memory(fresh, what, report, |sys| async move {
        scenarios::idle_watchers(&sys, n).await
    })
    .await;
}

/// Scenarios 2 and 4a: grows one catalogue through the find sizes, timing finds at each size,
/// and reads the server's memory per registered service at the largest.
async fn catalogue<S: System>(
    sys: &Arc<S>,
    plan: &Plan,
    want: &impl Fn(Scenario) -> bool,
    report: &mut Report,
    extra: &mut Extra,
) -> BenchResult<()> {
    let label = sys.label();
    let side = Side::of(label);
    let querier = sys.connect().await?;
    let before = sys.held_memory().await;
    let mut cat = Catalogue::new();
    let mut after = None;
    for &n in &plan.find_sizes {
        cat.grow_to(sys, n).await?;
        if n == plan.memory_services && want(Scenario::Memory) {
            // Read before the finds at this size, whose large answers leave freed heap behind.
            after = sys.held_memory().await.map(|b| (b, n));
        }
        if !want(Scenario::Find) {
            continue;
        }
        for selective in [true, false] {
            let kind = if selective { "selective" } else { "all" };
            let what = format!("find {kind} over {n}");
            let cpu = CpuSpan::start(sys.pid());
            let me = CpuSpan::start(Some(std::process::id()));
            match scenarios::find_loop(sys, &querier, n, selective, plan.find).await {
                Ok((s, answer)) => {
                    let name = format!("find-{kind}-{n}/s");
                    let per = cpu.per_op(s.ops + 1);
                    report.set(&name, Better::Higher, side, s.per_sec);
                    record(report, side, &name, per);
                    detail(
                        label,
                        &what,
                        &s,
                        &format!("answer {answer} {}", cpu_note(per, me.per_op(s.ops + 1))),
                    );
                    if selective {
                        extra.selective_p50.push((n, s.p50));
                    }
                }
                Err(e) => failed(label, &what, &e),
            }
        }
    }
    if want(Scenario::Memory) {
        if after.is_none() {
            cat.grow_to(sys, plan.memory_services.max(cat.len)).await?;
            after = sys.held_memory().await.map(|b| (b, cat.len));
        }
        let n = after.map_or(cat.len, |(_, n)| n);
        let per = before
            .zip(after)
            .map(|(b, (a, n))| a.saturating_sub(b) as f64 / n.max(1) as f64);
        let text = Catalogue::<S>::mean_text_len(n);
        let note = format!("at {n}; description text {text:.0} B");
        memory(label, "per registered service", per, &note);
        if let Some(per) = per {
            report.set("memory-per-service-B", Better::Lower, side, per);
            report.set("memory-beyond-attrs-B", Better::Lower, side, per - text);
            extra.beyond_attrs = Some(per - text);
        }
    }
    cat.clear(sys).await?;
    sys.disconnect(querier).await
}

/// Records a per-operation server CPU figure under `{name}` with `-cpu-us` in place of its unit.
fn record(report: &mut Report, side: Side, name: &str, cpu_us: Option<f64>) {
    if let Some(us) = cpu_us {
        let base = name
            .trim_end_matches("/s")
            .trim_end_matches("-p50-ms")
            .trim_end_matches("-p99-us");
        report.set(&format!("{base}-server-cpu-us"), Better::Lower, side, us);
    }
}

/// CPU per operation of the server and of this (client) process, for the detail lines.
fn cpu_note(server_us: Option<f64>, client_us: Option<f64>) -> String {
    let show = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |us| format!("{us:.1}µs"));
    format!(
        "cpu/op server {} client {}",
        show(server_us),
        show(client_us)
    )
}

/// Prints the targets we hold ourselves to against what was measured.
fn print_targets(report: &Report, extra: &Extra) {
    println!();
    println!("targets (ours):");
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    let behind: Vec<&str> = report
        .lines
        .iter()
        .filter(|l| l.name.ends_with("/s") && l.ratio().is_some_and(|r| r < 1.0))
        .map(|l| l.name.as_str())
        .collect();
    if report.lines.iter().any(|l| l.etcd.is_some()) {
        let ok = behind.is_empty();
        println!(
            "  throughput >= etcd everywhere: {} {}",
            verdict(ok),
            behind.join(" ")
        );
    }
    if let (Some(f), Some(r)) = (extra.floor, extra.register_p50) {
        let limit = f * 2 * REGISTER_ROUND_TRIPS;
        println!(
            "  1-client register+unregister <= 2x floor x {REGISTER_ROUND_TRIPS} round trips: {} (p50 {} vs {})",
            verdict(r <= limit),
            stats::fmt_dur(r),
            stats::fmt_dur(limit)
        );
    }
    if let (Some(first), Some(last)) = (extra.selective_p50.first(), extra.selective_p50.last())
        && last.0 > first.0
    {
        let growth = last.1.as_secs_f64() / first.1.as_secs_f64().max(1e-9);
        println!(
            "  selective find independent of catalogue size: {} (p50 x{growth:.2} from {} to {} services)",
            verdict(growth < 2.0),
            first.0,
            last.0
        );
    }
    if let Some((n, p50)) = extra.fanout_p50.last() {
        println!(
            "  fan-out under 50 ms: {} (p50 {} at {n} watchers)",
            verdict(*p50 < Duration::from_millis(50)),
            stats::fmt_dur(*p50)
        );
    }
    if let Some((w, p99, _)) = extra.feed_wake.last() {
        println!(
            "  feed: the one watcher among {w} has its change, p99 < 5 ms: {} ({})",
            verdict(*p99 < Duration::from_millis(5)),
            stats::fmt_dur(*p99)
        );
    }
    if let (Some((w0, _, Some(c0))), Some((w1, _, Some(c1)))) =
        (extra.feed_wake.first(), extra.feed_wake.last())
        && w1 > w0
    {
        println!(
            "  feed: server CPU per change flat from {w0} to {w1} watchers: {} ({c0:.0} -> {c1:.0} µs)",
            verdict(*c1 < c0 * 2.0 + 50.0)
        );
    }
    if let Some(r) = extra.monitor_rate {
        println!(
            "  a Monitor keeps up with >= 10,000 changes/s: {} ({r:.0}/s)",
            verdict(r >= 10_000.0)
        );
    }
    if let Some(b) = extra.beyond_attrs {
        println!(
            "  < 1 KiB per registration beyond its description: {} ({b:.0} B)",
            verdict(b < 1024.0)
        );
    }
}
