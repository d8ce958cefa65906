//! The manager across registry restarts and dropped connections, over 9P and over the shim.

mod common;

use common::within;
use registries::client::{Attributes, Change, Registry, Service};
use registries::manager::{Connector, Manager, MonitorHandle};
use registries::net::Addr;
use registries::registry::RunningServer;
use registries::shim::{Builder, Local, RunningShim, ShimPorts};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

/// A registry on `port` (0: a free one); a restart binds the port the last run used.
async fn serve(port: u16) -> RunningServer {
    common::registry::restart_on(port).await
}

fn port_of(s: &RunningServer) -> u16 {
    match &s.local_addrs()[0] {
        Addr::Tcp { port, .. } => *port,
        a => panic!("not tcp: {a}"),
    }
}

async fn styx(port: u16) -> Registry {
    let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    Registry::connect_stream(s, None).await.unwrap()
}

fn names(services: &[Service]) -> Vec<String> {
    let mut n: Vec<String> = services.iter().map(|s| s.addr.clone()).collect();
    n.sort();
    n
}

/// Reads `n` changes.
async fn changes(mon: &mut MonitorHandle, n: usize) -> Vec<Change> {
    let mut out = Vec::new();
    while out.len() < n {
        out.push(within(mon.next()).await.expect("monitor ended"));
    }
    out
}

/// Registers a marker service directly and checks that it is the very next change the monitor
/// reports: anything reported before it would have been spurious.
async fn only_real_changes(port: u16, mon: &mut MonitorHandle, marker: &str) {
    let direct = styx(port).await;
    let held = direct
        .register(marker, &Attributes::new([("proto", "x")]), false)
        .await
        .unwrap();
    match within(mon.next()).await {
        Some(Change::Added(s)) if s.addr == marker => {}
        other => panic!("expected only the marker's addition, got {other:?}"),
    }
    held.close().await.unwrap();
    match within(mon.next()).await {
        Some(Change::Removed(s)) if s.addr == marker => {}
        other => panic!("expected the marker's removal, got {other:?}"),
    }
}

/// The state every test expects: two services registered, seen through a fresh 9P client.
async fn registered_on(port: u16) -> Vec<String> {
    names(&styx(port).await.find(&[("proto", "x")]).await.unwrap())
}

const OURS: [&str; 2] = ["tcp!a!1", "tcp!b!2"];

#[tokio::test]
async fn survives_registry_restart_over_9p() {
    let server = serve(0).await;
    let port = port_of(&server);
    let mgr = Manager::new(Connector::styx(format!("tcp!127.0.0.1!{port}")));
    let a = mgr.register(OURS[0], Attributes::new([("proto", "x"), ("n", "1")]));
    let b = mgr.register(OURS[1], Attributes::new([("proto", "x"), ("n", "2")]));
    within(a.wait_registered()).await.unwrap();
    within(b.wait_registered()).await.unwrap();
    let mut mon = mgr.monitor(&[("proto", "x")]);
    let first = changes(&mut mon, 2).await;
    assert!(first.iter().all(|c| matches!(c, Change::Added(_))));
    assert_eq!(registered_on(port).await, OURS);

    // Kill and restart on the same port.
    server.shutdown().await;
    let restarted = Instant::now();
    let server = serve(port).await;
    within(mgr.wait_connections(2)).await.unwrap();
    within(a.wait_registered()).await.unwrap();
    within(b.wait_registered()).await.unwrap();
    eprintln!(
        "figure: registrations back {:?} after the restart (9P)",
        restarted.elapsed()
    );
    assert_eq!(registered_on(port).await, OURS);
    assert_eq!(names(&mon.services()), OURS);
    only_real_changes(port, &mut mon, "tcp!marker!1").await;

    // An update made through the manager survives the next restart too.
    a.update(&Attributes::new([("n", "10")])).unwrap();
    match within(mon.next()).await {
        Some(Change::Changed(s)) => assert_eq!(s.attrs.get("n"), Some("10")),
        other => panic!("expected the change, got {other:?}"),
    }
    server.shutdown().await;
    let server = serve(port).await;
    within(mgr.wait_connections(3)).await.unwrap();
    within(a.wait_registered()).await.unwrap();
    let found = styx(port).await.find(&[("n", "10")]).await.unwrap();
    assert_eq!(names(&found), ["tcp!a!1"]);
    only_real_changes(port, &mut mon, "tcp!marker!2").await;

    // Closing a handle unregisters; the monitor reports it.
    b.close().await.unwrap();
    match within(mon.next()).await {
        Some(Change::Removed(s)) => assert_eq!(s.addr, OURS[1]),
        other => panic!("expected the removal, got {other:?}"),
    }
    mgr.shutdown().await;
    assert!(styx(port).await.services().await.unwrap().is_empty());
    server.shutdown().await;
}

