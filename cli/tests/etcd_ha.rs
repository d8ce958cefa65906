//! `registry serve --etcd` as processes on a real three-member etcd cluster started by each test:
//! a front-end killed with SIGKILL, etcd members and the leader killed, the whole cluster
//! restarted, and `registry register` moving to the next `-m` front-end.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::etcd::{self, Cluster};
use futures_util::StreamExt;
use process::{Running, registry};
use registries::{Attributes, Registry};
use std::time::{Duration, Instant};

/// The lease TTL of these tests' front-ends, in seconds.
const TTL: u64 = 2;

/// A `registry serve --etcd` front-end on a free port: it and its 9P address.
async fn front_end(cluster: &Cluster, prefix: &str) -> (Running, String) {
    front_end_with_ttl(cluster, prefix, TTL).await
}

/// [`front_end`] with a lease TTL of `ttl` seconds.
async fn front_end_with_ttl(cluster: &Cluster, prefix: &str, ttl: u64) -> (Running, String) {
    process::etcd_front_end(&cluster.endpoints(), prefix, ttl).await
}

/// A fresh cluster and two front-ends on one prefix, A with a lease of `ttl_a` seconds and B
/// with [`TTL`]; `None` (the test skips) without etcd.
async fn pair(ttl_a: u64) -> Option<(Cluster, (Running, String), (Running, String))> {
    if !etcd::available() {
        return None;
    }
    let cluster = Cluster::start(3);
    let prefix = etcd::fresh_prefix();
    let a = front_end_with_ttl(&cluster, &prefix, ttl_a).await;
    let b = front_end(&cluster, &prefix).await;
    Some((cluster, a, b))
}

/// The names registered at `addr`, sorted.
async fn names(addr: &str) -> Vec<String> {
    let reg = Registry::open(addr).await.expect("front-end answers");
    let mut names: Vec<String> = reg
        .services()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.addr)
        .collect();
    names.sort();
    names
}

