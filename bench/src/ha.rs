//! `registry bench --scenario ha`: three etcd members and two `registry serve --etcd` front-ends
//! on this machine, against etcd alone doing the same work (spec/etcd.md).
//!
//! * register+unregister cycles through front-end A, and the same puts and deletes on etcd;
//! * finds at the largest size on A (answered from its replica) against etcd range reads;
//! * propagation: a register on A until an `event` reader on B wakes, against a put on one
//!   member until a watcher on another sees it;
//! * failover: kill -9 of A holding registrations, until all are gone on B (about the lease
//!   TTL), and until a `registry register -m A -m B` that was on A is back through B.

use super::etcd::{self, Etcd};
use super::ours::Ours;
use super::report::{Better, Report, Side};
use super::scenarios::{self, Budget, Catalogue};
use super::stats::{Samples, fmt_dur};
use super::system::{BenchResult, Query, System};
use futures_util::StreamExt;
use registries::client::{Attributes, Registry};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Sizes of the HA section.
pub struct HaPlan {
    /// Register+unregister cycles per measurement.
    pub cycle: Budget,
    /// Client counts of the cycles.
    pub clients: Vec<usize>,
    /// Services in the catalogue for the find figures.
    pub find_services: usize,
    /// Finds per measurement.
    pub find: Budget,
    /// Changes timed from A to B.
    pub propagation_rounds: usize,
    /// Registrations A holds when it is killed.
    pub failover_services: usize,
    /// The front-ends' lease TTL, seconds.
    pub ttl: u64,
}

/// A `registry serve --etcd` child process, killed on drop.
struct FrontEnd {
    dial: String,
    child: Child,
}

impl FrontEnd {
    async fn spawn(endpoints: &str, ttl: u64) -> BenchResult<FrontEnd> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .args(["serve", "--etcd", endpoints, "--etcd-prefix", "/bench-ha/"])
            .args(["--lease-ttl", &ttl.to_string(), "--no-shim"])
            .args(["--listen", "tcp!127.0.0.1!0"])
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let err = child.stderr.take().ok_or("front-end has no stderr")?;
        let dial = started(err, "registry: listening on ").await?;
        Ok(FrontEnd { dial, child })
    }
}

/// Reads `err` until a line starting with `prefix` and returns the rest of it; the rest of the
/// output is drained in the background.
async fn started(err: tokio::process::ChildStderr, prefix: &str) -> BenchResult<String> {
    let mut lines = BufReader::new(err).lines();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix(prefix) {
                return Ok(rest.to_string());
            }
        }
        Err::<String, std::io::Error>(std::io::ErrorKind::UnexpectedEof.into())
    })
    .await
    .map_err(|_| "no answer within 30 s")??;
    // What a front-end logs later is a warning or an error: show it.
    tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            eprintln!("ha    front-end: {l}");
        }
    });
    Ok(found)
}

/// Prints one figure line of the section.
fn line(label: &str, what: &str, figure: &str, note: &str) {
    println!("{label:<5} {what:<26} {figure} {note}");
}

/// Runs the section: figures go to `report` under `ha-...` names.
pub async fn run(etcd_bin: &str, plan: &HaPlan, report: &mut Report) -> BenchResult<()> {
    let mut members = Etcd::spawn_cluster(etcd_bin, 3).await?;
    let joined = members
        .iter()
        .map(Etcd::endpoint)
        .collect::<Vec<_>>()
        .join(",");
    println!("ha    etcd cluster of 3 at {joined}");
    let a = FrontEnd::spawn(&joined, plan.ttl).await?;
    let b = FrontEnd::spawn(&joined, plan.ttl).await?;
    println!(
        "ha    front-ends A {} and B {} (lease TTL {} s)",
        a.dial, b.dial, plan.ttl
    );
    let ours = Arc::new(Ours::at(&a.dial)?);
    // etcd alone is reached through member 0; the other two stay up (dropping one kills it).
    let alone = Arc::new(members.remove(0));

    for &clients in &plan.clients {
        let what = format!("register {clients} client(s)");
        let name = format!("ha-register-{clients}client/s");
        let o = scenarios::register_cycles(&ours, clients, plan.cycle).await?;
        line(
            "ours",
            &what,
            &format!("{:.0}/s", o.per_sec),
            &format!("p50 {}", fmt_dur(o.p50)),
        );
        report.set(&name, Better::Higher, Side::Ours, o.per_sec);
        let e = scenarios::register_cycles(&alone, clients, plan.cycle).await?;
        line(
            "etcd",
            &what,
            &format!("{:.0}/s", e.per_sec),
            &format!("p50 {}", fmt_dur(e.p50)),
        );
        report.set(&name, Better::Higher, Side::Etcd, e.per_sec);
    }

    let n = plan.find_services;
    let mut ours_catalogue = Catalogue::new();
    ours_catalogue.grow_to(&ours, n).await?;
    let conn = ours.connect().await?;
    finds(&ours, &conn, n, plan, report, "from A's replica").await?;
    ours_catalogue.clear(&ours).await?;
    // The front-end unregisters what the closed connections held: let it finish before etcd is
    // measured alone.
    let deadline = Instant::now() + Duration::from_secs(120);
    while ours.find(&conn, &Query::All).await? > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut etcd_catalogue = Catalogue::new();
    etcd_catalogue.grow_to(&alone, n).await?;
    let conn = alone.connect().await?;
    finds(&alone, &conn, n, plan, report, "range read").await?;
    etcd_catalogue.clear(&alone).await?;

    let o = propagation_ours(&a.dial, &b.dial, plan.propagation_rounds).await?;
    line(
        "ours",
        "register on A, event on B",
        &format!("p50 {} p99 {}", fmt_dur(o.p50), fmt_dur(o.p99)),
        "",
    );
    report.set(
        "ha-propagation-p99-us",
        Better::Lower,
        Side::Ours,
        o.p99.as_secs_f64() * 1e6,
    );
    let e = propagation_etcd(&endpoints_of(&joined), plan.propagation_rounds).await?;
    line(
        "etcd",
        "put on m0, watch on m1",
        &format!("p50 {} p99 {}", fmt_dur(e.p50), fmt_dur(e.p99)),
        "",
    );
    report.set(
        "ha-propagation-p99-us",
        Better::Lower,
        Side::Etcd,
        e.p99.as_secs_f64() * 1e6,
    );

    let (gone, back) = failover(a, &b.dial, plan).await?;
    line(
        "ours",
        &format!("kill -9 A holding {}", plan.failover_services),
        &format!("gone on B in {}", fmt_dur(gone)),
        &format!("TTL {} s", plan.ttl),
    );
    line(
        "ours",
        "register -m A -m B",
        &format!("back through B in {}", fmt_dur(back)),
        "",
    );
    report.set(
        "ha-failover-gone-ms",
        Better::Lower,
        Side::Ours,
        gone.as_secs_f64() * 1e3,
    );
    report.set(
        "ha-failover-back-ms",
        Better::Lower,
        Side::Ours,
        back.as_secs_f64() * 1e3,
    );
    drop((b, members));
    Ok(())
}

