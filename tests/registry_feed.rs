//! The change feed (spec/feed.md): revisions, server-side filtering, resume without loss or
//! repetition, compaction and resynchronisation, slow readers, and the fallback to `event` +
//! `find` against a registry without it. Inferno's own tree is unchanged (the byte-identity
//! tests of registry_replay.rs and client_limbo_replay.rs hold it).

mod common;

use common::within;
use futures_util::StreamExt;
use registries::client::{Change, ChangeEvent, ChangeKind, Changes, Error, Monitor, Position};
use registries::registry::{FeedLimits, RunningServer, Server};
use registries::styx::{Client, ORDWR, OREAD};
use registries::{Attributes, Registry};

async fn client(server: &RunningServer) -> Registry {
    Registry::open(&server.local_addrs()[0].to_string())
        .await
        .unwrap()
}

fn attrs(pairs: &[(&str, &str)]) -> Attributes {
    Attributes::new(pairs.iter().copied())
}

async fn next(changes: &mut Changes) -> ChangeEvent {
    within(changes.next()).await.expect("an event").unwrap()
}

fn seen(ev: &ChangeEvent) -> (ChangeKind, String) {
    (ev.kind, ev.service.to_string())
}

#[tokio::test]
async fn changes_carry_revisions_and_are_filtered_by_the_registry() {
    let server = common::registry::start().await;
    let reg = client(&server).await;
    let mut a = reg.changes(&[("proto", "a")], None).await.unwrap();
    let mut all = reg.changes(&[] as &[(&str, &str)], None).await.unwrap();

    let b = reg
        .register("tcp!b!1", &attrs(&[("proto", "b")]), false)
        .await
        .unwrap();
    let x = reg
        .register("tcp!a!1", &attrs(&[("proto", "a")]), false)
        .await
        .unwrap();
    let first = next(&mut a).await;
    assert_eq!(seen(&first), (ChangeKind::Added, "tcp!a!1 proto a".into()));
    let e1 = next(&mut all).await;
    let e2 = next(&mut all).await;
    assert_eq!(seen(&e1), (ChangeKind::Added, "tcp!b!1 proto b".into()));
    assert_eq!(e2.revision, e1.revision + 1, "no gap in the revisions");
    assert_eq!(e2.revision, first.revision);
    b.close().await.unwrap();
    x.close().await.unwrap();
    // The watcher of proto a sees only its service go; the other sees both.
    let gone = next(&mut a).await;
    assert_eq!(seen(&gone), (ChangeKind::Removed, "tcp!a!1 proto a".into()));
    assert_eq!(gone.revision, first.revision + 2);
    assert_eq!(next(&mut all).await.kind, ChangeKind::Removed);
    assert_eq!(next(&mut all).await.kind, ChangeKind::Removed);
}

#[tokio::test]
async fn an_update_moves_a_service_into_and_out_of_a_query() {
    let server = common::registry::start().await;
    let reg = client(&server).await;
    let mut w = reg.changes(&[("proto", "a")], None).await.unwrap();
    let mut held = reg
        .register("tcp!s!1", &attrs(&[("proto", "x")]), false)
        .await
        .unwrap();
    held.update(&attrs(&[("proto", "a")])).await.unwrap();
    assert_eq!(
        seen(&next(&mut w).await),
        (ChangeKind::Added, "tcp!s!1 proto a".into())
    );
    held.update(&attrs(&[("load", "5")])).await.unwrap();
    assert_eq!(
        seen(&next(&mut w).await),
        (ChangeKind::Changed, "tcp!s!1 load 5 proto a".into())
    );
    held.update(&attrs(&[("proto", "y")])).await.unwrap();
    // Removed, as it last matched.
    assert_eq!(
        seen(&next(&mut w).await),
        (ChangeKind::Removed, "tcp!s!1 load 5 proto a".into())
    );
}

