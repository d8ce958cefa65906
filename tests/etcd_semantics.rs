//! The registry with its catalog in etcd (`registry serve --etcd`), against a real three-member
//! cluster started by this test binary: the whole registry(4) semantics suite on one front-end,
//! then what only several front-ends can show (one name everywhere, changes seen everywhere).

mod common;

use common::etcd;
use registries::registry::{EtcdConfig, RunningServer, Server};
use registries::styx::{DMDIR, Fid, ORCLOSE, ORDWR, OREAD, OWRITE, QTDIR};
use std::time::Duration;

/// A front-end on a fresh prefix of the shared cluster, or `None` when etcd is not installed.
async fn front_end(prefix: &str) -> Option<RunningServer> {
    let cluster = etcd::shared()?;
    let endpoints = cluster.lock().unwrap().endpoint_list();
    let mut cfg = EtcdConfig::new(endpoints);
    cfg.prefix = prefix.to_string();
    let server = Server::new().with_etcd(&cfg).await.expect("etcd answers");
    Some(common::registry::start_server(server).await)
}

/// The suite's fresh registry: a front-end on a prefix of its own. Without etcd (outside CI)
/// the suite runs against the in-memory server, so that it still says something.
async fn start() -> RunningServer {
    match front_end(&etcd::fresh_prefix()).await {
        Some(s) => s,
        None => common::registry::start().await,
    }
}

#[macro_use]
#[path = "semantics/suite.rs"]
mod suite;
use suite::*;

registry_semantics!();

/// Two front-ends sharing one fresh catalog, or `None` without etcd.
async fn pair() -> Option<(RunningServer, RunningServer, String)> {
    let prefix = etcd::fresh_prefix();
    let a = front_end(&prefix).await?;
    let b = front_end(&prefix).await?;
    Some((a, b, prefix))
}

/// Waits until `root`'s `index` is `want`: a change made on another front-end arrives through
/// etcd's watch, within milliseconds but not at once.
async fn index_becomes(root: &Fid, want: &str) {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let got = index(root).await;
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "index is {got:?}, not {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_front_end_is_seen_and_wakes_event_on_the_other() {
    let Some((a, b, _)) = pair().await else {
        return;
    };
    let (_ca, ra) = connect(&a, "alice").await;
    let (_cb, rb) = connect(&b, "bob").await;
    let ev = open(&rb, "event", OREAD).await;
    let svc = open(&ra, "new", OWRITE).await;
    svc.write(0, b"tcp!h!1 proto styx").await.unwrap();
    // The writer's front-end shows its own write at once.
    assert_eq!(index(&ra).await, "tcp!h!1 proto styx\n");
    let woke = tokio::time::timeout(T, ev.read(0, 100))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&woke[..], b"00000001\n");
    assert_eq!(index(&rb).await, "tcp!h!1 proto styx\n");
    assert_eq!(find(&rb, "proto styx").await, "tcp!h!1 proto styx\n");
    // The owner is the same everywhere: bob may not remove it, alice may, from either side.
    let f = rb.walk(&["tcp!h!1"]).await.unwrap();
    assert_eq!(f.stat().await.unwrap().uid, "alice");
    assert_eq!(remote(f.remove().await.unwrap_err()), "permission denied");
    svc.write(0, b"load 3").await.unwrap();
    index_becomes(&rb, "tcp!h!1 load 3 proto styx\n").await;
    // The clunk of `new` on A unregisters everywhere; a persistent one stays.
    let p = open(&ra, "new", OWRITE).await;
    p.write(0, b"tcp!h!2 persist 1").await.unwrap();
    svc.clunk().await.unwrap();
    p.clunk().await.unwrap();
    index_becomes(&rb, "tcp!h!2 persist 1\n").await;
    let (_cb2, rb2) = connect(&b, "alice").await;
    let f = rb2.walk(&["tcp!h!2"]).await.unwrap();
    f.remove().await.unwrap();
    index_becomes(&ra, "").await;
}