/// Waits until `f` holds, for at most `limit`; how long it took.
async fn until(limit: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_killed_front_ends_registrations_go_within_the_ttl_and_persistent_ones_stay() {
    let Some((_cluster, (mut a, addr_a), (_b, addr_b))) = pair(TTL).await else {
        return;
    };
    let reg = Registry::open(&addr_a).await.unwrap();
    let mut held = Vec::new();
    for i in 0..1000 {
        let attrs = Attributes::new([("n", i.to_string())]);
        held.push(
            reg.register(&format!("tcp!h!{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    for i in 0..5 {
        let attrs = Attributes::new([("kept", "yes")]);
        held.push(
            reg.register(&format!("tcp!p!{i}"), &attrs, true)
                .await
                .unwrap(),
        );
    }
    let on_b = Registry::open(&addr_b).await.unwrap();
    until(Duration::from_secs(30), "1,005 services on B", async || {
        on_b.services().await.unwrap().len() == 1005
    })
    .await;
    let mut events = on_b.events().await.unwrap();
    a.kill9().await;
    let took = until(
        Duration::from_secs(TTL + 20),
        "A's services gone on B",
        async || on_b.services().await.unwrap().len() == 5,
    )
    .await;
    eprintln!("A's 1,000 registrations gone on B {took:?} after kill -9 (TTL {TTL} s)");
    tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("B's event reader woke")
        .unwrap()
        .unwrap();
    let left = names(&addr_b).await;
    assert_eq!(
        left,
        (0..5).map(|i| format!("tcp!p!{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn registers_and_finds_survive_the_loss_of_a_member_and_of_the_leader() {
    if !etcd::available() {
        return;
    }
    let mut cluster = Cluster::start(3);
    let prefix = etcd::fresh_prefix();
    let (_a, addr) = front_end(&cluster, &prefix).await;
    let reg = Registry::open(&addr).await.unwrap();
    let mut held = Vec::new();
    let mut n = 0;
    let mut round = async |held: &mut Vec<_>, what: &str| {
        for _ in 0..20 {
            let name = format!("tcp!h!{n}");
            n += 1;
            let attrs = Attributes::new([("round", what)]);
            held.push(
                reg.register(&name, &attrs, false)
                    .await
                    .unwrap_or_else(|e| panic!("{what}: {e}")),
            );
        }
        let found = reg.find(&[("round", what)]).await.unwrap();
        assert_eq!(found.len(), 20, "{what}");
    };
    round(&mut held, "all").await;
    let follower = (cluster.leader() + 1) % 3;
    cluster.kill(follower);
    round(&mut held, "follower-lost").await;
    cluster.restart(follower);
    cluster.wait_healthy();
    let leader = cluster.leader();
    cluster.kill(leader);
    round(&mut held, "leader-lost").await;
    cluster.restart(leader);
    assert_eq!(names(&addr).await.len(), 60);
}

#[tokio::test]
async fn persistent_entries_come_back_after_the_whole_cluster_restarts() {
    if !etcd::available() {
        return;
    }
    let mut cluster = Cluster::start(3);
    let prefix = etcd::fresh_prefix();
    let (mut a, addr) = front_end(&cluster, &prefix).await;
    let reg = Registry::open(&addr).await.unwrap();
    for i in 0..10 {
        let attrs = Attributes::new([("kept", "yes")]);
        let r = reg
            .register(&format!("tcp!p!{i}"), &attrs, true)
            .await
            .unwrap();
        drop(r);
    }
    a.kill9().await;
    cluster.restart_all();
    let (_b, addr) = front_end(&cluster, &prefix).await;
    assert_eq!(names(&addr).await.len(), 10);
}

#[tokio::test]
async fn register_moves_to_the_next_front_end_when_its_own_is_killed() {
    let Some((_cluster, (mut a, addr_a), (_b, addr_b))) = pair(TTL).await else {
        return;
    };
    let (register, _) = Running::start(
        &[
            "register",
            "-m",
            &addr_a,
            "-m",
            &addr_b,
            "tcp!moving!1",
            "k",
            "v",
        ],
        "registered",
    )
    .await;
    assert_eq!(names(&addr_b).await, ["tcp!moving!1"]);
    a.kill9().await;
    let killed = Instant::now();
    // B refuses the name while A's lease lives ("duplicate service name"); register retries.
    register.wait_said("again").await;
    let took = killed.elapsed();
    eprintln!("back through B {took:?} after kill -9 of A (TTL {TTL} s)");
    assert!(took < Duration::from_secs(TTL + 10), "{took:?}");
    assert_eq!(names(&addr_b).await, ["tcp!moving!1"]);
}

#[tokio::test]
async fn an_unreachable_etcd_endpoint_is_a_clear_error_and_a_non_zero_exit() {
    let started = Instant::now();
    let out = registry(&[
        "serve",
        "--etcd",
        "127.0.0.1:1",
        "--etcd-timeout",
        "1",
        "--listen",
        "tcp!127.0.0.1!0",
    ])
    .output()
    .await
    .unwrap();
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("etcd unavailable: 127.0.0.1:1"), "{err}");
}

/// Sends `sig` to the process `pid`.
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid this test started.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, sig) }, 0);
}

#[tokio::test]
async fn a_front_end_paused_past_its_lease_closes_its_clients_connections() {
    let Some((_cluster, (a, addr_a), (_b, addr_b))) = pair(TTL).await else {
        return;
    };
    let reg = Registry::open(&addr_a).await.unwrap();
    let mut kept = reg
        .register("tcp!kept!1", &Attributes::new([("k", "1")]), false)
        .await
        .unwrap();
    let _taken = reg
        .register("tcp!taken!1", &Attributes::new([("k", "1")]), false)
        .await
        .unwrap();
    assert_eq!(names(&addr_b).await, ["tcp!kept!1", "tcp!taken!1"]);
    signal(a.pid(), libc::SIGSTOP);
    until(
        Duration::from_secs(TTL + 20),
        "A's lease lapsed on B",
        async || names(&addr_b).await.is_empty(),
    )
    .await;
    let on_b = Registry::open(&addr_b).await.unwrap();
    let _thief = on_b
        .register("tcp!taken!1", &Attributes::new([("k", "2")]), false)
        .await
        .unwrap();
    signal(a.pid(), libc::SIGCONT);
    // A knows its lease went unconfirmed for the TTL: as a ZooKeeper session expiry does, it
    // closes its clients' connections rather than tell them their registrations are held.
    a.wait_said("closing").await;
    let err = kept
        .update(&Attributes::new([("k", "3")]))
        .await
        .unwrap_err();
    assert!(matches!(err, registries::client::Error::Io(_)), "{err}");
    // A client that connects again registers again, and finds the name B's client took.
    until(
        Duration::from_secs(20),
        "registering through A again",
        async || match Registry::open(&addr_a).await {
            Ok(again) => match again
                .register("tcp!kept!1", &Attributes::new([("k", "3")]), false)
                .await
            {
                Ok(held) => {
                    std::mem::forget(held);
                    std::mem::forget(again);
                    true
                }
                Err(_) => false,
            },
            Err(_) => false,
        },
    )
    .await;
    let again = Registry::open(&addr_a).await.unwrap();
    let err = again
        .register("tcp!taken!1", &Attributes::default(), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("duplicate service name"), "{err}");
    until(
        Duration::from_secs(10),
        "the new registration seen on B",
        async || on_b.find(&[("k", "3")]).await.unwrap().len() == 1,
    )
    .await;
}

#[tokio::test]
async fn without_etcd_a_front_end_answers_reads_and_refuses_writes_until_it_is_back() {
    if !etcd::available() {
        return;
    }
    let mut cluster = Cluster::start(3);
    let prefix = etcd::fresh_prefix();
    let (a, addr) = front_end(&cluster, &prefix).await;
    let reg = Registry::open(&addr).await.unwrap();
    let _held = reg
        .register("tcp!h!1", &Attributes::new([("k", "1")]), true)
        .await
        .unwrap();
    for i in 0..3 {
        cluster.kill(i);
    }
    assert_eq!(names(&addr).await, ["tcp!h!1"]);
    // Refused, when the front-end knows the request never reached etcd; else no answer (a
    // request on a connection to a member that died may have reached it): the write waits
    // until the front-end finds out, and the lease's expiry closes the connection first.
    let err = reg
        .register("tcp!h!2", &Attributes::default(), false)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("registry store unavailable")
            || matches!(err, registries::client::Error::Io(_)),
        "{err}"
    );
    a.wait_said("refusing changes until etcd answers").await;
    // Past the lease TTL the front-end closes its clients' connections.
    a.wait_said("closing").await;
    until(
        Duration::from_secs(10),
        "the connection closed",
        async || reg.services().await.is_err(),
    )
    .await;
    for i in 0..3 {
        cluster.restart(i);
    }
    cluster.wait_healthy();
    until(
        Duration::from_secs(30),
        "writes accepted again",
        async || match Registry::open(&addr).await {
            // A duplicate: an attempt that got no answer went through.
            Ok(reg) => matches!(
                reg.register("tcp!h!3", &Attributes::default(), true).await,
                Ok(_)
                    | Err(registries::client::Error::Registry(
                        registries::wire::Diagnostic::Duplicate
                    ))
            ),
            Err(_) => false,
        },
    )
    .await;
    assert_eq!(names(&addr).await, ["tcp!h!1", "tcp!h!3"]);
}

#[tokio::test]
async fn a_clean_stop_takes_its_registrations_away_at_once() {
    let Some((_cluster, (a, addr_a), (_b, addr_b))) = pair(60).await else {
        return;
    };
    let reg = Registry::open(&addr_a).await.unwrap();
    let _held = reg
        .register("tcp!h!1", &Attributes::default(), false)
        .await
        .unwrap();
    let _kept = reg
        .register("tcp!p!1", &Attributes::default(), true)
        .await
        .unwrap();
    assert_eq!(names(&addr_b).await, ["tcp!h!1", "tcp!p!1"]);
    signal(a.pid(), libc::SIGINT);
    // Far sooner than the 60 s lease would lapse.
    until(
        Duration::from_secs(20),
        "A's registration gone",
        async || names(&addr_b).await == ["tcp!p!1"],
    )
    .await;
}

/// A client that lets go of everything just as its front-end comes back from a pause past its
/// lease (while the front-end registers again what it held) leaves nothing behind.
#[tokio::test]
async fn a_client_gone_while_its_paused_front_end_recovers_leaves_nothing_behind() {
    let Some((_cluster, (a, addr_a), (_b, addr_b))) = pair(TTL).await else {
        return;
    };
    for (round, delay_ms) in [0u64, 30, 300].into_iter().enumerate() {
        let reg = Registry::open(&addr_a).await.unwrap();
        let mut held = Vec::new();
        for i in 0..150 {
            let name = format!("tcp!r{round}-{i}!1");
            held.push(
                reg.register(&name, &Attributes::new([("k", "1")]), false)
                    .await
                    .unwrap(),
            );
        }
        until(Duration::from_secs(10), "all on B", async || {
            names(&addr_b).await.len() == 150
        })
        .await;
        signal(a.pid(), libc::SIGSTOP);
        until(Duration::from_secs(TTL + 20), "lapsed on B", async || {
            names(&addr_b).await.is_empty()
        })
        .await;
        signal(a.pid(), libc::SIGCONT);
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        drop(held);
        drop(reg);
        let r = tokio::time::timeout(Duration::from_secs(15), async {
            loop {
                let (na, nb) = (names(&addr_a).await, names(&addr_b).await);
                if na.is_empty() && nb.is_empty() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        if r.is_err() {
            eprintln!("A said:\n{}", a.said());
            panic!(
                "round {round} (drop {delay_ms} ms after SIGCONT): A lists {}, B lists {}",
                names(&addr_a).await.len(),
                names(&addr_b).await.len()
            );
        }
    }
}
