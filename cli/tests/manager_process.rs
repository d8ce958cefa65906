//! The done-when: a program holding registrations and a monitor through the manager
//! comes back to the same state after `registry serve` is killed and restarted, and the monitor
//! reports only real changes.

#[path = "../../tests/common/mod.rs"]
mod common;
mod process;

use common::within;

use registries::client::{Attributes, Change, Registry};
use registries::manager::{Connector, Manager};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use process::serve;

#[tokio::test]
async fn manager_comes_back_after_registry_serve_restarts() {
    let (mut child, port) = serve("tcp!127.0.0.1!0").await.expect("server started");
    let mgr = Manager::new(Connector::styx(format!("tcp!127.0.0.1!{port}")));
    let svcs: Vec<_> = (0..3)
        .map(|i| {
            mgr.register(
                format!("tcp!held!{i}"),
                Attributes::new([("role", "worker")]),
            )
        })
        .collect();
    for s in &svcs {
        within(s.wait_registered()).await.unwrap();
    }
    let mut mon = mgr.monitor(&[("role", "worker")]);
    for _ in 0..3 {
        assert!(matches!(within(mon.next()).await, Some(Change::Added(_))));
    }

    child.kill().await.unwrap();
    let killed = Instant::now();
    let (_child, _) = within(async {
        loop {
            if let Some(c) = serve(&format!("tcp!127.0.0.1!{port}")).await {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    for s in &svcs {
        within(s.wait_registered()).await.unwrap();
    }
    eprintln!(
        "figure: state back {:?} after kill+restart of `registry serve`",
        killed.elapsed()
    );
    let direct =
        Registry::connect_stream(TcpStream::connect(("127.0.0.1", port)).await.unwrap(), None)
            .await
            .unwrap();
    assert_eq!(direct.find(&[("role", "worker")]).await.unwrap().len(), 3);
    // Nothing was reported across the restart: the next change is the real one.
    let extra = direct
        .register("tcp!new!1", &Attributes::new([("role", "worker")]), false)
        .await
        .unwrap();
    match within(mon.next()).await {
        Some(Change::Added(s)) => assert_eq!(s.addr, "tcp!new!1"),
        other => panic!("spurious change {other:?}"),
    }
    drop(extra);
    mgr.shutdown().await;
}