#[tokio::test]
async fn one_name_wins_when_two_front_ends_race_for_it() {
    let Some((a, b, _)) = pair().await else {
        return;
    };
    let (_ca, ra) = connect(&a, "alice").await;
    let (_cb, rb) = connect(&b, "bob").await;
    for round in 0..200 {
        let name = format!("tcp!race!{round}");
        let fa = open(&ra, "new", OWRITE).await;
        let fb = open(&rb, "new", OWRITE).await;
        let (x, y) = tokio::join!(fa.write(0, name.as_bytes()), fb.write(0, name.as_bytes()));
        let wins = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {x:?} {y:?}");
        let loser = if x.is_err() { x } else { y };
        assert_eq!(remote(loser.unwrap_err()), "duplicate service name");
        fa.clunk().await.unwrap();
        fb.clunk().await.unwrap();
    }
    index_becomes(&ra, "").await;
    index_becomes(&rb, "").await;
}

#[tokio::test]
async fn foreign_keys_under_the_prefix_are_ignored() {
    let Some(cluster) = etcd::shared() else {
        return;
    };
    let prefix = etcd::fresh_prefix();
    {
        let c = cluster.lock().unwrap();
        c.put(&format!("{prefix}svc/junk"), "not a record");
        c.put(
            &format!("{prefix}svc/tcp!x!1"),
            "registry/1 o 1 1 1 1 tcp!x!2 a b",
        );
        c.put(&format!("{prefix}other"), "whatever");
    }
    let a = front_end(&prefix).await.unwrap();
    let (_c, root) = connect(&a, "alice").await;
    assert_eq!(index(&root).await, "");
    cluster
        .lock()
        .unwrap()
        .put(&format!("{prefix}svc/more"), "\u{1}\u{2}");
    let svc = open(&root, "new", OWRITE).await;
    svc.write(0, b"tcp!h!1 a b").await.unwrap();
    assert_eq!(index(&root).await, "tcp!h!1 a b\n");
}

#[tokio::test]
async fn an_unreachable_etcd_is_a_clear_error_at_start() {
    let mut cfg = EtcdConfig::new(vec!["127.0.0.1:1".into()]);
    cfg.deadline = Duration::from_secs(1);
    let started = std::time::Instant::now();
    let err = Server::new().with_etcd(&cfg).await.unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        err.starts_with("etcd: etcd unavailable: 127.0.0.1:1"),
        "{err}"
    );
    let err = Server::new()
        .with_etcd(&EtcdConfig::new(vec!["https://127.0.0.1:2379".into()]))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("TLS is not supported"), "{err}");
}

#[tokio::test]
async fn a_feed_watcher_resumes_on_another_front_end_without_a_gap_or_a_repeat() {
    use futures_util::StreamExt;
    use registries::{Attributes, Registry};
    let Some((a, b, _)) = pair().await else {
        return;
    };
    let on_a = Registry::open(&a.local_addrs()[0].to_string())
        .await
        .unwrap();
    let on_b = Registry::open(&b.local_addrs()[0].to_string())
        .await
        .unwrap();
    let attrs = Attributes::new([("k", "v")]);
    let mut w = on_a.changes(&[("k", "v")], None).await.unwrap();
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(
            on_a.register(&format!("tcp!s!{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let mut last = 0;
    for _ in 0..3 {
        last = tokio::time::timeout(T, w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
            .revision;
    }
    drop(w);
    // Changes made through B meanwhile; the watcher comes back on B, from where it left A.
    for i in 3..6 {
        held.push(
            on_b.register(&format!("tcp!s!{i}"), &attrs, false)
                .await
                .unwrap(),
        );
    }
    let mut resumed = on_b.changes(&[("k", "v")], Some(last + 1)).await.unwrap();
    let mut revisions = Vec::new();
    for i in 3..6 {
        let ev = tokio::time::timeout(T, resumed.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(ev.service.addr, format!("tcp!s!{i}"));
        assert!(ev.revision > last, "{} after {last}", ev.revision);
        revisions.push(ev.revision);
        last = ev.revision;
    }
    let quiet = tokio::time::timeout(Duration::from_millis(300), resumed.next()).await;
    assert!(
        quiet.is_err(),
        "a repeated or extra change after {revisions:?}"
    );
}

/// A thousand registrations dropped at once on a front-end whose clunks each wait for etcd: the
/// Tclunks outrun the server's limit of outstanding requests, and none is refused, so every
/// service goes.
#[tokio::test]
async fn many_registrations_dropped_at_once_all_go_from_etcd() {
    let Some(server) = front_end(&etcd::fresh_prefix()).await else {
        return;
    };
    let addr = server.local_addrs()[0].to_string();
    common::registry::drop_many_at_once(&addr, 1000, Duration::from_secs(60)).await;
}