#[tokio::test]
async fn resuming_loses_and_repeats_nothing() {
    let server = common::registry::start().await;
    let reg = client(&server).await;
    let mut w = reg.changes(&[("k", "v")], None).await.unwrap();
    let mut held = Vec::new();
    for i in 0..3 {
        held.push(
            reg.register(&format!("tcp!s!{i}"), &attrs(&[("k", "v")]), false)
                .await
                .unwrap(),
        );
    }
    let mut last = 0;
    for _ in 0..3 {
        last = next(&mut w).await.revision;
    }
    // The watcher goes away (its connection with it); changes go on meanwhile.
    drop(w);
    let other = client(&server).await;
    for i in 3..6 {
        held.push(
            other
                .register(&format!("tcp!s!{i}"), &attrs(&[("k", "v")]), false)
                .await
                .unwrap(),
        );
    }
    let mut resumed = other.changes(&[("k", "v")], Some(last + 1)).await.unwrap();
    for i in 3..6 {
        let ev = next(&mut resumed).await;
        assert_eq!(ev.revision, last + 1 + (i - 3));
        assert_eq!(ev.service.addr, format!("tcp!s!{i}"));
    }
    // Nothing more until something happens.
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(200), resumed.next()).await;
    assert!(quiet.is_err(), "a repeated or extra change");
}

#[tokio::test]
async fn an_old_revision_is_refused_and_a_monitor_resynchronises() {
    let limits = FeedLimits {
        history: 5,
        ..FeedLimits::default()
    };
    let server = common::registry::start_server(Server::new().with_feed_limits(limits)).await;
    let reg = client(&server).await;
    let mut mon = Monitor::new(&reg, &[("k", "v")]).await.unwrap();
    let keep = reg
        .register("tcp!keep!1", &attrs(&[("k", "v")]), false)
        .await
        .unwrap();
    let gone = reg
        .register("tcp!gone!1", &attrs(&[("k", "v")]), false)
        .await
        .unwrap();
    for _ in 0..2 {
        within(mon.next()).await.unwrap().unwrap();
    }
    let position: Position = mon.position();
    drop(mon);
    // More than the history holds happens while nobody watches.
    gone.close().await.unwrap();
    let mut churn = Vec::new();
    for i in 0..10 {
        churn.push(
            reg.register(&format!("tcp!other!{i}"), &attrs(&[("k", "w")]), false)
                .await
                .unwrap(),
        );
    }
    let added = reg
        .register("tcp!new!1", &attrs(&[("k", "v")]), false)
        .await
        .unwrap();

    let from = position.revision.unwrap() + 1;
    let err = reg.changes(&[("k", "v")], Some(from)).await.unwrap_err();
    let Error::Compacted { oldest } = err else {
        panic!("not compacted: {err}");
    };
    assert!(oldest > from, "{oldest} > {from}");

    // A monitor resumed from the old position reports the difference, nothing else.
    let mut mon = Monitor::resume(&reg, &[("k", "v")], position)
        .await
        .unwrap();
    let mut got = vec![
        within(mon.next()).await.unwrap().unwrap(),
        within(mon.next()).await.unwrap().unwrap(),
    ];
    got.sort_by_key(|c| format!("{c:?}"));
    assert!(
        matches!(&got[0], Change::Added(s) if s.addr == "tcp!new!1"),
        "{got:?}"
    );
    assert!(
        matches!(&got[1], Change::Removed(s) if s.addr == "tcp!gone!1"),
        "{got:?}"
    );
    let names: Vec<&str> = mon.services().iter().map(|s| s.addr.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.contains(&"tcp!keep!1") && names.contains(&"tcp!new!1"));
    drop((keep, added, churn));
}

/// A 9P client of `server` on a connection of its own.
async fn raw_client(server: &RunningServer) -> Client {
    let Some(registries::net::Addr::Tcp { host, port }) = server.local_addrs().first().cloned()
    else {
        panic!("not tcp");
    };
    let s = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .unwrap();
    Client::connect(s).await.unwrap()
}