async fn serve_shim(server: &RunningServer, ports: ShimPorts) -> RunningShim {
    let mut tries = 0;
    loop {
        match Builder::new(Local::new(server.server().clone()))
            .ports(ports)
            .start()
            .await
        {
            Ok(s) => return s,
            Err(e) if tries < 100 => {
                tries += 1;
                eprintln!("rebind shim: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("cannot start the shim again: {e}"),
        }
    }
}

#[tokio::test]
async fn survives_registry_restart_over_the_shim() {
    let server = serve(0).await;
    let port = port_of(&server);
    let shim = serve_shim(&server, ShimPorts::EPHEMERAL).await;
    let ports = shim.local_addrs().ports();
    let mgr = Manager::new(Connector::shim("127.0.0.1", ports));
    let a = mgr.register(OURS[0], Attributes::new([("proto", "x")]));
    let b = mgr.register(OURS[1], Attributes::new([("proto", "x"), ("d", "it's")]));
    within(a.wait_registered()).await.unwrap();
    within(b.wait_registered()).await.unwrap();
    let mut mon = mgr.monitor(&[("proto", "x")]);
    changes(&mut mon, 2).await;
    let looked = within(mgr.lookup(&[("d", "it's")])).await.unwrap();
    assert_eq!(names(&looked), ["tcp!b!2"]);

    shim.shutdown().await;
    server.shutdown().await;
    let restarted = Instant::now();
    let server = serve(port).await;
    let shim = serve_shim(&server, ports).await;
    within(mgr.wait_connections(2)).await.unwrap();
    within(a.wait_registered()).await.unwrap();
    within(b.wait_registered()).await.unwrap();
    eprintln!(
        "figure: registrations back {:?} after the restart (shim)",
        restarted.elapsed()
    );
    assert_eq!(registered_on(port).await, OURS);
    only_real_changes(port, &mut mon, "tcp!marker!1").await;
    mgr.shutdown().await;
    shim.shutdown().await;
    server.shutdown().await;
}

/// A TCP relay whose connections can all be cut at once.
struct Relay {
    port: u16,
    cut: tokio::sync::watch::Sender<u64>,
}

async fn relay(to: u16) -> Relay {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = l.accept().await {
            let mut cut_rx = cut_rx.clone();
            let seen = *cut_rx.borrow_and_update();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", to)).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = cut_rx.wait_for(|c| *c != seen) => {}
                }
            });
        }
    });
    Relay { port, cut }
}

#[tokio::test]
async fn survives_a_dropped_connection() {
    let server = serve(0).await;
    let port = port_of(&server);
    let relay = relay(port).await;
    let mgr = Manager::new(Connector::styx(format!("tcp!127.0.0.1!{}", relay.port)));
    let a = mgr.register(OURS[0], Attributes::new([("proto", "x")]));
    let b = mgr.register(OURS[1], Attributes::new([("proto", "x")]));
    within(a.wait_registered()).await.unwrap();
    within(b.wait_registered()).await.unwrap();
    let mut mon = mgr.monitor(&[("proto", "x")]);
    changes(&mut mon, 2).await;

    for round in 1..=3u64 {
        relay.cut.send_replace(round);
        within(mgr.wait_connections(round + 1)).await.unwrap();
        within(a.wait_registered()).await.unwrap();
        within(b.wait_registered()).await.unwrap();
        // The registry may still be removing the old registrations: wait for ours to be back.
        within(async {
            while registered_on(port).await != OURS {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        only_real_changes(port, &mut mon, &format!("tcp!marker!{round}")).await;
    }
    mgr.shutdown().await;
    server.shutdown().await;
}

#[tokio::test]
async fn lookup_waits_for_the_registry() {
    // A port with nothing on it yet.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let mgr = Manager::new(Connector::styx(format!("tcp!127.0.0.1!{port}")));
    let svc = mgr.register("tcp!late!1", Attributes::new([("proto", "x")]));
    let (found, server) = tokio::join!(within(mgr.lookup(&[("proto", "x")])), async {
        // The lookup is waiting while there is no registry.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!mgr.status().connected);
        serve(port).await
    });
    // Services are registered before pending lookups run.
    assert_eq!(names(&found.unwrap()), ["tcp!late!1"]);
    assert!(svc.is_registered());
    drop(svc);
    mgr.shutdown().await;
    server.shutdown().await;
}

/// A persistent registration outlives its connection: after a cut, the entry still there counts
/// as ours, and the manager neither retries for ever nor registers a second one.
#[tokio::test]
async fn a_persistent_service_survives_a_dropped_connection() {
    let server = serve(0).await;
    let port = port_of(&server);
    let relay = relay(port).await;
    let mgr = Manager::new(Connector::styx(format!("tcp!127.0.0.1!{}", relay.port)));
    let kept = mgr.register(OURS[0], Attributes::new([("proto", "x"), ("persist", "1")]));
    within(kept.wait_registered()).await.unwrap();
    relay.cut.send_replace(1);
    within(mgr.wait_connections(2)).await.unwrap();
    within(async {
        while !kept.is_registered() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(
        names(&styx(port).await.find(&[("proto", "x")]).await.unwrap()),
        [OURS[0]]
    );
    mgr.shutdown().await;
    server.shutdown().await;
}
