//! The registries(2) client against our registry(4) server over loopback TCP.

mod common;

use common::within;

use futures_util::StreamExt;
use registries::client::{Attributes, Change, Error, Monitor, Registry, Service};
use registries::wire::Diagnostic;
use std::time::Duration;

/// A registry connection as `user`, not mounted anywhere.
async fn connect(addr: &str, user: &str) -> Registry {
    let svc = Service::new(addr, Attributes::new([("auth", "none")]));
    let a = svc.attach(None, None).await.unwrap();
    Registry::connect_stream(a.fd, Some(user)).await.unwrap()
}

/// The monitor's next change, which must come.
async fn next(m: &mut Monitor) -> Change {
    within(m.next()).await.unwrap().unwrap()
}

/// Waits until `find(filter)` on `reg` returns `n` services.
async fn until_count(reg: &Registry, filter: &[(&str, &str)], n: usize) {
    within(async {
        while reg.find(filter).await.unwrap().len() != n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

fn names(v: &[Service]) -> Vec<&str> {
    v.iter().map(|s| s.addr.as_str()).collect()
}

#[tokio::test]
async fn register_find_services_unregister() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    assert!(reg.services().await.unwrap().is_empty());
    let a1 = Attributes::new([
        ("proto", "styx"),
        ("description", "it's a test"),
        ("empty", ""),
    ]);
    let _r1 = reg
        .register("tcp!127.0.0.1!7001", &a1, false)
        .await
        .unwrap();
    let a2 = Attributes::new([("proto", "styx"), ("auth", "infpk1")]);
    let _r2 = reg
        .register("tcp!127.0.0.1!7002", &a2, false)
        .await
        .unwrap();

    let all = reg.services().await.unwrap();
    assert_eq!(names(&all), ["tcp!127.0.0.1!7001", "tcp!127.0.0.1!7002"]);
    assert_eq!(all[0].attrs.get("description"), Some("it's a test"));
    assert_eq!(all[0].attrs.get("empty"), Some(""));
    assert_eq!(reg.find(&[("proto", "styx")]).await.unwrap().len(), 2);
    assert_eq!(
        names(&reg.find(&[("auth", "*")]).await.unwrap()),
        ["tcp!127.0.0.1!7002"]
    );
    assert!(reg.find(&[("nosuch", "x")]).await.unwrap().is_empty());
    let none: [(&str, &str); 0] = [];
    assert_eq!(reg.find(&none).await.unwrap().len(), 2);

    // The registry's diagnostics come back verbatim.
    let dup = reg
        .register("tcp!127.0.0.1!7001", &a1, false)
        .await
        .unwrap_err();
    assert_eq!(dup.to_string(), "duplicate service name");
    let bad = reg.register("new", &a1, false).await.unwrap_err();
    assert_eq!(bad.to_string(), "bad service name");
    let bad = reg.register("a/b", &a1, false).await.unwrap_err();
    assert_eq!(bad.to_string(), "bad character in service name");
    assert!(
        matches!(reg.find_raw("odd").await, Err(ref e @ Error::Registry(Diagnostic::OddPairs)) if e.to_string() == "odd attribute/value pairs")
    );

    reg.unregister("tcp!127.0.0.1!7002").await.unwrap();
    assert_eq!(
        names(&reg.services().await.unwrap()),
        ["tcp!127.0.0.1!7001"]
    );
    assert!(reg.unregister("tcp!127.0.0.1!7002").await.is_err());
}

#[tokio::test]
async fn only_the_owner_unregisters() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let alice = connect(&addr, "alice").await;
    let bob = connect(&addr, "bob").await;
    let _r = alice
        .register("svc", &Attributes::default(), false)
        .await
        .unwrap();
    let e = bob.unregister("svc").await.unwrap_err();
    assert_eq!(e.to_string(), "permission denied");
    alice.unregister("svc").await.unwrap();
}

#[tokio::test]
async fn closing_or_dropping_unregisters_unless_persistent() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let other = connect(&addr, "bob").await;

    let r = reg
        .register("closed", &Attributes::default(), false)
        .await
        .unwrap();
    assert_eq!(other.find(&[("x", "*")]).await.unwrap().len(), 0);
    assert_eq!(names(&other.services().await.unwrap()), ["closed"]);
    r.close().await.unwrap();
    assert!(other.services().await.unwrap().is_empty());

    // Dropping clunks in the background: wait for it.
    let r = reg
        .register("dropped", &Attributes::new([("k", "v")]), false)
        .await
        .unwrap();
    drop(r);
    until_count(&other, &[("k", "v")], 0).await;

    // A persistent service outlives its registration and its connection.
    let r = reg
        .register("kept", &Attributes::new([("k", "p")]), true)
        .await
        .unwrap();
    r.close().await.unwrap();
    drop(reg);
    let kept = other.find(&[("k", "p")]).await.unwrap();
    assert_eq!(kept[0].attrs.get("persist"), Some("1"));

    // A registration whose connection goes away vanishes.
    let gone = connect(&addr, "carol").await;
    let held = gone
        .register("vanishing", &Attributes::new([("k", "g")]), false)
        .await
        .unwrap();
    until_count(&other, &[("k", "g")], 1).await;
    drop(held);
    drop(gone);
    until_count(&other, &[("k", "g")], 0).await;
}

