//! Spreading work over the services a registry lists: `Discovery` under tower's p2c balancer,
//! and `Dialer`.

mod common;

use common::within;
use futures_util::StreamExt;
use registries::client::{Attached, Dialer, Discovery, Error, NoneAnswered, Registered};
use registries::{Attributes, Registry, Service};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tower::balance::p2c::Balance;
use tower::discover::Change;
use tower::load::PendingRequests;
use tower::{Service as _, ServiceExt};

async fn register(reg: &Registry, name: &str) -> Registered {
    let attrs = Attributes::new([("proto", "echo")]);
    reg.register(name, &attrs, false).await.unwrap()
}

/// The next change from `d`, which must come.
async fn next<S: Send + 'static>(d: &mut Discovery<S>) -> Change<String, S> {
    within(d.next()).await.unwrap().unwrap()
}

/// Serves on a free loopback port, greeting each connection with `name` and a newline;
/// returns the dial string.
async fn greeter(name: &'static str) -> String {
    use tokio::io::AsyncWriteExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut conn, _)) = listener.accept().await {
            let _ = conn.write_all(format!("{name}\n").as_bytes()).await;
            held.push(conn);
        }
    });
    format!("tcp!127.0.0.1!{port}")
}

/// A loopback address nobody listens on: bound, then let go.
fn refusing() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("tcp!127.0.0.1!{}", l.local_addr().unwrap().port())
}

#[tokio::test]
async fn discovery_inserts_each_service_and_removes_one_that_goes() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let _a = register(&reg, "tcp!127.0.0.1!7001").await;
    let b = register(&reg, "tcp!127.0.0.1!7002").await;
    let mut c = register(&reg, "tcp!127.0.0.1!7003").await;
    let _other = reg
        .register(
            "tcp!127.0.0.1!7009",
            &Attributes::new([("proto", "styx")]),
            false,
        )
        .await
        .unwrap();

    // The tower service here is only the description it was made from.
    let mut d = Discovery::new(&reg, &[("proto", "echo")], |svc: Service| svc)
        .await
        .unwrap();
    let mut inserted = BTreeSet::new();
    for _ in 0..3 {
        match next(&mut d).await {
            Change::Insert(name, svc) => {
                assert_eq!(name, svc.addr);
                inserted.insert(name);
            }
            Change::Remove(name) => panic!("removed {name} before any insert"),
        }
    }
    assert_eq!(
        inserted,
        BTreeSet::from(
            [
                "tcp!127.0.0.1!7001",
                "tcp!127.0.0.1!7002",
                "tcp!127.0.0.1!7003"
            ]
            .map(String::from)
        )
    );

    b.close().await.unwrap();
    assert!(matches!(next(&mut d).await, Change::Remove(n) if n == "tcp!127.0.0.1!7002"));

    // A change replaces the service under its name, with no removal first.
    c.update(&Attributes::new([("load", "5")])).await.unwrap();
    match next(&mut d).await {
        Change::Insert(name, svc) => {
            assert_eq!(name, "tcp!127.0.0.1!7003");
            assert_eq!(svc.attrs.get("load"), Some("5"));
        }
        Change::Remove(name) => panic!("a change removed {name}"),
    }

    let _e = register(&reg, "tcp!127.0.0.1!7004").await;
    assert!(matches!(next(&mut d).await, Change::Insert(n, _) if n == "tcp!127.0.0.1!7004"));
}

#[tokio::test]
async fn a_service_the_maker_cannot_make_is_left_out() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let _bad = register(&reg, "tcp!127.0.0.1!7001").await;
    let make = |svc: Service| async move {
        match svc.addr.as_str() {
            "tcp!127.0.0.1!7001" => Err(format!("{}: no", svc.addr)),
            _ => Ok(svc.addr),
        }
    };
    let mut d = Discovery::with_maker(&reg, &[("proto", "echo")], make)
        .await
        .unwrap();
    let _good = register(&reg, "tcp!127.0.0.1!7002").await;
    assert!(matches!(next(&mut d).await, Change::Insert(n, _) if n == "tcp!127.0.0.1!7002"));
}