/// The feed's `watch` file, opened and started on its own 9P connection, and the feed root it
/// was walked from (the watcher lasts as long as they do).
async fn raw_watch(
    server: &RunningServer,
    request: &str,
) -> (registries::styx::Fid, registries::styx::Fid) {
    let client = raw_client(server).await;
    let root = client.attach("reader", "feed").await.unwrap();
    let mut w = root.walk(&["watch"]).await.unwrap();
    w.open(ORDWR).await.unwrap();
    w.write(0, request.as_bytes()).await.unwrap();
    (root, w)
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_told_and_a_monitor_catches_up() {
    let limits = FeedLimits {
        queue: 10,
        ..FeedLimits::default()
    };
    let server = common::registry::start_server(Server::new().with_feed_limits(limits)).await;
    let reg = client(&server).await;
    let (_root, slow) = raw_watch(&server, "now").await;
    let mut mon = Monitor::new(&reg, &[] as &[(&str, &str)]).await.unwrap();
    let mut held = Vec::new();
    for i in 0..50 {
        held.push(
            reg.register(&format!("tcp!s!{i}"), &attrs(&[("n", "1")]), false)
                .await
                .unwrap(),
        );
    }
    // The raw reader never read: it is told it fell behind, not sent 50 changes.
    let err = within(slow.read(0, 8192)).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("compacted: oldest revision kept is"),
        "{err}"
    );
    // The monitor, read only now, resynchronises and ends with every service, each once.
    let mut names = std::collections::BTreeSet::new();
    while names.len() < 50 {
        match within(mon.next()).await.unwrap().unwrap() {
            Change::Added(s) => assert!(names.insert(s.addr.clone()), "twice: {}", s.addr),
            c => panic!("unexpected {c:?}"),
        }
    }
    assert_eq!(mon.services().len(), 50);
}

#[tokio::test]
async fn the_feed_is_outside_inferno_s_tree() {
    let server = common::registry::start().await;
    let client = raw_client(&server).await;
    // A plain attach: Inferno's files, and no `watch`.
    assert_eq!(
        root_names(&client, "").await,
        ["new", "index", "find", "event"]
    );
    assert!(
        client
            .attach("me", "")
            .await
            .unwrap()
            .walk(&["watch"])
            .await
            .is_err()
    );
    // The feed's tree holds `watch` alone.
    assert_eq!(root_names(&client, "feed").await, ["watch"]);
}

/// The names in the root directory of the tree attach name `aname` gives.
async fn root_names(client: &Client, aname: &str) -> Vec<String> {
    let mut root = client.attach("me", aname).await.unwrap();
    root.open(OREAD).await.unwrap();
    let dir = root.read_dir().await.unwrap();
    dir.into_iter().map(|d| d.name).collect()
}

#[tokio::test]
async fn without_a_feed_the_monitor_falls_back_to_event_and_find() {
    let server = common::registry::start_server(Server::new().without_feed()).await;
    let reg = client(&server).await;
    let err = reg.changes(&[] as &[(&str, &str)], None).await.unwrap_err();
    assert!(matches!(err, Error::NoFeed(_)), "{err}");
    let mut mon = Monitor::new(&reg, &[("k", "v")]).await.unwrap();
    let held = reg
        .register("tcp!a!1", &attrs(&[("k", "v")]), false)
        .await
        .unwrap();
    let c = within(mon.next()).await.unwrap().unwrap();
    assert!(
        matches!(&c, Change::Added(s) if s.addr == "tcp!a!1"),
        "{c:?}"
    );
    assert_eq!(mon.revision(), None);
    held.close().await.unwrap();
    let c = within(mon.next()).await.unwrap().unwrap();
    assert!(
        matches!(&c, Change::Removed(s) if s.addr == "tcp!a!1"),
        "{c:?}"
    );
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let server = common::registry::start().await;
    let client = raw_client(&server).await;
    let root = client.attach("me", "feed").await.unwrap();
    let mut w = root.walk(&["watch"]).await.unwrap();
    w.open(ORDWR).await.unwrap();
    let e = w.read(0, 100).await.unwrap_err();
    assert!(e.to_string().contains("no feed request written"), "{e}");
    for bad in ["", "later", "now odd"] {
        assert!(w.write(0, bad.as_bytes()).await.is_err(), "{bad:?}");
    }
    w.write(0, b"snapshot").await.unwrap();
    let e = w.write(0, b"now").await.unwrap_err();
    assert!(e.to_string().contains("already started"), "{e}");
    let text = w.read(0, 100).await.unwrap();
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(text.ends_with(" synced\n"), "{text:?}");
}