#[tokio::test]
async fn updates_change_attributes() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let mut r = reg
        .register("svc", &Attributes::new([("load", "1")]), false)
        .await
        .unwrap();
    r.update(&Attributes::new([("load", "5"), ("extra", "it's")]))
        .await
        .unwrap();
    let s = &reg.find(&[("load", "5")]).await.unwrap()[0];
    assert_eq!(s.attrs.get("extra"), Some("it's"));
    assert!(
        matches!(r.write("odd").await, Err(ref e @ Error::Registry(Diagnostic::OddPairs)) if e.to_string() == "odd attribute/value pairs")
    );
}

#[tokio::test]
async fn events_report_changes() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let mut events = reg.events().await.unwrap();
    let _r = reg
        .register("svc", &Attributes::default(), false)
        .await
        .unwrap();
    let first = within(events.next()).await.unwrap().unwrap();
    let _r2 = reg
        .register("svc2", &Attributes::default(), false)
        .await
        .unwrap();
    let second = within(events.next()).await.unwrap().unwrap();
    assert!(second > first);
    // Dropping a stream with a read held flushes it; the connection stays usable.
    drop(events);
    assert_eq!(reg.services().await.unwrap().len(), 2);
}

/// Streams of one connection share its `event` read, and each still hears every change made
/// after it was made: one made between two changes, one made right after another stream woke,
/// and one made after every other stream was dropped.
#[tokio::test]
async fn event_streams_of_one_connection_miss_nothing() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let writer = connect(&addr, "bob").await;
    let mut first = reg.events().await.unwrap();
    let mut held = Vec::new();
    for round in 0..50 {
        let mut late = reg.clone().events().await.unwrap();
        held.push(
            writer
                .register(&format!("svc{round}"), &Attributes::default(), false)
                .await
                .unwrap(),
        );
        let seen = within(late.next()).await.unwrap().unwrap();
        // The first stream hears the same change, or a later one it coalesced with.
        assert!(within(first.next()).await.unwrap().unwrap() >= seen);
        if round % 10 == 9 {
            drop(first);
            first = reg.events().await.unwrap();
        }
    }
    drop(first);
    let mut fresh = reg.events().await.unwrap();
    held.clear();
    within(fresh.next()).await.unwrap().unwrap();
}

#[tokio::test]
async fn monitor_sees_added_changed_removed() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let _before = reg
        .register("before", &Attributes::new([("proto", "styx")]), false)
        .await
        .unwrap();
    let mut m = Monitor::new(&reg, &[("proto", "styx")]).await.unwrap();

    assert!(matches!(next(&mut m).await, Change::Added(s) if s.addr == "before"));

    let other = connect(&addr, "bob").await;
    let _ignored = other
        .register("ignored", &Attributes::new([("proto", "http")]), false)
        .await
        .unwrap();
    let mut r = other
        .register("svc", &Attributes::new([("proto", "styx")]), false)
        .await
        .unwrap();
    assert!(matches!(next(&mut m).await, Change::Added(s) if s.addr == "svc"));
    r.update(&Attributes::new([("load", "3")])).await.unwrap();
    assert!(matches!(next(&mut m).await, Change::Changed(s) if s.attrs.get("load") == Some("3")));
    r.close().await.unwrap();
    assert!(matches!(next(&mut m).await, Change::Removed(s) if s.addr == "svc"));
    assert_eq!(names(m.services()), ["before"]);
}