#[tokio::test]
async fn balance_never_routes_to_a_removed_service() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let names = [
        "tcp!127.0.0.1!7001",
        "tcp!127.0.0.1!7002",
        "tcp!127.0.0.1!7003",
    ];
    let mut held = Vec::new();
    for n in names {
        held.push(register(&reg, n).await);
    }

    // Each tower service answers with its name; the removals the balancer takes are noted.
    let answer = |svc: Service| {
        tower::service_fn(move |()| std::future::ready(Ok::<_, Error>(svc.addr.clone())))
    };
    let removed = Arc::new(Mutex::new(HashSet::new()));
    let noted = Arc::clone(&removed);
    let discovery = Discovery::new(&reg, &[("proto", "echo")], answer)
        .await
        .unwrap()
        .pending_requests()
        .inspect(move |c| {
            if let Ok(Change::Remove(name)) = c {
                noted.lock().unwrap().insert(name.clone());
            }
        });
    let mut balance = Balance::new(discovery);

    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..60 {
        let who = balance.ready().await.unwrap().call(()).await.unwrap();
        *counts.entry(who).or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");

    let gone = held.remove(1);
    gone.close().await.unwrap();
    let mut after = 0;
    within(async {
        while after < 60 {
            let ready = balance.ready().await.unwrap();
            let seen = removed.lock().unwrap().contains(names[1]);
            let who = ready.call(()).await.unwrap();
            if seen {
                assert_ne!(who, names[1], "routed to a removed service");
                after += 1;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn dialer_connects_to_a_live_service_and_skips_one_that_refuses() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let live = greeter("live").await;
    let dead = refusing();
    let live_reg = register(&reg, &live).await;
    let _dead_reg = register(&reg, &dead).await;

    let dialer = Dialer::new(&reg, &[("proto", "echo")]).await.unwrap();
    assert_eq!(dialer.services().len(), 2);
    // Held open, the live one's connections make the dead one (with none) the first choice
    // by the second connect at the latest: it refuses, and the live one is dialled instead.
    let mut held = Vec::new();
    for _ in 0..10 {
        let a = within(dialer.connect()).await.unwrap();
        let mut conn = BufReader::new(a.fd);
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        assert_eq!(line, "live\n");
        held.push(conn);
    }

    // With only the refusing one left, the error says what was tried.
    live_reg.close().await.unwrap();
    within(async {
        while dialer.services().len() != 1 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    let e = within(dialer.connect()).await.unwrap_err();
    assert_eq!(e.tried.len(), 1);
    assert_eq!(e.tried[0].0, dead);
    assert_eq!(
        e.tried[0].1.io_kind(),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&format!(
            "no service matching proto echo answered: {dead}: "
        )),
        "{text}"
    );
    assert!(matches!(Error::from(e), Error::NoneAnswered(_)));
}

#[tokio::test]
async fn dialer_with_nothing_registered_tries_nothing() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let dialer = Dialer::new(&reg, &[("proto", "echo")]).await.unwrap();
    let e = dialer.connect().await.unwrap_err();
    assert!(e.tried.is_empty());
    assert_eq!(
        e.to_string(),
        "no service matching proto echo is registered"
    );
}

#[tokio::test]
async fn dialer_evens_out_open_connections() {
    let running = common::registry::start().await;
    let reg = Registry::open(running.addr()).await.unwrap();
    let one = greeter("one").await;
    let two = greeter("two").await;
    let _r1 = register(&reg, &one).await;
    let _r2 = register(&reg, &two).await;
    let dialer = Dialer::new(&reg, &[("proto", "echo")]).await.unwrap();

    // Of two services, the power of two choices always compares both: held connections
    // alternate between them.
    let mut open = Vec::new();
    for _ in 0..6 {
        let a = within(dialer.connect()).await.unwrap();
        let mut conn = BufReader::new(a.fd);
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        open.push((line, conn));
    }
    let ones = |open: &[(String, _)]| open.iter().filter(|(l, _)| l == "one\n").count();
    assert_eq!(ones(&open), 3);

    // Closed connections no longer count: with one's closed, the next three go to one.
    open.retain(|(l, _)| l == "two\n");
    for _ in 0..3 {
        let a = within(dialer.connect()).await.unwrap();
        let mut conn = BufReader::new(a.fd);
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        assert_eq!(line, "one\n");
        open.push((line, conn));
    }
}

#[test]
fn both_cross_threads() {
    // A balancer goes into a spawned task (tower's Buffer); a dialer is shared by tasks.
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<Balance<Discovery<PendingRequests<tower::util::BoxService<(), (), Error>>>, ()>>();
    send_sync::<Dialer>();
    // Never called: it compiles only if `connect` can be awaited in a spawned task.
    fn _spawnable(d: &Dialer) -> impl Future<Output = Result<Attached, NoneAnswered>> + Send + '_ {
        d.connect()
    }
}