/// `find *` and a selective find (one group of the catalogue) over `n` services.
async fn finds<S: System>(
    sys: &Arc<S>,
    conn: &S::Conn,
    n: usize,
    plan: &HaPlan,
    report: &mut Report,
    how: &str,
) -> BenchResult<()> {
    let side = Side::of(sys.label());
    for (selective, kind) in [(false, "all"), (true, "selective")] {
        let (f, _) = scenarios::find_loop(sys, conn, n, selective, plan.find).await?;
        let what = format!("find {kind} over {n}");
        line(sys.label(), &what, &format!("{:.1}/s", f.per_sec), how);
        report.set(
            &format!("ha-find-{kind}-{n}/s"),
            Better::Higher,
            side,
            f.per_sec,
        );
    }
    Ok(())
}

fn endpoints_of(joined: &str) -> Vec<String> {
    joined.split(',').map(str::to_string).collect()
}

/// Register on A (a fresh name each round) until B's `event` reader wakes.
async fn propagation_ours(a: &str, b: &str, rounds: usize) -> BenchResult<super::stats::Summary> {
    let ra = Registry::open(a).await?;
    let rb = Registry::open(b).await?;
    let mut events = rb.events().await?;
    let attrs = Attributes::new([("bench", "ha")]);
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        let held = ra.register(&format!("tcp!ha!{i}"), &attrs, false).await?;
        events.next().await.ok_or("B's events ended")??;
        lat.push(t.elapsed());
        held.close().await?;
        events.next().await.ok_or("B's events ended")??;
    }
    Ok(Samples::merged(vec![lat], start.elapsed()).summary())
}

/// A put on member 0 until a watcher on member 1 sees it.
async fn propagation_etcd(
    endpoints: &[String],
    rounds: usize,
) -> BenchResult<super::stats::Summary> {
    let writer = etcd::connect_to(&endpoints[0]).await?;
    let reader = etcd::connect_to(&endpoints[1 % endpoints.len()]).await?;
    let mut watch = etcd::watch_prefix(&reader, "/ha/").await?;
    let mut lat = Vec::with_capacity(rounds);
    let start = Instant::now();
    for i in 0..rounds {
        let t = Instant::now();
        etcd::put(&writer, &format!("/ha/{i}"), "bench ha").await?;
        etcd::next_event(&mut watch).await?;
        lat.push(t.elapsed());
        etcd::delete(&writer, &format!("/ha/{i}")).await?;
        etcd::next_event(&mut watch).await?;
    }
    Ok(Samples::merged(vec![lat], start.elapsed()).summary())
}

/// Kills A (holding `plan.failover_services` registrations and a `registry register -m A -m B`):
/// how long until they are gone on B, and until the register is back through B.
async fn failover(a: FrontEnd, b: &str, plan: &HaPlan) -> BenchResult<(Duration, Duration)> {
    let FrontEnd {
        dial: a_dial,
        child: mut a_child,
    } = a;
    let ra = Registry::open(&a_dial).await?;
    let attrs = Attributes::new([("bench", "failover")]);
    let mut held = Vec::with_capacity(plan.failover_services);
    for i in 0..plan.failover_services {
        held.push(ra.register(&format!("tcp!fo!{i}"), &attrs, false).await?);
    }
    let exe = std::env::current_exe()?;
    let mut register = Command::new(exe)
        .args([
            "register",
            "-m",
            &a_dial,
            "-m",
            b,
            "tcp!moving!1",
            "bench",
            "moving",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let err = register.stderr.take().ok_or("register has no stderr")?;
    let mut lines = BufReader::new(err).lines();
    while let Some(l) = lines.next_line().await? {
        if l.contains("registered") {
            break;
        }
    }
    let rb = Registry::open(b).await?;
    let deadline = Duration::from_secs(plan.ttl + 30);
    let killed = Instant::now();
    a_child.start_kill()?;
    let back = tokio::spawn(async move {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("again") {
                return Some(killed.elapsed());
            }
        }
        None
    });
    let gone = loop {
        if rb.find(&[("bench", "failover")]).await?.is_empty() {
            break killed.elapsed();
        }
        if killed.elapsed() > deadline {
            return Err("A's registrations still on B".into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let back = tokio::time::timeout(deadline, back)
        .await
        .map_err(|_| "register never came back")??
        .ok_or("register ended")?;
    drop(held);
    Ok((gone, back))
}