/// An update that only moves pairs around (the registry's set reverses the pairs before a
/// replaced one) is no change to a monitor: attributes are compared as a set.
#[tokio::test]
async fn monitor_ignores_reordered_pairs() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let mut r = reg
        .register(
            "svc",
            &Attributes::new([("x", "1"), ("y", "2"), ("z", "3")]),
            false,
        )
        .await
        .unwrap();
    let mut m = Monitor::new(&reg, &[] as &[(&str, &str)]).await.unwrap();
    let first = match next(&mut m).await {
        Change::Added(s) => s,
        c => panic!("expected svc added, got {c:?}"),
    };
    r.update(&Attributes::new([("x", "1")])).await.unwrap();
    let now = &reg.find(&[("x", "1")]).await.unwrap()[0];
    assert_ne!(now.attrs, first.attrs, "the registry reordered the pairs");
    assert!(now.attrs.same_pairs(&first.attrs));
    // The next change the monitor reports is the marker, not a spurious change of svc.
    let _marker = reg
        .register("marker", &Attributes::default(), false)
        .await
        .unwrap();
    assert!(matches!(next(&mut m).await, Change::Added(s) if s.addr == "marker"));
}

#[tokio::test]
async fn mounted_connection_is_found_by_new() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let reg = connect(&addr, "alice").await;
    let dir = format!("/mnt/registry-test-{}", std::process::id());
    reg.mount(&dir).unwrap();
    let _r = reg
        .register("svc", &Attributes::default(), false)
        .await
        .unwrap();
    let again = Registry::new(format!("{dir}/")).await.unwrap();
    assert_eq!(names(&again.services().await.unwrap()), ["svc"]);
    assert!(registries::client::namespace::unmount(&dir));
    assert!(Registry::new(&dir).await.is_err());
}

#[tokio::test]
async fn connect_mounts_at_mnt_registry() {
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let svc = Service::new(&addr, Attributes::new([("auth", "none")]));
    let reg = Registry::connect(Some(&svc), None, None).await.unwrap();
    assert_eq!(reg.dir(), std::path::Path::new("/mnt/registry"));
    assert!(registries::client::namespace::is_mounted("/mnt/registry"));
}

#[tokio::test]
async fn over_a_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let addr =
        common::registry::spawn_at(&format!("unix!{}", dir.path().join("reg").display())).await;
    let reg = connect(&addr, "alice").await;
    let _r = reg
        .register("svc", &Attributes::default(), false)
        .await
        .unwrap();
    assert_eq!(names(&reg.services().await.unwrap()), ["svc"]);
}

#[tokio::test]
async fn attach_errors() {
    let e = Registry::connect(
        Some(&Service::new("tcp!127.0.0.1!1", Attributes::default())),
        None,
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, Error::Dial(_)), "{e}");
    let addr = common::registry::spawn_at("tcp!127.0.0.1!0").await;
    let svc = Service::new(&addr, Attributes::new([("auth", "infpk1")]));
    let e = svc.attach(None, None).await.unwrap_err();
    assert!(matches!(e, Error::Auth(_)), "{e}");
}

/// A long answer reads the same whatever msize the registry grants: our client asks for 64 KiB
/// messages, a registry limited to Inferno's 8216 answers in 8 KiB ones.
#[tokio::test]
async fn a_long_answer_reads_the_same_at_either_msize() {
    use registries::registry::Server;
    use registries::styx::server::Limits;
    let mut answers = Vec::new();
    for msize in [Limits::default().msize, 8216] {
        let limits = Limits {
            msize,
            ..Limits::default()
        };
        let running = common::registry::start_server(Server::new().with_limits(limits)).await;
        let addr = running.local_addrs()[0].to_string();
        tokio::spawn(running.wait());
        let reg = connect(&addr, "alice").await;
        let mut held = Vec::new();
        for i in 0..3000 {
            let attrs = Attributes::new([("proto", "styx"), ("n", &i.to_string())]);
            held.push(
                reg.register(&format!("tcp!h!{i}"), &attrs, false)
                    .await
                    .unwrap(),
            );
        }
        let all = reg.find(&[("proto", "*")]).await.unwrap();
        assert_eq!(all.len(), 3000);
        answers.push(all);
    }
    assert_eq!(answers[0], answers[1]);
}
